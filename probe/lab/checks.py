"""Compare what the probe stored with what a scenario expects (pure functions).

Observation checks test the measurement engine against the censor; verdict checks test the
classifier. They are reported separately so that a missing control or classifier shows up as a
verdict mismatch, never as a hidden pass.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from probe.core.failures import Failure
from probe.core.model import DNSObservation, Hop, Measurement, Verdict
from probe.lab.blockpage import BLOCKPAGE_MARKER
from probe.lab.scenarios import EndpointExpect, Expect, OutageExpect, TraceExpect, trace_summary

__all__ = ["Outcome", "check", "check_endpoint", "check_outages", "check_trace", "first_failure",
           "observed", "observed_endpoint", "system_a_query"]

#: The width every text report of probe must fit (README: "Every command fits an 80-column terminal").
WIDTH = 80

_MARKER = BLOCKPAGE_MARKER.encode()


@dataclass(frozen=True)
class Outcome:
    """The result of checking one target: mismatches, each as ``what: expected X, got Y``."""

    url: str
    observation_errors: tuple[str, ...]
    verdict_errors: tuple[str, ...]
    observed: str  # a short summary of what the probe stored
    verdict: str  # "verdict/stage@hop" as stored

    @property
    def ok(self) -> bool:
        return not self.observation_errors and not self.verdict_errors


def system_a_query(hop: Hop) -> DNSObservation | None:
    """The A query to the system resolver (the ISP's), or the first A query, or None."""
    a = [d for d in hop.dns if d.qtype == "A"]
    for d in a:
        if d.resolver.startswith("udp://") or d.resolver == "system":
            return d
    return a[0] if a else None


def first_failure(hop: Hop) -> tuple[str, str | None]:
    """The first step of ``hop`` at which every attempt failed: (step, failure), or ("none", None).

    DNS fails when no A query yielded addresses; TCP when no connect succeeded; TLS (https) when
    no handshake succeeded with a valid certificate; HTTP when there was no response.
    """
    a = [d for d in hop.dns if d.qtype == "A"]
    if a and not any(d.addresses for d in a) and not hop.tcp:
        q = system_a_query(hop)
        return "dns", (q.failure if q else None) or Failure.DNS_NO_ANSWER
    if hop.tcp and not any(t.failure is None for t in hop.tcp):
        return "tcp", hop.tcp[0].failure
    if hop.scheme == "https" and hop.tls and not any(
        t.failure is None and t.cert_valid is not False for t in hop.tls
    ):
        return "tls", hop.tls[0].failure or Failure.SSL_INVALID_CERTIFICATE
    if hop.http is None:
        return "http", "no_http_request"
    if hop.http.failure:
        return "http", hop.http.failure
    return "none", None


def observed(m: Measurement) -> str:
    """A one-line summary of a measurement: failing step per hop, replies, status."""
    parts = []
    for hop in m.hops:
        step, failure = first_failure(hop)
        q = system_a_query(hop)
        dns = ""
        if q is not None and hop.index == 0:
            dns = f" dns={','.join(q.addresses) or q.failure}"
            if len(q.replies) > 1:
                dns += f" ({len(q.replies)} replies)"
        http = ""
        if hop.http is not None and hop.http.status is not None:
            http = f" {hop.http.status}"
            if hop.http.body_truncated:
                http += " truncated"
            if _MARKER in hop.http.body:
                http += " blockpage"
        fail = "ok" if step == "none" else f"{step}:{failure}"
        parts.append(f"h{hop.index} {fail}{dns}{http}")
    if m.failure:
        parts.append(f"measurement:{m.failure}")
    return "; ".join(parts) or "no hops"


def check(e: Expect, m: Measurement | None, v: Verdict | None) -> Outcome:
    """Check one measurement (and its verdict) against ``e``."""
    if m is None:
        return Outcome(e.url, ("the probe stored no measurement for this URL",),
                       ("no verdict",), "nothing", "-")  # fmt: skip
    obs: list[str] = []
    hops = m.hops
    if e.hops is not None and len(hops) != e.hops:
        obs.append(f"hops: expected {e.hops}, got {len(hops)}")
    if e.step:
        if e.step == "none":
            for hop in hops:
                step, failure = first_failure(hop)
                if step != "none":
                    obs.append(f"hop {hop.index}: expected no failure, got {step}:{failure}")
        elif e.step_hop >= len(hops):
            obs.append(f"hop {e.step_hop}: expected {e.step}:{e.failure}, but the probe has no such hop")
        else:
            step, failure = first_failure(hops[e.step_hop])
            if (step, failure) != (e.step, e.failure):
                obs.append(f"hop {e.step_hop}: expected {e.step}:{e.failure}, got {step}:{failure}")
    q = system_a_query(hops[0]) if hops else None
    if e.dns_replies is not None:
        n = len(q.replies) if q else 0
        if n < e.dns_replies:
            obs.append(f"DNS replies: expected at least {e.dns_replies}, got {n}")
    if e.dns_addresses is not None:
        got = tuple(q.addresses) if q else ()
        if got != e.dns_addresses:
            obs.append(f"DNS addresses: expected {list(e.dns_addresses)}, got {list(got)}")
    if e.dns_reply_addresses is not None:
        got_r = tuple(tuple(r.answers) for r in q.replies) if q else ()
        if got_r != e.dns_reply_addresses:
            obs.append(f"DNS replies' addresses: expected {[list(a) for a in e.dns_reply_addresses]}, "
                       f"got {[list(a) for a in got_r]}")  # fmt: skip
    last = next((h.http for h in reversed(hops) if h.http is not None), None)
    if e.status is not None and (last is None or last.status != e.status):
        obs.append(f"HTTP status: expected {e.status}, got {last.status if last else None}")
    if e.blockpage is not None:
        seen = last is not None and _MARKER in last.body
        if seen != e.blockpage:
            obs.append(f"block page: expected {'seen' if e.blockpage else 'absent'}, got "
                       f"{'seen' if seen else 'absent'}")  # fmt: skip
    if e.truncated is not None and (last is None or last.body_truncated != e.truncated):
        obs.append(f"body truncated: expected {e.truncated}, got {last.body_truncated if last else None}")
    if e.captured is not None and (m.captured and bool(m.packets)) != e.captured:
        obs.append(f"capture: expected packets {'recorded' if e.captured else 'absent'}, got "
                   f"{len(m.packets)} (captured={m.captured})")  # fmt: skip
    ver: list[str] = []
    got_v = "-"
    if v is None:
        ver.append("no verdict stored")
    else:
        got_v = v.verdict + (f"/{v.stage}" if v.stage else "") + (f"@{v.hop}" if v.hop else "")
        got_v += "".join(f" {p.suite}:{p.verdict}" for p in v.protocols)
        if v.verdict != e.verdict:
            ver.append(f"verdict: expected {e.verdict}, got {v.verdict}")
        if e.stage is not None and v.stage != e.stage:
            ver.append(f"stage: expected {e.stage}, got {v.stage}")
        if e.hop is not None and v.hop != e.hop:
            ver.append(f"hop: expected {e.hop}, got {v.hop}")
        if e.reason and not any(e.reason in r for r in v.reasons):
            ver.append(f"reasons: expected one naming {e.reason!r}, got {list(v.reasons)}")
        for ev in e.evidence:
            if not any(ev in r for r in v.reasons):
                ver.append(f"evidence: expected {ev!r} in the reasons, got {list(v.reasons)}")
        got_p = {p.suite: p for p in v.protocols}
        for suite, verdict, reason in e.protocols:
            p = got_p.get(suite)
            if p is None:
                ver.append(f"{suite}: expected {verdict}, got no {suite} verdict")
                continue
            if p.verdict != verdict:
                ver.append(f"{suite}: expected {verdict}, got {p.verdict} {list(p.reasons)}")
            if reason and not any(reason in r for r in p.reasons):
                ver.append(f"{suite}: expected a reason naming {reason!r}, got {list(p.reasons)}")
    return Outcome(e.url, tuple(obs), tuple(ver), observed(m), got_v)


def observed_endpoint(d: dict[str, Any]) -> str:
    """A one-line summary of what was observed at one endpoint (a stored endpoint measurement,
    :func:`probe.store.circumvention.endpoint_measurements_at`'s dict)."""
    obs = d["observation"]
    parts = []
    if obs.get("tcp_failure"):
        parts.append(f"tcp:{obs['tcp_failure']}")
    elif obs.get("handshake") in ("tls", "openvpn"):
        parts.append(f"{obs['handshake']}:{obs.get('handshake_failure') or 'ok'}")
    if obs.get("decoy_sni"):
        parts.append(f"decoy:{obs.get('decoy_failure') or 'ok'}")
    for q in obs.get("queries") or []:
        parts.append(f"{q['name']}={','.join(q['addresses']) or q.get('rcode') or q.get('failure')}")
    for t in obs.get("trials") or []:
        what = f"{t['step']}:{t['failure']}" if t.get("failure") else (t.get("detail") or "ok")
        parts.append(f"{t['role']}@{t['port']} {what}")
    return "; ".join(parts) or "nothing"


def check_endpoint(e: EndpointExpect, d: dict[str, Any] | None) -> Outcome:
    """Check one stored endpoint result (or None: nothing stored) against ``e``."""
    if d is None:
        return Outcome(e.url, ("the probe stored no result for this endpoint",), ("no verdict",),
                       "nothing", "-")  # fmt: skip
    seen = observed_endpoint(d)
    obs_errors = []
    if e.observed and e.observed not in seen:
        obs_errors.append(f"observed: expected {e.observed!r} in {seen!r}")
    if d["kind"] != e.kind:
        obs_errors.append(f"kind: expected {e.kind}, got {d['kind']}")
    verdict_errors = []
    got = d["verdict"] + (f"/{d['stage']}" if d["stage"] else "")
    if d["verdict"] != e.verdict:
        verdict_errors.append(f"verdict: expected {e.verdict}, got {d['verdict']}")
    if e.stage is not None and d["stage"] != e.stage:
        verdict_errors.append(f"stage: expected {e.stage}, got {d['stage']}")
    if e.reason and not any(e.reason in r for r in d["reasons"]):
        verdict_errors.append(f"reason: expected {e.reason!r} in {d['reasons']}")
    return Outcome(e.url, tuple(obs_errors), tuple(verdict_errors), seen, got)


def _routers(trace: dict[str, Any], probe: str) -> tuple[str, ...]:
    """The routers that reported ``probe``'s packets (``trigger``, ``control``) expiring, in order."""
    return tuple(p["router"] for p in trace.get("probes", ()) if p.get("probe") == probe and p.get("router"))


def check_trace(e: TraceExpect, trace: dict[str, Any] | None, text: str | None = None) -> Outcome:
    """Check one `probe trace --json` result (None: the trace failed) and, when the scenario
    reads it, the text report ``text`` against ``e``."""
    if trace is None:
        return Outcome(e.url, ("the trace produced no result",), ("no conclusion",), "nothing", "-")
    obs: list[str] = []
    trigger, control = _routers(trace, "trigger"), _routers(trace, "control")
    if trace.get("server_hop") != e.server_hop:
        obs.append(f"server hop: expected {e.server_hop}, got {trace.get('server_hop')}")
    if e.trigger_routers is not None and trigger != e.trigger_routers:
        obs.append(f"trigger's routers: expected {list(e.trigger_routers)}, got {list(trigger)}")
    if e.control_routers is not None and control != e.control_routers:
        obs.append(f"control's routers: expected {list(e.control_routers)}, got {list(control)}")
    obs += [f"trigger's routers: expected {r} among {list(trigger)}" for r in e.trigger_reaches
            if r not in trigger]  # fmt: skip
    obs += [f"trigger's routers: expected no {r}, got {list(trigger)}" for r in e.trigger_misses
            if r in trigger]  # fmt: skip
    sent = trace.get("packets_sent") or 0
    if e.max_packets and not 0 < sent <= e.max_packets:
        obs.append(f"packets sent: expected 1 to {e.max_packets}, got {sent}")
    if text is not None:
        wide = [line for line in text.splitlines() if len(line) > WIDTH]
        if wide:
            obs.append(f"text report: {len(wide)} lines wider than {WIDTH} columns")
        words = " ".join(text.split())  # the words, whatever the line breaks
        obs += [f"text report: expected {w!r}" for w in e.says if w not in words]
        obs += [f"text report: expected no {w!r}" for w in e.never_says if w in words]
    ver: list[str] = []
    link = trace.get("link")
    got_link = None if link is None else (link.get("near"), link.get("near_router"), link.get("far"),
                                          link.get("far_router"))  # fmt: skip
    for what, want, got in (("censor hop", e.censor_hop, trace.get("censor_hop")),
                            ("placement", e.placement, trace.get("placement")),
                            ("technique", e.technique, trace.get("technique")),
                            ("link", e.link, got_link)):  # fmt: skip
        if want != got:
            ver.append(f"{what}: expected {want}, got {got}")
    seen = f"trigger {'>'.join(trigger) or '-'}; control {'>'.join(control) or '-'}; server hop " \
           f"{trace.get('server_hop')}"
    got_v = trace_summary(trace.get("censor_hop"), trace.get("placement"), trace.get("technique"))
    return Outcome(e.url, tuple(obs), tuple(ver), seen, got_v)


def check_outages(e: OutageExpect, exit_code: int, status: str | None,
                  found: list[dict[str, Any]]) -> Outcome:
    """Check a run's exit code and stored ``status`` and the outage intervals the rules found in
    it (:meth:`probe.research.outages.Outage.to_dict`) against ``e``."""
    obs: list[str] = []
    if e.offline and (exit_code != 1 or status != "offline"):
        obs.append(f"run: expected no network (exit 1, recorded offline), got exit {exit_code}, {status}")
    if not e.offline and (exit_code != 0 or status != "complete"):
        obs.append(f"run: expected it to complete (exit 0), got exit {exit_code}, {status}")
    ver: list[str] = []
    states = tuple(str(o.get("state")) for o in found)
    if states != e.states:
        ver.append(f"outages: expected {list(e.states) or 'none'}, got {list(states) or 'none'}")
    first = str(found[0].get("evidence", "")) if found else ""
    if e.evidence and e.evidence not in first:
        ver.append(f"evidence: expected {e.evidence!r} in {first!r}")
    seen = f"run {status or 'not recorded'}; " + ("; ".join(f"{s}: {o.get('evidence', '')}"
                                                       for s, o in zip(states, found, strict=True))
                                             or "no outage")  # fmt: skip
    return Outcome(e.url, tuple(obs), tuple(ver), seen, "outage:" + (",".join(states) or "none"))
