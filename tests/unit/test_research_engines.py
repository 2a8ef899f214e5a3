"""Beyond one machine: a merged database's Parquet export answers the same in DuckDB and ClickHouse.

docs/research.md holds the queries; this test runs exactly those (SQLite on the merged database,
DuckDB and chdb — ClickHouse in-process — on its Parquet export) and asserts the same answers.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from store_samples import sample_measurement

from probe.cli import cli
from probe.core.model import Verdict
from probe.store import Store

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "research.md"
DAY = 86400.0
T0 = 1_790_000_000.0
V = {"ok": Verdict("ok", None, None, (), "c1"),
     "dns": Verdict("hijacked", "dns", 0, ("dns/bogon",), "c1"),
     "tls": Verdict("reset", "tls", 1, ("tls/reset",), "c1"),
     "down": Verdict("down", "tcp", 0, (), "c1")}
# Per vantage point, per day: the verdict of sites 0..4.
HISTORY = {
    "moscow": [("ok", "ok", "dns", "ok", "ok"),
               ("dns", "ok", "dns", "tls", "ok"),
               ("ok", "tls", "dns", "tls", "down"),
               ("dns", "tls", "dns", "tls", "ok")],
    "almaty": [("ok", "ok", "ok", "ok", "ok"),
               ("ok", "ok", "dns", "ok", "ok"),
               ("ok", "ok", "ok", "tls", "ok")],
}


def _queries() -> dict[str, str]:
    text = DOC.read_text()
    blocks = re.findall(r"```sql\n-- name: (\S+)\n(.*?)```", text, re.S)
    return {name: sql.strip().rstrip(";") for name, sql in blocks}


def _sql(name: str, a: str, b: str, x: str, directory: Path) -> str:
    sql = _queries()[name]
    return (sql.replace("'A'", f"'{a}'").replace("'B'", f"'{b}'").replace("'X'", f"'{x}'")
            .replace("{dir}", str(directory)))


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    tmp = tmp_path_factory.mktemp("engines")
    sources = []
    for k, (name, days) in enumerate(HISTORY.items()):
        path = tmp / f"{name}.db"
        with Store.open(path) as s:
            vid = s.vantage(name)
            for d, verdicts in enumerate(days):
                run = s.start_run(vid, [], {})
                t = T0 + d * DAY + k * 3600
                s.write(run, vid, [(sample_measurement(i, started=t + i), V[v])
                                   for i, v in enumerate(verdicts)])
                s.finish_run(run, "complete")
        sources.append(str(path))
    merged = tmp / "all.db"
    out = tmp / "parquet"
    runner = CliRunner()
    assert runner.invoke(cli, ["merge", *sources, "--into", str(merged)]).exit_code == 0
    result = runner.invoke(cli, ["export", "--db", str(merged), "--format", "parquet", "-o", str(out)])
    assert result.exit_code == 0, result.output
    return merged, out


def _sqlite(merged: Path, sql: str) -> list[tuple[Any, ...]]:
    with Store.open(merged, create=False) as s:
        return [tuple(r) for r in s.conn.execute(sql).fetchall()]


def _duckdb(sql: str) -> list[tuple[Any, ...]]:
    duckdb = pytest.importorskip("duckdb")
    return [tuple(r) for r in duckdb.connect().sql(sql).fetchall()]


def _clickhouse(sql: str) -> list[tuple[Any, ...]]:
    chdb = pytest.importorskip("chdb")
    out = chdb.query(sql, "JSONCompact")
    return [tuple(r) for r in json.loads(out.bytes() or b'{"data": []}')["data"]]


CASES = [("moscow", "almaty", "http://site0.example.org/"),
         ("almaty", "moscow", "http://site3.example.org/"),
         ("moscow", "almaty", "http://site2.example.org/"),
         ("moscow", "almaty", "http://site4.example.org/")]


@pytest.mark.parametrize(("a", "b", "x"), CASES)
def test_engines_agree_on_blocked_at_a_not_b_and_when_x_became_blocked(
    exported: tuple[Path, Path], a: str, b: str, x: str
) -> None:
    merged, out = exported
    for question in ("blocked_not_blocked", "became_blocked"):
        want = _sqlite(merged, _sql(f"{question}/sqlite", a, b, x, out))
        assert _duckdb(_sql(f"{question}/duckdb", a, b, x, out)) == want, question
        assert _clickhouse(_sql(f"{question}/clickhouse", a, b, x, out)) == want, question


def test_the_answers_are_the_expected_ones(exported: tuple[Path, Path]) -> None:
    merged, out = exported
    blocked = _sqlite(merged, _sql("blocked_not_blocked/sqlite", "moscow", "almaty", "", out))
    # Latest: moscow blocks 0, 1, 2, 3; almaty blocks only 3 (and 4 is down at neither... ok).
    assert blocked == [("http://site0.example.org/",), ("http://site1.example.org/",),
                       ("http://site2.example.org/",)]
    since = {x: _sqlite(merged, _sql("became_blocked/sqlite", "moscow", "", x, out))
             for x in ("http://site0.example.org/", "http://site2.example.org/",
                       "http://site3.example.org/", "http://site4.example.org/")}
    # site0: blocked on day 1, ok on day 2, blocked again on day 3 -> day 3.
    assert since["http://site0.example.org/"] == [(int((T0 + 3 * DAY) * 1000),)]
    assert since["http://site2.example.org/"] == [(int((T0 + 2) * 1000),)]  # from the first day
    assert since["http://site3.example.org/"] == [(int((T0 + DAY + 3) * 1000),)]
    assert since["http://site4.example.org/"] == []  # not blocked now
