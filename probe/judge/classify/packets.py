"""Packet-level evidence: who sent that reset, that FIN, that DNS answer? (pure)

With ``--capture`` a measurement carries the metadata of the packets that came back on each of
its flows (:class:`probe.core.model.Packet`). A middlebox that forges a packet sits at another
distance than the server and builds its packets another way, so its packets differ from the
server's own on the same flow (Weaver, Sommer and Paxson 2009; CenTrace; Censored Planet):

* **TTL**: a packet from the server arrives with the same TTL as the server's SYN-ACK; one
  forged at hop 3 of a 5-hop path arrives with a TTL 2 higher. ``ttl-delta=N`` is the difference.
* **IP ID and DF**: a server's packets share its IP-ID pattern (0 with DF set, or a counter);
  a forged packet built by a tool often has no DF and an unrelated IP ID. An injector that
  copies the TTL (to evade a TTL check) is still caught here: ``ip-id``.

Findings:

* ``tcp/injected-rst:ttl-delta=N`` / ``tcp/injected-fin:...`` / ``...:ip-id`` -- reset (the
  stage the flow failed at); locally provable, so it decides even without a control;
* ``tcp/server-rst:ttl=N`` -- the reset looks exactly like the server's own packets (a closed
  port, a server that refuses this client): the reset verdict of that stage is withdrawn and
  the measurement is inconclusive, since a server is not a censor;
* ``dns/injected:ttl-delta=N`` / ``dns/injected:ip-id`` -- of several replies to one query, one
  came from elsewhere than the genuine one (hijacked);
* ``dns/intercepted:no-resolver@IP`` -- a reply from an address that runs no DNS server
  (GFWatch): something on the path answered. Evidence only: an ISP that transparently
  redirects all DNS to an honest resolver answers there too, with the true answer;
* ``dns/injected:no-resolver@IP`` -- that reply also disagrees with the control (judged by
  the DNS stage's own rules: inconsistent addresses, a bogon, a block-page address, NXDOMAIN
  for a name the control resolves): a forged answer (hijacked).
* Decoys: ``tls/sni-filtered:decoy=NAME`` (the same address completes a handshake with a
  harmless SNI: the name is filtered), ``tls/address-blocked:decoy-failed``; the same for HTTP
  with ``http/host-filtered:decoy=NAME`` / ``http/address-blocked:decoy-failed``.

See docs/packets.md.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from probe.core.model import DNSObservation, Hop, Packet, packet_digest
from probe.core.net.addresses import canon_ip
from probe.core.net.hostport import split_hostport
from probe.judge.classify.core import Context, Finding, HopControl, failure_kind
from probe.judge.classify.dns import judge_query

__all__ = ["FlowJudgement", "judge_decoys", "judge_flow", "judge_packets", "withdraw_server_resets"]

#: A TTL difference of this much, alone, marks a packet as not sent by the server: a route
#: change in the middle of one flow is rare, and 1 hop of difference needs a second tell.
TTL_DELTA_ALONE = 2
#: IP IDs within this distance above the server's highest one still fit its counter.
IPID_WINDOW = 64

_RESET_KINDS = ("reset", "eof", "refused")
_STAGE_VERDICT = {"reset": "reset", "eof": "reset", "refused": "reset", "timeout": "blocked",
                  "handshake-failed": "blocked"}  # fmt: skip


@dataclass(frozen=True)
class FlowJudgement:
    """What one RST/FIN (or DNS reply) packet is, compared with the server's own packets."""

    injected: bool
    ttl_delta: int
    ip_pattern: bool  # DF or IP ID do not fit the server's packets
    ttl: int

    def tag(self) -> str:
        if self.ttl_delta:
            return f"ttl-delta={self.ttl_delta}"
        return "ip-id" if self.ip_pattern else f"ttl={self.ttl}"


