"""The hand-made ClientHellos of the ECH test, and how the first answer is read."""

from __future__ import annotations

import itertools
import os

import pytest

from probe.core.failures import Failure
from probe.measure.ech import ECH_EXTENSION, client_hellos, read_answer


def _extensions(record: bytes) -> list[int]:
    """Extension types of a ClientHello record, in order (parsed the way a server would)."""
    body = record[9:]  # record header (5) + handshake header (4)
    i = 2 + 32
    i += 1 + body[i]  # session id
    i += 2 + int.from_bytes(body[i:i + 2], "big")  # cipher suites
    i += 1 + body[i]  # compression methods
    end = i + 2 + int.from_bytes(body[i:i + 2], "big")
    i += 2
    types = []
    while i < end:
        types.append(int.from_bytes(body[i:i + 2], "big"))
        i += 4 + int.from_bytes(body[i + 2:i + 4], "big")
    assert i == end == len(body)
    return types


def test_the_two_hellos_differ_only_by_the_grease_ech_extension() -> None:
    plain, ech = client_hellos("site.example")
    assert _extensions(ech) == [*_extensions(plain), ECH_EXTENSION]
    # Same random, session id and key share: everything before the extensions is equal.
    assert plain[11:11 + 32 + 33] == ech[11:11 + 32 + 33]
    assert b"\x00\x00\x0csite.example" in plain and b"\x00\x00\x0csite.example" in ech


def test_the_ech_code_point_appears_only_as_the_extension_type() -> None:
    # The first draw is full of fe 0d: it is thrown away and the hellos are drawn again.
    calls = itertools.count()

    def rand(n: int) -> bytes:
        return (b"\xfe\x0d" * n)[:n] if next(calls) < 6 else os.urandom(n)

    plain, ech = client_hellos("site.example", rand=rand)
    assert next(calls) > 6
    assert plain.count(b"\xfe\x0d") == 0 and ech.count(b"\xfe\x0d") == 1


def test_a_name_that_is_not_ascii_is_refused() -> None:
    with pytest.raises(ValueError):
        client_hellos("bücher.example")


@pytest.mark.parametrize(
    ("head", "failure", "answer"),
    [
        (bytes.fromhex("160303007a020000760303") + b"\x11" * 32, None, "server_hello"),
        (bytes.fromhex("160303007a020000760303cf21ad74e59a6111be1d8c021e65b891c2a211167abb8c5e079e09e2c8a8339c"),
         None, "hello_retry_request"),
        (bytes.fromhex("15030300020228"), Failure.SSL_FAILED_HANDSHAKE, "alert:handshake_failure"),
        (b"HTTP/1.1 400 Bad Request\r\n", Failure.SSL_FAILED_HANDSHAKE, "not_tls"),
    ],
    ids=["server-hello", "hello-retry", "alert", "not-tls"],
)
def test_the_first_record_says_what_the_server_answered(
    head: bytes, failure: str | None, answer: str
) -> None:
    assert read_answer(head) == (failure, answer)
