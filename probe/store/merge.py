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

Nothing enters unchecked, and no source is written (probe/store/sources.py: read-only, an older
one upgraded in a temporary copy). Every row of each source (probe/store/validate.py: types,
vocabularies, JSON shapes as probe's schema declares them, the observations and controls decoded
by the codec that reads them later; reading them, SQLite checks every page that is copied) is
checked before its copy, in a thread beside the copy of the source before it; a row that fails
is refused with what depends on it (named by table and row), a damaged source as a whole, and
the rest is merged. Only the rows checked are copied (a
source still being written: what came after the check waits for the next merge). The output
remembers each source's fingerprint (``merged_sources``): a source merged again unchanged is
skipped unread. A new output is built under a temporary name, with a rollback journal (pages
new to the file are written once, instead of to the WAL and then again into the file) and its
secondary indexes built once at the end, then switched to WAL and renamed into place.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from probe.host.output import staged
from probe.store.connection import named_rows, scalar
from probe.store.database import Store, StoreError
from probe.store.names import claim_name
from probe.store.rows import now as _now
from probe.store.schema import SCHEMA_VERSION
from probe.store.sources import Source, SourceError, fingerprint, inspect_source
from probe.store.validate import (
    MAX_PROBLEMS,
    Declared,
    Problem,
    Screened,
    declared,
    row_checks,
    screen,
)

__all__ = ["MergeError", "MergeResult", "merge"]

# Tables with their own rules (entities matched by uid), or not copied at all.
_ENTITIES = ("vantage_points", "runs", "measurements")
# latest: rebuilt by its triggers; probe_meta: the output's own id; merged_sources: copied by
# its own rule (_merge_tables), with a row for the source itself (_merge_one).
_NOT_COPIED = frozenset({"schema_migrations", "latest", "probe_meta", "merged_sources"})
# Page cache of the output during a merge: index pages of the big tables stay in memory while
# their rows are appended (the store's own 8 MiB is sized for a run's writer).
_MERGE_CACHE_KIB = 64 << 10
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
    # (old name, new name): vantage points of the source or the output renamed because another
    # probe had the same name (probe/store/names.py)
    renamed: list[tuple[str, str]] = field(default_factory=list)
    keyed: dict[str, int] = field(default_factory=dict)  # rows added to tables with their own uid
    refused: int = 0  # rows found invalid (each refused with what depends on it)
    problems: list[Problem] = field(default_factory=list)  # the first of them, by table and row
    refused_measurements: int = 0  # measurements not merged because of them
    unchanged: str | None = None  # merged before as it is now (when): skipped unread
    damaged: str | None = None  # the source's structure is damaged: nothing of it was merged


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


def merge(
    into: str | Path,
    sources: Iterable[str | Path],
    *,
    on_merged: Callable[[MergeResult], None] | None = None,
) -> list[MergeResult]:
    """Merge probe databases ``sources`` into ``into`` (created when missing).

    Every source is inspected before anything is written (a missing, foreign, empty or newer
    source, or a read-only output, raises :class:`MergeError` and leaves the output untouched);
    sources are only ever read. Then each source is checked (every row) and merged in its own
    transaction, invalid rows refused; ``on_merged`` is called after each. A source found
    damaged is not merged, the others are, and :class:`MergeError` names it at the end.

    A new output is built under a temporary name beside it and appears, complete, when the
    merge ends (an interrupted merge leaves no half-made output; merge again). Returns one
    :class:`MergeResult` per source, in order.
    """
    out = Path(into)
    paths = [Path(s) for s in sources]
    if not paths:
        raise MergeError("nothing to merge: give at least one source database")
    _check_output(out)
    try:
        found = [inspect_source(p, out) for p in paths]
    except SourceError as exc:
        raise MergeError(str(exc)) from None
    damaged: list[str] = []
    if out.exists() and out.stat().st_size > 0:
        results = _merge_into(out, found, on_merged, damaged, new=False)
    else:
        out.parent.mkdir(parents=True, exist_ok=True)
        with staged(out, suffix=".db") as building:
            try:
                results = _merge_into(building.tmp, found, on_merged, damaged, new=True, name=out)
            finally:
                for suffix in ("-journal", "-wal", "-shm"):  # the rollback journal of a failure
                    Path(f"{building.tmp}{suffix}").unlink(missing_ok=True)
    if damaged:
        rest = " (the other sources were merged)" if len(damaged) < len(found) else ""
        raise MergeError("; ".join(damaged) + rest)
    return results


