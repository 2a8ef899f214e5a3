"""`probe trace` in the lab: the censor at hop 3 is found, on-path and in-path told apart."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from probe.lab.scenarios import Censor, sni_hex
from probe.lab.sites import site

pytestmark = pytest.mark.lab

NAME = "tls-fin.lab.example"
IP = site(NAME).ip
#: The routers as seen from the client: the address of each one's client-facing interface.
ROUTERS = ["10.66.1.1", "10.66.11.2", "10.66.12.2", "10.66.13.2"]


def _trace(lab, tmp: Path, censor: Censor) -> dict:  # type: ignore[no-untyped-def]
    lab.apply(censor)
    try:
        argv = lab.client_argv(["trace", f"https://{NAME}/", "--ip", IP, "--control-name",
                                "clean.lab.example", "--wait", "0.5", "--db", str(tmp / "t.db"),
                                "--json"])  # fmt: skip
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=120, env=lab._env())
    finally:
        lab.reset()
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def _routers(data: dict, probe: str) -> list[str]:  # type: ignore[type-arg]
    return [p["router"] for p in data["probes"] if p["probe"] == probe and p["router"]]


def test_trace_finds_an_on_path_injector_at_hop_3(lab, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    data = _trace(lab, tmp_path, Censor(inject_tcp=((443, NAME.encode().hex(), "FA"),)))
    assert _routers(data, "control") == ROUTERS
    assert data["server_hop"] == 5
    assert (data["censor_hop"], data["placement"]) == (3, "on-path")
    # The trigger went on past the injector: router 4 still reported it expiring.
    assert "10.66.13.2" in _routers(data, "trigger")
    assert 0 < data["packets_sent"] <= 2 * 5 * 8


def test_trace_finds_an_in_path_reset_in_the_censors_forwarding(lab, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    rule = (f"-p tcp --dport 443 -m string --algo bm --hex-string {sni_hex(NAME)} "
            "-j REJECT --reject-with tcp-reset")
    data = _trace(lab, tmp_path, Censor(forward=(rule,)))
    # The censor is router 3; iptables acts in its forwarding path, so it reacts from TTL 4 on.
    assert (data["censor_hop"], data["placement"]) == (4, "in-path")
    assert "10.66.13.2" not in _routers(data, "trigger")
    import sqlite3

    con = sqlite3.connect(tmp_path / "t.db")
    assert con.execute("SELECT censor_hop, placement FROM traces").fetchall() == [(4, "in-path")]
    assert con.execute("SELECT count(*) FROM trace_hops").fetchone()[0] == len(data["probes"])
