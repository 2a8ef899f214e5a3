"""The ECH test: two hand-made TLS 1.3 ClientHellos to one address, identical but for a GREASE
Encrypted Client Hello extension, and what comes back to each.

Python's ssl module cannot add an ECH extension, so both hellos are built here, byte by byte,
from one set of random values (client random, session id, key share): they differ only in the
``encrypted_client_hello`` extension (type 0xfe0d, draft-ietf-tls-esni), which carries a GREASE
value as browsers send when they have no ECH configuration for a site (the draft's section
6.2: outer type, HKDF-SHA256 / AES-128-GCM, a random config id, a random X25519 ``enc`` and a
random payload). A server that does not support ECH must ignore it and answer both alike; a
censor matching the extension treats them differently (Russia's TSPU from November 2024,
with Cloudflare's outer name as the SNI: ``--ech-sni cloudflare-ech.com``).

Each hello goes on a fresh TCP connection, the plain one first: a censor that keeps blocking
the address after a hello it disliked (residual blocking, as the GFW did with ESNI) must not
spoil the plain one. Only the first TLS record of the answer is read, bounded in bytes and
time: a ServerHello (or HelloRetryRequest) means the server answered; an alert, a reset, an
EOF or silence are recorded as they are. The handshake is never completed.

The random parts are redrawn until the bytes ``fe 0d`` appear nowhere but at the extension's
type: a plain hello must not trip a censor's naive byte match by chance, or the two would not
differ in what they show a censor.
"""

from __future__ import annotations

import asyncio
import os
import struct
import time
from collections.abc import Callable

from probe.core.failures import Failure, failure_string
from probe.core.model import TLSHelloObservation
from probe.core.net.policy import ConnectPolicy
from probe.measure.tcp import tcp_connect

__all__ = ["ECH_EXTENSION", "client_hellos", "ech_pair", "read_answer", "send_hello"]

#: The encrypted_client_hello extension's code point (draft-ietf-tls-esni-18 and later).
ECH_EXTENSION = 0xFE0D
_ECH_BYTES = struct.pack("!H", ECH_EXTENSION)
# HelloRetryRequest is a ServerHello with this random (RFC 8446 section 4.1.3).
_HRR_RANDOM = bytes.fromhex("cf21ad74e59a6111be1d8c021e65b891c2a211167abb8c5e079e09e2c8a8339c")
_GREASE_PAYLOAD = 208  # bytes of random "encrypted" payload, in the range browsers send
_MAX_ANSWER = 16 << 10  # bytes of the answer read at most (one TLS record's header and head)
_CIPHERS = (0x1301, 0x1302, 0x1303, 0xC02B, 0xC02F, 0xC02C, 0xC030, 0xCCA9, 0xCCA8)
_SIGALGS = (0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806, 0x0601)
_GROUPS = (0x001D, 0x0017, 0x0018)  # x25519, secp256r1, secp384r1
_ALERTS = {0: "close_notify", 10: "unexpected_message", 40: "handshake_failure",
           47: "illegal_parameter", 50: "decode_error", 70: "protocol_version",
           80: "internal_error", 110: "unsupported_extension", 112: "unrecognized_name",
           120: "no_application_protocol"}  # fmt: skip


def _vec(data: bytes, size: int) -> bytes:
    """``data`` with its length in front, on ``size`` bytes (TLS's opaque<..> vectors)."""
    return len(data).to_bytes(size, "big") + data


def _ext(kind: int, body: bytes) -> bytes:
    return struct.pack("!H", kind) + _vec(body, 2)


def _u16s(values: tuple[int, ...]) -> bytes:
    return b"".join(struct.pack("!H", v) for v in values)


def _hello(sni: str, random: bytes, session: bytes, share: bytes, ech: bytes | None) -> bytes:
    name = sni.encode("ascii")
    exts = [
        _ext(0x0000, _vec(b"\x00" + _vec(name, 2), 2)),  # server_name
        _ext(0x0017, b""),  # extended_master_secret
        _ext(0xFF01, b"\x00"),  # renegotiation_info
        _ext(0x000A, _vec(_u16s(_GROUPS), 2)),  # supported_groups
        _ext(0x000B, b"\x01\x00"),  # ec_point_formats: uncompressed
        _ext(0x0010, _vec(_vec(b"h2", 1) + _vec(b"http/1.1", 1), 2)),  # ALPN
        _ext(0x000D, _vec(_u16s(_SIGALGS), 2)),  # signature_algorithms
        _ext(0x0033, _vec(struct.pack("!H", 0x001D) + _vec(share, 2), 2)),  # key_share
        _ext(0x002D, b"\x01\x01"),  # psk_key_exchange_modes: psk_dhe_ke
        _ext(0x002B, b"\x04\x03\x04\x03\x03"),  # supported_versions: TLS 1.3, 1.2
    ]
    if ech is not None:
        exts.append(_ext(ECH_EXTENSION, ech))
    body = (b"\x03\x03" + random + _vec(session, 1) + _vec(_u16s(_CIPHERS), 2) + b"\x01\x00"
            + _vec(b"".join(exts), 2))  # fmt: skip
    handshake = b"\x01" + _vec(body, 3)
    return b"\x16\x03\x01" + _vec(handshake, 2)


def _grease_ech(rand: Callable[[int], bytes]) -> bytes:
    # ECHClientHello: type outer (0), HpkeSymmetricCipherSuite (HKDF-SHA256, AES-128-GCM),
    # config_id, enc (an X25519 public key's size), payload.
    return (b"\x00" + struct.pack("!HH", 0x0001, 0x0001) + rand(1) + _vec(rand(32), 2)
            + _vec(rand(_GREASE_PAYLOAD), 2))  # fmt: skip


