"""`probe reclassify` for people: what was re-judged, the verdict transitions counted, and the
changed measurements listed (the first ones)."""

from __future__ import annotations

from collections.abc import Iterator

from probe.core.model import Verdict
from probe.present.terminal import clean
from probe.present.text import plural, wrap
from probe.run.reclassify import ReclassifyReport, VerdictChange

__all__ = ["SHOWN", "describe_change", "format_reclassify"]

SHOWN = 200  # changed verdicts listed on the terminal


def _label(v: Verdict) -> str:
    return f"{v.verdict}/{v.stage}" if v.stage else v.verdict


def describe_change(change: VerdictChange) -> str:
    """``url: blocked/http -> ok`` (stage shown when set)."""
    return f"{clean(change.url)}: {_label(change.old)} -> {_label(change.new)}"


def format_reclassify(report: ReclassifyReport, run_id: int | None, width: int = 80) -> Iterator[str]:
    """Lines of at most ``width`` columns: the scope and counts, each transition with its count,
    then the first changes; then the endpoint measurements re-judged (`probe circumvention`'s),
    when there were any, and those imported from OONI left as they were."""
    scope = f"run {run_id}" if run_id is not None else "all runs"
    yield from wrap(f"{scope}: re-judged {plural(report.judged, 'measurement')} with classifier "
                    f"{report.classifier_version or '(unversioned)'}; "
                    f"{plural(report.changed, 'verdict')} changed", width, "", "  ")
    for (old, new), n in sorted(report.transitions.items(), key=lambda kv: -kv[1]):
        yield f"  {old} -> {new}: {n}"
    for change in report.changes[:SHOWN]:
        yield from wrap(f"#{change.measurement_id} {describe_change(change)}", width, "  ", "      ")
    if report.changed > SHOWN:
        yield f"  ... and {report.changed - SHOWN} more (see the measurements table)"
    if report.endpoints_judged:
        yield from wrap(f"{scope}: re-judged {plural(report.endpoints_judged, 'circumvention endpoint')}; "
                        f"{plural(report.endpoints_changed, 'verdict')} changed", width, "", "  ")
        for (old, new), n in sorted(report.endpoint_transitions.items(), key=lambda kv: -kv[1]):
            yield f"  {old} -> {new}: {n}"
    if report.endpoints_skipped:
        yield from wrap(f"{scope}: {plural(report.endpoints_skipped, 'endpoint')} imported from OONI "
                        "not re-judged (measured without a control, judged partly from evidence "
                        "not stored: import them again to re-judge)", width, "", "  ")
