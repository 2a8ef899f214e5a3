"""`probe run --resume`: which selection an interrupted run is resumed with (probe/run/resume.py)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest

from probe.core.settings import ListSelection
from probe.inputs.testlists import open_list
from probe.run.resume import ResumeError, plan_resume
from probe.store import Store

LIST = b"url,category_code\nhttp://a.example/,NEWS\n"
SHA = hashlib.sha256(LIST).hexdigest()


def _interrupted(db: Path, lists: list[str], options: dict[str, Any]) -> None:
    with Store.open(db) as store:
        run = store.start_run(store.vantage("home"), lists, options)
        store.finish_run(run, "interrupted")


def _selection(name: str) -> dict[str, Any]:
    return {"selection": {"lists": [{"name": name, "sha256": SHA}], "urls": [], "category": ["NEWS"],
                          "strict": False}}


def test_a_list_probe_knows_is_found_by_name_and_checked_by_content(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shipped = tmp_path / "lists"
    shipped.mkdir()
    (shipped / "global.csv").write_bytes(LIST)
    monkeypatch.setenv("PROBE_TESTLISTS_DIR", str(shipped))
    db = tmp_path / "r.db"
    _interrupted(db, [f"global.csv sha256:{SHA}"], _selection("global.csv"))
    with Store.open(db, create=False) as store:
        plan = plan_resume(store, "latest", ListSelection())
    assert plan.run_id == 1
    assert plan.selection == ListSelection(lists=(shipped / "global.csv",), category="NEWS")
    with open_list(shipped / "global.csv") as same:
        plan.check([same])
    (shipped / "global.csv").write_bytes(LIST + b"http://b.example/,NEWS\n")  # updated since
    with open_list(shipped / "global.csv") as changed, pytest.raises(ResumeError) as err:
        plan.check([changed])
    assert "global.csv is not the list run 1 measured" in str(err.value)


def test_a_list_read_from_stdin_must_be_given_again(tmp_path: Path) -> None:
    db = tmp_path / "r.db"
    _interrupted(db, [f"<stdin> sha256:{SHA}"], _selection("<stdin>"))
    with Store.open(db, create=False) as store, pytest.raises(ResumeError) as err:
        plan_resume(store, 1, ListSelection())
    assert "`probe run - --resume 1 < LIST`" in str(err.value)


def test_a_run_of_an_older_probe_needs_its_lists_given_again(tmp_path: Path) -> None:
    db = tmp_path / "r.db"
    _interrupted(db, [f"my.csv sha256:{SHA}"], {"db": "r.db"})  # no "selection" recorded
    with Store.open(db, create=False) as store:
        with pytest.raises(ResumeError) as err:
            plan_resume(store, 1, ListSelection())
        assert "older probe" in str(err.value) and "my.csv" in str(err.value)
        mine = tmp_path / "my.csv"
        mine.write_bytes(LIST)
        plan = plan_resume(store, 1, ListSelection(lists=(mine,)))
    with open_list(mine) as opened:
        plan.check([opened])


def test_measuring_flags_other_than_the_runs_are_said(tmp_path: Path) -> None:
    from probe.core.settings import MeasureConfig, RunSettings
    from probe.run.writer import recorded_options

    then = recorded_options(RunSettings(controls=("http://127.0.0.1:1/",)),
                            MeasureConfig(resolvers=("127.0.0.53",), dns_probe=("127.0.0.9",)))
    db = tmp_path / "r.db"
    _interrupted(db, [f"my.csv sha256:{SHA}"], {**then, **_selection("my.csv")})
    mine = tmp_path / "my.csv"
    mine.write_bytes(LIST)
    with Store.open(db, create=False) as store:
        plan = plan_resume(store, 1, ListSelection(lists=(mine,)))
    assert plan.differences(then) == []
    now = recorded_options(RunSettings(controls=("http://127.0.0.1:1/",)), MeasureConfig())
    assert plan.differences(now) == [
        "--resolver: run 1 was measured with 127.0.0.53, this resume with the system's",
        "--dns-probe: run 1 was measured with 127.0.0.9, this resume with none"]
