"""Research data at scale (issues 11 and 25): merge, re-merge, reads, exports, bytes, against a
plain-SQL anchor measured in the same run.

    .venv/bin/python bench/bench_research.py                     # 10 databases x 50k = 500k
    .venv/bin/python bench/bench_research.py --per-db 5000       # quicker
    .venv/bin/python bench/bench_research.py --reuse             # keep bench/out/research/ sources
    .venv/bin/python bench/bench_research.py --steps reads --reuse   # reads of the last merge only

1. One source database of ``--per-db`` realistic measurements (two hops, every observation
   type: DNS with replies, TCP, TLS with a chain, HTTP with a body, controls), written with
   ``Store.write``: 2 vantage points x 5 runs x (per-db / 10) URLs, verdicts from a realistic
   mix. Nine more sources are copies of it made distinct: new uids for every vantage point, run
   and measurement, other vantage point names, 5% of the verdicts changed. So the ten sources
   hold ``10 x per-db`` distinct measurements from 20 vantage points.
2. The anchor: the same rows copied by plain SQL (``ATTACH`` each source, ``INSERT INTO main.T
   SELECT ...`` every table, ids shifted past the output's) into a new database of probe's
   schema in WAL mode, as probe keeps its databases; and, for reference, the same with a
   rollback journal (``--anchors both``). Then ``probe merge`` of the ten into a new database
   (it checks every row first), and merged again (every source unchanged: skipped). Merge's
   speed is the anchor's wall time over merge's (>= 1.0: PASS); CPU is shown beside.
3. Reads of the merged database, each a subprocess, median of 3: ``results --verdict
   interference``, ``runs``, ``show URL``, ``compare``, ``report``, ``outages`` (all vantage
   points, and one). A command's cost is its CPU time minus the start-up's (``probe
   --version``, same run), against issue 25's targets; ``report`` and ``outages`` must cost in
   proportion to what they draw (one vantage point of 20: at most 3 x a twentieth of all).
4. ``probe export`` to Parquet (and OONI JSON lines with ``--steps ...,ooni``): time, peak RSS,
   RSS at a quarter, half and three quarters of the run (flat memory: three equal numbers).
5. Bytes per measurement of the merged database, by table (SQLite's dbstat).

Peak RSS is ``wait4``'s ``ru_maxrss`` of each subprocess. Prints a table and writes
bench/out/research-<timestamp>.json with the load average at the start and end of each step:
the development machine is shared, so wall times are upper bounds and CPU times are shown
beside them. Touches no network.
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


def anchor(out: Path, sources: list[Path], journal: str) -> None:
    """The plain-SQL copy of the same rows: ATTACH each source, INSERT ... SELECT every table in
    dependency order, integer ids shifted past the output's (as merge shifts them), into a new
    database of probe's schema; no check, no uid matching. Run as a subprocess (``--anchor``)."""
    import sqlite3

    from probe.store import Store

    _rm(out)
    Store.open(out).close()  # probe's schema, WAL
    conn = sqlite3.connect(out, isolation_level=None)
    conn.execute(f"PRAGMA journal_mode = {journal}")
    conn.execute("PRAGMA synchronous = NORMAL")
    skip = ("schema_migrations", "latest", "probe_meta", "merged_sources")
    tables = [r[0] for r in conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
        if r[0] not in skip]
    info = {}
    for t in tables:
        cols = [r[1] for r in conn.execute(f"PRAGMA table_info({t})")]
        pks = [r[1] for r in conn.execute(f"PRAGMA table_info({t})") if r[5]]
        refs = {r[3]: r[2] for r in conn.execute(f"PRAGMA foreign_key_list({t})")}
        info[t] = (cols, pks, refs)
    order: list[str] = []

    def visit(t: str) -> None:
        if t in order or t not in info:
            return
        for parent in info[t][2].values():
            if parent != t:
                visit(parent)
        order.append(t)

    for t in sorted(info):
        visit(t)
    for src in sources:
        conn.execute("ATTACH DATABASE ? AS src", (str(src),))
        conn.execute("BEGIN IMMEDIATE")
        offsets = {t: conn.execute(f"SELECT coalesce(max(id), 0) FROM main.{t}").fetchone()[0]
                   for t in order if info[t][1] == ["id"]}
        for t in order:
            cols, _, refs = info[t]
            exprs = [f"{c} + {offsets[t]}" if c == "id" and t in offsets
                     else f"{c} + {offsets[refs[c]]}" if c in refs and refs[c] in offsets else c
                     for c in cols]
            verb = "INSERT" if t in offsets or any(p in offsets for p in refs.values()) \
                else "INSERT OR IGNORE"  # content-addressed: bodies, certificates
            conn.execute(f"{verb} INTO main.{t} ({', '.join(cols)}) "
                         f"SELECT {', '.join(exprs)} FROM src.{t}")
        conn.execute("COMMIT")
        conn.execute("DETACH DATABASE src")
    if journal.upper() != "WAL":
        conn.execute("PRAGMA journal_mode = WAL")
    conn.close()


