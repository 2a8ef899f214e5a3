"""The lab itself: safety, cleanup, censor reset, knobs."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from probe.lab import topology
from probe.lab.scenarios import by_name

pytestmark = pytest.mark.lab


def test_probe_wrapper_refuses_to_run_outside_the_lab() -> None:
    # Runs in the root namespace on purpose: the wrapper must refuse before the probe starts.
    # The URL is loopback, so even a broken check could not send anything out.
    proc = subprocess.run(
        [sys.executable, "-m", "probe.lab.client", "run", "--url", "http://127.0.0.1:9/",
         "--no-control", "--accept-risks"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 3
    assert "refusing" in proc.stderr


def test_lab_services_refuse_to_start_outside_the_lab() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "probe.lab.dnsserver", "auth", "--listen", "127.0.0.1:0"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode != 0
    assert "LabSafetyError" in proc.stderr


def test_lab_creates_nothing_in_the_root_namespace(lab) -> None:  # type: ignore[no-untyped-def]
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    for dev in ("c0", "c1", "a0", "a1", "b0", "b1", "r0", "r1", "d0", "d1", "s0", "s1", "u0", "u1"):
        assert f": {dev}@" not in links and f": {dev}:" not in links


def test_censor_rules_and_conntrack_are_reset_after_a_scenario(lab, lab_workdir) -> None:  # type: ignore[no-untyped-def]
    lab.run_scenario(by_name("http-blockpage"), lab_workdir)
    filt = topology.ns_run(lab.topo.censor, ["iptables", "-S", "LAB-FWD"])
    nat = topology.ns_run(lab.topo.censor, ["iptables", "-t", "nat", "-S", "LAB-PRE"])
    assert filt.strip().splitlines() == ["-N LAB-FWD"]
    assert nat.strip().splitlines() == ["-N LAB-PRE"]
    proxy = json.loads((lab.state_dir / "proxy.json").read_text())
    assert proxy == {"block_hosts": [], "redirect_hosts": {}}
    # The priming rule survives every reset, so conntrack keeps tracking from the first packet.
    prime = topology.ns_run(lab.topo.censor, ["iptables", "-S", "LAB-PRIME"])
    assert "--ctstate INVALID" in prime


def test_bandwidth_knob_installs_and_removes_tbf(lab) -> None:  # type: ignore[no-untyped-def]
    lab.set_bandwidth("8mbit")
    try:
        shown = topology.ns_run(lab.topo.censor, ["tc", "qdisc", "show", "dev", "r1"])
        assert "tbf" in shown and "8Mbit" in shown
    finally:
        lab.set_bandwidth(None)
    assert "tbf" not in topology.ns_run(lab.topo.censor, ["tc", "qdisc", "show", "dev", "r1"])


def test_latency_knob_installs_and_removes_its_nfqueue_rules(lab) -> None:  # type: ignore[no-untyped-def]
    pytest.importorskip("netfilterqueue")
    lab.set_latency(20)
    try:
        rules = topology.ns_run(lab.topo.censor, ["iptables", "-t", "mangle", "-S", "FORWARD"])
        assert "NFQUEUE" in rules and "--queue-bypass" in rules
    finally:
        lab.set_latency(0)
    rules = topology.ns_run(lab.topo.censor, ["iptables", "-t", "mangle", "-S", "FORWARD"])
    assert "NFQUEUE" not in rules


def test_stale_lab_of_a_dead_owner_is_removed(lab_tools, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    topo = topology.Topology(topology.new_prefix())
    owner = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    with topology.state_lock():  # as a lab is made: no other clean-up sees it half made
        topo.state_dir.mkdir(parents=True)
        (topo.state_dir / "state.json").write_text(json.dumps({"prefix": topo.prefix, "owner": owner.pid}))
    subprocess.run(["ip", "netns", "add", topo.client], check=True)
    # The owner dies inside this clean-up, under the machine-wide lab lock: until then the lab
    # is alive to every other clean-up (another test worker's or session's new lab), so the
    # one removing it is this call.
    real_labs = topology.labs

    def owner_gone_then_labs() -> list[topology.LabInfo]:
        owner.kill()
        owner.wait()
        return real_labs()

    monkeypatch.setattr(topology, "labs", owner_gone_then_labs)
    try:
        assert topo.prefix in topology.cleanup_stale()
        assert topo.client not in topology.list_namespaces()
        assert not topo.state_dir.exists()
    finally:
        owner.kill()
        owner.wait()
        subprocess.run(["ip", "netns", "del", topo.client], capture_output=True)


def test_running_lab_is_not_taken_for_a_stale_one(lab) -> None:  # type: ignore[no-untyped-def]
    assert lab.topo.prefix not in topology.cleanup_stale()
    assert lab.topo.client in topology.list_namespaces()
