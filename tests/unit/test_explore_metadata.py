"""`probe explore`'s metadata: descriptions parsed from docs/schema.md, canned queries."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from probe.research.explore import CANNED_QUERIES, parse_schema_doc


def test_every_table_and_view_has_a_description_from_docs_schema(tmp_path: Path) -> None:
    from probe.research.explore import metadata
    from probe.store import Store

    with Store.open(tmp_path / "x.db") as s:
        names = {r[0] for r in s.conn.execute(
            "SELECT name FROM sqlite_master WHERE type IN ('table', 'view') "
            "AND name NOT LIKE 'sqlite_%'")}
    described = metadata("x")["databases"]["x"]["tables"]
    # schema_migrations is documented as a table of its own format (table | column | meaning).
    missing = sorted(names - set(described) - {"schema_migrations"})
    assert missing == []
    assert all(t["description"] for t in described.values())


def test_as_above_takes_the_meaning_given_in_the_table_before() -> None:
    doc = """## Tables
### `a`: first
| column | type | meaning |
|---|---|---|
| `id`, `hop` | INTEGER | the key |
### `b`: second
| column | type | meaning |
|---|---|---|
| `id` | | as above |
## Views
| view | what |
|---|---|
| `v` | a view of `a` |
"""
    parsed = parse_schema_doc(doc)
    assert parsed["b"] == {"description": "second", "columns": {"id": "the key"}}
    assert parsed["a"]["columns"] == {"id": "the key", "hop": "the key"}
    assert parsed["v"]["description"] == "a view of a"


def test_canned_queries_are_valid_sql_on_a_fresh_database(tmp_path: Path) -> None:
    from probe.store import Store

    Store.open(tmp_path / "x.db").close()
    conn = sqlite3.connect(tmp_path / "x.db")
    conn.create_function("body_text", 1, lambda b: None)
    conn.create_function("reason_words", 1, lambda c: c)
    for name, (_, _, sql) in CANNED_QUERIES.items():
        params = {p: "" for p in ("vantage", "a", "b", "url", "sha256") if f":{p}" in sql}
        assert conn.execute(sql, params).fetchall() == [], name


def test_metadata_of_a_database_describes_its_tables_with_their_facets(tmp_path: Path) -> None:
    from probe.research.explore import metadata
    from probe.store import Store
    from probe.store.explore import relations

    with Store.open(tmp_path / "x.db") as s:
        s.conn.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, vantage TEXT, text TEXT)")
        shape = relations(s)
    tables = metadata("x", relations=shape)["databases"]["x"]["tables"]
    # Every table and view of the file, and only those (SQLite's own tables left out).
    assert set(tables) == {r.name for r in shape} and "notes" in tables
    assert not any(name.startswith("sqlite_") for name in tables)
    assert tables["notes"]["description"] == "not described in docs/schema.md"
    m = tables["measurements"]
    assert m["description"] == "one attempt at one URL"
    assert m["facets"] == ["verdict", "stage", "category"] and m["sort_desc"] == "measured_at"
    assert set(m["columns"]) <= {c for r in shape if r.name == "measurements" for c in r.columns}
    assert tables["latest_verdicts"]["facets"] == ["vantage", "verdict", "stage", "category"]
    assert tables["notes"]["facets"] == ["vantage"] and "sort_desc" not in tables["notes"]
    kinds = {r.name: r.kind for r in shape}
    assert kinds["measurements"] == "table" and kinds["blocked"] == "view"
