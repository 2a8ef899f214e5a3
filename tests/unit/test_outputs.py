"""Outputs never destroy what they did not write: exports, reports, golden cases, lab databases.

Every command that writes files for people writes only its own, under a temporary name of its
own, renamed into place once complete (probe/host/output.py).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from store_samples import sample_measurement, sample_verdict

from probe.cli import cli
from probe.host.output import OutputError, Staged, check_output_dir, replacing, stage_files
from probe.store import Store

T0 = 1_790_000_000.0


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "r.db"
    with Store.open(path) as s:
        vid = s.vantage("moscow", asn=64500, country="RU")
        run = s.start_run(vid, ["list.csv"], {})
        s.write(run, vid, [(sample_measurement(i, started=T0 + i), sample_verdict()) for i in range(3)])
        s.finish_run(run, "complete")
    return path


def _tree(root: Path) -> dict[str, str]:
    """Every file under ``root`` (relative path -> sha256)."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}  # fmt: skip


def _invoke(*args: str) -> Any:
    return CliRunner().invoke(cli, list(args))


# --- the building blocks ---------------------------------------------------------------------------
def test_a_staged_file_replaces_its_target_only_when_complete(tmp_path: Path) -> None:
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError), replacing(target) as fh:
        fh.write("half of the new")
        raise RuntimeError("interrupted")
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["out.txt"]
    with replacing(target) as fh:
        fh.write("new")
    assert target.read_text() == "new" and [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_temporary_names_are_new_files_never_existing_ones(tmp_path: Path) -> None:
    target = tmp_path / "out.txt"
    first, second = Staged(target), Staged(target)
    assert first.tmp != second.tmp and first.tmp.parent == tmp_path
    assert first.tmp.name.startswith(".out.txt.") and first.tmp.exists()
    first.discard()
    second.discard()
    assert list(tmp_path.iterdir()) == []


def test_files_staged_together_appear_together_or_not_at_all(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    a.write_text("old a")
    with pytest.raises(RuntimeError), stage_files([a, b]) as files:
        files[0].tmp.write_text("new a")
        raise RuntimeError("the second failed")
    assert a.read_text() == "old a" and not b.exists() and len(list(tmp_path.iterdir())) == 1
    with stage_files([a, b]) as files:
        files[0].tmp.write_text("new a")
        files[1].tmp.write_text("new b")
    assert (a.read_text(), b.read_text()) == ("new a", "new b")


def test_an_output_directory_with_other_files_is_refused_without_force(tmp_path: Path) -> None:
    d = tmp_path / "out"
    d.mkdir()
    (d / "mine.parquet").write_text("x")
    (d / "notes.txt").write_text("y")
    (d / "older").mkdir()
    with pytest.raises(OutputError, match=r"does not write \(notes\.txt, older/\).*--force"):
        check_output_dir(d, ["mine.parquet"])
    assert check_output_dir(d, ["mine.parquet"], force=True) == ["notes.txt", "older"]
    assert check_output_dir(tmp_path / "new" / "dir", ["mine.parquet"]) == []


# --- probe export ---------------------------------------------------------------------------------
def test_parquet_export_into_a_directory_of_other_files_refuses_and_deletes_nothing(
    db: Path, tmp_path: Path
) -> None:
    pytest.importorskip("pyarrow.parquet")
    out = tmp_path / "exports"
    (out / "2024").mkdir(parents=True)
    (out / "2024" / "old.csv").write_text("an earlier export\n")
    (out / "README").write_text("my notes\n")
    before = _tree(out)
    r = _invoke("export", "--db", str(db), "--format", "parquet", "-o", str(out))
    assert r.exit_code == 2 and "--force" in r.output and "README" in r.output
    assert _tree(out) == before
    r = _invoke("export", "--db", str(db), "--format", "parquet", "-o", str(out), "--force")
    assert r.exit_code == 0, r.output
    after = _tree(out)
    assert {k: after[k] for k in before} == before  # the neighbour file and subdirectory survive
    assert "measurements.parquet" in after and not [n for n in after if n.startswith(".")]


def test_parquet_export_again_replaces_its_own_files_and_keeps_the_old_ones_on_failure(
    db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pq = pytest.importorskip("pyarrow.parquet")
    from probe.research.export import parquet as pqexport

    out = tmp_path / "pq"
    assert _invoke("export", "--db", str(db), "--format", "parquet", "-o", str(out)).exit_code == 0
    first = _tree(out)
    # Again into its own directory: no --force needed, the same files replaced.
    assert _invoke("export", "--db", str(db), "--format", "parquet", "-o", str(out)).exit_code == 0
    assert sorted(_tree(out)) == sorted(first)
    # A failure while writing the third table leaves the directory as it was.
    real = pqexport._Sink.add
    tables: list[str] = []

    def failing(sink: Any, columns: Any, keys: Any) -> None:
        if sink.name not in tables:
            tables.append(sink.name)
        if len(tables) == 3:
            raise OSError(28, "No space left on device")
        real(sink, columns, keys)

    monkeypatch.setattr(pqexport._Sink, "add", failing)
    r = _invoke("export", "--db", str(db), "--format", "parquet", "-o", str(out))
    assert r.exit_code == 1 and "No space left" in r.output
    assert _tree(out) == first and pq.read_table(out / "measurements.parquet").num_rows == 3


def test_a_parquet_file_this_export_does_not_write_is_kept_and_named(db: Path, tmp_path: Path) -> None:
    pytest.importorskip("pyarrow.parquet")
    out = tmp_path / "pq"
    assert _invoke("export", "--db", str(db), "--format", "parquet", "-o", str(out),
                   "--observations").exit_code == 0  # fmt: skip
    r = _invoke("export", "--db", str(db), "--format", "parquet", "-o", str(out))
    assert r.exit_code == 2 and "observations.parquet" in r.output
    assert (out / "observations.parquet").exists()


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "ooni"])
def test_a_file_export_never_touches_a_file_of_the_old_temporary_name(
    db: Path, tmp_path: Path, fmt: str
) -> None:
    out = tmp_path / f"results.{fmt}"
    partial = tmp_path / f"results.{fmt}.partial"
    partial.write_text("a file of the user's\n")
    r = _invoke("export", "--db", str(db), "--format", fmt, "-o", str(out))
    assert r.exit_code == 0, r.output
    assert partial.read_text() == "a file of the user's\n" and out.stat().st_size > 0
    assert {p.name for p in tmp_path.iterdir() if not p.name.startswith("r.db")} == {
        out.name, partial.name}


def test_an_export_or_report_never_overwrites_a_database(db: Path, tmp_path: Path) -> None:
    other = tmp_path / "other.db"
    Store.open(other).close()
    for target in (db, other):
        before = hashlib.sha256(target.read_bytes()).hexdigest()
        r = _invoke("export", "--db", str(db), "--format", "csv", "-o", str(target))
        assert r.exit_code == 2 and str(target) in r.output, r.output
        r = _invoke("report", "--db", str(db), "--out", str(target))
        assert r.exit_code == 2 and ("SQLite database" in r.output or "being read" in r.output)
        assert hashlib.sha256(target.read_bytes()).hexdigest() == before


def test_the_report_is_written_under_a_temporary_name_of_its_own(db: Path, tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    out.write_text("<p>the last report</p>")
    import os

    theirs = tmp_path / f".report.html.{os.getpid()}.tmp"  # the name the report once took
    theirs.write_text("a file of the user's")
    r = _invoke("report", "--db", str(db), "--out", str(out))
    assert r.exit_code == 0, r.output
    assert "<html" in out.read_text() and theirs.read_text() == "a file of the user's"


# --- the lab ----------------------------------------------------------------------------------------
def test_a_lab_scenario_never_deletes_a_database_kept_in_its_workdir(tmp_path: Path) -> None:
    from probe.lab.lab import _fresh

    (tmp_path / "dns-injection.db").write_text("an earlier run's results")
    path = _fresh(tmp_path, "dns-injection")
    assert path == tmp_path / "dns-injection.2.db"
    assert (tmp_path / "dns-injection.db").read_text() == "an earlier run's results"


def test_golden_cases_are_written_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from probe.lab.golden import export_golden
    from probe.lab.scenarios import SCENARIOS

    scenario = SCENARIOS[0]

    class Result:
        def __init__(self, k: int = 0) -> None:
            self.scenario = scenario
            self.records = [(sample_measurement(k), sample_verdict())] * len(scenario.targets)

    case = tmp_path / (f"lab-{scenario.name}" + ("-1" if len(scenario.targets) > 1 else ""))
    written = export_golden([Result()], tmp_path)
    assert case in written
    before = _tree(case)
    real = Path.write_text

    def disk_full_at_the_verdict(self: Path, *args: Any, **kwargs: Any) -> int:
        if "verdict.json" in self.name:
            raise OSError(28, "No space left on device")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Path, "write_text", disk_full_at_the_verdict)
    with pytest.raises(OSError):
        export_golden([Result(1)], tmp_path)  # other observations, failing at the third file
    assert _tree(case) == before  # no case made of two runs' files
    assert not [p for p in case.iterdir() if p.name.startswith(".")]
