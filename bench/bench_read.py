"""Why the store's hot reads use sqlite3, not sqlite-utils (docs/bench.md): read styles side by side.

    .venv/bin/python bench/bench_read.py               # 200,000 rows, 5 rounds
    .venv/bin/python bench/bench_read.py --rows 50000

In one process, on one in-memory table shaped like what `probe compare` reads (the latest
verdict of every URL at every vantage point: 20 vantage points x 10,000 URLs), the CPU time per
row of reading every row and every one of its six columns:

- positional tuples, unpacked (how compare read before its rows were named);
- ``typed_rows``: NamedTuples checked against the query's column names, read by attribute (how
  the store's query modules read now: probe/store/connection.py);
- ``sqlite3.Row``, read by column name (the store's ``named_rows``);
- dicts keyed by column name (the store's ``dict_rows``: ``probe results --json``, ``runs``);
- sqlite-utils ``Database.query`` (dicts) and ``Table.rows_where`` (dicts), on the same connection
  (imported without pandas/numpy here: bench/bench_insert.py measures that import apart).

Rounds are interleaved, so load on the machine hits every style alike; prints medians and the
ratio to positional tuples. Touches no network.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import sqlite3
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from probe.store.connection import dict_rows, named_rows, typed_rows

SQL = "SELECT vantage_id, url, category, verdict, stage, measured_at FROM latest"


class Cell(NamedTuple):
    vantage_id: int
    url: str
    category: str
    verdict: str
    stage: str | None
    measured_at: str


def _table(rows: int) -> sqlite3.Connection:
    conn = sqlite3.connect(":memory:", isolation_level=None)
    conn.execute("CREATE TABLE latest (vantage_id INTEGER NOT NULL, url TEXT NOT NULL, "
                 "category TEXT, verdict TEXT NOT NULL, stage TEXT, measured_at TEXT NOT NULL, "
                 "PRIMARY KEY (vantage_id, url)) WITHOUT ROWID")  # fmt: skip
    verdicts = (("ok", None),) * 17 + (("blocked", "http"), ("reset", "tls"), ("hijacked", "dns"))
    conn.executemany("INSERT INTO latest VALUES (?,?,?,?,?,?)", [
        (i % 20, f"https://www{i // 20}.example{i % 997}.org/", "NEWS", *verdicts[i % 20],
         f"2026-12-01T00:{i % 60:02d}:00.000Z") for i in range(rows)])  # fmt: skip
    return conn


def _timed(read: Callable[[sqlite3.Connection], int], conn: sqlite3.Connection, rows: int) -> float:
    """CPU microseconds per row for ``read`` (which must see every row)."""
    cpu = time.process_time()
    seen = read(conn)
    used = time.process_time() - cpu
    assert seen == rows, (seen, rows)
    return 1e6 * used / rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=200_000)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()

    sys.modules["pandas"] = None  # type: ignore[assignment]  # sqlite-utils imports them if present:
    sys.modules["numpy"] = None  # type: ignore[assignment]  # bench_insert.py measures that apart
    import sqlite_utils

    def tuples(conn: sqlite3.Connection) -> int:
        n = 0
        for _vid, _url, _category, _verdict, _stage, _at in conn.execute(SQL):
            n += 1
        return n

    def typed(conn: sqlite3.Connection) -> int:
        n = 0
        for r in typed_rows(conn, Cell, SQL):
            r.vantage_id, r.url, r.category, r.verdict, r.stage, r.measured_at  # noqa: B018
            n += 1
        return n

    def row_by_name(conn: sqlite3.Connection) -> int:
        n = 0
        for r in named_rows(conn, SQL):
            r["vantage_id"], r["url"], r["category"], r["verdict"], r["stage"], r["measured_at"]
            n += 1
        return n

    def dicts(conn: sqlite3.Connection) -> int:
        n = 0
        for r in dict_rows(conn.execute(SQL)):
            r["vantage_id"], r["url"], r["category"], r["verdict"], r["stage"], r["measured_at"]
            n += 1
        return n

    def su_query(conn: sqlite3.Connection) -> int:
        db = sqlite_utils.Database(conn, recursive_triggers=False, execute_plugins=False)
        n = 0
        for r in db.query(SQL):
            r["vantage_id"], r["url"], r["category"], r["verdict"], r["stage"], r["measured_at"]
            n += 1
        return n

    def su_rows_where(conn: sqlite3.Connection) -> int:
        db = sqlite_utils.Database(conn, recursive_triggers=False, execute_plugins=False)
        n = 0
        for r in db.table("latest").rows_where(select=SQL.split(" FROM ")[0].removeprefix("SELECT ")):
            r["vantage_id"], r["url"], r["category"], r["verdict"], r["stage"], r["measured_at"]
            n += 1
        return n

    styles = {"tuples, unpacked by position": tuples,
              "typed_rows NamedTuples (store now)": typed,
              "sqlite3.Row by name (named_rows)": row_by_name,
              "dicts (dict_rows)": dicts,
              "sqlite-utils Database.query": su_query,
              "sqlite-utils Table.rows_where": su_rows_where}  # fmt: skip
    conn = _table(args.rows)
    times: dict[str, list[float]] = {name: [] for name in styles}
    for _ in range(args.rounds):
        for name, fn in styles.items():
            times[name].append(_timed(fn, conn, args.rows))
    base = statistics.median(times["tuples, unpacked by position"])
    version = importlib.metadata.version("sqlite-utils")
    print(f"{args.rows:,} rows x 6 columns, median of {args.rounds} rounds "
          f"(CPU us per row, ratio to positional tuples), sqlite-utils {version}")
    for name, values in times.items():
        med = statistics.median(values)
        print(f"  {name:38s} {med:6.2f} us  x{med / base:.2f}  "
              f"(range {min(values):.2f}-{max(values):.2f})")


if __name__ == "__main__":
    main()
