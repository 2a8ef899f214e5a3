"""`probe run` on a terminal: the end-of-run summary lists what was not ok, and why."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import pytest
from servers import LoopbackNet
from terminal import run_on_pty
from test_probe_run import FAST, helper, probe

pytestmark = pytest.mark.integration
__all__ = ["helper"]  # the fixture, imported so that pytest finds it here

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07|\r")


def _targets(net: LoopbackNet) -> list[str]:
    return [net.url("ok.test"), net.url("reset.test"), net.url("refused.test"),
            net.url("nxdomain.test")]


def test_summary_on_a_terminal_lists_non_ok_urls_with_reasons_in_words(
    loopback_net: LoopbackNet, helper: str, tmp_path: Path
) -> None:
    # The lying resolver answers 10.10.34.34 for every name; the helper resolves honestly.
    net = loopback_net
    db = tmp_path / "t.db"
    ok, nx = net.url("ok.test"), net.url("nxdomain.test")
    args = [sys.executable, "-m", "probe", "run", "--resolver", net.lying_resolver, "--control",
            helper, "--cafile", net.ca_path, "--accept-risks", "--db", str(db), *FAST,
            "--url", ok, "--url", nx]
    code, out = run_on_pty(args, dict(os.environ, PROBE_CONFIG_DIR=str(tmp_path / "cfg")))
    text = _ANSI.sub("", out)
    assert code == 0, text
    tail = text[text.index("complete: 2 URLs"):]
    flat = " ".join(tail.split())
    assert "hijacked (DNS or TLS lied): 2" in flat
    assert f"{ok} DNS answered 10.10.34.34: addresses the control does not see" in flat
    assert (f"{nx} DNS answered 10.10.34.34 for a name that does not exist according to the "
            "control") in flat
    assert "ok 0, blocked 0, reset 0, hijacked 2, throttled 0, down 0, inconclusive 0" in flat
    assert f"results: {db} (run 1)" in flat
    # Only the suggested commands may be longer: they name the (long) temporary path.
    assert all(len(line) <= 80 for line in tail.splitlines() if str(db) not in line)


def test_summary_without_a_terminal_is_one_line(
    loopback_net: LoopbackNet, helper: str, tmp_path: Path
) -> None:
    net = loopback_net
    db = tmp_path / "t.db"
    urls = [a for u in _targets(net) for a in ("--url", u)]
    r = probe("run", *urls, "--resolver", net.resolver, "--control", helper, "--cafile",
              net.ca_path, "--accept-risks", "--db", str(db), *FAST, config=tmp_path / "cfg")
    assert r.returncode == 0, r.stderr
    summary = [line for line in r.stdout.splitlines() if "complete: 4 URLs" in line]
    assert len(summary) == 1
    assert "down 3" in summary[0] and f"results in {db} (run 1)" in summary[0]
    assert "DNS said" not in r.stdout  # reasons are for terminals; logs got one line per URL
