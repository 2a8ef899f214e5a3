"""Measurement <-> rows: flatten one Measurement into per-operation rows, and rebuild it.

The ``observations`` JSON column is :func:`probe.core.codec.to_data` of the Measurement with three
bulky parts moved out, each replaced by a reference that :func:`rebuild` follows:

- HTTP bodies go to ``http_bodies`` (zlib, keyed by sha256, stored once); the HTTP dict keeps
  ``body_ref``.
- Certificate chains go to ``certificates`` (DER, keyed by sha256, stored once); the TLS dict keeps
  ``cert_chain_sha256``.
- Control observations go to ``controls`` (one row per hop, with the full JSON).

``from_data`` ignores unknown keys, so the reference keys never reach the typed records.
"""

from __future__ import annotations

import functools
import hashlib
import json
import time
import zlib
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from probe.core.codec import checker, from_data, to_data
from probe.core.model import ControlObservation, Measurement, Verdict
from probe.store.uid import uuid7

__all__ = [
    "Certificate",
    "IdCounters",
    "Rows",
    "body_key",
    "check_control",
    "check_observations",
    "compress",
    "flatten",
    "iso",
    "now",
    "parse_certificate",
    "rebuild",
]

_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def iso(t: float) -> str:
    """Unix time -> ISO 8601 UTC with milliseconds ("2026-11-26T11:52:28.123Z"); sorts as text."""
    ms = round(t * 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000)) + f".{ms % 1000:03d}Z"


def now() -> str:
    """The current time as :func:`iso` text (when a run, migration or verdict was recorded)."""
    return iso(time.time())


Certificate = tuple[str | None, str | None, str | None, str | None]  # subject, issuer, nbf, naf


def parse_certificate(der: bytes) -> Certificate:
    """Subject, issuer, notBefore, notAfter of a DER certificate; Nones when it does not parse."""
    try:
        # Imported here, when a certificate is first stored: importing cryptography.x509 takes
        # 0.13 s, and `probe results`, `compare`, `diff` (which read) never parse one.
        from cryptography import x509

        cert = x509.load_der_x509_certificate(der)
        return (
            cert.subject.rfc4514_string(),
            cert.issuer.rfc4514_string(),
            cert.not_valid_before_utc.strftime("%Y-%m-%dT%H:%M:%SZ"),
            cert.not_valid_after_utc.strftime("%Y-%m-%dT%H:%M:%SZ"),
        )
    except Exception:  # a garbage "certificate" from a middlebox is data, not an error
        return (None, None, None, None)


class Rows:
    """Rows for one write batch, one list per table, ready for ``executemany``."""

    __slots__ = (
        "answers",
        "bodies",
        "certs",
        "controls",
        "http",
        "measurements",
        "observations",
        "packets",
        "queries",
        "replies",
        "tcp",
        "tls",
    )

    def __init__(self) -> None:
        self.measurements: list[tuple[Any, ...]] = []
        self.observations: list[tuple[int, str]] = []
        self.packets: list[tuple[Any, ...]] = []
        self.queries: list[tuple[Any, ...]] = []
        self.replies: list[tuple[Any, ...]] = []
        self.answers: list[tuple[Any, ...]] = []
        self.tcp: list[tuple[Any, ...]] = []
        self.tls: list[tuple[Any, ...]] = []
        self.http: list[tuple[Any, ...]] = []
        self.controls: list[tuple[Any, ...]] = []
        self.bodies: list[tuple[Any, ...]] = []
        self.certs: list[tuple[Any, ...]] = []


class IdCounters:
    """The last ids used in dns_queries and dns_replies: the writer assigns ids itself."""

    __slots__ = ("query", "reply")

    def __init__(self, query: int, reply: int) -> None:
        self.query = query
        self.reply = reply


