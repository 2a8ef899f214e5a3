"""Many vantage points (issue 11): merge, export and compare at scale, time and peak RSS.

    .venv/bin/python bench/bench_research.py                     # 10 databases x 100k measurements
    .venv/bin/python bench/bench_research.py --per-db 20000      # quicker
    .venv/bin/python bench/bench_research.py --reuse             # keep bench/out/research/ sources

1. One source database of ``--per-db`` realistic measurements (two hops, every observation
   type: DNS with replies, TCP, TLS with a chain, HTTP with a body, controls), written with
   ``Store.write``: 2 vantage points x 5 runs x (per-db / 10) URLs, verdicts from a realistic
   mix. Nine more sources are copies of it made distinct: new uids for every vantage point, run
   and measurement, other vantage point names, 5% of the verdicts changed. So the ten sources
   hold ``10 x per-db`` distinct measurements from 20 vantage points.
2. ``probe merge`` of the ten into one database (a subprocess: time, peak RSS), then merged
   again (idempotent: nothing added; time).
3. ``probe export`` of the merged database to Parquet and to OONI JSON lines (subprocesses:
   time, peak RSS, RSS at a quarter, half and three quarters of the run to show it flat,
   output size).
4. ``probe compare`` over the merged database (20 vantage points), table + summary and CSV,
   median of 3 (wall and CPU time; Python start-up included).

Peak RSS is ``wait4``'s ``ru_maxrss`` of each subprocess. Prints a table and writes
bench/out/research-<timestamp>.json, with the machine's load average at the start and end (the
development machine is shared: wall times are upper bounds, CPU times closer to an idle
machine's wall time). Touches no network.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out"
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "unit"))  # store_samples: hand-built Measurements

from bench.children import run_child  # noqa: E402

PROBE = [sys.executable, "-m", "probe"]
VERDICTS = (("ok", None, 0.86), ("blocked", "http", 0.04), ("reset", "tls", 0.03),
            ("hijacked", "dns", 0.02), ("down", "tcp", 0.03), ("inconclusive", None, 0.02))
CATEGORIES = ("NEWS", "HUMR", "POLR", "LGBT", "REL", "ANON", "GRP", "COMT", "MMED", "SRCH")


def _rm(path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def make_source(path: Path, per_db: int) -> dict[str, float]:
    """The first source: ``per_db`` realistic measurements through Store.write."""
    from store_samples import BLOCKPAGE, sample_measurement

    from probe.core.model import Verdict
    from probe.store import Store

    _rm(path)
    rng = random.Random(11)
    urls = max(1, per_db // 10)
    names = [(v, s) for v, s, _ in VERDICTS]
    weights = [w for _, _, w in VERDICTS]
    t0 = time.perf_counter()
    n = 0
    with Store.open(path) as store:
        for vp in ("vpA", "vpB"):
            vid = store.vantage(vp, asn=64496, country="ZZ")
            for r in range(5):
                run = store.start_run(vid, ["synthetic.csv"], {"round": r})
                base = 1_790_000_000.0 + r * 86400 + (3600 if vp == "vpB" else 0)
                batch = []
                for i in range(urls):
                    m = sample_measurement(i, started=base + i * 0.01, body=BLOCKPAGE)
                    m = replace(m, target=replace(m.target, category_code=CATEGORIES[i % 10]))
                    verdict, stage = rng.choices(names, weights)[0]
                    v = Verdict(verdict, stage, 0 if stage else None,
                                (f"{stage}/{verdict}",) if stage else (), "bench-1")
                    batch.append((m, v))
                    if len(batch) == 500:
                        store.write(run, vid, batch)
                        n += len(batch)
                        batch = []
                if batch:
                    store.write(run, vid, batch)
                    n += len(batch)
                store.finish_run(run, "complete")
        store.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    elapsed = time.perf_counter() - t0
    return {"measurements": n, "seconds": round(elapsed, 1), "per_s": round(n / elapsed),
            "mb": round(path.stat().st_size / 1e6, 1)}


def copy_source(base: Path, path: Path, k: int) -> None:
    """A copy of ``base`` that is another pair of vantage points: new uids, names, 5% verdicts."""
    import sqlite3

    from probe.store.uid import sql_uuid7

    _rm(path)
    shutil.copy(base, path)
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("BEGIN")
    conn.execute(f"UPDATE vantage_points SET name = name || '-{k:02d}', "
                 f"uid = {sql_uuid7('1790000000000')}")
    conn.execute(f"UPDATE runs SET uid = {sql_uuid7('1790000000000')}")
    conn.execute(f"UPDATE measurements SET uid = {sql_uuid7('CAST(started * 1000 AS INTEGER)')}")
    # Another database: its own global id (what exports cite and merge records as a source).
    conn.execute(f"UPDATE probe_meta SET value = {sql_uuid7('1790000000000')} WHERE key = 'uid'")
    conn.execute("UPDATE measurements SET verdict = 'reset', stage = 'tcp' "
                 "WHERE abs(random()) % 20 = 0")
    conn.execute("COMMIT")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()


def run_measured(cmd: list[str]) -> dict[str, Any]:
    """Run ``cmd``: wall time, CPU time, peak RSS (wait4) and RSS sampled every 0.25 s."""
    load = [round(x, 2) for x in os.getloadavg()]
    r = run_child(cmd, timeout=4 * 3600, cwd=ROOT)
    if r.returncode != 0 or r.timed_out:
        raise SystemExit(f"{' '.join(cmd)} failed ({r.returncode}): {r.stderr}")

    def rss_at(frac: float) -> float | None:
        return next((mb for t, mb in r.rss_series if t >= frac * r.wall_s), None)

    return {"wall_s": round(r.wall_s, 2), "cpu_s": round(r.cpu_s, 2),
            "peak_rss_mb": round(r.maxrss_mb, 1),
            "rss_mb_at_25_50_75": [rss_at(0.25), rss_at(0.5), rss_at(0.75)], "stderr": r.stderr[-300:],
            "load": load}  # fmt: skip


def _size(path: Path) -> float:
    if path.is_dir():
        return round(sum(p.stat().st_size for p in path.iterdir()) / 1e6, 1)
    return round(path.stat().st_size / 1e6, 1)


# Issue 11's targets: peak RSS of merge and exports, flat exports, compare's wall time.
PEAK_MB = 200.0
COMPARE_S = 2.0
FLAT = 1.15  # RSS at three quarters of an export / RSS at a quarter: at most this
# Issue 25's: the merged database's bytes per measurement (schema version 11's packed
# observations and trimmed flat tables; 8,909 at version 9).
BYTES_PER_MEASUREMENT = 3000


def verdict(report: dict[str, Any]) -> list[tuple[str, bool, str]]:
    """(target, met, figures) for every target measured in ``report``."""
    out: list[tuple[str, bool, str]] = []
    for key, what in (("merge", "merge"), ("merge_again", "merge again (idempotent)"),
                      ("export_parquet", "export parquet"), ("export_ooni", "export ooni")):
        r = report.get(key)
        if r is None:
            continue
        out.append((f"{what}: peak RSS <= {PEAK_MB:.0f} MB", r["peak_rss_mb"] <= PEAK_MB,
                    f"{r['peak_rss_mb']} MB, {r['wall_s']} s wall, {r['cpu_s']} s CPU, "
                    f"load {r['load']}"))
        q = r["rss_mb_at_25_50_75"]
        if key.startswith("export") and None not in q:
            out.append((f"{what}: flat (RSS at 75% <= {FLAT} x RSS at 25%)",
                        q[2] <= FLAT * q[0], f"{q[0]} / {q[1]} / {q[2]} MB"))
    m = report.get("merge")
    if m is not None and "bytes_per_measurement" in m:
        out.append((f"merged database: <= {BYTES_PER_MEASUREMENT:,} bytes per measurement",
                    m["bytes_per_measurement"] <= BYTES_PER_MEASUREMENT,
                    f"{m['bytes_per_measurement']:,} bytes ({m['db_mb']} MB, "
                    f"{m['measurements']:,} measurements)"))
    for key in ("compare_table", "compare_csv"):
        r = report.get(key)
        if r is not None:
            out.append((f"{key.replace('_', ' ')}: wall <= {COMPARE_S:.0f} s (median of 3)",
                        r["wall_s_median"] <= COMPARE_S,
                        f"{r['wall_s_median']} s wall, {r['cpu_s_median']} s CPU, "
                        f"load {r['load']}"))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--per-db", type=int, default=100_000, help="measurements per source database")
    ap.add_argument("--dbs", type=int, default=10, help="source databases")
    ap.add_argument("--reuse", action="store_true", help="keep existing sources")
    ap.add_argument("--skip-ooni", action="store_true", help="skip the (slow) OONI export")
    ap.add_argument("--steps", default="merge,parquet,compare,ooni",
                    help="comma-separated steps (merge, parquet, compare, ooni); steps after "
                         "merge reuse bench/out/research/all.db")
    ap.add_argument("--work", type=Path, default=OUT / "research",
                    help="directory of the sources and outputs (default bench/out/research)")
    args = ap.parse_args()
    steps = set(args.steps.split(","))
    if args.skip_ooni:
        steps.discard("ooni")
    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {"load_start": os.getloadavg(), "per_db": args.per_db, "dbs": args.dbs,
                              "cpus": os.cpu_count(), "steps": sorted(steps)}
    sources = [work / f"src-{k:02d}.db" for k in range(args.dbs)]
    if "merge" in steps and not (args.reuse and all(p.exists() for p in sources)):
        report["make_source"] = make_source(sources[0], args.per_db)
        print("source", report["make_source"], flush=True)
        t0 = time.perf_counter()
        for k, path in enumerate(sources[1:], start=1):
            copy_source(sources[0], path, k)
        report["copies_s"] = round(time.perf_counter() - t0, 1)
    merged = work / "all.db"
    if "merge" in steps:
        _rm(merged)
        report["merge"] = run_measured([*PROBE, "merge", *map(str, sources), "--into", str(merged)])
        report["merge"]["measurements"] = args.per_db * args.dbs
        report["merge"]["db_mb"] = _size(merged)
        report["merge"]["bytes_per_measurement"] = round(
            merged.stat().st_size / report["merge"]["measurements"])
        print("merge", report["merge"], flush=True)
        report["merge_again"] = run_measured(
            [*PROBE, "merge", *map(str, sources), "--into", str(merged)])
        print("merge again", report["merge_again"], flush=True)

    def export(fmt: str, out: Path) -> None:
        key = f"export_{fmt}"
        report[key] = run_measured([*PROBE, "export", "--db", str(merged), "--format", fmt,
                                    "-o", str(out), "--all-attempts"])
        report[key]["mb"] = _size(out)
        print(fmt, report[key], flush=True)

    if "parquet" in steps:
        export("parquet", work / "all-parquet")

    if "compare" in steps:
        for key, extra in (("compare_table", []), ("compare_csv", ["--csv"])):
            load = os.getloadavg()
            runs = [run_measured([*PROBE, "compare", "--db", str(merged), *extra])
                    for _ in range(3)]
            report[key] = {"wall_s_median": statistics.median(c["wall_s"] for c in runs),
                           "cpu_s_median": statistics.median(c["cpu_s"] for c in runs),
                           "peak_rss_mb": max(c["peak_rss_mb"] for c in runs),
                           "load": [round(x, 2) for x in load]}
            print(key, report[key], flush=True)

    if "ooni" in steps:
        export("ooni", work / "all.ooni.jsonl")
        (work / "all.ooni.jsonl").unlink()  # 1M measurements are several GB
    report["load_end"] = os.getloadavg()
    report["targets"] = [{"target": t, "pass": ok, "figures": f} for t, ok, f in verdict(report)]
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    OUT.mkdir(parents=True, exist_ok=True)  # --work may be elsewhere
    (OUT / f"research-{stamp}.json").write_text(json.dumps(report, indent=1))
    print(json.dumps(report, indent=1))
    for target, ok, figures in verdict(report):
        print(f"{'PASS' if ok else 'FAIL'}  {target}: {figures}")


if __name__ == "__main__":
    main()
