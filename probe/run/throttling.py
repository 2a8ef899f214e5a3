"""Apply the throttling rule (probe/judge/throttling.py) to one stored run.

The rule needs every URL of a run, so it runs after the run (``probe run``) or again over
stored runs (``probe reclassify``): the store's rows become samples, the pure rule judges
them, and the verdicts it changed are written back with the run's counts.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from probe.judge.throttling import (
    MIN_BODY,
    Sample,
    ThrottleChange,
    any_slow,
    control_per_rtt,
    judge_samples,
    sample_from_json,
)
from probe.store import throttling as rows

if TYPE_CHECKING:
    from probe.store import Store

__all__ = ["judge_run"]


def _samples(store: Store, run_id: int, *, candidates_only: bool = True) -> Iterator[Sample]:
    """The run's final measurements judged ok or throttled, as samples (streamed in pages);
    ``candidates_only``: only those with a large fetch or the rule's own reasons (selected in
    SQL, so the others' JSON is never decoded)."""
    for page in rows.judged_rows(store, run_id, MIN_BODY, candidates_only=candidates_only):
        for r in page:  # the controls are in the observations' hops
            yield sample_from_json(r.measurement_id, r.url, r.verdict, r.data,
                                   rows.controls_of(r.data))  # fmt: skip


def _control_samples(store: Store, run_id: int) -> Iterator[Sample]:
    """The run's other ok pages as samples with only the control's speed (their own fetch gives
    none: they are not candidates), without decoding their observations."""
    for page in rows.other_ok_rows(store, run_id, MIN_BODY):
        controls = rows.control_rows(store, [r.measurement_id for r in page], timed_only=True)
        for r in page:
            final_hop, mid = r.data, r.measurement_id
            timed = None if final_hop is None else control_per_rtt(controls.get(mid, {}), final_hop)
            yield Sample(mid, r.url, r.verdict, None, timed, final_hop)


def judge_run(store: Store, run_id: int) -> list[ThrottleChange]:
    """Apply the throttling rule to one stored run; writes and returns the verdicts it changed.

    Memory is a few numbers per URL of the run (the samples), not the measurements. Only the
    candidates (a fetch of at least ``MIN_BODY`` decoded bytes, or reasons the rule wrote
    before), selected in SQL, are decoded first. Without one of them slow, nothing else can
    change: the other pages give no sample, and the control's references are needed only for a
    slow page. With one, the control's references are needed, and they include pages whose own
    fetch was small: the other pages' controls that reported their speed are read too (not their
    observations). The verdicts are those of decoding every page (tests/unit/test_throttling.py).
    """
    samples = list(_samples(store, run_id))
    if any_slow(samples):
        samples += _control_samples(store, run_id)
    judged = judge_samples(samples)
    changes = [
        ThrottleChange(s.measurement_id, s.url, s.verdict, judged[s.measurement_id])
        for s in samples
        if judged[s.measurement_id] != s.verdict
    ]
    if changes:
        store.set_verdicts([(ch.measurement_id, ch.new) for ch in changes])
        status = rows.run_status(store, run_id)
        if status is not None and status.status != "running":
            store.finish_run(run_id, status.status, finished_at=status.finished_at)  # recount the verdicts
    return changes
