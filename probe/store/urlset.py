"""A set of URLs kept on disk, for de-duplicating test lists that are streamed, not loaded.

De-duplication has to remember every URL seen, so any in-memory structure grows with the list:
a Python ``set`` of digests costs about 90 bytes per URL, and even a table of 8-byte
fingerprints was 2 MiB at 100,000 URLs (5 MiB at the moment it doubled): most of what the
memory benchmark saw grow between 10,000 and 100,000 URLs (docs/bench.md, issue 16). This set
keeps each URL's 64-bit fingerprint in a private temporary SQLite database instead: SQLite
holds it in a page cache of at most :data:`CACHE_KIB` KiB and spills the rest to a temporary
file (about 16 bytes per URL, deleted when the set is closed), so the memory it takes stops
growing at about 16,000 URLs however long the list is. An ``add`` costs a few microseconds.
Where SQLite cannot write a temporary file (no writable temporary directory, a file-size
limit), the set is kept whole in memory instead (:attr:`URLSet.in_memory`; about 20 bytes per
URL): a failed spill would lose the set, and stop the run, at ~16,000 URLs.

Two different URLs share a 64-bit fingerprint with probability about n² / 2⁶⁵: for a list of a
million URLs, 3 in 100 million that one URL is wrongly skipped as a duplicate.
"""

from __future__ import annotations

import functools
import hashlib
import sqlite3
from types import TracebackType
from typing import Self

__all__ = ["CACHE_KIB", "URLSet"]

#: SQLite's page cache for one set: the most memory it takes, whatever the number of URLs.
CACHE_KIB = 256

#: The page cache when temporary files cannot be written: the whole set, up to this.
_MEMORY_KIB = 1 << 20

_ADD = "INSERT OR IGNORE INTO seen (fp) VALUES (?)"
_HAS = "SELECT 1 FROM seen WHERE fp = ?"


@functools.cache
def _temp_files_work() -> bool:
    """True when SQLite can spill a temporary database to a file (checked once per process)."""
    db = sqlite3.connect("", isolation_level=None)
    try:
        db.execute("PRAGMA cache_size = -64")
        db.execute("CREATE TABLE t (b BLOB)")
        db.execute("INSERT INTO t VALUES (zeroblob(1048576))")  # 1 MiB > the cache: it spills
        return True
    except sqlite3.OperationalError:
        return False
    finally:
        db.close()


class URLSet:
    """Remembers URLs by 64-bit fingerprint, in memory up to a bound and on disk beyond it."""

    __slots__ = ("_db", "_used", "in_memory")

    def __init__(self) -> None:
        # "" opens a private temporary database: SQLite keeps it in its page cache and writes
        # pages to an anonymous temporary file only once the cache is full. One process, one
        # consumer at a time (a generator may be resumed on another thread than it started on).
        self._db = sqlite3.connect("", isolation_level=None, check_same_thread=False)
        #: True when no temporary file can be written and the set is kept in memory.
        self.in_memory = not _temp_files_work()
        self._db.execute(f"PRAGMA cache_size = -{_MEMORY_KIB if self.in_memory else CACHE_KIB}")
        # Nothing to recover after a crash: no journal, no syncs.
        self._db.execute("PRAGMA journal_mode = OFF")
        self._db.execute("PRAGMA synchronous = OFF")
        self._db.execute("CREATE TABLE seen (fp INTEGER PRIMARY KEY)")
        self._used = 0

    def __len__(self) -> int:
        return self._used

    @staticmethod
    def _fingerprint(url: str) -> int:
        digest = hashlib.blake2b(url.encode("utf-8"), digest_size=8).digest()
        return int.from_bytes(digest, "little", signed=True)  # SQLite integers are signed

    def add(self, url: str) -> bool:
        """Add ``url``; True if it was new, False if it was already in the set."""
        new = self._db.execute(_ADD, (self._fingerprint(url),)).rowcount == 1
        self._used += new
        return new

    def __contains__(self, url: object) -> bool:
        if not isinstance(url, str):
            return False
        row = self._db.execute(_HAS, (self._fingerprint(url),))
        return row.fetchone() is not None

    def close(self) -> None:
        """Forget every URL and delete the temporary file (also done when the set is freed)."""
        self._db.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
