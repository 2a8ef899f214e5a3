"""What a control helper's reflector offers (``probe helper serve --reflector``), read from the
helper's ``GET /health``, and the endpoints the probe measures there.

The helper answers ``"reflector": {"tcp_echo": [PORT, PORT], "udp_echo": PORT, "wireguard":
{"port": PORT, "public_key": BASE64}}`` when its reflector is on (nothing otherwise; OONI's
helpers have none). The answer is someone else's data: it is read up to 64 KiB and every field
is checked; anything malformed means "no reflector".
"""

from __future__ import annotations

import asyncio
import json
import socket
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from probe.core.net.addresses import is_ip_literal
from probe.core.wgkey import decode_key
from probe.inputs.endpointlists import Endpoint
from probe.measure.tls import verifying_context

__all__ = ["ReflectorInfo", "discover", "parse_health"]

_MAX_BODY = 64 * 1024


@dataclass(frozen=True)
class ReflectorInfo:
    """The reflector of the helper at ``url``: its ports and WireGuard key."""

    url: str
    tcp_echo: tuple[int, ...] = ()
    udp_echo: int = 0
    wireguard_port: int = 0
    wireguard_key: str = ""

    def endpoints(self, address: str) -> list[Endpoint]:
        """The endpoints to measure at the reflector's ``address`` (fet, wireguard)."""
        out = []
        src = f"reflector of {self.url}"
        if self.tcp_echo:
            alt = self.tcp_echo[1] if len(self.tcp_echo) > 1 else 0
            out.append(Endpoint("fet", "reflector-fet", address, self.tcp_echo[0], source=src, alt_port=alt))
        if self.wireguard_port and self.wireguard_key:
            out.append(Endpoint("wireguard", "reflector-wireguard", address, self.wireguard_port,
                                source=src, key=self.wireguard_key))  # fmt: skip
        return out


def _port(value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and 0 < value < 65536:
        return value
    raise ValueError(f"not a port: {value!r}")


def parse_health(url: str, body: bytes) -> ReflectorInfo | None:
    """The reflector described in a ``/health`` answer, or None (none, or malformed)."""
    try:
        data = json.loads(body)
        r = data.get("reflector") if isinstance(data, dict) else None
        if not isinstance(r, dict):
            return None
        tcp = r.get("tcp_echo") or []
        if not isinstance(tcp, list) or len(tcp) > 8:
            return None
        wg = r.get("wireguard") or {}
        if not isinstance(wg, dict):
            return None
        key = wg.get("public_key") or ""
        if key:
            decode_key(str(key))
        return ReflectorInfo(
            url,
            tuple(_port(p) for p in tcp),
            _port(r["udp_echo"]) if r.get("udp_echo") else 0,
            _port(wg["port"]) if wg.get("port") else 0,
            str(key),
        )
    except (ValueError, TypeError, KeyError):
        return None


async def discover(
    url: str, *, timeout: float = 10.0, cafile: str | None = None
) -> tuple[ReflectorInfo, str] | None:
    """Ask the helper at ``url`` for its reflector: (info, the address to measure), or None."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    health = f"{parts.scheme}://{parts.netloc}/health"
    try:
        ssl_ctx = verifying_context(cafile) if parts.scheme == "https" else False
        conn = aiohttp.TCPConnector(ssl=ssl_ctx)
        async with (
            aiohttp.ClientSession(connector=conn, trust_env=False) as session,
            asyncio.timeout(timeout),
            session.get(health, allow_redirects=False) as resp,
        ):
            if resp.status != 200:
                return None
            body = b""
            while len(body) <= _MAX_BODY and (chunk := await resp.content.read(_MAX_BODY + 1 - len(body))):
                body += chunk
        if len(body) > _MAX_BODY:
            return None
        info = parse_health(url, body)
        if info is None:
            return None
        if is_ip_literal(host):
            return info, host
        infos = await asyncio.get_running_loop().getaddrinfo(host, None, type=socket.SOCK_STREAM)
        return info, str(infos[0][4][0])
    except Exception:
        return None
