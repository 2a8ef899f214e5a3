"""`probe results`, `probe runs` and `probe reclassify` on the command line (CliRunner)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from store_samples import sample_measurement, sample_verdict

import probe.judge.classify
from probe.cli import cli
from probe.cli.results import VERDICT_CHOICES
from probe.core.model import VERDICTS, Verdict
from probe.store import Store


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "probe.db"
    with Store.open(path) as s:
        for name, verdicts in (("alpha", ("blocked", "ok", "reset")), ("beta", ("ok", "ok"))):
            vid = s.vantage(name)
            run = s.start_run(vid, [], {})
            s.write(run, vid, [(sample_measurement(i, started=1000.0 + i), sample_verdict(v))
                               for i, v in enumerate(verdicts)])
            s.finish_run(run, "complete")
    return path


def _invoke(*args: str) -> object:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_results_shows_the_latest_run_as_a_table(db: Path) -> None:
    r = CliRunner().invoke(cli, ["results", "--db", str(db), "--vantage", "beta"])
    assert r.exit_code == 0, r.output
    lines = r.output.splitlines()
    assert lines[0].split() == ["URL", "VERDICT", "STAGE", "REASON", "VANTAGE", "RUN", "TIME"]
    assert len(lines) == 4 and lines[-1] == "(2 results)"
    assert all(" beta " in line and " ok " in line for line in lines[1:3])
    assert all(line.endswith(" UTC") for line in lines[1:3])  # times say their zone
    r = _invoke("results", "--db", str(db), "--run", "1")
    assert "http/blockpage:test_1 +1" in r.output.splitlines()[1]


def test_results_of_several_vantage_points_show_each_ones_latest_run_and_say_so(db: Path) -> None:
    with Store.open(db, create=False) as s:  # a newer run of beta: alpha's run 1 stays its latest
        vid = s.vantage("beta")
        run = s.start_run(vid, [], {})
        s.write(run, vid, [(sample_measurement(7, started=2000.0), sample_verdict("reset"))])
        s.finish_run(run, "complete")
    r = CliRunner().invoke(cli, ["results", "--db", str(db), "--json"])
    assert r.exit_code == 0, r.output
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    assert sorted((row["vantage"], row["run_id"], row["verdict"]) for row in rows) == [
        ("alpha", 1, "blocked"), ("alpha", 1, "ok"), ("alpha", 1, "reset"), ("beta", 3, "reset")]
    assert r.stderr == "The latest run of each of 2 vantage points: alpha (run 1), beta (run 3).\n"
    # One vantage point asked for, or one run: no note.
    for args in (["--vantage", "alpha"], ["--run", "2"]):
        r = CliRunner().invoke(cli, ["results", "--db", str(db), "--json", *args])
        assert r.exit_code == 0 and r.stderr == "", r.output


def test_latest_runs_note_fits_80_columns_and_escapes_names() -> None:
    from probe.present.tables import format_latest_runs

    runs = [(f"vantage-{k}\x1b[31m", k) for k in range(12)]
    text = format_latest_runs(runs)
    assert all(len(line) <= 80 for line in text.splitlines())
    assert "\x1b" not in text and "vantage-11\\x1b[31m (run 11)." in text


def test_results_json_lines_have_the_documented_keys(db: Path) -> None:
    r = _invoke("results", "--db", str(db), "--run", "1", "--json")
    rows = [json.loads(line) for line in r.output.splitlines()]
    assert [row["verdict"] for row in rows] == ["blocked", "ok", "reset"]
    for key in ("url", "verdict", "stage", "reasons", "vantage", "run_id", "measured_at"):
        assert key in rows[0]
    assert rows[0]["reasons"] == ["http/blockpage:test_1", "dns/bogon:10.10.34.34"]


def test_results_filters_by_verdict_vantage_and_all_runs(db: Path) -> None:
    r = _invoke("results", "--db", str(db), "--run", "all", "--verdict", "ok", "--json")
    assert [json.loads(x)["vantage"] for x in r.output.splitlines()] == ["alpha", "beta", "beta"]
    r = _invoke("results", "--db", str(db), "--vantage", "alpha", "--json", "--limit", "1")
    assert [json.loads(x)["run_id"] for x in r.output.splitlines()] == [1]


@pytest.mark.parametrize(
    "args",
    [("--run", "yesterday"), ("--verdict", "censored"), ("--json", "--csv"), ("--limit", "0"), ("--bogus",)],
)
def test_results_bad_flags_exit_2(db: Path, args: tuple[str, ...]) -> None:
    r = CliRunner().invoke(cli, ["results", "--db", str(db), *args])
    assert r.exit_code == 2


def test_results_bad_database_exits_1_naming_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "garbage.db"
    bad.write_bytes(b"\x00garbage" * 512)
    for path, reason in ((bad, "not a usable SQLite database"),
                         (tmp_path / "none.db", "no such database")):
        r = CliRunner().invoke(cli, ["results", "--db", str(path)])
        assert r.exit_code == 1
        assert str(path) in r.output and reason in r.output


def test_results_unknown_run_exits_1(db: Path) -> None:
    r = CliRunner().invoke(cli, ["results", "--db", str(db), "--run", "77"])
    assert r.exit_code == 1 and "no run 77" in r.output


def test_verdict_choices_match_the_model() -> None:
    assert VERDICT_CHOICES == VERDICTS
    from probe.cli.results import INTERFERENCE
    from probe.core.model import INTERFERENCE_VERDICTS

    assert set(INTERFERENCE) == set(INTERFERENCE_VERDICTS)


@pytest.mark.parametrize("command", ["results", "runs"])
def test_reading_commands_do_not_import_network_libraries(db: Path, command: str) -> None:
    code = (
        "import sys\n"
        "from probe.cli import main\n"
        f"sys.argv = ['probe', {command!r}, '--db', {str(db)!r}]\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "net = ('scapy', 'httpx', 'httpcore', 'aiohttp')\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in net)\n"
        "print('IMPORTED', bad)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert ("http://site0.example.org/" if command == "results" else "complete") in out.stdout
    assert out.stdout.strip().splitlines()[-1] == "IMPORTED []"


def test_runs_lists_newest_first_with_status_and_verdict_counts(
    db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "120")  # wide enough for when each run finished
    r = _invoke("runs", "--db", str(db))
    assert r.exit_code == 0, r.output
    lines = r.output.splitlines()
    assert lines[0].split() == ["RUN", "VANTAGE", "STARTED", "UTC", "FINISHED", "UTC", "STATUS",
                                "URLS", "VERDICTS"]
    newest, oldest = lines[1].split(), lines[2].split()
    assert newest[:2] == ["2", "beta"] and len(newest[2]) == len(newest[4]) == 10  # dates
    assert newest[6:] == ["complete", "2", "ok", "2"]
    assert oldest[:2] == ["1", "alpha"]
    assert oldest[6:] == ["complete", "3", "ok", "1", "blocked", "1", "reset", "1"]
    assert lines[-1] == "(2 runs)"


def test_runs_fit_80_columns_by_leaving_out_when_runs_finished(
    db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    with Store.open(db) as s:  # a run with every verdict: its counts wrap under their column
        vid = s.vantage("a-long-vantage-name")
        run = s.start_run(vid, [], {})
        s.write(run, vid, [(sample_measurement(i, started=3000.0 + i), sample_verdict(v))
                           for i, v in enumerate(VERDICTS)])
        s.finish_run(run, "complete")
    lines = _invoke("runs", "--db", str(db)).output.splitlines()
    assert lines[0].split() == ["RUN", "VANTAGE", "STARTED", "UTC", "STATUS", "URLS", "VERDICTS"]
    assert all(len(line) <= 80 for line in lines), lines
    start = lines[0].index("VERDICTS")
    rest = next(i for i, line in enumerate(lines[2:], 2) if not line.startswith(" "))
    counts = " ".join(line[start:] for line in lines[1:rest])
    assert counts.split() == ["ok", "1", "blocked", "1", "reset", "1", "hijacked", "1", "throttled",
                              "1", "down", "1", "inconclusive", "1"]
    assert lines[1].startswith("3      a-long-vant…  ")  # names are cut to their column


def test_runs_json_counts_a_running_run_live(db: Path) -> None:
    with Store.open(db) as s:
        vid = s.vantage("alpha")
        run = s.start_run(vid, ["list.csv"], {})
        s.write(run, vid, [(sample_measurement(9, started=2000.0), sample_verdict("blocked"))])
    r = _invoke("runs", "--db", str(db), "--vantage", "alpha", "--json")
    rows = [json.loads(line) for line in r.output.splitlines()]
    assert [(x["run_id"], x["status"]) for x in rows] == [(3, "running"), (1, "complete")]
    assert rows[0]["n_measurements"] == 1 and rows[0]["counts"]["blocked"] == 1
    assert rows[0]["finished_at"] is None and rows[0]["lists"] == ["list.csv"]
    assert rows[1]["counts"] == {"ok": 1, "blocked": 1, "reset": 1, "hijacked": 0, "throttled": 0,
                                 "down": 0, "inconclusive": 0}
    r = _invoke("runs", "--db", str(db), "--limit", "1", "--json")
    assert [json.loads(line)["run_id"] for line in r.output.splitlines()] == [3]


def test_runs_on_a_missing_database_exits_1_naming_it(tmp_path: Path) -> None:
    r = _invoke("runs", "--db", str(tmp_path / "none.db"))
    assert r.exit_code == 1 and "none.db" in r.output and "no such database" in r.output


def test_reclassify_reports_changed_verdicts(db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def fake_classify(m: object, **options: object) -> Verdict:
        return Verdict("ok", None, None, ())

    monkeypatch.setattr(probe.judge.classify, "classify", fake_classify, raising=False)
    monkeypatch.setattr(probe.judge.classify, "CLASSIFIER_VERSION", "fake-9", raising=False)
    r = _invoke("reclassify", "--db", str(db), "--run", "1")
    assert r.exit_code == 0, r.output
    assert "run 1: re-judged 3 measurements with classifier fake-9; 2 verdicts changed" in r.output
    assert "blocked -> ok: 1" in r.output and "reset -> ok: 1" in r.output
    assert "http://site0.example.org/: blocked/http -> ok" in r.output
    r = _invoke("results", "--db", str(db), "--run", "1", "--json")
    assert {json.loads(x)["classifier_version"] for x in r.output.splitlines()} == {"fake-9"}


def test_reclassify_bad_run_and_bad_database(tmp_path: Path, db: Path) -> None:
    assert CliRunner().invoke(cli, ["reclassify", "--db", str(db), "--run", "x"]).exit_code == 2
    r = CliRunner().invoke(cli, ["reclassify", "--db", str(tmp_path / "nope.db")])
    assert r.exit_code == 1 and "no such database" in r.output


def test_results_on_a_database_without_runs_exits_1(tmp_path: Path) -> None:
    path = tmp_path / "empty.db"
    Store.open(path).close()
    r = CliRunner().invoke(cli, ["results", "--db", str(path)])
    assert r.exit_code == 1 and "no runs" in r.output


def test_commands_have_help_text() -> None:
    for name in ("results", "reclassify"):
        r = CliRunner().invoke(cli, [name, "--help"])
        assert r.exit_code == 0 and "Examples:" in r.output and "--db" in r.output


def test_results_verdict_is_repeatable_and_keeps_every_value(db: Path) -> None:
    r = _invoke("results", "--db", str(db), "--run", "1", "--verdict", "blocked",
                "--verdict", "reset", "--json")
    assert [json.loads(x)["verdict"] for x in r.output.splitlines()] == ["blocked", "reset"]


def test_results_interference_matches_the_blocked_view(db: Path) -> None:
    r = _invoke("results", "--db", str(db), "--run", "all", "--verdict", "interference", "--json")
    got = sorted((json.loads(x)["vantage"], json.loads(x)["url"]) for x in r.output.splitlines())
    with Store.open(db, create=False) as s:
        view = sorted(s.conn.execute("SELECT vantage, url FROM blocked").fetchall())
    assert got == view and len(got) == 2


@pytest.mark.parametrize("width", [60, 80, 100, 132, 200])
def test_results_table_fits_the_width(db: Path, width: int) -> None:
    from probe.present.tables import format_table

    with Store.open(db, create=False) as s:
        rows = [{**r, "url": r["url"] + "x" * 90} for r in s.results(None)]
    lines = "".join(format_table(rows, width)).splitlines()
    assert len(lines) == 7
    assert all(len(line) <= width for line in lines), lines
    assert lines[0].split()[:2] == ["URL", "VERDICT"]


def test_results_csv_has_a_header_and_the_decisive_reason_in_words(db: Path) -> None:
    import csv
    import io

    r = _invoke("results", "--db", str(db), "--run", "1", "--csv")
    rows = list(csv.DictReader(io.StringIO(r.output)))
    assert [row["verdict"] for row in rows] == ["blocked", "ok", "reset"]
    assert rows[0]["reasons"] == "http/blockpage:test_1 dns/bogon:10.10.34.34"
    assert rows[0]["measured_at"].endswith("Z")
    assert rows[1]["decisive_reason"] == "" and rows[1]["explanation"] == ""
    assert rows[0]["decisive_reason"] in rows[0]["reasons"].split()
    assert rows[0]["explanation"] and ":" not in rows[0]["explanation"][:4]
