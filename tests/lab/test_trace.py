"""`probe trace` in the lab: the censor at hop 3 is located by the link it sits on.

The lab's path: client -> hop 1 (10.66.1.1) -> hop 2 (10.66.11.2) -> hop 3, the censor
(10.66.12.2) -> hop 4 (10.66.13.2) -> server. An iptables rule in the censor's FORWARD chain
acts after hop 3's own TTL check, so it is first met at TTL 4; the trace must then name the
link between hop 3 and hop 4 (and say why), not "hop 4". Benign twins (a hop that sends no
ICMP, a server that accepts but never answers) must not name a censor.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
from pathlib import Path
from typing import Any

import pytest

from probe.lab.scenarios import Censor, sni_hex
from probe.lab.sites import site

pytestmark = pytest.mark.lab

NAME = "tls-fin.lab.example"
IP = site(NAME).ip
#: The routers as seen from the client: the address of each one's client-facing interface.
ROUTERS = ["10.66.1.1", "10.66.11.2", "10.66.12.2", "10.66.13.2"]
SNI_RULE = f"-p tcp --dport 443 -m string --algo bm --hex-string {sni_hex(NAME)}"


def _trace(lab: Any, tmp: Path, censor: Censor, *, text: bool = False,
           extra: tuple[str, ...] = ()) -> Any:  # fmt: skip
    """The trace's JSON (and with ``text`` its text output too) under ``censor``."""
    lab.apply(censor)
    try:
        argv = ["trace", f"https://{NAME}/", "--ip", IP, "--control-name", "clean.lab.example",
                "--wait", "0.5", "--db", str(tmp / "t.db"), *extra]  # fmt: skip
        proc = subprocess.run(lab.client_argv([*argv, "--json"]), capture_output=True, text=True,
                              timeout=120, env=lab._env())  # fmt: skip
        shown = None
        if text:
            shown = subprocess.run(lab.client_argv([*argv, "--no-store"]), capture_output=True,
                                   text=True, timeout=120, env=lab._env())  # fmt: skip
    finally:
        lab.reset()
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    if shown is None:
        return data
    assert shown.returncode == 0, shown.stderr
    assert all(len(line) <= 80 for line in shown.stdout.splitlines()), shown.stdout
    return data, " ".join(shown.stdout.split())  # the words, whatever the line breaks


def _routers(data: dict[str, Any], probe: str) -> list[str]:
    return [p["router"] for p in data["probes"] if p["probe"] == probe and p["router"]]


def _link(data: dict[str, Any]) -> tuple[Any, ...]:
    link = data["link"]
    return (link["near"], link["near_router"], link["far"], link["far_router"])


def test_trace_finds_an_on_path_injector_at_hop_3(lab: Any, tmp_path: Path) -> None:
    data = _trace(lab, tmp_path, Censor(inject_tcp=((443, NAME.encode().hex(), "FA"),)))
    assert _routers(data, "control") == ROUTERS
    assert data["server_hop"] == 5
    # The injector taps hop 3's incoming link: it sees the trigger from TTL 3 on.
    assert (data["censor_hop"], data["placement"], data["technique"]) == (3, "on-path", "fin")
    assert _link(data) == (2, "10.66.11.2", 3, "10.66.12.2")
    # The trigger went on past the injector: router 4 still reported it expiring.
    assert "10.66.13.2" in _routers(data, "trigger")
    assert 0 < data["packets_sent"] <= 2 * 5 * 8


def test_trace_puts_a_reset_in_the_censors_forwarding_between_hop_3_and_4(
        lab: Any, tmp_path: Path) -> None:  # fmt: skip
    data, text = _trace(lab, tmp_path, Censor(forward=(f"{SNI_RULE} -j REJECT --reject-with tcp-reset",)),
                        text=True)  # fmt: skip
    # Hop 3 answers the trigger at TTL 3 (its TTL check comes before its FORWARD chain); the
    # reset comes from TTL 4 on: the link is hop 3 -> hop 4, and the words say why.
    assert (data["censor_hop"], data["placement"], data["technique"]) == (4, "in-path", "rst")
    assert _link(data) == (3, "10.66.12.2", 4, "10.66.13.2")
    assert "10.66.13.2" not in _routers(data, "trigger")
    assert "Censor between hop 3 (10.66.12.2) and hop 4 (10.66.13.2), in-path" in text
    assert "resets the connection" in text
    assert "inside hop 3 (after routing), on the link from hop 3 to hop 4" in text
    assert "only with TTL N+1 does it travel past hop N" in text
    con = sqlite3.connect(tmp_path / "t.db")
    assert con.execute("SELECT censor_hop, placement FROM traces").fetchall() == [(4, "in-path")]
    assert con.execute("SELECT count(*) FROM trace_hops").fetchone()[0] == len(data["probes"])
    stored = json.loads(con.execute("SELECT data FROM traces").fetchone()[0])
    assert stored["link"] == data["link"]


def test_trace_finds_a_silent_dropper_at_hop_3(lab: Any, tmp_path: Path) -> None:
    # The most common technique of TSPU and the GFW: the ClientHello is discarded, nothing is
    # sent back. Before, this was reported at the server's hop 5.
    data, text = _trace(lab, tmp_path, Censor(forward=(f"{SNI_RULE} -j DROP",)), text=True)
    assert data["server_hop"] == 5
    assert (data["censor_hop"], data["placement"], data["technique"]) == (4, "in-path", "drop")
    assert _link(data) == (3, "10.66.12.2", 4, "10.66.13.2")
    # The trigger's quotes stop at hop 3; the control's go on to hop 4 and the server.
    assert _routers(data, "trigger") == ROUTERS[:3]
    assert _routers(data, "control") == ROUTERS
    assert "Censor between hop 3 (10.66.12.2) and hop 4 (10.66.13.2), in-path" in text
    assert "silently drops the trigger" in text


def test_a_hop_that_never_sends_icmp_is_not_a_censor(lab: Any, tmp_path: Path) -> None:
    # Hop 4's time-exceeded messages never reach the client (many routers send none): for
    # the trigger and the control alike, so nothing differs.
    rule = "-p icmp --icmp-type time-exceeded -s 10.66.13.2 -j DROP"
    data, text = _trace(lab, tmp_path, Censor(forward=(rule,)), text=True)
    assert _routers(data, "control") == ROUTERS[:3]
    assert data["server_hop"] == 5
    assert (data["censor_hop"], data["placement"], data["link"], data["technique"]) == (
        None, None, None, None)
    assert "No difference" in text and "Censor" not in text


def test_a_server_that_never_answers_is_not_a_censor(lab: Any, tmp_path: Path) -> None:
    # The site accepts connections but drops every segment that carries data (a hung or
    # overloaded server): the trigger and the control both go unanswered at the server.
    rule = "-p tcp --dport 443 -m length --length 100:65535 -j DROP"
    data = _trace(lab, tmp_path, Censor(server_input=(rule,)), extra=("--max-ttl", "6"))
    assert _routers(data, "control") == ROUTERS
    assert (data["censor_hop"], data["placement"], data["link"], data["server_hop"]) == (
        None, None, None, None)
