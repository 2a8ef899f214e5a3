"""Streaming OONI's files (JSON Lines, plain or gzip, or the files of a directory), bounded.

Other people's files are read as hostile: whatever a file holds, memory stays within a bound set
by :class:`Limits`, and one bad line costs that line only.

- Lines are read in chunks of :data:`CHUNK` bytes and split here: a line longer than
  ``max_line`` bytes is skipped as it streams past, never held (a 10 GiB line costs one chunk).
- A line is parsed only when its count of values (``{``, ``[`` and ``,``: each at most one
  container or item) is within ``max_line // 8``: a megabyte of ``{},{},...`` would otherwise
  become hundreds of megabytes of Python objects. Real measurements hold a few thousand (the
  largest of the test corpus: 3,700 in 817 kB).
- JSON nesting is bounded by the interpreter's recursion limit (msgspec checks it): a line
  nested deeper is skipped, not a crash.
- A ``.gz`` file that decompresses to more than ``max_ratio`` times the compressed bytes read so
  far (plus one chunk) is a compression bomb or not OONI's data: the rest of the file is skipped.
- Anything that is not a regular file or a directory (a FIFO, ``/dev/zero``) is refused.

Every problem comes out as a :class:`OONIFormatError` at its ``file:line`` for the importer to
report; the good lines of the same file are still read.
"""

from __future__ import annotations

import gzip
import stat
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import msgspec

from probe.research.ooni.record import OONIFormatError

__all__ = ["CHUNK", "DEFAULT_MAX_LINE", "DEFAULT_MAX_RATIO", "Limits", "iter_lines"]

#: Bytes read from a file at a time.
CHUNK = 1 << 20
#: Longest line read by default: OONI's measurements are kilobytes to a megabyte (bodies are
#: cut at 512 KiB to 1 MiB by OONI Probe); 8 MiB leaves room for long redirect chains.
DEFAULT_MAX_LINE = 8 << 20
#: Largest decompression ratio of a ``.gz`` file by default: OONI's JSON compresses 5-15 times.
DEFAULT_MAX_RATIO = 100

_decode = msgspec.json.Decoder().decode


