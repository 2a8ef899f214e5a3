"""Globally unique ids (UUIDv7, RFC 9562) for vantage points, runs and measurements.

The integer keys of a database are local: two databases both have a run 1. The ``uid`` columns
name the same row in every database it is merged into or exported to. UUIDv7 puts the Unix
time in milliseconds in the first 48 bits, so uids sort by time and a B-tree index on them grows
at its end (cheap to insert, like the integer keys), and 74 random bits make two probes
collide with negligible probability. Python's :mod:`uuid` has no version 7 before 3.14.
"""

from __future__ import annotations

import hashlib
import os
import re
import time

__all__ = ["UID_RE", "sql_uuid7", "uuid7"]

#: The text form of a uid (lower-case hex, version 7, RFC 9562 variant).
UID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


def uuid7(unix_ms: int | None = None, *, seed: bytes | None = None) -> str:
    """A new UUIDv7 as text, its time part ``unix_ms`` (default: now).

    Measurements pass their own start time, so a measurement's uid says when it was taken.
    ``seed`` makes the random part a digest of it: rows named outside probe (an endpoint of an
    imported OONI measurement) get the same uid in every database that imports them, so that
    ``probe merge`` sees one row, not two.
    """
    ms = int(time.time() * 1000) if unix_ms is None else max(0, int(unix_ms))
    noise = os.urandom(10) if seed is None else hashlib.sha256(seed).digest()[:10]
    rand = int.from_bytes(noise, "big")
    value = (ms & 0xFFFF_FFFF_FFFF) << 80 | 0x7 << 76 | (rand >> 68 & 0xFFF) << 64
    value |= 0b10 << 62 | (rand & 0x3FFF_FFFF_FFFF_FFFF)
    h = f"{value:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def sql_uuid7(ms_expr: str) -> str:
    """An SQL expression making a UUIDv7 from the integer expression ``ms_expr`` (Unix ms).

    Used by the migration that backfills uids of rows written before uids existed: it runs
    as plain SQL, one new random uid per row.
    """
    t = f"printf('%012x', {ms_expr})"
    return (
        f"lower(substr({t}, 1, 8) || '-' || substr({t}, 9, 4) || '-7' || "
        "substr(hex(randomblob(2)), 2, 3) || '-' || substr('89ab', 1 + (abs(random()) % 4), 1) || "
        "substr(hex(randomblob(2)), 2, 3) || '-' || hex(randomblob(6)))"
    )
