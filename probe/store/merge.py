"""Merging probe databases: ``probe merge A.db B.db ... --into all.db``.

Rows travel by their global ids (``uid``, probe/store/uid.py): a vantage point, run or
measurement whose uid is already in the output is not copied again, so merging is idempotent
and merging overlapping copies of one database adds each measurement once. Everything a
measurement owns (observations, DNS queries/replies/answers, TCP, TLS, HTTP, controls) comes
with it; bodies and certificates are content-addressed and stored once.

Each source is merged in one transaction on the output, reading one consistent snapshot of the
source (SQLite WAL): a source that a running probe is still writing can be merged, and what that
probe commits after the snapshot comes with the next merge. A failure rolls back that source
entirely; sources merged before it stay merged.

The copy is SQL (``INSERT ... SELECT`` across an attached database), so memory stays flat
however big the sources: Python only holds the vantage point and run maps. Which tables exist and
how they refer to each other is read from the schema (PRAGMA table_info, foreign_key_list), so a
table added by a later migration is merged by the same rules, or refused by name when no rule
fits.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from probe.store.connection import named_rows, scalar
from probe.store.database import Store, StoreError
from probe.store.schema import SCHEMA_VERSION

if TYPE_CHECKING:
    import sqlite3

__all__ = ["MergeError", "MergeResult", "merge"]

# Tables with their own rules (entities matched by uid), or not copied at all.
_ENTITIES = ("vantage_points", "runs", "measurements")
_NOT_COPIED = frozenset({"schema_migrations", "latest"})  # latest: rebuilt by its triggers
# Columns that are re-judged by `probe reclassify`: a newer judgement in a source replaces ours.
_VERDICT_COLUMNS = ("verdict", "stage", "hop", "reasons", "classifier_version", "classified_at")
_RUN_END_COLUMNS = ("finished_at", "status", "n_measurements", "counts")


class MergeError(StoreError):
    """A source or the output cannot be merged (the message names the file and why)."""


@dataclass
class MergeResult:
    """What merging one source added to the output."""

    source: str
    vantage_points: int = 0
    runs: int = 0
    runs_updated: int = 0  # runs already present whose end (status, counts) the source knew
    measurements: int = 0
    already_present: int = 0  # measurements skipped: their uid was in the output
    verdicts_updated: int = 0  # present measurements re-judged more recently in the source
    renamed: list[tuple[str, str]] = field(default_factory=list)  # (name, name in the output)
    keyed: dict[str, int] = field(default_factory=dict)  # rows added to tables with their own uid


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def _check_output(into: Path) -> None:
    if into.is_dir():
        raise MergeError(f"{into}: is a directory, not a database file")
    if into.exists():
        if not os.access(into, os.R_OK | os.W_OK):
            raise MergeError(f"{into}: output is read-only (cannot write to it); nothing merged")
        parent = into.parent
    else:
        parent = into.parent
        while not parent.exists() and parent != parent.parent:
            parent = parent.parent
    # SQLite writes -wal and -shm files beside the database: its directory must be writable.
    if not os.access(parent, os.W_OK | os.X_OK):
        raise MergeError(f"{into}: its directory {parent} is read-only; nothing merged")


def _check_sources(into: Path, sources: Sequence[Path]) -> None:
    """Open each source once (refusing what is not a probe database or too new)."""
    for src in sources:
        if not src.exists():
            raise MergeError(f"{src}: no such file; nothing merged")
        if _same_file(src, into):
            raise MergeError(f"{src}: is the output database itself; nothing merged")
        # Store.open refuses non-SQLite files, other SQLite databases and newer schemas, and
        # upgrades an older probe database in place, as every probe command does.
        with Store.open(src, create=False, check=True) as store:
            missing = scalar(store.conn, "SELECT count(*) FROM measurements WHERE uid IS NULL")
        if missing:
            raise MergeError(
                f"{src}: {missing} measurements have no uid (written outside probe?); "
                "nothing merged"
            )


def merge(
    into: str | Path,
    sources: Iterable[str | Path],
    *,
    on_merged: Callable[[MergeResult], None] | None = None,
) -> list[MergeResult]:
    """Merge probe databases ``sources`` into ``into`` (created when missing).

    Every source is checked before anything is written (a bad source or a read-only output
    raises :class:`MergeError` and leaves the output untouched). Then each source is merged in
    its own transaction; ``on_merged`` is called after each commit. Returns one
    :class:`MergeResult` per source, in order.
    """
    out = Path(into)
    paths = [Path(s) for s in sources]
    if not paths:
        raise MergeError("nothing to merge: give at least one source database")
    _check_output(out)
    _check_sources(out, paths)
    results: list[MergeResult] = []
    with Store.open(out, check=True) as store:
        plan = _Plan(store.conn)
        for src in paths:
            result = _merge_one(store, plan, src)
            results.append(result)
            if on_merged is not None:
                on_merged(result)
    return results


@dataclass(frozen=True)
class _TableInfo:
    """Columns, primary key and references of one table."""

    columns: tuple[str, ...]
    pks: list[str]
    foreign_keys: tuple[tuple[str, str], ...]  # (column, other table)

    @classmethod
    def read(cls, conn: sqlite3.Connection, table: str) -> _TableInfo:
        info = named_rows(conn, f"PRAGMA main.table_info({table})").fetchall()
        pks = [r["name"] for r in sorted((r for r in info if r["pk"]), key=lambda r: r["pk"])]
        fks = tuple((str(r["from"]), str(r["table"]))
                    for r in named_rows(conn, f"PRAGMA main.foreign_key_list({table})"))  # fmt: skip
        return cls(tuple(r["name"] for r in info), pks or ["rowid"], fks)


class _Plan:
    """How each table is copied, read once from the output's schema."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        # PRAGMAs rather than sqlite-utils' introspection: importing sqlite-utils imports pandas
        # when it is installed (+85 MB RSS, +1 s), a quarter of merge's memory budget.
        names = [r["name"] for r in named_rows(
            conn, "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")]
        tables = {n: _TableInfo.read(conn, n) for n in names}
        self.columns = {name: list(t.columns) for name, t in tables.items()}
        fks = {name: list(t.foreign_keys) for name, t in tables.items()}
        referenced = {parent for refs in fks.values() for _, parent in refs}
        # Tables whose integer ids other tables refer to keep their ids, shifted by an offset.
        self.offset_tables = {
            name for name in tables
            if name in referenced and tables[name].pks == ["id"] and name not in _ENTITIES
        }
        self.content: list[str] = []  # content-addressed: INSERT OR IGNORE by primary key
        self.owned: list[tuple[str, str, str]] = []  # (table, owner column, owner table)
        self.keyed: list[str] = []  # rows with their own uid, referring to runs/vantage points
        # (table, measurement column, unique key columns): one row per measurement that names
        # it outside probe (an imported OONI measurement); the same key is the same measurement.
        self.measurement_keys: list[tuple[str, str, tuple[str, ...]]] = []
        self.fks = fks
        for name in self._ordered(tables, fks):
            if name in _NOT_COPIED or name in _ENTITIES:
                continue
            if "uid" in tables[name].columns and {p for _, p in fks[name]} <= {
                    "runs", "vantage_points"}:
                self.keyed.append(name)
                continue
            owner = next(((col, parent) for col, parent in fks[name]
                          if parent == "measurements" or parent in self.offset_tables), None)
            if owner is None:  # e.g. a table about runs: its rows come with new runs only
                owner = next(((col, parent) for col, parent in fks[name]
                              if parent in ("runs", "vantage_points")), None)
            if owner is not None:
                column, parent = owner
                self.owned.append((name, column, parent))
                if parent == "measurements" and column in tables[name].pks:
                    key = _unique_key(conn, name)
                    if key:
                        self.measurement_keys.append((name, column, key))
            elif not fks[name] and tables[name].pks not in (["id"], ["rowid"]):
                self.content.append(name)
            else:
                raise MergeError(f"probe merge does not know how to merge table {name!r}")

    @staticmethod
    def _ordered(tables: Mapping[str, object], fks: dict[str, list[tuple[str, str]]]) -> list[str]:
        """Table names, every table after the tables it refers to."""
        done: list[str] = []

        def visit(name: str, path: tuple[str, ...]) -> None:
            if name in done or name in path or name not in tables:
                return
            for _, parent in fks.get(name, ()):
                visit(parent, (*path, name))
            done.append(name)

        for name in sorted(tables):
            visit(name, ())
        return done


