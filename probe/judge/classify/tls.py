"""TLS stage: handshakes with SNI = host on each connected address.

Reset or EOF during the handshake while the control completes it: reset. Timeout: blocked.
A certificate that does not validate for the host while the control's does: hijacked
(interception). The same failure at the control: down. As for TCP, a failure decides only when
no address gave a valid handshake. Handshakes made only to validate addresses of an ``http://``
URL are evidence for DNS, never a verdict of their own.
"""

from __future__ import annotations

from probe.core.model import Hop, TLSObservation
from probe.core.net.addresses import canon_ip
from probe.judge.classify.core import Context, Finding, HopControl, failure_kind, is_loopback

__all__ = ["judge_tls", "tls_failure_kind"]

_VERDICT = {
    "reset": "reset",
    "eof": "reset",
    "timeout": "blocked",
    "cert-invalid": "hijacked",
    "handshake-failed": "blocked",
}


def tls_failure_kind(t: TLSObservation) -> str | None:
    """Failure kind of a handshake, counting a completed one with an invalid chain as cert-invalid."""
    if t.failure is None:
        return "cert-invalid" if t.cert_valid is False else None
    return failure_kind(t.failure)


def _reason(kind: str, t: TLSObservation, ip: str) -> str:
    if kind == "cert-invalid":
        return f"tls/cert-invalid:{t.failure or 'untrusted'}"
    if kind in _VERDICT:
        return f"tls/{kind}:{ip}"
    return f"tls/failure:{t.failure}"


def judge_tls(ctx: Context, hop: Hop, ctl: HopControl) -> list[Finding]:
    """Findings for the TLS handshakes of one hop."""
    i = hop.index
    decisive = hop.scheme == "https"
    valid = any(tls_failure_kind(t) is None for t in hop.tls)
    out: list[Finding] = []
    for t in hop.tls:
        kind = tls_failure_kind(t)
        if kind is None:
            continue
        ip = canon_ip(t.ip) or t.ip
        if is_loopback(ip):
            down = ip in ctl.addrs and decisive and not valid
            reason = f"tls/local:loopback:{ip}:{t.failure or 'untrusted'}"
            out.append(Finding("tls", i, reason, "down" if down else None))
            continue
        control = ctl.tls.get((ip, t.port))
        verdict = None
        extra: list[Finding] = []
        if control is not None and not control[0]:
            ckind = failure_kind(control[1]) or "failure"
            extra.append(Finding("tls", i, f"control/tls-{ckind}:{ip}"))
            if ckind == kind and decisive and not valid:
                verdict = "down"
        elif decisive and not valid:
            control_ok = (
                control[0] if control is not None else ctl.tls_ok_anywhere(hop.scheme) or ctl.chain_ok
            )
            if control_ok:
                verdict = _VERDICT.get(kind)
        out.append(Finding("tls", i, _reason(kind, t, ip), verdict))
        out.extend(extra)
    return out
