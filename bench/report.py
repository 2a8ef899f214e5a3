"""`probe report` over a large database: wall time, peak RSS and the HTML's size.

    .venv/bin/python -m bench.report                      # 100,000 measurements, 10 vantage points
    .venv/bin/python -m bench.report --rows 1000000 --reuse

The database is bench_store's synthetic one (10 vantage points x R rounds x U URLs, verdicts
from a realistic mix, redrawn each round so verdicts change over time), then every non-ok
latest measurement gets real observations (a two-hop measurement with every observation type,
its body, certificate and controls), so the report's evidence section rebuilds and renders
real data. `probe report` runs as a subprocess (Python start-up included); its peak RSS is
the child's ru_maxrss. As a floor measured in the same run, `probe results --run all --json`
streams every final verdict of the same database to /dev/null.

Touches no network. The figures depend on the machine's load: say what else was running.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out"
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "unit"))


def _real_observations(db: Path, limit: int) -> int:
    """Give the non-ok latest measurements real observations; return how many."""
    import sqlite3
    import tempfile

    from store_samples import sample_measurement, sample_verdict  # type: ignore[import-not-found]

    from probe.store import Store

    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp) / "sample.db"
        with Store.open(scratch) as s:
            vid = s.vantage("sample")
            run = s.start_run(vid, [], {})
            s.write(run, vid, [(sample_measurement(0), sample_verdict())])
            s.finish_run(run, "complete")
        src = sqlite3.connect(scratch)
        obs = src.execute("SELECT data FROM observations").fetchone()[0]
        bodies = src.execute("SELECT * FROM http_bodies").fetchall()
        certs = src.execute("SELECT * FROM certificates").fetchall()
        controls = src.execute("SELECT hop, failure, dns_failure, dns_addrs, http_failure, "
                               "http_status, http_body_length, http_title, http_transfer "
                               "FROM controls").fetchall()
        src.close()
    dst = sqlite3.connect(db)
    ids = [r[0] for r in dst.execute(
        "SELECT l.measurement_id FROM latest l JOIN measurements m ON m.id = l.measurement_id "
        "WHERE m.verdict != 'ok' LIMIT ?", (limit,))]
    with dst:
        dst.executemany(f"INSERT OR IGNORE INTO http_bodies VALUES ({','.join('?' * len(bodies[0]))})",
                        bodies)
        dst.executemany(f"INSERT OR IGNORE INTO certificates VALUES ({','.join('?' * len(certs[0]))})",
                        certs)
        dst.executemany("UPDATE observations SET data = ? WHERE measurement_id = ?",
                        [(obs, i) for i in ids])
        dst.executemany(
            "INSERT INTO controls (measurement_id, hop, failure, dns_failure, dns_addrs, "
            "http_failure, http_status, http_body_length, http_title, http_transfer) "
            "VALUES (?,?,?,?,?,?,?,?,?,?)",
            [(i, *c) for i in ids for c in controls])
    dst.close()
    return len(ids)


def _child(args: list[str], out: Any = subprocess.DEVNULL) -> dict[str, float]:
    """Run a child; its wall time and peak RSS (MiB, from wait4)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(args, stdout=out, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    err = proc.stderr.read().decode() if proc.stderr else ""
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{args[:4]} failed: {err}")
    return {"seconds": wall, "peak_rss_mib": usage.ru_maxrss / 1024, "cpu_s": usage.ru_utime + usage.ru_stime}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--vantages", type=int, default=10)
    ap.add_argument("--urls", type=int, default=1000, help="URLs per run (rounds = rows / (vantages x urls))")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--reuse", action="store_true", help="reuse bench/out/report-ROWS.db")
    args = ap.parse_args()

    from bench.bench_store import generate

    OUT.mkdir(parents=True, exist_ok=True)
    db = OUT / f"report-{args.rows}.db"
    result: dict[str, Any] = {"rows": args.rows, "vantages": args.vantages, "urls": args.urls,
                              "cpus": os.cpu_count(), "load_before": os.getloadavg()}
    if not (args.reuse and db.exists()):
        result["generate"] = generate(db, args.rows, args.vantages, args.urls, 1500)
        result["real_observations"] = _real_observations(db, 1_000_000)
    html = OUT / f"report-{args.rows}.html"
    probe = [sys.executable, "-m", "probe"]
    runs = [_child([*probe, "report", "--db", str(db), "--out", str(html)]) for _ in range(args.repeat)]
    floor = [_child([*probe, "results", "--db", str(db), "--run", "all", "--json"])
             for _ in range(args.repeat)]

    def med(xs: list[dict[str, float]], k: str) -> float:
        return statistics.median(x[k] for x in xs)

    result["report"] = {k: med(runs, k) for k in runs[0]}
    result["floor_results_json"] = {k: med(floor, k) for k in floor[0]}
    result["html_bytes"] = html.stat().st_size
    result["load_after"] = os.getloadavg()
    r, f = result["report"], result["floor_results_json"]
    print(f"probe report over {args.rows:,} measurements / {args.vantages} vantage points "
          f"(median of {args.repeat}):")
    print(f"  time {r['seconds']:.2f} s (cpu {r['cpu_s']:.2f} s), peak RSS {r['peak_rss_mib']:.0f} MiB, "
          f"HTML {result['html_bytes'] / 1e6:.2f} MB")
    print(f"  floor: probe results --run all --json: {f['seconds']:.2f} s, peak RSS "
          f"{f['peak_rss_mib']:.0f} MiB; report / floor time = {r['seconds'] / f['seconds']:.2f}")
    print(f"  load average before {result['load_before']}, after {result['load_after']}")
    stamp = time.strftime("%Y%m%d-%H%M%S")
    (OUT / f"report-{stamp}.json").write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
