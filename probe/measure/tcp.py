"""TCP observations: connect to one address, with a timeout and an optional connect policy."""

from __future__ import annotations

import asyncio
import socket
import time

from probe.core.failures import AddressRefused, failure_string
from probe.core.model import TCPObservation
from probe.core.net.policy import ConnectPolicy, canonical_address
from probe.measure import capture, localaddrs

__all__ = ["Conn", "checked_address", "tcp_connect"]


class Conn:
    """An established connection (plain or TLS) the engine hands from step to step."""

    __slots__ = ("ip", "port", "reader", "tls_valid", "writer")

    def __init__(
        self, ip: str, port: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.ip = ip
        self.port = port
        self.reader = reader
        self.writer = writer
        self.tls_valid: bool | None = None  # None: plain TCP; True/False: TLS validated or not

    def close(self) -> None:
        """Close at once: nothing more is measured on this connection.

        abort(), not close(): a graceful TLS shutdown would keep the transport around for up to
        30 s when the peer (or a middlebox) stops answering, and memory per URL must stay flat.
        """
        transport = self.writer.transport
        if not transport.is_closing():
            transport.abort()


def checked_address(ip: str, policy: ConnectPolicy | None) -> str:
    """The canonical form of the IP literal ``ip``, once ``policy`` allows it; AddressRefused
    (nothing may be sent) for text that is no address or an address the policy refuses."""
    addr = canonical_address(ip)
    if addr is None:
        raise AddressRefused(f"{ip!r} is not an IP address")
    if policy is not None and not policy(addr.compressed):
        raise AddressRefused(f"{addr.compressed} is refused by the connect policy")
    return str(addr)


async def tcp_connect(
    ip: str, port: int, timeout: float, policy: ConnectPolicy | None = None, *, captured: bool = True
) -> tuple[TCPObservation, Conn | None]:
    """Connect to ``ip:port``; the observation, and the connection when it succeeded.

    Every connection the engine makes comes through here, so this is where ``policy`` (the
    test helper's SSRF guard) is enforced: on the address about to be connected to, after
    DNS and after each redirect. ``ip`` must be a strict IP literal; the connect goes to its
    canonical form, so ``getaddrinfo`` never reinterprets the text (``0177.0.0.1``). A
    refused address gets ``address_refused_by_policy`` and no packet. ``captured=False`` keeps
    the flow out of ``--capture`` (whose packet rules judge the web steps' flows only).
    """
    started = time.time()
    t0 = time.monotonic()
    try:
        addr = checked_address(ip, policy)
        async with asyncio.timeout(timeout):
            if not captured or capture.current() is None:
                reader, writer = await asyncio.open_connection(addr, port)
            else:
                reader, writer = await _captured_connection(addr, port)
    except Exception as exc:
        return TCPObservation(ip, port, started, time.monotonic() - t0, failure_string(exc)), None
    # The address this connection came from: what the site sees when no NAT is in between.
    localaddrs.note(writer.get_extra_info("sockname"))
    return TCPObservation(ip, port, started, time.monotonic() - t0), Conn(ip, port, reader, writer)


async def _captured_connection(ip: str, port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Connect with a socket bound first, so that capture knows the flow before the SYN-ACK."""
    family = socket.AF_INET6 if ":" in ip else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setblocking(False)
        sock.bind(("::" if family == socket.AF_INET6 else "0.0.0.0", 0))
        local = sock.getsockname()
        capture.watch("tcp", (local[0], local[1]), (ip, port))
        await asyncio.get_running_loop().sock_connect(sock, (ip, port))
    except BaseException:
        sock.close()
        raise
    return await asyncio.open_connection(sock=sock)
