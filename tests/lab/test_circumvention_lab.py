"""Circumvention reachability in the lab: a censor that blackholes a Tor relay by address and
spots OpenVPN by its first packet (resetting it over TCP, dropping it over UDP), next to a relay
that works and an endpoint that is down for everyone.

The relays and the OpenVPN server are lab services (probe/lab/tunnels.py); the cases are lab
scenarios (tor-address, openvpn-first-packet and their twin circumvention-clean, in `probe lab
run circumvention`), run through the scenario machinery.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import pytest
from scenario_runs import explain, on_scenario

if TYPE_CHECKING:
    from probe.lab.lab import ScenarioResult

pytestmark = pytest.mark.lab
Run = Callable[[str], "ScenarioResult"]


@on_scenario("tor-address")
def test_a_censor_that_blocks_a_tor_relay_by_address(run_scenario: Run) -> None:
    # blocked-relay: blocked (TCP timeout); open-relay: ok; down-relay: down (nothing listens,
    # for the control either).
    result = run_scenario("tor-address")
    assert result.ok, explain(result)


@on_scenario("openvpn-first-packet")
def test_a_censor_that_spots_openvpn_by_its_first_packet(run_scenario: Run) -> None:
    # Over TCP: reset. Over UDP: no UDP control exists, so a silent server is inconclusive.
    result = run_scenario("openvpn-first-packet")
    assert result.ok, explain(result)


@on_scenario("circumvention-clean")
def test_without_a_censor_every_live_endpoint_is_ok(run_scenario: Run) -> None:
    result = run_scenario("circumvention-clean")
    assert result.ok, explain(result)