def _merge_into(path: Path, found: Sequence[Source], on_merged: Callable[[MergeResult], None] | None,
                damaged: list[str], *, new: bool, name: Path | None = None) -> list[MergeResult]:
    """Merge ``found`` into the database at ``path`` (``new``: one made for this merge);
    sources found damaged are named in ``damaged``."""
    results: list[MergeResult] = []

    def done(result: MergeResult) -> None:
        results.append(result)
        if on_merged is not None:
            on_merged(result)

    with Store.open(path) as store:
        plan = _Plan(store.conn)
        todo: list[tuple[Source, str]] = []
        for src in found:
            try:
                with closing(src.connect()) as conn:
                    fp = fingerprint(conn)
            except sqlite3.DatabaseError as exc:  # a page of what the fingerprint reads
                why = _damaged(src, exc)
                damaged.append(f"{src.path}: {why}")
                done(MergeResult(str(src.path), damaged=why))
                continue
            when = scalar(store.conn, "SELECT merged_at FROM merged_sources WHERE fingerprint = ?",
                          (fp,))  # fmt: skip
            if when is not None or any(fp == f for _, f in todo):
                done(MergeResult(str(src.path), unchanged=str(when or "earlier in this merge")))
                continue
            todo.append((src, fp))
        spec = declared(store.conn)  # probe's schema: what the sources' rows are checked against
        with _bulk_copy(store, new and bool(todo)), _Checks(todo, path.parent, spec) as checks:
            for src, fp in todo:
                try:
                    screened = checks.result(src)
                    if screened.damaged is not None:
                        damaged.append(f"{src.path}: {screened.damaged}")
                        done(MergeResult(str(src.path), damaged=screened.damaged))
                        continue
                    done(_merge_one(store, plan, src, screened, fp))
                finally:
                    src.cleanup()
        if new:  # back to WAL, as every probe database is, before the file takes its name
            store.conn.execute("PRAGMA main.journal_mode = WAL")
    if new and Path(f"{path}-wal").exists():  # closing checkpoints it into the file
        raise MergeError(f"{name}: the new database kept a WAL after closing; not put in place")
    return results


