"""`probe reclassify` for people: what was re-judged, the verdict transitions counted, and the
changed measurements listed (the first ones)."""

from __future__ import annotations

from collections.abc import Iterator

from probe.core.model import Verdict
from probe.run.reclassify import ReclassifyReport, VerdictChange

__all__ = ["SHOWN", "describe_change", "format_reclassify"]

SHOWN = 200  # changed verdicts listed on the terminal


def _label(v: Verdict) -> str:
    return f"{v.verdict}/{v.stage}" if v.stage else v.verdict


def describe_change(change: VerdictChange) -> str:
    """``url: blocked/http -> ok`` (stage shown when set)."""
    return f"{change.url}: {_label(change.old)} -> {_label(change.new)}"


def format_reclassify(report: ReclassifyReport, run_id: int | None) -> Iterator[str]:
    """Lines: the scope and counts, each transition with its count, then the first changes; then
    the endpoint measurements re-judged (`probe circumvention`'s), when there were any."""
    scope = f"run {run_id}" if run_id is not None else "all runs"
    yield (f"{scope}: re-judged {report.judged} measurements with classifier "
           f"{report.classifier_version or '(unversioned)'}; {report.changed} verdicts changed")  # fmt: skip
    for (old, new), n in sorted(report.transitions.items(), key=lambda kv: -kv[1]):
        yield f"  {old} -> {new}: {n}"
    for change in report.changes[:SHOWN]:
        yield f"  #{change.measurement_id} {describe_change(change)}"
    if report.changed > SHOWN:
        yield f"  ... and {report.changed - SHOWN} more (see the measurements table)"
    if report.endpoints_judged:
        yield (f"{scope}: re-judged {report.endpoints_judged} circumvention endpoints; "
               f"{report.endpoints_changed} verdicts changed")  # fmt: skip
        for (old, new), n in sorted(report.endpoint_transitions.items(), key=lambda kv: -kv[1]):
            yield f"  {old} -> {new}: {n}"
