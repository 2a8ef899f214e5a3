"""Measure one endpoint: TCP connect, then the tool's own first handshake (never decides)."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import secrets
import socket
import time
from typing import Any

from probe.core.failures import Failure, failure_string
from probe.core.model import EndpointObservation
from probe.inputs.endpointlists import Endpoint
from probe.measure import localaddrs, openvpn
from probe.measure.tcp import Conn, tcp_connect
from probe.measure.tls import TLSContexts, tls_handshake_unverified

__all__ = ["measure_endpoint", "tor_sni"]

_UNEXPECTED = Failure.OPENVPN_UNEXPECTED_REPLY
#: Datagrams read while waiting for an OpenVPN server's answer (a flood cannot hold us longer).
MAX_DATAGRAMS = 16


def tor_sni() -> str:
    """A server name like those Tor clients send (``www.<random>.com``)."""
    return f"www.{secrets.token_hex(secrets.choice(range(4, 10)))}.com"


async def measure_endpoint(
    ep: Endpoint, contexts: TLSContexts, *, tcp_timeout: float = 10.0, handshake_timeout: float = 10.0
) -> EndpointObservation:
    """Try ``ep`` once; network failures are recorded, never raised."""
    started = time.time()
    t0 = time.monotonic()
    base: dict[str, Any] = {"kind": ep.kind, "name": ep.name, "address": ep.address, "port": ep.port,
            "transport": ep.transport, "started": started, "source": ep.source}  # fmt: skip
    if ep.transport == "udp":
        failure, took, other = await _openvpn_udp(ep, handshake_timeout)
        return EndpointObservation(**base, runtime=time.monotonic() - t0, handshake="openvpn",
                                   handshake_failure=failure, handshake_duration=took,
                                   other_datagrams=other)  # fmt: skip
    tcp, conn = await tcp_connect(ep.address, ep.port, tcp_timeout)
    if conn is None:
        return EndpointObservation(**base, runtime=time.monotonic() - t0, tcp_failure=tcp.failure,
                                   tcp_duration=tcp.duration)  # fmt: skip
    extra: dict[str, Any] = {}
    try:
        if ep.kind in ("tor", "tls"):
            sni = ep.sni or (tor_sni() if ep.kind == "tor" else "")
            tls = await tls_handshake_unverified(conn, sni, contexts, handshake_timeout)
            leaf = hashlib.sha256(tls.cert_chain[0]).hexdigest() if tls.cert_chain else None
            extra = {"handshake": "tls", "handshake_failure": tls.failure, "handshake_duration": tls.duration,
                     "sni": sni, "tls_version": tls.version, "leaf_sha256": leaf}  # fmt: skip
        elif ep.kind == "openvpn-tcp":
            failure, took = await _openvpn_tcp(conn, handshake_timeout)
            extra = {"handshake": "openvpn", "handshake_failure": failure, "handshake_duration": took}
    finally:
        conn.close()
    return EndpointObservation(**base, runtime=time.monotonic() - t0, tcp_duration=tcp.duration,
                               **extra)  # fmt: skip


async def _openvpn_tcp(conn: Conn, timeout: float) -> tuple[str | None, float]:
    session = os.urandom(8)
    t0 = time.monotonic()
    try:
        async with asyncio.timeout(timeout):
            conn.writer.write(openvpn.frame(openvpn.client_hard_reset(session)))
            await conn.writer.drain()
            size = int.from_bytes(await conn.reader.readexactly(2), "big")
            packet = await conn.reader.readexactly(min(size, 1500))
    except Exception as exc:
        return failure_string(exc), time.monotonic() - t0
    ok = openvpn.is_server_reset_for(packet, session)
    return (None if ok else _UNEXPECTED), time.monotonic() - t0


async def _openvpn_udp(ep: Endpoint, timeout: float) -> tuple[str | None, float, int]:
    session = os.urandom(8)
    loop = asyncio.get_running_loop()
    family = socket.AF_INET6 if ":" in ep.address else socket.AF_INET
    t0 = time.monotonic()
    other = 0
    sock = socket.socket(family, socket.SOCK_DGRAM)
    sock.setblocking(False)
    try:
        async with asyncio.timeout(timeout):
            # A connected UDP socket: the kernel drops datagrams from any other source.
            await loop.sock_connect(sock, (ep.address, ep.port))
            localaddrs.note(sock.getsockname())
            await loop.sock_sendall(sock, openvpn.client_hard_reset(session))
            while other < MAX_DATAGRAMS:
                data = await loop.sock_recv(sock, 2048)
                if openvpn.is_server_reset_for(data, session):
                    return None, time.monotonic() - t0, other
                other += 1
        return _UNEXPECTED, time.monotonic() - t0, other
    except Exception as exc:
        failure = _UNEXPECTED if other and isinstance(exc, TimeoutError) else failure_string(exc)
        return failure, time.monotonic() - t0, other
    finally:
        with contextlib.suppress(OSError):
            sock.close()
