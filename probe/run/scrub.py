"""Remove the probe's own addresses from everything stored, as OONI does ("[scrubbed]").

A measured site may echo the client's address (in its body, a header, a title, a redirect's
Location, a whoami name's DNS answer), and so may an error message. The vantage point's public
address (learned with STUN, :mod:`probe.measure.identity`) and its local source addresses are replaced
after a measurement is classified (the classifier needs real addresses) and before it is stored,
in every string and byte string of the measurement, its control and its verdict.

Matching is on whole addresses: ``10.1.2.3`` is not scrubbed out of ``10.1.2.34``. IPv6
addresses are matched in their compressed and exploded forms, case-insensitively. Inside DNS
wire data (``DNSReply.raw``) the address's packed bytes are zeroed too, so the stored reply
stays parseable. Loopback and unspecified addresses identify nobody and are left alone.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import re
from collections.abc import Iterable
from typing import Any

import msgspec

__all__ = ["SCRUBBED", "Scrubber"]

SCRUBBED = "[scrubbed]"


#: Field names of each dataclass met (None: not a dataclass), so that a walk does not call
#: dataclasses.fields() on every record of every measurement.
_FIELDS: dict[type, tuple[str, ...] | None] = {}


def _has_letter(text: str) -> bool:
    return any(c.isalpha() for c in text)


def _forms(ip: str) -> list[str]:
    addr = ipaddress.ip_address(ip)
    if addr.version == 4:
        return [str(addr)]
    return sorted({str(addr), addr.exploded}, key=len, reverse=True)


class Scrubber:
    """Replaces a fixed set of addresses in strings, bytes and records (frozen dataclasses)."""

    def __init__(self, addresses: Iterable[str]) -> None:
        keep: list[ipaddress.IPv4Address | ipaddress.IPv6Address] = []
        for text in addresses:
            try:
                addr = ipaddress.ip_address(text)
            except ValueError:
                continue
            if addr.is_loopback or addr.is_unspecified:
                continue
            keep.append(addr)
        self.addresses = frozenset(str(a) for a in keep)
        forms = sorted({f for a in keep for f in _forms(str(a))}, key=len, reverse=True)
        needles = [f.lower() for f in forms]
        # Forms without letters (IPv4, and IPv6 written with digits only) are found in bytes
        # without lower-casing them first: the common case costs no copy of a body or a chain.
        self._bneedles = tuple(n.encode() for n in needles if not _has_letter(n))
        self._bcased = tuple(n.encode() for n in needles if _has_letter(n))
        self._packed = tuple(a.packed for a in keep)
        if forms:
            # Not inside a longer address: no digit or dot around an IPv4 address; no hex digit
            # around an IPv6 one (a colon before is allowed: "tcp/refused:2001:db8::1").
            v4 = "|".join(re.escape(f) for f in forms if ":" not in f)
            v6 = "|".join(re.escape(f) for f in forms if ":" in f)
            parts = []
            if v4:
                parts.append(rf"(?<![0-9.])(?:{v4})(?![0-9]|\.[0-9])")
            if v6:
                parts.append(rf"(?<![0-9A-Fa-f])(?:{v6})(?![0-9A-Fa-f]|:[0-9A-Fa-f])")
            pattern = "|".join(parts)
            self._re: re.Pattern[str] | None = re.compile(pattern, re.IGNORECASE)
            self._bre: re.Pattern[bytes] | None = re.compile(pattern.encode(), re.IGNORECASE)
        else:
            self._re = self._bre = None

    def __bool__(self) -> bool:
        return bool(self.addresses)

    def text(self, value: str) -> str:
        """``value`` with every address replaced by ``[scrubbed]``."""
        if self._re is None or self._re.search(value) is None:
            return value  # the common case: one search in C over a short string, no copy
        return self._re.sub(SCRUBBED, value)

    def data(self, value: bytes, *, wire: bool = False) -> bytes:
        """``value`` with textual addresses replaced; with ``wire``, packed ones zeroed too."""
        if self._bre is None:
            return value
        if any(n in value for n in self._bneedles) or (
            self._bcased and any(n in value.lower() for n in self._bcased)
        ):
            value = self._bre.sub(SCRUBBED.encode(), value)
        if wire:
            for packed in self._packed:
                if packed in value:
                    value = value.replace(packed, b"\0" * len(packed))
        return value

    def record(self, obj: Any) -> Any:
        """``obj`` (a dataclass, tuple, list, dict, str, bytes or scalar) scrubbed.

        Returns the very same object when nothing in it had to change, so clean measurements
        cost one search and no copies.
        """
        if not self or not self._may_hold(obj):
            return obj
        return self._walk(obj, "")

    def _may_hold(self, obj: Any) -> bool:
        """False when ``obj`` provably holds none of the addresses, in any form.

        The record is packed once with msgpack (in C; strings as UTF-8, bytes as they are) and
        the packed text is searched for every textual form and every packed address. The walk
        only runs when one occurs: every address it would replace is in those bytes, so a clean
        measurement (nearly all of them) costs one encoding instead of a walk of its hundreds
        of fields. Anything msgpack cannot encode is walked.
        """
        try:
            blob = msgspec.msgpack.encode(obj)
        except (TypeError, ValueError, OverflowError):
            return True
        if any(n in blob for n in self._bneedles) or any(p in blob for p in self._packed):
            return True
        return bool(self._bcased) and any(n in blob.lower() for n in self._bcased)

    def _walk(self, obj: Any, name: str) -> Any:
        # Exact types first (a measurement is hundreds of strings, tuples and records): a dict
        # lookup and identity tests instead of the isinstance ladder below.
        tp = type(obj)
        if tp is str:
            return self.text(obj)
        if tp is bytes:
            return self.data(obj, wire=name == "raw")
        if obj is None or tp is int or tp is float or tp is bool:
            return obj
        if tp is tuple:
            items = [self._walk(v, name) for v in obj]
            if all(a is b for a, b in zip(items, obj, strict=True)):
                return obj
            return tuple(items)
        names = _FIELDS.get(tp)
        if names is None:
            names = _FIELDS[tp] = (
                tuple(f.name for f in dataclasses.fields(obj))
                if dataclasses.is_dataclass(obj) and not isinstance(obj, type)
                else None
            )
        if names is not None:
            changes: dict[str, Any] = {}
            for field_name in names:
                old = getattr(obj, field_name)
                new = self._walk(old, field_name)
                if new is not old:
                    changes[field_name] = new
            return dataclasses.replace(obj, **changes) if changes else obj
        return self._walk_other(obj, name)

    def _walk_other(self, obj: Any, name: str) -> Any:
        if isinstance(obj, str):
            return self.text(obj)
        if isinstance(obj, bytes | bytearray):
            return self.data(bytes(obj), wire=name == "raw")
        if obj is None or isinstance(obj, int | float | bool):
            return obj
        if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
            changes: dict[str, Any] = {}
            for f in dataclasses.fields(obj):
                old = getattr(obj, f.name)
                new = self._walk(old, f.name)
                if new is not old:
                    changes[f.name] = new
            return dataclasses.replace(obj, **changes) if changes else obj
        if isinstance(obj, tuple | list):
            items = [self._walk(v, name) for v in obj]
            if all(a is b for a, b in zip(items, obj, strict=True)):
                return obj
            return type(obj)(items) if isinstance(obj, list) else tuple(items)
        if isinstance(obj, dict):
            out = {self._walk(k, name): self._walk(v, name) for k, v in obj.items()}
            if all(k in obj and out[k] is obj[k] for k in out) and len(out) == len(obj):
                return obj
            return out
        if isinstance(obj, frozenset | set):
            items2 = {self._walk(v, name) for v in obj}
            return obj if items2 == obj else type(obj)(items2)
        return obj
