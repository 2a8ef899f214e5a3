"""DNS stage: injection, bogons, block-page answers, failures and consistency with the control.

An answer set is *consistent* when it overlaps the control's addresses, shares an ASN with them
(offline IP data), when a TLS handshake to one of its addresses with the host as SNI returned a
certificate valid for the host (the probe's or the helper's), or when the HTTP exchange over
it gave the control's page (directly, or by redirecting to it) or a known false positive (a
CDN's bot challenge). Anything else is inconsistent.

Bogon rule, kept sound in labs and on LANs: a non-public answer (loopback, private, link-local,
reserved) is a lie only for a *public* name (not ``*.example``, ``*.test``, ``*.local``, ...),
and only when the control saw no non-public address of the same class: a control that also
resolves the name privately means we are inside a private network, where consistency decides.
``0.0.0.0``/``::`` are never a real answer and count for any name.
"""

from __future__ import annotations

from probe.core.model import DNSObservation, Hop
from probe.core.net.addresses import addr_class, canon_ip, family, is_ip_literal, is_public_name
from probe.judge.classify.core import Context, Finding, HopControl, failure_kind
from probe.judge.classify.http import response_ok

__all__ = ["injection", "judge_dns", "judge_query"]

_FAILURE_REASON = {
    "nxdomain": "nxdomain",
    "no-answer": "no-answer",
    "servfail": "servfail",
    "refused": "refused",
    "timeout": "timeout",
}


# Failures of a hop whose name the control resolved while following the redirects itself.
_CHAIN_VERDICT = {
    "nxdomain": "hijacked",
    "no-answer": "hijacked",
    "servfail": "hijacked",
    "refused": "hijacked",
    "timeout": "blocked",
}


def injection(q: DNSObservation) -> int:
    """Number of *different* well-formed replies received for one query (2+ means injection).

    Only replies that answer the query (our id and question, from the resolver) count:
    ``MALFORMED`` datagrams (garbage, another id or question) are kept as evidence of what
    arrived, but anyone can send junk to an open port; it proves nothing about a censor.
    """
    seen = {
        (r.rcode, frozenset(canon_ip(a) for a in r.answers), frozenset(r.cnames))
        for r in q.replies
        if r.rcode != "MALFORMED"
    }
    return len(seen)


def _bogon(ip: str, host: str, ctl: HopControl) -> str | None:
    cls = addr_class(ip)
    if cls is None or ip in ctl.addrs:
        return None
    if any(addr_class(a) == cls for a in ctl.addrs):
        return None
    if cls == "unspecified" or is_public_name(host):
        return cls
    return None


def _consistent_by(ctx: Context, hop: Hop, ctl: HopControl, addrs: list[str]) -> str | None:
    """Why addresses that do not overlap the control's are still genuine, or None."""
    mine = {ctx.asn(a, ctl) for a in addrs} - {0}
    theirs = {ctx.asn(a, ctl) for a in ctl.addrs} - {0}
    if mine & theirs:
        return "asn"
    host = hop.host.lower()
    aset = set(addrs)
    for t in hop.tls:
        if canon_ip(t.ip) in aset and t.failure is None and t.cert_valid and t.sni.lower() == host:
            return "tls"
    for (ip, _port), (ok, _f, server_name) in ctl.tls.items():
        if ip in aset and ok and server_name.lower() == host:
            return "control-tls"
    if aset & ctl.valid_ips:
        return "control-tls"
    h = hop.http
    if h is not None and canon_ip(h.ip) in aset and h.failure is None:
        final = ctx.final_hop is hop
        if final and response_ok(ctx, hop, ctl):
            return "http"
        if not final and h.status in (301, 302, 303, 307, 308) and ctx.final_ok:
            return "http"
        # A CDN's bot challenge comes from the site's operator, not from a censor's server.
        if h.status is not None and ctx.fingerprints.false_positives(h.body, h.headers):
            return "false-positive"
    return None


def _authenticated(hop: Hop, addrs: list[str]) -> bool:
    """The probe's own TLS handshake to one of ``addrs`` with SNI = host validated for the host."""
    host = hop.host.lower()
    aset = set(addrs)
    return any(
        canon_ip(t.ip) in aset and t.failure is None and t.cert_valid is True and t.sni.lower() == host
        for t in hop.tls
    )


def _other_family_vouches(ctx: Context, hop: Hop, q: DNSObservation, ctl: HopControl) -> bool:
    """The page loaded, and the hop's answer of the other address family is consistent."""
    if not ctx.final_ok:
        return False
    fam = family(canon_ip(q.addresses[0])) if q.addresses else 0
    for o in hop.dns:
        other = [a for a in (canon_ip(x) for x in o.addresses) if a and family(a) != fam]
        if not other or injection(o) >= 2:
            continue
        if set(other) & ctl.addrs or _consistent_by(ctx, hop, ctl, other) is not None:
            return True
    return False


