"""WireGuard's first packets: the handshake initiation a censor's DPI matches, and the
response that proves a WireGuard responder (not a middlebox) answered.

The handshake is Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s (WireGuard whitepaper, section 5.4;
the Linux module's ``drivers/net/wireguard/noise.c``). An initiation is 148 bytes::

    type=1 | 3 reserved | sender index (LE) | ephemeral (32) | encrypted static (48)
    | encrypted TAI64N timestamp (28) | mac1 (16) | mac2 (16)

and a response 92 bytes::

    type=2 | 3 reserved | sender index | receiver index | ephemeral (32) | encrypted empty (16)
    | mac1 (16) | mac2 (16)

A real initiation needs the responder's static public key (it is mixed into the hash and
keys mac1). With it, :class:`Initiation` makes a handshake any WireGuard responder can
authenticate, and :func:`check_response` verifies the answer cryptographically (the responder
must know its private key to produce it). A server answers only peers it knows, so a third
party's server stays silent; the helper's reflector and the lab (:func:`respond`) answer any
initiator. Without a key, :func:`unkeyed_initiation` makes a well-formed initiation whose
answer cannot be checked: the result is recorded as such.

:func:`twin` is the control datagram: the same length, a type byte WireGuard does not use, echoed
by the reflector; a censor matching "type 1, 148 bytes" lets it through.

Only :mod:`cryptography` (X25519, ChaCha20-Poly1305) and :mod:`hashlib` (BLAKE2s) are used.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import os
import socket
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from probe.core.failures import Failure, failure_string
from probe.core.model import EchoTrial
from probe.core.wgkey import decode_key, encode_key

__all__ = [
    "INITIATION",
    "INITIATION_SIZE",
    "RESPONSE",
    "RESPONSE_SIZE",
    "TWIN_TYPE",
    "Initiation",
    "KeyPair",
    "ResponderResult",
    "check_response",
    "decode_key",
    "encode_key",
    "initiation_trial",
    "looks_like_initiation",
    "respond",
    "twin",
    "twin_trial",
    "udp_trial",
    "unkeyed_initiation",
]

INITIATION = 1
RESPONSE = 2
COOKIE_REPLY = 3
INITIATION_SIZE = 148
RESPONSE_SIZE = 92
COOKIE_REPLY_SIZE = 64
#: The control datagram's type byte: not a WireGuard message (1-4), so no server acts on it.
TWIN_TYPE = 0xF0

_CONSTRUCTION = b"Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s"
_IDENTIFIER = b"WireGuard v1 zx2c4 Jason@zx2c4.com"
_LABEL_MAC1 = b"mac1----"
_TAI64_BASE = 0x400000000000000A  # TAI64 label of 1970 (2^62 + 10 leap seconds), as WireGuard uses


def _hash(*parts: bytes) -> bytes:
    return hashlib.blake2s(b"".join(parts)).digest()


def _mac(key: bytes, data: bytes) -> bytes:
    return hashlib.blake2s(data, key=key, digest_size=16).digest()


def _hmac(key: bytes, data: bytes) -> bytes:
    return hmac.new(key, data, hashlib.blake2s).digest()


def _kdf(key: bytes, data: bytes, n: int) -> list[bytes]:
    """WireGuard's KDF_n: HKDF with HMAC-BLAKE2s, ``n`` 32-byte outputs."""
    prk = _hmac(key, data)
    out: list[bytes] = []
    prev = b""
    for i in range(1, n + 1):
        prev = _hmac(prk, prev + bytes([i]))
        out.append(prev)
    return out


def _aead(key: bytes, counter: int, plain: bytes, ad: bytes) -> bytes:
    return ChaCha20Poly1305(key).encrypt(b"\0\0\0\0" + struct.pack("<Q", counter), plain, ad)


def _open(key: bytes, counter: int, sealed: bytes, ad: bytes) -> bytes:
    return ChaCha20Poly1305(key).decrypt(b"\0\0\0\0" + struct.pack("<Q", counter), sealed, ad)


def _dh(private: bytes, public: bytes) -> bytes:
    return X25519PrivateKey.from_private_bytes(private).exchange(X25519PublicKey.from_public_bytes(public))


def _tai64n(now: float | None = None) -> bytes:
    t = time.time() if now is None else now
    return struct.pack(">QI", _TAI64_BASE + int(t), int((t % 1) * 1e9))


@dataclass(frozen=True)
class KeyPair:
    """A Curve25519 key pair (raw 32-byte keys)."""

    private: bytes
    public: bytes

    @classmethod
    def generate(cls) -> KeyPair:
        """A fresh random key pair."""
        return cls.from_private(os.urandom(32))

    @classmethod
    def from_private(cls, private: bytes) -> KeyPair:
        """The pair of a private key (clamped by X25519 as WireGuard does)."""
        key = X25519PrivateKey.from_private_bytes(private)
        return cls(private, key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw))


