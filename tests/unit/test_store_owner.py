"""Run owners: a later probe closes runs whose process is certainly gone, and only those."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from probe.store import Store
from probe.store.owner import Owner, current_owner, is_dead

linux_only = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")


def _exited_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    return int(proc.stdout)


def test_owner_text_round_trips() -> None:
    owner = Owner("m1", "b1", "4026531836", 1234, 98765)
    assert Owner.parse(owner.to_text()) == owner


@pytest.mark.parametrize("text", [None, "", "a:b", "m:b:n:pid:start", "m:b:n:1"])
def test_malformed_owner_text_is_unknown(text: str | None) -> None:
    assert Owner.parse(text) is None


@linux_only
def test_this_process_is_alive() -> None:
    here = current_owner()
    assert here.boot and here.pidns and here.start >= 0
    assert not is_dead(here, here)


@linux_only
def test_a_process_that_exited_is_dead() -> None:
    here = current_owner()
    assert is_dead(replace(here, pid=_exited_pid()), here)


@linux_only
def test_a_reused_pid_is_dead() -> None:
    """The pid exists but belongs to a process that started at another time."""
    here = current_owner()
    parent = replace(here, pid=os.getppid(), start=here.start + 10**9)
    assert is_dead(parent, here)


@linux_only
def test_another_boot_of_this_machine_is_dead() -> None:
    here = current_owner()
    if not here.machine:
        pytest.skip("no /etc/machine-id on this machine")
    assert is_dead(replace(here, boot="0" * 16), here)


@linux_only
@pytest.mark.parametrize(
    "change",
    [
        {"machine": "other", "boot": "other"},  # another machine sharing the file
        {"pidns": "1"},  # another container on this machine: its pids are not ours to check
        {"boot": "", "machine": ""},  # written where /proc was missing
    ],
)
def test_processes_that_cannot_be_checked_are_not_dead(change: dict[str, str]) -> None:
    here = current_owner()
    assert not is_dead(replace(here, pid=_exited_pid(), **change), here)  # type: ignore[arg-type]


@linux_only
def test_new_run_closes_runs_whose_process_is_gone(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "r.db")
    vid = store.vantage("v")
    dead_run = store.start_run(vid, [], {})
    live_run = store.start_run(vid, [], {})
    gone = replace(current_owner(), pid=_exited_pid()).to_text()
    store.conn.execute("UPDATE runs SET owner = ? WHERE id = ?", (gone, dead_run))
    store.conn.commit()

    third = store.start_run(vid, [], {})

    got = {r[0]: r[1:] for r in store.conn.execute(
        "SELECT id, status, finished_at IS NOT NULL, counts FROM runs")}  # fmt: skip
    assert got[dead_run][:2] == ("interrupted", 1)
    assert json.loads(got[dead_run][2])["ok"] == 0
    assert got[live_run][:2] == ("running", 0)  # this process: alive
    assert got[third][:2] == ("running", 0)
    assert store.close_dead_runs() == []


def test_runs_from_before_owners_existed_are_left_alone(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "r.db")
    vid = store.vantage("v")
    old = store.start_run(vid, [], {})
    store.conn.execute("UPDATE runs SET owner = NULL WHERE id = ?", (old,))
    store.conn.commit()
    assert store.close_dead_runs() == []
    assert store.run_info(old)["status"] == "running"  # type: ignore[index]
