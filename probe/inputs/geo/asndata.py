"""A compact, memory-mapped IP -> (ASN, country) table: the format probe ships and writes.

probe ships one such file (``probe/data/ip-asn.bin``, derived from the IPFire Location database:
see probe/data/NOTICE-ip-asn.txt) so that IP-to-ASN data is there on a fresh install, offline;
``probe geo update`` writes the same format from a downloaded ip2asn TSV.

Layout (little-endian)::

    magic  b"PRBASN1\\n"
    u32    length of the JSON metadata, then the metadata (source, license, created, ...)
    u32 x 6  counts: n4, n6, n_infos, n_names, names_blob_bytes, reserved (0)
    u32[n4]  IPv4 breakpoints (sorted range starts)
    u32[n4]  info index of each breakpoint (0: unknown)
    u64[n6]  IPv6 breakpoints: the top 64 bits of the start (routing never goes below /64)
    u32[n6]  info index of each breakpoint
    u32[n_infos] ASN of each info;  then 2 * n_infos bytes of country codes ("\\0\\0": unknown)
    u32[n_names] ASNs with a name (sorted); u32[n_names + 1] offsets into the names blob; blob

A breakpoint covers the addresses from its start to the next breakpoint, so no end addresses
are stored; gaps are breakpoints whose info is 0. Lookups bisect the mapped arrays directly
(``memoryview.cast``): opening the file costs no parsing and its pages are shared through the
page cache, so a probe pays in memory only for the pages its lookups touch.
"""

from __future__ import annotations

import array
import bisect
import ipaddress
import json
import mmap
import struct
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

from probe.core.errors import ProbeError
from probe.host.output import replacing

__all__ = ["MAGIC", "PackError", "PackedTable", "pack"]

MAGIC = b"PRBASN1\n"
_COUNTS = struct.Struct("<6I")


class PackError(ProbeError):
    """A file that is not a valid packed table."""


def _align8(n: int) -> int:
    return (n + 7) & ~7


def pack(
    dest: Path,
    ranges: Iterable[tuple[int, int, int, int, str]],
    names: dict[int, str],
    meta: dict[str, Any],
) -> dict[str, int]:
    """Write a packed table from ``(version, start, end, asn, country)`` ranges.

    Ranges may come in any order and may overlap; where they overlap, the later one (in sorted
    order of start, the narrower one for equal starts) wins, which is what flattened routing
    data gives. ``names`` maps ASNs to organisation names. Returns the section counts.
    """
    infos: dict[tuple[int, str], int] = {(0, ""): 0}
    per_family: dict[int, list[tuple[int, int, int]]] = {4: [], 6: []}
    for version, start, end, asn, country in ranges:
        key = (asn, country if len(country) == 2 else "")
        if key == (0, ""):
            continue
        idx = infos.setdefault(key, len(infos))
        per_family[version].append((start, end, idx))

    def breakpoints(items: list[tuple[int, int, int]], top: int) -> list[tuple[int, int]]:
        # Sorted by start, wider first on ties, so that a more specific range overrides its parent.
        items.sort(key=lambda r: (r[0], -r[1]))
        out: list[tuple[int, int]] = []
        stack: list[tuple[int, int]] = []  # (end, idx) of enclosing ranges still open

        def emit(at: int, idx: int) -> None:
            if out and out[-1][0] == at:
                out[-1] = (at, idx)
            elif not out or out[-1][1] != idx:
                out.append((at, idx))

        for start, end, idx in items:
            while stack and stack[-1][0] < start:
                closed_end, _ = stack.pop()
                if closed_end + 1 < start and closed_end + 1 <= top:
                    emit(closed_end + 1, stack[-1][1] if stack and stack[-1][0] > closed_end else 0)
            emit(start, idx)
            stack.append((end, idx))
        while stack:
            closed_end, _ = stack.pop()
            if closed_end + 1 <= top:
                emit(closed_end + 1, stack[-1][1] if stack and stack[-1][0] > closed_end else 0)
        return out

    v4 = breakpoints(per_family[4], (1 << 32) - 1)
    v6_full = breakpoints(per_family[6], (1 << 128) - 1)
    v6: list[tuple[int, int]] = []
    for start, idx in v6_full:
        hi = start >> 64
        if v6 and v6[-1][0] == hi:
            v6[-1] = (hi, idx)  # finer than /64: the last range starting in this /64 wins
        elif not v6 or v6[-1][1] != idx:
            v6.append((hi, idx))

    info_list = sorted(infos.items(), key=lambda kv: kv[1])
    named = sorted((asn, name) for asn, name in names.items() if name)
    blob = bytearray()
    offsets = [0]
    for _, name in named:
        blob += name.encode("utf-8")
        offsets.append(len(blob))

    meta_bytes = json.dumps(meta, sort_keys=True).encode("utf-8")
    head = MAGIC + struct.pack("<I", len(meta_bytes)) + meta_bytes
    head += b"\0" * (_align8(len(head)) - len(head))
    counts = (len(v4), len(v6), len(info_list), len(named), len(blob), 0)

    def arr(code: str, values: Iterable[int]) -> bytes:
        a = array.array(code, values)
        if sys.byteorder != "little":
            a.byteswap()
        return a.tobytes()

    body = bytearray(_COUNTS.pack(*counts))
    body += arr("I", (s for s, _ in v4)) + arr("I", (i for _, i in v4))
    body += b"\0" * (_align8(len(head) + len(body)) - len(head) - len(body))
    body += arr("Q", (s for s, _ in v6)) + arr("I", (i for _, i in v6))
    body += arr("I", (asn for (asn, _), _ in info_list))
    body += b"".join((cc or "").encode("ascii").ljust(2, b"\0")[:2] for (_, cc), _ in info_list)
    body += b"\0" * (_align8(len(head) + len(body)) - len(head) - len(body))
    body += arr("I", (asn for asn, _ in named)) + arr("I", offsets) + bytes(blob)

    with replacing(dest, "wb") as fh:
        fh.write(head + bytes(body))
    return {"ipv4_ranges": len(v4), "ipv6_ranges": len(v6), "infos": len(info_list),
            "names": len(named)}


