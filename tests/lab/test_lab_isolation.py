"""Two labs on one machine: each is owned by its maker and neither changes the other's outcomes.

Issue 9 saw lab scenarios that drop a ClientHello pass through uncensored ("expected
tls:generic_timeout_error, got none") while other labs were up. The cause: `probe lab run` and
`probe lab down` attached to the newest lab of the machine, whoever owned it, so a second
user's run reset (or removed) the censor rules of a test session's lab in the middle of its
scenario. Labs now belong to their maker; these tests hold that, with a second lab up.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from probe.cli import cli
from probe.lab import topology
from probe.lab.lab import Lab, LabError
from probe.lab.scenarios import Expect, Scenario, by_name

pytestmark = pytest.mark.lab


def test_a_second_lab_has_its_own_prefix_and_a_taken_prefix_is_refused(lab: Lab, second_lab: Lab) -> None:
    assert second_lab.topo.prefix != lab.topo.prefix
    live = set(topology.list_namespaces())
    assert set(second_lab.topo.namespaces) <= live
    assert all(ns.startswith(f"{second_lab.topo.prefix}-") for ns in second_lab.topo.namespaces)
    with pytest.raises(LabError, match="in use"):
        Lab.create(prefix=second_lab.topo.prefix)
    # The refusal touched nothing of the lab that holds the prefix.
    assert set(second_lab.topo.namespaces) <= set(topology.list_namespaces())
    assert (second_lab.state_dir / "state.json").is_file()


def test_two_labs_run_scenarios_side_by_side_without_changing_each_others(
    lab: Lab, second_lab: Lab, lab_workdir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The session's lab drops ClientHellos naming tls-drop; in the second lab the same site,
    # at the same address, is uncensored, and that lab keeps resetting its censor (what a
    # `probe lab run` of another user does between scenarios) for as long as the first runs.
    drop = by_name("tls-sni-drop")
    same_site = Scenario("tls-drop-uncensored", 0, "the same site, uncensored", "benign",
                         (Expect(drop.targets[0].url, "ok", step="none", status=200),))  # fmt: skip
    done = threading.Event()
    reset = threading.Condition()
    resets = 0

    def neighbour() -> bool:
        nonlocal resets
        result = second_lab.run_scenario(same_site, tmp_path)
        while not done.is_set():
            second_lab.reset()
            with reset:
                resets += 1
                reset.notify_all()
        return result.ok

    # Our probe starts only once the neighbour has reset its censor after ours was applied:
    # the moment the old bug struck (a reset between a scenario's rules and its probe). Without
    # this, a neighbour whose own scenario outlasted ours (a loaded machine) never reset
    # during ours, and the test proved nothing.
    measure = lab.probe

    def probe_after_a_neighbour_reset(*args: Any, **kw: Any) -> Any:
        with reset:
            seen = resets
            assert reset.wait_for(lambda: resets > seen, timeout=120), "the neighbour never reset"
        return measure(*args, **kw)

    monkeypatch.setattr(lab, "probe", probe_after_a_neighbour_reset)
    with ThreadPoolExecutor(2) as pool:
        other = pool.submit(neighbour)
        try:
            ours = lab.run_scenario(drop, lab_workdir / "isolation")
        finally:
            done.set()
        other_ok = other.result()
    assert ours.ok, [(o.observed, o.observation_errors, o.verdict_errors) for o in ours.outcomes]
    assert other_ok
    assert resets >= 1


def test_lab_commands_leave_a_lab_owned_by_a_running_process_alone(lab: Lab) -> None:
    prefix = lab.topo.prefix
    with pytest.raises(LabError, match="belongs to process"):
        Lab.attach(prefix)
    for command in (["down", "--prefix", prefix], ["run", "--prefix", prefix, "clean"]):
        result = CliRunner().invoke(cli, ["lab", *command])
        assert result.exit_code == 1, result.output
        assert "belongs to process" in result.output
    assert lab.topo.prefix not in topology.cleanup_stale()
    assert set(lab.topo.namespaces) <= set(topology.list_namespaces())


def test_another_users_persistent_lab_is_never_attached_to_nor_removed(lab_tools: None) -> None:
    prefix = f"uid{os.getpid() % 10**6}"
    topo = topology.Topology(prefix)
    with topology.state_lock():
        topo.state_dir.mkdir(parents=True)
        topology.write_state(topo.state_dir, {"prefix": prefix, "owner": 1, "uid": 4242,
                                              "persistent": True})  # fmt: skip
    subprocess.run(["ip", "netns", "add", topo.client], check=True)
    try:
        with pytest.raises(LabError, match="another user"):
            Lab.attach(prefix)
        result = CliRunner().invoke(cli, ["lab", "down", "--prefix", prefix])
        assert result.exit_code == 1 and "another user" in result.output
        assert prefix not in topology.cleanup_stale()
        status = CliRunner().invoke(cli, ["lab", "status"])
        assert f"{prefix}  up  (probe lab up, uid 4242)" in status.output
        assert topo.client in topology.list_namespaces()
        assert json.loads((topo.state_dir / "state.json").read_text())["uid"] == 4242
    finally:
        topology.destroy(topo)


def test_a_lab_from_before_labs_had_users_is_taken_only_when_named(lab_tools: None) -> None:
    prefix = f"old{os.getpid() % 10**6}"
    topo = topology.Topology(prefix)
    with topology.state_lock():
        topo.state_dir.mkdir(parents=True)
        topology.write_state(topo.state_dir, {"prefix": prefix, "owner": 1, "persistent": True})
    subprocess.run(["ip", "netns", "add", topo.client], check=True)
    try:
        assert prefix not in [i.prefix for i in topology.labs() if i.mine()]  # never picked unnamed
        assert Lab.attach(prefix).topo.prefix == prefix  # `probe lab down --prefix` can remove it
    finally:
        topology.destroy(topo)
