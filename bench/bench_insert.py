"""Why the store writes with its own SQL (docs/design.md, "store"): insert styles side by side.

    .venv/bin/python bench/bench_insert.py              # 20,000 rows, batches of 64, 5 rounds
    .venv/bin/python bench/bench_insert.py --rows 5000

In one process, on one in-memory table shaped like ``measurements``, one transaction per
batch (as Store.write does), the CPU time per row of:

- ``executemany`` with positional tuples: Store.write's hot path (rows.flatten builds them);
- ``executemany`` with named placeholders and dicts: ``Store.insert_records``, used for the
  few rows of run bookkeeping, traces and endpoint results;
- sqlite-utils ``Table.insert_all`` with dicts (imported without pandas/numpy here, so the
  import cost is measured apart, below).

Then the cost of importing sqlite-utils in a fresh interpreter (CPU seconds, RSS growth,
threads), as ``probe run`` would pay it. Prints medians and ratios; touches no network.
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

COLUMNS = ("id", "run_id", "vantage_id", "url", "domain", "measured_at", "runtime", "attempt",
           "final", "verdict", "stage", "reasons", "classifier_version", "uid")  # fmt: skip

_IMPORT_COST = """
import os, sys, time
def rss_kb():
    with open("/proc/self/status") as fh:
        return next(int(line.split()[1]) for line in fh if line.startswith("VmRSS:"))
if sys.argv[1] == "without-pandas":
    sys.modules["pandas"] = None; sys.modules["numpy"] = None
import probe.store
rss0 = rss_kb()
t = time.process_time()
import sqlite_utils
cpu = time.process_time() - t
print(f"{cpu:.3f} {(rss_kb() - rss0) / 1024:.1f} {len(os.listdir('/proc/self/task'))}")
"""


def _table() -> sqlite3.Connection:
    conn = sqlite3.connect(":memory:", isolation_level=None)
    conn.execute("CREATE TABLE measurements (id INTEGER PRIMARY KEY, run_id INTEGER, "
                 "vantage_id INTEGER, url TEXT, domain TEXT, measured_at TEXT, runtime REAL, "
                 "attempt INTEGER, final INTEGER, verdict TEXT, stage TEXT, reasons TEXT, "
                 "classifier_version TEXT, uid TEXT UNIQUE)")  # fmt: skip
    return conn


def _rows(n: int) -> list[tuple[object, ...]]:
    return [(i, 1, 1, f"https://www{i}.example.org/", f"www{i}.example.org",
             "2026-12-01T00:00:00.000Z", 0.25, 1, 1, "ok", None, "[]", "2026.11.3",
             f"0193a0b2-0000-7000-8000-{i:012d}") for i in range(1, n + 1)]  # fmt: skip


def _timed(insert: Callable[[sqlite3.Connection, list[tuple[object, ...]]], None],
           rows: list[tuple[object, ...]], batch: int) -> float:
    """CPU microseconds per row for ``insert`` over ``rows`` in transactions of ``batch``."""
    conn = _table()
    cpu = time.process_time()
    for i in range(0, len(rows), batch):
        conn.execute("BEGIN IMMEDIATE")
        insert(conn, rows[i : i + batch])
        conn.execute("COMMIT")
    used = time.process_time() - cpu
    conn.close()
    return 1e6 * used / len(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=20_000)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()

    sys.modules["pandas"] = None  # type: ignore[assignment]  # sqlite-utils imports them if present:
    sys.modules["numpy"] = None  # type: ignore[assignment]  # their cost is measured apart below
    import sqlite_utils

    positional = (f"INSERT INTO measurements ({', '.join(COLUMNS)}) "
                  f"VALUES ({', '.join('?' * len(COLUMNS))})")  # fmt: skip
    named = (f"INSERT INTO measurements ({', '.join(COLUMNS)}) "
             f"VALUES ({', '.join(':' + c for c in COLUMNS)})")  # fmt: skip

    def tuples(conn: sqlite3.Connection, chunk: list[tuple[object, ...]]) -> None:
        conn.executemany(positional, chunk)

    def dicts(conn: sqlite3.Connection, chunk: list[tuple[object, ...]]) -> None:
        conn.executemany(named, [dict(zip(COLUMNS, r, strict=True)) for r in chunk])

    def insert_all(conn: sqlite3.Connection, chunk: list[tuple[object, ...]]) -> None:
        db = sqlite_utils.Database(conn, recursive_triggers=False, execute_plugins=False)
        db.table("measurements").insert_all(dict(zip(COLUMNS, r, strict=True)) for r in chunk)

    styles = {"executemany, tuples (Store.write)": tuples,
              "executemany, named dicts (insert_records)": dicts,
              "sqlite-utils insert_all": insert_all}  # fmt: skip
    rows = _rows(args.rows)
    times: dict[str, list[float]] = {name: [] for name in styles}
    for _ in range(args.rounds):  # interleaved, so that load on the machine hits every style
        for name, fn in styles.items():
            times[name].append(_timed(fn, rows, args.batch))
    base = statistics.median(times["executemany, tuples (Store.write)"])
    print(f"{args.rows:,} rows in batches of {args.batch}, median of {args.rounds} rounds "
          f"(CPU us per row, ratio to Store.write's style)")  # fmt: skip
    for name, values in times.items():
        med = statistics.median(values)
        print(f"  {name:44s} {med:7.2f} us  x{med / base:.2f}")
    print("importing sqlite-utils in a fresh interpreter (CPU s, RSS growth MB, threads after):")
    for mode in ("without-pandas", "as-installed"):
        out = subprocess.run([sys.executable, "-c", _IMPORT_COST, mode], capture_output=True,
                             text=True, check=True).stdout.split()  # fmt: skip
        print(f"  {mode:16s} {float(out[0]):.3f} s  +{float(out[1]):.1f} MB  {out[2]} threads")


if __name__ == "__main__":
    main()
