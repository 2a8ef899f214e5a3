"""QUIC observations: a QUIC handshake (ALPN ``h3``) with one address, over one UDP socket, and
an HTTP/3 GET over it.

aioquic's sans-I/O :class:`QuicConnection` does the protocol; this module drives it on a
*connected* UDP socket of its own, so that an ICMP "port unreachable" (nothing listens on the
server's UDP port) comes back as ``connection_refused`` instead of a silent timeout, and so that
every datagram that came back is counted (a censor that drops the flow after the client's
Initial leaves 0; a server that answered but never finished leaves more).

After a handshake with the site's name, one HTTP/3 GET of the page's path goes over the same
connection (aioquic's H3Connection), and only the response's status is read: a censor that
lets the handshake through and stops what follows (TSPU-style) shows there.

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

__all__ = ["MISSING", "H3Request", "available", "quic_handshake"]

#: What to tell a user who asked for QUIC without aioquic installed.
MISSING = "QUIC needs aioquic: pip install 'probe[quic]' (or: pip install aioquic)"
ALPN = ("h3",)

#: An HTTP/3 GET: (authority, path and query, User-Agent).
H3Request = tuple[str, str, str]


def available() -> bool:
    """True when aioquic can be imported (without importing it)."""
    return importlib.util.find_spec("aioquic") is not None


class _Driver(asyncio.DatagramProtocol):
    """Feeds one QuicConnection from one connected UDP socket until the handshake ends."""

    def __init__(self, conn: QuicConnection, done: asyncio.Future[str | None],
                 request: H3Request | None = None) -> None:
        self.conn = conn
        self.done = done
        self.request = request
        self.loop = asyncio.get_running_loop()
        self.response: asyncio.Future[int] = self.loop.create_future()  # the GET's status
        self.h3: Any = None
        self.stream = -1
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

    def _fail(self, exc: BaseException) -> None:
        for fut in (self.done, self.response):
            if not fut.done():
                fut.set_exception(exc)

    def error_received(self, exc: Exception) -> None:
        # ICMP errors on a connected socket: port unreachable -> ConnectionRefusedError, ...
        self._fail(exc)

    def connection_lost(self, exc: Exception | None) -> None:
        if exc is not None:
            self._fail(exc)

    def _on_timer(self) -> None:
        self._timer = None
        self.conn.handle_timer(now=self.loop.time())
        self._flush()

    def _flush(self) -> None:
        from aioquic.quic import events  # the `quic` extra: only a run with --quic has it

        while (event := self.conn.next_event()) is not None:
            if isinstance(event, events.HandshakeCompleted) and not self.done.done():
                self.done.set_result(event.alpn_protocol)
                self._get()
            elif isinstance(event, events.ConnectionTerminated):
                self._fail(QUICClosed(event.error_code, event.reason_phrase))
            elif isinstance(event, events.StreamReset) and event.stream_id == self.stream:
                self._fail(ConnectionResetError(f"HTTP/3 stream reset: error 0x{event.error_code:x}"))
            elif self.h3 is not None:
                self._h3_event(event)
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

    def _get(self) -> None:
        """Send the HTTP/3 GET (when asked for) once the handshake completed."""
        if self.request is None:
            return
        from aioquic.h3.connection import H3Connection  # the `quic` extra

        authority, path, user_agent = self.request
        self.h3 = H3Connection(self.conn)
        self.stream = self.conn.get_next_available_stream_id()
        self.h3.send_headers(self.stream, [
            (b":method", b"GET"), (b":scheme", b"https"), (b":authority", authority.encode()),
            (b":path", path.encode()), (b"user-agent", user_agent.encode()),
        ], end_stream=True)  # fmt: skip

    def _h3_event(self, event: Any) -> None:
        from aioquic.h3.events import HeadersReceived  # the `quic` extra

        for h3_event in self.h3.handle_event(event):
            if (isinstance(h3_event, HeadersReceived) and h3_event.stream_id == self.stream
                    and not self.response.done()):
                status = dict(h3_event.headers).get(b":status", b"")
                if status.isdigit():
                    self.response.set_result(int(status))
                else:
                    self.response.set_exception(ValueError("HTTP/3 response without a status"))

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
    request: H3Request | None = None,
) -> QUICObservation:
    """One QUIC handshake with ``ip:port`` naming ``sni`` and, when it completed and ``request``
    is given, that HTTP/3 GET over it (``timeout`` again for the response's headers); never
    raises for network problems.

    ``policy`` (the test helper's connect policy) is checked on the address before any packet
    is sent: a refused address gets ``address_refused_by_policy``.
    """
    started = time.time()
    t0 = time.monotonic()
    driver: _Driver | None = None
    alpn: str | None = None
    failure: str | None = None
    h3_status: int | None = None
    h3_failure: str | None = None
    try:
        # aioquic is the `quic` extra: imported here, and when missing, a recorded failure
        from aioquic.quic.configuration import QuicConfiguration
        from aioquic.quic.connection import QuicConnection

        addr = checked_address(ip, policy)
        config = QuicConfiguration(is_client=True, alpn_protocols=list(ALPN), server_name=sni,
                                   verify_mode=ssl.CERT_NONE)  # fmt: skip
        loop = asyncio.get_running_loop()
        done: asyncio.Future[str | None] = loop.create_future()
        conn = QuicConnection(configuration=config)
        async with asyncio.timeout(timeout):
            _, proto = await loop.create_datagram_endpoint(
                lambda: _Driver(conn, done, request), remote_addr=(addr, port)
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
    if failure is None and request is not None and driver is not None:
        try:
            async with asyncio.timeout(timeout):
                h3_status = await driver.response
        except asyncio.CancelledError:
            driver.close()
            raise
        except Exception as exc:
            h3_failure = failure_string(exc)
    datagrams = 0
    if driver is not None:
        datagrams = driver.datagrams
        driver.close()
    return QUICObservation(ip, port, sni, started, time.monotonic() - t0, failure, alpn, datagrams,
                           attempt, h3_status, h3_failure)  # fmt: skip
