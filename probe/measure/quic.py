"""QUIC observations: a QUIC handshake (ALPN ``h3``) with one address, over one UDP socket.

aioquic's sans-I/O :class:`QuicConnection` does the protocol; this module drives it on a
*connected* UDP socket of its own, so that an ICMP "port unreachable" (nothing listens on the
server's UDP port) comes back as ``connection_refused`` instead of a silent timeout, and so that
every datagram that came back is counted (a censor that drops the flow after the client's
Initial leaves 0; a server that answered but never finished leaves more).

The handshake does not verify the certificate: the question is whether QUIC gets through, and
the decoy handshake (a harmless SNI, the server's certificate is for another name) must be
judged the same way. The TCP/TLS test of the same address validates the site's certificate.

aioquic is an optional dependency (``pip install 'probe[quic]'``): :func:`available` says
whether it is installed; ``probe run --quic`` refuses to start without it.
"""

from __future__ import annotations

import asyncio
import importlib.util
import ssl
import time
from typing import TYPE_CHECKING, Any, cast

from probe.core.failures import QUICClosed, failure_string
from probe.core.model import QUICObservation
from probe.core.net.policy import ConnectPolicy
from probe.measure.tcp import checked_address

if TYPE_CHECKING:
    from aioquic.quic.connection import QuicConnection

__all__ = ["MISSING", "available", "quic_handshake"]

#: What to tell a user who asked for QUIC without aioquic installed.
MISSING = "QUIC needs aioquic: pip install 'probe[quic]' (or: pip install aioquic)"
ALPN = ("h3",)


def available() -> bool:
    """True when aioquic can be imported (without importing it)."""
    return importlib.util.find_spec("aioquic") is not None


class _Driver(asyncio.DatagramProtocol):
    """Feeds one QuicConnection from one connected UDP socket until the handshake ends."""

    def __init__(self, conn: QuicConnection, done: asyncio.Future[str | None]) -> None:
        self.conn = conn
        self.done = done
        self.loop = asyncio.get_running_loop()
        self.transport: asyncio.DatagramTransport | None = None
        self.peer: Any = None
        self.datagrams = 0
        self._timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # asyncio's selector datagram transport is not a DatagramTransport subclass on 3.11
        self.transport = cast("asyncio.DatagramTransport", transport)
        self.peer = transport.get_extra_info("peername")

    def start(self) -> None:
        self.conn.connect(self.peer, now=self.loop.time())
        self._flush()

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.datagrams += 1
        self.conn.receive_datagram(data, addr, now=self.loop.time())
        self._flush()

    def error_received(self, exc: Exception) -> None:
        # ICMP errors on a connected socket: port unreachable -> ConnectionRefusedError, ...
        if not self.done.done():
            self.done.set_exception(exc)

    def connection_lost(self, exc: Exception | None) -> None:
        if exc is not None and not self.done.done():
            self.done.set_exception(exc)

    def _on_timer(self) -> None:
        self._timer = None
        self.conn.handle_timer(now=self.loop.time())
        self._flush()

    def _flush(self) -> None:
        from aioquic.quic import events

        while (event := self.conn.next_event()) is not None:
            if self.done.done():
                continue
            if isinstance(event, events.HandshakeCompleted):
                self.done.set_result(event.alpn_protocol)
            elif isinstance(event, events.ConnectionTerminated):
                self.done.set_exception(QUICClosed(event.error_code, event.reason_phrase))
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        for data, _ in self.conn.datagrams_to_send(now=self.loop.time()):
            transport.sendto(data)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        when = self.conn.get_timer()
        if when is not None:
            self._timer = self.loop.call_at(when, self._on_timer)

    def close(self) -> None:
        """Say goodbye when the handshake completed (the server frees its state), then close."""
        if self.done.done() and not self.done.cancelled() and self.done.exception() is None:
            self.conn.close()
            self._flush()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self.transport is not None:
            self.transport.close()


async def quic_handshake(
    ip: str,
    port: int,
    sni: str,
    timeout: float,
    *,
    policy: ConnectPolicy | None = None,
    attempt: int = 0,
) -> QUICObservation:
    """One QUIC handshake with ``ip:port`` naming ``sni``; never raises for network problems.

    ``policy`` (the test helper's connect policy) is checked on the address before any packet
    is sent: a refused address gets ``address_refused_by_policy``.
    """
    started = time.time()
    t0 = time.monotonic()
    driver: _Driver | None = None
    alpn: str | None = None
    failure: str | None = None
    try:
        from aioquic.quic.configuration import QuicConfiguration  # missing: a recorded failure
        from aioquic.quic.connection import QuicConnection

        addr = checked_address(ip, policy)
        config = QuicConfiguration(is_client=True, alpn_protocols=list(ALPN), server_name=sni,
                                   verify_mode=ssl.CERT_NONE)  # fmt: skip
        loop = asyncio.get_running_loop()
        done: asyncio.Future[str | None] = loop.create_future()
        conn = QuicConnection(configuration=config)
        async with asyncio.timeout(timeout):
            _, proto = await loop.create_datagram_endpoint(
                lambda: _Driver(conn, done), remote_addr=(addr, port)
            )
            driver = proto
            driver.start()
            alpn = await done
    except asyncio.CancelledError:
        if driver is not None:
            driver.close()
        raise
    except Exception as exc:
        failure = failure_string(exc)
    datagrams = 0
    if driver is not None:
        datagrams = driver.datagrams
        driver.close()
    return QUICObservation(ip, port, sni, started, time.monotonic() - t0, failure, alpn, datagrams,
                           attempt)  # fmt: skip
