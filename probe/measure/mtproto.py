"""Telegram's MTProto: a client's first exchange with a data centre (DC), over the obfuscated
transport Telegram's apps use, and what proves that a DC answered.

A client opens a TCP connection to a DC and sends 64 bytes that look random (transport
obfuscation): bytes 8-55 are an AES-256-CTR key and IV, bytes 56-59 name the framing (here
"intermediate", ``ee ee ee ee``), bytes 60-61 the DC's number; the last 8 bytes go out
encrypted, as everything after them does. Its first message is the unencrypted
``req_pq_multi`` (TL constructor ``0xbe7e8ef1``) carrying a random 128-bit nonce, the start of
the key exchange. A DC answers ``resPQ`` (``0x05162463``) with the same nonce, encrypted with
the key and IV read from the reversed bytes 8-55: only a peer that followed the obfuscation
and speaks MTProto can produce it. A DC that cannot use the message answers a 4-byte transport
error code (e.g. -404) instead.

Sources (read, not copied): "Transport obfuscation", "Transports" and "Creating an
Authorization Key" in Telegram's MTProto documentation (core.telegram.org/mtproto);
``Telegram/SourceFiles/mtproto/connection_tcp.cpp`` of Telegram Desktop, which always
obfuscates its TCP connections.
"""

from __future__ import annotations

import os
import struct
import time
from dataclasses import dataclass

from cryptography.hazmat.primitives.ciphers import Cipher, CipherContext, algorithms, modes

__all__ = [
    "INTERMEDIATE",
    "MAX_ANSWER",
    "REQ_PQ_MULTI",
    "RES_PQ",
    "ClientHello",
    "ServerSide",
    "client_hello",
    "parse_res_pq",
    "req_pq_multi",
    "res_pq",
    "server_side",
]

#: The framing tag of the intermediate transport (each packet: 4-byte little-endian length).
INTERMEDIATE = b"\xee\xee\xee\xee"
REQ_PQ_MULTI = 0xBE7E8EF1
RES_PQ = 0x05162463
#: First four bytes a client must not send: they would read as another transport or protocol.
_RESERVED_STARTS = (b"HEAD", b"POST", b"GET ", b"OPTI", b"\xdd\xdd\xdd\xdd", INTERMEDIATE,
                    b"\x16\x03\x01\x02")  # fmt: skip
#: The largest answer read: a resPQ is about 90 bytes; a DC never sends more before the client.
MAX_ANSWER = 1024


def _ctr(key: bytes, iv: bytes) -> CipherContext:
    return Cipher(algorithms.AES(key), modes.CTR(iv)).encryptor()


def _header(dc: int) -> bytes:
    """64 random bytes that satisfy the obfuscation's rules, with the framing tag and DC."""
    while True:
        init = bytearray(os.urandom(64))
        if init[0] == 0xEF or bytes(init[:4]) in _RESERVED_STARTS or init[4:8] == b"\0\0\0\0":
            continue
        init[56:60] = INTERMEDIATE
        init[60:62] = struct.pack("<h", dc)
        return bytes(init)


def _message_id() -> int:
    """A client message id: about Unix time times 2**32, divisible by 4."""
    now = time.time()
    return (int(now) << 32 | int((now % 1) * (1 << 32))) & ~3


def req_pq_multi(nonce: bytes) -> bytes:
    """The unencrypted ``req_pq_multi`` message (auth key id 0), without framing."""
    body = struct.pack("<I", REQ_PQ_MULTI) + nonce
    return struct.pack("<qqi", 0, _message_id(), len(body)) + body


def res_pq(nonce: bytes, server_nonce: bytes, pq: bytes, fingerprints: tuple[int, ...]) -> bytes:
    """An unencrypted ``resPQ`` message (used by the lab's stand-in DC)."""
    pq_tl = bytes([len(pq)]) + pq
    pq_tl += b"\0" * (-len(pq_tl) % 4)
    vector = struct.pack("<Ii", 0x1CB5C415, len(fingerprints)) + b"".join(
        struct.pack("<q", f) for f in fingerprints
    )
    body = struct.pack("<I", RES_PQ) + nonce + server_nonce + pq_tl + vector
    return struct.pack("<qqi", 0, _message_id() | 1, len(body)) + body


@dataclass
class ClientHello:
    """The bytes a client sends first, and the cipher that reads the DC's answer."""

    data: bytes
    nonce: bytes
    decrypt: CipherContext


def client_hello(dc: int = 2) -> ClientHello:
    """The obfuscated header and a framed ``req_pq_multi`` with a fresh nonce."""
    init = _header(dc)
    encrypt = _ctr(init[8:40], init[40:56])
    reverse = init[8:56][::-1]
    decrypt = _ctr(reverse[:32], reverse[32:48])
    nonce = os.urandom(16)
    message = req_pq_multi(nonce)
    sealed = encrypt.update(init + struct.pack("<I", len(message)) + message)
    return ClientHello(init[:56] + sealed[56:], nonce, decrypt)


def parse_res_pq(message: bytes, nonce: bytes) -> str:
    """What a DC's (decrypted, unframed) answer is: ``ok`` for a resPQ naming ``nonce``,
    ``error:N`` for a transport error code, else ``not-res-pq``, ``wrong-nonce`` or
    ``truncated``."""
    if len(message) == 4:
        return f"error:{struct.unpack('<i', message)[0]}"
    if len(message) < 20 + 4 + 32:
        return "truncated"
    auth_key_id, _msg_id, length = struct.unpack("<qqi", message[:20])
    if auth_key_id != 0 or length < 36 or 20 + length > len(message):
        return "not-res-pq"
    (constructor,) = struct.unpack("<I", message[20:24])
    if constructor != RES_PQ:
        return "not-res-pq"
    return "ok" if message[24:40] == nonce else "wrong-nonce"


@dataclass
class ServerSide:
    """A DC's view of a connection after the client's 64 bytes: its two ciphers."""

    decrypt: CipherContext
    encrypt: CipherContext
    tag: bytes
    dc: int


def server_side(init: bytes) -> ServerSide:
    """Read a client's obfuscated header as a DC does (used by the lab's stand-in DC)."""
    if len(init) != 64:
        raise ValueError("the obfuscated header is 64 bytes")
    decrypt = _ctr(init[8:40], init[40:56])
    reverse = init[8:56][::-1]
    encrypt = _ctr(reverse[:32], reverse[32:48])
    plain = decrypt.update(init)
    return ServerSide(decrypt, encrypt, plain[56:60], struct.unpack("<h", plain[60:62])[0])
