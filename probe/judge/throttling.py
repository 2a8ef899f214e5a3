"""Throttling: a site that loads, but far slower than the other sites of the same run.

In March 2021 Russia throttled Twitter rather than blocking it: pages loaded, at a few KB/s. A
probe that only asks "did it load?" says ``ok``. Throttling is seen only by comparison, so it is
judged per run, after every URL was measured (:func:`probe.run.throttling.judge_run`), from
numbers the measurement records for each HTTP fetch: seconds to the response headers
(``ttfb``), seconds of body transfer after them, body bytes on the wire, and the TCP connect
time to the same address (one round trip, ``rtt``).

The measure is **bytes per round trip** during the body transfer, ``wire_bytes * rtt /
transfer``. Normalising by the round-trip time makes a far site (long path) comparable with a
near one: TCP's window grows per round trip, so an unthrottled transfer moves many kilobytes per
round trip at any distance, while a 20 KB/s policer allows 2 KB per round trip at 100 ms. The
rule, for a URL whose fetch moved at least :data:`MIN_BYTES`:

- its bytes per round trip are at most 1/:data:`SLOWDOWN` of the median of the run's other such
  URLs (at least :data:`MIN_REFERENCES` of them), so the network as a whole is not slow (a slow
  network for everyone slows the references too);
- and the control's own fetch of the same URL was *not* slow against the control's fetches of
  the references (within 1/:data:`CONTROL_SLOWDOWN` of their median), so the site is not slow
  for everyone. Only probe's own test helper reports its fetch speed (``x_http_timing``); without
  it the slowness is recorded as evidence (``http/slow``) and the verdict stays ``ok``.

Then the verdict becomes ``throttled`` (stage ``http``), with the reasons
``http/throttled:<N>x`` (N times slower than the references) and ``control/http-speed:<M>x``.
The verdict is a new one next to blocked/reset/hijacked: it is interference, and it is
reported with them. ``probe reclassify`` re-applies the rule, so old data can be re-judged.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from probe.core.model import Verdict

__all__ = [
    "CONTROL_SLOWDOWN",
    "MIN_BYTES",
    "MIN_REFERENCES",
    "RTT_FLOOR",
    "SLOWDOWN",
    "Sample",
    "ThrottleChange",
    "any_slow",
    "control_per_rtt",
    "judge_samples",
    "sample_from_json",
    "unthrottled",
]

#: Fewest body bytes on the wire for a fetch to say anything about speed (smaller bodies fit in
#: TCP's first windows and take a round trip or two however the path is policed).
MIN_BYTES = 64 * 1024
#: How many times slower than the references a fetch must be.
SLOWDOWN = 10.0
#: How many times slower than its references the control may find the same URL and it still
#: counts as "not slow for everyone".
CONTROL_SLOWDOWN = 3.0
#: Fewest other URLs of the run that a URL is compared with.
MIN_REFERENCES = 3
#: Shortest round trip a speed is normalised by. Below a few milliseconds the round trip no
#: longer shapes a transfer of 64 KiB (bandwidth and the hosts do), and what is measured is
#: mostly noise: on a network with a queue (a slow link shared by the run's own fetches) or a
#: busy machine, one connection's minimum may be 0.05 ms and another's 2 ms, a 40x spread
#: that divided by the round trip made pages of one slow-for-everyone network look 20-30
#: times slower than their peers (a lab run under load). Flooring it only ever makes a near
#: site look faster, i.e. less often throttled.
RTT_FLOOR = 0.010
#: Shortest transfer taken into account (a body that arrived with its headers has none).
_MIN_TRANSFER = 0.001
#: Fewest decoded body bytes (``body_length``, a column of ``http_requests``) of a fetch that
#: gives a sample, unless its body was truncated. Standard encoders never make a body much
#: larger on the wire than decoded (gzip of incompressible data: under 0.1 % plus 18 bytes), so
#: every fetch of :data:`MIN_BYTES` on the wire passes it; what it excludes (kilobytes of gzip
#: header fields around a tiny body) says nothing about speed. It lets
#: :func:`probe.run.throttling.judge_run` find the candidates in SQL instead of decoding every
#: measurement's JSON.
MIN_BODY = MIN_BYTES - MIN_BYTES // 64
_OWN_PREFIXES = ("http/throttled:", "http/slow:", "control/http-speed:")


@dataclass(frozen=True)
class Sample:
    """The speed of one URL's final HTTP fetch, here and at the control (None: not measured)."""

    measurement_id: int
    url: str
    verdict: Verdict
    per_rtt: float | None  # body bytes per round trip here
    control_per_rtt: float | None  # the same at the control
    hop: int | None = None  # the hop of the final fetch


def _per_rtt(wire_bytes: Any, transfer: Any, rtt: Any) -> float | None:
    try:
        nbytes, secs, rtt_s = int(wire_bytes), float(transfer), float(rtt)
    except (TypeError, ValueError):
        return None
    if nbytes < MIN_BYTES or rtt_s <= 0:
        return None
    return nbytes * max(rtt_s, RTT_FLOOR) / max(secs, _MIN_TRANSFER)


