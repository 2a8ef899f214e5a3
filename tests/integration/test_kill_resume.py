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


def _signalled(argv: list[str], tmp_path: Path, db: Path, sig: int) -> tuple[int, str]:
    """Run ``probe ARGV``, send ``sig`` once it stored a few URLs: (exit status, stdout)."""
    env = dict(os.environ, PROBE_CONFIG_DIR=str(tmp_path / "c"))
    proc = subprocess.Popen([sys.executable, "-m", "probe", *argv], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            stdin=subprocess.DEVNULL, text=True)
    try:
        _wait_for_rows(db, 3)
        proc.send_signal(sig)
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return proc.returncode, out


def _killed_run(net: LoopbackNet, tmp_path: Path, lst: Path, *extra: str) -> Path:
    """A run of ``lst`` killed (SIGKILL) once it stored a few URLs: an interrupted run 1."""
    db = tmp_path / "r.db"
    _signalled(["run", str(lst), "--resolver", net.resolver, "--no-control", "--accept-risks",
                "--db", str(db), "--concurrency", "1", "--late-window", "0.05", "--no-progress",
                *extra], tmp_path, db, signal.SIGKILL)
    return db


def test_resume_measures_the_interrupted_runs_own_selection_and_never_widens(
    loopback_net: LoopbackNet, tmp_path: Path
) -> None:
    # The field report: `probe run my.csv --category ...` interrupted, then `probe run
    # --resume` measured the default global list (1,722 URLs) into the run, forgot the
    # category, never finished my.csv, and named the vantage point `default`.
    lst = tmp_path / "my.csv"
    news = [loopback_net.url("ok.test", f"/?news={i}") for i in range(300)]
    other = [loopback_net.url("ok.test", f"/?humr={i}") for i in range(5)]
    lst.write_text("url,category_code,category_description,date_added,source,notes\n" + "".join(
        f"{u},{cat},x,,,\n" for u, cat in [*((u, "NEWS") for u in news),
                                            *((u, "HUMR") for u in other)]))
    db = _killed_run(loopback_net, tmp_path, lst, "--category", "NEWS", "--vantage", "home")
    if rows(db, "select status from runs")[0]["status"] == "complete":
        pytest.skip("the run finished before it could be killed")
    common = ["--resolver", loopback_net.resolver, "--no-control", "--accept-risks", "--db",
              str(db), "--late-window", "0.05"]
    before = rows(db, "select count(*) as n from measurements")[0]["n"]

    # Without the list: refused (exit 2), naming it; nothing measured, the run left as it was.
    alone = probe("run", "--resume", *common, config=tmp_path / "c")
    assert alone.returncode == 2, alone.stderr
    assert "run 1 measured my.csv" in alone.stderr and "give the same list again" in alone.stderr
    assert rows(db, "select count(*) as n from measurements")[0]["n"] == before
    assert rows(db, "select status from runs")[0]["status"] == "interrupted"

    # Another content under the same name: refused, naming it.
    changed = tmp_path / "changed" / "my.csv"
    changed.parent.mkdir()
    changed.write_text(lst.read_text() + f"{loopback_net.url('ok.test', '/?extra')},NEWS,x,,,\n")
    other_list = probe("run", str(changed), "--resume", *common, config=tmp_path / "c")
    assert other_list.returncode == 2
    assert "my.csv is not the list run 1 measured" in " ".join(other_list.stderr.split())
    # Another category than the run's: refused.
    wider = probe("run", str(lst), "--resume", "--category", "NEWS,HUMR", *common,
                  config=tmp_path / "c")
    assert wider.returncode == 2 and "--category" in wider.stderr

    # The same list, no --category, no --vantage: the run's own category and vantage point.
    done = probe("run", str(lst), "--resume", *common, config=tmp_path / "c")
    assert done.returncode == 0, done.stderr
    assert "vantage home:" in done.stdout
    measured = [r["url"] for r in rows(db, "select url from measurements where final = 1")]
    assert sorted(measured) == sorted(news)  # every NEWS URL once; no HUMR, nothing else
    assert [(r["status"], r["n_measurements"]) for r in rows(
        db, "select status, n_measurements from runs")] == [("complete", len(news))]


def test_an_interrupted_run_says_how_to_resume_it(loopback_net: LoopbackNet, tmp_path: Path) -> None:
    lst = tmp_path / "my list.csv"
    lst.write_text("url,category_code,category_description,date_added,source,notes\n" + "".join(
        f"{loopback_net.url('ok.test', f'/?n={i}')},NEWS,x,,,\n" for i in range(300)))
    db = tmp_path / "r.db"
    code, out = _signalled(["run", str(lst), "--resolver", loopback_net.resolver, "--no-control",
                            "--accept-risks", "--db", str(db), "--concurrency", "1",
                            "--late-window", "0.05", "--no-progress", "--category", "NEWS"],
                           tmp_path, db, signal.SIGINT)
    if code == 0:
        pytest.skip("the run finished before it could be interrupted")
    assert code == 130
    import shlex

    command = shlex.join(["probe", "run", str(lst), "--resolver", loopback_net.resolver,
                          "--no-control", "--accept-risks", "--db", str(db), "--concurrency", "1",
                          "--late-window", "0.05", "--no-progress", "--category", "NEWS",
                          "--resume", "1"])
    assert f"  {command}\n" in out
    # And it does: the command as printed (without its first word) finishes the run.
    again = probe(*shlex.split(command)[1:], config=tmp_path / "c")
    assert again.returncode == 0, again.stderr
    assert [(r["status"], r["n_measurements"]) for r in rows(
        db, "select status, n_measurements from runs")] == [("complete", 300)]
