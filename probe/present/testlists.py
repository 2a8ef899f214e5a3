"""Test lists for people: URLs per category and list (``probe testlists``), and what an update
changed (``probe testlists update``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from probe.inputs.testlists import TESTLISTS_ENV, Summary, load_legend, testlists_dir
from probe.inputs.testlists.location import lists_origin
from probe.inputs.testlists.update import ListChange, UpdateResult
from probe.present.terminal import clean
from probe.present.text import cells, cut, pad, plural, wrap

__all__ = ["describe_list_change", "format_update", "render_summary"]


def render_summary(summary: Summary, legend: dict[str, str] | None = None, width: int = 80) -> str:
    """A text table for ``probe testlists``, in lines of at most ``width`` columns: URLs per
    category (rows) and list (columns). Names, codes and descriptions come from files: they
    are made safe for a terminal (:mod:`probe.present.terminal`)."""
    summaries = summary.lists
    if not summaries:
        return "\n".join(wrap(f"No test lists found in {clean(testlists_dir())} (set "
                               f"${TESTLISTS_ENV} or name files).", width))
    legend = dict(load_legend() if legend is None else legend)
    for s in summaries:
        for code, desc in s.descriptions:
            legend.setdefault(code, desc)
    names = [clean(Path(s.path).name) for s in summaries]
    if len(set(names)) != len(names):
        names = [clean(s.path) for s in summaries]
    codes = sorted({code for s in summaries for code, _ in s.categories})
    per = [dict(s.categories) for s in summaries]
    shown = {c: clean(c or "-") for c in codes}
    code_w = max([len("code"), len("total"), *(cells(c) for c in shown.values())])
    col_w = [max(cells(n), 6) for n in names]
    room = width - code_w - 2 - sum(w + 2 for w in col_w)
    desc_w = min(max([len("category"), *(cells(clean(legend.get(c, ""))) for c in codes)]),
                 max(len("category"), room))

    lines = ["Test lists:"]
    for s in summaries:
        lines += wrap(f"{clean(s.path)}  {plural(s.targets, 'URL')}"
                      f"{'  [shipped]' if s.shipped else ''}", width, "  ", "    ")
        if s.problem_count:
            lines += wrap(f"{s.problem_count} invalid row(s), first: {clean(s.problems[0])}", width,
                          "    ", "      ")
        if s.duplicates:
            lines.append(f"    {s.duplicates} duplicate row(s) skipped")
    if any(s.shipped for s in summaries):
        lines += wrap(f"[shipped] {lists_origin()} in {clean(testlists_dir())}", width, "  ", "    ")
    lines.append("")
    head = f"{pad('code', code_w)}  {pad('category', desc_w)}"
    lines.append(head + "".join(f"  {' ' * (w - cells(n))}{n}" for n, w in zip(names, col_w, strict=True)))
    for code in codes:
        row = f"{pad(shown[code], code_w)}  {pad(cut(clean(legend.get(code, '')), desc_w), desc_w)}"
        row += "".join(f"  {p.get(code, 0):>{w}}" for p, w in zip(per, col_w, strict=True))
        lines.append(row)
    total = f"{'total':<{code_w}}  {'':<{desc_w}}"
    total += "".join(f"  {s.targets:>{w}}" for s, w in zip(summaries, col_w, strict=True))
    lines.append(total)
    if len(summaries) > 1:
        lines.append(f"{plural(summary.unique_targets, 'distinct URL')} over these "
                     f"{len(summaries)} lists")
    return "\n".join(lines)


def describe_list_change(change: ListChange) -> str:
    """One line for people: ``global.csv: 1722 -> 1730 URLs (+12, -4)``."""
    if change.before is None:
        what = f"new, {plural(change.after, 'URL')}"
    elif not change.added and not change.removed:
        what = f"unchanged, {plural(change.after, 'URL')}"
    else:
        what = f"{change.before} -> {plural(change.after, 'URL')} (+{change.added}, -{change.removed})"
    bad = f"; {change.invalid_rows} invalid row(s) skipped when measured" if change.invalid_rows else ""
    return f"{clean(change.name)}: {what}{bad}"


def format_update(result: UpdateResult, width: int = 80) -> Iterator[str]:
    """Lines of at most ``width`` columns: where the lists were installed from, then one line
    per list."""
    yield from wrap(f"updated {clean(result.directory)} from {clean(result.source)}", width, "", "  ")
    for change in result.changes:
        yield from wrap(describe_list_change(change), width, "  ", "    ")
