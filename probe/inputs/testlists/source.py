"""Opening a test list: a regular file in place, a stream (stdin, pipe, FIFO) copied first."""

from __future__ import annotations

import hashlib
import os
import select
import stat
import sys
import tempfile
from pathlib import Path
from typing import BinaryIO

from probe.inputs.testlists.problems import ListProblem, TestListError

__all__ = ["MAX_STREAM_BYTES", "OpenedList", "open_list"]

# A list read from a stream (stdin, a pipe, a FIFO) is copied to a temporary file, up to this.
MAX_STREAM_BYTES = 256 << 20
# The longest a wait for a stream's data goes without Python looking at pending signals.
_WAKE = 0.25


class OpenedList:
    """A test list opened for reading, named as the user named it.

    A regular file is read in place. Anything else (``-`` for stdin, ``<(cmd)``, a FIFO, a
    device) is a stream that can be read only once: it is copied into an anonymous temporary
    file first, with bounds, so that it can be counted for the progress bar and then read. The
    copy waits for data in ``select`` rather than in a blocking ``open``/``read``, so Ctrl-C and
    SIGTERM end a wait on a FIFO that nobody writes to.
    """

    def __init__(self, name: str, fh: BinaryIO, stream: bool) -> None:
        self.name = name
        self.fh = fh
        self.stream = stream
        #: What results record about the list: its file name, never the directories above it
        #: (home directories carry user names).
        self.label = "<stdin>" if name == "<stdin>" else (Path(name).name or name)
        self._scan: tuple[int, str] | None = None

    def scan(self) -> tuple[int, str]:
        """(lines, sha256 of the content), read once; the list is left at its start."""
        if self._scan is None:
            digest = hashlib.sha256()
            lines = 0
            self.fh.seek(0)
            for chunk in iter(lambda: self.fh.read(1 << 20), b""):
                digest.update(chunk)
                lines += chunk.count(b"\n")
            self.fh.seek(0)
            self._scan = (lines, digest.hexdigest())
        return self._scan

    def identity(self) -> str:
        """``"name sha256:HEX"``: identifies the list's content without the user's paths."""
        return f"{self.label} sha256:{self.scan()[1]}"

    def close(self) -> None:
        self.fh.close()

    def __enter__(self) -> OpenedList:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _spool(fd: int, name: str) -> BinaryIO:
    """Copy a stream into an anonymous temporary file, waiting for data in ``select``."""
    out = tempfile.TemporaryFile()  # noqa: SIM115  (returned open; its owner closes it)
    total = 0
    try:
        while True:
            # Woken every _WAKE seconds, not only by data or EINTR: a signal that lands after
            # Python last checked for one but before select() starts waiting interrupts
            # nothing, and its handler (Ctrl-C's KeyboardInterrupt) runs only when select
            # returns; without a timeout, never.
            if not select.select([fd], [], [], _WAKE)[0]:
                continue
            try:
                chunk = os.read(fd, 1 << 16)
            except BlockingIOError:
                continue
            if not chunk:
                break
            if b"\0" in chunk:
                raise TestListError(ListProblem(
                    name, 0, "binary data (NUL bytes), not a CSV test list"))
            total += len(chunk)
            if total > MAX_STREAM_BYTES:
                raise TestListError(ListProblem(
                    name, 0, f"a list read from a stream is limited to {MAX_STREAM_BYTES >> 20} MiB; "
                    "save it to a file first"))
            out.write(chunk)
    except BaseException:
        out.close()
        raise
    out.seek(0)
    return out  # a binary file object


def open_list(path: str | Path) -> OpenedList:
    """Open one test list (``-``: standard input). Raises :class:`TestListError` naming it."""
    name = str(path)
    if name == "-":
        return OpenedList("<stdin>", _spool(sys.stdin.fileno(), "<stdin>"), True)
    try:
        # O_NONBLOCK: opening a FIFO must not block before anyone writes to it.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise TestListError(ListProblem(name, 0, "no such file")) from None
    except IsADirectoryError:
        raise TestListError(ListProblem(name, 0, "is a directory, not a CSV file")) from None
    except OSError as exc:
        raise TestListError(ListProblem(name, 0, f"cannot read: {exc.strerror or exc}")) from None
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISREG(mode):
            os.set_blocking(fd, True)
            return OpenedList(name, os.fdopen(fd, "rb"), False)
    except BaseException:
        os.close(fd)
        raise
    try:
        if stat.S_ISDIR(mode):
            raise TestListError(ListProblem(name, 0, "is a directory, not a CSV file"))
        return OpenedList(name, _spool(fd, name), True)
    except OSError as exc:
        raise TestListError(ListProblem(name, 0, f"read error: {exc.strerror or exc}")) from None
    finally:
        os.close(fd)