def client_hellos(sni: str, rand: Callable[[int], bytes] = os.urandom) -> tuple[bytes, bytes]:
    """(plain, with GREASE ECH): two ClientHello records for ``sni`` sharing every random value.

    Raises ValueError for a name that is not ASCII (the engine's hosts are punycode) or longer
    than DNS allows.
    """
    if not sni.isascii() or not 0 < len(sni) <= 253:
        raise ValueError(f"not a host name for SNI: {sni!r}")
    for _ in range(64):
        random, session = rand(32), rand(32)
        share = _x25519_public(rand)
        plain = _hello(sni, random, session, share, None)
        ech = _hello(sni, random, session, share, _grease_ech(rand))
        if plain.count(_ECH_BYTES) == 0 and ech.count(_ECH_BYTES) == 1:
            return plain, ech
    raise RuntimeError("could not draw hellos without a stray ECH code point")  # 2^-64 odds


def _x25519_public(rand: Callable[[int], bytes]) -> bytes:
    """A real X25519 public key (a server computing the shared secret must not choke on it)."""
    # Imported here: cryptography's bindings (~10 ms) only when a run builds ECH hellos (--ech).
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

    return X25519PrivateKey.from_private_bytes(rand(32)).public_key().public_bytes_raw()


def read_answer(head: bytes) -> tuple[str | None, str]:
    """(failure, answer) from the first bytes of a server's answer (at least 5).

    A handshake record starting a ServerHello is no failure (``server_hello`` or
    ``hello_retry_request``); an alert record is ``ssl_failed_handshake`` with
    ``alert:<description>``; anything else is ``ssl_failed_handshake`` with ``not_tls``.
    """
    if len(head) >= 7 and head[0] == 0x15:
        desc = head[6]
        return Failure.SSL_FAILED_HANDSHAKE, f"alert:{_ALERTS.get(desc, str(desc))}"
    if len(head) >= 6 and head[0] == 0x16 and head[5] == 0x02:
        # record header (5) + handshake type (1) + length (3) + version (2) + random (32)
        if len(head) >= 43 and head[11:43] == _HRR_RANDOM:
            return None, "hello_retry_request"
        return None, "server_hello"
    return Failure.SSL_FAILED_HANDSHAKE, "not_tls"


async def _read_head(reader: asyncio.StreamReader) -> bytes:
    """The first record's header and up to 38 bytes of its body (what :func:`read_answer`
    needs); EOF before 5 bytes raises IncompleteReadError (``eof_error``)."""
    header = await reader.readexactly(5)
    length = int.from_bytes(header[3:5], "big")
    want = min(length, 38, _MAX_ANSWER)
    body = b""
    while len(body) < want:
        chunk = await reader.read(want - len(body))
        if not chunk:
            break
        body += chunk
    return header + body


async def send_hello(
    ip: str, port: int, sni: str, hello: bytes, *, ech: bool, timeout: float, tcp_timeout: float,
    policy: ConnectPolicy | None = None, attempt: int = 0,
) -> TLSHelloObservation:
    """Send ``hello`` on a fresh connection to ``ip:port`` and read the first answer."""
    started = time.time()
    t0 = time.monotonic()
    # Not captured: --capture's packet rules judge the web steps' flows (docs/packets.md), and a
    # reset of an ECH hello must not be read as evidence about them.
    tcp, conn = await tcp_connect(ip, port, tcp_timeout, policy, captured=False)
    if conn is None:
        return TLSHelloObservation(ip, port, sni, ech, started, time.monotonic() - t0, tcp.failure,
                                   attempt=attempt)  # fmt: skip
    failure: str | None
    answer: str | None = None
    try:
        async with asyncio.timeout(timeout):
            conn.writer.write(hello)
            await conn.writer.drain()
            head = await _read_head(conn.reader)
        failure, answer = read_answer(head)
    except asyncio.CancelledError:
        conn.close()
        raise
    except Exception as exc:
        failure = failure_string(exc)
    finally:
        conn.close()
    return TLSHelloObservation(ip, port, sni, ech, started, time.monotonic() - t0, failure, True,
                               answer, attempt)  # fmt: skip


def _dropped(obs: TLSHelloObservation) -> bool:
    """The hello got no answer from the server (reset, EOF, silence), after a connect."""
    return obs.connected and obs.failure is not None and obs.answer is None


async def ech_pair(
    ip: str, port: int, sni: str, out: list[TLSHelloObservation], *, timeout: float,
    tcp_timeout: float, policy: ConnectPolicy | None = None,
) -> None:
    """The plain hello, then the ECH one, each recorded in ``out`` as it ends; when only the ECH
    one went unanswered, both once more (plain first), so that one lost packet does not make a
    finding. A hello cut by the URL's deadline is recorded as ``deadline_exceeded``.

    Never raises for network problems.
    """
    plain, ech = client_hellos(sni)

    async def send(hello: bytes, is_ech: bool, attempt: int = 0) -> TLSHelloObservation:
        started, t0 = time.time(), time.monotonic()
        try:
            obs = await send_hello(ip, port, sni, hello, ech=is_ech, timeout=timeout,
                                   tcp_timeout=tcp_timeout, policy=policy, attempt=attempt)  # fmt: skip
        except asyncio.CancelledError:
            out.append(TLSHelloObservation(ip, port, sni, is_ech, started, time.monotonic() - t0,
                                           Failure.DEADLINE_EXCEEDED, attempt=attempt))  # fmt: skip
            raise
        out.append(obs)
        return obs

    if (await send(plain, False)).failure is not None:
        return  # the address does not answer a plain hello: nothing to compare with
    if _dropped(await send(ech, True)):
        await send(plain, False, 1)
        await send(ech, True, 1)
