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
COUNTRY = {"moscow": "RU", "almaty": "KZ"}
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
            vid = s.vantage(name, country=COUNTRY[name])
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
    # docs/research.md, "A dataset of many probes": each probe's export into one dataset.
    for source in sources:
        result = runner.invoke(cli, ["export", "--db", source, "--format", "parquet",
                                     "--partition-by", "country,date", "-o", str(tmp / "dataset")])
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


def test_documented_loads_and_the_two_probe_dataset_answer_as_sqlite(
    exported: tuple[Path, Path]
) -> None:
    merged, out = exported
    dataset = out.parent / "dataset"
    want = _sqlite(merged, "SELECT v.country, date(m.measured_at), v.name, count(*) FROM measurements AS m "
                           "JOIN vantage_points AS v ON v.id = m.vantage_id WHERE m.final = 1 "
                           "GROUP BY 1, 2, 3 ORDER BY 1, 2, 3")
    assert len(want) == 7  # two probes, four and three days

    def sql(name: str) -> str:
        return _queries()[name].replace("{dir}", str(out)).replace("{dataset}", str(dataset))

    assert [(c, str(d), v, n) for c, d, v, n in _duckdb(sql("dataset/duckdb"))] == want
    assert [(c, str(d), v, int(n)) for c, d, v, n in _clickhouse(sql("dataset/clickhouse"))] == want
    duckdb = pytest.importorskip("duckdb")
    con = duckdb.connect()
    con.execute(sql("load/duckdb"))
    assert con.execute("SELECT count(*) FROM measurements").fetchone() == (sum(n for *_, n in want),)
    chdb = pytest.importorskip("chdb")
    from chdb import session

    sess = session.Session()
    try:
        sess.query(sql("load/clickhouse"))
        n = sess.query("SELECT count() FROM measurements", "CSV").bytes().decode().strip()
        engine = sess.query("SELECT engine FROM system.tables WHERE name = 'measurements'",
                            "CSV").bytes().decode().strip()
    finally:
        sess.close()
        del chdb
    assert (int(n), engine) == (sum(n for *_, n in want), '"MergeTree"')
