"""Storage benchmark (issue 4): query times over a large synthetic database, writer throughput.

    .venv/bin/python bench/bench_store.py                  # 1,000,000 measurements, 10 vantage points
    .venv/bin/python bench/bench_store.py --rows 100000    # quicker
    .venv/bin/python bench/bench_store.py --reuse          # keep bench/out/store-N.db between runs

The synthetic database is filled directly with executemany (not through Store.write, which is
timed separately) in the real schema, so the latest-verdict triggers and indexes do their real
work. Rows are 10 vantage points x R rounds x U URLs, each round one run per vantage point,
verdicts drawn from a realistic mix; observations are a packed placeholder of --obs-bytes bytes.
Timed (median of --repeat, each on a fresh connection or process):

- the ``latest_verdicts`` view, every row (one per vantage point and URL);
- ``latest_verdicts`` for one vantage point, and blocked counts per vantage point;
- ``probe results --run latest`` and ``--json``, as subprocesses (Python start-up included);
- ``Store.write`` throughput for realistic two-hop measurements (every observation type).

Prints a table and writes bench/out/store-<timestamp>.json. Loopback-free: touches no network.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out"
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "unit"))  # store_samples: hand-built Measurements

VERDICT_MIX = (("ok", 0.86), ("blocked", 0.04), ("reset", 0.03), ("hijacked", 0.02),
               ("down", 0.03), ("inconclusive", 0.02))
CATEGORIES = ("NEWS", "HUMR", "POLR", "LGBT", "REL", "ANON", "GRP", "COMT", "MMED", "SRCH")
REASONS = {"ok": "[]", "blocked": '["http/blockpage:ooni.ru_1"]', "reset": '["tls/reset:control-ok"]',
           "hijacked": '["dns/bogon:10.10.34.34"]', "down": '["tcp/timeout:control-timeout"]',
           "inconclusive": '["control/failed:connection_refused"]'}
STAGES = {"ok": None, "blocked": "http", "reset": "tls", "hijacked": "dns", "down": "tcp",
          "inconclusive": None}


def _iso(t: float) -> str:
    from probe.store.rows import iso

    return iso(t)


def generate(path: Path, rows: int, vantages: int, urls: int, obs_bytes: int) -> dict[str, float]:
    """Fill a fresh database with ``rows`` measurements; return timing figures."""
    from probe.store import Store
    from probe.store.uid import uuid7

    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    t0 = time.perf_counter()
    store = Store.open(path)
    c = store.conn
    rng = random.Random(4)
    names = [f"vp{v:02d}" for v in range(vantages)]
    vids = [store.vantage(n, asn=64496 + i, country="ZZ") for i, n in enumerate(names)]
    rounds = max(1, rows // (vantages * urls))
    verdicts = [v for v, _ in VERDICT_MIX]
    weights = [w for _, w in VERDICT_MIX]
    from probe.store.observations import pack

    # Packed as the store packs observations (schema 11); the filler is incompressible, so the
    # row keeps about --obs-bytes bytes.
    placeholder = pack({"hops": [], "note": os.urandom(max(0, obs_bytes - 30) // 2).hex()})
    url_list = [f"https://www{i}.example{i % 997}.org/" for i in range(urls)]
    t_start = 1_780_000_000.0
    mid = 0
    written = 0
    for r in range(rounds):
        for vid in vids:
            if written >= rows:
                break
            run_id = store.start_run(vid, ["synthetic.csv"], {"round": r})
            base = t_start + (r * vantages + vid) * 3600.0
            picks = rng.choices(verdicts, weights, k=urls)
            batch = []
            for i, url in enumerate(url_list[: rows - written]):
                mid += 1
                v = picks[i]
                t = base + i * 0.1
                batch.append((mid, run_id, vid, url, url, url[8:-1], CATEGORIES[i % 10], "", _iso(t),
                              t, 0.4, 0, 1, None, 1, url, v, STAGES[v], 0 if STAGES[v] else None,
                              REASONS[v], "synthetic-1", uuid7(round(t * 1000))))
            c.execute("BEGIN IMMEDIATE")
            c.executemany(
                "INSERT INTO measurements (id, run_id, vantage_id, url, original_url, domain, "
                "category, source, measured_at, started, runtime, attempt, final, failure, n_hops, "
                "final_url, verdict, stage, hop, reasons, classifier_version, uid) "
                "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                batch,
            )
            c.executemany("INSERT INTO observations (measurement_id, data) VALUES (?, ?)",
                          [(row[0], placeholder) for row in batch])
            c.execute("COMMIT")
            written += len(batch)
            store.finish_run(run_id, "complete")
    c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    store.close()
    elapsed = time.perf_counter() - t0
    return {"rows": written, "seconds": elapsed, "rows_per_s": written / elapsed,
            "db_mb": path.stat().st_size / 1e6}


def _median(fn: Callable[[], object], repeat: int) -> tuple[float, float, object]:
    times, result = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return times[0], statistics.median(times), result


def time_queries(path: Path, repeat: int) -> dict[str, dict[str, float]]:
    """Latest-verdict queries, each on a fresh connection (SQLite page cache cold)."""
    from probe.store import Store

    def all_latest() -> int:
        with Store.open(path, create=False) as s:
            return len(s.conn.execute("SELECT * FROM latest_verdicts").fetchall())

    def one_vantage() -> int:
        with Store.open(path, create=False) as s:
            return len(s.conn.execute(
                "SELECT * FROM latest_verdicts WHERE vantage = 'vp03'").fetchall())

    def blocked_counts() -> int:
        with Store.open(path, create=False) as s:
            return len(s.conn.execute(
                "SELECT vantage, verdict, count(*) FROM latest_verdicts "
                "WHERE verdict != 'ok' GROUP BY vantage, verdict").fetchall())

    def api_latest() -> int:
        with Store.open(path, create=False) as s:
            return sum(1 for _ in s.latest_verdicts())

    def sql(query: str) -> Callable[[], int]:
        def run() -> int:
            with Store.open(path, create=False) as s:
                return len(s.conn.execute(query).fetchall())

        return run

    out = {}
    for name, fn in (
        ("latest_verdicts: all rows (SQL)", all_latest),
        ("latest_verdicts: all rows (Store API, dicts)", api_latest),
        ("latest_verdicts: one vantage point", one_vantage),
        ("latest_verdicts: non-ok counts per vantage", blocked_counts),
        ("latest_verdicts: two vantage points compared", sql(
            "SELECT a.url, a.verdict, b.verdict FROM latest_verdicts AS a "
            "JOIN latest_verdicts AS b ON b.url = a.url AND b.vantage = 'vp01' "
            "WHERE a.vantage = 'vp00' AND a.verdict != b.verdict")),
        ("blocked view: by category", sql(
            "SELECT category, count(*) FROM blocked GROUP BY category")),
        ("latest reasons (json_each)", sql(
            "SELECT r.value, count(*) FROM latest_verdicts AS lv, json_each(lv.reasons) AS r "
            "GROUP BY r.value")),
        ("runs over time", sql(
            "SELECT r.id, v.name, r.started_at, r.status, json_extract(r.counts, '$.blocked') "
            "FROM runs r JOIN vantage_points v ON v.id = r.vantage_id ORDER BY r.started_at")),
        ("verdict share per day and vantage (full scan)", sql(
            "SELECT date(m.measured_at) AS day, m.vantage_id, count(*), "
            "sum(m.verdict IN ('blocked', 'reset', 'hijacked')) FROM measurements m "
            "WHERE m.final = 1 GROUP BY day, m.vantage_id")),
    ):
        first, median, n = _median(fn, repeat)
        out[name] = {"first_s": first, "median_s": median, "rows": n}
    return out


def time_cli(path: Path, repeat: int) -> dict[str, dict[str, float]]:
    """`probe results --run latest` (table and JSON) in a subprocess, output to a pipe."""
    out = {}
    for name, extra in (("probe results --run latest", []),
                        ("probe results --run latest --json", ["--json"]),
                        ("probe results --run latest --verdict blocked", ["--verdict", "blocked"])):
        cmd = [sys.executable, "-m", "probe", "results", "--db", str(path), "--run", "latest", *extra]

        def run(cmd: list[str] = cmd) -> int:
            p = subprocess.run(cmd, capture_output=True, check=True, cwd=ROOT)
            return p.stdout.count(b"\n")

        first, median, lines = _median(run, repeat)
        out[name] = {"first_s": first, "median_s": median, "lines": lines}
    return out


def time_writes(path: Path, n: int, batch: int) -> dict[str, float]:
    """Store.write throughput with realistic two-hop measurements, batches of ``batch``."""
    from store_samples import sample_measurement, sample_verdict

    from probe.store import Store

    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    half = n // 2  # two vantage points measuring the same URLs, for the documented queries
    items = [(sample_measurement(i % half, started=1_790_000_000.0 + i), sample_verdict())
             for i in range(n)]
    store = Store.open(path)
    runs = []
    for name in ("home", "vps"):
        vid = store.vantage(name)
        runs.append((store.start_run(vid, [], {}), vid))
    cpu0 = time.process_time()
    t0 = time.perf_counter()
    for i in range(0, n, batch):
        run_id, vid = runs[0] if i < half else runs[1]
        store.write(run_id, vid, items[i : min(i + batch, half if i < half else n)])
    wall = time.perf_counter() - t0
    cpu = time.process_time() - cpu0
    for run_id, _ in runs:
        store.finish_run(run_id, "complete")
    store.close()
    return {"measurements": n, "batch": batch, "seconds": wall, "per_s": n / wall,
            "cpu_ms_per_measurement": 1000 * cpu / n,
            "db_kb_per_measurement": path.stat().st_size / 1024 / n}


def time_doc_queries(path: Path, repeat: int) -> dict[str, dict[str, float]]:
    """Every example query of docs/schema.md, over the (realistic) Store.write database."""
    import re

    from probe.store import Store

    text = (ROOT / "docs" / "schema.md").read_text()
    out = {}
    for query in re.findall(r"```sql\n(.*?)```", text, re.S):
        def run(query: str = query) -> int:
            with Store.open(path, create=False) as s:
                return len(s.conn.execute(query).fetchall())

        first, median, n = _median(run, repeat)
        title = " ".join(query.split())[:60]
        out[title] = {"first_s": first, "median_s": median, "rows": n}
    return out


def time_reclassify(path: Path) -> dict[str, float]:
    """``reclassify`` with the real classifier over the Store.write database."""
    from probe.run.reclassify import reclassify
    from probe.store import Store

    with Store.open(path, create=False) as store:
        cpu0 = time.process_time()
        t0 = time.perf_counter()
        report = reclassify(store)
        wall = time.perf_counter() - t0
        cpu = time.process_time() - cpu0
    return {"measurements": report.judged, "changed": report.changed, "seconds": wall,
            "per_s": report.judged / wall, "cpu_ms_per_measurement": 1000 * cpu / report.judged}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=float, default=1e6, help="synthetic measurements (default 1e6)")
    ap.add_argument("--vantages", type=int, default=10)
    ap.add_argument("--urls", type=int, default=10_000, help="URLs per run")
    ap.add_argument("--obs-bytes", type=int, default=1500, help="placeholder observations JSON size")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--writes", type=int, default=3000,
                    help="realistic measurements written with Store.write (timed, then queried)")
    ap.add_argument("--batch", type=int, default=64, help="Store.write batch size")
    ap.add_argument("--reuse", action="store_true", help="reuse an existing synthetic database")
    args = ap.parse_args()
    rows = int(args.rows)
    OUT.mkdir(parents=True, exist_ok=True)
    db = OUT / f"store-{rows}.db"

    report: dict[str, object] = {
        "params": {**vars(args), "rows": rows}, "cores": os.cpu_count(),
        "sqlite": __import__("sqlite3").sqlite_version, "python": sys.version.split()[0],
    }
    if args.reuse and db.exists():
        report["generate"] = {"reused": str(db)}
    else:
        print(f"generating {rows:,} measurements in {db} ...", flush=True)
        report["generate"] = generate(db, rows, args.vantages, args.urls, args.obs_bytes)
    report["queries"] = time_queries(db, args.repeat)
    report["cli"] = time_cli(db, args.repeat)
    report["write"] = time_writes(OUT / "store-write.db", args.writes, args.batch)
    report["doc_queries"] = time_doc_queries(OUT / "store-write.db", args.repeat)
    try:
        report["reclassify"] = time_reclassify(OUT / "store-write.db")
    except ImportError as exc:  # the classifier is optional for this benchmark
        report["reclassify"] = {"skipped": str(exc)}
    report["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    g = report["generate"]
    if "rows" in g:
        print(f"\nsynthetic DB: {g['rows']:,} rows, {g['db_mb']:.0f} MB, generated in "
              f"{g['seconds']:.1f} s ({g['rows_per_s']:,.0f} rows/s)")
    print(f"\n{'query':<50} {'first s':>8} {'median s':>9} {'rows':>8}")
    for name, q in {**report["queries"], **report["cli"]}.items():  # type: ignore[dict-item]
        n = q.get("rows", q.get("lines"))
        print(f"{name:<50} {q['first_s']:>8.3f} {q['median_s']:>9.3f} {n:>8,}")
    w = report["write"]
    print(f"\nStore.write: {w['per_s']:,.0f} measurements/s (batches of {w['batch']}), "  # type: ignore[index]
          f"{w['cpu_ms_per_measurement']:.2f} CPU ms/measurement, "  # type: ignore[index]
          f"{w['db_kb_per_measurement']:.1f} KB/measurement on disk")  # type: ignore[index]
    print(f"\ndocs/schema.md queries over {args.writes:,} realistic measurements "
          f"(Store.write database)")
    for name, q in report["doc_queries"].items():  # type: ignore[attr-defined]
        print(f"{name:<62} {q['median_s']:>8.3f} s {q['rows']:>8,}")
    rc = report["reclassify"]
    if "per_s" in rc:  # type: ignore[operator]
        print(f"reclassify: {rc['per_s']:,.0f} measurements/s, "  # type: ignore[index]
              f"{rc['cpu_ms_per_measurement']:.2f} CPU ms/measurement (rebuild + classify)")  # type: ignore[index]
    out = OUT / f"store-{time.strftime('%Y%m%dT%H%M%S')}.json"
    out.write_text(json.dumps(report, indent=2))
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
