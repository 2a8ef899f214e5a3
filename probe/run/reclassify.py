"""Re-judge stored measurements with the current classifier (``probe reclassify``).

Observations are kept in full (bodies and certificates included), so a newer classifier can
re-judge old data: this module streams every stored measurement through ``classify``, writes
back the verdicts that changed (with the classifier version), and reports what changed.
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from probe.core.model import Measurement, Verdict
from probe.inputs.geo import default_asn_lookup
from probe.judge import classify as classifier
from probe.judge.circumvention import judge_endpoint
from probe.judge.throttling import unthrottled
from probe.run.throttling import judge_run
from probe.store.circumvention import iter_endpoint_judged, set_endpoint_verdicts
from probe.store.protocols import protocol_verdicts_of

if TYPE_CHECKING:
    from probe.store import Store

__all__ = ["ReclassifyReport", "VerdictChange", "reclassify"]

_BATCH = 500  # verdict updates per transaction
_KEEP_CHANGES = 10_000  # changes listed in the report; the counts cover them all
# Sources of endpoint rows imported from another tool's measurements (`probe import ooni`):
# judged without a control (probe.judge.circumvention.judge_without_control), partly from
# evidence (DNS answers, HTTP responses) not stored with them. The control rules would make
# them all control/unavailable, and without that evidence a content verdict would be lost:
# they are not re-judged here (re-import them to re-judge), only counted.
_IMPORTED_SOURCES = frozenset({"ooni"})


@dataclass(frozen=True)
class VerdictChange:
    """One measurement whose verdict changed."""

    measurement_id: int
    url: str
    attempt: int
    old: Verdict
    new: Verdict


@dataclass
class ReclassifyReport:
    """What ``reclassify`` did."""

    run_id: int | None
    classifier_version: str
    judged: int = 0
    changed: int = 0
    # Endpoint measurements (`probe circumvention`), judged again by their own rules.
    endpoints_judged: int = 0
    endpoints_changed: int = 0
    # Endpoint rows imported from OONI (no control, evidence not stored): left as they are.
    endpoints_skipped: int = 0
    endpoint_transitions: Counter[tuple[str, str]] = field(default_factory=Counter)
    # (old verdict, new verdict) -> count, over every change
    transitions: Counter[tuple[str, str]] = field(default_factory=Counter)
    # the first changes, in measurement order (all of them unless there are very many)
    changes: list[VerdictChange] = field(default_factory=list)


def _same(a: Verdict, b: Verdict) -> bool:
    return ((a.verdict, a.stage, a.hop, tuple(a.reasons), a.protocols)
            == (b.verdict, b.stage, b.hop, tuple(b.reasons), b.protocols))  # fmt: skip


def _reclassify_endpoints(store: Store, run_id: int | None, report: ReclassifyReport, geo: Any) -> None:
    """Judge every stored endpoint measurement again (its observation keeps what the rules read,
    the names' controls included) and write the verdicts that changed; those imported from
    another tool (:data:`_IMPORTED_SOURCES`) are counted as skipped, never re-judged."""
    asn = None  # looked up (the data `probe circumvention` used) only when a resolver needs it
    if geo is not None:
        asn = geo.asn
    pending: list[tuple[int, Verdict]] = []
    for eid, obs, control, old in iter_endpoint_judged(store, run_id):
        if obs.source in _IMPORTED_SOURCES:
            report.endpoints_skipped += 1
            continue
        if asn is None and obs.queries:
            asn = default_asn_lookup()
        new = judge_endpoint(obs, control, asn, geo=geo)
        report.endpoints_judged += 1
        if _same(old, new) and old.classifier_version == new.classifier_version:
            continue
        if not _same(old, new):
            report.endpoints_changed += 1
            report.endpoint_transitions[(old.verdict, new.verdict)] += 1
        pending.append((eid, new))
        if len(pending) >= _BATCH:
            set_endpoint_verdicts(store, pending)
            pending = []
    set_endpoint_verdicts(store, pending)


def reclassify(
    store: Store,
    run_id: int | None = None,
    classify: Callable[[Measurement], Verdict] | None = None,
    *,
    version: str | None = None,
    fingerprints: Any = None,
    geo: Any = None,
) -> ReclassifyReport:
    """Re-judge every stored measurement (of ``run_id``, or of all runs) with ``classify``.

    ``classify`` defaults to :func:`probe.judge.classify.classify`; ``version``
    defaults to the classifier's ``CLASSIFIER_VERSION``, and is recorded on every re-judged
    measurement whose verdict does not carry its own. Verdicts are written in batches, each one
    transaction, so an interrupted reclassify leaves every row either old or new, never mixed.
    ``fingerprints`` and ``geo`` are passed to the default classifier (as in ``probe run``).
    """
    if classify is None or version is None:
        if classify is None:
            classify = functools.partial(classifier.classify, fingerprints=fingerprints, geo=geo)
        version = version if version is not None else classifier.CLASSIFIER_VERSION
    report = ReclassifyReport(run_id=run_id, classifier_version=version)
    pending: list[tuple[int, Verdict]] = []
    for mid, m, old in store.iter_judged(run_id):
        new = classify(m)
        if not new.classifier_version:
            new = replace(new, classifier_version=version)
        if m.protocols:  # --quic / --ech: their stored verdicts are compared too
            old = replace(old, protocols=protocol_verdicts_of(store, mid))
        report.judged += 1
        # Throttling is judged per run below: what it added is not this classifier's change.
        if _same(unthrottled(old), new) and old.classifier_version == new.classifier_version:
            continue
        if not _same(old, new):
            report.changed += 1
            report.transitions[(old.verdict, new.verdict)] += 1
            if len(report.changes) < _KEEP_CHANGES:
                report.changes.append(VerdictChange(mid, m.target.url, m.attempt, old, new))
        if not _same(old, new) or old.classifier_version != new.classifier_version:
            pending.append((mid, new))
            if len(pending) >= _BATCH:
                store.set_verdicts(pending)
                pending = []
    store.set_verdicts(pending)
    _reclassify_endpoints(store, run_id, report, geo)
    runs = [run_id] if run_id is not None else store.run_ids()
    for rid in runs:
        for ch in judge_run(store, rid):
            report.changed += 1
            report.transitions[(ch.old.verdict, ch.new.verdict)] += 1
            if len(report.changes) < _KEEP_CHANGES:
                report.changes.append(VerdictChange(ch.measurement_id, ch.url, 0, ch.old, ch.new))
    return report
