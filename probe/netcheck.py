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

__all__ = ["dns_server_reachable", "health_url", "resolver_addresses", "split_hostport"]


def split_hostport(spec: str, default_port: int = 53) -> tuple[str, int]:
    """"IP", "IP:PORT", "[v6]:PORT" or "v6" -> (ip, port)."""
    spec = spec.strip()
    if spec.startswith("["):
        host, _, rest = spec[1:].partition("]")
        return host, int(rest[1:]) if rest.startswith(":") else default_port
    if spec.count(":") == 1:
        host, port = spec.split(":")
        return host, int(port)
    return spec, default_port


def resolver_addresses(cfg: Any) -> list[str]:
    """The probe's resolvers as "IP:PORT" strings: --resolver, else /etc/resolv.conf."""
    resolvers = list(getattr(cfg, "resolvers", ()) or ())
    if resolvers:
        out = []
        for spec in resolvers:
            host, port = split_hostport(spec)
            out.append(f"[{host}]:{port}" if ":" in host else f"{host}:{port}")
        return out
    if not getattr(cfg, "system_resolver", True):
        return []
    import dns.resolver

    path = getattr(cfg, "resolv_conf", "/etc/resolv.conf")
    try:
        resolver = dns.resolver.Resolver(filename=path, configure=True)
    except (dns.resolver.NoResolverConfiguration, OSError):
        return []
    port = resolver.port
    return [f"[{ns}]:{port}" if ":" in ns else f"{ns}:{port}" for ns in map(str, resolver.nameservers)]


async def dns_server_reachable(server: str, timeout: float = 3.0, name: str = "example.com") -> bool:
    """True when the DNS server answers a query at all (any rcode counts)."""
    import dns.message

    host, port = split_hostport(server)
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

