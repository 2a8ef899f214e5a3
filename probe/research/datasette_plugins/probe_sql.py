"""Datasette plugin loaded by `probe explore`: SQL functions that make stored data readable.

- ``body_text(body)``: an ``http_bodies.body`` (zlib-compressed) as text, cut at 64 KiB,
  decompressed with a bound (a hostile body cannot make it allocate more than that);
- ``reason_words(code)``: a reason code (``tls/reset:192.0.2.7``) in plain words.
"""

from __future__ import annotations

import sqlite3
import zlib

from datasette import hookimpl

from probe.judge.explain import explain

TEXT_LIMIT = 64 * 1024


def body_text(body: bytes | None) -> str | None:
    """The decompressed body as text (UTF-8, undecodable bytes replaced), at most 64 KiB."""
    if body is None:
        return None
    try:
        d = zlib.decompressobj()
        raw = d.decompress(bytes(body), TEXT_LIMIT)
    except zlib.error:
        return None
    text = raw.decode("utf-8", "replace")
    return text + ("\n[... cut at 64 KiB]" if d.unconsumed_tail else "")


def reason_words(code: str | None) -> str | None:
    """A reason code in plain words (probe/judge/explain.py)."""
    return None if code is None else explain(str(code))


@hookimpl  # type: ignore[untyped-decorator]
def prepare_connection(conn: sqlite3.Connection) -> None:
    """Register the functions on every connection Datasette opens."""
    conn.create_function("body_text", 1, body_text, deterministic=True)
    conn.create_function("reason_words", 1, reason_words, deterministic=True)
