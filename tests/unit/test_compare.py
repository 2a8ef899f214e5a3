"""`probe compare` and `probe diff`: the verdict matrix, its summaries, and changes over time."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner
from store_samples import sample_measurement

from probe.cli import cli
from probe.core.model import Verdict
from probe.research.compare import Cell, diff_states, load_matrix, parse_since
from probe.store import Store

T0 = 1_790_000_000.0  # 2026-09-21T14:13:20Z
V = {
    "ok": Verdict("ok", None, None, (), "c1"),
    "dns": Verdict("hijacked", "dns", 0, ("dns/bogon",), "c1"),
    "tcp": Verdict("reset", "tcp", 0, ("tcp/reset",), "c1"),
    "tls": Verdict("reset", "tls", 1, ("tls/reset",), "c1"),
    "http": Verdict("blocked", "http", 1, ("http/blockpage",), "c1"),
    "down": Verdict("down", "tcp", 0, (), "c1"),
    "inc": Verdict("inconclusive", None, None, (), "c1"),
}


def _measure(n: int, t: float, category: str = "NEWS"):  # type: ignore[no-untyped-def]
    m = sample_measurement(n, started=t)
    return replace(m, target=replace(m.target, category_code=category))


def _run(store: Store, vantage: str, verdicts: dict[int, str], t: float,
         categories: dict[int, str] | None = None) -> int:
    vid = store.vantage(vantage)
    run = store.start_run(vid, [], {})
    items = [(_measure(n, t + n, (categories or {}).get(n, "NEWS")), V[v]) for n, v in verdicts.items()]
    store.write(run, vid, items)
    store.finish_run(run, "complete")
    return run


@pytest.fixture
def db(tmp_path: Path) -> Path:
    """moscow: 0-3 interfered with in four ways; almaty: 1 and 2 the same way, 3 another way."""
    path = tmp_path / "all.db"
    with Store.open(path) as s:
        _run(s, "moscow", {0: "ok", 1: "ok", 2: "ok"}, T0 - 86400)  # an older run: superseded
        _run(s, "moscow", {0: "dns", 1: "tcp", 2: "http", 3: "tls", 4: "ok"}, T0,
             categories={4: "HUMR"})
        _run(s, "almaty", {1: "tcp", 2: "http", 3: "http", 4: "ok", 5: "down"}, T0,
             categories={4: "HUMR"})
    return path


def _invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.output


# --- the matrix --------------------------------------------------------------------------------
def test_matrix_holds_the_latest_verdict_per_vantage_point_and_url(db: Path) -> None:
    with Store.open(db, create=False) as s:
        m = load_matrix(s)
    assert m.columns == ["almaty", "moscow"]
    cells = {(u, c): cell.technique for u, _, row in m.rows()
             for c, cell in zip(m.columns, row, strict=True) if cell is not None}
    assert cells[("http://site0.example.org/", "moscow")] == "hijacked/dns"
    assert ("http://site0.example.org/", "almaty") not in cells
    assert cells[("http://site3.example.org/", "moscow")] == "reset/tls"
    assert cells[("http://site3.example.org/", "almaty")] == "blocked/http"
    assert cells[("http://site5.example.org/", "almaty")] == "down"
    assert len(m) == 6


def test_pair_summary_counts_blocks_over_common_urls_and_jaccard(db: Path) -> None:
    with Store.open(db, create=False) as s:
        (pair,) = load_matrix(s, ["moscow", "almaty"]).pairs()
    # Common URLs: 1-4. moscow blocks 1, 2, 3; almaty blocks 1, 2, 3; 1 and 2 the same way.
    assert (pair.a, pair.b, pair.common) == ("moscow", "almaty", 4)
    assert (pair.a_blocks, pair.b_blocks, pair.both_block, pair.same_technique) == (3, 3, 3, 2)
    assert pair.jaccard == 1.0


def test_technique_mix_per_vantage_point(db: Path) -> None:
    with Store.open(db, create=False) as s:
        tech = load_matrix(s).techniques()
    assert tech["moscow"] | {} == {"urls": 5, "interference": 4, "dns": 1, "tcp": 1, "tls": 1,
                                    "http": 1, "other_stage": 0, "blocked": 1, "hijacked": 1,
                                    "reset": 2, "throttled": 0}
    assert (tech["almaty"]["interference"], tech["almaty"]["http"], tech["almaty"]["tcp"]) == (3, 2, 1)


def test_filters_vantage_category_since_and_only_differences(db: Path) -> None:
    with Store.open(db, create=False) as s:
        assert load_matrix(s, categories=["HUMR"]).urls == ["http://site4.example.org/"]
        assert load_matrix(s, ["moscow"]).columns == ["moscow"]
        old = load_matrix(s, since=parse_since("2026-09-21T14:13:22"))
        assert set(old.urls) == {f"http://site{i}.example.org/" for i in (2, 3, 4, 5)}
        diff = load_matrix(s).only_differences()
    # site1 and site2 agree, site4 ok in both; site0 and site5 have one column only.
    assert diff.urls == ["http://site3.example.org/"]


def test_compare_table_json_and_csv_agree(db: Path) -> None:
    code, table = _invoke("compare", "--db", str(db))
    assert code == 0
    assert "hijacked/dns" in table and "(6 URLs x 2 vantage points)" in table
    assert "JACCARD" in table and "1.000" in table
    code, out = _invoke("compare", "--db", str(db), "--json")
    doc = json.loads(out)
    assert doc["vantage_points"] == ["almaty", "moscow"] and len(doc["urls"]) == 6
    assert doc["pairs"][0]["both_block"] == 3
    code, out = _invoke("compare", "--db", str(db), "--csv", "--only-differences")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [(r["url"], r["almaty"], r["moscow"], r["moscow:stage"]) for r in rows] == [
        ("http://site3.example.org/", "blocked", "reset", "tls")]


def test_table_falls_back_to_codes_when_names_do_not_fit(db: Path) -> None:
    from probe.present.compare import render_table

    with Store.open(db, create=False) as s:
        m = load_matrix(s)
    text = "".join(render_table(m, 40))
    assert "1=almaty, 2=moscow" in text
    line = next(x for x in text.splitlines() if x.startswith("http://site0"))
    assert line.split()[-1] == "Hd"  # hijacked at the DNS stage, at moscow only
    assert all(len(x) <= 40 for x in text.splitlines()[2:])


def test_unknown_vantage_point_and_bad_since_are_usage_errors(db: Path) -> None:
    code, out = _invoke("compare", "--db", str(db), "--vantage", "moscow,nowhere")
    assert code == 2 and "nowhere" in out and "almaty, moscow" in out
    code, out = _invoke("compare", "--db", str(db), "--since", "last tuesday")
    assert code == 2 and "--since" in out
    code, out = _invoke("compare", "--db", str(db.parent / "missing.db"))
    assert code == 1 and "no such database" in out


def test_parse_since_accepts_dates_times_and_ages() -> None:
    import datetime

    now = datetime.datetime(2026, 11, 30, 12, 0, tzinfo=datetime.UTC)
    assert parse_since("2026-11-20") == "2026-11-20T00:00:00.000Z"
    assert parse_since("2026-11-20 10:30") == "2026-11-20T10:30:00.000Z"
    assert parse_since("2026-11-20T10:30:00+02:00") == "2026-11-20T08:30:00.000Z"
    assert parse_since("7d", now) == "2026-11-23T12:00:00.000Z"
    assert parse_since("24h", now) == "2026-11-29T12:00:00.000Z"
    with pytest.raises(ValueError):
        parse_since("yesterday")


# --- diff --------------------------------------------------------------------------------------
def test_diff_states_classifies_every_kind_of_change() -> None:
    def c(verdict: str, stage: str | None = None) -> Cell:
        return Cell(verdict, stage, "t")

    before = {"a": c("ok"), "b": c("reset", "tls"), "c": c("hijacked", "dns"), "d": c("blocked", "http"),
              "e": c("inconclusive"), "f": c("reset", "tcp"), "g": c("ok")}
    after = {"a": c("blocked", "http"), "b": c("ok"), "c": c("hijacked", "dns"), "d": c("down", "tcp"),
             "e": c("reset", "tcp"), "f": c("reset", "tls"), "h": c("blocked", "http")}
    got = [(ch.url, ch.kind) for ch in diff_states(before, after)]
    assert got == [("a", "newly_blocked"), ("e", "newly_blocked"), ("b", "unblocked"),
                   ("f", "technique_changed"), ("d", "unclear")]


def _history(path: Path) -> tuple[int, int, int]:
    with Store.open(path) as s:
        r1 = _run(s, "moscow", {0: "ok", 1: "tcp", 2: "http", 3: "ok"}, T0)
        r2 = _run(s, "moscow", {0: "dns", 1: "ok", 2: "tls", 3: "ok"}, T0 + 86400)
        r3 = _run(s, "moscow", {0: "dns", 1: "ok", 2: "tls", 3: "ok"}, T0 + 2 * 86400)
    return r1, r2, r3


def test_diff_between_runs_lists_changes_and_exit_code_3(tmp_path: Path) -> None:
    db = tmp_path / "h.db"
    r1, r2, r3 = _history(db)
    code, out = _invoke("diff", "--db", str(db), "--from", str(r1), "--to", str(r2), "--exit-code")
    assert code == 3, out
    assert all(len(line) <= 80 for line in out.splitlines()), out
    flat = " ".join(out.split())
    assert "1 newly blocked, 1 unblocked, 1 technique changed, 0 unclear" in flat
    assert "newly_blocked http://site0.example.org/ ok" in flat
    # Default: the latest run against the one before it; nothing changed -> 0 even with the flag.
    code, out = _invoke("diff", "--db", str(db), "--exit-code")
    assert code == 0 and f"run {r2} -> run {r3}: 0 newly blocked" in out
    code, out = _invoke("diff", "--db", str(db), "--from", str(r1), "--json")
    assert code == 0  # changes, but no --exit-code
    kinds = sorted(json.loads(line)["change"] for line in out.splitlines())
    assert kinds == ["newly_blocked", "technique_changed", "unblocked"]


def test_diff_since_a_date_compares_with_the_verdicts_before_it(tmp_path: Path) -> None:
    db = tmp_path / "h.db"
    _history(db)
    code, out = _invoke("diff", "--db", str(db), "--since", "2026-09-22T08:00", "--json",
                        "--exit-code")
    assert code == 3
    got = {json.loads(x)["url"]: json.loads(x)["change"] for x in out.splitlines()}
    assert got == {"http://site0.example.org/": "newly_blocked",
                   "http://site1.example.org/": "unblocked",
                   "http://site2.example.org/": "technique_changed"}


def test_diff_on_a_first_run_has_nothing_to_compare_yet_and_exits_0(tmp_path: Path) -> None:
    # A cron job `probe run && probe diff --exit-code` must not fail on its first night.
    db = tmp_path / "first.db"
    Store.open(db).close()
    code, out = _invoke("diff", "--db", str(db), "--exit-code")
    assert code == 0 and "no runs yet: nothing to compare yet" in out
    with Store.open(db) as s:
        run = _run(s, "moscow", {0: "dns", 1: "ok"}, T0)
    code, out = _invoke("diff", "--db", str(db), "--exit-code")
    assert code == 0 and out == f"moscow: run {run} is its first run: nothing to compare yet\n"
    result = CliRunner().invoke(cli, ["diff", "--db", str(db), "--exit-code", "--json"])
    assert result.exit_code == 0 and result.stdout == ""  # JSON lines are changes: none
    assert "nothing to compare yet" in result.stderr


def test_diff_refuses_ambiguous_or_wrong_runs(tmp_path: Path, db: Path) -> None:
    code, out = _invoke("diff", "--db", str(db))
    assert code == 2 and "--vantage" in out and "almaty, moscow" in out
    code, out = _invoke("diff", "--db", str(db), "--vantage", "almaty")  # its first run
    assert code == 0 and "nothing to compare yet" in out
    code, out = _invoke("diff", "--db", str(db), "--vantage", "almaty", "--from", "1")
    assert code == 2 and "not a run of vantage point 'almaty'" in out


# --- cheap to start ----------------------------------------------------------------------------
HEAVY = ("scapy", "httpx", "httpcore", "dns", "aiohttp", "cryptography", "sqlite_utils",
         "pyarrow", "duckdb", "chdb", "numpy")


@pytest.mark.parametrize("command", [["compare", "--json"], ["diff", "--vantage", "almaty", "--since", "1d"]])
def test_compare_and_diff_import_nothing_heavy(db: Path, command: list[str]) -> None:
    code = (
        "import sys, json\nfrom click.testing import CliRunner\nfrom probe.cli import cli\n"
        f"r = CliRunner().invoke(cli, {command!r} + ['--db', {str(db)!r}])\n"
        "assert r.exit_code == 0, r.output\nprint(json.dumps(sorted(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = json.loads(out.stdout.strip().splitlines()[-1])
    assert sorted(m for m in loaded if m.split(".")[0] in HEAVY) == []


def test_latest_keeps_verdicts_in_step_with_reclassify_and_deletes(db: Path) -> None:
    with Store.open(db) as s:
        c = s.conn
        q = ("SELECT l.verdict, l.stage, l.category FROM latest AS l JOIN vantage_points AS v "
             "ON v.id = l.vantage_id WHERE v.name = 'moscow' AND l.url = 'http://site3.example.org/'")
        assert c.execute(q).fetchone() == ("reset", "tls", "NEWS")
        (mid,) = c.execute("SELECT measurement_id FROM latest AS l JOIN vantage_points AS v ON "
                           "v.id = l.vantage_id WHERE v.name = 'moscow' AND "
                           "l.url = 'http://site3.example.org/'").fetchone()
        s.set_verdicts([(mid, Verdict("ok", None, None, (), "c2"))])
        assert c.execute(q).fetchone() == ("ok", None, "NEWS")
        # site2: deleting the latest measurement falls back to the older run's verdict.
        q2 = q.replace("site3", "site2")
        (mid2,) = c.execute(q2.replace("l.verdict, l.stage, l.category", "l.measurement_id")).fetchone()
        c.execute("DELETE FROM measurements WHERE id = ?", (mid2,))
        assert c.execute(q2).fetchone() == ("ok", None, "NEWS")
        # The matrix reads exactly what the latest_verdicts view says.
        m = load_matrix(s)
        view = {(r["vantage"], r["url"]): (r["verdict"], r["stage"]) for r in s.latest_verdicts()}
        got = {(col, url): (cell.verdict, cell.stage) for url, _, cells in m.rows()
               for col, cell in zip(m.columns, cells, strict=True) if cell is not None}
        assert got == view


def test_another_source_of_verdicts_joins_as_a_column(db: Path) -> None:
    with Store.open(db, create=False) as s:
        m = load_matrix(s)
    m.add_column("ooni:RU", {"http://site0.example.org/": ("NEWS", Cell("hijacked", "dns", "t")),
                             "http://other.example/": ("GRP", Cell("ok", None, "t"))})
    assert m.columns == ["almaty", "moscow", "ooni:RU"] and len(m) == 7
    pair = next(p for p in m.pairs() if (p.a, p.b) == ("moscow", "ooni:RU"))
    assert (pair.common, pair.both_block, pair.same_technique) == (1, 1, 1)
    with pytest.raises(ValueError):
        m.add_column("moscow", {})
