"""Measurement <-> rows: flatten one Measurement into per-operation rows, and rebuild it.

The ``observations`` column is :func:`probe.core.codec.to_data` of the Measurement, packed
(:mod:`probe.store.observations`), with two bulky parts moved out, each replaced by a reference
that :func:`rebuild` follows:

- HTTP bodies go to ``http_bodies`` (zlib, keyed by sha256, stored once); the HTTP dict keeps
  ``body_ref``.
- Certificate chains go to ``certificates`` (DER, keyed by sha256, stored once); the TLS dict keeps
  ``cert_chain_sha256``.

Controls stay in their hops (schema version 11; before, they were in ``controls.data``). The flat
tables (``dns_queries``, ``tcp_connects``, ...) index what SQL asks about; the packed
observations are the record, and the only thing :func:`rebuild` reads.

``from_data`` ignores unknown keys, so the reference keys never reach the typed records.
"""

from __future__ import annotations

import functools
import hashlib
import json
import time
import zlib
from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import Any

from probe.core.codec import CodecError, checker, from_data, to_data
from probe.core.model import Measurement, Verdict
from probe.store.observations import ObservationsError, drop_empty_steps, json_bytes, pack, unpack
from probe.store.uid import uuid7

__all__ = [
    "Certificate",
    "IdCounters",
    "Rows",
    "body_key",
    "check_observations",
    "compress",
    "distinct_replies",
    "flatten",
    "iso",
    "now",
    "parse_certificate",
    "protocol_rows",
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
        "protocols",
        "queries",
        "replies",
        "tcp",
        "tls",
    )

    def __init__(self) -> None:
        self.measurements: list[tuple[Any, ...]] = []
        self.observations: list[tuple[int, bytes]] = []
        self.packets: list[tuple[Any, ...]] = []
        self.protocols: list[tuple[Any, ...]] = []
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


def distinct_replies(replies: Iterable[tuple[str, Iterable[str], Iterable[str]]]) -> int:
    """``dns_queries.n_distinct``: distinct (rcode, answers, CNAMEs) among a query's replies, as
    the classifier counts injection: well-formed replies only."""
    return len({(rcode, frozenset(answers), frozenset(cnames)) for rcode, answers, cnames in replies
                if rcode != "MALFORMED"})


def _dns_rows(rows: Rows, ids: IdCounters, mid: int, hop: int, control: int, obs: Any) -> None:
    for q in obs:
        ids.query += 1
        qid = ids.query
        rows.queries.append(
            (qid, mid, hop, control, q.resolver, q.qtype, q.hostname, q.failure, len(q.replies),
             distinct_replies((r.rcode, r.answers, r.cnames) for r in q.replies))
        )
        for i, r in enumerate(q.replies):
            ids.reply += 1
            rid = ids.reply
            rows.replies.append((rid, qid, i, r.t, r.source, r.rcode, " ".join(r.flags), r.ttl))
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
            rows.tcp.append((mid, h, c.ip, c.port, c.failure))
        new_tls = None
        for k, t in enumerate(hop.tls):
            leaf = None
            if t.cert_chain:
                chain = [cert_info(der)[0] for der in t.cert_chain]
                leaf = chain[0]
                tls_chains[(h, k)] = chain
                if new_tls is None:
                    new_tls = list(hop.tls)
                new_tls[k] = replace(t, cert_chain=())
            rows.tls.append((mid, h, t.ip, t.port, t.sni, t.failure, t.version,
                             None if t.cert_valid is None else int(t.cert_valid), leaf))
        http = hop.http
        if http is not None:
            ref = None
            if http.body:
                ref = body_refs[h] = body_ref(http.body)
                http = replace(http, body=b"")
            rows.http.append(
                (mid, h, http.url, http.ip, http.port, http.failure, http.status, http.location,
                 http.body_length, http.body_sha256, int(http.body_truncated), http.title, ref)
            )
        ctl = hop.control
        if ctl is not None:
            rows.controls.append(
                (mid, h, ctl.failure, ctl.dns_failure,
                 _dumps(list(ctl.dns_addrs)), ctl.http_failure, ctl.http_status,
                 ctl.http_body_length, ctl.http_title, ctl.http_transfer)
            )
        if new_tls is not None or http is not hop.http:
            hop = replace(hop, tls=tuple(new_tls) if new_tls is not None else hop.tls, http=http)
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
    rows.observations.append((mid, pack(drop_empty_steps(data))))
    rows.protocols.extend(protocol_rows(mid, v))


def protocol_rows(mid: int, v: Verdict) -> list[tuple[Any, ...]]:
    """Rows of ``protocol_verdicts`` for the protocol tests' verdicts in ``v``."""
    return [(mid, p.suite, p.verdict, p.stage, p.hop, _dumps(list(p.reasons)), p.classifier_version)
            for p in v.protocols]


def rebuild(
    observations: bytes,
    bodies: Callable[[str], bytes],
    certs: Callable[[str], bytes],
) -> Measurement:
    """Rebuild a Measurement from its packed ``observations`` and the blobs they reference.

    ``bodies(sha)`` and ``certs(sha)`` fetch blobs. Raises
    :class:`probe.store.observations.ObservationsError` for a value that cannot be read and
    :class:`probe.core.codec.CodecError` for data that does not fit the records.
    """
    data = unpack(observations)
    refs: dict[int, tuple[str | None, dict[int, list[str]]]] = {}
    for hd in data.get("hops", ()):
        http = hd.get("http")
        body = http.pop("body_ref", None) if http is not None else None
        chains = {}
        for k, td in enumerate(hd.get("tls", ())):
            chain = td.pop("cert_chain_sha256", None)
            if chain is not None:
                chains[k] = chain
        if body is not None or chains:
            refs[hd["index"]] = (body, chains)
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


def check_observations(data: bytes) -> None:
    """Raise :class:`~probe.core.codec.CodecError` unless :func:`rebuild` can read ``data``, an
    ``observations`` value, into a Measurement (the check ``probe merge`` makes of every row).

    The value is unpacked as :func:`rebuild` unpacks it (:mod:`probe.store.observations`; a
    value that is not packed observations fails naming why), then decoded by the same codec with
    the same leniency (unknown keys, such as the body and chain references, are ignored; missing
    ones take their defaults): a row this accepts, every reader of the store can rebuild. The
    decoder is built on first use (:func:`probe.core.codec.checker`) and reads the unpacked JSON
    without building the records.
    """
    if not isinstance(data, bytes):
        raise CodecError("JSON text where packed observations belong")
    try:
        raw = json_bytes(data)
    except ObservationsError as exc:
        raise CodecError(str(exc)) from None
    _checker()(raw)


@functools.cache
def _checker() -> Callable[[str | bytes], None]:
    return checker(Measurement)


def body_key(body: bytes) -> str:
    """The content address of an HTTP body."""
    return hashlib.sha256(body).hexdigest()


def compress(body: bytes) -> bytes:
    """zlib at a level that is cheap for the writer and still small on disk."""
    return zlib.compress(body, 6)

