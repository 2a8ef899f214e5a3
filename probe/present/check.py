"""`probe check` for people: whether a database is sound, and what to do when it is not."""

from __future__ import annotations

from probe.store.integrity import IntegrityReport

__all__ = ["format_check"]


def format_check(report: IntegrityReport) -> list[str]:
    """Lines (80 columns) saying what the full check of one database found."""
    size = f"{report.size_bytes / 1e6:,.1f} MB"
    head = (f"{report.path}: {size}, {report.pages:,} pages, schema {report.schema_version}, "
            f"read in {report.seconds:.1f} s")
    lines = [head]
    if report.newer:
        lines.append("  written by a newer probe: its structure was checked, not its meaning")
    if report.ok:
        lines.append("  ok: every page, index entry and reference is sound")
        return lines
    for problem in report.problems:
        lines.append(f"  damaged: {problem}")
    if report.more_problems:
        lines.append("  ... and possibly more (the check stops at the first ones)")
    for table, n in sorted(report.orphans.items()):
        lines.append(f"  {n:,} rows of {table} refer to rows that are not there")
    if report.problems:
        lines.append(f"  Keep a copy, then try: sqlite3 {report.path} .recover > recovered.sql")
    return lines
