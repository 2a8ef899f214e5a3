"""Test lists for people: URLs per category and list (``probe testlists``), and what an update
changed (``probe testlists update``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from probe.inputs.testlists import TESTLISTS_ENV, Summary, load_legend, testlists_dir
from probe.inputs.testlists.location import lists_origin
from probe.inputs.testlists.update import ListChange, UpdateResult

__all__ = ["describe_list_change", "format_update", "render_summary"]


def render_summary(summary: Summary, legend: dict[str, str] | None = None) -> str:
    """A text table for ``probe testlists``: URLs per category (rows) and list (columns)."""
    summaries = summary.lists
    if not summaries:
        return f"No test lists found in {testlists_dir()} (set ${TESTLISTS_ENV} or name files)."
    legend = dict(load_legend() if legend is None else legend)
    for s in summaries:
        for code, desc in s.descriptions:
            legend.setdefault(code, desc)
    names = [Path(s.path).name for s in summaries]
    if len(set(names)) != len(names):
        names = [s.path for s in summaries]
    codes = sorted({code for s in summaries for code, _ in s.categories})
    per = [dict(s.categories) for s in summaries]
    desc_w = max([len("category"), *(len(legend.get(c, "")) for c in codes)])
    code_w = max([len("code"), len("total"), *(len(c or "-") for c in codes)])
    col_w = [max(len(n), 6) for n in names]

    lines = ["Test lists:"]
    for s in summaries:
        lines.append(f"  {s.path}  {s.targets} URLs{'  [shipped]' if s.shipped else ''}")
        if s.problem_count:
            lines.append(f"    {s.problem_count} invalid row(s), first: {s.problems[0]}")
        if s.duplicates:
            lines.append(f"    {s.duplicates} duplicate row(s) skipped")
    if any(s.shipped for s in summaries):
        lines.append(f"  [shipped] {lists_origin()} in {testlists_dir()}")
    lines.append("")
    head = f"{'code':<{code_w}}  {'category':<{desc_w}}"
    lines.append(head + "".join(f"  {n:>{w}}" for n, w in zip(names, col_w, strict=True)))
    for code in codes:
        row = f"{code or '-':<{code_w}}  {legend.get(code, ''):<{desc_w}}"
        row += "".join(f"  {p.get(code, 0):>{w}}" for p, w in zip(per, col_w, strict=True))
        lines.append(row)
    total = f"{'total':<{code_w}}  {'':<{desc_w}}"
    total += "".join(f"  {s.targets:>{w}}" for s, w in zip(summaries, col_w, strict=True))
    lines.append(total)
    if len(summaries) > 1:
        lines.append(f"{summary.unique_targets} distinct URLs over these {len(summaries)} lists")
    return "\n".join(lines)


def describe_list_change(change: ListChange) -> str:
    """One line for people: ``global.csv: 1722 -> 1730 URLs (+12, -4)``."""
    if change.before is None:
        what = f"new, {change.after} URLs"
    elif not change.added and not change.removed:
        what = f"unchanged, {change.after} URLs"
    else:
        what = f"{change.before} -> {change.after} URLs (+{change.added}, -{change.removed})"
    bad = f"; {change.invalid_rows} invalid row(s) skipped when measured" if change.invalid_rows else ""
    return f"{change.name}: {what}{bad}"


def format_update(result: UpdateResult) -> Iterator[str]:
    """Lines: where the lists were installed from, then one line per list."""
    yield f"updated {result.directory} from {result.source}"
    for change in result.changes:
        yield f"  {describe_list_change(change)}"