def sample_from_json(
    measurement_id: int, url: str, verdict: Verdict, data: dict[str, Any], controls: dict[int, dict[str, Any]]
) -> Sample:
    """A :class:`Sample` from a stored measurement's JSON and its controls' JSON (by hop)."""
    per_rtt = there = None
    hop = None
    hops = data.get("hops") or []
    final = next((h for h in reversed(hops) if isinstance(h, dict) and h.get("http")), None)
    if final is not None:
        hop = int(final.get("index", 0))
        http = final["http"]
        large = http.get("body_truncated") or (http.get("body_length") or 0) >= MIN_BODY
        if (http.get("status") == 200 and http.get("failure") is None and http.get("ttfb") is not None
                and large):
            # The kernel's round trip when recorded; else the connect time (noisier under load).
            rtt = http.get("path_rtt") or next((t.get("duration") for t in final.get("tcp") or []
                        if t.get("ip") == http.get("ip") and t.get("failure") is None), None)  # fmt: skip
            transfer = float(http.get("duration") or 0.0) - float(http["ttfb"])
            per_rtt = _per_rtt(http.get("wire_bytes"), transfer, rtt)
        there = control_per_rtt(controls, hop)
    return Sample(measurement_id, url, verdict, per_rtt, there, hop)


def control_per_rtt(controls: dict[int, dict[str, Any]], hop: int) -> float | None:
    """The control's speed for the final hop ``hop`` (an OONI-style helper describes the final
    page at hop 0)."""
    for c in (controls.get(hop), controls.get(0)):
        if c and c.get("http_transfer") is not None and "http_wire_bytes" in c:
            return _per_rtt(c["http_wire_bytes"], c["http_transfer"], c.get("http_rtt"))
    return None


def unthrottled(v: Verdict) -> Verdict:
    """The verdict a measurement has without this module's judgement (``ok`` and its reasons)."""
    reasons = tuple(r for r in v.reasons if not r.startswith(_OWN_PREFIXES))
    if v.verdict != "throttled":
        return replace(v, reasons=reasons)
    return Verdict("ok", None, None, reasons, v.classifier_version)


class _Medians:
    """The median of the values of every sample but one, for each sample in O(log n).

    The same number as ``statistics.median`` of the others (the middle one, or the mean of the
    two middle ones), found by skipping the sample's own place in the sorted values, instead of
    building a list of the others per sample (quadratic: seconds for a run of 30,000 URLs).
    """

    def __init__(self, values: Sequence[tuple[int, float]]) -> None:
        self._own = dict(values)
        self._sorted = sorted(self._own.values())

    def without(self, own: int) -> float | None:
        """The median of all values but ``own``'s (None: fewer than MIN_REFERENCES of them)."""
        vals = self._sorted
        x = self._own.get(own)
        n = len(vals) - (x is not None)
        if n < MIN_REFERENCES:
            return None
        skip = bisect.bisect_left(vals, x) if x is not None else len(vals)

        def at(k: int) -> float:
            return vals[k if k < skip else k + 1]

        if n % 2:
            return at(n // 2)
        return (at(n // 2 - 1) + at(n // 2)) / 2


def _slow(samples: Sequence[Sample], base: dict[int, Verdict]) -> dict[int, float]:
    """The ``ok`` samples at most 1/SLOWDOWN of their references' median, with that median."""
    eligible = [s for s in samples if base[s.measurement_id].verdict == "ok"]
    here = _Medians([(s.measurement_id, s.per_rtt) for s in eligible if s.per_rtt is not None])
    out = {}
    for s in eligible:
        if s.per_rtt is None:
            continue
        ref = here.without(s.measurement_id)
        if ref is not None and s.per_rtt <= ref / SLOWDOWN:
            out[s.measurement_id] = ref
    return out


def any_slow(samples: Sequence[Sample]) -> bool:
    """True when some ``ok`` sample is slow against its references: only then are the control's
    references (the other pages' controls) needed."""
    return bool(_slow(samples, {s.measurement_id: unthrottled(s.verdict) for s in samples}))


def judge_samples(samples: Sequence[Sample]) -> dict[int, Verdict]:
    """The verdict each sample should have (pure): ``throttled``, ``ok`` with ``http/slow``
    evidence when the control cannot confirm, or its base verdict."""
    base = {s.measurement_id: unthrottled(s.verdict) for s in samples}
    slow = _slow(samples, base)
    # The control's references: every ok page whose control reported its speed (the page's own
    # fetch need not have given a sample).
    there = _Medians([(s.measurement_id, s.control_per_rtt) for s in samples
                      if base[s.measurement_id].verdict == "ok"
                      and s.control_per_rtt is not None])  # fmt: skip
    out = dict(base)
    for s in samples:
        if s.measurement_id not in slow or s.per_rtt is None:
            continue
        ref = slow[s.measurement_id]
        slower = f"{ref / max(s.per_rtt, 1e-9):.0f}x"
        v = base[s.measurement_id]
        cref = there.without(s.measurement_id)
        if s.control_per_rtt is None or cref is None:
            out[s.measurement_id] = replace(v, reasons=(*v.reasons, f"http/slow:{slower}"))
            continue
        control_slower = cref / max(s.control_per_rtt, 1e-9)
        if control_slower > CONTROL_SLOWDOWN:
            # Slow for the control too: the site (or its server) is slow for everyone.
            evidence = (f"http/slow:{slower}", f"control/http-speed:{control_slower:.0f}x")
            out[s.measurement_id] = replace(v, reasons=(*v.reasons, *evidence))
            continue
        reasons = (f"http/throttled:{slower}", f"control/http-speed:{control_slower:.1f}x", *v.reasons)
        out[s.measurement_id] = Verdict("throttled", "http", s.hop, reasons, v.classifier_version)
    return out


@dataclass(frozen=True)
class ThrottleChange:
    """A verdict changed by :func:`probe.run.throttling.judge_run`."""

    measurement_id: int
    url: str
    old: Verdict
    new: Verdict