@contextmanager
def _bulk_copy(store: Store, new_output: bool) -> Iterator[None]:
    """A larger page cache for the merge; for a new output, a rollback journal and no secondary
    indexes until the end.

    In WAL mode every page of a big transaction is written twice (to the WAL, then into the file
    at the checkpoint); with a rollback journal, pages appended to the file are written once and
    only pages that existed before are journaled. An index built once over all its rows (a sort)
    costs less than one kept up row by row in random order: the indexes that merging does not
    read (all but the unique ones, which tell the rows already there) are dropped from a new
    output and built again at the end, with their planner statistics. Nobody else has a new
    output open (it is still under its temporary name).
    """
    conn = store.conn
    cache = int(scalar(conn, "PRAGMA cache_size"))
    conn.execute(f"PRAGMA cache_size = -{_MERGE_CACHE_KIB}")
    dropped: list[tuple[str, str]] = []
    stats: list[tuple[str, str, str]] = []
    if new_output:
        conn.execute("PRAGMA main.journal_mode = DELETE")
        dropped = [(r["name"], r["sql"]) for r in named_rows(
            conn, "SELECT name, sql FROM main.sqlite_master WHERE type = 'index' AND sql IS NOT NULL "
                  "AND sql NOT LIKE 'CREATE UNIQUE%'")]
        stats = [tuple(r) for r in conn.execute(
            f"SELECT tbl, idx, stat FROM main.sqlite_stat1 WHERE idx IN ({','.join('?' * len(dropped))})",
            [n for n, _ in dropped])] if dropped else []
        with store.transaction():
            for index, _ in dropped:
                conn.execute(f"DROP INDEX main.{index}")
    try:
        yield
    finally:
        # The index builds sort every row: with the store's own cache (8 MiB) and temporary
        # files on disk, not in memory, so that the merge's memory stays where it was (the
        # sort of 6M rows in memory took the peak RSS to 247 MB on the 500k bench).
        conn.execute(f"PRAGMA cache_size = {cache}")
        if dropped:
            conn.execute("PRAGMA temp_store = FILE")  # (drops the merge's temporary tables)
            with store.transaction():
                for _, sql in dropped:
                    conn.execute(sql)
                conn.execute("DELETE FROM main.sqlite_stat1 WHERE idx IN "
                             f"({','.join('?' * len(dropped))})", [n for n, _ in dropped])
                conn.executemany("INSERT INTO main.sqlite_stat1 (tbl, idx, stat) VALUES (?, ?, ?)", stats)
            conn.execute("ANALYZE sqlite_schema")  # the statistics back in this connection
            conn.execute("PRAGMA temp_store = MEMORY")


def _damaged(src: Source, exc: sqlite3.DatabaseError) -> str:
    """Why a source SQLite cannot read is not merged, and what says more."""
    return (f"damaged ({exc}): nothing of it merged; "
            f"`probe check --db {src.path.name}` says more")


class _Checks:
    """The checks of the sources (probe/store/validate.py), one after the other in a thread of
    their own: the next source is checked while the one before is copied (SQLite releases the
    interpreter during the copy, so both cores work). Memory: one chunk of rows at a time, and
    each source's problems (bounded)."""

    def __init__(self, todo: Sequence[tuple[Source, str]], beside: Path, spec: Declared) -> None:
        self._spec = spec
        self._sources = [src for src, _ in todo]
        self._stop = threading.Event()
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="merge-check")
        self._futures: dict[int, Future[Screened]] = {
            id(src): self._pool.submit(self._check, src, beside) for src, _ in todo}

    def _check(self, src: Source, beside: Path) -> Screened:
        if self._stop.is_set():
            return Screened(damaged="not checked (the merge stopped)")
        try:
            src.upgrade(beside)
            with closing(src.connect()) as conn:
                # No quick_check of its own: the check reads every page of every table it copies
                # (SQLite checks each page it reads, a damaged one is an error here), and the
                # source's indexes, which quick_check would add, are never copied.
                return screen(conn, spec=self._spec, stop=self._stop.is_set)
        except sqlite3.DatabaseError as exc:  # a page SQLite cannot read at all
            return Screened(damaged=_damaged(src, exc))
        except SourceError as exc:
            return Screened(damaged=f"cannot be read ({exc}): nothing of it merged")

    def result(self, src: Source) -> Screened:
        """What the check of ``src`` found (waiting for it)."""
        return self._futures[id(src)].result()

    def __enter__(self) -> _Checks:
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._pool.shutdown(wait=True, cancel_futures=True)
        for src in self._sources:  # upgraded copies of sources a failed merge never reached
            src.cleanup()


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
        self.pks = {name: t.pks for name, t in tables.items()}
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


