"""Fully encrypted traffic (Shadowsocks-like): the Great Firewall's published detection rule, and
the payloads that test it.

Wu et al., "How the Great Firewall of China Detects and Blocks Fully Encrypted Traffic" (USENIX
Security 2023), found that from November 2021 the GFW examined the first data packet a client
sends on a TCP connection and exempted it from blocking when any of these held:

- Ex1: the average number of set bits per byte is <= 3.4 or >= 4.6 (random bytes average 4);
- Ex2: the first six bytes are printable ASCII (0x20-0x7e);
- Ex3: more than half of the bytes are printable;
- Ex4: more than 20 contiguous bytes are printable;
- Ex5: the first bytes look like TLS (0x16 or 0x17, 0x03, 0x00-0x09) or an HTTP request
  (a method and a space).

A connection that no exemption covered was blocked with some probability (about a quarter of
them): the rest of it was dropped, and further connections to the same server address and port
for about 180 s ("residual censorship"). :func:`exemptions` is that rule, exactly as listed;
the lab's censor runs it (probe/lab/fetcensor.py), and the probe uses it to make a random
payload that no exemption covers and a printable twin of the same length that Ex2-Ex4 cover.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import string
import time

from probe.core.failures import Failure, failure_string
from probe.core.model import EchoTrial
from probe.measure.tcp import tcp_connect

__all__ = [
    "FIRST_SIZE",
    "HTTP_METHODS",
    "PRINTABLE",
    "SECOND_SIZE",
    "echo_trial",
    "exemptions",
    "is_exempt",
    "popcount_per_byte",
    "printable_payload",
    "random_payload",
    "random_trial",
    "twin_trial",
]

#: Request methods whose name and a space at the start exempt a packet (Ex5).
HTTP_METHODS = (b"GET ", b"PUT ", b"POST ", b"HEAD ", b"DELETE ", b"CONNECT ", b"OPTIONS ",
                b"TRACE ", b"PATCH ")  # fmt: skip
#: Printable ASCII, as the rule counts it.
PRINTABLE = frozenset(range(0x20, 0x7F))
_POPCOUNT = bytes(bin(i).count("1") for i in range(256))
_TWIN_ALPHABET = string.ascii_letters + string.digits


def popcount_per_byte(data: bytes) -> float:
    """The average number of set bits per byte (Ex1's measure); 0 for no bytes."""
    return sum(data.translate(_POPCOUNT)) / len(data) if data else 0.0


def _longest_printable_run(data: bytes) -> int:
    best = run = 0
    for b in data:
        run = run + 1 if b in PRINTABLE else 0
        best = max(best, run)
    return best


def exemptions(payload: bytes) -> tuple[str, ...]:
    """The exemptions (``ex1``..``ex5``) that cover ``payload``, a connection's first data
    packet; empty: the rule would block it. An empty payload is exempt (nothing to examine)."""
    if not payload:
        return ("empty",)
    found = []
    bits = popcount_per_byte(payload)
    if bits <= 3.4 or bits >= 4.6:
        found.append("ex1")
    if len(payload) >= 6 and all(b in PRINTABLE for b in payload[:6]):
        found.append("ex2")
    if sum(b in PRINTABLE for b in payload) * 2 > len(payload):
        found.append("ex3")
    if _longest_printable_run(payload) > 20:
        found.append("ex4")
    tls = len(payload) >= 3 and payload[0] in (0x16, 0x17) and payload[1] == 0x03 and payload[2] <= 0x09
    if tls or payload.startswith(HTTP_METHODS):
        found.append("ex5")
    return tuple(found)


def is_exempt(payload: bytes) -> bool:
    """True when the published rule exempts ``payload`` from blocking."""
    return bool(exemptions(payload))


def random_payload(size: int) -> bytes:
    """``size`` random bytes that no exemption covers (drawn again until so; with 200 bytes
    and more, nearly always the first draw). Its bits per byte stay well inside (3.4, 4.6)
    and its first byte is not printable, so no close reading of the thresholds exempts it."""
    if size < 32:
        raise ValueError("a payload the rule examines needs 32 bytes or more here")
    while True:
        data = os.urandom(size)
        if data[0] not in PRINTABLE and 3.7 < popcount_per_byte(data) < 4.3 and not exemptions(data):
            return data


def printable_payload(size: int) -> bytes:
    """``size`` printable bytes (letters and digits): the twin that Ex2, Ex3 and Ex4 exempt."""
    return "".join(secrets.choice(_TWIN_ALPHABET) for _ in range(size)).encode()


# --- the exchange with a reflector's TCP echo port ----------------------------------------------

#: Bytes of the first segment (what the rule examines) and of the second (sent once the first came
#: back: a censor that lets the trigger through and drops the rest of the connection, as the GFW
#: did, is seen there).
FIRST_SIZE = 256
SECOND_SIZE = 64


async def echo_trial(
    role: str, address: str, port: int, first: bytes, second: bytes, *, tcp_timeout: float, timeout: float
) -> EchoTrial:
    """Connect, send ``first``, read its echo, send ``second``, read its echo; never raises."""
    started = time.time()
    t0 = time.monotonic()
    tcp, conn = await tcp_connect(address, port, tcp_timeout)
    exempt = exemptions(first)
    if conn is None:
        return EchoTrial(role, port, started, time.monotonic() - t0, failure=tcp.failure, step="connect",
                         exempt=exempt)  # fmt: skip
    sent = received = 0
    step = "first"
    try:
        for step, data in (("first", first), ("second", second)):
            async with asyncio.timeout(timeout):
                conn.writer.write(data)
                sent += len(data)
                echo = await conn.reader.readexactly(len(data))
            if echo != data:
                return EchoTrial(role, port, started, time.monotonic() - t0, sent, received,
                                 Failure.ECHO_MISMATCH, step, exempt)  # fmt: skip
            received += len(echo)
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        return EchoTrial(role, port, started, time.monotonic() - t0, sent, received, failure_string(exc),
                         step, exempt)  # fmt: skip
    finally:
        conn.close()
    return EchoTrial(role, port, started, time.monotonic() - t0, sent, received, exempt=exempt,
                     detail="echoed")  # fmt: skip


async def twin_trial(role: str, address: str, port: int, *, tcp_timeout: float, timeout: float) -> EchoTrial:
    """The printable twin: exempt by the rule, the same sizes as the random exchange."""
    first, second = printable_payload(FIRST_SIZE), printable_payload(SECOND_SIZE)
    return await echo_trial(role, address, port, first, second, tcp_timeout=tcp_timeout, timeout=timeout)


async def random_trial(address: str, port: int, *, tcp_timeout: float, timeout: float) -> EchoTrial:
    """Random bytes no exemption covers, then more random bytes."""
    return await echo_trial("random", address, port, random_payload(FIRST_SIZE), os.urandom(SECOND_SIZE),
                            tcp_timeout=tcp_timeout, timeout=timeout)  # fmt: skip
