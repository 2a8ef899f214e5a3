"""Bounded content decoding (probe.measure.decoding): every layer, every coding, every cap."""

from __future__ import annotations

import gzip
import zlib

import httpx
import pytest

from probe.measure.decoding import PIECE, BodyDecoder


def gz(data: bytes) -> bytes:
    # mtime=0: the same bytes at every collection (the test workers must collect the same tests)
    return gzip.compress(data, 6, mtime=0)


def feed_all(decoder: BodyDecoder, raw: bytes, chunk: int = 7000) -> bytes:
    out: list[bytes] = []
    for i in range(0, len(raw), chunk):
        out.extend(decoder.feed(raw[i : i + chunk]))
        if decoder.truncated:
            break
    return b"".join(out)


PAGE = b"<html><title>t</title>" + bytes(range(256)) * 400 + b"</html>"


@pytest.mark.parametrize(
    ("encoding", "raw"),
    [
        ("", PAGE),
        ("identity", PAGE),
        ("gzip", gz(PAGE)),
        ("x-gzip", gz(PAGE)),
        ("GZIP", gz(PAGE)),
        ("deflate", zlib.compress(PAGE)),  # zlib-wrapped, as RFC 9110 says
        ("deflate", zlib.compress(PAGE)[2:-4]),  # raw DEFLATE, as some servers send it
        ("gzip, gzip", gz(gz(PAGE))),
        ("deflate, gzip", gz(zlib.compress(PAGE))),
        ("gzip, identity, gzip", gz(gz(PAGE))),
    ],
    ids=["none", "identity", "gzip", "x-gzip", "GZIP", "deflate", "raw-deflate", "gzip-gzip",
         "deflate-gzip", "gzip-identity-gzip"],
)
def test_every_coding_and_stack_decodes_to_the_page(encoding: str, raw: bytes) -> None:
    d = BodyDecoder(encoding, 1 << 20)
    assert feed_all(d, raw) == PAGE
    assert d.decoded and not d.truncated and d.size == len(PAGE)


def test_double_gzip_bomb_stops_at_the_cap_with_bounded_work() -> None:
    inner = zlib.compressobj(9, zlib.DEFLATED, 31)
    zero = bytes(1 << 20)
    layer1 = b"".join(inner.compress(zero) for _ in range(64)) + inner.flush()  # 64 MiB of zeros
    bomb = gz(layer1)
    d = BodyDecoder("gzip, gzip", 100_000)
    out = d.feed(bomb)
    assert sum(map(len, out)) == 100_000 == d.size
    assert d.truncated
    assert all(len(p) <= PIECE for p in out)
    assert d.work <= len(layer1)  # the middle layer was not inflated beyond what was needed


def test_exactly_cap_bytes_is_not_truncated_one_more_is() -> None:
    exact = BodyDecoder("gzip", len(PAGE))
    assert feed_all(exact, gz(PAGE)) == PAGE and not exact.truncated
    short = BodyDecoder("gzip", len(PAGE) - 1)
    assert feed_all(short, gz(PAGE)) == PAGE[:-1] and short.truncated


def test_identity_body_longer_than_the_cap_is_truncated() -> None:
    d = BodyDecoder("", 1000)
    assert feed_all(d, PAGE) == PAGE[:1000] and d.truncated


def test_zero_cap_keeps_nothing_and_says_truncated() -> None:
    d = BodyDecoder("gzip", 0)
    assert feed_all(d, gz(PAGE)) == b"" and d.truncated


def test_unknown_or_too_many_codings_keep_the_raw_bytes() -> None:
    for encoding in ("br", "zstd", "gzip, br", "gzip, gzip, gzip, gzip, gzip"):
        d = BodyDecoder(encoding, 1 << 20)
        assert feed_all(d, b"raw bytes") == b"raw bytes" and not d.decoded


def test_corrupt_gzip_is_a_decoding_error() -> None:
    with pytest.raises(httpx.DecodingError):
        BodyDecoder("gzip", 1 << 20).feed(b"\x1f\x8b\x08\x00garbage-garbage-garbage")


def test_middle_layer_that_inflates_to_empty_blocks_hits_the_work_bound() -> None:
    # The outer layer inflates to a stream of empty stored blocks: the inner layer decodes
    # nothing from them, forever. The work bound stops it.
    empty_blocks = b"\x00\x00\x00\xff\xff" * (4 << 20)  # 20 MiB of non-final empty stored blocks
    bomb = gz(empty_blocks)
    d = BodyDecoder("deflate, gzip", 1000)
    assert d.feed(bomb) == []
    assert d.truncated and d.size == 0
