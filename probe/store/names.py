"""Vantage point names in a database that holds several probes' data (``probe merge``).

A name is what people type (``--vantage home``), a uid is what identifies a probe. Two probes
may share a name (each kept the default, or two volunteers chose ``home``). When they meet in
one database, *every* vantage point of that name is called ``NAME~XXXXXXXX`` (the last eight
hex digits of its uid), the one already there included. So a name never depends on the order
in which databases were merged: two merges of the same files name each probe alike, and a
plain name never silently comes to mean another probe (it disappears, and asking for it
names the candidates).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from probe.store.connection import named_rows

if TYPE_CHECKING:
    import sqlite3

__all__ = ["LIKE_SUFFIXED", "base_name", "claim_name", "suffixed", "suffixed_like"]

_SEP = "~"


def suffixed(name: str, uid: str) -> str:
    """``name`` told apart by its uid: ``home~4d5e6f70``."""
    return f"{name}{_SEP}{uid[-8:]}"


def base_name(name: str, uid: str) -> str:
    """The name a vantage point was given, without the suffix :func:`suffixed` added."""
    tail = _SEP + uid[-8:]
    return name[: -len(tail)] if name.endswith(tail) and len(name) > len(tail) else name


#: SQL condition on ``name``, with :func:`suffixed_like` as its parameter.
LIKE_SUFFIXED = "name LIKE ? ESCAPE '\\'"


def suffixed_like(base: str) -> str:
    """A LIKE pattern (for :data:`LIKE_SUFFIXED`) of the names ``base~...``."""
    return base.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + _SEP + "%"


def claim_name(conn: sqlite3.Connection, name: str, uid: str) -> tuple[str, list[tuple[str, str]]]:
    """The name under which the vantage point (``name``, ``uid``) enters the ``main`` database.

    Returns the name and the renames of vantage points already there, ``(old, new)``, which
    the caller's transaction has applied. When another probe uses the same base name, both
    carry their suffix; otherwise the plain name is kept.
    """
    base = base_name(name, uid)
    rows = named_rows(conn, "SELECT id, name, uid FROM main.vantage_points "
                            f"WHERE (name = ? OR {LIKE_SUFFIXED}) AND uid != ?",
                      (base, suffixed_like(base), uid))
    others = [(int(r["id"]), str(r["name"]), str(r["uid"])) for r in rows
              if base_name(str(r["name"]), str(r["uid"])) == base]
    if not others:
        return base, []
    renames: list[tuple[str, str]] = []
    for vid, old, other_uid in others:
        new = suffixed(base, other_uid)
        if old != new:
            conn.execute("UPDATE main.vantage_points SET name = ? WHERE id = ?", (new, vid))
            renames.append((old, new))
    return suffixed(base, uid), renames
