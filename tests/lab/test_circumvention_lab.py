"""Circumvention reachability in the lab: a censor that blackholes a Tor relay by address and
spots OpenVPN by its first packet (resetting it over TCP, dropping it over UDP), next to a relay
that works and an endpoint that is down for everyone."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from service_priority import favour

pytestmark = pytest.mark.lab

BLOCKED_RELAY = "10.66.2.201"
OPEN_RELAY = "10.66.2.202"
VPN = "10.66.2.203"


@pytest.fixture(scope="module")
def endpoints_up(lab: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Relays and an OpenVPN server on new addresses of the lab's server namespace."""
    from probe.lab.certs import CertAuthority
    from probe.lab.topology import ns_run

    d = tmp_path_factory.mktemp("relays")
    # Self-signed-like: nobody trusts this CA.
    CertAuthority("untrusted relay CA").leaf_files(d, "relay", "relay.invalid")
    server = lab.topo.server
    for ip in (BLOCKED_RELAY, OPEN_RELAY, VPN):
        ns_run(server, ["ip", "addr", "add", f"{ip}/32", "dev", "s0"], check=False)
    proc = subprocess.Popen(
        ["ip", "netns", "exec", server, sys.executable, "-m", "probe.lab.toolservers",
         "--tls", f"{BLOCKED_RELAY}:9001", "--tls", f"{OPEN_RELAY}:9001", "--openvpn", f"{VPN}:1194",
         "--cert", str(d / "relay.pem"), "--key", str(d / "relay.key")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == b"ready"
        favour(proc.pid)  # `ip netns exec` exec'd the server: a lab service like the others
        yield
    finally:
        proc.kill()
        proc.wait()
        for ip in (BLOCKED_RELAY, OPEN_RELAY, VPN):
            ns_run(server, ["ip", "addr", "del", f"{ip}/32", "dev", "s0"], check=False)


def _suite(lab: Any, tmp: Path, censor: Any) -> dict[str, tuple[str, list[str]]]:
    lst = tmp / "lab-endpoints.csv"
    lst.write_text(
        "kind,name,address,port,sni,notes,source\n"
        f"tor,blocked-relay,{BLOCKED_RELAY},9001,,,lab\n"
        f"tor,open-relay,{OPEN_RELAY},9001,,,lab\n"
        f"tor,down-relay,{OPEN_RELAY},9002,,,lab\n"
        f"openvpn-tcp,vpn-tcp,{VPN},1194,,,lab\n"
        f"openvpn-udp,vpn-udp,{VPN},1194,,,lab\n"
    )
    lab.apply(censor)
    try:
        argv = ["circumvention", str(lst), "--db", str(tmp / "c.db"), "--vantage", "lab",
                "--control", lab.control_url, "--cafile", lab.cafile, "--accept-risks", "--json",
                "--tcp-timeout", "2", "--handshake-timeout", "2"]  # fmt: skip
        done = subprocess.run(lab.client_argv(argv), capture_output=True, text=True, timeout=120)
    finally:
        lab.reset()
    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    return {r["name"]: (r["verdict"], r["reasons"]) for r in rows}


def test_a_censor_that_blocks_tor_by_address_and_openvpn_by_its_first_packet(
    lab: Any, endpoints_up: None, tmp_path: Path
) -> None:
    from probe.lab.scenarios import Censor

    censor = Censor(forward=(
        f"-d {BLOCKED_RELAY} -p tcp -j DROP",
        # OpenVPN's first packet: opcode 7, key 0 (0x38), the first payload byte of a datagram...
        "-p udp --dport 1194 -m string --algo bm --hex-string |38| --from 28 --to 29 -j DROP",
        # ...or after the 2-byte length (14) over TCP: answered with a reset.
        "-p tcp --dport 1194 -m string --algo bm --hex-string |000e38| -j REJECT --reject-with tcp-reset",
    ))  # fmt: skip
    got = _suite(lab, tmp_path, censor)
    assert got["blocked-relay"][0] == "blocked"
    assert f"tcp/timeout:{BLOCKED_RELAY}:9001" in got["blocked-relay"][1]
    assert got["open-relay"][0] == "ok"
    assert got["vpn-tcp"][0] == "reset" and f"openvpn/reset:{VPN}:1194" in got["vpn-tcp"][1]
    # No UDP control exists: a silent OpenVPN server is not proof of blocking.
    assert got["vpn-udp"][0] == "inconclusive" and "control/none:udp" in got["vpn-udp"][1]
    # Benign: nothing listens there, for the control either.
    assert got["down-relay"][0] == "down"


def test_without_a_censor_every_live_endpoint_is_ok(lab: Any, endpoints_up: None, tmp_path: Path) -> None:
    from probe.lab.scenarios import Censor

    got = _suite(lab, tmp_path, Censor())
    assert {k: v[0] for k, v in got.items()} == {
        "blocked-relay": "ok", "open-relay": "ok", "down-relay": "down", "vpn-tcp": "ok", "vpn-udp": "ok",
    }  # fmt: skip
