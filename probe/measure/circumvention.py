"""Measure one endpoint: TCP connect, then the tool's own first handshake, or the encrypted DNS
queries, or the exchanges with a reflector (never decides)."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import os
import secrets
import socket
import time
from dataclasses import dataclass
from typing import Any

from probe.core.failures import Failure, failure_string
from probe.core.model import EchoTrial, EndpointObservation
from probe.inputs.endpointlists import DNS_KINDS, TWIN_KINDS, Endpoint
from probe.measure import encdns, fet, localaddrs, mtproto, openvpn, wireguard
from probe.measure.tcp import Conn, tcp_connect
from probe.measure.tls import TLSContexts, tls_handshake_unverified

__all__ = ["EndpointOptions", "measure_endpoint", "tor_sni"]

_UNEXPECTED = Failure.OPENVPN_UNEXPECTED_REPLY
_MTPROTO_UNEXPECTED = Failure.MTPROTO_UNEXPECTED_REPLY
#: Datagrams read while waiting for an OpenVPN server's answer (a flood cannot hold us longer).
MAX_DATAGRAMS = 16


def tor_sni() -> str:
    """A server name like those Tor clients send (``www.<random>.com``)."""
    return f"www.{secrets.token_hex(secrets.choice(range(4, 10)))}.com"


@dataclass(frozen=True)
class EndpointOptions:
    """How endpoints are tried beyond their timeouts: the names resolved through encrypted
    resolvers, the decoy SNI tried after a resolver's handshake failed, and how many random
    exchanges a reflector gets (the GFW blocked about a quarter of matching connections)."""

    names: tuple[str, ...] = ()
    decoy_sni: str = ""
    fet_tries: int = 5


async def measure_endpoint(
    ep: Endpoint, contexts: TLSContexts, *, tcp_timeout: float = 10.0, handshake_timeout: float = 10.0,
    options: EndpointOptions | None = None,
) -> EndpointObservation:
    """Try ``ep`` once; network failures are recorded, never raised."""
    started = time.time()
    t0 = time.monotonic()
    base: dict[str, Any] = {"kind": ep.kind, "name": ep.name, "address": ep.address, "port": ep.port,
            "transport": ep.transport, "started": started, "source": ep.source}  # fmt: skip
    opts = options or EndpointOptions()
    if ep.kind in DNS_KINDS:
        r = await encdns.measure_resolver(ep.kind, ep.address, ep.port, ep.sni, opts.names, contexts,
                                          tcp_timeout=tcp_timeout, timeout=handshake_timeout,
                                          decoy_sni=opts.decoy_sni)  # fmt: skip
        fields = {f.name: getattr(r, f.name) for f in dataclasses.fields(r)}  # shallow: records stay records
        return EndpointObservation(**base, runtime=time.monotonic() - t0, sni=ep.sni, **fields,
                                   handshake="tls" if r.tcp_failure is None else "")  # fmt: skip
    if ep.kind in TWIN_KINDS:
        trials = await _twin_sequence(ep, opts, tcp_timeout, handshake_timeout)
        decisive = next((t for t in trials if t.failure is not None), None)
        return EndpointObservation(**base, runtime=time.monotonic() - t0, handshake=ep.kind,
                                   handshake_failure=decisive.failure if decisive else None,
                                   handshake_duration=sum(t.duration for t in trials), trials=trials,
                                   key=ep.key)  # fmt: skip
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
        elif ep.kind == "telegram-dc":
            failure, took, answer = await _mtproto(conn, handshake_timeout)
            extra = {"handshake": "mtproto", "handshake_failure": failure, "handshake_duration": took,
                     "answer": answer}  # fmt: skip
    finally:
        conn.close()
    return EndpointObservation(**base, runtime=time.monotonic() - t0, tcp_duration=tcp.duration,
                               **extra)  # fmt: skip


async def _twin_sequence(ep: Endpoint, opts: EndpointOptions, tcp_timeout: float,
                         timeout: float) -> tuple[EchoTrial, ...]:  # fmt: skip
    """The twin first (the control: if it fails, nothing else is tried), then the tool's own
    bytes (random bytes up to ``fet_tries`` times; one WireGuard initiation), and after a
    failure the twin again, and on the reflector's other port when that failed too.

    The order matters: a censor that blocks a server for minutes after spotting the tool
    (residual censorship) would otherwise make the twin fail for the tool's sake.
    """
    addr, port = ep.address, ep.port

    async def twin(role: str, at: int) -> EchoTrial:
        if ep.kind == "fet":
            return await fet.twin_trial(role, addr, at, tcp_timeout=tcp_timeout, timeout=timeout)
        return await wireguard.twin_trial(role, addr, at, timeout=timeout)

    first = await twin("twin", port)
    trials = [first]
    if first.failure is not None:
        return tuple(trials)
    if ep.kind == "fet":
        for _ in range(max(1, opts.fet_tries)):
            trials.append(await fet.random_trial(addr, port, tcp_timeout=tcp_timeout, timeout=timeout))
            if trials[-1].failure is not None:
                break
    else:
        key = wireguard.decode_key(ep.key) if ep.key else None
        trials.append(await wireguard.initiation_trial(addr, port, key, timeout=timeout))
    if trials[-1].failure is None:
        return tuple(trials)
    trials.append(await twin("followup", port))
    if trials[-1].failure is not None and ep.alt_port:
        trials.append(await twin("other-port", ep.alt_port))
    return tuple(trials)


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


async def _mtproto(conn: Conn, timeout: float) -> tuple[str | None, float, str]:
    """Telegram's first exchange (probe.measure.mtproto): (failure, seconds, what answered).

    A transport error code from the DC (``error:-404``) is an answer too: only a DC that read
    our obfuscated bytes can encrypt one with the keys they carry."""
    hello = mtproto.client_hello()
    t0 = time.monotonic()
    try:
        async with asyncio.timeout(timeout):
            conn.writer.write(hello.data)
            await conn.writer.drain()
            size = int.from_bytes(hello.decrypt.update(await conn.reader.readexactly(4)), "little")
            if not 4 <= size <= mtproto.MAX_ANSWER:
                return _MTPROTO_UNEXPECTED, time.monotonic() - t0, f"length:{size}"
            message = hello.decrypt.update(await conn.reader.readexactly(size))
    except Exception as exc:
        return failure_string(exc), time.monotonic() - t0, ""
    answer = mtproto.parse_res_pq(message, hello.nonce)
    took = time.monotonic() - t0
    if answer == "ok":
        return None, took, "res_pq"
    return (None if answer.startswith("error:") else _MTPROTO_UNEXPECTED), took, answer


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