def _dns_rows(rows: Rows, ids: IdCounters, mid: int, hop: int, control: int, obs: Any) -> None:
    for q in obs:
        ids.query += 1
        qid = ids.query
        # As the classifier counts injection: well-formed replies to the query only.
        distinct = {(r.rcode, frozenset(r.answers), frozenset(r.cnames)) for r in q.replies
                    if r.rcode != "MALFORMED"}
        rows.queries.append(
            (qid, mid, hop, control, q.resolver, q.transport, q.qtype, q.hostname, q.started,
             q.duration, q.failure, _dumps(list(q.addresses)), len(q.replies), len(distinct))
        )
        for i, r in enumerate(q.replies):
            ids.reply += 1
            rid = ids.reply
            rows.replies.append(
                (rid, qid, i, r.t, r.source, r.rcode, " ".join(r.flags), r.ttl, r.raw or None)
            )
            j = 0
            for name in r.cnames:
                rows.answers.append((rid, j, "CNAME", name))
                j += 1
            for addr in r.answers:
                rows.answers.append((rid, j, "AAAA" if ":" in addr else "A", addr))
                j += 1


def flatten(
    rows: Rows,
    mid: int,
    run_id: int,
    vantage_id: int,
    m: Measurement,
    v: Verdict,
    final: bool,
    ids: IdCounters,
    cert_info: Callable[[bytes], tuple[str, Certificate]],
    body_ref: Callable[[bytes], str],
) -> None:
    """Append the rows of measurement ``m`` (id ``mid``) to ``rows``.

    ``cert_info(der)`` returns (sha256, parsed fields) and queues the certificate when new;
    ``body_ref(body)`` returns the sha256 key and queues the body when new.
    """
    hops = []
    tls_chains: dict[tuple[int, int], list[str]] = {}
    body_refs: dict[int, str] = {}
    for hop in m.hops:
        h = hop.index
        if hop.dns:
            _dns_rows(rows, ids, mid, h, 0, hop.dns)
        if hop.dns_control:
            _dns_rows(rows, ids, mid, h, 1, hop.dns_control)
        for c in hop.tcp:
            rows.tcp.append((mid, h, c.ip, c.port, c.started, c.duration, c.failure))
        new_tls = None
        for k, t in enumerate(hop.tls):
            leaf: tuple[Any, ...] = (None, None, None, None)
            chain: list[str] = []
            if t.cert_chain:
                for der in t.cert_chain:
                    sha, info = cert_info(der)
                    if not chain:
                        leaf = (sha, info[0], info[1], info[3])
                    chain.append(sha)
                tls_chains[(h, k)] = chain
                if new_tls is None:
                    new_tls = list(hop.tls)
                new_tls[k] = replace(t, cert_chain=())
            rows.tls.append(
                (mid, h, t.ip, t.port, t.sni, t.started, t.duration, t.failure, t.version,
                 t.cipher, t.alpn, None if t.cert_valid is None else int(t.cert_valid), *leaf,
                 _dumps(chain))
            )
        http = hop.http
        if http is not None:
            ref = None
            if http.body:
                ref = body_refs[h] = body_ref(http.body)
                http = replace(http, body=b"")
            rows.http.append(
                (mid, h, http.url, http.ip, http.port, http.started, http.duration, http.failure,
                 http.status, _dumps([list(h) for h in http.headers]), http.location, http.body_length,
                 http.body_sha256, int(http.body_truncated), http.title, ref)
            )
        ctl = hop.control
        if ctl is not None:
            rows.controls.append(
                (mid, h, ctl.source, ctl.url, ctl.failure, ctl.dns_failure,
                 _dumps(list(ctl.dns_addrs)), ctl.http_failure, ctl.http_status,
                 ctl.http_body_length, ctl.http_title, ctl.http_body_sha256,
                 _dumps(to_data(ctl)))
            )
        if new_tls is not None or http is not hop.http or ctl is not None:
            hop = replace(
                hop,
                tls=tuple(new_tls) if new_tls is not None else hop.tls,
                http=http,
                control=None,
            )
        hops.append(hop)
    data = to_data(replace(m, hops=tuple(hops)) if hops else m)
    for hd in data["hops"]:
        h = hd["index"]
        if h in body_refs:
            hd["http"]["body_ref"] = body_refs[h]
            del hd["http"]["body"]
        for k, td in enumerate(hd["tls"]):
            digests = tls_chains.get((h, k))
            if digests is not None:
                td["cert_chain_sha256"] = digests
                del td["cert_chain"]
        del hd["control"]
    for k, p in enumerate(m.packets):
        rows.packets.append(
            (mid, k, p.t, p.proto, p.src, p.sport, p.dport, p.ttl, p.ip_id, int(p.df), p.flags,
             p.window, p.seq, p.ack, p.seq_rel, p.ack_rel, p.payload, p.digest)
        )
    tg = m.target
    last = m.hops[-1].url if m.hops else None
    rows.measurements.append(
        (mid, run_id, vantage_id, tg.url, tg.original_url, tg.host, tg.category_code, tg.source,
         iso(m.started), m.started, m.runtime, m.attempt, int(final), m.failure, len(m.hops),
         last, v.verdict, v.stage, v.hop, _dumps(list(v.reasons)), v.classifier_version,
         uuid7(round(m.started * 1000)))
    )
    rows.observations.append((mid, _dumps(data)))


