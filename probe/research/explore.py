"""`probe explore`: Datasette on a results database, described and ready for the usual questions.

- **Descriptions** of every table, view and column come from docs/schema.md, parsed here at
  start-up (one source: the page people read is what Datasette shows). The page is found in a
  source checkout (``docs/schema.md`` beside the package) or where the package installs it
  (``share/probe/docs/schema.md`` under the environment's prefix).
- **Canned queries** for the usual research questions (:data:`CANNED_QUERIES`).
- **Readable bodies**: a Datasette plugin (``probe/research/datasette_plugins/probe_sql.py``) registers
  the SQL functions ``body_text(body)`` (a zlib-compressed body as text, cut at 64 KiB) and
  ``reason_words(code)`` (a reason code in plain words, probe/judge/explain.py) on every connection.

Datasette is an optional extra: ``pip install 'probe[explore]'``.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

from probe.host.data import SOURCE_ROOT

__all__ = ["CANNED_QUERIES", "PLUGINS_DIR", "metadata", "parse_schema_doc", "schema_doc_path"]

PLUGINS_DIR = Path(__file__).resolve().parent / "datasette_plugins"

_INTERFERENCE = "('blocked', 'reset', 'hijacked', 'throttled')"  # model.INTERFERENCE_VERDICTS

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


def schema_doc_path() -> Path | None:
    """docs/schema.md of a source checkout, or the copy installed with the package."""
    for p in (SOURCE_ROOT / "docs" / "schema.md",
              Path(sys.prefix) / "share" / "probe" / "docs" / "schema.md"):
        if p.is_file():
            return p
    return None


_HEADING = re.compile(r"^### `([a-z_]+)`: (.+)$")
_CODE = re.compile(r"`([^`]+)`")
_LINK = re.compile(r"\[([^\]]+)\]\([^)]+\)")


def _plain(text: str) -> str:
    text = _LINK.sub(r"\1", text)
    return _CODE.sub(r"\1", text).replace("**", "").replace("→", "->").strip()


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def parse_schema_doc(text: str) -> dict[str, dict[str, Any]]:
    """Table and view descriptions, and column descriptions, from docs/schema.md.

    Returns ``{name: {"description": str, "columns": {column: str}}}``. A table is a ``###
    `name`: what`` heading with the paragraph under it; its columns are the rows of the
    ``| column | type | meaning |`` table that follows (a row may name several columns; "as
    above" takes the meaning given to that column in an earlier table). Views come from the
    rows of the ``## Views`` table.
    """
    out: dict[str, dict[str, Any]] = {}
    paragraphs: dict[str, list[str]] = {}
    seen: dict[str, str] = {}  # column -> the latest meaning given, for "as above"
    current: str | None = None
    section = ""
    for line in text.splitlines():
        if line.startswith("## "):
            section, current = line[3:].strip(), None
            continue
        m = _HEADING.match(line)
        if m:
            current = m.group(1)
            out[current] = {"description": _plain(m.group(2)), "columns": {}}
            paragraphs[current] = []
            continue
        if section == "Views" and line.startswith("| `"):
            cells = _cells(line)
            names = _CODE.findall(cells[0])
            if names and len(cells) > 1:
                out[names[0]] = {"description": _plain(cells[1]), "columns": {}}
            continue
        if current is None:
            continue
        if line.startswith("|"):
            cells = _cells(line)
            if len(cells) < 3 or cells[0] == "column" or set(cells[0]) <= set("-: "):
                continue
            meaning = _plain(cells[2])
            for name in _CODE.findall(cells[0]):
                if meaning and not meaning.startswith("as above"):
                    seen[name] = meaning
                    out[current]["columns"][name] = meaning
                elif name in seen:
                    out[current]["columns"][name] = seen[name]
        elif line.strip() and not out[current]["columns"]:
            paragraphs[current].append(line.strip())  # prose under the heading
    for name, lines in paragraphs.items():
        if lines:
            out[name]["description"] += ". " + _plain(" ".join(lines))
    return out


def metadata(db_name: str, schema_doc: Path | None = None) -> dict[str, Any]:
    """Datasette metadata for a database called ``db_name`` (its file name without .db)."""
    doc = schema_doc or schema_doc_path()
    tables = parse_schema_doc(doc.read_text(encoding="utf-8")) if doc else {}
    return {
        "title": "probe results",
        "description": "Censorship measurements by probe. Tables and columns are described from "
                       "docs/schema.md; canned queries answer the usual questions; "
                       "body_text(body) reads a compressed body, reason_words(code) explains a "
                       "reason.",
        "databases": {
            db_name: {
                "tables": {name: {"description": t["description"],
                                  **({"columns": t["columns"]} if t["columns"] else {})}
                           for name, t in tables.items()},
                "queries": {name: {"title": title, "description": desc, "sql": sql}
                            for name, (title, desc, sql) in CANNED_QUERIES.items()},
            }
        },
    }
