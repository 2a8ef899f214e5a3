"""Files probe writes for people (exports, reports, golden cases, downloads): never destroying what
probe did not write.

Every output file is first written under a temporary name of its own in the directory it goes to
(``.NAME.XXXXXXXX.partial``, created exclusively, so no file that already exists is ever
opened for writing or removed), then put in place with one rename, atomic on the same file
system: a reader sees the old file or the new one, never half of one, and an interrupted write
leaves the old file as it was (and removes its own temporary file). Several files that belong
together are staged first and renamed one after the other once all are written
(:func:`stage_files`).

A directory of outputs (``probe export --format parquet -o DIR``) may hold other files: the
export writes only its own, and refuses, without ``--force``, a directory that holds anything
else (:func:`check_output_dir`); nothing is ever deleted. An output file is never a SQLite
database (a mistyped ``-o results/probe.db`` would replace the results): that is refused too
(:func:`check_output_file`).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from probe.core.errors import ProbeUsageError

__all__ = ["OutputError", "Staged", "check_output_dir", "check_output_file", "replacing",
           "stage_files", "staged"]

_SQLITE_MAGIC = b"SQLite format 3\0"
_TEMP_SUFFIX = ".partial"


class OutputError(ProbeUsageError):
    """An output path probe will not write to (the message says why and what to do)."""


def _is_temp(name: str) -> bool:
    """A temporary name of :class:`Staged` (``.NAME.XXXXXXXX.partial``)."""
    return name.startswith(".") and _TEMP_SUFFIX in name


class Staged:
    """A new version of ``path`` being written under a temporary name in the same directory.

    The temporary file is created exclusively (``O_EXCL``, a random name), with the mode a new
    file gets from the umask. :meth:`commit` makes it ``path`` (one rename); :meth:`discard`
    removes it. Either may be called once; the other is then a no-op. ``suffix`` ends the
    temporary name, for readers that go by it (``.mmdb``).
    """

    def __init__(self, path: Path, *, suffix: str = "") -> None:
        self.path = Path(path)
        if self.path.is_dir():
            raise OutputError(f"{self.path}: is a directory, not a file")
        parent = self.path.parent
        for _ in range(16):
            tmp = parent / f".{self.path.name}.{secrets.token_hex(4)}{_TEMP_SUFFIX}{suffix}"
            try:
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
            except FileExistsError:
                continue
            os.close(fd)
            self.tmp = tmp
            self._done = False
            return
        raise FileExistsError(f"{parent}: no free temporary name for {self.path.name}")

    def commit(self) -> None:
        """Put the written file in place: its bytes reach the disk, then one rename."""
        if self._done:
            return
        fd = os.open(self.tmp, os.O_RDONLY)
        try:
            os.fsync(fd)  # the content before the name: a crash never leaves an empty file
        finally:
            os.close(fd)
        os.replace(self.tmp, self.path)
        self._done = True

    def discard(self) -> None:
        """Remove the temporary file (the file at ``path``, if any, stays as it was)."""
        if self._done:
            return
        self.tmp.unlink(missing_ok=True)
        self._done = True


@contextmanager
def staged(path: Path, *, suffix: str = "") -> Iterator[Staged]:
    """``with staged(path) as s:`` write ``s.tmp``; committed at the end, discarded on error.

    For writers that open the file themselves by name (pyarrow, SQLite, a packer); ``suffix``
    ends the temporary name (:class:`Staged`).
    """
    s = Staged(path, suffix=suffix)
    try:
        yield s
        s.commit()
    finally:
        s.discard()  # a no-op once committed


@contextmanager
def replacing(path: Path, mode: str = "w", **kwargs: Any) -> Iterator[Any]:
    """``with replacing(path) as fh:`` write a new ``path`` atomically (``open`` arguments)."""
    with staged(path) as s, open(s.tmp, mode, **kwargs) as fh:
        yield fh


@contextmanager
def stage_files(paths: Sequence[Path]) -> Iterator[list[Staged]]:
    """Stage several files; once the block ends without error, rename them all into place.

    The renames come one after the other, after every file is complete: a reader of the
    directory sees the old set, then the new one file by file within milliseconds, never a
    file half-written. An error while writing removes every temporary file and replaces
    nothing; only a failing rename itself (an I/O error) could leave the renames done so far.
    """
    items: list[Staged] = []
    try:
        for p in paths:
            items.append(Staged(p))
        yield items
        for s in items:
            s.commit()
    finally:
        for s in items:
            s.discard()  # a no-op for those committed


def check_output_file(path: Path, *, protect: Collection[Path] = ()) -> None:
    """Refuse (:class:`OutputError`) an output file that would replace what probe must not.

    A directory, one of ``protect`` (the database an export reads), or an existing SQLite
    database (a results database named by mistake) is refused; any other existing file is the
    output named by the user and is replaced (atomically) by the writer.
    """
    if path.is_dir():
        raise OutputError(f"{path}: is a directory, not a file")
    if not path.exists():
        return
    for other in protect:
        try:
            if os.path.samefile(path, other):
                raise OutputError(f"{path}: is the database being read; choose another output")
        except OSError:
            continue
    try:
        with open(path, "rb") as fh:
            head = fh.read(len(_SQLITE_MAGIC))
    except OSError:
        return  # unreadable: the writer's rename decides (and reports) what happens
    if head == _SQLITE_MAGIC:
        raise OutputError(f"{path}: is a SQLite database; probe does not overwrite one with an "
                          "output: choose another name")


def check_output_dir(path: Path, names: Collection[str], *, force: bool = False,
                     what: str = "this export") -> list[str]:
    """Make sure ``path`` is a directory where files ``names`` may be written; returns the
    entries it holds that are not among ``names`` (left untouched).

    A missing directory is created. One that holds anything other than ``names`` is refused
    (:class:`OutputError`, naming a few entries) unless ``force``: even then nothing is deleted
    or replaced but ``names``. Temporary files of an interrupted write are not counted.
    """
    if path.exists() and not path.is_dir():
        raise OutputError(f"{path}: exists and is not a directory")
    path.mkdir(parents=True, exist_ok=True)
    wanted = set(names)
    others = sorted(n for n in os.listdir(path) if n not in wanted and not _is_temp(n))
    if others and not force:
        shown = ", ".join(n + ("/" if (path / n).is_dir() else "") for n in others[:5])
        more = f" and {len(others) - 5} more" if len(others) > 5 else ""
        raise OutputError(
            f"{path}: holds files {what} does not write ({shown}{more}); choose a new or empty "
            f"directory, or add --force to write {len(wanted)} files beside them (nothing is "
            "deleted)"
        )
    return others