def rebuild(
    observations: str,
    controls: dict[int, str],
    bodies: Callable[[str], bytes],
    certs: Callable[[str], bytes],
) -> Measurement:
    """Rebuild a Measurement from its ``observations`` JSON and the rows it references.

    ``controls`` maps hop index -> control JSON; ``bodies(sha)`` and ``certs(sha)`` fetch blobs.
    """
    data = json.loads(observations)
    refs: dict[int, tuple[str | None, dict[int, list[str]]]] = {}
    for hd in data.get("hops", ()):
        h = hd["index"]
        http = hd.get("http")
        body = http.pop("body_ref", None) if http is not None else None
        chains = {}
        for k, td in enumerate(hd.get("tls", ())):
            chain = td.pop("cert_chain_sha256", None)
            if chain is not None:
                chains[k] = chain
        if body is not None or chains:
            refs[h] = (body, chains)
        ctl = controls.get(h)
        if ctl is not None:
            hd["control"] = json.loads(ctl)
    m: Measurement = from_data(Measurement, data)
    if not refs:
        return m
    hops = []
    for hop in m.hops:
        ref = refs.get(hop.index)
        if ref is not None:
            body, chains = ref
            tls = hop.tls
            if chains:
                tls = tuple(
                    replace(t, cert_chain=tuple(certs(s) for s in chains[k])) if k in chains else t
                    for k, t in enumerate(tls)
                )
            http = hop.http
            if body is not None and http is not None:
                http = replace(http, body=bodies(body))
            hop = replace(hop, tls=tls, http=http)
        hops.append(hop)
    return replace(m, hops=tuple(hops))


def check_observations(data: str | bytes) -> None:
    """Raise :class:`~probe.core.codec.CodecError` unless :func:`rebuild` can read ``data``, an
    ``observations`` value, into a Measurement (the check ``probe merge`` makes of every row).

    The same codec and leniency as :func:`rebuild` (unknown keys, such as the body and chain
    references, are ignored; missing ones take their defaults): a row this accepts, every
    reader of the store can rebuild. Built on first use (:func:`probe.core.codec.checker`).
    """
    _checkers()[0](data)


def check_control(data: str | bytes) -> None:
    """Raise :class:`~probe.core.codec.CodecError` unless ``data``, a ``controls`` value, is the
    control observation :func:`rebuild` puts back into its hop."""
    _checkers()[1](data)


@functools.cache
def _checkers() -> tuple[Callable[[str | bytes], None], Callable[[str | bytes], None]]:
    return checker(Measurement), checker(ControlObservation)


def body_key(body: bytes) -> str:
    """The content address of an HTTP body."""
    return hashlib.sha256(body).hexdigest()


def compress(body: bytes) -> bytes:
    """zlib at a level that is cheap for the writer and still small on disk."""
    return zlib.compress(body, 6)