def _unique_key(conn: sqlite3.Connection, table: str) -> tuple[str, ...]:
    """The columns of the first UNIQUE index created on ``table`` (not its primary key)."""
    for index in named_rows(conn, f"PRAGMA main.index_list({table})"):
        if index["unique"] and index["origin"] == "c":
            return tuple(r["name"] for r in named_rows(conn, f"PRAGMA main.index_info({index['name']})"))
    return ()


def _cols(conn: sqlite3.Connection, schema: str, table: str) -> list[str]:
    return [r["name"] for r in named_rows(conn, f"PRAGMA {schema}.table_info({table})")]


def _merge_one(store: Store, plan: _Plan, src: Path) -> MergeResult:
    conn = store.conn
    result = MergeResult(str(src))
    conn.execute("ATTACH DATABASE ? AS src", (str(src),))
    try:
        version = scalar(conn, "SELECT max(version) FROM src.schema_migrations")
        if version != SCHEMA_VERSION:  # changed since it was checked
            raise MergeError(f"{src}: schema version {version}, expected {SCHEMA_VERSION}")
        with store.transaction():
            # The first read of src starts its read transaction: every statement below sees
            # the same snapshot of it, whatever a running probe commits meanwhile.
            _merge_tables(conn, plan, result)
    except MergeError:
        raise
    except Exception as exc:  # sqlite3 errors: disk full, corrupt source, ...
        raise MergeError(f"{src}: merge failed and was rolled back: {exc}") from None
    finally:
        conn.execute("DETACH DATABASE src")
    return result


