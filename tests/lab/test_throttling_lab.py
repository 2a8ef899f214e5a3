"""Throttling in the lab: a censor that polices one site's TLS connections (by SNI) to a few
KB/s while the other sites run at full speed, next to its benign look-alikes: a site slow for
everyone, and a slow network for everyone.

Both are lab scenarios (`probe lab run throttling`: throttling-sni and its twin
throttling-slow-network); these tests run them through the scenario machinery.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import pytest
from scenario_runs import explain

if TYPE_CHECKING:
    from probe.lab.lab import ScenarioResult

pytestmark = [pytest.mark.lab, pytest.mark.slow]  # transfer speeds; ~12 s by design
Run = Callable[[str], "ScenarioResult"]


def test_a_censor_throttling_one_sni_is_found_and_a_slow_server_is_not(run_scenario: Run) -> None:
    result = run_scenario("throttling-sni")
    # The references ok, the policed site throttled, the server that trickles for everyone (slow
    # here and at the control) ok with the control's speed beside it: the scenario's checks.
    assert result.ok, explain(result)
    (throttled,) = [v for _, v in filter(None, result.records) if v.verdict == "throttled"]
    # The throttling reason decides; the control's speed comes right after it.
    assert throttled.reasons[0].startswith("http/throttled:")
    assert throttled.reasons[1].startswith("control/http-speed:")


def test_a_slow_network_for_everyone_throttles_nothing(run_scenario: Run) -> None:
    result = run_scenario("throttling-slow-network")
    assert result.ok, explain(result)  # every site ok, the policed one of the twin too
    assert not [v for _, v in filter(None, result.records) if v.verdict == "throttled"]