def _merge_one(store: Store, plan: _Plan, src: Source, screened: Screened, fp: str) -> MergeResult:
    conn = store.conn
    result = MergeResult(str(src.path), refused=screened.count, problems=list(screened.problems))
    conn.execute("ATTACH DATABASE ? AS src", (src.attach_uri(),))
    try:
        version = scalar(conn, "SELECT max(version) FROM src.schema_migrations")
        if version != SCHEMA_VERSION:  # changed since it was inspected
            raise MergeError(f"{src.path}: schema version {version}, expected {SCHEMA_VERSION}")
        with store.transaction():
            # The first read of src starts its read transaction: every statement below sees
            # the same snapshot of it, whatever a running probe commits meanwhile.
            _merge_tables(conn, plan, result, screened)
            _record_source(conn, src, fp, result)
    except MergeError:
        raise
    except Exception as exc:  # sqlite3 errors: disk full, corrupt source, ...
        raise MergeError(f"{src.path}: merge failed and was rolled back: {exc}") from None
    finally:
        conn.execute("DETACH DATABASE src")
    return result


def _record_source(conn: sqlite3.Connection, src: Source, fp: str, result: MergeResult) -> None:
    """The source among the databases merged into the output (merged_sources), by its global
    id, with the fingerprint of what it held: merged again unchanged, it is skipped unread. A
    source older than schema 12 has no id of its own: its upgraded copy drew one."""
    uid = scalar(conn, "SELECT value FROM src.probe_meta WHERE key = 'uid' AND typeof(value) = 'text'")
    if uid is None:
        raise MergeError(f"{src.path}: has no database id (probe_meta); nothing of it merged")
    conn.execute(
        "INSERT INTO main.merged_sources (uid, merged_at, fingerprint, name, measurements, refused) "
        "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (uid) DO UPDATE SET merged_at = excluded.merged_at, "
        "fingerprint = excluded.fingerprint, name = excluded.name, "
        "measurements = merged_sources.measurements + excluded.measurements, "
        "refused = excluded.refused",
        (uid, _now(), fp, src.path.name, result.measurements, result.refused))


def _refusals(conn: sqlite3.Connection, screened: Screened) -> None:
    """What the check refused, in temporary tables the copy leaves out."""
    conn.execute("CREATE TEMP TABLE IF NOT EXISTS merge_refused ("
                 "tbl TEXT NOT NULL, id INTEGER NOT NULL, PRIMARY KEY (tbl, id)) WITHOUT ROWID")
    conn.execute("CREATE TEMP TABLE IF NOT EXISTS merge_refused_keys ("
                 "tbl TEXT NOT NULL, key TEXT NOT NULL, PRIMARY KEY (tbl, key)) WITHOUT ROWID")
    conn.execute("DELETE FROM temp.merge_refused")
    conn.execute("DELETE FROM temp.merge_refused_keys")
    rows = [("vantage_points", i) for i in screened.vantage_points]
    rows += [("runs", i) for i in screened.runs]
    rows += [("measurements", i) for i in screened.measurements]
    rows += [(table, i) for table, ids in screened.rows.items() for i in ids]
    conn.executemany("INSERT OR IGNORE INTO temp.merge_refused VALUES (?, ?)", rows)
    conn.executemany("INSERT OR IGNORE INTO temp.merge_refused_keys VALUES (?, ?)",
                     [(table, k) for table, keys in screened.keys.items() for k in keys])


def _not_refused(table: str, column: str, refused: Iterable[object]) -> str:
    """SQL: the row's ``column`` is not refused for ``table`` ("" when nothing is)."""
    if not refused:
        return ""
    return f" AND {column} NOT IN (SELECT id FROM temp.merge_refused WHERE tbl = '{table}')"


def _not_refused_key(plan: _Plan, table: str, screened: Screened) -> str:
    """SQL: the row's key (``table``'s first primary key column) was not refused ("" when none
    was): for the tables without integer ids (content-addressed bodies, merged_sources)."""
    if not screened.keys.get(table):
        return ""
    return (f" AND {plan.pks[table][0]} NOT IN (SELECT key FROM temp.merge_refused_keys "
            f"WHERE tbl = '{table}')")


