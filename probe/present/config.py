"""`probe config show` for people: the defaults a config file sets, one line per command and
option (``probe run: db = 'x.db'``)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path

__all__ = ["format_defaults"]


def format_defaults(path: Path, defaults: Mapping[str, object] | None) -> Iterator[str]:
    """Lines: the file, then each default it sets under the command it applies to (None: there
    is no config file)."""
    if defaults is None:
        yield f"# {path}: no config file (built-in defaults)"
        return
    yield f"# {path}"
    yield from _lines("probe ", defaults)


def _lines(prefix: str, tree: Mapping[str, object]) -> Iterator[str]:
    for name, value in sorted(tree.items()):
        if isinstance(value, Mapping):
            yield from _lines(f"{prefix}{name} ", value)
        else:
            yield f"{prefix.strip()}: {name} = {value!r}"