def _merge_tables(conn: sqlite3.Connection, plan: _Plan, result: MergeResult) -> None:
    conn.execute("CREATE TEMP TABLE IF NOT EXISTS merge_map ("
                 "tbl TEXT NOT NULL, src INTEGER NOT NULL, dst INTEGER NOT NULL, "
                 "new INTEGER NOT NULL, PRIMARY KEY (tbl, src)) WITHOUT ROWID")
    conn.execute("DELETE FROM temp.merge_map")
    _merge_vantage_points(conn, plan, result)
    _merge_runs(conn, plan, result)
    moff = _merge_measurements(conn, plan, result)
    offsets = {"measurements": moff}
    for table in plan.offset_tables:
        offsets[table] = scalar(conn, f"SELECT coalesce(max(id), 0) FROM main.{table}")
    for table in plan.content:
        cols = [c for c in plan.columns[table] if c in _cols(conn, "src", table)]
        names = ", ".join(cols)
        conn.execute(f"INSERT OR IGNORE INTO main.{table} ({names}) "
                     f"SELECT {names} FROM src.{table}")
    for table in plan.keyed:
        _merge_keyed(conn, plan, table, result)
    for table, owner_col, owner in plan.owned:
        src_cols = set(_cols(conn, "src", table))
        targets, exprs = [], []
        for col in plan.columns[table]:
            if col not in src_cols:
                continue
            ref = next((parent for c, parent in plan.fks[table] if c == col), None)
            if col == "id" and table in plan.offset_tables:
                targets.append(col)
                exprs.append(f"s.id + {int(offsets[table])}")
            elif col == "id":
                continue  # a fresh key in the output
            elif ref in offsets:
                targets.append(col)
                exprs.append(f"s.{col} + {int(offsets[ref])}")
            elif ref in ("runs", "vantage_points"):
                targets.append(col)
                exprs.append(f"(SELECT dst FROM temp.merge_map WHERE tbl = '{ref}' AND src = s.{col})")
            else:
                targets.append(col)
                exprs.append(f"s.{col}")
        if owner in offsets:
            # Rows of the output with ids above the offset are exactly those of this merge.
            off = int(offsets[owner])
            new_owner = f"SELECT 1 FROM main.{owner} AS o WHERE o.id = s.{owner_col} + {off}"
        else:
            new_owner = (f"SELECT 1 FROM temp.merge_map AS o WHERE o.tbl = '{owner}' "
                         f"AND o.src = s.{owner_col} AND o.new = 1")
        conn.execute(
            f"INSERT INTO main.{table} ({', '.join(targets)}) SELECT {', '.join(exprs)} "
            f"FROM src.{table} AS s WHERE EXISTS ({new_owner})"
        )
    conn.execute("DELETE FROM temp.merge_map")


def _entity_columns(conn: sqlite3.Connection, plan: _Plan, table: str) -> list[str]:
    src_cols = set(_cols(conn, "src", table))
    return [c for c in plan.columns[table] if c != "id" and c in src_cols]


