"""Lab servers for the circumvention suite: a Tor-like TLS server (self-signed certificate, as
Tor relays have) and an OpenVPN responder that answers the HARD_RESET handshake over UDP and TCP.

Run in a lab namespace::

    python -m probe.lab.toolservers --tls IP:PORT --openvpn IP:PORT [--cert PEM --key PEM]

Used on loopback by the integration tests too (:func:`start`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import ssl
import struct
from collections.abc import Sequence

from probe.core.net import parse_endpoint
from probe.measure import openvpn

__all__ = ["OpenVPNUDP", "main", "start"]


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


async def _tls(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(Exception):
        await reader.read(1)  # hold the connection until the client closes it
    writer.close()


async def start(
    tls: Sequence[tuple[str, int]] = (),
    openvpn_endpoints: Sequence[tuple[str, int]] = (),
    ctx: ssl.SSLContext | None = None,
) -> list[object]:
    """Start the servers in the running loop; returns them (close() each to stop)."""
    loop = asyncio.get_running_loop()
    servers: list[object] = []
    for host, port in tls:
        if ctx is None:
            raise ValueError("a TLS endpoint needs a certificate")
        # TLS from the first byte (asyncio's own server-side TLS, per connection, never in
        # accept): not StreamWriter.start_tls() after accepting, which loses a ClientHello that
        # arrived with the connection (read into the stream's buffer before the TLS layer
        # exists). Through the lab's NFQUEUE delay the client's ACK and its ClientHello are
        # released together, so most handshakes stalled that way (docs/bench.md).
        servers.append(await asyncio.start_server(_tls, host, port, ssl=ctx, ssl_handshake_timeout=10))
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
    ap.add_argument("--cert")
    ap.add_argument("--key")
    args = ap.parse_args(argv)
    ctx = None
    if args.cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(args.cert, args.key)

    async def serve() -> None:
        await start(args.tls, args.openvpn, ctx)
        print("ready", flush=True)
        await asyncio.Event().wait()

    asyncio.run(serve())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
