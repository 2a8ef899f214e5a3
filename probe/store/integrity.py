"""``probe check``: read a whole results database and say whether SQLite finds it sound.

Opening a database reads its header and schema only (:meth:`Connection.open`), so that a
command costs what it returns, not the size of the file. The full check is on demand: SQLite's
``PRAGMA integrity_check`` (every page, every index entry against its row) and
``PRAGMA foreign_key_check`` (rows that refer to a row that is not there, such as an
observation without its measurement), on a read-only connection: nothing is written, not even
a schema upgrade, so a database from an older probe, a backup on a read-only medium or a copy
sent by someone else can be checked as it is.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path

from probe.store.connection import Connection, StoreError, named_rows, readonly_uri, scalar
from probe.store.schema import SCHEMA_VERSION

__all__ = ["IntegrityReport", "check_database"]


@dataclass(frozen=True)
class IntegrityReport:
    """What a full check of one database found."""

    path: str
    size_bytes: int  # the database file (its WAL not included)
    pages: int
    schema_version: int
    seconds: float  # how long the check took (wall clock)
    problems: tuple[str, ...] = ()  # integrity_check's findings, at most ``max_problems``
    more_problems: bool = False  # integrity_check stopped at the limit: there may be more
    orphans: dict[str, int] = field(default_factory=dict)  # table -> rows whose parent is missing

    @property
    def ok(self) -> bool:
        """Nothing found."""
        return not self.problems and not self.orphans

    @property
    def newer(self) -> bool:
        """Written by a newer probe than this one (checked all the same: SQLite's structure)."""
        return self.schema_version > SCHEMA_VERSION


def check_database(path: str | Path, *, max_problems: int = 20) -> IntegrityReport:
    """Check every page and row of the probe database at ``path``, reading only.

    Raises :class:`StoreError` when the file is missing, not SQLite or another application's
    database (nothing to check). Damage is not an exception but the report's ``problems``.
    """
    p = Path(path)
    if not p.is_file():
        raise StoreError(f"{p}: no such database file")
    t0 = time.perf_counter()
    try:
        conn = sqlite3.connect(readonly_uri(p), uri=True, isolation_level=None)
    except sqlite3.Error as exc:
        raise StoreError(f"{p}: cannot open: {exc}") from None
    try:
        store = Connection(conn, str(p))
        store.readonly = True
        try:
            store._refuse_foreign()  # the check every opening makes
            version = store.schema_version()
            pages = int(scalar(conn, "PRAGMA page_count") or 0)
        except sqlite3.DatabaseError as exc:  # the header or the schema itself is damaged
            return IntegrityReport(str(p), p.stat().st_size, 0, 0, time.perf_counter() - t0,
                                   (f"the schema cannot be read: {exc}",))  # fmt: skip
        limit = max(1, max_problems)
        try:
            found = [r[0] for r in conn.execute(f"PRAGMA integrity_check({limit})")]
        except sqlite3.DatabaseError as exc:
            found = [f"integrity_check stopped: {exc}"]
        problems = tuple(x for x in found if x != "ok")
        orphans: dict[str, int] = {}
        if not problems:  # foreign keys of a damaged file would only repeat the damage
            for row in named_rows(conn, "PRAGMA foreign_key_check"):
                orphans[row["table"]] = orphans.get(row["table"], 0) + 1
        return IntegrityReport(str(p), p.stat().st_size, pages, version, time.perf_counter() - t0,
                               problems, len(problems) >= limit, orphans)  # fmt: skip
    finally:
        conn.close()
