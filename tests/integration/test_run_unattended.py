"""Unattended runs: one run per database (lock, --wait-lock, exit 75), SIGHUP, --quiet,
timestamped log lines."""

from __future__ import annotations

import re
import signal
import subprocess
from pathlib import Path

import pytest
from servers import LoopbackNet
from test_probe_run import FAST, _start_run, _wait_for_rows, probe, rows

pytestmark = pytest.mark.integration


def _small_run(net: LoopbackNet, db: Path, tmp_path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return probe("run", "--url", net.url("ok.test", tls=True), "--resolver", net.resolver,
                 "--cafile", net.ca_path, "--no-control", "--accept-risks", "--db", str(db),
                 *FAST, *extra, config=tmp_path / "c")


def _stop(proc: subprocess.Popen[str], sig: signal.Signals = signal.SIGTERM) -> tuple[str, str]:
    try:
        proc.send_signal(sig)
        return proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_a_second_run_on_a_busy_database_exits_75_and_measures_nothing(
    loopback_net: LoopbackNet, tmp_path: Path
) -> None:
    db = tmp_path / "r.db"
    first = _start_run(loopback_net, tmp_path, db)
    try:
        _wait_for_rows(db, 30)
        second = _small_run(loopback_net, db, tmp_path)
        waited = _small_run(loopback_net, db, tmp_path, "--wait-lock", "0.5")
    finally:
        _stop(first)
    assert second.returncode == 75, second.stderr
    assert f"pid {first.pid}" in second.stderr and "--wait-lock" in second.stderr
    assert waited.returncode == 75 and "after waiting 0.5 s" in waited.stderr
    assert [r["status"] for r in rows(db, "select status from runs")] == ["interrupted"]
    assert rows(db, "select count(*) as n from measurements where url like '%/'")[0]["n"] == 0

    # Once the first run ended, the next one takes the database.
    third = _small_run(loopback_net, db, tmp_path, "--wait-lock", "5")
    assert third.returncode == 0, third.stderr


def test_sighup_ends_the_run_as_interrupted(loopback_net: LoopbackNet, tmp_path: Path) -> None:
    db = tmp_path / "r.db"
    proc = _start_run(loopback_net, tmp_path, db)
    try:
        _wait_for_rows(db, 30)
    finally:
        _out, err = _stop(proc, signal.SIGHUP)
    assert proc.returncode == 130, err
    assert [r["status"] for r in rows(db, "select status from runs")] == ["interrupted"]
    assert rows(db, "select count(*) as n from measurements")[0]["n"] >= 30


def test_quiet_prints_nothing_but_errors(loopback_net: LoopbackNet, tmp_path: Path) -> None:
    db = tmp_path / "r.db"
    result = _small_run(loopback_net, db, tmp_path, "--quiet")
    assert result.returncode == 0, result.stderr
    assert (result.stdout, result.stderr) == ("", "")
    assert rows(db, "select count(*) as n from measurements")[0]["n"] == 1
    failed = probe("run", "--url", loopback_net.url("ok.test"), "--resolver", loopback_net.resolver,
                   "--control", "http://127.0.0.1:9/", "--accept-risks", "--db", str(db), "--quiet",
                   *FAST, config=tmp_path / "c")
    assert failed.returncode == 1 and "no control answers" in failed.stderr


def test_log_lines_off_a_terminal_carry_utc_timestamps(
    loopback_net: LoopbackNet, tmp_path: Path
) -> None:
    result = probe("run", "--url", loopback_net.url("reset.test"), "--url",
                   loopback_net.url("ok.test", tls=True), "--resolver", loopback_net.resolver,
                   "--cafile", loopback_net.ca_path, "--control", "http://127.0.0.1:9/",
                   "--allow-no-control", "--accept-risks", "--db", str(tmp_path / "r.db"), *FAST,
                   config=tmp_path / "c")
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert any("run 1: measuring" in line for line in lines)
    stamp = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ ")
    assert lines and all(stamp.match(line) for line in lines), lines
