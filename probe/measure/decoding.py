"""Content decoding with bounded output at every layer: no decompression bomb gets through.

httpx decodes a response body with one ``decompress()`` call per network chunk, without an
output limit, and chains the decoders of ``Content-Encoding: gzip, gzip``: a 2.6 KB response
whose outer gzip holds a 2 MB gzip of 2 GB of zeros makes the inner call return 2 GB at once.
:class:`BodyDecoder` instead pulls every layer through ``decompressobj.decompress(data,
max_length)`` in pieces of at most :data:`PIECE` bytes, stops as soon as ``cap`` decoded bytes
were produced, and also bounds the bytes produced by intermediate layers (a middle layer can
inflate to nothing but empty blocks that cost CPU). Memory stays ``cap`` plus a few pieces,
whatever the server sends.

Codings: ``gzip``/``x-gzip``, ``deflate`` (zlib-wrapped, or raw as some servers send it) and
``identity``, the ones the engine's ``Accept-Encoding`` asks for. A response with a coding we
do not decode (``br``, ``zstd``, unasked), or with more than :data:`MAX_CODINGS` layers,
keeps its raw bytes (capped), as httpx does for codings it cannot decode.
"""

from __future__ import annotations

import zlib
from typing import Protocol

from probe.host import httpstack

httpstack.load()  # before httpx and httpcore: without the parts probe never runs

import httpx

__all__ = ["MAX_CODINGS", "PIECE", "SUPPORTED_CODINGS", "BodyDecoder"]

#: Largest piece any layer produces at once.
PIECE = 64 * 1024
#: More content codings than this are not decoded (no real server stacks them).
MAX_CODINGS = 4
#: Bytes all intermediate layers together may produce, beyond ``cap``: the work bound.
_WORK_SLACK = 8 * 1024 * 1024


class _Layer(Protocol):
    def decompress(self, data: bytes, max_length: int) -> bytes: ...

    @property
    def unconsumed_tail(self) -> bytes: ...

    @property
    def eof(self) -> bool: ...


class _Zlib:
    """gzip or deflate; deflate falls back to raw DEFLATE on the first error (as httpx does)."""

    def __init__(self, coding: str) -> None:
        self._deflate = coding == "deflate"
        self._first = True
        self._obj = zlib.decompressobj(zlib.MAX_WBITS if self._deflate else 16 + zlib.MAX_WBITS)

    def decompress(self, data: bytes, max_length: int) -> bytes:
        first, self._first = self._first, False
        try:
            return self._obj.decompress(data, max_length)
        except zlib.error as exc:
            if first and self._deflate:
                self._obj = zlib.decompressobj(-zlib.MAX_WBITS)
                return self.decompress(data, max_length)
            raise httpx.DecodingError(f"content decoding failed: {exc}") from exc

    @property
    def unconsumed_tail(self) -> bytes:
        return self._obj.unconsumed_tail

    @property
    def eof(self) -> bool:
        return self._obj.eof


#: The content codings :class:`BodyDecoder` decodes (what the engine's Accept-Encoding asks).
SUPPORTED_CODINGS = frozenset({"gzip", "x-gzip", "deflate", "identity"})


def _layer(coding: str) -> _Layer | None:
    if coding in ("gzip", "x-gzip", "deflate"):
        return _Zlib("deflate" if coding == "deflate" else "gzip")
    return None


class BodyDecoder:
    """Decodes a body given as raw chunks; at most ``cap`` decoded bytes ever exist.

    ``feed(raw)`` returns the decoded pieces the chunk produced; once ``truncated`` is True
    the caller stops reading: the decoded body is longer than ``cap`` (one byte beyond it was
    seen), or the intermediate layers hit their work bound. ``decoded`` is False when the
    body is kept as received (unknown coding, or too many layers).
    """

    def __init__(self, content_encoding: str, cap: int) -> None:
        codings = [c.strip().lower() for c in content_encoding.split(",")]
        codings = [c for c in codings if c and c != "identity"]
        layers = [_layer(c) for c in reversed(codings)]  # the last coding applied comes off first
        self.decoded = len(codings) <= MAX_CODINGS and all(x is not None for x in layers)
        self._layers: list[_Layer] = [x for x in layers if x is not None] if self.decoded else []
        self.cap = max(0, cap)
        self.size = 0  # decoded bytes produced
        self.work = 0  # bytes produced by intermediate layers
        self._work_cap = self.cap + _WORK_SLACK
        self.truncated = False

    def _emit(self, data: bytes, out: list[bytes]) -> None:
        room = self.cap - self.size
        if len(data) > room:
            # One byte beyond the cap proves the body is longer: stop here.
            self.truncated = True
            data = data[:room]
        if data:
            out.append(data)
            self.size += len(data)

    def _push(self, i: int, data: bytes, out: list[bytes]) -> None:
        if i == len(self._layers):
            self._emit(data, out)
            return
        layer = self._layers[i]
        last = i == len(self._layers) - 1
        while not self.truncated and not layer.eof:
            # The last layer never produces more than the room left (+1 to notice truncation).
            limit = min(PIECE, self.cap - self.size + 1) if last else PIECE
            piece = layer.decompress(data, limit)
            data = layer.unconsumed_tail
            if not last:
                self.work += len(piece)
                if self.work > self._work_cap:
                    self.truncated = True
                    return
            if piece:
                self._push(i + 1, piece, out)
            if not data and len(piece) < limit:
                break  # input used up and no output pending (a full piece may leave some)

    def feed(self, raw: bytes) -> list[bytes]:
        """Decode one raw chunk; the decoded pieces (nothing once ``truncated``)."""
        out: list[bytes] = []
        if raw and not self.truncated:
            self._push(0, raw, out)
        return out
