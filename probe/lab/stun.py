"""A STUN server (RFC 5389 binding requests only) for the lab and loopback tests.

Run inside a lab namespace (or on loopback)::

    python -m probe.lab.stun --listen 10.66.2.2:3478 [--mapped 192.0.2.77]

It answers every well-formed binding request with the address and port the request came from
(XOR-MAPPED-ADDRESS and MAPPED-ADDRESS), as a public STUN server does; ``--mapped`` answers a
fixed address instead, standing in for a NAT between the probe and the server.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import struct
import sys

from probe.core.net import parse_hostport
from probe.lab.udpserver import DatagramServer, serve_udp

__all__ = ["StunProtocol", "binding_response", "main", "serve"]

_COOKIE = 0x2112A442


def binding_response(request: bytes, ip: str, port: int) -> bytes | None:
    """The binding success response to ``request`` for ``ip:port``; None for anything else."""
    if len(request) < 20:
        return None
    mtype, _length, cookie = struct.unpack_from("!HHI", request)
    if mtype != 0x0001 or cookie != _COOKIE:
        return None
    txid = request[8:20]
    addr = ipaddress.ip_address(ip)
    family = 0x01 if addr.version == 4 else 0x02
    key = struct.pack("!I", _COOKIE) + txid
    xaddr = bytes(a ^ k for a, k in zip(addr.packed, key, strict=False))
    xport = port ^ (_COOKIE >> 16)
    xor_attr = struct.pack("!HHBBH", 0x0020, 4 + len(xaddr), 0, family, xport) + xaddr
    plain = struct.pack("!HHBBH", 0x0001, 4 + len(addr.packed), 0, family, port) + addr.packed
    body = xor_attr + plain
    return struct.pack("!HHI", 0x0101, len(body), _COOKIE) + txid + body


class StunProtocol(DatagramServer):
    """Answers binding requests; ``mapped`` (if set) replaces the source address seen."""

    def __init__(self, mapped: str | None = None) -> None:
        super().__init__(self._binding, "stun")
        self.mapped = mapped
        self.requests = 0

    async def _binding(self, data: bytes, addr: tuple[str, int]) -> bytes | None:
        reply = binding_response(data, self.mapped or addr[0], addr[1])
        if reply is not None:
            self.requests += 1
        return reply


async def serve(listen: tuple[str, int], mapped: str | None = None) -> None:
    """Serve until cancelled (outside a lab namespace, only on loopback)."""
    await serve_udp(listen, lambda: StunProtocol(mapped), what="the lab STUN server", loopback_ok=True)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point (see the module docstring)."""
    ap = argparse.ArgumentParser(prog="python -m probe.lab.stun")
    ap.add_argument("--listen", required=True, help="IP:PORT")
    ap.add_argument("--mapped", help="answer this address instead of the client's (a NAT)")
    args = ap.parse_args(argv)
    try:
        asyncio.run(serve(parse_hostport(args.listen, 3478), args.mapped))
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