def judge_flow(pkt: Packet, baseline: Sequence[Packet]) -> FlowJudgement | None:
    """Compare ``pkt`` with the server's packets ``baseline`` on the same flow (None: none)."""
    if not baseline:
        return None
    ttl = Counter(b.ttl for b in baseline).most_common(1)[0][0]
    delta = abs(pkt.ttl - ttl)
    df_differs = all(b.df != pkt.df for b in baseline)
    ids = [b.ip_id for b in baseline]
    if all(i == 0 for i in ids):
        ipid_differs = pkt.ip_id != 0 and not pkt.df
    else:
        lo, hi = min(ids), max(ids)
        ipid_differs = not lo <= pkt.ip_id <= hi + IPID_WINDOW
    pattern = df_differs or ipid_differs
    injected = delta >= TTL_DELTA_ALONE or (pattern and (delta >= 1 or df_differs))
    return FlowJudgement(injected, delta, pattern, pkt.ttl)


def _flows(packets: Iterable[Packet]) -> dict[tuple[str, str, int, int], list[Packet]]:
    flows: dict[tuple[str, str, int, int], list[Packet]] = {}
    for p in packets:
        flows.setdefault((p.proto, p.src, p.sport, p.dport), []).append(p)
    return flows


def _stage_of(hop: Hop, ip: str, port: int) -> tuple[str, str | None] | None:
    """(stage, failure kind) at which the probe's exchange with ip:port failed, if it did."""
    for t in hop.tcp:
        if canon_ip(t.ip) == ip and t.port == port and t.failure is not None:
            return "tcp", failure_kind(t.failure)
    for s in hop.tls:
        if canon_ip(s.ip) == ip and s.port == port and s.failure is not None:
            return "tls", failure_kind(s.failure)
    h = hop.http
    if h is not None and canon_ip(h.ip) == ip and h.port == port and h.failure is not None:
        return "http", failure_kind(h.failure)
    return None


def _hop_addresses(hop: Hop) -> set[tuple[str, int]]:
    return {(canon_ip(t.ip) or t.ip, t.port) for t in hop.tcp}


def _tcp_findings(hop: Hop, packets: Sequence[Packet]) -> list[Finding]:
    out: list[Finding] = []
    mine = _hop_addresses(hop)
    for (proto, src, sport, _dport), flow in _flows(packets).items():
        if proto != "tcp" or (src, sport) not in mine:
            continue
        closing = [p for p in flow if "R" in p.flags or "F" in p.flags]
        if not closing:
            continue
        baseline = [p for p in flow if "R" not in p.flags and "F" not in p.flags]
        if not baseline:
            # A reset answering the SYN: compare with the server's packets on other flows.
            baseline = [p for p in packets if p.proto == "tcp" and p.src == src
                        and "R" not in p.flags and "F" not in p.flags]  # fmt: skip
        failed = _stage_of(hop, src, sport)
        stage, kind = failed if failed is not None else ("tcp", None)
        for p in closing[:1]:  # the first one ended the flow
            j = judge_flow(p, baseline)
            if j is None:
                continue
            what = "rst" if "R" in p.flags else "fin"
            if j.injected:
                verdict = _STAGE_VERDICT.get(kind or "reset", "reset") if failed else None
                out.append(Finding(stage, hop.index, f"tcp/injected-{what}:{j.tag()}@{src}", verdict))
            elif failed is not None and kind in _RESET_KINDS:
                out.append(Finding(stage, hop.index, f"tcp/server-{what}:ttl={j.ttl}@{src}",
                                   "inconclusive"))  # fmt: skip
    return out


def _reply_packets(q: DNSObservation, by_digest: dict[str, Packet]) -> list[tuple[int, Packet]]:
    """(index in ``q.replies``, captured packet) of each reply to the query that was captured.

    Only replies count: a datagram kept as junk (``MALFORMED``: garbage, another id or question)
    answered nothing, so its TTL or IP ID says nothing about who answered the query. Databases
    from before capture kept only replies hold such packets; re-judging them must not see
    injection in a junk flood either.
    """
    out = []
    for i, r in enumerate(q.replies):
        if r.rcode == "MALFORMED":
            continue
        p = by_digest.get(packet_digest(r.raw)) if r.raw else None
        if p is not None:
            out.append((i, p))
    return out


