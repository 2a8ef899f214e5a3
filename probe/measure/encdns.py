"""Encrypted DNS endpoints (``doh``, ``dot``): can the resolver be reached, and what does it
answer? Never decides.

One TCP connection, a *verified* TLS handshake with the resolver's name as SNI (a censor that
intercepts it cannot present a certificate for that name), then each name queried in turn over
that connection: DNS over HTTPS as HTTP/1.1 ``POST /dns-query`` with an
``application/dns-message`` body (RFC 8484), DNS over TLS as length-prefixed messages (RFC
7858). When the handshake fails, a fresh connection to the same address tries a harmless SNI
(the decoy): if that one completes, the resolver's name was filtered, not its address.

Bounds: an HTTP response head of 16 KiB and a body of 64 KiB, a DNS message of 64 KiB (its
length prefix cannot say more), ``timeout`` per query.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Sequence
from dataclasses import dataclass

import dns.message
import dns.rcode
import dns.rdatatype
import h11

from probe.core.errors import ProbeError
from probe.core.failures import Failure, failure_string
from probe.core.model import NameQuery
from probe.measure.tcp import Conn, tcp_connect
from probe.measure.tls import TLSContexts, decoy_handshake, tls_handshake

__all__ = ["DOH_PATH", "EncryptedDNS", "measure_resolver"]

#: The path every packaged DoH resolver serves (RFC 8484's example, and the de facto standard).
DOH_PATH = "/dns-query"
_HEAD_MAX = 16 * 1024
_BODY_MAX = 64 * 1024


class _BadAnswer(ProbeError):
    """The resolver's answer was not a DNS answer to our query (HTTP error, junk): raised and
    caught within this module, where it becomes the query's failure (never seen outside)."""

    def __init__(self, failure: str) -> None:
        super().__init__(failure)
        self.failure = failure


@dataclass(frozen=True)
class EncryptedDNS:
    """What happened at one resolver (the fields of an EndpointObservation)."""

    tcp_failure: str | None
    tcp_duration: float | None
    handshake_failure: str | None = None
    handshake_duration: float | None = None
    tls_version: str | None = None
    leaf_sha256: str | None = None
    decoy_sni: str = ""
    decoy_failure: str | None = None
    queries: tuple[NameQuery, ...] = ()


def _query_wire(name: str) -> bytes:
    q = dns.message.make_query(name, "A")
    q.id = 0  # RFC 8484 4.1: a cache-friendly id; DoT reuses it (one query at a time)
    return q.to_wire()


def _answer(name: str, wire: bytes, started: float, took: float) -> NameQuery:
    try:
        msg = dns.message.from_wire(wire)
    except Exception:
        return NameQuery(name, "A", took, Failure.DNS_SERVER_MISBEHAVING)
    q = msg.question[0] if msg.question else None
    if q is None or q.name.to_text(omit_final_dot=True).lower() != name.lower().rstrip("."):
        return NameQuery(name, "A", took, Failure.DNS_REPLY_WITH_WRONG_QUERY_ERROR)
    addrs = tuple(r.address for rrset in msg.answer if rrset.rdtype == dns.rdatatype.A for r in rrset)
    return NameQuery(name, "A", took, None, dns.rcode.to_text(msg.rcode()), addrs)


async def _doh(conn: Conn, host: str, name: str, timeout: float) -> bytes:
    body = _query_wire(name)
    http = h11.Connection(h11.CLIENT, max_incomplete_event_size=_HEAD_MAX)
    request = h11.Request(method="POST", target=DOH_PATH, headers=[
        ("Host", host), ("Content-Type", "application/dns-message"),
        ("Accept", "application/dns-message"), ("Content-Length", str(len(body))),
    ])  # fmt: skip
    async with asyncio.timeout(timeout):
        conn.writer.write(http.send(request) + http.send(h11.Data(data=body)) + http.send(h11.EndOfMessage()))
        status, data = 0, bytearray()
        while True:
            event = http.next_event()
            if event is h11.NEED_DATA:
                chunk = await conn.reader.read(16384)
                if not chunk:
                    raise _BadAnswer(Failure.EOF_ERROR)
                http.receive_data(chunk)
            elif isinstance(event, h11.Response):
                status = event.status_code
            elif isinstance(event, h11.Data):
                data += event.data
                if len(data) > _BODY_MAX:
                    raise _BadAnswer(Failure.HTTP_RESPONSE_MALFORMED)
            elif isinstance(event, h11.EndOfMessage):
                break
            elif isinstance(event, h11.ConnectionClosed):
                raise _BadAnswer(Failure.EOF_ERROR)
    if status != 200:
        raise _BadAnswer(Failure.HTTP_REQUEST_FAILED)
    return bytes(data)


async def _dot(conn: Conn, name: str, timeout: float) -> bytes:
    wire = _query_wire(name)
    async with asyncio.timeout(timeout):
        conn.writer.write(len(wire).to_bytes(2, "big") + wire)
        size = int.from_bytes(await conn.reader.readexactly(2), "big")
        return await conn.reader.readexactly(size)


async def _queries(
    conn: Conn, kind: str, host: str, names: Sequence[str], timeout: float
) -> tuple[NameQuery, ...]:
    out = []
    for name in names:
        t0 = time.monotonic()
        try:
            wire = await (_doh(conn, host, name, timeout) if kind == "doh" else _dot(conn, name, timeout))
        except asyncio.CancelledError:
            raise
        except _BadAnswer as bad:
            out.append(NameQuery(name, "A", time.monotonic() - t0, bad.failure))
            break  # the connection is in an unknown state: the other names are not asked
        except Exception as exc:
            out.append(NameQuery(name, "A", time.monotonic() - t0, failure_string(exc)))
            break
        out.append(_answer(name, wire, t0, time.monotonic() - t0))
    return tuple(out)


async def measure_resolver(
    kind: str, address: str, port: int, sni: str, names: Sequence[str], contexts: TLSContexts, *,
    tcp_timeout: float, timeout: float, decoy_sni: str = "",
) -> EncryptedDNS:  # fmt: skip
    """Reach the ``doh`` or ``dot`` resolver at ``address:port`` named ``sni`` and resolve
    ``names`` through it; network failures are recorded, never raised."""
    tcp, conn = await tcp_connect(address, port, tcp_timeout)
    if conn is None:
        return EncryptedDNS(tcp.failure, tcp.duration)
    tls, tconn = await tls_handshake(conn, sni, contexts, timeout, tcp_timeout)
    leaf = hashlib.sha256(tls.cert_chain[0]).hexdigest() if tls.cert_chain else None
    base = EncryptedDNS(None, tcp.duration, tls.failure, tls.duration, tls.version, leaf)
    if tls.failure is not None:
        if tconn is not None:
            tconn.close()  # an unverified connection (certificate failure): nothing is asked over it
        if not decoy_sni or tls.cert_chain:
            return base  # a certificate came back: the handshake was not cut, no decoy needed
        decoy = await decoy_handshake(address, port, decoy_sni, contexts, timeout, tcp_timeout)
        return EncryptedDNS(None, tcp.duration, tls.failure, tls.duration, decoy_sni=decoy_sni,
                            decoy_failure=decoy.failure)  # fmt: skip
    assert tconn is not None
    try:
        queries = await _queries(tconn, kind, sni, names, timeout)
    finally:
        tconn.close()
    return EncryptedDNS(None, tcp.duration, None, tls.duration, tls.version, leaf, queries=queries)