class PackedTable:
    """A packed table opened with mmap: ``lookup(addr)`` -> (asn, country) or None."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            with path.open("rb") as fh:
                self._map = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
        except (OSError, ValueError) as exc:
            raise PackError(f"{path}: cannot map: {exc}") from None
        try:
            self._parse()
        except (struct.error, ValueError, TypeError) as exc:
            self._map.close()
            raise PackError(f"{path}: not a valid packed ASN table: {exc}") from None

    def _parse(self) -> None:
        m = self._map
        if m[: len(MAGIC)] != MAGIC:
            raise ValueError("bad magic")
        if sys.byteorder != "little":  # pragma: no cover - every platform we target is LE
            raise ValueError("big-endian hosts are not supported")
        (meta_len,) = struct.unpack_from("<I", m, len(MAGIC))
        pos = len(MAGIC) + 4
        self.meta: dict[str, Any] = json.loads(bytes(m[pos : pos + meta_len]))
        pos = _align8(pos + meta_len)
        n4, n6, n_infos, n_names, blob_len, _ = _COUNTS.unpack_from(m, pos)
        pos += _COUNTS.size
        view = memoryview(m)

        def take(code: Literal["I", "Q"], size: int, n: int) -> memoryview[int]:
            nonlocal pos
            part = view[pos : pos + size * n]
            if len(part) != size * n:
                raise ValueError("file is truncated")
            pos += size * n
            return part.cast(code)

        self._v4 = take("I", 4, n4)
        self._v4_idx = take("I", 4, n4)
        pos = _align8(pos)
        self._v6 = take("Q", 8, n6)
        self._v6_idx = take("I", 4, n6)
        self._asns = take("I", 4, n_infos)
        self._cc = bytes(view[pos : pos + 2 * n_infos])
        pos += 2 * n_infos
        pos = _align8(pos)
        self._named = take("I", 4, n_names)
        self._offsets = take("I", 4, n_names + 1)
        self._blob_at = pos
        if pos + blob_len > len(m):
            raise ValueError("file is truncated")
        self.counts = {"ipv4_ranges": n4, "ipv6_ranges": n6, "infos": n_infos, "names": n_names}

    def lookup(self, addr: ipaddress.IPv4Address | ipaddress.IPv6Address) -> tuple[int, str] | None:
        """(asn, country) of ``addr``, or None when the table does not know it."""
        if addr.version == 4:
            starts, idxs, value = self._v4, self._v4_idx, int(addr)
        else:
            mapped = addr.ipv4_mapped
            if mapped is not None:
                return self.lookup(mapped)
            starts, idxs, value = self._v6, self._v6_idx, int(addr) >> 64
        i = bisect.bisect_right(starts, value) - 1
        if i < 0:
            return None
        info = idxs[i]
        if info == 0:
            return None
        cc = self._cc[2 * info : 2 * info + 2].rstrip(b"\0").decode("ascii", "replace")
        return int(self._asns[info]), cc

    def org(self, asn: int) -> str:
        """The organisation name of ``asn`` ("" when unknown)."""
        i = bisect.bisect_left(self._named, asn)
        if i >= len(self._named) or self._named[i] != asn:
            return ""
        a, b = self._offsets[i], self._offsets[i + 1]
        return bytes(self._map[self._blob_at + a : self._blob_at + b]).decode("utf-8", "replace")

    def close(self) -> None:
        """Release the mapping."""
        for name in ("_v4", "_v4_idx", "_v6", "_v6_idx", "_asns", "_named", "_offsets"):
            view = getattr(self, name, None)
            if view is not None:
                view.release()
        try:
            self._map.close()
        except BufferError:  # a view is still exported somewhere: the GC will unmap it
            pass
