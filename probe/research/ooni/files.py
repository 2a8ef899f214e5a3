"""Streaming OONI's files (JSON Lines, plain or gzip, or the files of a directory)."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

from probe.research.ooni.record import OONIFormatError

__all__ = ["iter_lines"]


def _open(path: Path) -> IO[bytes]:
    if path.suffix == ".gz":
        return gzip.GzipFile(path, "rb")  # type: ignore[return-value]  # a binary file object
    return path.open("rb")


def _files(paths: Iterable[Path]) -> Iterator[Path]:
    for p in paths:
        if p.is_dir():
            for f in sorted(p.rglob("*")):
                if f.is_file() and (f.suffix in (".json", ".jsonl", ".gz")):
                    yield f
        else:
            yield p


def iter_lines(paths: Iterable[Path], *, max_json: int = 64 << 20) -> Iterator[tuple[str, int, Any]]:
    """Yield ``(file, line, parsed JSON or OONIFormatError)`` for every non-empty line.

    Files are JSON Lines (OONI's archive format), plain or gzip. A ``.json`` file that is one
    pretty-printed object (as in OONI's test fixtures) is read whole when its first line is not
    JSON by itself and the file is smaller than ``max_json``. Memory stays flat: one line at
    a time.
    """
    for f in _files(paths):
        name = str(f)
        with _open(f) as fh:
            first = True
            for n, raw in enumerate(fh, 1):
                line = raw.strip()
                if not line:
                    continue
                try:
                    yield name, n, json.loads(line)
                except (ValueError, UnicodeDecodeError) as exc:
                    if first and f.suffix == ".json" and f.stat().st_size <= max_json:
                        try:
                            yield name, n, json.loads(f.read_bytes())
                        except (ValueError, UnicodeDecodeError) as exc2:
                            yield name, n, OONIFormatError(f"not JSON: {exc2}")
                        break
                    yield name, n, OONIFormatError(f"not JSON: {exc}")
                first = False

