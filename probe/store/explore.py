"""What `probe explore` serves beside the tables (probe/research/explore.py): canned queries for
the usual research questions, SQL functions that make stored data readable, and the database's
own tables, views and columns, read with sqlite-utils.

- :data:`CANNED_QUERIES`: name -> (title, description, SQL), Datasette's canned queries;
- :func:`body_text` and :func:`register_functions`: ``body_text(body)`` (an ``http_bodies.body``,
  zlib-compressed as the store writes it, as text cut at 64 KiB) and ``reason_words(code)`` on a
  connection (Datasette's, through the plugin in probe/research/datasette_plugins/);
- :func:`relations`: every table and view with its columns (sqlite-utils' introspection: the
  server imports sqlite-utils anyway, Datasette is built on it).
"""

from __future__ import annotations

import sqlite3
import zlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Literal, NamedTuple

from probe.core.model import INTERFERENCE_VERDICTS
from probe.store import observations

if TYPE_CHECKING:
    from probe.store.database import Store

__all__ = ["CANNED_QUERIES", "TEXT_LIMIT", "Relation", "SQLiteConnection", "body_text",
           "register_functions", "relations"]

#: The connection Datasette hands its ``prepare_connection`` hook.
SQLiteConnection = sqlite3.Connection

_INTERFERENCE = "(" + ", ".join(f"'{v}'" for v in INTERFERENCE_VERDICTS) + ")"

#: name -> (title, description, SQL). Named parameters become form fields in Datasette;
#: an empty value means "any" where the query says so.
CANNED_QUERIES: dict[str, tuple[str, str, str]] = {
    "blocked_now": (
        "What is blocked now",
        "Each vantage point's latest verdict of interference (blocked, reset, hijacked, throttled) "
        "per URL, "
        "with the decisive reason in words. Leave vantage empty for every vantage point.",
        "SELECT b.vantage, b.url, b.category, b.verdict, b.stage, "
        "reason_words(json_extract(b.reasons, '$[0]')) AS why, b.reasons, b.measured_at, "
        "b.measurement_id FROM blocked AS b "
        "WHERE (:vantage = '' OR b.vantage = :vantage) ORDER BY b.vantage, b.verdict, b.url",
    ),
    "blocked_at_a_not_b": (
        "Blocked at A but not at B",
        "URLs whose latest verdict is interference at vantage point A and not at vantage point B "
        "(measured at both).",
        "SELECT a.url, a.verdict AS verdict_at_a, a.stage AS stage_at_a, a.reasons AS reasons_at_a, "
        "b.verdict AS verdict_at_b, a.measured_at AS measured_at_a, b.measured_at AS measured_at_b "
        "FROM latest_verdicts AS a JOIN latest_verdicts AS b ON b.url = a.url AND b.vantage = :b "
        f"WHERE a.vantage = :a AND a.verdict IN {_INTERFERENCE} "
        f"AND b.verdict NOT IN {_INTERFERENCE} ORDER BY a.url",
    ),
    "when_blocked": (
        "When did a URL become blocked",
        "Every change of a URL's final verdict at each vantage point (the first row per vantage "
        "point is its first measurement). Give the URL as measured, e.g. https://example.org/.",
        "WITH h AS (SELECT v.name AS vantage, m.measured_at, m.verdict, m.stage, m.reasons, "
        "m.run_id, m.id AS measurement_id, lag(m.verdict) OVER "
        "(PARTITION BY m.vantage_id ORDER BY m.measured_at, m.id) AS previous "
        "FROM measurements AS m JOIN vantage_points AS v ON v.id = m.vantage_id "
        "WHERE m.final = 1 AND m.url = :url) "
        "SELECT vantage, measured_at, previous, verdict, stage, reasons, run_id, measurement_id "
        "FROM h WHERE previous IS NULL OR previous != verdict ORDER BY vantage, measured_at",
    ),
    "technique_mix": (
        "Technique mix per vantage point",
        "Latest verdicts of interference per vantage point by verdict and stage (DNS hijack, TCP "
        "or TLS reset, HTTP block page...), with each one's share of the vantage point's "
        "interference.",
        "SELECT vantage, verdict, stage, count(*) AS urls, round(100.0 * count(*) / sum(count(*)) "
        "OVER (PARTITION BY vantage), 1) AS pct FROM latest_verdicts "
        f"WHERE verdict IN {_INTERFERENCE} GROUP BY vantage, verdict, stage "
        "ORDER BY vantage, urls DESC",
    ),
    "block_pages": (
        "Block pages served",
        "Bodies of responses judged blocked at the HTTP stage, most common first, readable.",
        "SELECT h.body_sha256, h.title, h.status, count(*) AS n, count(DISTINCT m.domain) AS domains, "
        "(SELECT body_text(b.body) FROM http_bodies AS b WHERE b.sha256 = h.body_sha256) AS body "
        "FROM measurements AS m JOIN http_requests AS h ON h.measurement_id = m.id AND h.hop = m.hop "
        "WHERE m.final = 1 AND m.verdict = 'blocked' AND m.stage = 'http' "
        "GROUP BY h.body_sha256 ORDER BY n DESC LIMIT 100",
    ),
    "bodies": (
        "Response bodies, readable",
        "Stored HTTP bodies decompressed to text (cut at 64 KiB). Leave sha256 empty to list them.",
        "SELECT sha256, length, body_text(body) AS text FROM http_bodies "
        "WHERE (:sha256 = '' OR sha256 = :sha256) LIMIT 100",
    ),
}

#: The most text ``body_text`` returns (and so decompresses), in bytes.
TEXT_LIMIT = 64 * 1024


def body_text(body: bytes | None) -> str | None:
    """A stored body (zlib-compressed) as text: UTF-8, undecodable bytes replaced, at most 64
    KiB, decompressed with that bound (a hostile body cannot make it allocate more)."""
    if body is None:
        return None
    try:
        d = zlib.decompressobj()
        raw = d.decompress(bytes(body), TEXT_LIMIT)
    except zlib.error:
        return None
    text = raw.decode("utf-8", "replace")
    return text + ("\n[... cut at 64 KiB]" if d.unconsumed_tail else "")


def register_functions(conn: SQLiteConnection, reason_words: Callable[[str | None], str | None]) -> None:
    """Register ``body_text(body)``, ``observations_json(data)`` (the packed observations as
    JSON text) and ``reason_words(code)`` (a reason code in words: given by the caller, the store
    does not judge) on ``conn``."""
    conn.create_function("body_text", 1, body_text, deterministic=True)
    conn.create_function("reason_words", 1, reason_words, deterministic=True)
    conn.create_function("observations_json", 1, observations.json_text, deterministic=True)


class Relation(NamedTuple):
    """A table or view of the database and its columns, in order."""

    name: str
    kind: Literal["table", "view"]
    columns: tuple[str, ...]


def relations(store: Store) -> list[Relation]:
    """Every table and view of the database (SQLite's own ``sqlite_*`` tables left out), by
    kind then name, with its columns."""
    db = store.db
    tables = [Relation(t.name, "table", tuple(t.columns_dict)) for t in db.tables]
    views = [Relation(v.name, "view", tuple(v.columns_dict)) for v in db.views]
    return sorted((r for r in (*tables, *views) if not r.name.startswith("sqlite_")),
                  key=lambda r: (r.kind, r.name))  # fmt: skip