def _merge_vantage_points(conn: sqlite3.Connection, plan: _Plan, result: MergeResult) -> None:
    cols = _entity_columns(conn, plan, "vantage_points")
    rows = conn.execute(f"SELECT id, {', '.join(cols)} FROM src.vantage_points").fetchall()
    i_uid, i_name = cols.index("uid"), cols.index("name")
    for sid, *values in rows:
        found = conn.execute(
            "SELECT id FROM main.vantage_points WHERE uid = ?", (values[i_uid],)
        ).fetchone()
        if found is not None:
            dst, new = found[0], 0
            # What the source knows and the output does not (e.g. the ASN found later).
            fill = [c for c in ("asn", "as_org", "country", "resolver", "network") if c in cols]
            if fill:
                conn.execute(
                    "UPDATE main.vantage_points SET "
                    + ", ".join(f"{c} = coalesce({c}, ?)" for c in fill) + " WHERE id = ?",
                    (*(values[cols.index(c)] for c in fill), dst),
                )
        elif (same := _same_ooni_vantage(conn, values[i_name], values[cols.index("meta")])):
            dst, new = same, 0
        else:
            name = values[i_name]
            if conn.execute("SELECT 1 FROM main.vantage_points WHERE name = ?", (name,)).fetchone():
                # Same name, another vantage point (another machine that kept the default
                # name, say): both are kept, told apart by the end of the source's uid.
                new_name = f"{name}~{values[i_uid][-8:]}"
                result.renamed.append((name, new_name))
                values[i_name] = new_name
            cur = conn.execute(
                f"INSERT INTO main.vantage_points ({', '.join(cols)}) "
                f"VALUES ({', '.join('?' * len(cols))})",
                values,
            )
            dst, new = cur.lastrowid, 1
            result.vantage_points += 1
        conn.execute("INSERT INTO temp.merge_map VALUES ('vantage_points', ?, ?, ?)",
                     (sid, dst, new))


def _merge_runs(conn: sqlite3.Connection, plan: _Plan, result: MergeResult) -> None:
    cols = _entity_columns(conn, plan, "runs")
    i_uid, i_vid = cols.index("uid"), cols.index("vantage_id")
    i_status = cols.index("status")
    end = [c for c in _RUN_END_COLUMNS if c in cols]
    for sid, *values in conn.execute(f"SELECT id, {', '.join(cols)} FROM src.runs").fetchall():
        found = named_rows(
            conn, "SELECT id, status FROM main.runs WHERE uid = ?", (values[i_uid],)
        ).fetchone()
        if found is not None:
            dst, new = found["id"], 0
            if found["status"] == "running" and values[i_status] != "running":
                # The output took a snapshot while the run was going; the source saw its end.
                conn.execute(
                    "UPDATE main.runs SET " + ", ".join(f"{c} = ?" for c in end) + " WHERE id = ?",
                    (*(values[cols.index(c)] for c in end), dst),
                )
                result.runs_updated += 1
        else:
            values[i_vid] = scalar(conn, "SELECT dst FROM temp.merge_map WHERE tbl = 'vantage_points' "
                                   "AND src = ?", (values[i_vid],))  # fmt: skip
            same = _same_ooni_report(conn, values[i_vid], values[cols.index("options")])
            if same is not None:
                conn.execute("INSERT INTO temp.merge_map VALUES ('runs', ?, ?, 0)", (sid, same))
                continue
            cur = conn.execute(
                f"INSERT INTO main.runs ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
                values,
            )
            dst, new = cur.lastrowid, 1
            result.runs += 1
        conn.execute("INSERT INTO temp.merge_map VALUES ('runs', ?, ?, ?)", (sid, dst, new))


# Imported OONI data (probe/research/ooni/importer.py) is named by OONI, not by the database that imported
# it: the vantage point ooni-CC-ASN and the run of one OONI report are the same in every database
# that imported them, so their rows come together in the output instead of being kept apart.
def _is_ooni(meta: str | None, key: str, value: str) -> bool:
    try:
        return bool(json.loads(meta or "{}").get(key) == value)
    except (ValueError, AttributeError):
        return False


def _same_ooni_vantage(conn: sqlite3.Connection, name: str, meta: str | None) -> int | None:
    """The output's vantage point of the same name when both hold imported OONI data."""
    if not _is_ooni(meta, "source", "ooni"):
        return None
    row = named_rows(conn, "SELECT id, meta FROM main.vantage_points WHERE name = ?", (name,)).fetchone()
    return int(row["id"]) if row is not None and _is_ooni(row["meta"], "source", "ooni") else None


def _same_ooni_report(conn: sqlite3.Connection, vantage_id: int, options: str | None) -> int | None:
    """The output's run of the same OONI report at the same vantage point, if any."""
    if not _is_ooni(options, "source", "ooni import"):
        return None
    report = json.loads(options or "{}").get("report_id")
    run_id = scalar(conn,
                    "SELECT id FROM main.runs WHERE vantage_id = ? AND json_extract(options, '$.source') = "
                    "'ooni import' AND json_extract(options, '$.report_id') = ? ORDER BY id LIMIT 1",
                    (vantage_id, report))  # fmt: skip
    return None if run_id is None else int(run_id)