def _initial(responder_public: bytes) -> tuple[bytes, bytes]:
    """(chaining key, hash) before the first message, with the responder's key mixed in."""
    ck = _hash(_CONSTRUCTION)
    return ck, _hash(_hash(ck, _IDENTIFIER), responder_public)


@dataclass(frozen=True)
class Initiation:
    """A handshake initiation to a responder whose static key is known, and the state needed to
    check its answer."""

    packet: bytes
    sender_index: int
    static: KeyPair
    ephemeral: KeyPair
    chaining_key: bytes
    hash: bytes

    @classmethod
    def create(cls, responder_public: bytes, *, static: KeyPair | None = None,
               sender_index: int | None = None, now: float | None = None) -> Initiation:  # fmt: skip
        """A fresh initiation (a random static key unless one is given: we are nobody's peer)."""
        if len(responder_public) != 32:
            raise ValueError("a WireGuard public key is 32 bytes")
        s = static or KeyPair.generate()
        e = KeyPair.generate()
        index = sender_index if sender_index is not None else int.from_bytes(os.urandom(4), "little")
        ck, h = _initial(responder_public)
        ck = _kdf(ck, e.public, 1)[0]
        h = _hash(h, e.public)
        ck, k = _kdf(ck, _dh(e.private, responder_public), 2)
        enc_static = _aead(k, 0, s.public, h)
        h = _hash(h, enc_static)
        ck, k = _kdf(ck, _dh(s.private, responder_public), 2)
        enc_time = _aead(k, 0, _tai64n(now), h)
        h = _hash(h, enc_time)
        body = struct.pack("<B3xI", INITIATION, index) + e.public + enc_static + enc_time
        mac1 = _mac(_hash(_LABEL_MAC1, responder_public), body)
        return cls(body + mac1 + bytes(16), index, s, e, ck, h)


def unkeyed_initiation(sender_index: int | None = None) -> bytes:
    """A well-formed 148-byte initiation for a server whose key we do not have: random where the
    keys would be (what a DPI box sees is the same; no server can authenticate it)."""
    index = sender_index if sender_index is not None else int.from_bytes(os.urandom(4), "little")
    return struct.pack("<B3xI", INITIATION, index) + os.urandom(INITIATION_SIZE - 8 - 16) + bytes(16)


def twin(size: int = INITIATION_SIZE) -> bytes:
    """The control datagram: ``size`` random bytes whose type byte is not WireGuard's."""
    return bytes([TWIN_TYPE]) + os.urandom(size - 1)


def looks_like_initiation(packet: bytes) -> bool:
    """Type 1, three zero bytes, 148 bytes: what a first-packet DPI rule matches."""
    return len(packet) == INITIATION_SIZE and packet[:4] == b"\x01\x00\x00\x00"


def check_response(init: Initiation, packet: bytes) -> str:
    """Whether ``packet`` answers ``init``: ``ok`` (a valid response: the responder knew its
    private key), ``cookie`` (a cookie reply to our index: a loaded WireGuard server), or why not
    (``size``, ``type``, ``index``, ``mac1``, ``decrypt``)."""
    if len(packet) == COOKIE_REPLY_SIZE and packet[0] == COOKIE_REPLY:
        return "cookie" if struct.unpack_from("<I", packet, 4)[0] == init.sender_index else "index"
    if len(packet) != RESPONSE_SIZE:
        return "size"
    kind, _sender, receiver = struct.unpack_from("<B3xII", packet)
    if kind != RESPONSE:
        return "type"
    if receiver != init.sender_index:
        return "index"
    if not hmac.compare_digest(_mac(_hash(_LABEL_MAC1, init.static.public), packet[:60]), packet[60:76]):
        return "mac1"
    e_r = packet[12:44]
    ck = _kdf(init.chaining_key, e_r, 1)[0]
    h = _hash(init.hash, e_r)
    ck = _kdf(ck, _dh(init.ephemeral.private, e_r), 1)[0]
    ck = _kdf(ck, _dh(init.static.private, e_r), 1)[0]
    ck, tau, k = _kdf(ck, bytes(32), 3)  # no pre-shared key: 32 zero bytes
    h = _hash(h, tau)
    try:
        _open(k, 0, packet[44:60], h)
    except Exception:
        return "decrypt"
    return "ok"


@dataclass(frozen=True)
class ResponderResult:
    """What a responder made of a datagram: its answer (or None) and why."""

    answer: bytes | None
    outcome: str  # "response", "not-initiation", "mac1", "decrypt"