def _bound(table: str, column: str, screened: Screened) -> str:
    """SQL: only rows the check read (a probe writing the source meanwhile adds more)."""
    limit = screened.limits.get(table)
    return "" if limit is None else f" AND {column} <= {int(limit)}"


def _merge_tables(conn: sqlite3.Connection, plan: _Plan, result: MergeResult, screened: Screened) -> None:
    conn.execute("CREATE TEMP TABLE IF NOT EXISTS merge_map ("
                 "tbl TEXT NOT NULL, src INTEGER NOT NULL, dst INTEGER NOT NULL, "
                 "new INTEGER NOT NULL, PRIMARY KEY (tbl, src)) WITHOUT ROWID")
    conn.execute("DELETE FROM temp.merge_map")
    _refusals(conn, screened)
    _merge_vantage_points(conn, plan, result, screened)
    _merge_runs(conn, plan, result, screened)
    moff = _merge_measurements(conn, plan, result, screened)
    # Every measurement of the source is new to the output and none was refused (a first
    # merge): the rows they own need no check of their owner, one index lookup per row less.
    everything_new = (not result.already_present and not result.refused_measurements
                      and not screened.orphans)  # fmt: skip
    offsets = {"measurements": moff}
    for table in plan.offset_tables:
        offsets[table] = scalar(conn, f"SELECT coalesce(max(id), 0) FROM main.{table}")
    for table in plan.content:
        cols = [c for c in plan.columns[table] if c in _cols(conn, "src", table)]
        names = ", ".join(cols)
        keys = screened.keys.get(table)
        left_out = _not_refused_key(plan, table, screened) if keys else ""
        conn.execute(f"INSERT OR IGNORE INTO main.{table} ({names}) "
                     f"SELECT {names} FROM src.{table} WHERE 1{_bound(table, 'rowid', screened)}{left_out}")
    # The databases merged into the source come with it (its own merged_sources rows, as the
    # check read them): a merge of merges names every database merged (exports cite them as
    # their provenance). Only the rows of sources merged here keep a fingerprint: what this
    # output holds of a database that came inside another is that one's business.
    left_out = _not_refused_key(plan, "merged_sources", screened)
    conn.execute("INSERT OR IGNORE INTO main.merged_sources (uid, merged_at, name) "
                 "SELECT uid, merged_at, name FROM src.merged_sources "
                 f"WHERE uid IS NOT (SELECT value FROM main.probe_meta WHERE key = 'uid'){left_out}")
    for table in plan.keyed:
        _merge_keyed(conn, plan, table, result, screened)
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
        bound = (_bound(table, "s.rowid", screened) if table in screened.limits
                 else _bound(owner, f"s.{owner_col}", screened))  # fmt: skip
        if owner in offsets and everything_new and owner not in ("runs", "vantage_points"):
            where = f"1{bound}"
        elif owner in offsets:
            # Rows of the output with ids above the offset are exactly those of this merge.
            off = int(offsets[owner])
            where = f"EXISTS (SELECT 1 FROM main.{owner} AS o WHERE o.id = s.{owner_col} + {off}){bound}"
        else:
            where = (f"EXISTS (SELECT 1 FROM temp.merge_map AS o WHERE o.tbl = '{owner}' "
                     f"AND o.src = s.{owner_col} AND o.new = 1){bound}")
        where += _not_refused(table, "s.rowid", screened.rows.get(table, ()))
        conn.execute(
            f"INSERT INTO main.{table} ({', '.join(targets)}) SELECT {', '.join(exprs)} "
            f"FROM src.{table} AS s WHERE {where}"
        )
    conn.execute("DELETE FROM temp.merge_map")


def _entity_columns(conn: sqlite3.Connection, plan: _Plan, table: str) -> list[str]:
    src_cols = set(_cols(conn, "src", table))
    return [c for c in plan.columns[table] if c != "id" and c in src_cols]


