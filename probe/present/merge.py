"""`probe merge` for people: what each source added to the output."""

from __future__ import annotations

from probe.present.text import cut
from probe.store.merge import MergeResult

__all__ = ["format_merged"]


def format_merged(result: MergeResult) -> str:
    """What merging one source added, for the terminal: one line, one more per vantage point
    renamed, and the rows refused (the first of them named by table, row and reason)."""
    if result.unchanged is not None:
        return f"{result.source}: unchanged since merged ({result.unchanged}): skipped"
    if result.damaged is not None:
        return f"{result.source}: not merged: {result.damaged}"
    parts = [
        f"+{result.measurements} measurements",
        f"{result.already_present} already present",
        f"+{result.runs} runs",
        f"+{result.vantage_points} vantage points",
    ]
    if result.runs_updated:
        parts.append(f"{result.runs_updated} runs updated")
    if result.verdicts_updated:
        parts.append(f"{result.verdicts_updated} verdicts updated")
    for table, n in result.keyed.items():
        if n:
            parts.append(f"+{n} {table.replace('_', ' ')}")
    if result.refused:
        parts.append(f"{result.refused} invalid rows refused"
                     + (f" ({result.refused_measurements} measurements not merged)"
                        if result.refused_measurements else ""))
    text = f"{result.source}: " + ", ".join(parts)
    for problem in result.problems:
        text += f"\n  refused {cut(str(problem), 70)}"
    if result.refused > len(result.problems):
        text += f"\n  ... and {result.refused - len(result.problems)} more"
    for old, new in result.renamed:
        why = "no other probe has its name" if old.startswith(new + "~") else "another probe has its name"
        text += f"\n  vantage point {old!r} is now {new!r}: {why}"
    return text
