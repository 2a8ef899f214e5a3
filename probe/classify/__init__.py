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

from probe.classify.addresses import canon_ip
from probe.classify.core import INTERFERENCE, Context, Finding, HopControl, hop_control
from probe.classify.dns import judge_dns
from probe.classify.http import final_control, judge_http, response_ok
from probe.classify.tcp import judge_tcp
from probe.classify.tls import judge_tls, tls_failure_kind
from probe.fingerprints import Fingerprints, default_fingerprints
from probe.geo import GeoDB
from probe.model import Measurement, Verdict

__all__ = ["CLASSIFIER_VERSION", "classify", "findings", "needs_retry"]

#: Recorded with every verdict; bump it whenever a rule changes what a measurement gets.
CLASSIFIER_VERSION = "2026.11.1"


def findings(
    m: Measurement, *, fingerprints: Fingerprints | None = None, geo: GeoDB | None = None
) -> list[Finding]:
    """Every piece of evidence in a measurement, in hop and stage order."""
    fps = fingerprints if fingerprints is not None else default_fingerprints()
    ctx = Context(m=m, fingerprints=fps, geo=geo, controls=[hop_control(h) for h in m.hops])
    final = ctx.final_hop
    if final is not None:
        fctl = final_control(ctx) or ctx.controls[-1]
        ctx.final_ok = response_ok(ctx, final, fctl)
    out: list[Finding] = []
    if not any(c.th is not None or c.has_dns for c in ctx.controls):
        failed = next((c.th_failure for c in ctx.controls if c.th_failure), None)
        out.append(Finding("control", 0, f"control/failed:{failed}" if failed else "control/unavailable"))
    for hop, ctl in zip(m.hops, ctx.controls, strict=True):
        out.extend(judge_dns(ctx, hop, ctl))
        out.extend(judge_tcp(ctx, hop, ctl))
        out.extend(judge_tls(ctx, hop, ctl))
        out.extend(judge_http(ctx, hop, ctl))
    if m.failure is not None:
        out.append(Finding("measurement", len(m.hops) - 1 if m.hops else 0, f"measurement/{m.failure}"))
    if not m.hops:
        out.append(Finding("measurement", 0, "measurement/no-hops", "inconclusive"))
    return out


def _dedup(reasons: list[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(reasons))


def classify(
    m: Measurement, *, fingerprints: Fingerprints | None = None, geo: GeoDB | None = None
) -> Verdict:
    """Judge one measurement. Pure: same input, same verdict; never raises for odd data.

    ``fingerprints`` defaults to the packaged set (loaded once); ``geo`` (IP -> ASN) is optional
    and only widens what counts as a consistent DNS answer.
    """
    found = findings(m, fingerprints=fingerprints, geo=geo)
    reasons = _dedup([f.reason for f in found])

    def verdict(f: Finding, name: str | None = None) -> Verdict:
        stage = f.stage if f.stage in ("dns", "tcp", "tls", "http") else None
        return Verdict(name or f.verdict or "inconclusive", stage, f.hop, reasons, CLASSIFIER_VERSION)

    for f in found:
        if f.verdict in INTERFERENCE:
            return verdict(f)
    for f in found:
        if f.verdict == "down":
            return verdict(f)
    for f in found:
        if f.verdict == "inconclusive":
            return verdict(f)
    if any(f.verdict == "ok" for f in found):
        return Verdict("ok", None, None, reasons, CLASSIFIER_VERSION)
    # Nothing decisive: the failures we saw have no usable control to compare with.
    first = next((f for f in found if f.stage in ("dns", "tcp", "tls", "http")), None)
    if first is None:
        return Verdict("inconclusive", None, None, reasons, CLASSIFIER_VERSION)
    return verdict(first, "inconclusive")


def needs_retry(m: Measurement) -> bool:
    """A probe-side step failed while the control succeeded at it: measure again before judging.

    Transient failures (a lost SYN, a slow resolver) must not become verdicts; a second attempt
    that fails the same way is evidence. Content evidence (bogons, injection, block pages) is
    deterministic and is not retried.
    """
    for hop in m.hops:
        ctl: HopControl = hop_control(hop)
        for q in hop.dns:
            if q.failure is not None and not q.addresses and ctl.addrs:
                return True
        for t in hop.tcp:
            c = ctl.tcp.get((canon_ip(t.ip), t.port))
            if t.failure is not None and c is not None and c[0]:
                return True
        for t in hop.tls:
            kind = tls_failure_kind(t)
            c = ctl.tls.get((canon_ip(t.ip), t.port))
            control_ok = c[0] if c is not None else ctl.tls_ok_anywhere(hop.scheme)
            if kind is not None and kind != "cert-invalid" and control_ok:
                return True
        if hop.http is not None and hop.http.failure is not None and ctl.http_ok:
            return True
    return bool(m.failure is not None and m.hops and hop_control(m.hops[-1]).http_ok)


