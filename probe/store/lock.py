"""One run at a time per database: an advisory lock beside the database file.

Two cron jobs on one database would measure the same URLs at once. ``probe run`` takes an
exclusive ``flock`` on ``DB.lock`` for the whole run; a second run waits for it up to
``--wait-lock`` seconds, then gives up with :class:`DatabaseBusy` (exit 75, EX_TEMPFAIL). The
kernel releases the lock when its process ends however it ends (SIGKILL included), so a dead run
never blocks the next one. Readers (`probe results`, ...) take no lock: SQLite's WAL lets them
read while a run writes.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Iterator
from pathlib import Path

from probe.core.errors import ProbeError
from probe.store.connection import StoreError

__all__ = ["EXIT_BUSY", "DatabaseBusy", "lock_path", "run_lock"]

#: Exit status of a run that found its database busy (sysexits.h EX_TEMPFAIL: try again later).
EXIT_BUSY = 75
_POLL = 0.2  # seconds between attempts while waiting (flock has no timeout of its own)


class DatabaseBusy(ProbeError):
    """Another run holds the database's lock (and did not release it within the wait)."""

    exit_code = EXIT_BUSY


def lock_path(db: str | Path) -> Path:
    """The lock file of database ``db``."""
    return Path(f"{db}.lock")


@contextlib.contextmanager
def run_lock(db: str | Path, wait: float = 0.0) -> Iterator[None]:
    """Hold ``db``'s run lock for the block, waiting up to ``wait`` seconds for it.

    Raises :class:`DatabaseBusy` naming the database and the holder's pid. ``":memory:"``
    needs no lock.
    """
    if str(db) == ":memory:":
        yield
        return
    path = lock_path(db)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
            created = True
        except FileExistsError:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            created = False
    except OSError as exc:  # e.g. a service started in / with a relative --db: say so, no traceback
        raise StoreError(f"{db}: cannot create its lock file {path}: {exc.strerror or exc} "
                         "(is the database's directory writable?)") from None
    try:
        deadline = time.monotonic() + max(0.0, wait)
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
                    waited = f" after waiting {wait:g} s" if wait > 0 else ""
                    raise DatabaseBusy(
                        f"{db}: another probe run (pid {holder or '?'}) is using this database"
                        f"{waited}; nothing was measured. Use --wait-lock SECONDS to wait for it"
                    ) from None
                time.sleep(min(_POLL, remaining))  # a bounded wait for a lock, not a sync
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        try:
            yield
        except StoreError:
            # The database was refused (another application's file, corrupt, too new): no run
            # can use it, so the lock file this run put beside it goes too (outputs never leave
            # what they had no business writing). Removed while still held.
            if created:
                path.unlink(missing_ok=True)
            raise
    finally:
        os.close(fd)  # releases the lock
