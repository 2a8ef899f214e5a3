"""The ``observations.data`` column: a measurement's observations, compact (schema version 11).

What is stored is the JSON that :mod:`probe.store.rows` makes of a Measurement (its controls
included, bodies and certificate chains by reference), compressed: one format byte, then a zlib
stream compressed against a preset dictionary (``probe/data/observations-dict-<N>.json``, made
from probe's record types by tools/build_observations_dict.py, never changed once used). Every
format stays readable; the newest is written. JSON,
not a binary encoding, because shortest-round-trip float text and repeated key names compress
better than msgpack's fixed 9-byte floats (measured: 795 against 933 bytes on the research
bench), and because the decompressed bytes are the JSON researchers read (``observations_json``).

zlib keeps an Adler-32 of the content and of the dictionary in every stream: a damaged row, or
one packed against another dictionary, fails to decode instead of decoding to something else.
Decompression is bounded (:data:`MAX_JSON`), so a hostile database cannot make a reader
allocate more.

A database written before version 11 held the JSON text in this column (and the controls'
JSON in ``controls.data``); migration 11 packs them (:func:`pack_legacy`).
"""

from __future__ import annotations

import hashlib
import json
import zlib
from functools import cache
from typing import Any

import msgspec

from probe.core.errors import ProbeError
from probe.host.data import DATA_DIR

__all__ = ["MAX_JSON", "ObservationsError", "drop_empty_steps", "json_bytes", "json_text", "pack",
           "pack_legacy", "unpack"]

#: The format written: 2 = zlib against observations-dict-2.json (the record types with the QUIC
#: and ECH fields; 1: before them, still read).
FORMAT = 2
# The dictionary of each format, and its SHA-256: a dictionary file that changed would make
# every stored row of its format unreadable, so it is checked before use.
_DICTS = {1: ("observations-dict-1.json",
              "df8adafe1885c538c8ab2c57c9299556160c0d323332741e263d3be27226d488"),
          2: ("observations-dict-2.json",
              "7ab8c3e2e26c661e319783fc42619858393669a90f96d19b87a22268c8958196")}
# Level 6: 795 bytes a measurement on the research bench in 40-60 us (format 1; 798 with format
# 2 and the records' QUIC and ECH fields); level 9 saves 5 bytes for up to twice the time, level
# 1 costs 240 bytes more.
_LEVEL = 6
#: The most bytes one measurement's JSON may decompress to (a few KB is usual; packets and
#: long redirect chains make tens of KB).
MAX_JSON = 64 << 20

_encode = msgspec.json.encode
_decode = msgspec.json.decode

# Fields of steps a measurement takes only when asked or when needed (the QUIC and ECH tests,
# --dns-probe, the decoys after a failure, --capture): the stored JSON leaves them out when
# they are empty (the codec gives a missing field its default on the way back), so most
# measurements pay nothing for them. Their key names cost 39 bytes a measurement with format 1's
# dictionary, which was made before the QUIC and ECH fields; at about 810 bytes a measurement,
# a few bytes decide whether ten fit in an 8 KiB page or nine.
_STEPS_MEASUREMENT = ("captured", "packets", "protocols")
_STEPS_HOP = ("dns_probe", "decoy_tls", "decoy_http", "quic", "decoy_quic", "ech")
_STEPS_CONTROL = ("quic", "http3_status", "http3_failure", "ech")


class ObservationsError(ProbeError, ValueError):
    """A stored observations value that cannot be read (damaged, unknown format, too large)."""


@cache
def _dictionary(fmt: int) -> bytes:
    name, digest = _DICTS[fmt]
    data = (DATA_DIR / name).read_bytes()
    if hashlib.sha256(data).hexdigest() != digest:
        raise ObservationsError(f"{name}: not the dictionary of format {fmt} (changed?)")
    return data


def drop_empty_steps(data: dict[str, Any]) -> dict[str, Any]:
    """``data`` (a measurement's, as :func:`pack` takes it) without the empty fields of the steps
    it did not take: ``captured`` (false), ``packets``, ``protocols``; a hop's ``dns_probe``,
    ``decoy_tls``, ``decoy_http``, ``quic``, ``decoy_quic``, ``ech``; its control's ``quic``,
    ``http3_status``, ``http3_failure``, ``ech``. Changed in place, and returned."""

    def drop(d: dict[str, Any], keys: tuple[str, ...]) -> None:
        for k in keys:
            if k in d and (d[k] is None or d[k] is False
                           or (isinstance(d[k], (list, tuple)) and not d[k])):
                del d[k]

    drop(data, _STEPS_MEASUREMENT)
    for hd in data.get("hops", ()):
        if isinstance(hd, dict):
            drop(hd, _STEPS_HOP)
            if isinstance(hd.get("control"), dict):
                drop(hd["control"], _STEPS_CONTROL)
    return data


def pack(data: Any) -> bytes:
    """The stored form of a measurement's data (:func:`probe.store.rows.flatten` makes it)."""
    c = zlib.compressobj(_LEVEL, zlib.DEFLATED, zlib.MAX_WBITS, 9, zlib.Z_DEFAULT_STRATEGY,
                         _dictionary(FORMAT))
    return bytes((FORMAT,)) + c.compress(_encode(data)) + c.flush()


def _json(blob: bytes | str) -> bytes | str:
    if isinstance(blob, str):
        raise ObservationsError("JSON text where packed observations belong (schema < 11?)")
    if not blob or blob[0] not in _DICTS:
        fmt = blob[0] if blob else "none"
        raise ObservationsError(f"unknown observations format {fmt} (written by a newer probe?)")
    try:
        d = zlib.decompressobj(zlib.MAX_WBITS, _dictionary(blob[0]))
        out = d.decompress(memoryview(blob)[1:], MAX_JSON)
        if d.unconsumed_tail:
            raise ObservationsError(f"observations larger than {MAX_JSON} bytes")
        if not d.eof:
            raise ObservationsError("observations cut short")
    except zlib.error as exc:
        raise ObservationsError(f"damaged observations: {exc}") from None
    return out


def json_bytes(blob: bytes) -> bytes:
    """A stored observations value's JSON, unparsed (what :func:`unpack` parses): for a reader
    that decodes it into records directly (``probe merge``'s check of every row)."""
    raw = _json(blob)
    return raw if isinstance(raw, bytes) else raw.encode()


def unpack(blob: bytes) -> Any:
    """A stored observations value back to its data (what :func:`pack` was given)."""
    try:
        return _decode(_json(blob))
    except msgspec.DecodeError as exc:
        raise ObservationsError(f"damaged observations: {exc}") from None


def json_text(blob: bytes | str | None) -> str | None:
    """The SQL function ``observations_json(data)``: the stored observations as JSON text, for
    ``json_extract`` and ``json_each`` (None for NULL or what cannot be read)."""
    if blob is None:
        return None
    try:
        raw = _json(blob)
    except ObservationsError:
        return None
    return raw.decode("utf-8") if isinstance(raw, bytes) else raw


def pack_legacy(observations: str, controls: str | None) -> bytes:
    """Migration 11: an observations JSON text of schema < 11 and its controls (a JSON array of
    ``[hop, control JSON]`` pairs, or NULL) as one packed value, controls back in their hops."""
    data = json.loads(observations)
    by_hop = {int(h): c for h, c in json.loads(controls)} if controls else {}
    for hd in data.get("hops", ()):
        hd["control"] = by_hop.get(hd.get("index"))
    return pack(drop_empty_steps(data))
