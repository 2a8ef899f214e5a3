"""Pre-flight checks: which resolvers the probe will use, and whether anything answers.

A run on a machine with no network must say so plainly and record itself as offline, rather
than recording every URL as a failure.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from probe.net import DEFAULT_RESOLV_CONF, format_endpoint, parse_resolver, system_nameservers

__all__ = ["dns_server_reachable", "health_url", "resolver_addresses"]


def resolver_addresses(cfg: Any) -> list[str]:
    """The probe's resolvers as "IP:PORT" strings: --resolver, else the resolv.conf nameservers."""
    resolvers = list(getattr(cfg, "resolvers", ()) or ())
    if resolvers:
        return [format_endpoint(*parse_resolver(spec)) for spec in resolvers]
    if not getattr(cfg, "system_resolver", True):
        return []
    path = getattr(cfg, "resolv_conf", DEFAULT_RESOLV_CONF)
    out = []
    for ns in system_nameservers(path):
        try:
            out.append(format_endpoint(*parse_resolver(ns)))
        except ValueError:
            continue  # the engine ignores it too (and logs it)
    return out


async def dns_server_reachable(server: str, timeout: float = 3.0, name: str = "example.com") -> bool:
    """True when the DNS server answers a query at all (any rcode counts)."""
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


def health_url(helper: str) -> str:
    """The helper's health endpoint (GET /health at the helper's origin)."""
    parts = urlsplit(helper)
    return urlunsplit((parts.scheme, parts.netloc, "/health", "", ""))

