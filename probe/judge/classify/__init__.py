"""The classifier: a pure function from a stored measurement (with its control) to a verdict.

``classify`` walks the hops of the redirect chain in order and, in each hop, the stages in the
order they ran (dns, tcp, tls, http). Each stage judge returns findings: evidence strings of the
form ``stage/outcome[:detail]`` (after Censored Planet), some of which carry a verdict. The
decision is:

1. the first finding of interference (blocked, reset, hijacked), in hop and stage order;
2. else the first ``down`` (the control failed at the same step in the same way);
3. else ``ok`` when the final response is the control's page or is authenticated;
4. else ``inconclusive``.

Every finding stays in the reasons, whichever decides. See docs/classification.md.
"""

from __future__ import annotations

import dataclasses

from probe.core.model import Measurement, Verdict
from probe.inputs.fingerprints import Fingerprints, default_fingerprints
from probe.inputs.geo import GeoDB
from probe.judge.classify.core import INTERFERENCE, Context, Finding, chain_controls, hop_control
from probe.judge.classify.dns import judge_dns
from probe.judge.classify.http import final_control, judge_http, response_ok
from probe.judge.classify.packets import judge_packets, withdraw_server_resets
from probe.judge.classify.tcp import judge_tcp
from probe.judge.classify.tls import judge_tls
from probe.judge.protocols import protocol_verdicts

__all__ = ["CLASSIFIER_VERSION", "classify", "findings", "needs_retry", "open_step"]

#: Recorded with every verdict; bump it whenever a rule changes what a measurement gets.
CLASSIFIER_VERSION = "2026.12.2"


def findings(
    m: Measurement, *, fingerprints: Fingerprints | None = None, geo: GeoDB | None = None
) -> list[Finding]:
    """Every piece of evidence in a measurement, in hop and stage order."""
    fps = fingerprints if fingerprints is not None else default_fingerprints()
    ctx = Context(m=m, fingerprints=fps, geo=geo, controls=[hop_control(h) for h in m.hops])
    chain_controls(ctx.controls)
    final = ctx.final_hop
    if final is not None:
        fctl = final_control(ctx) or ctx.controls[-1]
        ctx.final_ok = response_ok(ctx, final, fctl)
    out: list[Finding] = []
    if not any(c.th is not None or c.has_dns for c in ctx.controls):
        failed = next((c.th_failure for c in ctx.controls if c.th_failure), None)
        out.append(Finding("control", 0, f"control/failed:{failed}" if failed else "control/unavailable"))
    for hop, ctl in zip(m.hops, ctx.controls, strict=True):
        hop_found = [*judge_dns(ctx, hop, ctl), *judge_tcp(ctx, hop, ctl), *judge_tls(ctx, hop, ctl),
                     *judge_http(ctx, hop, ctl), *judge_packets(ctx, hop, ctl)]  # fmt: skip
        # Packet evidence joins its stage: findings stay in stage order within a hop.
        out.extend(sorted(hop_found, key=lambda f: _STAGE_ORDER.get(f.stage, 0)))
    out = withdraw_server_resets(out)
    if m.failure is not None:
        out.append(Finding("measurement", len(m.hops) - 1 if m.hops else 0, f"measurement/{m.failure}"))
    if not m.hops:
        out.append(Finding("measurement", 0, "measurement/no-hops", "inconclusive"))
    return out


_STAGE_ORDER = {"dns": 0, "tcp": 1, "tls": 2, "http": 3}


