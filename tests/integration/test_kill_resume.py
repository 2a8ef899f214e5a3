"""kill -9 at random points of a run, then `probe run --resume`: nothing corrupt, nothing lost,
and the resumed run ends with every URL exactly once."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from servers import LoopbackNet
from test_probe_run import _wait_for_rows, probe, rows

pytestmark = pytest.mark.integration

URLS = 120
KILLS = 10


def _final(db: Path) -> int:
    return int(rows(db, "select count(*) as n from measurements where final = 1")[0]["n"])


def test_ten_kills_lose_nothing_and_resume_finishes_without_duplicates(
    loopback_net: LoopbackNet, tmp_path: Path
) -> None:
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    lst = tmp_path / "list.csv"
    lst.write_text("url,category_code,category_description,date_added,source,notes\n" + "".join(
        f"{loopback_net.url('ok.test', f'/?n={i}')},NEWS,News,,,\n" for i in range(URLS)))
    db = tmp_path / "r.db"
    argv = [sys.executable, "-m", "probe", "run", str(lst), "--resolver", loopback_net.resolver,
            "--no-control", "--accept-risks", "--db", str(db), "--concurrency", "2",
            "--per-host", "2", "--late-window", "0.05", "--no-progress"]
    env = dict(os.environ, PROBE_CONFIG_DIR=str(tmp_path / "c"))
    stored = 0
    for kill in range(KILLS):
        resume = ["--resume"] if kill else []
        proc = subprocess.Popen([*argv, *resume], env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
        try:
            # A random point: after 1 to 6 more URLs are stored (in the middle of batches,
            # retries and flushes, whatever the run is doing then).
            if stored < URLS - 12:
                _wait_for_rows(db, stored + rng.randint(1, 6))
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=10)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        assert rows(db, "pragma integrity_check")[0][0] == "ok", f"seed {seed}, kill {kill}"
        now = _final(db)
        assert now >= stored, f"seed {seed}: kill {kill} lost {stored - now} stored URLs"
        stored = now
    # A resumed run can finish its last URLs between reaching the row count and the kill
    # (loopback is fast): then it is complete already and there is nothing left to resume.
    last = rows(db, "select status from runs order by id desc limit 1")[0]["status"]
    if last != "complete":
        result = probe("run", str(lst), "--resolver", loopback_net.resolver, "--no-control",
                       "--accept-risks", "--db", str(db), "--late-window", "0.05", "--resume",
                       config=tmp_path / "c")
        assert result.returncode == 0, result.stderr
    runs = rows(db, "select id, status, n_measurements from runs")
    assert [(r["status"], r["n_measurements"]) for r in runs] == [("complete", URLS)]
    dup = rows(db, "select url, count(*) as n from measurements where final = 1 "
                   "group by url having n > 1")
    assert [tuple(r) for r in dup] == [], f"seed {seed}"
    assert _final(db) == URLS
    print(f"seed {seed}: {KILLS} kills, stored before resume {stored}/{URLS}, 0 corrupt, 0 lost")


def test_resume_refuses_a_complete_run(loopback_net: LoopbackNet, tmp_path: Path) -> None:
    db = tmp_path / "r.db"
    args = ["run", "--url", loopback_net.url("ok.test"), "--resolver", loopback_net.resolver,
            "--no-control", "--accept-risks", "--db", str(db), "--late-window", "0.05"]
    assert probe(*args, config=tmp_path / "c").returncode == 0
    again = probe(*args, "--resume", "1", config=tmp_path / "c")
    assert again.returncode == 1 and "only an interrupted run can be resumed" in again.stderr
    nothing = probe(*args, "--resume", config=tmp_path / "c")
    assert nothing.returncode == 1 and "no interrupted run" in nothing.stderr
