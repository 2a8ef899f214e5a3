"""`probe merge` for people: what each source added to the output."""

from __future__ import annotations

from probe.store.merge import MergeResult

__all__ = ["format_merged"]


def format_merged(result: MergeResult) -> str:
    """What merging one source added, for the terminal: one line, and one more per vantage point
    renamed."""
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
    text = f"{result.source}: " + ", ".join(parts)
    for old, new in result.renamed:
        why = "no other probe has its name" if old.startswith(new + "~") else "another probe has its name"
        text += f"\n  vantage point {old!r} is now {new!r}: {why}"
    return text
