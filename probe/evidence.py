"""The whole evidence of one stored measurement, step by step, as plain data.

`probe show` renders it as text or JSON and `probe report` as HTML: one builder, so both say
the same. For each hop: every DNS query with every reply (replies that disagree with the
control, or that raced a different reply to the same query, are marked injected), every TCP
connect and TLS handshake next to the control's result for the same address, the certificate
(subject, issuer, validity), the HTTP exchange (status, title, body length, the fingerprints it
matches) next to the control's, then the verdict and every reason in words.

Reads only SQLite and the packaged fingerprints: no network library is imported.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from typing import Any

from probe.explain import decisive, explain
from probe.model import DNSObservation, Hop, Measurement, Verdict

__all__ = ["EvidenceError", "dumps", "evidence", "find_measurement"]


class EvidenceError(LookupError):
    """No measurement matches what was asked for; the message says what was looked for."""


def find_measurement(store: Any, what: str, vantage: str | None = None,
                     run: int | None = None) -> int:
    """The measurement id ``what`` names: an id, or a URL's newest final measurement.

    A URL is matched as measured (``url``), as written in the list (``original_url``), and then
    by host name (``domain``); ``vantage`` and ``run`` narrow the search.
    """
    conn = store.conn
    if what.isdigit():
        if conn.execute("SELECT 1 FROM measurements WHERE id = ?", (int(what),)).fetchone():
            return int(what)
        raise EvidenceError(f"no measurement {what}")
    where: list[str] = ["m.final = 1"]
    params: list[object] = []
    if vantage is not None:
        where.append("v.name = ?")
        params.append(vantage)
    if run is not None:
        where.append("m.run_id = ?")
        params.append(run)
    host = what.split("://", 1)[-1].split("/", 1)[0].split(":", 1)[0].lower()
    for column, value in (("m.url", what), ("m.original_url", what), ("m.domain", host)):
        row = conn.execute(
            "SELECT m.id FROM measurements m JOIN vantage_points v ON v.id = m.vantage_id "
            f"WHERE {' AND '.join([*where, f'{column} = ?'])} ORDER BY m.measured_at DESC, m.id DESC "
            "LIMIT 1", (*params, value),
        ).fetchone()
        if row is not None:
            return int(row[0])
    narrowed = "".join(f" {k} {v!r}" for k, v in (("vantage", vantage), ("run", run)) if v)
    raise EvidenceError(f"no measurement of {what!r}{(' (' + narrowed.strip() + ')') if narrowed else ''}")


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


def _certs(store: Any, m: Measurement) -> dict[str, dict[str, Any]]:
    shas = {hashlib.sha256(t.cert_chain[0]).hexdigest() for h in m.hops for t in h.tls
            if t.cert_chain}
    out: dict[str, dict[str, Any]] = {}
    for sha in shas:
        row = store.conn.execute(
            "SELECT subject, issuer, not_before, not_after FROM certificates WHERE sha256 = ?",
            (sha,),
        ).fetchone()
        if row is not None:
            out[sha] = {"subject": row[0], "issuer": row[1], "not_before": row[2],
                        "not_after": row[3]}
    return out


def _fingerprint_names(hop: Hop, fingerprints: Any) -> list[dict[str, Any]]:
    h = hop.http
    if h is None or fingerprints is None or h.status is None:
        return []
    found = []
    for fp in fingerprints.false_positives(h.body, h.headers):
        found.append({"name": fp.name, "false_positive": True, "location": fp.location})
    for fp in fingerprints.blockpages(h.body, h.headers):
        found.append({"name": fp.name, "false_positive": False, "location": fp.location})
    return found


def _hop(hop: Hop, certs: dict[str, dict[str, Any]], fingerprints: Any) -> dict[str, Any]:
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
    control = None
    if c is not None:
        control = {"source": c.source, "failure": c.failure, "dns_failure": c.dns_failure,
                   "dns_addrs": list(c.dns_addrs), "http_failure": c.http_failure,
                   "http_status": c.http_status, "http_title": c.http_title,
                   "http_body_length": c.http_body_length}
    return {"hop": hop.index, "url": hop.url, "dns": dns, "tcp": tcp, "tls": tls, "http": http,
            "control": control}


def evidence(store: Any, measurement_id: int, *, fingerprints: Any = None) -> dict[str, Any]:
    """Everything stored about one measurement, with the verdict and its reasons in words.

    ``store`` is an open :class:`probe.store.Store`; ``fingerprints`` (a
    :class:`probe.fingerprints.Fingerprints`) names the fingerprints each HTTP response matches.
    """
    got = store.measurement(measurement_id)
    if got is None:
        raise EvidenceError(f"no measurement {measurement_id}")
    m, v = got
    meta = store.conn.execute(
        "SELECT m.run_id, v.name, m.measured_at, m.final, m.category, m.url, m.original_url "
        "FROM measurements m JOIN vantage_points v ON v.id = m.vantage_id WHERE m.id = ?",
        (measurement_id,),
    ).fetchone()
    attempts = store.conn.execute(
        "SELECT id, attempt, final, verdict, measured_at FROM measurements "
        "WHERE run_id = ? AND url = ? ORDER BY attempt, id", (meta[0], meta[5]),
    ).fetchall()
    certs = _certs(store, m)
    return {
        "measurement_id": measurement_id,
        "url": meta[5],
        "original_url": meta[6],
        "category": meta[4],
        "vantage": meta[1],
        "run_id": meta[0],
        "measured_at": meta[2],
        "final": bool(meta[3]),
        "attempt": m.attempt,
        "runtime": round(m.runtime, 3),
        "failure": m.failure,
        "attempts": [{"measurement_id": a[0], "attempt": a[1], "final": bool(a[2]),
                      "verdict": a[3], "measured_at": a[4]} for a in attempts],
        "verdict": _verdict(v),
        "hops": [_hop(h, certs, fingerprints) for h in m.hops],
    }


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
    """The evidence as pretty JSON (what `probe show --json` prints)."""
    return json.dumps(ev, ensure_ascii=False, indent=2)
