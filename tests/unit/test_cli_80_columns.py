"""Every command a volunteer runs fits an 80-column terminal: help texts, tables, evidence."""

from __future__ import annotations

from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from report_samples import build

from probe.cli import cli

OONI = Path(__file__).resolve().parents[1] / "fixtures" / "ooni" / "fastpath.jsonl.gz"


def _commands(cmd: click.Command, path: list[str]) -> list[list[str]]:
    out = [path]
    if isinstance(cmd, click.Group):
        for name, sub in cmd.commands.items():
            out += _commands(sub, [*path, name])
    return out


def _too_wide(text: str, width: int = 80) -> list[str]:
    return [line for line in text.splitlines() if len(line) > width]


@pytest.mark.parametrize("path", _commands(cli, []), ids=lambda p: " ".join(p) or "probe")
def test_every_help_text_fits_80_columns(path: list[str]) -> None:
    r = CliRunner().invoke(cli, [*path, "--help"], terminal_width=80)
    assert r.exit_code == 0, r.output
    assert _too_wide(r.output) == []


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = build(tmp_path_factory.mktemp("eighty") / "r.db")
    with_long = path.parent / "ooni.db"
    r = CliRunner().invoke(cli, ["import", "ooni", str(OONI), "--db", str(with_long)])
    assert r.exit_code == 0, r.output
    return path


@pytest.mark.parametrize("args", [
    ["runs"], ["results", "--run", "all"], ["compare"], ["compare", "--summary"],
    ["outages"], ["diff", "--vantage", "msk-isp1"], ["show", "http://site1.example.org/"],
    ["testlists"], ["lab", "list"], ["lab", "list", "-v"],
])  # fmt: skip
def test_every_command_fits_80_columns(db: Path, args: list[str],
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    needs_db = args[0] not in ("testlists", "lab")
    r = CliRunner().invoke(cli, [*args, *(["--db", str(db)] if needs_db else [])])
    assert r.exit_code == 0, r.output
    assert r.output.strip() and _too_wide(r.output) == []


def test_ooni_import_and_its_report_fit_80_columns(db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    ooni = db.parent / "ooni.db"
    for args in (["import", "ooni", str(OONI)], ["import", "ooni", "--report"],
                 ["compare", "--with-ooni"]):
        r = CliRunner().invoke(cli, [*args, "--db", str(ooni)])
        assert r.exit_code == 0, r.output
        assert _too_wide(r.output) == [], args


def test_geo_path_and_reclassify_fit_80_columns(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    db = build(tmp_path / "r.db")
    for args in (["geo", "path"], ["reclassify", "--db", str(db)]):
        r = CliRunner().invoke(cli, args)
        assert r.exit_code == 0, r.output
        assert r.output.strip() and _too_wide(r.output) == [], args
