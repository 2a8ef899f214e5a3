"""docs/research.md's Python examples (sqlite-utils on a results database), run as written.

The blocks marked ``# example: NAME`` run in order in one namespace, as a researcher's script
would, on a database with two vantage points; each one's results are checked after it runs.
"""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from store_samples import sample_measurement

from probe.core.model import Verdict
from probe.store import Store, StoreError

DOC = Path(__file__).resolve().parents[2] / "docs" / "research.md"
T0 = 1_790_000_000.0
V = {"ok": Verdict("ok", None, None, (), "c1"),
     "http": Verdict("blocked", "http", 1, ("http/blockpage",), "c1"),
     "dns": Verdict("hijacked", "dns", 0, ("dns/bogon",), "c1")}


def _examples() -> dict[str, str]:
    blocks = re.findall(r"```python\n# example: (\S+)\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)
    return dict(blocks)


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "all.db"
    with Store.open(path) as s:
        for vantage, verdicts in (("moscow", ("dns", "http", "http", "ok")),
                                  ("almaty", ("ok", "http", "ok", "ok"))):
            vid = s.vantage(vantage)
            run = s.start_run(vid, [], {})
            s.write(run, vid, [(sample_measurement(n, started=T0 + n), V[v])
                               for n, v in enumerate(verdicts)])  # fmt: skip
            s.finish_run(run, "complete")
    return path


def test_the_documented_examples_run_as_written(db: Path) -> None:
    examples = _examples()
    assert list(examples) == ["open", "schema", "query", "rows", "matrix"]
    ns: dict[str, Any] = {}

    def run(name: str) -> None:
        exec(compile(examples[name].replace('"results/all.db"', repr(str(db))), name, "exec"), ns)

    run("open")
    assert ns["store"].readonly and ns["db"].conn is ns["store"].conn

    run("schema")
    assert {"measurements", "runs", "vantage_points", "http_bodies"} <= set(ns["tables"])
    assert {"blocked", "latest_verdicts"} <= set(ns["views"])
    assert ns["columns"]["url"] is str and ns["columns"]["run_id"] is int
    assert ns["measured"] == 8

    run("query")
    assert ns["rows"] == [
        {"vantage": "almaty", "url": "http://site1.example.org/", "verdict": "blocked", "stage": "http"},
        {"vantage": "moscow", "url": "http://site1.example.org/", "verdict": "blocked", "stage": "http"},
        {"vantage": "moscow", "url": "http://site2.example.org/", "verdict": "blocked", "stage": "http"},
    ]

    run("rows")
    assert [r["url"] for r in ns["moscow"]] == [f"http://site{i}.example.org/" for i in range(4)]
    assert ns["reasons"]["http://site0.example.org/"] == '["dns/bogon"]'

    run("matrix")
    (pair,) = ns["pairs"]
    assert sorted(ns["matrix"].columns) == ["almaty", "moscow"]
    assert (pair.common, pair.both_block) == (4, 1)


def test_a_read_only_store_refuses_writes_and_changes_nothing(db: Path) -> None:
    before = db.read_bytes()
    with Store.open(db, readonly=True) as store:
        assert store.readonly
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            store.db["notes"].insert({"text": "x"})
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            store.conn.execute("DELETE FROM measurements")
        assert store.db["measurements"].count == 8
    assert db.read_bytes() == before


def test_read_only_needs_an_existing_probe_database_of_the_current_schema(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="no such database"):
        Store.open(tmp_path / "missing.db", readonly=True)
    assert not (tmp_path / "missing.db").exists()
    other = tmp_path / "other.db"
    sqlite3.connect(other).execute("CREATE TABLE customers (id INTEGER)")
    with pytest.raises(StoreError, match="not a probe database"):
        Store.open(other, readonly=True)
    old = tmp_path / "old.db"
    Store.open(old).close()
    conn = sqlite3.connect(old)
    conn.execute("DELETE FROM schema_migrations WHERE version = (SELECT max(version) FROM schema_migrations)")
    conn.commit()
    conn.close()
    with pytest.raises(StoreError, match="older probe"):
        Store.open(old, readonly=True)


def test_a_read_only_store_sees_what_a_writer_commits_meanwhile(db: Path) -> None:
    with Store.open(db, readonly=True) as reader, Store.open(db) as writer:
        assert reader.db["runs"].count == 2
        vid = writer.vantage("tashkent")
        writer.finish_run(writer.start_run(vid, [], {}), "complete")
        assert reader.db["runs"].count == 3