def _declared(conn: sqlite3.Connection, table: str, only: Iterable[str] | None = None
              ) -> list[tuple[str, str, bool]]:
    """``table``'s columns as probe declares them (the output's schema), those the source has."""
    here = set(_cols(conn, "src", table)) if only is None else set(only)
    return [(r["name"], str(r["type"]).upper(), bool(r["notnull"]))
            for r in named_rows(conn, f"PRAGMA main.table_info({table})") if r["name"] in here]


def _entity_checks(conn: sqlite3.Connection, table: str) -> list[tuple[str, str]]:
    """(column, SQL) checks of a row ``s`` of ``src.table`` (probe/store/validate.py)."""
    return row_checks(table, _declared(conn, table), alias="s")


def _invalid_entities(conn: sqlite3.Connection, table: str, result: MergeResult,
                      screened: Screened) -> set[int]:
    """Ids of ``src.table`` (vantage points, runs) refused: by the check, or invalid in this
    snapshot (a running probe updates its run's end after the check), named as problems."""
    refused = set(screened.vantage_points if table == "vantage_points" else screened.runs)
    checks = _entity_checks(conn, table)
    if not checks:
        return refused
    every = "coalesce(" + " AND ".join(f"({c})" for _, c in checks) + ", 0)"
    for (rowid,) in conn.execute(f"SELECT s.id FROM src.{table} AS s WHERE NOT {every}").fetchall():
        if rowid in refused:
            continue
        refused.add(rowid)
        result.refused += 1
        column = next((name for name, cond in checks if not scalar(
            conn, f"SELECT coalesce(({cond}), 0) FROM src.{table} AS s WHERE s.id = ?", (rowid,))), "?")
        if len(result.problems) < MAX_PROBLEMS:
            result.problems.append(Problem(table, int(rowid), column, "not a value probe reads there"))
    return refused


def _merge_vantage_points(conn: sqlite3.Connection, plan: _Plan, result: MergeResult,
                          screened: Screened) -> None:
    cols = _entity_columns(conn, plan, "vantage_points")
    refused = _invalid_entities(conn, "vantage_points", result, screened)
    rows = conn.execute(f"SELECT id, {', '.join(cols)} FROM src.vantage_points").fetchall()
    i_uid, i_name = cols.index("uid"), cols.index("name")
    for sid, *values in rows:
        if sid in refused:
            continue  # and so are its runs and measurements: they map to no vantage point
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
            # Same name, another vantage point (another machine that kept the default name,
            # say): both are kept, each told apart by the end of its uid, whatever the order.
            name = values[i_name]
            values[i_name], renames = claim_name(conn, name, values[i_uid])
            result.renamed.extend(renames)
            if values[i_name] != name:
                result.renamed.append((name, values[i_name]))
            cur = conn.execute(
                f"INSERT INTO main.vantage_points ({', '.join(cols)}) "
                f"VALUES ({', '.join('?' * len(cols))})",
                values,
            )
            dst, new = cur.lastrowid, 1
            result.vantage_points += 1
        conn.execute("INSERT INTO temp.merge_map VALUES ('vantage_points', ?, ?, ?)",
                     (sid, dst, new))


def _merge_runs(conn: sqlite3.Connection, plan: _Plan, result: MergeResult, screened: Screened) -> None:
    cols = _entity_columns(conn, plan, "runs")
    i_uid, i_vid = cols.index("uid"), cols.index("vantage_id")
    i_status = cols.index("status")
    end = [c for c in _RUN_END_COLUMNS if c in cols]
    refused = _invalid_entities(conn, "runs", result, screened)
    mapped = {src for (src,) in conn.execute(
        "SELECT src FROM temp.merge_map WHERE tbl = 'vantage_points'")}
    for sid, *values in conn.execute(f"SELECT id, {', '.join(cols)} FROM src.runs").fetchall():
        if sid in refused or values[i_vid] not in mapped:
            continue  # invalid, or its vantage point was: its measurements map to no run
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


