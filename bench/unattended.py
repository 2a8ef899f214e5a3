"""Figures for unattended operation (issue 10): overlapping runs and bad input.

    .venv/bin/python -m bench.unattended              # 3 overlap rounds, every bad input
    .venv/bin/python -m bench.unattended --rounds 5

Everything runs on loopback (the test suite's servers). Overlapping runs: a run A on a list of
loopback URLs (some of them time out, so that it lasts), then, while A is measuring, run B on the
same database without ``--wait-lock`` and run C with ``--wait-lock 300``. Measured: B's exit
status and how long it took to give up, how long C waited, and from the stored rows whether any
URL was measured by two runs at once (C's first measurement must start after A finished).

Bad input: a database that already holds a complete run, then ``probe run`` with each bad list
or flag value. Measured: the exit status, the time to refuse, and whether the database changed
(every row before and after, by id: deleted, changed, added).
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "integration"))

from servers import LoopbackNet, start_loopback_net  # type: ignore[import-not-found]  # noqa: E402

FAST = ["--late-window", "0.1", "--tcp-timeout", "2", "--tls-timeout", "2", "--http-timeout", "3",
        "--retry-pause", "0", "--accept-risks", "--no-progress"]  # fmt: skip


def _probe(args: list[str], config: Path) -> subprocess.Popen[str]:
    env = dict(os.environ, PROBE_CONFIG_DIR=str(config))
    return subprocess.Popen([sys.executable, "-m", "probe", *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)  # fmt: skip


def _rows(db: Path, sql: str) -> list[tuple[Any, ...]]:
    con = sqlite3.connect(db)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def _write_list(net: LoopbackNet, path: Path, fast: int, slow: int) -> None:
    lines = ["url,category_code,category_description,date_added,source,notes"]
    lines += [f"{net.url('ok.test', f'/?n={i}')},NEWS,News,,," for i in range(fast)]
    lines += [f"{net.url('blackhole.test', f'/?n={i}')},NEWS,News,,," for i in range(slow)]
    path.write_text("\n".join(lines) + "\n")


def overlap_round(net: LoopbackNet, tmp: Path) -> dict[str, Any]:
    """One round: A runs; B (no wait) and C (--wait-lock 300) start while A measures."""
    db, lst, cfg = tmp / "r.db", tmp / "list.csv", tmp / "cfg"
    _write_list(net, lst, fast=40, slow=12)
    base = ["run", str(lst), "--resolver", net.resolver, "--db", str(db), "--concurrency", "4",
            "--no-control", *FAST]
    a = _probe(base, cfg)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # until A has stored something: it holds the lock
        try:
            if _rows(db, "select count(*) from measurements")[0][0] >= 5:
                break
        except sqlite3.Error:
            pass
        time.sleep(0.05)  # polling another process's database: there is no event to wait on
    t0 = time.monotonic()
    b = _probe(base, cfg)
    c = _probe([*base, "--wait-lock", "300"], cfg)
    _, b_err = b.communicate(timeout=300)
    b_secs = time.monotonic() - t0
    a.communicate(timeout=300)
    a_end = time.monotonic()
    c.communicate(timeout=300)
    c_secs = time.monotonic() - t0
    runs = _rows(db, "select id, status, started_at, finished_at from runs order by id")
    first_a, last_a = _rows(db, "select min(started), max(started + runtime) from measurements "
                                f"where run_id = {runs[0][0]}")[0]  # fmt: skip
    c_first = _rows(db, f"select min(started) from measurements where run_id = {runs[-1][0]}")[0][0]
    per_run = _rows(db, "select run_id, count(*), count(distinct url) from measurements group by run_id")
    # A URL measured by two runs at once: a measurement of a later run that started before a
    # measurement of the same URL by the first run ended.
    both = _rows(db, "select count(*) from measurements a join measurements c on a.url = c.url "
                     f"and a.run_id = {runs[0][0]} and c.run_id > a.run_id "
                     "and c.started < a.started + a.runtime")[0][0]  # fmt: skip
    return {
        "a_exit": a.returncode, "b_exit": b.returncode, "b_seconds": round(b_secs, 2),
        "b_message": b_err.strip().splitlines()[-1] if b_err.strip() else "",
        "c_exit": c.returncode, "c_waited_seconds": round(a_end - t0, 2),
        "c_seconds": round(c_secs, 2), "runs": [(r[0], r[1]) for r in runs],
        "measurements_per_run": per_run,
        "c_started_after_a_ended": c_first is not None and c_first >= last_a,
        "measured_by_two_runs_at_once": both,
        "a_span_seconds": round((last_a or 0) - (first_a or 0), 2),
    }  # fmt: skip


def _db_rows(db: Path) -> dict[str, dict[str, str]]:
    """Every row of every table, by its first column (the id), as text."""
    con = sqlite3.connect(db)
    try:
        names = [n for (n,) in con.execute("select name from sqlite_master where type = 'table'")]
        return {n: {repr(r[0]): repr(r) for r in con.execute(f'select * from "{n}"')} for n in names}
    finally:
        con.close()


def _changes(before: dict[str, dict[str, str]], after: dict[str, dict[str, str]]) -> dict[str, Any]:
    """Rows deleted, rows changed (same id, other content) and rows added, per table."""
    out: dict[str, Any] = {"deleted": 0, "changed": {}, "added": {}}
    for table, rows in after.items():
        old = before.get(table, {})
        out["deleted"] += sum(1 for key in old if key not in rows)
        if n := sum(1 for key, text in rows.items() if key in old and old[key] != text):
            out["changed"][table] = n
        if n := sum(1 for key in rows if key not in old):
            out["added"][table] = n
    return out


def bad_inputs(net: LoopbackNet, tmp: Path) -> list[dict[str, Any]]:
    """Each bad list or flag against a database that already holds a complete run."""
    db, cfg = tmp / "bad.db", tmp / "cfg"
    common = ["--db", str(db), *FAST]
    ok = ["--url", net.url("ok.test"), "--resolver", net.resolver, "--no-control"]
    first = _probe(["run", *ok, *common], cfg)
    first.communicate(timeout=120)
    assert first.returncode == 0
    utf16 = tmp / "utf16.csv"
    utf16.write_bytes("url\nhttp://a.example/\n".encode("utf-16"))
    noheader = tmp / "noheader.csv"
    noheader.write_text("http://a.example/,NEWS\n")
    bogus_pem = tmp / "ca.pem"
    bogus_pem.write_text("not a certificate\n")
    lists = ["--resolver", net.resolver, "--no-control"]
    cases: list[tuple[str, list[str]]] = [
        ("missing list", [str(tmp / "nope.csv"), *lists]),
        ("a directory as list", [str(tmp), *lists]),
        ("UTF-16 list", [str(utf16), *lists]),
        ("list without a url header", [str(noheader), *lists]),
        ("/dev/zero as list", ["/dev/zero", *lists]),
        ("--resolver bogus", [*ok, "--resolver", "bogus"]),
        ("--resolver 999.1.1.1", [*ok, "--resolver", "999.1.1.1"]),
        ("--resolver IP:99999", [*ok, "--resolver", "127.0.0.1:99999"]),
        ("--cafile not PEM", [*ok, "--cafile", str(bogus_pem)]),
        ("--vantage=", [*ok, "--vantage="]),
        ("--dns-timeout nan", [*ok, "--dns-timeout", "nan"]),
        ("--http-timeout inf", [*ok, "--http-timeout", "inf"]),
        ("--doh http://x/", [*ok, "--doh", "http://x/"]),
        ("--resolv-conf /nonexistent", ["--url", net.url("ok.test"), "--no-control",
                                        "--resolv-conf", "/nonexistent"]),
        ("--url ftp://x/", [*ok, "--url", "ftp://x/"]),
        ("--category NE WS!", [*ok, "--category", "NE WS!"]),
        ("--control unreachable", ["--url", net.url("ok.test"), "--resolver", net.resolver,
                                   "--control", "http://127.0.0.1:9/"]),
    ]  # fmt: skip
    out = []
    for name, argv in cases:
        before = _db_rows(db)
        args = ["run", *common, *argv]  # the bad value last: it is the one click keeps
        t0 = time.monotonic()
        proc = _probe(args, cfg)
        _, err = proc.communicate(timeout=120)
        secs = time.monotonic() - t0
        out.append({"input": name, "exit": proc.returncode, "seconds": round(secs, 2),
                    **_changes(before, _db_rows(db)),
                    "message": (err.strip().splitlines() or [""])[-1][:140]})  # fmt: skip
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="overlap rounds")
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.1f}", flush=True)
    with tempfile.TemporaryDirectory(prefix="probe-unattended-") as d:
        net = start_loopback_net(Path(d))
        try:
            rounds = []
            for i in range(args.rounds):
                r = overlap_round(net, Path(tempfile.mkdtemp(dir=d, prefix=f"round{i}-")))
                print(json.dumps(r), flush=True)
                rounds.append(r)
            bad = bad_inputs(net, Path(tempfile.mkdtemp(dir=d, prefix="bad-")))
            for b in bad:
                print(json.dumps(b, ensure_ascii=False), flush=True)
        finally:
            net.close()
    print("\n| round | second run, no --wait-lock | third run, --wait-lock 300 | runs stored "
          "| URLs measured by two runs at once |")
    print("|---|---|---|---|---|")
    for i, r in enumerate(rounds, 1):
        print(f"| {i} | exit {r['b_exit']} after {r['b_seconds']} s | exit {r['c_exit']}, waited "
              f"{r['c_waited_seconds']} s (first run's span {r['a_span_seconds']} s), first "
              f"measurement after the first run's last: {r['c_started_after_a_ended']} | "
              f"{r['runs']}, measurements per run {r['measurements_per_run']} | "
              f"{r['measured_by_two_runs_at_once']} |")
    print("\n| bad input | exit | time to refuse | stored rows deleted | rows changed | rows added "
          "| message |")
    print("|---|---|---|---|---|---|---|")
    for b in bad:
        changed = ", ".join(f"{t} {n}" for t, n in sorted(b["changed"].items())) or "none"
        added = ", ".join(f"{t} +{n}" for t, n in sorted(b["added"].items())) or "none"
        print(f"| {b['input']} | {b['exit']} | {b['seconds']} s | {b['deleted']} | {changed} | "
              f"{added} | `{b['message']}` |")
    print(f"load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
