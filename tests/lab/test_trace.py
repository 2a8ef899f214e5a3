"""`probe trace` in the lab: the censor at hop 3 is located by the link it sits on.

The lab's path: client -> hop 1 (10.66.1.1) -> hop 2 (10.66.11.2) -> hop 3, the censor
(10.66.12.2) -> hop 4 (10.66.13.2) -> server. An iptables rule in the censor's FORWARD chain
acts after hop 3's own TTL check, so it is first met at TTL 4; the trace must then name the
link between hop 3 and hop 4 (and say why), not "hop 4". Benign twins (a hop that sends no
ICMP, a server that accepts but never answers) must not name a censor.

Each case is a lab scenario (`probe lab run trace`; its ``TraceExpect`` holds the routers, the
link, the technique and the words of the report, checked by probe/lab/checks.py); these tests
run them through the scenario machinery and read what the trace stored.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from scenario_runs import explain, on_scenario

from probe.lab.scenarios import by_name

if TYPE_CHECKING:
    from probe.lab.lab import ScenarioResult

pytestmark = pytest.mark.lab
Run = Callable[[str], "ScenarioResult"]


def _passes(run_scenario: Run, name: str) -> ScenarioResult:
    result = run_scenario(name)
    assert result.ok, explain(result)
    return result


@on_scenario("trace-injector")
def test_trace_finds_an_on_path_injector_at_hop_3(run_scenario: Run) -> None:
    # The injector taps hop 3's incoming link: it sees the trigger from TTL 3 on, and the
    # trigger went on past it (router 4 still reported it expiring).
    _passes(run_scenario, "trace-injector")


@on_scenario("trace-rst")
def test_trace_puts_a_reset_in_the_censors_forwarding_between_hop_3_and_4(
        run_scenario: Run, lab_workdir: Path) -> None:  # fmt: skip
    # Hop 3 answers the trigger at TTL 3 (its TTL check comes before its FORWARD chain); the
    # reset comes from TTL 4 on: the link is hop 3 -> hop 4, and the words say why.
    _passes(run_scenario, "trace-rst")
    expected = by_name("trace-rst").trace
    assert expected is not None and expected.link is not None
    con = sqlite3.connect(lab_workdir / "trace-rst.db")
    assert con.execute("SELECT censor_hop, placement FROM traces").fetchall() == [(4, "in-path")]
    stored = json.loads(con.execute("SELECT data FROM traces").fetchone()[0])
    assert con.execute("SELECT count(*) FROM trace_hops").fetchone()[0] == len(stored["probes"])
    link = stored["link"]
    assert (link["near"], link["near_router"], link["far"], link["far_router"]) == expected.link


@on_scenario("trace-drop")
def test_trace_finds_a_silent_dropper_at_hop_3(run_scenario: Run) -> None:
    # The most common technique of TSPU and the GFW: the ClientHello is discarded, nothing is
    # sent back. Before, this was reported at the server's hop 5.
    _passes(run_scenario, "trace-drop")


@on_scenario("trace-silent-hop")
def test_a_hop_that_never_sends_icmp_is_not_a_censor(run_scenario: Run) -> None:
    # Hop 4's time-exceeded messages never reach the client (many routers send none): for
    # the trigger and the control alike, so nothing differs.
    _passes(run_scenario, "trace-silent-hop")


@on_scenario("trace-server-mute")
def test_a_server_that_never_answers_is_not_a_censor(run_scenario: Run) -> None:
    # The site accepts connections but drops every segment that carries data (a hung or
    # overloaded server): the trigger and the control both go unanswered at the server.
    _passes(run_scenario, "trace-server-mute")
