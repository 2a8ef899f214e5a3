"""The whole evidence of one stored measurement, step by step, as plain data.

`probe show` renders it as text or JSON and `probe report` as HTML: one builder, so both say
the same. For each hop: every DNS query with every reply (replies that disagree with the
control, or that raced a different reply to the same query, are marked injected), every TCP
connect and TLS handshake next to the control's result for the same address, the certificate
(subject, issuer, validity), the HTTP exchange (status, title, body length, the fingerprints it
matches) next to the control's, then the verdict and every reason in words.

Reads only the store (probe/store/evidence.py) and the packaged fingerprints: no network
library is imported.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any, NamedTuple

from probe.core.errors import ProbeError
from probe.core.model import DNSObservation, Hop, Measurement, ProtocolVerdict, Verdict
from probe.core.net import InvalidURL, parse_url
from probe.judge.explain import decisive, explain
from probe.present.packets import packet_rows, render_packets
from probe.present.terminal import clean, json_safe
from probe.present.text import cells, cut, cut_middle, pad, wrap
from probe.store.evidence import (
    URLColumn,
    attempts,
    certificate_info,
    has_measurement,
    measurement_place,
    newest_final,
    urls_of_host,
)
from probe.store.protocols import protocol_verdicts_of

if TYPE_CHECKING:
    from probe.store import Store

__all__ = ["EvidenceError", "Found", "dumps", "evidence", "find_measurement", "render_text"]


class EvidenceError(ProbeError, LookupError):
    """No measurement matches what was asked for; the message says what was looked for."""


class Found(NamedTuple):
    """The measurement a ``probe show`` argument names, and what to tell the reader about it."""

    measurement_id: int
    #: Said on stderr when the measurement shown is not of exactly what was named (a host
    #: name's newest URL); None when it is.
    note: str | None = None


def find_measurement(store: Store, what: str, vantage: str | None = None,
                     run: int | None = None) -> Found:
    """The measurement ``what`` names: an id, a URL, or a host name.

    A URL (``scheme://...``) is matched exactly, as measured once normalised (``http://x`` is
    ``http://x/``) or as written in the list; never by its host alone: an ``http://`` URL is
    not its ``https://`` twin. When it was not measured the error names the URLs of its host
    that were. A bare host name (``example.org``) shows its newest measured URL, and
    :attr:`Found.note` says which. ``vantage`` and ``run`` narrow the search.
    """
    if what.isdigit():
        if has_measurement(store, int(what)):
            return Found(int(what))
        raise EvidenceError(f"no measurement {what}")
    narrowed = ", ".join(f"{k} {v!r}" for k, v in (("vantage", vantage), ("run", run)) if v)
    where = f" ({narrowed})" if narrowed else ""
    if "://" not in what:
        host = what.split("/", 1)[0].rsplit(":", 1)[0].lower().rstrip(".")
        mid = newest_final(store, "domain", host, vantage=vantage, run=run)
        if mid is None:
            raise EvidenceError(f"no measurement of {what!r}{where}")  # a host or an endpoint
        place = measurement_place(store, mid)
        url = place.url if place is not None else "?"
        return Found(mid, f"showing {url}, the newest measurement of host {host}{where}; "
                          "name a URL to see another")
    try:
        target = parse_url(what)
    except InvalidURL:
        target = None
    lookups: list[tuple[URLColumn, str]] = []
    if target is not None:
        lookups += [("url", target.url), ("original_url", target.url)]
    lookups += [("url", what), ("original_url", what)]
    for column, value in dict.fromkeys(lookups):
        mid = newest_final(store, column, value, vantage=vantage, run=run)
        if mid is not None:
            return Found(mid)
    name = target.url if target is not None else what
    others = urls_of_host(store, target.host, vantage=vantage, run=run) if target else []
    hint = (f"; measured of host {target.host}: {', '.join(others)}"
            if target is not None and others else "")
    raise EvidenceError(f"no measurement of {name}{where}{hint}")


def _injected(q: DNSObservation, control_addrs: set[str]) -> list[str | None]:
    """Per reply: why it looks injected, or None.

    A query answered by several different replies was raced by a forger (GFW-style injection):
    a reply whose addresses the control does not see is the forged one; without a control the
    earlier replies are (injectors race to answer first).
    """
    distinct = {(r.rcode, tuple(sorted(r.answers)), r.cnames) for r in q.replies}
    if len(distinct) < 2:
        return [None] * len(q.replies)
    out: list[str | None] = []
    last = (q.replies[-1].rcode, tuple(sorted(q.replies[-1].answers)), q.replies[-1].cnames)
    for r in q.replies:
        key = (r.rcode, tuple(sorted(r.answers)), r.cnames)
        if control_addrs:
            bad = not (set(r.answers) & control_addrs)
            out.append("injected: one of several different replies, not what the control sees"
                       if bad else None)
        else:
            out.append("injected (likely): raced a different later reply" if key != last else None)
    return out


def _certs(store: Store, m: Measurement) -> dict[str, dict[str, Any]]:
    shas = {hashlib.sha256(t.cert_chain[0]).hexdigest() for h in m.hops for t in h.tls
            if t.cert_chain}
    return {sha: info._asdict() for sha, info in certificate_info(store, shas).items()}


def _fingerprint_names(hop: Hop, fingerprints: Any) -> list[dict[str, Any]]:
    h = hop.http
    if h is None or fingerprints is None or h.status is None:
        return []
    fps, bps = fingerprints.match_response(h.body, h.headers)
    return [{"name": fp.name, "false_positive": fp.false_positive, "location": fp.location}
            for fp in (*fps, *bps)]


def _dns_probe(hop: Hop, reasons: Iterable[str]) -> list[dict[str, Any]]:
    """The hop's resolver-less queries (``--dns-probe``): what answered, and what it decided."""
    said = {r.split("@", 1)[1]: r.split(":", 1)[0] for r in reasons
            if r.startswith(("dns/injected:no-resolver@", "dns/intercepted:no-resolver@"))}
    marks = {"dns/injected": "injected: an address without a DNS server answered, against the "
                             "control",
             "dns/intercepted": "intercepted: an address without a DNS server answered, as the "
                                "control"}
    out = []
    for q in hop.dns_probe:
        ip = q.resolver.removeprefix("udp://").rsplit(":", 1)[0].strip("[]")
        answered = [r for r in q.replies if r.rcode != "MALFORMED"]
        out.append({
            "resolver": q.resolver, "qtype": q.qtype, "hostname": q.hostname,
            "failure": q.failure, "addresses": list(q.addresses),
            "rcode": answered[0].rcode if answered else None,
            "replies": len(q.replies), "duration": round(q.duration, 4),
            "decided": marks.get(said.get(ip, "")),
        })
    return out


def _hop(hop: Hop, certs: dict[str, dict[str, Any]], fingerprints: Any,
         reasons: Iterable[str] = ()) -> dict[str, Any]:
    c = hop.control
    ctl_addrs = set(c.dns_addrs) if c is not None and not c.failure else set()
    ctl_tcp = {(t.ip, t.port): t for t in (c.tcp if c is not None else ())}
    ctl_tls = {(t.ip, t.port): t for t in (c.tls if c is not None else ())}
    dns = []
    for q in hop.dns:
        marks = _injected(q, ctl_addrs)
        dns.append({
            "resolver": q.resolver, "transport": q.transport, "qtype": q.qtype,
            "hostname": q.hostname, "failure": q.failure, "addresses": list(q.addresses),
            "duration": round(q.duration, 4),
            "replies": [{"t": round(r.t, 4), "source": r.source, "rcode": r.rcode,
                         "answers": list(r.answers), "cnames": list(r.cnames), "ttl": r.ttl,
                         "flags": list(r.flags), "injected": mark}
                        for r, mark in zip(q.replies, marks, strict=True)],
        })
    tcp = []
    for t in hop.tcp:
        ct = ctl_tcp.get((t.ip, t.port))
        tcp.append({"ip": t.ip, "port": t.port, "failure": t.failure,
                    "duration": round(t.duration, 4),
                    "control": None if ct is None else {"ok": ct.ok, "failure": ct.failure}})
    tls = []
    for s in hop.tls:
        cs = ctl_tls.get((s.ip, s.port))
        leaf = hashlib.sha256(s.cert_chain[0]).hexdigest() if s.cert_chain else None
        tls.append({"ip": s.ip, "port": s.port, "sni": s.sni, "failure": s.failure,
                    "duration": round(s.duration, 4), "version": s.version, "cipher": s.cipher,
                    "alpn": s.alpn, "cert_valid": s.cert_valid, "leaf_sha256": leaf,
                    "certificate": certs.get(leaf) if leaf else None,
                    "chain_length": len(s.cert_chain),
                    "control": None if cs is None else {"ok": cs.ok, "failure": cs.failure}})
    http = None
    if hop.http is not None:
        h = hop.http
        http = {"url": h.url, "ip": h.ip, "port": h.port, "failure": h.failure,
                "status": h.status, "title": h.title, "body_length": h.body_length,
                "body_truncated": h.body_truncated, "body_sha256": h.body_sha256,
                "duration": round(h.duration, 4),
                "location": next((v for k, v in h.headers if k == "location"), None),
                "server": next((v for k, v in h.headers if k == "server"), None),
                "fingerprints": _fingerprint_names(hop, fingerprints)}
    ctl_quic = {(q.ip, q.port): q for q in (c.quic if c is not None else ())}
    quic = [{"ip": q.ip, "port": q.port, "sni": q.sni, "decoy": decoy, "attempt": q.attempt,
             "failure": q.failure, "alpn": q.alpn, "datagrams": q.datagrams,
             "h3_status": q.h3_status, "h3_failure": q.h3_failure,
             "duration": round(q.duration, 4),
             "control": None if decoy or (q.ip, q.port) not in ctl_quic else
             {"ok": ctl_quic[(q.ip, q.port)].ok, "failure": ctl_quic[(q.ip, q.port)].failure}}
            for decoy, q in sorted([*((False, q) for q in hop.quic), *((True, q) for q in hop.decoy_quic)],
                                   key=lambda dq: dq[1].started)]  # in the order they were made
    ctl_ech = {(e.ip, e.port): e for e in (c.ech if c is not None else ())}
    ech = []
    for e in hop.ech:
        ce = ctl_ech.get((e.ip, e.port))
        ech.append({"ip": e.ip, "port": e.port, "sni": e.sni, "ech": e.ech, "attempt": e.attempt,
                    "failure": e.failure, "connected": e.connected, "answer": e.answer,
                    "duration": round(e.duration, 4),
                    "control": None if ce is None else
                    {"ok": ce.ech_ok if e.ech else ce.plain_ok,
                     "failure": ce.ech_failure if e.ech else ce.plain_failure}})
    control = None
    if c is not None:
        control = {"source": c.source, "failure": c.failure, "dns_failure": c.dns_failure,
                   "dns_addrs": list(c.dns_addrs), "http_failure": c.http_failure,
                   "http_status": c.http_status, "http_title": c.http_title,
                   "http_body_length": c.http_body_length}
    return {"hop": hop.index, "url": hop.url, "dns": dns,
            "dns_probe": _dns_probe(hop, reasons), "tcp": tcp, "tls": tls, "http": http,
            "quic": quic, "ech": ech, "control": control}


def evidence(store: Store, measurement_id: int, *, fingerprints: Any = None) -> dict[str, Any]:
    """Everything stored about one measurement, with the verdict and its reasons in words.

    ``store`` is an open :class:`probe.store.Store`; ``fingerprints`` (a
    :class:`probe.inputs.fingerprints.Fingerprints`) names the fingerprints each HTTP response matches.
    """
    got = store.measurement(measurement_id)
    if got is None:
        raise EvidenceError(f"no measurement {measurement_id}")
    m, v = got
    if m.protocols:  # --quic, --ech: their verdicts, stored beside the web one
        v = dataclasses.replace(v, protocols=protocol_verdicts_of(store, measurement_id))
    place = measurement_place(store, measurement_id)
    if place is None:  # deleted since it was read
        raise EvidenceError(f"no measurement {measurement_id}")
    certs = _certs(store, m)
    return {
        "measurement_id": measurement_id,
        "url": place.url,
        "original_url": place.original_url,
        "category": place.category,
        "vantage": place.vantage,
        "run_id": place.run_id,
        "measured_at": place.measured_at,
        "final": bool(place.final),
        "attempt": m.attempt,
        "runtime": round(m.runtime, 3),
        "failure": m.failure,
        "attempts": [{"measurement_id": a.measurement_id, "attempt": a.attempt, "final": bool(a.final),
                      "verdict": a.verdict, "measured_at": a.measured_at}
                     for a in attempts(store, place.run_id, place.url)],
        "verdict": _verdict(v),
        "protocols": [_protocol(p) for p in v.protocols],
        "hops": [_hop(h, certs, fingerprints, v.reasons) for h in m.hops],
        "packets": packet_rows(m.packets) if m.captured else None,
    }


def _protocol(p: ProtocolVerdict) -> dict[str, Any]:
    """One protocol test's verdict (QUIC, ECH) with its reasons in words."""
    key = decisive(p.verdict, p.stage, p.reasons) if p.verdict != "ok" else None
    return {"suite": p.suite, "verdict": p.verdict, "stage": p.stage, "hop": p.hop,
            "classifier_version": p.classifier_version, "decisive": key,
            "reasons": [{"code": r, "words": explain(r, p.verdict if r == key else None),
                         "decisive": r == key} for r in p.reasons]}


def _verdict(v: Verdict) -> dict[str, Any]:
    key = decisive(v.verdict, v.stage, v.reasons)
    return {
        "verdict": v.verdict, "stage": v.stage, "hop": v.hop,
        "classifier_version": v.classifier_version,
        "decisive": key,
        "summary": explain(key, v.verdict) if key else _ok_words(v.reasons),
        "reasons": [{"code": r, "words": explain(r, v.verdict if r == key else None),
                     "decisive": r == key} for r in v.reasons],
    }


def _ok_words(reasons: Iterable[str]) -> str:
    reasons = list(reasons)
    for r in ("http/match", "http/authenticated"):
        if r in reasons:
            return explain(r)
    return "nothing suggests interference"


def dumps(ev: dict[str, Any]) -> str:
    """The evidence as pretty JSON (what `probe show --json` prints), safe on a terminal."""
    return json_safe(json.dumps(ev, ensure_ascii=False, indent=2))


# --- text rendering (probe show, the HTML report's evidence blocks) ----------------------------


def _ms(seconds: float | None) -> str:
    return "" if seconds is None else f"{seconds * 1000:.0f} ms"


def _ok(failure: str | None, success: str) -> str:
    return f"FAILED {failure}" if failure else success


def _control(c: dict[str, Any] | None, success: str = "ok") -> str:
    if c is None:
        return "-"
    if c.get("ok") is False:
        return f"FAILED {c.get('failure') or 'failed'}"
    return _ok(c.get("failure"), success)


def _rows(hop: dict[str, Any]) -> Iterator[tuple[str, str, str]]:
    """(step, probe, control) rows of one hop."""
    ctl = hop["control"]
    if ctl is not None and ctl["failure"]:
        yield ("control", "", f"unavailable: {ctl['failure']} ({ctl['source']})")
        ctl = None
    for q in hop["dns"]:
        step = f"DNS {q['qtype']} {q['hostname']} via {q['resolver']}"
        probe = _ok(q["failure"], ", ".join(q["addresses"]) or "no address")
        n = len(q["replies"])
        probe += f" ({_ms(q['duration'])}, {n} repl{'y' if n == 1 else 'ies'})"
        control = "-"
        if ctl is not None:
            control = _ok(ctl["dns_failure"], ", ".join(ctl["dns_addrs"]) or "no address")
        yield (step, probe, control)
        if len(q["replies"]) > 1 or any(r["injected"] for r in q["replies"]):
            for i, r in enumerate(q["replies"]):
                answer = " ".join([*r["cnames"], *r["answers"]]) or "-"
                mark = f"  << {r['injected']}" if r["injected"] else ""
                yield (f"  reply {i} +{_ms(r['t'])} from {r['source']}", f"{r['rcode']} {answer}{mark}", "")
    for q in hop["dns_probe"]:
        # --dns-probe: a query to an address that runs no DNS server; any answer came from
        # the path, and its verdict (interception, or injection) is said next to it.
        step = f"DNS-PROBE {q['qtype']} {q['hostname']} via {q['resolver']}"
        if q["rcode"] is None:
            probe = f"no answer ({q['failure'] or 'none'})" if q["replies"] == 0 else (
                f"{q['replies']} datagram(s), none a reply")
        else:
            probe = f"{q['rcode']} {', '.join(q['addresses']) or 'no address'}"
        if q["decided"]:
            probe += f"  << {q['decided']}"
        control = "-"
        if ctl is not None:
            control = _ok(ctl["dns_failure"], ", ".join(ctl["dns_addrs"]) or "no address")
        yield (step, probe, control)
    for t in hop["tcp"]:
        yield (f"TCP {t['ip']}:{t['port']}", _ok(t["failure"], f"connected ({_ms(t['duration'])})"),
               _control(t["control"], "connected"))
    for t in hop["tls"]:
        if t["failure"]:
            probe = f"FAILED {t['failure']}"
        else:
            probe = f"{t['version'] or 'TLS'} {t['cipher'] or ''}".strip()
            probe += ", certificate valid" if t["cert_valid"] else ", certificate NOT valid"
        probe += f" ({_ms(t['duration'])})"
        yield (f"TLS {t['ip']}:{t['port']} SNI {t['sni']}", probe, _control(t["control"], "handshake ok"))
        cert = t["certificate"]
        if cert is not None:
            valid = f"valid {str(cert['not_before'] or '?')[:10]} to {str(cert['not_after'] or '?')[:10]}"
            yield ("  certificate", f"subject {cert['subject']}; issuer {cert['issuer']}; {valid}", "")
    h = hop["http"]
    if h is not None:
        if h["failure"]:
            probe = f"FAILED {h['failure']}"
        else:
            title = f" \"{h['title']}\"" if h["title"] else ""
            more = "+ (truncated)" if h["body_truncated"] else ""
            probe = f"{h['status']}{title}, {h['body_length']}{more} bytes"
            if h["location"]:
                probe += f", Location {h['location']}"
        for fp in h["fingerprints"]:
            kind = "known look-alike (false positive)" if fp["false_positive"] else "BLOCK PAGE"
            probe += f"; matches {kind} {fp['name']}"
        control = "-"
        if ctl is not None:
            if ctl["http_failure"]:
                control = f"FAILED {ctl['http_failure']}"
            elif ctl["http_status"] is not None:
                title = f" \"{ctl['http_title']}\"" if ctl["http_title"] else ""
                control = f"{ctl['http_status']}{title}, {ctl['http_body_length']} bytes"
        yield (f"HTTP GET {h['url']} via {h['ip']}:{h['port']}", probe, control)
    for q in hop.get("quic", ()):
        what = "QUIC decoy" if q["decoy"] else "QUIC" + (" again" if q["attempt"] else "")
        probe = _ok(q["failure"], f"handshake ok, ALPN {q['alpn'] or '-'}")
        if q["h3_status"] is not None:
            probe += f", HTTP/3 {q['h3_status']}"
        elif q["h3_failure"]:
            probe += f", HTTP/3 request FAILED {q['h3_failure']}"
        probe += f" ({_ms(q['duration'])}, {q['datagrams']} datagrams back)"
        yield (f"{what} {q['ip']}:{q['port']} SNI {q['sni']}", probe,
               _control(q["control"], "handshake ok"))
    for e in hop.get("ech", ()):
        what = "TLS hello + ECH" if e["ech"] else "TLS hello, plain"
        what += " again" if e["attempt"] else ""
        probe = (e["answer"] or "") if e["failure"] is None else f"FAILED {e['failure']}"
        if e["failure"] is not None and e["answer"]:
            probe += f" ({e['answer']})"
        probe += f" ({_ms(e['duration'])})"
        yield (f"{what} {e['ip']}:{e['port']} SNI {e['sni']}", probe,
               _control(e["control"], "answered"))


def _table(rows: list[tuple[str, str, str]], width: int) -> Iterator[str]:
    """Three columns (step | probe | control) that fit ``width``; long cells wrap. Cells are
    made safe for a terminal first (:func:`probe.present.terminal.clean`): they quote titles,
    headers and certificates as the network sent them."""
    rows = [(clean(a), clean(b), clean(c)) for a, b, c in rows]
    inner = max(width - 4 - 2 * 3, 30)
    w_step = min(max((cells(r[0]) for r in rows), default=4), max(inner * 3 // 10, 12))
    w_ctl = min(max((cells(r[2]) for r in rows), default=7), max(inner * 3 // 10, 12))
    w_ctl = max(w_ctl, len("control"))
    w_probe = max(inner - w_step - w_ctl, 12)
    header = ("step", "probe", "control")
    for r in (header, *rows):
        cols = [wrap(cell, w) or [""] for cell, w in zip(r, (w_step, w_probe, w_ctl), strict=True)]
        for i in range(max(len(c) for c in cols)):
            parts = [pad(c[i] if i < len(c) else "", w)
                     for c, w in zip(cols, (w_step, w_probe, w_ctl), strict=True)]
            yield ("    " + "   ".join(parts)).rstrip()


def render_text(ev: dict[str, Any], width: int = 100) -> Iterator[str]:
    """The evidence (:func:`probe.present.evidence.evidence`) as text lines fitted to ``width``."""
    v = ev["verdict"]
    yield cut_middle(clean(ev["url"]), width)
    meta = (f"measurement {ev['measurement_id']}, run {ev['run_id']}, vantage {clean(ev['vantage'])}, "
            f"{ev['measured_at'][:19].replace('T', ' ')} UTC, attempt {ev['attempt']}"
            f"{'' if ev['final'] else ' (not final: retried)'}, {ev['runtime']} s")
    yield from wrap(meta, width, "  ")
    if len(ev["attempts"]) > 1:
        tries = ", ".join(f"#{a['measurement_id']} {a['verdict']}{' (final)' if a['final'] else ''}"
                          for a in ev["attempts"])
        yield from wrap(f"attempts: {tries}", width, "  ")
    where = f" at {v['stage']} (hop {v['hop']})" if v["stage"] else ""
    yield ""
    yield f"verdict: {v['verdict'].upper()}{where}"
    yield from wrap(clean(v["summary"]), width, "  ")
    if ev["failure"]:
        yield from wrap(f"the measurement did not finish: {clean(ev['failure'])}", width, "  ")
    for hop in ev["hops"]:
        yield ""
        yield f"hop {hop['hop']}: " + cut_middle(clean(hop["url"]), width - 7 - len(str(hop["hop"])))
        rows = list(_rows(hop))
        if rows:
            yield from _table(rows, width)
        else:
            yield "    nothing measured"
    if ev.get("packets"):
        yield ""
        yield from render_packets(ev["packets"], width)
    yield ""
    yield f"reasons (classifier {v['classifier_version']}):"
    for r in v["reasons"]:
        mark = "*" if r["decisive"] else "-"
        yield cut(f"  {mark} {clean(r['code'])}{'  (decided the verdict)' if r['decisive'] else ''}",
                  width)
        yield from wrap(clean(r["words"]), width, "      ")
    if not v["reasons"]:
        yield "  (none)"
    for p in ev.get("protocols", ()):
        where = f" at {p['stage']} (hop {p['hop']})" if p["stage"] else ""
        yield ""
        yield cut(f"{p['suite'].upper()} verdict: {p['verdict'].upper()}{where}  "
                  f"(classifier {p['classifier_version']})", width)
        for r in p["reasons"]:
            mark = "*" if r["decisive"] else "-"
            yield cut(f"  {mark} {r['code']}{'  (decided the verdict)' if r['decisive'] else ''}", width)
            yield from wrap(clean(r["words"]), width, "      ")