@dataclass(frozen=True)
class Limits:
    """How much of a file is read: the longest line and the largest gzip ratio."""

    max_line: int = DEFAULT_MAX_LINE
    max_ratio: float = DEFAULT_MAX_RATIO

    @property
    def max_values(self) -> int:
        """Most JSON values one line may hold (``{``, ``[`` and ``,`` counted)."""
        return max(1024, self.max_line // 8)


class _Counting:
    """A binary file that counts the bytes read from it (the compressed side of a .gz)."""

    def __init__(self, raw: IO[bytes]) -> None:
        self.raw = raw
        self.count = 0

    def read(self, n: int = -1) -> bytes:
        data = self.raw.read(n)
        self.count += len(data)
        return data

    def __getattr__(self, name: str) -> Any:
        return getattr(self.raw, name)


class _Bomb(OONIFormatError):
    pass


def _chunks(path: Path, limits: Limits) -> Iterator[bytes]:
    """The decompressed bytes of ``path``, :data:`CHUNK` at a time; raises :class:`_Bomb` when a
    .gz file decompresses to more than the ratio allows."""
    with path.open("rb") as raw:
        if path.suffix != ".gz":
            while chunk := raw.read(CHUNK):
                yield chunk
            return
        counted = _Counting(raw)
        out = 0
        with gzip.GzipFile(fileobj=counted, mode="rb") as gz:
            while chunk := gz.read(CHUNK):
                out += len(chunk)
                if out > limits.max_ratio * counted.count + CHUNK:
                    raise _Bomb(f"decompresses to more than {limits.max_ratio:g} times its size "
                                "(a compression bomb, or not OONI's data): the rest of the file "
                                "is skipped (--max-ratio)")
                yield chunk


def _raw_lines(path: Path, limits: Limits) -> Iterator[tuple[int, bytes | int]]:
    """``(line number, bytes)`` of each line, or ``(line number, length)`` for a line longer than
    ``max_line``, which is never held whole."""
    n = 0
    parts: list[bytes] = []
    held = 0  # bytes in parts
    skipped = -1  # length of the over-long line being skipped, -1 when none
    for chunk in _chunks(path, limits):
        start = 0
        while True:
            end = chunk.find(b"\n", start)
            piece = chunk[start:] if end < 0 else chunk[start:end]
            if skipped >= 0:
                skipped += len(piece)
            elif held + len(piece) > limits.max_line:
                skipped = held + len(piece)
                parts, held = [], 0
            else:
                parts.append(piece)
                held += len(piece)
            if end < 0:
                break
            n += 1
            if skipped >= 0:
                yield n, skipped
            else:
                yield n, b"".join(parts)
            parts, held, skipped = [], 0, -1
            start = end + 1
    if skipped >= 0:
        yield n + 1, skipped
    elif held:
        yield n + 1, b"".join(parts)


def _parse(line: bytes, limits: Limits) -> Any:
    """One line's JSON, or :class:`OONIFormatError` saying why it cannot be had."""
    values = line.count(b"{") + line.count(b"[") + line.count(b",")
    if values > limits.max_values:
        return OONIFormatError(f"more than {limits.max_values:,} JSON values in one line "
                               "(not a measurement; --max-line-bytes raises the bound)")
    try:
        return _decode(line)
    except msgspec.DecodeError as exc:
        return OONIFormatError(f"not JSON: {exc}")
    except RecursionError:
        return OONIFormatError("not JSON: nested deeper than a measurement ever is")


def _files(paths: Iterable[Path]) -> Iterator[tuple[Path, str | None]]:
    """Each file to read, with the reason it cannot be read (None: it can)."""
    for p in paths:
        if p.is_dir():
            for f in sorted(p.rglob("*")):
                if f.is_file() and (f.suffix in (".json", ".jsonl", ".gz")):
                    yield f, None
            continue
        try:
            mode = p.stat().st_mode
        except OSError as exc:
            yield p, f"cannot read: {exc.strerror or exc}"
            continue
        yield p, None if stat.S_ISREG(mode) else "not a regular file (a device or a pipe?)"


def iter_lines(paths: Iterable[Path], *, limits: Limits = Limits()
               ) -> Iterator[tuple[str, int, Any]]:
    """Yield ``(file, line, parsed JSON or OONIFormatError)`` for every non-empty line.

    Files are JSON Lines (OONI's archive format), plain or gzip. A ``.json`` file that is one
    pretty-printed object (as in OONI's test fixtures) is read whole when its first line is not
    JSON by itself and the file is no longer than ``limits.max_line``. Memory stays within the
    limits (see the module's docstring). A file that cannot be read on is one error, at the
    line where reading stopped (0: the file itself).
    """
    for f, refused in _files(paths):
        name = str(f)
        if refused is not None:
            yield name, 0, OONIFormatError(refused)
            continue
        first = True
        at = 0  # the last line read
        try:
            for at, raw in _raw_lines(f, limits):
                if isinstance(raw, int):
                    yield name, at, OONIFormatError(
                        f"line of {raw:,} bytes, longer than {limits.max_line:,} (--max-line-bytes)")
                    first = False
                    continue
                line = raw.strip()
                if not line:
                    continue
                obj = _parse(line, limits)
                if (first and isinstance(obj, OONIFormatError) and f.suffix == ".json"
                        and f.stat().st_size <= limits.max_line):
                    yield name, at, _parse(f.read_bytes(), limits)  # one pretty-printed object
                    break
                yield name, at, obj
                first = False
        except _Bomb as exc:
            yield name, at + 1, OONIFormatError(str(exc))
        except (OSError, EOFError, zlib.error, gzip.BadGzipFile) as exc:
            yield name, at + 1, OONIFormatError(f"cannot be read on: {exc}")
