"""`probe diff` for people: what changed at a vantage point, counted then listed, or as JSON
lines (one change a line)."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence

from probe.research.compare import CHANGE_KINDS, Cell, Change

__all__ = ["format_changes", "format_changes_json"]


def _show(cell: Cell) -> str:
    return f"{cell.technique} ({cell.measured_at[:16].replace('T', ' ')})"


def format_changes(title: str, before: Mapping[str, Cell], after: Mapping[str, Cell],
                   changes: Sequence[Change]) -> Iterator[str]:
    """Lines: ``title``, the changes counted by kind and the URLs on one side only, then one
    line per change with the technique and time before and after."""
    counts = dict.fromkeys(CHANGE_KINDS, 0)
    for c in changes:
        counts[c.kind] += 1
    common = len(before.keys() & after.keys())
    yield (f"{title}: " + ", ".join(f"{n} {k.replace('_', ' ')}" for k, n in counts.items())
           + f" ({common} URLs in both; {len(before.keys() - after.keys())} only before, "
           f"{len(after.keys() - before.keys())} only after)\n")
    for c in changes:
        yield f"  {c.kind:<17} {c.url}  {_show(c.before)} -> {_show(c.after)}\n"


def format_changes_json(vantage: str, changes: Sequence[Change]) -> Iterator[str]:
    """One JSON object a line per change, with the vantage point's name."""
    for c in changes:
        yield json.dumps({"vantage": vantage, **c.as_dict()}, ensure_ascii=False) + "\n"