def _merge_measurements(conn: sqlite3.Connection, plan: _Plan, result: MergeResult) -> int:
    """Copy the measurements whose uid is new; return the id offset they were given."""
    moff = int(scalar(conn, "SELECT coalesce(max(id), 0) FROM main.measurements"))
    cols = [c for c in _entity_columns(conn, plan, "measurements")
            if c not in ("run_id", "vantage_id")]
    names = ", ".join(cols)
    # Ids keep their order, shifted past the output's: children follow by the same offset.
    conn.execute(
        f"INSERT INTO main.measurements (id, run_id, vantage_id, {names}) "
        f"SELECT s.id + {moff}, r.dst, v.dst, {', '.join('s.' + c for c in cols)} "
        "FROM src.measurements AS s "
        "JOIN temp.merge_map AS r ON r.tbl = 'runs' AND r.src = s.run_id "
        "JOIN temp.merge_map AS v ON v.tbl = 'vantage_points' AND v.src = s.vantage_id "
        "WHERE NOT EXISTS (SELECT 1 FROM main.measurements AS t WHERE t.uid = s.uid) "
        + "".join(_known_elsewhere(table, col, key) for table, col, key in plan.measurement_keys)
        + "ORDER BY s.id"
    )
    result.measurements = scalar(conn, "SELECT changes()")
    total = scalar(conn, "SELECT count(*) FROM src.measurements")
    result.already_present = total - result.measurements
    verdict_cols = [c for c in _VERDICT_COLUMNS if c in cols]
    if result.already_present and "classified_at" in verdict_cols:
        # A measurement re-judged (probe reclassify) in the source after it was merged: the
        # newer judgement wins, with its classifier version.
        conn.execute(
            "UPDATE main.measurements AS t SET "
            + ", ".join(f"{c} = s.{c}" for c in verdict_cols)
            + " FROM src.measurements AS s WHERE t.uid = s.uid AND t.id <= ? "
            "AND s.classified_at IS NOT NULL "
            "AND (t.classified_at IS NULL OR s.classified_at > t.classified_at)",
            (moff,),
        )
        result.verdicts_updated = scalar(conn, "SELECT changes()")
    return moff


def _known_elsewhere(table: str, col: str, key: tuple[str, ...]) -> str:
    """SQL: the source measurement ``s`` is not one the output holds under another uid.

    The same OONI measurement imported into two databases is two probe measurements with their
    own uids but one OONI identity (report, input, start time, measurement_uid): it is merged
    once.
    """
    same = " AND ".join(f"o.{c} = k.{c}" for c in key)
    return (f"AND NOT EXISTS (SELECT 1 FROM src.{table} AS k JOIN main.{table} AS o ON {same} "
            f"WHERE k.{col} = s.id) ")


def _merge_keyed(conn: sqlite3.Connection, plan: _Plan, table: str, result: MergeResult) -> None:
    """Copy the rows of ``table`` (e.g. endpoint_measurements) whose uid the output lacks.

    Rows refer to runs and vantage points, mapped to the output's. A row that the output got
    from an earlier merge before the table had uids has another uid on each side (each database
    drew its own when upgraded): it is recognised as the same row of the same run by its other
    columns, all equal, and not copied again.
    """
    src_cols = set(_cols(conn, "src", table))
    cols = [c for c in plan.columns[table] if c != "id" and c in src_cols]
    refs = {c: parent for c, parent in plan.fks[table]}
    exprs = [
        f"(SELECT dst FROM temp.merge_map WHERE tbl = '{refs[c]}' AND src = s.{c})" if c in refs
        else f"s.{c}"
        for c in cols
    ]
    same = " AND ".join(f"t.{c} IS {e}" for c, e in zip(cols, exprs, strict=True) if c != "uid")
    run_col = next((c for c, parent in plan.fks[table] if parent == "runs"), None)
    old_run = (f"EXISTS (SELECT 1 FROM temp.merge_map AS r WHERE r.tbl = 'runs' "
               f"AND r.src = s.{run_col} AND r.new = 0)") if run_col else "1"  # fmt: skip
    conn.execute(
        f"INSERT INTO main.{table} ({', '.join(cols)}) SELECT {', '.join(exprs)} "
        f"FROM src.{table} AS s "
        f"WHERE NOT EXISTS (SELECT 1 FROM main.{table} AS t WHERE t.uid = s.uid) "
        f"AND NOT ({old_run} AND EXISTS (SELECT 1 FROM main.{table} AS t WHERE {same})) "
        "ORDER BY s.id"
    )
    added = scalar(conn, "SELECT changes()")
    result.keyed[table] = result.keyed.get(table, 0) + added