def _judge_failure(hop: Hop, q: DNSObservation, ctl: HopControl) -> list[Finding]:
    kind = failure_kind(q.failure)
    i = hop.index
    label = _FAILURE_REASON.get(kind or "")
    reason = f"dns/{label}" if label else f"dns/failure:{q.failure}"
    fam = 6 if q.qtype == "AAAA" else 4
    if ctl.chain_ok and not ctl.addrs and ctl.dns_failure_kind is None:
        # Only the first URL has a control, and it reached the final page through this hop:
        # the control resolved this name. Judge only when the probe got no address at all.
        if any(o.addresses for o in hop.dns) or kind not in _CHAIN_VERDICT:
            return [Finding("dns", i, reason)]
        return [
            Finding("dns", i, reason, _CHAIN_VERDICT[kind]),
            Finding("dns", i, "control/reached-by-redirect"),
        ]
    if ctl.addrs:
        same_family = ctl.addrs_of(fam)
        if kind == "no-answer" and not same_family:
            return []  # no AAAA for a site the control knows only by IPv4 (or vice versa): normal
        if kind == "timeout" and same_family:
            return [Finding("dns", i, reason, "blocked")]
        if kind == "nxdomain" or (kind in ("no-answer", "servfail", "refused") and same_family):
            return [Finding("dns", i, reason, "hijacked")]
        return [Finding("dns", i, reason)]
    if ctl.dns_failure_kind is not None:
        same = ctl.dns_failure_kind == kind or {kind, ctl.dns_failure_kind} <= {"nxdomain", "no-answer"}
        return [
            Finding("dns", i, reason, "down" if same else None),
            Finding("dns", i, f"control/dns-{ctl.dns_failure_kind}"),
        ]
    return [Finding("dns", i, reason)]


def _judge_answers(ctx: Context, hop: Hop, q: DNSObservation, ctl: HopControl) -> list[Finding]:
    i = hop.index
    addrs = [a for a in (canon_ip(x) for x in q.addresses) if a]
    out: list[Finding] = []
    cnames = q.replies[0].cnames if q.replies else ()
    for name in cnames:
        for fp in ctx.fingerprints.match_dns(name):
            out.append(Finding("dns", i, f"dns/blockpage:{fp.name}@{name.rstrip('.')}", "hijacked"))
    if _authenticated(hop, addrs):
        # A certificate valid for the name came from one of these addresses: whatever their
        # class, they are the site's own (a site on a private or carrier address, a lab).
        # Authentication outranks the bogon, block-page address and no-control rules.
        if not set(addrs) <= ctl.addrs:
            out.append(Finding("dns", i, "dns/consistent:tls"))
        return out
    loop = [ip for ip in addrs if addr_class(ip) == "loopback"]
    if loop and len(loop) == len(addrs) and set(loop) & ctl.addrs:
        # The control resolves the name to the same loopback address: the name points nowhere
        # for everyone (a misconfigured site), and no censor can act on a loopback connection.
        # The later step that fails on it (or the page from this machine) says "down"; when
        # no step was tried on it (OONI's engine does not connect to loopback), DNS says it.
        tried = any(canon_ip(t.ip) in loop for t in hop.tcp)
        reason = f"dns/loopback-everywhere:{','.join(loop)}"
        return [*out, Finding("dns", i, reason, None if tried else "down")]
    suspicious = False
    for ip in addrs:
        if ip in ctl.addrs:
            continue
        fps = ctx.fingerprints.match_dns(ip)
        if fps and addr_class(ip) is not None and _bogon(ip, hop.host, ctl) is None:
            # A non-public block-page address (127.0.0.1, 10.10.34.34) obeys the bogon rule: in
            # a lab or on a LAN such an answer can be genuine.
            fps = []
        for fp in fps:
            out.append(Finding("dns", i, f"dns/blockpage:{fp.name}@{ip}", "hijacked"))
        cls = _bogon(ip, hop.host, ctl)
        if cls is not None:
            out.append(Finding("dns", i, f"dns/bogon:{ip}", "hijacked"))
        suspicious = suspicious or bool(fps) or cls is not None
    if suspicious or not addrs:
        return out
    if ctl.dns_failure_kind == "nxdomain" and not ctl.addrs:
        out.append(Finding("dns", i, f"dns/answer-for-nxdomain:{','.join(addrs)}", "hijacked"))
        return out
    if not ctl.addrs or set(addrs) & ctl.addrs:
        return out
    why = _consistent_by(ctx, hop, ctl, addrs)
    if why is not None:
        out.append(Finding("dns", i, f"dns/consistent:{why}"))
    elif ctl.addrs_of(family(addrs[0])) and _other_family_vouches(ctx, hop, q, ctl):
        # A CDN answers each family from its own pool: an AAAA that differs while the IPv4
        # answer is consistent and the page loaded is the CDN's, not a forgery we can prove.
        out.append(Finding("dns", i, f"dns/unverified:{','.join(addrs)}"))
        out.append(Finding("dns", i, "dns/consistent:other-family"))
    elif ctl.addrs_of(family(addrs[0])):
        out.append(Finding("dns", i, f"dns/inconsistent:{','.join(addrs)}", "hijacked"))
    else:
        # The control has no address of this family to compare with (e.g. no AAAA).
        out.append(Finding("dns", i, f"dns/unverified:{','.join(addrs)}"))
    return out


def judge_query(ctx: Context, hop: Hop, q: DNSObservation, ctl: HopControl) -> list[Finding]:
    """Findings for what one query got (its failure, or its answers), against the control."""
    if q.failure is not None and not q.addresses:
        return _judge_failure(hop, q, ctl)
    return _judge_answers(ctx, hop, q, ctl)


def judge_dns(ctx: Context, hop: Hop, ctl: HopControl) -> list[Finding]:
    """Findings for the DNS queries of one hop (none for an IP-literal host)."""
    if is_ip_literal(hop.host):
        return []
    out: list[Finding] = []
    for q in hop.dns:
        n = injection(q)
        if n >= 2:
            out.append(Finding("dns", hop.index, f"dns/injection:{n}-replies", "hijacked"))
        out.extend(judge_query(ctx, hop, q, ctl))
    return out
