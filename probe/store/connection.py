"""Opening a results database: refusing foreign or corrupt files, configuring and migrating it."""

from __future__ import annotations

import functools
import os
import sqlite3
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self, TypeVar, cast

from probe.core.errors import ProbeError
from probe.store import observations
from probe.store.rows import now as _now
from probe.store.schema import APPLICATION_ID, MIGRATIONS, SCHEMA_VERSION

if TYPE_CHECKING:
    import sqlite_utils

__all__ = ["Connection", "SQLiteError", "StoreError", "Transaction", "dict_rows", "filters",
           "named_rows", "readonly_uri", "scalar", "typed_row", "typed_rows"]

#: A row type: a NamedTuple whose fields name the columns of the query that fills it, in order.
RowT = TypeVar("RowT", bound=tuple[Any, ...])

_BUSY_TIMEOUT_MS = 30_000
_PAGE_SIZE = 8192


def _writable(path: Path) -> bool:
    """Whether probe could write ``path`` and its directory (journal files live beside it)."""
    if not (os.access(path, os.W_OK) and os.access(path.parent, os.W_OK)):
        return False
    try:  # root passes os.access even on a read-only mount: ask the file system too
        return not (os.statvfs(path).f_flag & os.ST_RDONLY)
    except OSError:
        return True



def readonly_uri(path: Path, *, immutable: bool | None = None) -> str:
    """The SQLite URI that opens ``path`` for reading only (``mode=ro``): SQLite refuses every
    write through it, to the database and its journal.

    ``immutable`` (default: when probe could not write the file or its directory) also tells
    SQLite that nobody writes it: a read-only medium cannot hold the WAL index (-shm) SQLite
    would otherwise need to read a WAL database. A file someone may be writing (a probe still
    running) is not immutable: each read then sees a consistent snapshot of it.
    """
    if immutable is None:
        immutable = not _writable(path)
    return f"{path.resolve().as_uri()}?mode=ro{'&immutable=1' if immutable else ''}"


#: What SQLite raises when a query fails on a database that opened (a page damaged since, a
#: disk error): commands that read catch it beside :class:`StoreError`, without importing sqlite3.
SQLiteError = sqlite3.Error


class StoreError(ProbeError):
    """The database cannot be used: not SQLite, not a probe database, too new, unwritable."""


