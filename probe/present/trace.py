"""`probe trace` for people: per TTL, the router that answered and what the trigger and the
harmless name each got, then where the censor reacts; or the trace as one JSON document."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from probe.measure.trace import Trace

__all__ = ["format_trace", "trace_json"]


def format_trace(result: Trace, trace_id: int | None, db: Path) -> Iterator[str]:
    """The trace as lines (``trace_id``: where it was stored in ``db``, None when it was not)."""
    yield (f"trace {result.kind} {result.trigger} -> {result.ip}:{result.port} "
           f"(control {result.control_name})")  # fmt: skip
    yield f"{'ttl':>3}  {'router':<16} {'trigger':<10} {'control':<10}"
    by = {(p.ttl, p.probe): p for p in result.probes}
    for t in sorted({p.ttl for p in result.probes}):
        trig, ctl = by[(t, "trigger")], by[(t, "control")]
        router = ctl.router or trig.router or "*"
        mark = "  <- censor" if t == result.censor_hop else ""
        yield f"{t:>3}  {router:<16} {trig.outcome:<10} {ctl.outcome:<10}{mark}"
    if result.censor_hop is None:
        yield "no censor reaction seen"
    else:
        yield f"censor reacts at TTL {result.censor_hop} ({result.placement})"
    yield (f"{result.packets_sent} packets sent in {result.duration:.2f} s"
           + (f"; stored as trace {trace_id} in {db}" if trace_id else ""))  # fmt: skip


def trace_json(result: Trace, trace_id: int | None) -> str:
    """The trace as one JSON document, with the id it was stored under (or null)."""
    data = dataclasses.asdict(result)
    data["id"] = trace_id
    return json.dumps(data, indent=1)
