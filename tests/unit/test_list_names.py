"""Lists by name: `probe run ru`, `ru.csv`, `testlists/ru.csv`, `global,cn` from any directory;
a path that exists always wins; an unknown name is a usage error pointing at `probe testlists`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from probe.cli import cli
from probe.inputs.testlists import TestListError, find_lists
from probe.inputs.testlists import testlists_dir as lists_dir

HEADER = "url,category_code,category_description,date_added,source,notes\n"


@pytest.fixture
def elsewhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working directory without a testlists/ folder, as after a pipx install."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PROBE_TESTLISTS_DIR", raising=False)
    monkeypatch.setenv("PROBE_DATA_DIR", str(tmp_path / "data"))  # no updated lists
    return tmp_path


def test_names_find_the_shipped_lists_from_any_directory(elsewhere: Path) -> None:
    shipped = lists_dir()
    ru, cn, glob = shipped / "ru.csv", shipped / "cn.csv", shipped / "global.csv"
    assert find_lists(["ru"]) == find_lists(["ru.csv"]) == find_lists(["testlists/ru.csv"]) == [ru]
    assert find_lists(["RU"]) == [ru]
    assert find_lists(["global,cn"]) == [glob, cn]
    assert find_lists(["global, cn", "ru"]) == [glob, cn, ru]


def test_a_path_that_exists_always_wins(elsewhere: Path) -> None:
    (elsewhere / "ru.csv").write_text(HEADER + "http://mine.example/,NEWS,,,,\n")
    (elsewhere / "testlists").mkdir()
    (elsewhere / "testlists" / "cn.csv").write_text(HEADER)
    assert find_lists(["ru.csv"]) == [Path("ru.csv")]
    assert find_lists(["testlists/cn.csv"]) == [Path("testlists/cn.csv")]
    assert find_lists(["ru"]) == [lists_dir() / "ru.csv"]  # "ru" is no file here: the list
    assert find_lists(["-"]) == [Path("-")]


def test_a_missing_path_elsewhere_is_never_taken_for_a_name(elsewhere: Path) -> None:
    assert find_lists(["/nowhere/ru.csv"]) == [Path("/nowhere/ru.csv")]  # open_list: no such file
    assert find_lists(["lists/ru.csv"]) == [Path("lists/ru.csv")]


def test_updated_lists_come_first_and_shipped_ones_fill_in(elsewhere: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    updated = elsewhere / "data" / "testlists"
    updated.mkdir(parents=True)
    for name in ("global.csv", "ru.csv"):
        (updated / name).write_text(HEADER)
    assert find_lists(["ru"]) == [updated / "ru.csv"]
    cn = find_lists(["cn"])[0]
    assert cn.parent != updated and cn.name == "cn.csv"  # not fetched by the update: shipped


def test_an_unknown_name_is_a_usage_error_naming_probe_testlists(elsewhere: Path) -> None:
    with pytest.raises(TestListError) as err:
        find_lists(["global,xx"])
    assert err.value.usage and "xx: no such file, nor a test list probe knows" in str(err.value)
    assert "known: global, cn, ru" in str(err.value) and "`probe testlists`" in str(err.value)
    r = CliRunner().invoke(cli, ["run", "xx", "--accept-risks", "--db", str(elsewhere / "r.db")])
    assert r.exit_code == 2 and "probe testlists" in r.output
    assert not (elsewhere / "r.db").exists()  # refused before the database was touched


def test_probe_testlists_shows_lists_by_name(elsewhere: Path) -> None:
    r = CliRunner().invoke(cli, ["testlists", "ru", "global,cn", "--json"])
    assert r.exit_code == 0, r.output
    names = [Path(json.loads(line)["path"]).name for line in r.output.splitlines()]
    assert names == ["ru.csv", "global.csv", "cn.csv"]
