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
from probe.measure import localaddrs, minihttp

if TYPE_CHECKING:
    import ssl

__all__ = ["dns_server_reachable", "health_url", "http_reachable", "resolver_addresses"]

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
        localaddrs.note(sock.getsockname())
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

    ``ssl_context`` verifies an ``https`` server (None: the system's CAs). One exchange of
    :mod:`probe.measure.minihttp`: it starts at once, before any HTTP client is imported; the
    answer's body is never read.
    """
    return await minihttp.exchange(url, timeout=timeout, ssl_context=ssl_context) is not None


def health_url(helper: str) -> str:
    """The helper's health endpoint (GET /health at the helper's origin)."""
    parts = urlsplit(helper)
    return urlunsplit((parts.scheme, parts.netloc, "/health", "", ""))

