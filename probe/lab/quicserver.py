"""The lab's QUIC servers: aioquic listening on UDP, ALPN ``h3``, one certificate per address.

``python -m probe.lab.quicserver --listen IP:PORT:CERT:KEY ...`` serves each address with its
site's certificate (from the lab CA, :mod:`probe.lab.certs`) and prints ``ready`` once every
socket is bound. A QUIC handshake with any name completes (the probe's decoy handshake names
another site); nothing more is served: probe's QUIC test is a handshake. Addresses of sites
that must not speak QUIC are simply not listed: nothing listens on their UDP port, and the
server's kernel answers ICMP port unreachable, as a real site without HTTP/3 does.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from typing import Any

__all__ = ["main", "serve_quic"]


async def serve_quic(host: str, port: int, cert: str, key: str) -> Any:
    """Start one QUIC server on ``host:port`` (UDP); its ``close()`` stops it."""
    from aioquic.asyncio.server import serve
    from aioquic.quic.configuration import QuicConfiguration

    config = QuicConfiguration(is_client=False, alpn_protocols=["h3"])
    config.load_cert_chain(cert, key)
    return await serve(host, port, configuration=config)


def _listen(text: str) -> tuple[str, int, str, str]:
    ip, port, cert, key = text.split(":", 3)
    return ip, int(port), cert, key


async def _main(listens: Sequence[tuple[str, int, str, str]]) -> None:
    servers = [await serve_quic(*spec) for spec in listens]
    print("ready", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        for s in servers:
            s.close()


def main(argv: Sequence[str] | None = None) -> None:
    """Run until killed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listen", action="append", type=_listen, required=True,
                        metavar="IP:PORT:CERT:KEY")  # fmt: skip
    args = parser.parse_args(argv)
    try:
        asyncio.run(_main(args.listen))
    except KeyboardInterrupt:
        sys.exit(0)


if __name__ == "__main__":
    main()
