"""TLS observations: a handshake with SNI on an established connection, chain and validation.

The primary handshake uses a verifying context (system CAs plus ``--cafile``), as a browser
would. When verification fails, the failure is recorded (ssl_unknown_authority,
ssl_invalid_hostname, ssl_invalid_certificate) and, because the aborted handshake leaves no
chain behind, one more TCP connection and a *non-verifying* handshake capture the chain the
server sends as evidence (a censor's certificate is what identifies it). That second connection
is kept: it is the fallback for HTTP when no address has a valid certificate.

ALPN offers ``http/1.1`` only: HTTP runs as HTTP/1.1 over this very connection (httpcore's
HTTP/1.1 connection), and offering h2 would make servers pick a protocol we then do not speak.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import ssl
import time

from probe.core.failures import CERTIFICATE_FAILURES, failure_string
from probe.core.model import TLSObservation
from probe.measure.tcp import Conn, tcp_connect

__all__ = [
    "TLSContexts", "decoy_handshake", "peer_chain", "tls_handshake", "tls_handshake_unverified",
    "verifying_context",
]

_DER = ssl._ssl.ENCODING_DER  # type: ignore[attr-defined]  # private in typeshed; stable since 3.4


def verifying_context(cafile: str | None = None, extra_ca: str | None = None) -> ssl.SSLContext:
    """A context that validates certificates as a browser would: the system's CAs (certifi's
    on a system that has none) plus ``cafile`` (and ``extra_ca``: a CA an app pins, as
    Signal's); ALPN ``http/1.1``.

    The one trust policy of a run: the engine's handshakes, the control client and the
    pre-flight check share one such context (each costs ~20 ms of CPU to build).
    """
    ctx = ssl.create_default_context()
    if not ctx.cert_store_stats().get("x509_ca"):
        with contextlib.suppress(ImportError, OSError):
            import certifi  # only for systems without a CA store

            ctx.load_verify_locations(cafile=certifi.where())
    for path in (cafile, extra_ca):
        if path:
            ctx.load_verify_locations(cafile=path)
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


class TLSContexts:
    """The SSL contexts of one configuration; built once (they are expensive), shared by all URLs."""

    __slots__ = ("evidence", "verifying")

    def __init__(self, cafile: str | None = None, extra_ca: str | None = None) -> None:
        self.verifying = verifying_context(cafile, extra_ca)
        self.evidence = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        self.evidence.check_hostname = False
        self.evidence.verify_mode = ssl.CERT_NONE
        self.evidence.set_alpn_protocols(["http/1.1"])


def peer_chain(obj: ssl.SSLObject | None) -> tuple[bytes, ...]:
    """The certificate chain the peer sent, DER, leaf first (leaf only on odd Pythons)."""
    if obj is None:
        return ()
    inner = getattr(obj, "_sslobj", None)
    getter = getattr(obj, "get_unverified_chain", None) or getattr(inner, "get_unverified_chain", None)
    if getter is not None:
        try:
            chain = getter() or []
            return tuple(c if isinstance(c, bytes) else c.public_bytes(_DER) for c in chain)
        except Exception:  # a private API: fall back to the leaf
            pass
    leaf = obj.getpeercert(binary_form=True)
    return (leaf,) if leaf else ()


def _details(conn: Conn) -> tuple[str | None, str | None, str | None, tuple[bytes, ...]]:
    obj: ssl.SSLObject | None = conn.writer.get_extra_info("ssl_object")
    if obj is None:
        return None, None, None, ()
    cipher = obj.cipher()
    return obj.version(), cipher[0] if cipher else None, obj.selected_alpn_protocol(), peer_chain(obj)


async def _start_tls(conn: Conn, ctx: ssl.SSLContext, sni: str, timeout: float) -> None:
    async with asyncio.timeout(timeout):
        await conn.writer.start_tls(ctx, server_hostname=sni, ssl_handshake_timeout=timeout)


async def _handshake(conn: Conn, ctx: ssl.SSLContext, sni: str, timeout: float) -> str | None:
    """Handshake on ``conn``: None on success, else the failure string (``conn`` is then closed)."""
    try:
        await _start_tls(conn, ctx, sni, timeout)
    except asyncio.CancelledError:
        conn.close()
        raise
    except Exception as exc:
        conn.close()
        return failure_string(exc)
    return None


async def tls_handshake(
    conn: Conn, sni: str, contexts: TLSContexts, timeout: float, tcp_timeout: float
) -> tuple[TLSObservation, Conn | None]:
    """Handshake on ``conn``; the observation and a usable TLS connection (or None).

    The returned connection has ``tls_valid`` set: True after a verified handshake, False for
    the evidence connection after a certificate failure.
    """
    started = time.time()
    t0 = time.monotonic()
    failure = await _handshake(conn, contexts.verifying, sni, timeout)
    if failure is not None:
        duration = time.monotonic() - t0
        if failure not in CERTIFICATE_FAILURES:
            return TLSObservation(conn.ip, conn.port, sni, started, duration, failure), None
        evidence = await _evidence(conn.ip, conn.port, sni, contexts, timeout, tcp_timeout)
        if evidence is None:
            obs = TLSObservation(conn.ip, conn.port, sni, started, duration, failure, cert_valid=False)
            return obs, None
        version, cipher, alpn, chain = _details(evidence)
        obs = TLSObservation(
            conn.ip, conn.port, sni, started, duration, failure, version, cipher, alpn, chain, False
        )
        return obs, evidence
    duration = time.monotonic() - t0
    conn.tls_valid = True
    version, cipher, alpn, chain = _details(conn)
    return TLSObservation(
        conn.ip, conn.port, sni, started, duration, None, version, cipher, alpn, chain, True
    ), conn


async def tls_handshake_unverified(
    conn: Conn, sni: str, contexts: TLSContexts, timeout: float
) -> TLSObservation:
    """A non-verifying handshake on ``conn`` (``cert_valid`` None: not checked), for servers
    whose certificates are self-signed by design (Tor relays); the connection is closed."""
    started = time.time()
    t0 = time.monotonic()
    failure = await _handshake(conn, contexts.evidence, sni, timeout)
    duration = time.monotonic() - t0
    if failure is not None:
        return TLSObservation(conn.ip, conn.port, sni, started, duration, failure)
    version, cipher, alpn, chain = _details(conn)
    conn.close()
    return TLSObservation(conn.ip, conn.port, sni, started, duration, None, version, cipher, alpn, chain)


async def _evidence(
    ip: str, port: int, sni: str, contexts: TLSContexts, timeout: float, tcp_timeout: float
) -> Conn | None:
    """A second connection with a non-verifying handshake, to capture the chain as evidence."""
    _, conn = await tcp_connect(ip, port, tcp_timeout)
    if conn is None or await _handshake(conn, contexts.evidence, sni, timeout) is not None:
        return None
    conn.tls_valid = False
    return conn


async def decoy_handshake(
    ip: str, port: int, sni: str, contexts: TLSContexts, timeout: float, tcp_timeout: float
) -> TLSObservation:
    """A fresh connection to ``ip`` and a non-verifying handshake with a harmless ``sni`` (the
    server's certificate is for another name). A TCP failure is recorded as the failure; the
    chain is not kept (the decoy's answer is judged by whether the handshake completed)."""
    started = time.time()
    t0 = time.monotonic()
    tcp, conn = await tcp_connect(ip, port, tcp_timeout)
    if conn is None:
        return TLSObservation(ip, port, sni, started, time.monotonic() - t0, tcp.failure)
    obs = await tls_handshake_unverified(conn, sni, contexts, timeout)
    return dataclasses.replace(obs, cert_chain=())
