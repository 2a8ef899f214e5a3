"""Lab servers for the circumvention suite: a Tor-like TLS server (self-signed certificate, as
Tor relays have), an OpenVPN responder that answers the HARD_RESET handshake over UDP and TCP,
and encrypted DNS resolvers: DNS over HTTPS (``POST /dns-query``) and DNS over TLS, answering
from a fixed table or by asking an upstream server over UDP; and for the messaging suite a
stand-in Telegram data centre (``--mtproto``): MTProto's first exchange over the obfuscated
transport, and a short HTTP answer to an HTTP request (as a DC answers the control's).

Run in a lab namespace::

    python -m probe.lab.toolservers --tls IP:PORT --openvpn IP:PORT [--cert PEM --key PEM]
    python -m probe.lab.toolservers --doh IP:PORT --dot IP:PORT --upstream IP:PORT --cert ...
    python -m probe.lab.toolservers --mtproto IP:PORT

Used on loopback by the integration tests too (:func:`start`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import os
import ssl
import struct
from collections.abc import Sequence

import dns.asyncquery
import dns.message
import dns.rcode
import dns.rrset
import h11

from probe.core.net import parse_endpoint
from probe.lab.safety import require_lab_namespace
from probe.measure import mtproto, openvpn

__all__ = ["OpenVPNUDP", "Resolver", "main", "start"]


class OpenVPNUDP(asyncio.DatagramProtocol):
    """Answers every client HARD_RESET with a server HARD_RESET for that session."""

    def __init__(self) -> None:
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # a datagram endpoint's transport

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        if len(data) >= 9 and data[0] >> 3 == openvpn.CLIENT_HARD_RESET_V2 and self.transport:
            self.transport.sendto(openvpn.server_hard_reset(os.urandom(8), data[1:9]), addr)


async def _openvpn_tcp(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(Exception):
        head = await reader.readexactly(3)
        size = struct.unpack("!H", head[:2])[0]
        # Like a real server, drop a connection whose first packet is not OpenVPN's (an HTTP
        # request from the control helper, say) instead of waiting for a bogus length.
        if head[2] >> 3 == openvpn.CLIENT_HARD_RESET_V2 and size <= 1500:
            data = head[2:] + await reader.readexactly(size - 1)
            writer.write(openvpn.frame(openvpn.server_hard_reset(os.urandom(8), data[1:9])))
            await writer.drain()
            await reader.read(1)  # hold the connection until the client closes it
    writer.close()


#: First bytes of an HTTP request: a DC answers HTTP too (the control helper's fetch).
_HTTP_STARTS = (b"GET ", b"POST", b"HEAD", b"PUT ", b"OPTI")
_DC_HTTP = b"HTTP/1.1 501 Not Implemented\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"


async def _mtproto_dc(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """A stand-in data centre: answers ``req_pq_multi`` with a ``resPQ`` naming its nonce
    (transport error -404 for anything else it can decrypt), and an HTTP request with 501."""
    with contextlib.suppress(Exception):
        async with asyncio.timeout(10):
            head = await reader.readexactly(4)
            if head in _HTTP_STARTS:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(1):
                        while (await reader.readline()).strip():  # the request's headers
                            pass
                writer.write(_DC_HTTP)
                await writer.drain()
                return
            side = mtproto.server_side(head + await reader.readexactly(60))
            size = struct.unpack("<I", side.decrypt.update(await reader.readexactly(4)))[0]
            if side.tag != mtproto.INTERMEDIATE or not 20 <= size <= mtproto.MAX_ANSWER:
                return
            message = side.decrypt.update(await reader.readexactly(size))
            if struct.unpack("<I", message[20:24])[0] == mtproto.REQ_PQ_MULTI and len(message) >= 40:
                answer = mtproto.res_pq(message[24:40], os.urandom(16), b"\x17\xed\x48\x94\x1a\x08\xf9\x81",
                                        (0x5B8E7E2E,))  # fmt: skip
            else:
                answer = struct.pack("<i", -404)
            writer.write(side.encrypt.update(struct.pack("<I", len(answer)) + answer))
            await writer.drain()
            await reader.read(1)  # hold the connection until the client closes it
    writer.close()


async def _tls(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(Exception):
        await reader.read(1)  # hold the connection until the client closes it
    writer.close()


class Resolver:
    """Answers DNS queries: from ``table`` (name -> addresses; other names NXDOMAIN, so an empty
    table lies NXDOMAIN for every name), or by asking ``upstream`` (IP, port) over UDP."""

    def __init__(self, table: dict[str, list[str]] | None = None,
                 upstream: tuple[str, int] | None = None) -> None:  # fmt: skip
        self.table = {k.lower().rstrip("."): v for k, v in (table or {}).items()}
        self.upstream = upstream

    async def answer(self, wire: bytes) -> bytes:
        """The answer to the query ``wire`` (a SERVFAIL when upstream fails)."""
        query = dns.message.from_wire(wire)
        if self.upstream is not None:
            try:
                reply = await dns.asyncquery.udp(query, self.upstream[0], timeout=2.0, port=self.upstream[1])
                return reply.to_wire()
            except Exception:
                failed = dns.message.make_response(query)
                failed.set_rcode(dns.rcode.SERVFAIL)
                return failed.to_wire()
        response = dns.message.make_response(query)
        q = query.question[0]
        name = q.name.to_text(omit_final_dot=True).lower()
        if name not in self.table:
            response.set_rcode(dns.rcode.NXDOMAIN)
        elif self.table[name]:
            response.answer.append(dns.rrset.from_text_list(q.name, 60, "IN", "A", self.table[name]))
        return response.to_wire()


async def _dot(resolver: Resolver, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(Exception):
        for _ in range(64):  # queries per connection
            size = struct.unpack("!H", await reader.readexactly(2))[0]
            answer = await resolver.answer(await reader.readexactly(size))
            writer.write(struct.pack("!H", len(answer)) + answer)
            await writer.drain()
    writer.close()


async def _doh(resolver: Resolver, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    conn = h11.Connection(h11.SERVER, max_incomplete_event_size=16384)
    with contextlib.suppress(Exception):
        for _ in range(64):  # requests per connection
            method, target, body = b"", b"", b""
            while True:
                event = conn.next_event()
                if event is h11.NEED_DATA:
                    data = await reader.read(16384)
                    if not data:
                        return
                    conn.receive_data(data)
                elif isinstance(event, h11.Request):
                    method, target = event.method, event.target
                elif isinstance(event, h11.Data):
                    body += event.data
                elif isinstance(event, h11.EndOfMessage):
                    break
                else:
                    return
            if method == b"POST" and target == b"/dns-query":
                status, answer = 200, await resolver.answer(body)
            else:
                status, answer = 404, b""
            headers = [("Content-Type", "application/dns-message"), ("Content-Length", str(len(answer)))]
            writer.write(conn.send(h11.Response(status_code=status, headers=headers))
                         + conn.send(h11.Data(data=answer)) + conn.send(h11.EndOfMessage()))  # fmt: skip
            await writer.drain()
            conn.start_next_cycle()
    writer.close()


async def start(
    tls: Sequence[tuple[str, int]] = (),
    openvpn_endpoints: Sequence[tuple[str, int]] = (),
    ctx: ssl.SSLContext | None = None,
    *,
    doh: Sequence[tuple[str, int]] = (),
    dot: Sequence[tuple[str, int]] = (),
    resolver: Resolver | None = None,
    mtproto_dcs: Sequence[tuple[str, int]] = (),
) -> list[object]:
    """Start the servers in the running loop; returns them (close() each to stop)."""
    loop = asyncio.get_running_loop()
    servers: list[object] = []
    if (doh or dot) and (ctx is None or resolver is None):
        raise ValueError("a DoH or DoT resolver needs a certificate and answers")
    for handler, endpoints in ((_doh, doh), (_dot, dot)):
        for host, port in endpoints:
            assert resolver is not None
            serve = functools.partial(handler, resolver)
            servers.append(await asyncio.start_server(serve, host, port, ssl=ctx, ssl_handshake_timeout=10))
    for host, port in tls:
        if ctx is None:
            raise ValueError("a TLS endpoint needs a certificate")
        # TLS from the first byte (asyncio's own server-side TLS, per connection, never in
        # accept): not StreamWriter.start_tls() after accepting, which loses a ClientHello that
        # arrived with the connection (read into the stream's buffer before the TLS layer
        # exists). Through the lab's NFQUEUE delay the client's ACK and its ClientHello are
        # released together, so most handshakes stalled that way (docs/bench.md).
        servers.append(await asyncio.start_server(_tls, host, port, ssl=ctx, ssl_handshake_timeout=10))
    for host, port in mtproto_dcs:
        servers.append(await asyncio.start_server(_mtproto_dc, host, port))
    for host, port in openvpn_endpoints:
        servers.append(await asyncio.start_server(_openvpn_tcp, host, port))
        transport, _ = await loop.create_datagram_endpoint(OpenVPNUDP, local_addr=(host, port))
        servers.append(transport)
    return servers


def main(argv: Sequence[str] | None = None) -> int:
    """Serve until killed (the lab's process supervisor stops it)."""
    ap = argparse.ArgumentParser(prog="python -m probe.lab.toolservers")
    ap.add_argument("--tls", action="append", default=[], type=parse_endpoint)
    ap.add_argument("--openvpn", action="append", default=[], type=parse_endpoint)
    ap.add_argument("--mtproto", action="append", default=[], type=parse_endpoint,
                    help="a stand-in Telegram data centre")
    ap.add_argument("--doh", action="append", default=[], type=parse_endpoint)
    ap.add_argument("--dot", action="append", default=[], type=parse_endpoint)
    ap.add_argument("--upstream", type=parse_endpoint, help="DNS server the resolvers ask (UDP)")
    ap.add_argument("--lie-nxdomain", action="store_true", help="answer NXDOMAIN for every name")
    ap.add_argument("--cert")
    ap.add_argument("--key")
    args = ap.parse_args(argv)
    require_lab_namespace()
    ctx = None
    if args.cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(args.cert, args.key)
    resolver = None
    if args.upstream or args.lie_nxdomain:
        resolver = Resolver(upstream=args.upstream)  # no upstream: an empty table, NXDOMAIN for all

    async def serve() -> None:
        await start(args.tls, args.openvpn, ctx, doh=args.doh, dot=args.dot, resolver=resolver,
                    mtproto_dcs=args.mtproto)
        print("ready", flush=True)
        await asyncio.Event().wait()

    asyncio.run(serve())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
