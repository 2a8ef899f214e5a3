"""Without CAP_NET_RAW: `probe run --capture` warns once and measures; `probe trace` exits 2."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from servers import LoopbackNet


def _without_net_raw() -> list[str]:
    if os.geteuid() != 0:
        return []  # an ordinary user has no CAP_NET_RAW anyway
    if shutil.which("setpriv") is None:
        pytest.skip("setpriv (util-linux) is needed to drop CAP_NET_RAW as root")
    return ["setpriv", "--bounding-set", "-net_raw", "--inh-caps", "-net_raw"]


def test_run_with_capture_warns_once_and_measures_without_it(
    tmp_path: Path, loopback_net: LoopbackNet
) -> None:
    db = tmp_path / "r.db"
    proc = subprocess.run(
        [*_without_net_raw(), sys.executable, "-m", "probe", "run", "--pcap", str(tmp_path / "p"), "--url",
         loopback_net.url("ok.test"), "--no-control", "--accept-risks", "--db", str(db),
         "--no-progress", "--retries", "0", "--resolver", loopback_net.resolver],
        capture_output=True, text=True, timeout=120, env={**os.environ, "PROBE_CONFIG_DIR": str(tmp_path)},
    )  # fmt: skip
    warnings = [line for line in proc.stderr.splitlines() if "capture" in line]
    assert len(warnings) == 1, proc.stderr
    assert "warning: packet capture needs root or CAP_NET_RAW" in warnings[0]
    import sqlite3

    con = sqlite3.connect(db)
    assert con.execute("SELECT count(*) FROM measurements").fetchone()[0] == 1
    assert con.execute("SELECT count(*) FROM packets").fetchone()[0] == 0
    assert list((tmp_path / "p").iterdir()) == []  # no empty pcap left behind


def test_trace_without_privileges_exits_2_before_sending(tmp_path: Path) -> None:
    proc = subprocess.run(
        [*_without_net_raw(), sys.executable, "-m", "probe", "trace", "http://127.0.0.1:9/",
         "--no-store"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 2
    assert "needs root or CAP_NET_RAW" in proc.stderr
