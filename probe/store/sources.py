"""A database to merge from (``probe merge SOURCE... --into OUT``): read, never written.

Other people's files are read as they are: each source is opened read-only (``mode=ro``; SQLite
refuses every write through the connection, so not even probe's schema or a switch to WAL can
reach an empty or foreign file), and refused untouched when it is not a probe database, is
empty, or was written by a newer probe. A source of an older schema is copied (SQLite's backup)
into a temporary file beside the output, which is upgraded and read instead; the source itself
stays as it was.

Before a source is merged, every row of it is checked (:mod:`probe.store.validate`); that is the
expensive part, read once per source. To make merging
the same sources again cheap, :func:`fingerprint` says what a source holds in a few index
lookups (the largest id of every table, the newest re-judgement, the runs and vantage points
whole): the output remembers the fingerprint of every source it merged (``merged_sources``),
and a source whose fingerprint is there is skipped unread.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import tempfile
from dataclasses import dataclass
from pathlib import Path

from probe.store.connection import StoreError, readonly_uri
from probe.store.schema import APPLICATION_ID, SCHEMA_VERSION

__all__ = ["Source", "fingerprint", "inspect_source"]

_SQLITE_MAGIC = b"SQLite format 3\0"
_NOT_CONTENT = ("schema_migrations", "latest", "merged_sources")


class SourceError(StoreError):
    """A source that cannot be merged (the message names the file and why)."""


@dataclass
class Source:
    """A source database, opened read-only: where it is and what it is."""

    path: Path  # as given
    version: int  # its schema version
    read_path: Path  # the file read: the source, or an upgraded temporary copy of it
    temporary: bool = False

    def connect(self) -> sqlite3.Connection:
        """A new read-only connection to the file read (each thread makes its own)."""
        return sqlite3.connect(readonly_uri(self.read_path, immutable=self.immutable), uri=True,
                               isolation_level=None, timeout=30.0)  # fmt: skip

    @property
    def immutable(self) -> bool | None:
        """A temporary copy changes no more; a source is immutable only where nobody can write."""
        return True if self.temporary else None

    def attach_uri(self) -> str:
        """The URI to ``ATTACH`` the file read-only."""
        return readonly_uri(self.read_path, immutable=self.immutable)

    def upgrade(self, beside: Path) -> None:
        """Read an older source through an upgraded copy in a temporary file in ``beside``.

        The copy is SQLite's online backup of the source (a consistent snapshot), opened by
        probe's store, which migrates it: exactly what probe would make of the source itself.
        """
        if self.version >= SCHEMA_VERSION:
            return
        from probe.store.database import Store  # the store migrates; imported where needed

        fd, name = tempfile.mkstemp(prefix=f".{self.path.name}.upgrade-", suffix=".db", dir=beside)
        os.close(fd)
        tmp = Path(name)
        try:
            with sqlite3.connect(readonly_uri(self.path), uri=True) as src, \
                    sqlite3.connect(tmp) as dst:
                src.backup(dst)
            Store.open(tmp, create=False).close()
        except (sqlite3.Error, StoreError) as exc:
            _remove(tmp)
            raise SourceError(f"{self.path}: cannot be upgraded for merging: {exc}") from None
        self.read_path, self.temporary = tmp, True

    def cleanup(self) -> None:
        """Remove the temporary copy, if one was made."""
        if self.temporary:
            _remove(self.read_path)
            self.read_path, self.temporary = self.path, False


def _remove(path: Path) -> None:
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def inspect_source(path: Path, output: Path) -> Source:
    """Open ``path`` read-only and say what it is; :class:`SourceError` when it cannot be merged.

    Reads the header and the schema only (cheap whatever the size): every source is inspected
    before anything is written to the output.
    """
    if not path.exists():
        raise SourceError(f"{path}: no such file; nothing merged")
    if path.is_dir():
        raise SourceError(f"{path}: is a directory, not a database file; nothing merged")
    try:
        if output.exists() and os.path.samefile(path, output):
            raise SourceError(f"{path}: is the output database itself; nothing merged")
        with open(path, "rb") as fh:
            head = fh.read(len(_SQLITE_MAGIC))
    except OSError as exc:
        raise SourceError(f"{path}: cannot read: {exc.strerror or exc}; nothing merged") from None
    if not head:
        raise SourceError(f"{path}: is empty, not a probe database; left untouched, nothing merged")
    if head != _SQLITE_MAGIC:
        raise SourceError(f"{path}: not a usable SQLite database (no SQLite header); left untouched, "
                          "nothing merged")
    try:
        conn = sqlite3.connect(readonly_uri(path), uri=True, isolation_level=None)
    except sqlite3.Error as exc:
        raise SourceError(f"{path}: cannot open: {exc}; nothing merged") from None
    try:
        app_id = conn.execute("PRAGMA application_id").fetchone()[0]
        tables = [r[0] for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' "
            "ORDER BY name")]
        if app_id not in (0, APPLICATION_ID) or "schema_migrations" not in tables:
            shown = ", ".join(tables[:5]) + (", ..." if len(tables) > 5 else "")
            raise SourceError(f"{path}: not a probe database (application_id {app_id:#x}; tables: "
                              f"{shown or 'none'}); left untouched, nothing merged")
        version = int(conn.execute("SELECT coalesce(max(version), 0) FROM schema_migrations").fetchone()[0])
    except sqlite3.DatabaseError as exc:
        raise SourceError(f"{path}: not a usable SQLite database: {exc}; nothing merged") from None
    finally:
        conn.close()
    if version > SCHEMA_VERSION:
        raise SourceError(f"{path}: written by a newer probe (schema version {version}, this probe "
                          f"knows up to {SCHEMA_VERSION}); upgrade probe to merge it")
    return Source(path, version, path)


def fingerprint(conn: sqlite3.Connection) -> str:
    """What a probe database holds, in a few index lookups: a new row anywhere, a re-judged
    verdict, a run that ended, a vantage point's network learnt later all change it.

    The largest rowid of every table (rows are only ever added), the number of measurements and
    the newest ``classified_at`` (``probe reclassify`` sets it), and the vantage points and runs
    whole (a few rows each). A source whose fingerprint the output has already merged has
    nothing the output lacks.
    """
    h = hashlib.sha256()
    version = conn.execute("SELECT coalesce(max(version), 0) FROM schema_migrations").fetchone()[0]
    h.update(f"schema {version}\n".encode())
    tables = [r[0] for r in conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' "
        "AND sql NOT LIKE '%WITHOUT ROWID%' ORDER BY name")]
    for table in tables:
        if table in _NOT_CONTENT:
            continue
        top = conn.execute(f"SELECT max(rowid) FROM {table}").fetchone()[0]
        h.update(f"{table} {top}\n".encode())
    if "measurements" in tables:
        row = conn.execute("SELECT count(*), max(classified_at) FROM measurements").fetchone()
        h.update(f"measurements {row[0]} {row[1]}\n".encode())
    for table in ("vantage_points", "runs"):
        if table in tables:
            for row in conn.execute(f"SELECT * FROM {table} ORDER BY rowid"):
                h.update(repr(row).encode())
                h.update(b"\n")
    return h.hexdigest()