def bytes_per_measurement(db: Path) -> dict[str, Any]:
    """File size per measurement, and per table (its indexes included) from SQLite's dbstat."""
    import sqlite3

    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        n = conn.execute("SELECT count(*) FROM measurements").fetchone()[0]
        owners = {r[0]: r[1] for r in conn.execute(
            "SELECT name, tbl_name FROM sqlite_master WHERE type IN ('table', 'index')")}
        per: dict[str, int] = {}
        for name, size in conn.execute("SELECT name, sum(pgsize) FROM dbstat GROUP BY name"):
            table = owners.get(name, name)
            per[table] = per.get(table, 0) + size
    finally:
        conn.close()
    total = db.stat().st_size
    return {"measurements": n, "file_bytes": total, "bytes_per_measurement": round(total / max(n, 1)),
            "by_table": {t: round(b / max(n, 1)) for t, b in sorted(per.items(), key=lambda kv: -kv[1])
                         if b / max(n, 1) >= 1}}


def median_of(cmd: list[str], runs: int = 3) -> dict[str, Any]:
    """Median wall and CPU time of ``runs`` runs of ``cmd`` (subprocesses)."""
    load = [round(x, 2) for x in os.getloadavg()]
    got = [run_measured(cmd) for _ in range(runs)]
    return {"wall_s": statistics.median(c["wall_s"] for c in got),
            "cpu_s": statistics.median(c["cpu_s"] for c in got),
            "peak_rss_mb": max(c["peak_rss_mb"] for c in got), "load": load}


def reads(merged: Path, work: Path) -> dict[str, Any]:
    """Issue 25's reads of the merged database: median of 3 each, and the start-up they share."""
    import sqlite3

    conn = sqlite3.connect(f"file:{merged}?mode=ro", uri=True)
    vantages = [r[0] for r in conn.execute("SELECT name FROM vantage_points ORDER BY id")]
    conn.close()
    db = ["--db", str(merged)]
    # What report and outages cost whatever they draw (imports, the page's frame): the same
    # commands on a database of one vantage point and one empty run.
    from probe.store import Store

    empty = work / "empty.db"
    _rm(empty)
    with Store.open(empty) as store:
        store.finish_run(store.start_run(store.vantage(vantages[0]), [], {}), "complete")
    out: dict[str, Any] = {"vantage_points": len(vantages),
                           "startup": median_of([*PROBE, "--version"], 5)}
    commands = {
        "results": ["results", "--verdict", "interference", *db],
        "runs": ["runs", *db],
        "show": ["show", "http://site7.example.org/", *db],
        "compare": ["compare", *db],
        "report": ["report", *db, "--out", str(work / "report.html")],
        "report_one": ["report", *db, "--vantage", vantages[0], "--out", str(work / "one.html")],
        "outages": ["outages", *db],
        "outages_one": ["outages", "--vantage", vantages[0], *db],
        "report_empty": ["report", "--db", str(empty), "--out", str(work / "empty.html")],
        "outages_empty": ["outages", "--db", str(empty)],
    }
    for key, args in commands.items():
        out[key] = median_of([*PROBE, *args])
        print(key, out[key], flush=True)
    return out


# Targets. Issue 11: peak RSS of merge and exports, flat exports. Issue 25: merge at least as
# fast as the plain-SQL anchor, merging again <= 10 % of the first merge, and the reads (the
# command's own CPU, start-up excluded) within these bounds on the 500k bench.
PEAK_MB = 200.0
FLAT = 1.15  # RSS at three quarters of an export / RSS at a quarter: at most this
MERGE_SPEED = 1.0  # anchor wall / merge wall: at least this
REMERGE = 0.10  # merge again / merge (wall and CPU): at most this
READS_S = {"results": 0.2, "runs": 0.1, "show": 0.1, "compare": 0.5}
PROPORTIONAL = 3.0  # one vantage point of N costs at most this x (all / N)
# Issue 25's: the merged database's bytes per measurement (schema version 11's packed
# observations and trimmed flat tables; 8,909 at version 9).
BYTES_PER_MEASUREMENT = 3000


