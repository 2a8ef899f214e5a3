"""`probe testlists` through click's CliRunner."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from probe.cli import cli

HEADER = "url,category_code,category_description,date_added,source,notes\n"


@pytest.fixture(autouse=True)
def shipped_lists(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PROBE_TESTLISTS_DIR", raising=False)


def test_default_shows_shipped_lists_with_category_counts_and_origin() -> None:
    result = CliRunner().invoke(cli, ["testlists"])
    assert result.exit_code == 0, result.output
    out = result.stdout
    for name in ("global.csv", "cn.csv", "ru.csv"):
        assert name in out
    assert "00-LEGEND" not in out
    assert "Citizen Lab" in out and "CC BY-NC-SA 4.0" in out
    news = next(line for line in out.splitlines() if line.startswith("NEWS "))
    assert "News Media" in news
    assert "total" in out


def test_user_list_counts_and_bad_rows_are_warned_with_file_line(tmp_path: Path) -> None:
    path = tmp_path / "mine.csv"
    path.write_text(
        HEADER
        + "http://a.example/,NEWS,News Media,,,\n"
        + "ftp://b.example/,NEWS,News Media,,,\n"
        + "http://c.example/,HUMR,Human Rights Issues,,,\n"
    )
    result = CliRunner().invoke(cli, ["testlists", str(path)])
    assert result.exit_code == 0
    assert f"{path}:3: invalid URL" in result.stderr
    assert "2 URLs" in result.stdout
    assert "[shipped]" not in result.stdout
    humr = next(line for line in result.stdout.splitlines() if line.startswith("HUMR"))
    assert humr.split()[-1] == "1"


def test_json_output_has_one_object_per_list(tmp_path: Path) -> None:
    path = tmp_path / "mine.csv"
    path.write_text(HEADER + "http://a.example/,NEWS,News Media,,,\n")
    result = CliRunner().invoke(cli, ["testlists", "--json", str(path)])
    assert result.exit_code == 0
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(records) == 1
    assert records[0]["path"] == str(path)
    assert records[0]["urls"] == 1
    assert records[0]["categories"]["NEWS"] == {"urls": 1, "description": "News Media"}


def test_missing_file_exits_2_naming_it(tmp_path: Path) -> None:
    missing = tmp_path / "nope.csv"
    result = CliRunner().invoke(cli, ["testlists", str(missing)])
    assert result.exit_code == 2
    assert f"{missing}: no such file" in result.stderr


def test_header_without_url_column_exits_2(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("link,category_code\nhttp://a.example/,NEWS\n")
    result = CliRunner().invoke(cli, ["testlists", str(path)])
    assert result.exit_code == 2
    assert f"{path}:1:" in result.stderr


def test_empty_list_directory_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROBE_TESTLISTS_DIR", str(tmp_path))
    result = CliRunner().invoke(cli, ["testlists"])
    assert result.exit_code == 0
    assert "No test lists found" in result.stdout


def test_help_is_documented() -> None:
    result = CliRunner().invoke(cli, ["testlists", "--help"])
    assert result.exit_code == 0
    assert "per category" in result.stdout