def _dns_findings(ctx: Context, hop: Hop, ctl: HopControl, packets: Sequence[Packet]) -> list[Finding]:
    out: list[Finding] = []
    by_digest = {p.digest: p for p in packets if p.proto == "udp" and p.digest}
    for q in hop.dns:
        pairs = _reply_packets(q, by_digest)
        if len(pairs) < 2:
            continue
        # The genuine reply: the one agreeing with the control, else the last (injectors win races).
        agreeing = (k for k, (i, _) in enumerate(pairs)
                    if {canon_ip(a) for a in q.replies[i].answers} & ctl.addrs)  # fmt: skip
        genuine = next(agreeing, len(pairs) - 1)
        base = pairs[genuine][1]
        for k, (_i, p) in enumerate(pairs):
            if k == genuine:
                continue
            j = judge_flow(p, [base])
            if j is not None and j.injected:
                out.append(Finding("dns", hop.index, f"dns/injected:{j.tag()}", "hijacked"))
                break
    out.extend(_no_resolver(ctx, hop, q, ctl) for q in hop.dns_probe if _answered(q))
    return out


def _answered(q: DNSObservation) -> bool:
    return any(r.rcode != "MALFORMED" or r.answers for r in q.replies)


def _no_resolver(ctx: Context, hop: Hop, q: DNSObservation, ctl: HopControl) -> Finding:
    """An answer from an address that runs no DNS server: interception, and injection only
    when the answer disagrees with the control (by the DNS stage's rules).

    The query's outcome (its addresses or rcode failure) is judged when a well-formed reply
    decided it; datagrams that are not a reply to it (``MALFORMED``) show that something
    answered, not what.
    """
    ip = split_hostport(q.resolver.removeprefix("udp://"))[0]
    decided = any(r.rcode != "MALFORMED" for r in q.replies)
    if decided and any(f.verdict == "hijacked" for f in judge_query(ctx, hop, q, ctl)):
        return Finding("dns", hop.index, f"dns/injected:no-resolver@{ip}", "hijacked")
    return Finding("dns", hop.index, f"dns/intercepted:no-resolver@{ip}")


def judge_decoys(hop: Hop) -> list[Finding]:
    """What the decoy retries say: the name is filtered, or the address is blocked."""
    out: list[Finding] = []
    for d in hop.decoy_tls:
        real = next((t for t in hop.tls if t.ip == d.ip and t.port == d.port and t.failure), None)
        if real is None:
            continue
        kind = failure_kind(real.failure)
        if d.failure is None:
            out.append(Finding("tls", hop.index, f"tls/sni-filtered:decoy={d.sni}",
                               _STAGE_VERDICT.get(kind or "")))  # fmt: skip
        else:
            out.append(Finding("tls", hop.index, f"tls/address-blocked:decoy-failed:{d.failure}"))
    for dh in hop.decoy_http:
        h = hop.http
        if h is None or h.failure is None:
            continue
        kind = failure_kind(h.failure)
        if dh.failure is None and dh.status is not None:
            out.append(Finding("http", hop.index, f"http/host-filtered:decoy={dh.url.split('/')[2]}",
                               _STAGE_VERDICT.get(kind or "")))  # fmt: skip
        else:
            out.append(Finding("http", hop.index, f"http/address-blocked:decoy-failed:{dh.failure}"))
    return out


def judge_packets(ctx: Context, hop: Hop, ctl: HopControl) -> list[Finding]:
    """Packet-level findings for one hop (none without capture, except the resolver-less
    DNS queries and the decoys, which need no capture)."""
    packets = ctx.m.packets
    out = _tcp_findings(hop, packets) if packets else []
    out += _dns_findings(ctx, hop, ctl, packets)
    out += judge_decoys(hop)
    return out


def withdraw_server_resets(found: list[Finding]) -> list[Finding]:
    """A reset the server itself sent is no interference: drop the reset verdicts of that stage.

    Applies only where no packet of the same hop and stage was found injected.
    """
    server = {(f.hop, f.stage) for f in found if f.reason.startswith(("tcp/server-rst", "tcp/server-fin"))}
    injected = {(f.hop, f.stage) for f in found if f.reason.startswith("tcp/injected-")}
    withdrawn = server - injected
    if not withdrawn:
        return [f for f in found if not (f.reason.startswith("tcp/server-") and (f.hop, f.stage) in injected)]
    out = []
    for f in found:
        if (f.hop, f.stage) in withdrawn and f.verdict == "reset":
            f = Finding(f.stage, f.hop, f.reason, None)
        out.append(f)
    return out