def _dedup(reasons: list[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(reasons))


def _judge(
    m: Measurement, fingerprints: Fingerprints | None, geo: GeoDB | None
) -> tuple[Verdict, Finding | None]:
    """The verdict, and the finding that decided it (None for ok, or when nothing did)."""
    found = findings(m, fingerprints=fingerprints, geo=geo)
    reasons = _dedup([f.reason for f in found])

    def verdict(f: Finding, name: str | None = None) -> Verdict:
        stage = f.stage if f.stage in ("dns", "tcp", "tls", "http") else None
        return Verdict(name or f.verdict or "inconclusive", stage, f.hop, reasons, CLASSIFIER_VERSION)

    for wanted in (INTERFERENCE, {"down"}, {"inconclusive"}):
        for f in found:
            if f.verdict in wanted:
                return verdict(f), f
    if any(f.verdict == "ok" for f in found):
        return Verdict("ok", None, None, reasons, CLASSIFIER_VERSION), None
    # Nothing decisive: the failures we saw have no usable control to compare with. The stage
    # is the step that left the verdict open (where the measurement stopped), not a harmless
    # finding met on the way (a missing AAAA, one address of several).
    hop_i, stage = open_step(m)
    if stage is None:
        return Verdict("inconclusive", None, None, reasons, CLASSIFIER_VERSION), None
    return Verdict("inconclusive", stage, hop_i, reasons, CLASSIFIER_VERSION), None


def open_step(m: Measurement) -> tuple[int | None, str | None]:
    """(hop, stage) of the step where the measurement stopped: the first step of the last hop
    that failed outright (DNS gave no address, no connect worked, no handshake completed for
    https, HTTP failed or never ran); ``http`` when every step succeeded (its response is what
    could not be verified); (None, None) without hops."""
    if not m.hops:
        return None, None
    hop = m.hops[-1]
    i = hop.index
    if hop.dns and not any(q.addresses for q in hop.dns):
        return i, "dns"
    if hop.tcp and not any(t.failure is None for t in hop.tcp):
        return i, "tcp"
    if hop.scheme == "https" and hop.tls and not any(t.failure is None for t in hop.tls):
        return i, "tls"
    if not hop.tcp and not hop.dns and hop.http is None:
        return None, None
    return i, "http"


def classify(
    m: Measurement, *, fingerprints: Fingerprints | None = None, geo: GeoDB | None = None
) -> Verdict:
    """Judge one measurement. Pure: same input, same verdict; never raises for odd data.

    ``fingerprints`` defaults to the packaged set (loaded once); ``geo`` (IP -> ASN) is optional
    and only widens what counts as a consistent DNS answer. ``Verdict.retryable`` says whether
    the deciding evidence is a failure that may be transient (see :func:`_retryable`): the
    runner measures such a URL again before believing it.
    """
    v, decisive = _judge(m, fingerprints, geo)
    if m.protocols:  # --quic, --ech: verdicts of their own, beside (never changing) this one
        v = dataclasses.replace(v, protocols=protocol_verdicts(m))
    return dataclasses.replace(v, retryable=True) if _retryable(v, decisive) else v


# Decisive findings that are failures of a step the control completed: they may be transient.
# As (stage, outcome) of the finding's ``stage/outcome[:detail]``.
_TRANSIENT = frozenset(
    {
        ("dns", "timeout"),
        ("dns", "servfail"),
        ("dns", "refused"),
        ("tcp", "timeout"),
        ("tcp", "refused"),
        ("tcp", "reset"),
        ("tls", "reset"),
        ("tls", "eof"),
        ("tls", "timeout"),
        ("tls", "handshake-failed"),
        ("http", "reset"),
        ("http", "eof"),
        ("http", "timeout"),
    }
)


def _retryable(v: Verdict, decisive: Finding | None) -> bool:
    """A probe-side step failed while the control completed it, and that failure decides the
    verdict: measure again before believing it.

    Transient failures (a lost SYN, a slow resolver) must not become verdicts; a second attempt
    that fails the same way is evidence. Content evidence (bogons, injection, block pages, a
    diff) is deterministic and is not retried, nor are failures that do not decide the verdict
    (one address of several, IPv6 on a probe without an IPv6 route, a missing AAAA record).
    """
    if v.verdict not in INTERFERENCE or decisive is None:
        return False
    return (decisive.stage, decisive.outcome) in _TRANSIENT


def needs_retry(m: Measurement) -> bool:
    """Whether :func:`classify` would ask for another attempt (``Verdict.retryable``)."""
    return classify(m).retryable
