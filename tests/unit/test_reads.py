"""Reads cost what they return: no full-file check on opening, `probe check` on demand, and the
hot queries answered from indexes (their query plans name no full scan of a big table)."""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from store_samples import sample_measurement, sample_verdict

from probe.cli import cli
from probe.core.model import Verdict
from probe.store import Store

T0 = 1_790_000_000.0
#: Tables that grow with every measurement: a hot query never scans one of them whole.
BIG = ("measurements", "observations", "dns_queries", "dns_replies", "dns_answers", "tcp_connects",
       "tls_handshakes", "http_requests", "controls", "latest", "packets")


@pytest.fixture
def db(tmp_path: Path) -> Path:
    """Two vantage points, two runs each, 30 URLs a run, a few of them blocked."""
    path = tmp_path / "r.db"
    with Store.open(path) as s:
        for name in ("moscow", "almaty"):
            vid = s.vantage(name, asn=64500, country="RU")
            for r in range(2):
                run = s.start_run(vid, ["list.csv"], {})
                items: list[Any] = []
                for i in range(30):
                    v = (Verdict("blocked", "http", 0, ("http/blockpage:x",), "c1") if i % 7 == 0
                         else sample_verdict())
                    items.append((sample_measurement(i, started=T0 + r * 3600 + i), v))
                s.write(run, vid, items)
                s.finish_run(run, "complete")
    return path


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("args", [
    ["results", "--verdict", "interference"], ["runs"], ["show", "http://site7.example.org/"],
    ["compare"], ["outages"], ["diff", "--vantage", "moscow"], ["export", "--format", "csv"],
])
def test_read_only_commands_never_read_the_whole_file_first(
    db: Path, args: list[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    checked: list[str] = []
    monkeypatch.setattr(Store, "_check_integrity", lambda self: checked.append(self.path))
    r = CliRunner().invoke(cli, [*args, "--db", str(db)])
    assert r.exit_code in (0, 3), r.output
    assert checked == []


def test_report_never_reads_the_whole_file_first(
    db: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    checked: list[str] = []
    monkeypatch.setattr(Store, "_check_integrity", lambda self: checked.append(self.path))
    r = CliRunner().invoke(cli, ["report", "--db", str(db), "--out", str(tmp_path / "r.html")])
    assert r.exit_code == 0, r.output
    assert checked == []


# --- probe check --------------------------------------------------------------------------------
def test_check_says_a_sound_database_is_sound_and_writes_nothing(db: Path) -> None:
    before = _digest(db)
    r = CliRunner().invoke(cli, ["check", "--db", str(db)])
    assert r.exit_code == 0, r.output
    assert "ok: every page" in r.output and f"schema {Store.open(db).schema_version()}" in r.output
    assert _digest(db) == before
    assert all(len(line) <= 80 for line in r.output.splitlines()[1:])  # after the path


def test_check_finds_a_damaged_page_and_says_what_to_do(db: Path) -> None:
    Store.open(db).conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    data = bytearray(db.read_bytes())
    page = int.from_bytes(data[16:18], "big")  # the database's page size (header): a whole page
    middle = len(data) // page // 2
    data[middle * page:(middle + 1) * page] = bytes(page)
    db.write_bytes(bytes(data))
    before = _digest(db)
    r = CliRunner().invoke(cli, ["check", "--db", str(db)])
    assert r.exit_code == 1
    assert "damaged:" in r.output and ".recover" in r.output
    assert _digest(db) == before


def _sql(path: Path, *statements: str) -> None:
    """Run ``statements`` on ``path`` as another program would (committed, closed)."""
    conn = sqlite3.connect(path)
    for statement in statements:
        conn.execute(statement)
    conn.commit()
    conn.close()


def test_check_counts_rows_whose_parent_is_missing(db: Path) -> None:
    _sql(db, "INSERT INTO observations (measurement_id, data) VALUES (99999, '{}')")
    r = CliRunner().invoke(cli, ["check", "--db", str(db)])
    assert r.exit_code == 1 and "1 rows of observations refer to rows that are not there" in r.output


def test_check_reads_an_older_database_without_upgrading_it(db: Path) -> None:
    _sql(db, "DELETE FROM schema_migrations WHERE version = (SELECT max(version) FROM schema_migrations)")
    _sql(db, "PRAGMA wal_checkpoint(TRUNCATE)")
    before = _digest(db)
    r = CliRunner().invoke(cli, ["check", "--db", str(db)])
    assert r.exit_code == 0, r.output
    assert _digest(db) == before


def test_check_refuses_what_is_not_a_probe_database(tmp_path: Path) -> None:
    other = tmp_path / "other.db"
    _sql(other, "CREATE TABLE customers (id INTEGER)")
    r = CliRunner().invoke(cli, ["check", "--db", str(other)])
    assert r.exit_code == 1 and "not a probe database" in r.output
    r = CliRunner().invoke(cli, ["check", "--db", str(tmp_path / "missing.db")])
    assert r.exit_code == 1 and "no such database" in r.output


# --- query plans of the hot queries -------------------------------------------------------------
class _Plans:
    """Records the query plan of every statement run on a connection."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self.plans: list[tuple[str, list[str]]] = []

    def record(self, sql: str, params: Any) -> None:
        """Keep the plan of ``sql`` when it reads."""
        if sql.lstrip().upper().startswith(("SELECT", "WITH")):
            plan = [row[3] for row in self.conn.execute("EXPLAIN QUERY PLAN " + sql, params)]
            self.plans.append((" ".join(sql.split())[:120], plan))

    def execute(self, sql: str, params: Any = ()) -> sqlite3.Cursor:
        self.record(sql, params)
        return self.conn.execute(sql, params)

    def cursor(self) -> Any:
        outer = self

        class Cursor:
            row_factory: Any = None

            def execute(self, sql: str, params: Any = ()) -> sqlite3.Cursor:
                cur = outer.conn.cursor()
                cur.row_factory = self.row_factory
                outer.record(sql, params)
                return cur.execute(sql, params)

        return Cursor()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.conn, name)

    def full_scans(self) -> list[tuple[str, str]]:
        """(query, plan line) of every full scan of a big table."""
        return [(sql, line) for sql, plan in self.plans for line in plan
                if any(line in (f"SCAN {t}", f"SCAN {a}") or line.startswith((f"SCAN {t} ", f"SCAN {a} "))
                       for t in BIG for a in _aliases(sql, t))]


def _aliases(sql: str, table: str) -> list[str]:
    """The names ``table`` goes by in ``sql`` (``measurements AS m`` -> m, ``measurements m``)."""
    words = sql.replace(",", " ").split()
    out = [table]
    for k, w in enumerate(words[:-1]):
        if w == table:
            nxt = words[k + 1]
            alias = words[k + 2] if nxt.upper() == "AS" and k + 2 < len(words) else nxt
            if alias.isidentifier() and alias.upper() not in ("WHERE", "JOIN", "ON", "GROUP", "ORDER",
                                                              "LEFT", "INNER", "LIMIT", "USING"):
                out.append(alias)
    return out


@pytest.fixture
def plans(db: Path) -> Iterator[tuple[Store, _Plans]]:
    with Store.open(db, create=False) as store:
        spy = _Plans(store.conn)
        store.conn = spy  # type: ignore[assignment]
        yield store, spy


def test_the_plan_recorder_sees_a_full_scan(plans: tuple[Store, _Plans]) -> None:
    store, spy = plans
    store.conn.execute("SELECT count(*) FROM measurements AS m WHERE m.runtime > 1").fetchall()
    assert spy.full_scans() and spy.full_scans()[0][1].startswith("SCAN m")


def test_results_latest_run_interference_is_an_index_lookup(plans: tuple[Store, _Plans]) -> None:
    store, spy = plans
    rows = list(store.results("latest", verdict=("blocked", "reset", "hijacked")))
    assert rows and spy.plans and spy.full_scans() == []


def test_runs_and_run_lookups_read_no_measurement_table_whole(plans: tuple[Store, _Plans]) -> None:
    store, spy = plans
    assert len(list(store.runs(limit=20))) == 4
    store.resolve_run("latest", "moscow")
    store.run_info(1)
    assert spy.full_scans() == []


def test_show_reads_one_url_by_index(plans: tuple[Store, _Plans]) -> None:
    from probe.present.evidence import evidence, find_measurement

    store, spy = plans
    for what in ("http://site7.example.org/", "site7.example.org"):
        evidence(store, find_measurement(store, what, None, None).measurement_id)
    assert spy.plans and spy.full_scans() == []


def test_outages_of_one_vantage_point_read_its_runs_by_index(plans: tuple[Store, _Plans]) -> None:
    from probe.store.outages import finished_runs, first_hop_addresses, run_counts

    store, spy = plans
    finished_runs(store, "moscow")
    list(run_counts(store, ["generic_timeout_error"], "moscow"))
    list(first_hop_addresses(store, ["generic_timeout_error"], "moscow"))
    assert spy.full_scans() == []


def test_compare_reads_the_latest_verdicts_not_every_measurement(plans: tuple[Store, _Plans]) -> None:
    from probe.research.compare import load_matrix

    store, spy = plans
    load_matrix(store)
    assert spy.plans
    # The matrix is one cell per URL and vantage point: `latest` (one row each) is what it draws.
    assert [s for s in spy.full_scans() if "latest" not in s[1]] == []


def test_a_report_of_one_vantage_point_reads_the_outage_data_of_that_one_only(
    db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The outage rules read every measurement of the runs they judge: a report of one vantage
    # point of twenty read all twenty (5.5 s of CPU on the 500k bench, 0.6 s after).
    from probe.present import html

    asked: list[str | None] = []
    real = html.run_stats

    def recording(store: Store, vantage: str | None = None, *args: Any, **kw: Any) -> Any:
        asked.append(vantage)
        return real(store, vantage, *args, **kw)

    monkeypatch.setattr(html, "run_stats", recording)
    r = CliRunner().invoke(cli, ["report", "--db", str(db), "--vantage", "moscow",
                                 "--out", str(tmp_path / "r.html")])  # fmt: skip
    assert r.exit_code == 0, r.output
    assert asked == ["moscow"]
    asked.clear()
    r = CliRunner().invoke(cli, ["report", "--db", str(db), "--out", str(tmp_path / "all.html")])
    assert r.exit_code == 0 and asked == [None]  # every vantage point: one pass
