"""`probe explore`: Datasette on a results database, described and ready for the usual questions.

- **Descriptions** of every table, view and column come from docs/schema.md, parsed here at
  start-up (one source: the page people read is what Datasette shows). The page is found in a
  source checkout (``docs/schema.md`` beside the package) or where the package installs it
  (``share/probe/docs/schema.md`` under the environment's prefix).
- **The database's own shape**: its tables, views and columns, read with sqlite-utils
  (:func:`probe.store.explore.relations`), so the metadata describes what the file holds, and
  each table and view offers the facets it has columns for (:data:`FACETS`), newest first where
  it has ``measured_at``.
- **Canned queries** for the usual research questions (:data:`CANNED_QUERIES`, the store's SQL).
- **Readable bodies**: a Datasette plugin (``probe/research/datasette_plugins/probe_sql.py``) registers
  the SQL functions ``body_text(body)`` (a zlib-compressed body as text, cut at 64 KiB) and
  ``reason_words(code)`` (a reason code in plain words, probe/judge/explain.py) on every connection.

Datasette is an optional extra: ``pip install 'censorship-probe[explore]'``.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from probe.host.data import SOURCE_ROOT
from probe.store.explore import CANNED_QUERIES, Relation

__all__ = ["CANNED_QUERIES", "FACETS", "PLUGINS_DIR", "metadata", "parse_schema_doc", "schema_doc_path"]

PLUGINS_DIR = Path(__file__).resolve().parent / "datasette_plugins"

#: Columns Datasette offers as facets (URLs counted by value, a click to filter) on the page of
#: each table or view that has them: the ways researchers cut results.
FACETS = ("vantage", "verdict", "stage", "category", "status", "kind", "suite")


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


def _described(tables: dict[str, dict[str, Any]], relations: Sequence[Relation] | None
               ) -> dict[str, dict[str, Any]]:
    """Datasette's metadata of each table and view: of the database's ``relations`` when known
    (their columns, facets and order), else of every one docs/schema.md describes."""
    if relations is None:
        return {name: {"description": t["description"],
                       **({"columns": t["columns"]} if t["columns"] else {})}
                for name, t in tables.items()}  # fmt: skip
    out: dict[str, dict[str, Any]] = {}
    for rel in relations:
        doc = tables.get(rel.name, {"description": "", "columns": {}})
        entry: dict[str, Any] = {"description": doc["description"] or "not described in docs/schema.md"}
        columns = {c: doc["columns"][c] for c in rel.columns if c in doc["columns"]}
        if columns:
            entry["columns"] = columns
        facets = [c for c in FACETS if c in rel.columns]
        if facets:
            entry["facets"] = facets
        if "measured_at" in rel.columns:
            entry["sort_desc"] = "measured_at"
        out[rel.name] = entry
    return out


def metadata(db_name: str, schema_doc: Path | None = None, *,
             relations: Sequence[Relation] | None = None) -> dict[str, Any]:
    """Datasette metadata for a database called ``db_name`` (its file name without .db).

    ``relations``: the database's tables and views (:func:`probe.store.explore.relations`):
    the metadata then describes those, with their facets; without, every table and view of
    docs/schema.md.
    """
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
                "tables": _described(tables, relations),
                "queries": {name: {"title": title, "description": desc, "sql": sql}
                            for name, (title, desc, sql) in CANNED_QUERIES.items()},
            }
        },
    }
