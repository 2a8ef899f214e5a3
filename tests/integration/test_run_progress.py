"""`probe run`'s live progress in a real terminal (tmux, 80 columns): it fits and never wraps."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from servers import LoopbackNet
from terminal import Tmux

pytestmark = pytest.mark.integration

COLS, ROWS = 80, 24


def _tmux(sock: Path, *args: str) -> str:
    return subprocess.run(["tmux", "-S", str(sock), *args], check=True, capture_output=True,
                          text=True, timeout=30).stdout


_wait_for = Tmux.wait_for


@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is installed by .ci/setup")
def test_progress_fits_80_columns_names_slow_urls_and_counts_down_their_deadline(
    loopback_net: LoopbackNet, tmp_path: Path
) -> None:
    net = loopback_net
    urls = [net.url("ok.test", f"/page-{i}-with-a-rather-long-path-to-fill-the-line") for i in range(12)]
    urls += [net.url("blackhole.test", "/slow-one"), net.url("blackhole.test", "/slow-two")]
    args = [sys.executable, "-m", "probe", "run", "--resolver", net.resolver, "--no-control",
            "--cafile", net.ca_path, "--accept-risks", "--db", str(tmp_path / "p.db"),
            "--late-window", "0.2", "--tcp-timeout", "2", "--tls-timeout", "2",
            "--http-timeout", "6", "--deadline", "8", "--retries", "0"]
    for u in urls:
        args += ["--url", u]
    env = {k: os.environ[k] for k in ("PATH", "PYTHONPATH", "HOME") if k in os.environ}
    env.update(PROBE_CONFIG_DIR=str(tmp_path / "cfg"), TERM="xterm-256color")
    command = "env " + " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items()) + " " + \
        " ".join(shlex.quote(a) for a in args)
    sock = tmp_path / "tmux.sock"
    _tmux(sock, "-f", "/dev/null", "new-session", "-d", "-s", "t", "-x", str(COLS), "-y", str(ROWS),
          "sleep 1000")
    try:
        _tmux(sock, "set-option", "-t", "t", "remain-on-exit", "on")
        _tmux(sock, "respawn-pane", "-k", "-t", "t", command)

        def screen() -> str:
            return _tmux(sock, "capture-pane", "-p", "-J", "-t", "t")

        # While the two black-holed URLs hold the run: they are named, and the ETA is the time
        # their deadline may still take ("≤"), not 0.
        def waiting_screen() -> str | None:
            s = screen()
            return s if "waiting on 2" in s else None

        waiting = _wait_for(waiting_screen, 60)
        assert "blackhole.test" in waiting
        assert "12/14 URLs" in waiting and "ETA ≤ 0:0" in waiting
        _wait_for(lambda: _tmux(sock, "display", "-p", "-t", "t", "#{pane_dead}").strip() == "1", 60)
        history = _tmux(sock, "capture-pane", "-p", "-J", "-S", "-", "-E", "-", "-t", "t")
    finally:
        subprocess.run(["tmux", "-S", str(sock), "kill-server"], capture_output=True, timeout=30)
    lines = history.rstrip("\n").splitlines()
    # -J joins wrapped lines: a line longer than the pane would be a redraw that wrapped.
    # (The summary's lines naming the long temporary database path are allowed to wrap.)
    long = [x for x in lines if len(x) > COLS and str(tmp_path) not in x]
    assert long == []
    # Each redraw replaced the last: one progress line (the final state) is left, not one per
    # refresh.
    bars = [line for line in lines if line.startswith("[") and "URLs" in line]
    assert len(bars) == 1, history
    assert bars[0].startswith("[" + "#" * 20 + "]") and "14/14 URLs" in bars[0]
    assert any(line.startswith("ok ") and "inconclusive" in line for line in lines)
    assert "complete: 14 URLs" in history
