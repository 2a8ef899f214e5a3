"""Datasette plugin loaded by `probe explore`: SQL functions that make stored data readable.

- ``body_text(body)``: an ``http_bodies.body`` (zlib-compressed) as text, cut at 64 KiB,
  decompressed with a bound (a hostile body cannot make it allocate more than that);
- ``reason_words(code)``: a reason code (``tls/reset:192.0.2.7``) in plain words;
- ``observations_json(data)``: the packed ``observations.data`` as JSON text.

The functions are the store's (probe/store/explore.py); this file only hands them to Datasette.
"""

from __future__ import annotations

from datasette import hookimpl

from probe.judge.explain import explain
from probe.store.explore import SQLiteConnection, register_functions


def reason_words(code: str | None) -> str | None:
    """A reason code in plain words (probe/judge/explain.py)."""
    return None if code is None else explain(str(code))


@hookimpl  # type: ignore[untyped-decorator]
def prepare_connection(conn: SQLiteConnection) -> None:
    """Register the functions on every connection Datasette opens."""
    register_functions(conn, reason_words)