def _merge_measurements(conn: sqlite3.Connection, plan: _Plan, result: MergeResult,
                        screened: Screened) -> int:
    """Copy the measurements whose uid is new; return the id offset they were given."""
    moff = int(scalar(conn, "SELECT coalesce(max(id), 0) FROM main.measurements"))
    cols = [c for c in _entity_columns(conn, plan, "measurements")
            if c not in ("run_id", "vantage_id")]
    names = ", ".join(cols)
    checked = _bound("measurements", "s.id", screened)
    left_out = _not_refused("measurements", "s.id", screened.measurements)
    # Ids keep their order, shifted past the output's: children follow by the same offset.
    conn.execute(
        f"INSERT INTO main.measurements (id, run_id, vantage_id, {names}) "
        f"SELECT s.id + {moff}, r.dst, v.dst, {', '.join('s.' + c for c in cols)} "
        "FROM src.measurements AS s "
        "JOIN temp.merge_map AS r ON r.tbl = 'runs' AND r.src = s.run_id "
        "JOIN temp.merge_map AS v ON v.tbl = 'vantage_points' AND v.src = s.vantage_id "
        f"WHERE NOT EXISTS (SELECT 1 FROM main.measurements AS t WHERE t.uid = s.uid){checked}{left_out} "
        + "".join(_known_elsewhere(table, col, key) for table, col, key in plan.measurement_keys)
        + "ORDER BY s.id"
    )
    result.measurements = scalar(conn, "SELECT changes()")
    # Measurements not copied: those the output holds already, and those refused (by the check,
    # or with their run or vantage point).
    total = scalar(conn, f"SELECT count(*) FROM src.measurements AS s WHERE 1{checked}")
    if screened.measurements or result.refused:
        result.refused_measurements = int(scalar(
            conn, "SELECT count(*) FROM src.measurements AS s WHERE (NOT EXISTS (SELECT 1 FROM "
                  "temp.merge_map AS r WHERE r.tbl = 'runs' AND r.src = s.run_id) OR s.id IN "
                  f"(SELECT id FROM temp.merge_refused WHERE tbl = 'measurements')){checked}"))
    result.already_present = total - result.measurements - result.refused_measurements
    verdict_cols = [c for c in _VERDICT_COLUMNS if c in cols]
    if result.already_present and "classified_at" in verdict_cols:
        # A measurement re-judged (probe reclassify) in the source after it was merged: the
        # newer judgement wins, with its classifier version.
        # The newer judgement is checked here, in this snapshot: it may be newer than the check.
        valid = " AND ".join(f"({cond})" for _, cond in row_checks(
            "measurements", _declared(conn, "measurements", verdict_cols), alias="s"))
        conn.execute(
            "UPDATE main.measurements AS t SET "
            + ", ".join(f"{c} = s.{c}" for c in verdict_cols)
            + " FROM src.measurements AS s WHERE t.uid = s.uid AND t.id <= ? "
            "AND s.classified_at IS NOT NULL "
            f"AND (t.classified_at IS NULL OR s.classified_at > t.classified_at) AND coalesce({valid}, 0)"
            + left_out,
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


def _merge_keyed(conn: sqlite3.Connection, plan: _Plan, table: str, result: MergeResult,
                 screened: Screened) -> None:
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
        # Only rows whose run and vantage point came (neither refused), as the check read them.
        + "".join(f"AND EXISTS (SELECT 1 FROM temp.merge_map AS m WHERE m.tbl = '{refs[c]}' "
                  f"AND m.src = s.{c}) " for c in cols if c in refs)
        + _bound(table, "s.rowid", screened) + _not_refused(table, "s.rowid", screened.rows.get(table, ()))
        + " ORDER BY s.id"
    )
    added = scalar(conn, "SELECT changes()")
    result.keyed[table] = result.keyed.get(table, 0) + added
