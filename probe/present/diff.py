"""`probe diff` for people: what changed at a vantage point, counted then listed, or as JSON
lines (one change a line)."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence

from probe.present.terminal import clean, json_safe
from probe.present.text import cells, cut_middle, plural, wrap
from probe.research.compare import CHANGE_KINDS, Cell, Change

__all__ = ["format_changes", "format_changes_json"]


def _show(cell: Cell) -> str:
    return f"{cell.technique} ({cell.measured_at[:16].replace('T', ' ')})"


def format_changes(title: str, before: Mapping[str, Cell], after: Mapping[str, Cell],
                   changes: Sequence[Change], width: int = 80) -> Iterator[str]:
    """Lines of at most ``width`` columns: ``title``, the changes counted by kind and the URLs
    on one side only, then each change with the technique and time before and after (on a
    second line when one does not fit)."""
    counts = dict.fromkeys(CHANGE_KINDS, 0)
    for c in changes:
        counts[c.kind] += 1
    common = len(before.keys() & after.keys())
    head = (f"{clean(title)}: " + ", ".join(f"{n} {k.replace('_', ' ')}" for k, n in counts.items())
            + f" ({plural(common, 'URL')} in both; {len(before.keys() - after.keys())} only before, "
            f"{len(after.keys() - before.keys())} only after)")
    yield from (line + "\n" for line in wrap(head, width, "", "  "))
    for c in changes:
        url = clean(c.url)
        then = f"{_show(c.before)} -> {_show(c.after)}"
        line = f"  {c.kind:<17} {url}  {then}"
        if cells(line) <= width:
            yield line + "\n"
            continue
        yield f"  {c.kind:<17} {cut_middle(url, width - 20)}\n"
        yield from (part + "\n" for part in wrap(then, width, " " * 20))


def format_changes_json(vantage: str, changes: Sequence[Change]) -> Iterator[str]:
    """One JSON object a line per change, with the vantage point's name."""
    for c in changes:
        yield json_safe(json.dumps({"vantage": vantage, **c.as_dict()}, ensure_ascii=False)) + "\n"
