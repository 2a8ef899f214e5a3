"""`probe trace` for people: the hops, then where the trigger's fate parts, with the rule in words.

A trace names a *link* between two hops, never one hop alone: a device first met at TTL N+1
acts after hop N passed the packet on and before hop N+1 checks its TTL (docs/packets.md).
The text says which two hops, how the trigger fared, whether the device is on-path or in-path,
and why; when no censor can be named (the link starts at this machine, or ends at the server),
it says that and why. Every line fits ``width`` columns.
"""

from __future__ import annotations

import dataclasses
import json
import textwrap
from collections.abc import Iterator

from probe.measure.trace import Trace, TraceLink, TraceProbe

__all__ = ["describe_link", "render_trace", "trace_json"]

_HOW = {
    "rst": "resets the connection",
    "fin": "closes the connection (FIN)",
    "response": "answers the trigger itself (an injected response, such as a block page)",
    "drop": "silently drops the trigger",
}
_FARED = {
    "rst": "was reset",
    "fin": "was closed with a FIN",
    "response": "was answered before it could reach the server",
    "drop": "drew no answer at all while the control did",
}


def _cell(p: TraceProbe, server_hop: int | None) -> str:
    """How one probe fared, in a word or two (an answer before the server's hop is injected)."""
    at_server = server_hop is not None and p.ttl >= server_hop
    word = {"rst": "reset", "fin": "fin", "response": "server" if at_server else "answer",
            "connect-failed": "no connect"}  # fmt: skip
    if p.outcome == "silent":
        return "expired" if p.router else "no answer"
    text = word.get(p.outcome, p.outcome)
    return f"{text}+expired" if p.router else text


def _hop(ttl: int, router: str | None, *, server: str | None = None) -> str:
    if ttl == 0:
        return "this machine"
    if server is not None:
        return f"hop {ttl}, the server ({server})"
    return f"hop {ttl} ({router})" if router else f"hop {ttl} (sent no ICMP)"


def describe_link(t: Trace) -> str:
    """The link where the trigger's fate parts from the control's, as one phrase."""
    link = t.link
    assert link is not None
    far = _hop(link.far, link.far_router, server=t.ip if link.far_is_server else None)
    return f"between {_hop(link.near, link.near_router)} and {far}"


def _rule(t: Trace, link: TraceLink) -> str:
    """Why that link: the N+1 rule applied to this trace."""
    technique = t.technique or "drop"
    near, far = link.near, link.far
    alike = (f"Up to TTL {near} the trigger was answered like the control; "
             if near else "No router answered the trigger before it fared differently; ")  # fmt: skip
    fared = f"from TTL {far} on it {_FARED[technique]}."
    rule = (" A packet sent with TTL N expires at hop N, which answers \"time exceeded\" and "
            "discards it; only with TTL N+1 does it travel past hop N.")  # fmt: skip
    if near and not link.far_is_server:
        where = (f" So the device acts after hop {near} passes the packet on and before hop "
                 f"{far} checks its TTL: inside hop {near} (after routing), on the link from "
                 f"hop {near} to hop {far}, or at hop {far}'s entrance.")  # fmt: skip
        if far > near + 1:
            one = far == near + 2
            hops, them = (f"hop {near + 1}", "it") if one else (f"hops {near + 1}-{far - 1}", "them")
            where += (f" The trigger drew no answer from {hops} that would place the device "
                      f"more precisely, so the link spans {them}.")  # fmt: skip
    else:
        where = ""
    return alike + fared + rule + where


def _placement(t: Trace) -> str:
    if t.placement == "in-path":
        return ("It is in-path: past it the trigger drew nothing from the routers behind it or "
                "the server, while the control did.")  # fmt: skip
    if t.placement == "on-path":
        return ("It is on-path: past it the trigger still drew answers from the routers behind "
                "it or the server, so the original packet went on; the device only injects.")  # fmt: skip
    return "Whether it is on-path or in-path cannot be told: nothing past it answered."


def _unnamed(t: Trace, link: TraceLink) -> str:
    if link.near == 0:
        return ("No censor is named: the difference begins before any router answered the "
                "trigger, so this machine or its own network (a firewall, an antivirus) cannot "
                "be told apart from a censor on the first link.")  # fmt: skip
    return (f"No censor is named: the trigger fared differently only once it could reach the "
            f"server, so the server itself (which may treat the name {t.trigger} differently) "
            f"cannot be told apart from a device on the last link.")  # fmt: skip


def render_trace(t: Trace, width: int = 80, stored: str = "") -> Iterator[str]:
    """The trace as text: a table of hops, the finding, the rule behind it, the cost."""
    wrap = textwrap.TextWrapper(width=width, subsequent_indent="  ", break_long_words=False,
                                break_on_hyphens=False)  # fmt: skip
    yield from wrap.wrap(f"trace {t.kind} {t.trigger} -> {t.ip}:{t.port} (control {t.control_name})")
    yield f"{'ttl':>3}  {'router':<16} {'trigger':<15} control"
    by = {(p.ttl, p.probe): p for p in t.probes}
    link = t.link
    for ttl in sorted({p.ttl for p in t.probes}):
        trig, ctl = by.get((ttl, "trigger")), by.get((ttl, "control"))
        if trig is None or ctl is None:
            continue
        router = ctl.router or trig.router or (t.ip if ctl.outcome == "response" else "*")
        mark = ""
        if link is not None and ttl == link.far:
            mark = " <- differs"
        cells = f"{_cell(trig, t.server_hop):<15} {_cell(ctl, t.server_hop):<15}"
        yield f"{ttl:>3}  {router:<16} {cells}{mark}"[:width].rstrip()
    yield ""
    if link is None:
        if t.server_hop is not None:
            text = (f"No difference: the trigger fared like the control at every TTL up to the "
                    f"server (hop {t.server_hop}). No censor on this path reacts to "
                    f"{t.trigger}, or it does not react to this trigger alone.")  # fmt: skip
        else:
            last = max((p.ttl for p in t.probes), default=0)
            text = (f"No difference between trigger and control up to TTL {last}, and the "
                    "server was not reached: no censor can be located.")  # fmt: skip
        yield from wrap.wrap(text)
    else:
        what = _HOW.get(t.technique or "", "treats the trigger differently")
        if t.censor_hop is not None:
            head = f"Censor {describe_link(t)}"
            head += f", {t.placement}: it {what}." if t.placement else f": it {what}."
            body = f"{_rule(t, link)} {_placement(t)}"
        else:
            head = f"The trigger fared differently {describe_link(t)}."
            body = f"{_rule(t, link)} {_unnamed(t, link)}"
        yield from wrap.wrap(head)
        yield from textwrap.wrap(body, width=width, initial_indent="  ", subsequent_indent="  ",
                                 break_long_words=False, break_on_hyphens=False)  # fmt: skip
    yield from wrap.wrap(f"{t.packets_sent} packets sent in {t.duration:.2f} s" + stored)


def trace_json(result: Trace, trace_id: int | None) -> str:
    """The trace as one JSON document, with the id it was stored under (or null)."""
    data = dataclasses.asdict(result)
    data["id"] = trace_id
    return json.dumps(data, indent=1)
