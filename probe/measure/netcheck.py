"""Pre-flight checks: which resolvers the probe will use, and whether anything answers.

A run on a machine with no network must say so plainly and record itself as offline, rather
than recording every URL as a failure.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

from probe.core.net import parse_resolver, run_resolvers
from probe.core.settings import MeasureConfig

if TYPE_CHECKING:
    import ssl

__all__ = ["dns_server_reachable", "health_url", "http_reachable", "resolver_addresses"]

#: Bytes of an answer's head read at most: a health check wants the status line only.
_HEAD_MAX = 16 << 10


def resolver_addresses(cfg: MeasureConfig) -> list[str]:
    """The run's resolvers as "IP:PORT" strings, by the engine's rule (:func:`run_resolvers`)."""
    return run_resolvers(cfg.resolvers, cfg.system_resolver, cfg.resolv_conf).endpoints()


async def dns_server_reachable(server: str, timeout: float = 3.0, name: str = "example.com") -> bool:
    """True when the DNS server answers a query at all (any rcode counts)."""
    # dnspython (~0.1 s) here, not at the top: a run imports this module before its checks
    # start, and the identity check's STUN requests go out while this import runs.
    import dns.message

    host, port = parse_resolver(server)
    query = dns.message.make_query(name, "A").to_wire()
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    loop = asyncio.get_running_loop()
    sock = socket.socket(family, socket.SOCK_DGRAM)
    sock.setblocking(False)
    try:
        await loop.sock_connect(sock, (host, port))
        await loop.sock_sendall(sock, query)
        data = await asyncio.wait_for(loop.sock_recv(sock, 65535), timeout)
        return len(data) >= 12 and data[:2] == query[:2]
    except (OSError, TimeoutError):
        return False
    finally:
        with contextlib.suppress(OSError):
            sock.close()


async def http_reachable(url: str, timeout: float = 3.0,
                         ssl_context: ssl.SSLContext | None = None) -> bool:
    """True when the server of ``url`` answers a GET for it at all (any status counts).

    ``ssl_context`` verifies an ``https`` server (None: the system's CAs). Made of asyncio
    streams and h11 (httpcore's HTTP/1.1 parser) rather than an HTTP client: the connection
    starts at once, without ~0.1 s of importing and setting up a client first, so a run's
    pre-flight round trips overlap its imports instead of following them. The answer's head is
    bounded (:data:`_HEAD_MAX`); its body is never read.
    """
    parts = urlsplit(url)
    https = parts.scheme == "https"
    host = parts.hostname or ""
    try:
        port = parts.port or (443 if https else 80)
    except ValueError:
        return False
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(
                host, port, ssl=(ssl_context or True) if https else None,
                server_hostname=host if https else None,
            )  # fmt: skip
            try:
                import h11  # after the connect: its first packet leaves before this import

                conn = h11.Connection(h11.CLIENT, max_incomplete_event_size=_HEAD_MAX)
                request = h11.Request(method="GET", target=target, headers=[
                    ("Host", parts.netloc.rpartition("@")[2]), ("Connection", "close"),
                    ("User-Agent", "probe-preflight")])  # fmt: skip
                writer.write(conn.send(request) + conn.send(h11.EndOfMessage()))
                await writer.drain()
                while (event := conn.next_event()) is h11.NEED_DATA:
                    conn.receive_data(await reader.read(4096))  # b"": the server closed
                return isinstance(event, h11.Response | h11.InformationalResponse)
            finally:
                writer.close()
    except Exception:  # refused, reset, TLS, a timeout, not HTTP: not reachable
        return False


def health_url(helper: str) -> str:
    """The helper's health endpoint (GET /health at the helper's origin)."""
    parts = urlsplit(helper)
    return urlunsplit((parts.scheme, parts.netloc, "/health", "", ""))