def verdict(report: dict[str, Any]) -> list[tuple[str, bool, str]]:
    """(target, met, figures) for every target measured in ``report``."""
    out: list[tuple[str, bool, str]] = []
    merge, again = report.get("merge"), report.get("merge_again")
    base = report.get("anchor_wal")
    if merge is not None and base is not None:
        speed = base["wall_s"] / merge["wall_s"]
        cpu = base["cpu_s"] / merge["cpu_s"]
        out.append((f"merge: >= {MERGE_SPEED:.1f}x the plain-SQL anchor's speed (WAL, wall)",
                    speed >= MERGE_SPEED,
                    f"{speed:.2f}x wall ({merge['wall_s']} s vs {base['wall_s']} s), {cpu:.2f}x CPU "
                    f"({merge['cpu_s']} s vs {base['cpu_s']} s), load {merge['load']}"))
        journal = report.get("anchor_journal")
        if journal is not None:
            out.append(("merge vs the anchor with a rollback journal (reference, no target)", True,
                        f"{journal['wall_s'] / merge['wall_s']:.2f}x wall, "
                        f"{journal['cpu_s'] / merge['cpu_s']:.2f}x CPU"))
    if merge is not None and again is not None:
        w, c = again["wall_s"] / merge["wall_s"], again["cpu_s"] / merge["cpu_s"]
        out.append((f"merge again (unchanged): <= {REMERGE:.0%} of the first merge",
                    w <= REMERGE and c <= REMERGE,
                    f"{w:.1%} wall ({again['wall_s']} s), {c:.1%} CPU ({again['cpu_s']} s)"))
    for key, what in (("merge", "merge"), ("merge_again", "merge again"),
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
    r = report.get("reads")
    if r is not None:
        start = r["startup"]["cpu_s"]

        def cost(key: str) -> float:
            return max(0.0, float(r[key]["cpu_s"]) - float(start))

        for key, bound in READS_S.items():
            out.append((f"{key}: <= {bound} s (CPU beyond start-up, median of 3)", cost(key) <= bound,
                        f"{cost(key):.3f} s ({r[key]['cpu_s']} s CPU, {r[key]['wall_s']} s wall, "
                        f"start-up {start} s, load {r[key]['load']})"))
        n = r["vantage_points"]
        for key in ("report", "outages"):
            fixed = cost(f"{key}_empty")  # what the command costs drawing nothing
            one, every = cost(f"{key}_one") - fixed, cost(key) - fixed
            out.append((f"{key}: one vantage point of {n} <= {PROPORTIONAL:g} x all / {n} "
                        "(beyond what drawing nothing costs)",
                        one <= PROPORTIONAL * every / n + 0.02,
                        f"one {one:.3f} s, all {every:.3f} s, nothing {fixed:.3f} s "
                        "(CPU beyond start-up)"))
    b = report.get("bytes")
    if b is not None:
        out.append((f"bytes per measurement (dbstat): <= {BYTES_PER_MEASUREMENT:,}",
                    b["bytes_per_measurement"] <= BYTES_PER_MEASUREMENT,
                    f"{b['bytes_per_measurement']:,} B: "
                    + ", ".join(f"{t} {v:,}" for t, v in list(b["by_table"].items())[:6])))
    return out


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--anchor":  # the anchor's own process
        journal, out, *srcs = sys.argv[2:]
        anchor(Path(out), [Path(x) for x in srcs], journal)
        return
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--per-db", type=int, default=50_000, help="measurements per source database")
    ap.add_argument("--dbs", type=int, default=10, help="source databases")
    ap.add_argument("--reuse", action="store_true", help="keep existing sources")
    ap.add_argument("--steps", default="merge,reads,parquet,bytes",
                    help="comma-separated steps (merge, reads, parquet, ooni, bytes); steps after "
                         "merge reuse WORK/all.db")
    ap.add_argument("--anchors", choices=("wal", "both"), default="both",
                    help="the plain-SQL anchor in WAL mode only, or also with a rollback journal")
    ap.add_argument("--work", type=Path, default=OUT / "research",
                    help="directory of the sources and outputs (default bench/out/research)")
    args = ap.parse_args()
    steps = set(args.steps.split(","))
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
        base = work / "anchor.db"
        report["anchor_wal"] = run_measured([sys.executable, __file__, "--anchor", "WAL", str(base),
                                             *map(str, sources)])  # fmt: skip
        print("anchor (WAL)", report["anchor_wal"], flush=True)
        _rm(merged)
        report["merge"] = run_measured([*PROBE, "merge", *map(str, sources), "--into", str(merged)])
        report["merge"]["measurements"] = args.per_db * args.dbs
        report["merge"]["db_mb"] = _size(merged)
        report["merge"]["bytes_per_measurement"] = round(
            merged.stat().st_size / report["merge"]["measurements"])
        print("merge", report["merge"], flush=True)
        if args.anchors == "both":
            report["anchor_journal"] = run_measured(
                [sys.executable, __file__, "--anchor", "DELETE", str(base), *map(str, sources)])
            print("anchor (rollback journal)", report["anchor_journal"], flush=True)
        _rm(base)
        report["merge_again"] = run_measured(
            [*PROBE, "merge", *map(str, sources), "--into", str(merged)])
        print("merge again", report["merge_again"], flush=True)

    def export(fmt: str, out: Path) -> None:
        key = f"export_{fmt}"
        if out.is_dir():
            shutil.rmtree(out)  # the bench's own earlier export
        report[key] = run_measured([*PROBE, "export", "--db", str(merged), "--format", fmt,
                                    "-o", str(out), "--all-attempts"])
        report[key]["mb"] = _size(out)
        print(fmt, report[key], flush=True)

    if "reads" in steps:
        report["reads"] = reads(merged, work)
    if "parquet" in steps:
        export("parquet", work / "all-parquet")
    if "ooni" in steps:
        export("ooni", work / "all.ooni.jsonl")
        (work / "all.ooni.jsonl").unlink()  # several GB
    if "bytes" in steps:
        report["bytes"] = bytes_per_measurement(merged)
        print("bytes", report["bytes"], flush=True)
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