def respond(keys: KeyPair, packet: bytes) -> ResponderResult:
    """Answer a handshake initiation to ``keys`` from any initiator (the reflector and the lab:
    a measurement peer, not a VPN): a valid 92-byte response, never larger than the request."""
    if not looks_like_initiation(packet):
        return ResponderResult(None, "not-initiation")
    if not hmac.compare_digest(_mac(_hash(_LABEL_MAC1, keys.public), packet[:116]), packet[116:132]):
        return ResponderResult(None, "mac1")
    sender = struct.unpack_from("<I", packet, 4)[0]
    e_i = packet[8:40]
    ck, h = _initial(keys.public)
    ck = _kdf(ck, e_i, 1)[0]
    h = _hash(h, e_i)
    try:
        ck, k = _kdf(ck, _dh(keys.private, e_i), 2)
        s_i = _open(k, 0, packet[40:88], h)
        h = _hash(h, packet[40:88])
        ck, k = _kdf(ck, _dh(keys.private, s_i), 2)
        _open(k, 0, packet[88:116], h)  # the timestamp (replay protection is a VPN's concern)
    except Exception:
        return ResponderResult(None, "decrypt")
    h = _hash(h, packet[88:116])
    e = KeyPair.generate()
    ck = _kdf(ck, e.public, 1)[0]
    h = _hash(h, e.public)
    ck = _kdf(ck, _dh(e.private, e_i), 1)[0]
    ck = _kdf(ck, _dh(e.private, s_i), 1)[0]
    ck, tau, k = _kdf(ck, bytes(32), 3)
    h = _hash(h, tau)
    empty = _aead(k, 0, b"", h)
    body = struct.pack("<B3xII", RESPONSE, int.from_bytes(os.urandom(4), "little"), sender) + e.public + empty
    return ResponderResult(body + _mac(_hash(_LABEL_MAC1, s_i), body) + bytes(16), "response")


# --- the exchange over UDP ----------------------------------------------------------------------

#: Datagrams read while waiting for one answer (a flood cannot hold us longer).
MAX_DATAGRAMS = 16
#: Copies of a datagram sent within the timeout (UDP loses packets; WireGuard resends too).
SENDS = 3


async def udp_trial(
    role: str, address: str, port: int, packet: bytes, accept: Callable[[bytes], str], *, timeout: float,
    unexpected: str = Failure.WIREGUARD_UNEXPECTED_REPLY,
) -> EchoTrial:
    """Send ``packet`` (up to :data:`SENDS` times, spread over ``timeout``) from a fresh socket
    and wait for a datagram ``accept`` calls good (``echoed``, ``ok``, ``cookie``,
    ``unverifiable``); anything else it names is counted and reported if nothing good came."""
    loop = asyncio.get_running_loop()
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    started = time.time()
    t0 = time.monotonic()
    others: list[str] = []
    sock = socket.socket(family, socket.SOCK_DGRAM)
    sock.setblocking(False)
    sends = 0
    try:
        # A connected UDP socket: the kernel drops datagrams from any other source.
        await loop.sock_connect(sock, (address, port))
        async with asyncio.timeout(timeout):
            while len(others) < MAX_DATAGRAMS:
                if sends < SENDS:
                    await loop.sock_sendall(sock, packet)
                    sends += 1
                try:
                    async with asyncio.timeout(timeout / SENDS if sends < SENDS else None):
                        data = await loop.sock_recv(sock, 2048)
                except TimeoutError:
                    continue  # send the next copy
                verdict = accept(data)
                if verdict in _GOOD:
                    return EchoTrial(role, port, started, time.monotonic() - t0, len(packet), len(data),
                                     detail=verdict)  # fmt: skip
                others.append(verdict)
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        if not (others and isinstance(exc, TimeoutError)):
            return EchoTrial(role, port, started, time.monotonic() - t0, len(packet), 0, failure_string(exc),
                             "answer", detail=",".join(others[-1:]))  # fmt: skip
    finally:
        with contextlib.suppress(OSError):
            sock.close()
    return EchoTrial(role, port, started, time.monotonic() - t0, len(packet), 0, unexpected, "answer",
                     detail=others[-1])  # fmt: skip


_GOOD = frozenset({"echoed", "ok", "cookie", "unverifiable"})


async def twin_trial(role: str, address: str, port: int, *, timeout: float) -> EchoTrial:
    """The control datagram: as long as an initiation, not WireGuard; a reflector echoes it."""
    packet = twin()
    return await udp_trial(role, address, port, packet, lambda d: "echoed" if d == packet else "other",
                           timeout=timeout, unexpected=Failure.ECHO_MISMATCH)  # fmt: skip


async def initiation_trial(address: str, port: int, key: bytes | None, *, timeout: float) -> EchoTrial:
    """A handshake initiation: checked against the answer when ``key`` is known."""
    if key is None:
        return await udp_trial("initiation", address, port, unkeyed_initiation(), lambda d: "unverifiable",
                               timeout=timeout)  # fmt: skip
    init = Initiation.create(key)
    return await udp_trial("initiation", address, port, init.packet, lambda d: check_response(init, d),
                           timeout=timeout)  # fmt: skip