class Connection:
    """An open, migrated probe database: the connection every part of :class:`Store` shares."""

    def __init__(self, conn: sqlite3.Connection, path: str) -> None:
        self.conn = conn
        self.path = path
        self._db: sqlite_utils.Database | None = None
        self.readonly = False  # opened read-only (a database probe cannot write)

    @classmethod
    def open(cls, path: str | Path, *, create: bool = True, check: bool = False,
             readonly: bool = False) -> Self:
        """Open (creating it and its parent directories if needed) and migrate a database.

        ``":memory:"`` opens a private in-memory database. With ``create=False`` a missing file
        is an error, and a database probe cannot write (read-only file, directory or medium) is
        opened read-only, for reading. Raises :class:`StoreError` naming the file and the reason.

        Nothing is written before the file is known to be a probe database: another
        application's SQLite file is refused untouched (no WAL switch). Opening reads the header
        and the schema only, so that it costs the same for a database of kilobytes or gigabytes:
        a damaged page a command reads later is an error then (:data:`SQLiteError`), and
        ``probe check`` reads the whole file on demand (:mod:`probe.store.integrity`).

        ``check=True`` (``probe run``, ``import``, ``reclassify``: the commands that write
        measurements) first runs SQLite's ``PRAGMA quick_check``, which reads every page once,
        and refuses a corrupt database before anything is written into it. Opening also checks
        when it is about to write on its own (an older schema to upgrade, the switch to WAL).
        Commands that only read never pay it: quick_check took minutes on a merged database of
        gigabytes (7 minutes for 9 GB under load; 5-12 s of CPU on 4.45 GB for a query of 0.02 s).

        ``readonly=True`` opens an existing database for reading only, whoever may write it: no
        migration, no WAL switch, no write of any kind (SQLite refuses them: ``query_only``). For
        researchers' scripts and notebooks (docs/research.md); a probe may keep writing the file
        meanwhile. A database of an older schema is refused (any probe command upgrades it).
        """
        name = str(path)
        asked_readonly = readonly
        if readonly and name == ":memory:":
            raise StoreError(":memory: cannot be opened read-only (it would be empty)")
        if name != ":memory:":
            p = Path(path)
            if p.is_dir():
                raise StoreError(f"{name}: is a directory, not a database file")
            if not p.exists():
                if not create or asked_readonly:
                    raise StoreError(f"{name}: no such database (run `probe run` first?)")
                try:
                    p.parent.mkdir(parents=True, exist_ok=True)
                except OSError as exc:
                    raise StoreError(f"{name}: cannot create its directory: {exc}") from None
            elif (not create or asked_readonly) and not _writable(p):
                readonly = True
                asked_readonly = False  # nobody can write it: read it as immutable, below
        try:
            if readonly:
                conn = sqlite3.connect(readonly_uri(p, immutable=not asked_readonly), uri=True,
                                       timeout=_BUSY_TIMEOUT_MS / 1000, isolation_level=None,
                                       check_same_thread=False)
            else:
                conn = sqlite3.connect(name, timeout=_BUSY_TIMEOUT_MS / 1000,
                                       isolation_level=None, check_same_thread=False)
        except sqlite3.Error as exc:
            raise StoreError(f"{name}: cannot open: {exc}") from None
        store = cls(conn, name)
        store.readonly = readonly
        try:
            store._refuse_foreign()
            if not readonly and (check or store._writes_on_open()):
                store._check_integrity()
            store._configure()
            store._migrate()
        except StoreError:
            conn.close()
            raise
        except sqlite3.DatabaseError as exc:
            conn.close()
            if "malformed" in str(exc):
                raise StoreError(
                    f"{name}: the database is corrupt ({exc}); nothing was written to it. Keep a "
                    f"copy, then try `sqlite3 {name} .recover`"
                ) from None
            raise StoreError(f"{name}: not a usable SQLite database: {exc}") from None
        return store

    def _refuse_foreign(self) -> None:
        """StoreError for a SQLite file of another application; reads only (nothing changes)."""
        c = self.conn
        c.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
        # Reading the header is the first access: a non-SQLite file fails here.
        c.execute("PRAGMA schema_version").fetchone()
        app_id = self._value("PRAGMA application_id")
        tables = self._tables()
        if app_id not in (0, APPLICATION_ID) or (tables and "schema_migrations" not in tables):
            shown = ", ".join(tables[:5]) + (", ..." if len(tables) > 5 else "")
            raise StoreError(
                f"{self.path}: not a probe database "
                f"(application_id {app_id:#x}; tables: {shown or 'none'}); left untouched"
            )

    def _writes_on_open(self) -> bool:
        """Opening will write: a migration to apply, or the switch to WAL."""
        if self.path == ":memory:":
            return False
        mode = str(self._value("PRAGMA journal_mode")).lower()
        return mode != "wal" or self.schema_version() < SCHEMA_VERSION

    def _check_integrity(self) -> None:
        """StoreError when SQLite's quick_check finds damage: nothing is written into it then.

        quick_check reads every page once (no index cross-check): well under a second for the
        databases of bench/ (docs/reliability.md), paid once per opening for writing.
        """
        if self.path == ":memory:":
            return
        problems = [r["quick_check"] for r in self._rows("PRAGMA quick_check(5)")]
        if problems != ["ok"]:
            raise StoreError(
                f"{self.path}: the database is corrupt ({'; '.join(problems[:3])}); nothing was "
                f"written to it. Keep a copy, then try `sqlite3 {self.path} .recover`"
            )

    @property
    def db(self) -> sqlite_utils.Database:
        """The same connection as a :class:`sqlite_utils.Database`: the researcher's Python face
        of a results database (docs/research.md: tables, columns, queries, rows as dicts), and
        the introspection of ``probe explore`` (:mod:`probe.store.explore`).

        Plugins and recursive triggers stay off, so the connection behaves the same whether or
        not it was made; on a store opened ``readonly=True`` every write through it fails.
        """
        if self._db is None:
            # Imported here, on first use: never on the store's own paths. Importing sqlite-utils
            # costs 0.12 s of CPU, and 1.4 s and +95 MB where pandas is installed (it imports
            # pandas when it can), on commands that take 0.1-0.4 s; its reads cost 2x positional
            # tuples a row and its inserts 3.8x (bench/bench_read.py, bench_insert.py: docs/bench.md).
            import sqlite_utils

            self._db = sqlite_utils.Database(
                self.conn, recursive_triggers=False, execute_plugins=False
            )
        return self._db

    def _tables(self) -> list[str]:
        sql = ("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' "
               "ORDER BY name")  # fmt: skip
        return [row["name"] for row in self._rows(sql)]

    def close(self) -> None:
        """Close the connection (committed data is already on disk)."""
        self.conn.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _configure(self) -> None:
        c = self.conn
        # The stored observations as JSON for SQL (json_extract, json_each), and the packing of
        # migration 11 (probe/store/observations.py).
        c.create_function("observations_json", 1, observations.json_text, deterministic=True)
        c.create_function("probe_pack_legacy", 2, observations.pack_legacy, deterministic=True)
        if self.readonly:
            c.execute("PRAGMA query_only = 1")
            return
        if not self._tables():
            # A new database: 8 KiB pages hold ten packed observations (about 800 bytes each)
            # where 4 KiB pages held four and left a fifth of each page empty (3,537 against
            # 3,461 bytes a measurement on the research bench). Only before the first table,
            # and before WAL: the page size of a database is fixed from then on.
            c.execute(f"PRAGMA page_size = {_PAGE_SIZE}")
        if self.path != ":memory:":
            mode = self._value("PRAGMA journal_mode = WAL")
            if str(mode).lower() != "wal":
                raise StoreError(f"{self.path}: cannot switch to WAL journal mode (got {mode})")
        c.execute("PRAGMA synchronous = NORMAL")
        # 8 MiB: the writer appends, so a big cache only holds pages it will not read again
        # (32 MiB made most of the RSS growth in bench/); big reads are sequential scans anyway.
        c.execute("PRAGMA cache_size = -8192")
        c.execute("PRAGMA temp_store = MEMORY")

    def schema_version(self) -> int:
        """The highest migration applied (0 for an empty database)."""
        if "schema_migrations" not in self._tables():
            return 0
        return int(self._value("SELECT max(version) FROM schema_migrations") or 0)

    def _migrate(self) -> None:
        c = self.conn  # a foreign database was refused by _refuse_foreign already
        current = self.schema_version()
        if current > SCHEMA_VERSION:
            raise StoreError(
                f"{self.path}: written by a newer probe (schema version {current}, this probe "
                f"knows up to {SCHEMA_VERSION}); upgrade probe to read it"
            )
        if current == SCHEMA_VERSION:
            return
        if self.readonly:
            raise StoreError(
                f"{self.path}: read-only, and written by an older probe (schema version "
                f"{current}); open it where probe can write, once, to upgrade it"
            )
        with self.transaction():
            c.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                "version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
            )
            c.execute(f"PRAGMA application_id = {APPLICATION_ID}")
        for version, name, sql in MIGRATIONS:
            with self.transaction():
                # Re-check inside the lock: another process may have migrated meanwhile.
                if self._value("SELECT 1 FROM schema_migrations WHERE version = ?", (version,)):
                    continue
                for statement in _split_sql(sql):
                    c.execute(statement)
                self.insert_records("schema_migrations",
                                    [{"version": version, "name": name, "applied_at": _now()}])  # fmt: skip
        c.execute("ANALYZE sqlite_schema")  # load the planner statistics into this connection

    # --- transactions and named rows ---------------------------------------------------------
    def transaction(self) -> Transaction:
        """A write transaction: ``with store.transaction(): ...`` commits, or rolls back on error.

        Every write of the store is one: ``BEGIN IMMEDIATE`` takes the write lock at once, so
        a second writer waits (busy timeout) instead of failing on a read-to-write upgrade.
        sqlite-utils writes made inside it nest as savepoints (its ``Database.atomic``).
        """
        return Transaction(self.conn)

    def insert_records(self, table: str, records: Iterable[Mapping[str, Any]]) -> int:
        """Insert rows given as column -> value mappings (every one with the same columns), in
        one prepared statement; call it inside :meth:`transaction`. Returns the last rowid.

        ``table`` and the column names come from probe's code, never from data.
        """
        it = iter(records)
        first = next(it, None)
        if first is None:
            return 0
        sql = (f"INSERT INTO {table} ({', '.join(first)}) "
               f"VALUES ({', '.join(':' + c for c in first)})")  # fmt: skip
        cur = self.conn.cursor()
        cur.execute(sql, first)
        last = cur.lastrowid
        rest = list(it)
        if rest:
            cur.executemany(sql, rest)
            last = self._value("SELECT last_insert_rowid()")
        return int(last or 0)

    def _update(self, table: str, row_id: int, updates: Mapping[str, Any]) -> None:
        """Set columns (by name) of the row of ``table`` whose ``id`` is ``row_id`` (none: no-op)."""
        sets = ", ".join(f"{c} = :{c}" for c in updates)
        self.conn.execute(f"UPDATE {table} SET {sets} WHERE id = :id_", {**updates, "id_": row_id})

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Cursor:
        """Execute ``sql``; its rows are :class:`sqlite3.Row`, read by column name."""
        return named_rows(self.conn, sql, params)

    def _row(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Row | None:
        """The first row of ``sql`` (by column name), or None."""
        row: sqlite3.Row | None = self._rows(sql, params).fetchone()
        return row

    def _value(self, sql: str, params: Sequence[Any] = ()) -> Any:
        """The one value ``sql`` selects (a count, a max, an id), or None when no row."""
        return scalar(self.conn, sql, params)


def named_rows(conn: sqlite3.Connection, sql: str, params: Sequence[Any] = ()) -> sqlite3.Cursor:
    """Execute ``sql`` on ``conn``; its rows are :class:`sqlite3.Row`, read by column name.

    The row factory is the cursor's, not the connection's: code handed ``store.conn`` (tests,
    ad-hoc queries, an import's extra rows) still gets plain tuples.
    """
    cur = conn.cursor()
    cur.row_factory = sqlite3.Row
    return cur.execute(sql, params)


def filters(*conditions: tuple[str, object | None]) -> tuple[str, list[Any]]:
    """The optional filters of a query: `` AND condition`` for each ``(condition, value)`` whose
    value is not None (a condition with one ``?``, from probe's code), and their parameters."""
    sql, params = "", list[Any]()
    for condition, value in conditions:
        if value is not None:
            sql += f" AND {condition}"
            params.append(value)
    return sql, params


def verdicts_in_order(
    column: str, verdicts: Iterable[str] | None, order_by: str, limit: int | None
) -> tuple[str, list[Any]]:
    """The end of a results query: `` AND column IN (...)`` when ``verdicts`` is given (any of
    them; none at all selects nothing), then ``ORDER BY order_by`` and ``LIMIT``; and the
    parameters. ``column`` and ``order_by`` come from probe's code."""
    sql, params = "", list[Any]()
    if verdicts is not None:
        wanted = list(dict.fromkeys(verdicts))
        sql += f" AND {column} IN ({','.join('?' * len(wanted))})" if wanted else " AND 0"
        params.extend(wanted)
    sql += f" ORDER BY {order_by}"
    if limit is not None:
        sql += " LIMIT ?"
        params.append(int(limit))
    return sql, params


def scalar(conn: sqlite3.Connection, sql: str, params: Sequence[Any] = ()) -> Any:
    """The one value ``sql`` selects (a count, a max, an id), or None when there is no row."""
    row = conn.execute(sql, params).fetchone()
    return None if row is None else row[0]


def typed_rows(conn: sqlite3.Connection, row_type: type[RowT], sql: str,
               params: Sequence[Any] | Mapping[str, Any] = ()) -> Iterator[RowT]:
    """Execute ``sql`` on ``conn``; its rows come as ``row_type``, a NamedTuple read by field name.

    The query's column names (``SELECT ... AS name``) must be the row type's fields, in order:
    checked once per query, so a column added, dropped or moved in the SQL fails here, naming
    both lists, instead of shifting a value into another field. Building the tuples costs next
    to nothing (``tuple.__new__`` in C, no Python call per row): what callers pay for reading by
    name is the attribute access (about 0.1 us a field).
    """
    cur = conn.execute(sql, params)
    fields: tuple[str, ...] = getattr(row_type, "_fields", ())
    names = tuple(d[0] for d in cur.description or ())
    if names != fields:
        cur.close()
        raise TypeError(f"{row_type.__name__}: the query selects {names}, the row type has {fields}")
    return map(cast("Any", functools.partial(tuple.__new__, row_type)), cur)


def typed_row(conn: sqlite3.Connection, row_type: type[RowT], sql: str,
              params: Sequence[Any] | Mapping[str, Any] = ()) -> RowT | None:
    """The first row of ``sql`` as ``row_type`` (see :func:`typed_rows`), or None."""
    return next(typed_rows(conn, row_type, sql, params), None)


def dict_rows(cur: sqlite3.Cursor) -> Iterator[dict[str, Any]]:
    """The rows of ``cur`` as dicts keyed by column name (``SELECT ... AS key`` names them)."""
    names = [d[0] for d in cur.description]
    for row in cur:
        yield dict(zip(names, row, strict=True))


class Transaction:
    """``BEGIN IMMEDIATE`` ... ``COMMIT`` (``ROLLBACK`` on any exception): see
    :meth:`Connection.transaction`."""

    __slots__ = ("conn",)

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def __enter__(self) -> None:
        self.conn.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            self.conn.execute("COMMIT")
        elif self.conn.in_transaction:  # an error (disk full) may have rolled it back already
            self.conn.execute("ROLLBACK")


def _split_sql(sql: str) -> list[str]:
    """Split a migration into statements (sqlite3.execute runs one at a time)."""
    out: list[str] = []
    buf: list[str] = []
    for line in sql.splitlines():
        if line.strip().startswith("--") and not buf:
            continue
        buf.append(line)
        candidate = "\n".join(buf)
        if sqlite3.complete_statement(candidate):
            out.append(candidate.strip())
            buf = []
    if "".join(buf).strip():
        out.append("\n".join(buf).strip())
    return out
