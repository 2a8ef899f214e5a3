"""The lab's QUIC servers: aioquic listening on UDP, ALPN ``h3``, one certificate per address.

``python -m probe.lab.quicserver --cert CERT --key KEY --listen IP:PORT ... --mute IP:PORT ...``
serves each address with the sites' certificate (from the lab CA, :mod:`probe.lab.certs`) and
prints ``ready`` once every socket is bound. A QUIC handshake with any name completes (the
probe's decoy handshake names another site); every HTTP/3 request gets a small 200 page, except
on a ``--mute`` address, which completes handshakes and never answers a request (a broken HTTP/3
server, for everyone).
Addresses of sites that must not speak QUIC are simply not listed: nothing listens on their UDP
port, and the server's kernel answers ICMP port unreachable, as a real site without HTTP/3 does.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from typing import Any

from probe.core.net import Endpoint, parse_endpoint

__all__ = ["main", "serve_quic"]


_PAGE = b"<html><head><title>HTTP/3</title></head><body>served over HTTP/3</body></html>"


def _protocol(answer: bool) -> Any:
    """The server's connection class: HTTP/3 on top of aioquic's QUIC connection."""
    # aioquic: the `lab` extra (and the `test` one: the loopback tests serve QUIC with this)
    from aioquic.asyncio.protocol import QuicConnectionProtocol
    from aioquic.h3.connection import H3Connection
    from aioquic.h3.events import HeadersReceived
    from aioquic.quic.events import ProtocolNegotiated

    class H3Server(QuicConnectionProtocol):
        h3: H3Connection | None = None

        def quic_event_received(self, event: Any) -> None:
            if isinstance(event, ProtocolNegotiated) and self.h3 is None:
                self.h3 = H3Connection(self._quic)
            if self.h3 is None:
                return
            for h3_event in self.h3.handle_event(event):
                if isinstance(h3_event, HeadersReceived) and h3_event.stream_ended and answer:
                    self.h3.send_headers(h3_event.stream_id, [
                        (b":status", b"200"), (b"content-type", b"text/html"),
                        (b"content-length", str(len(_PAGE)).encode()),
                    ])  # fmt: skip
                    self.h3.send_data(h3_event.stream_id, _PAGE, end_stream=True)
                    self.transmit()

    return H3Server


async def serve_quic(host: str, port: int, cert: str, key: str, *, answer: bool = True) -> Any:
    """Start one QUIC server on ``host:port`` (UDP) answering HTTP/3 requests (``answer``
    False: never); its ``close()`` stops it."""
    # aioquic: the `lab` and `test` extras
    from aioquic.asyncio.server import serve
    from aioquic.quic.configuration import QuicConfiguration

    config = QuicConfiguration(is_client=False, alpn_protocols=["h3"])
    config.load_cert_chain(cert, key)
    return await serve(host, port, configuration=config, create_protocol=_protocol(answer))


async def _main(cert: str, key: str, listens: Sequence[tuple[Endpoint, bool]]) -> None:
    servers = [await serve_quic(ep.ip, ep.port, cert, key, answer=answer)
               for ep, answer in listens]  # fmt: skip
    print("ready", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        for s in servers:
            s.close()


def main(argv: Sequence[str] | None = None) -> None:
    """Run until killed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cert", required=True, help="the certificate chain (PEM)")
    parser.add_argument("--key", required=True, help="its private key (PEM)")
    parser.add_argument("--listen", action="append", type=parse_endpoint, default=[],
                        metavar="IP:PORT", help="a QUIC server answering HTTP/3 requests")
    parser.add_argument("--mute", action="append", type=parse_endpoint, default=[],
                        metavar="IP:PORT", help="a QUIC server that never answers a request")
    args = parser.parse_args(argv)
    if not args.listen and not args.mute:
        parser.error("nothing to serve: give --listen or --mute")
    listens = [(ep, True) for ep in args.listen] + [(ep, False) for ep in args.mute]
    try:
        asyncio.run(_main(args.cert, args.key, listens))
    except KeyboardInterrupt:
        sys.exit(0)


if __name__ == "__main__":
    main()
