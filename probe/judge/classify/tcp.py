"""TCP stage: connects to each address, compared with the helper's connects to the same address.

A failure decides the verdict only when *no* address of the hop connected (the page could not be
fetched); otherwise it stays in the reasons as partial (per-address) interference. Connects to a
loopback address never leave the machine: they are local, never interference. A hop after a
redirect with no control of its own is compared with an earlier hop's control that followed
the redirects to the final page (OONI's helper does): it connected to that hop.
"""

from __future__ import annotations

from probe.core.model import Hop
from probe.core.net.addresses import canon_ip
from probe.judge.classify.core import Context, Finding, HopControl, failure_kind, is_loopback

__all__ = ["judge_tcp"]

_VERDICT = {"timeout": "blocked", "refused": "reset", "reset": "reset"}


def judge_tcp(ctx: Context, hop: Hop, ctl: HopControl) -> list[Finding]:
    """Findings for the TCP connects of one hop."""
    i = hop.index
    connected = any(t.failure is None for t in hop.tcp)
    out: list[Finding] = []
    for t in hop.tcp:
        if t.failure is None:
            continue
        ip = canon_ip(t.ip) or t.ip
        kind = failure_kind(t.failure)
        if is_loopback(ip):
            # Never leaves the machine: no censor can act on it, and a control's connect to
            # "its" loopback says nothing about ours. Local, whatever the failure.
            down = ip in ctl.addrs and not connected  # the control resolves it there too
            out.append(Finding("tcp", i, f"tcp/local:loopback:{ip}:{t.failure}", "down" if down else None))
            continue
        if kind in _VERDICT:
            reason = f"tcp/{kind}:{ip}"
        else:
            reason = f"tcp/{'local' if kind == 'local' else 'failure'}:{t.failure}"
        control = ctl.tcp.get((ip, t.port))
        verdict = None
        extra: list[Finding] = []
        if control is None and ctl.chain_ok and not connected:
            # The control reached the final page through this hop (it follows redirects).
            verdict = _VERDICT.get(kind or "")
            extra.append(Finding("tcp", i, "control/reached-by-redirect"))
        elif control is not None and control[0]:
            if not connected:
                verdict = _VERDICT.get(kind or "")
        elif control is not None:
            ckind = failure_kind(control[1])
            extra.append(Finding("tcp", i, f"control/tcp-{ckind}:{ip}"))
            if ckind == kind and not connected:
                verdict = "down"
        out.append(Finding("tcp", i, reason, verdict))
        out.extend(extra)
    return out
