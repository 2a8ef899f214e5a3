"""Every lab scenario, run against the real censor: observations, then verdicts.

The observation checks test the measurement engine (and `probe trace`, `probe circumvention`)
against real censorship techniques; the verdict checks test the judges with the control helper
running on the uncensored side. Each scenario runs once per session; its two tests read the
same result (with pytest-xdist, both run on one worker: its group is the scenario's, or the
slow group for the throttling scenarios).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pytest
from scenario_runs import explain, scenario_param

from probe.lab.scenarios import SCENARIOS

if TYPE_CHECKING:
    from probe.lab.lab import ScenarioResult

pytestmark = pytest.mark.lab

NAMES = [scenario_param(s.name) for s in SCENARIOS]


@pytest.mark.parametrize("name", NAMES)
def test_scenario_observations_match(name: str, run_scenario: Callable[[str], ScenarioResult]) -> None:
    result = run_scenario(name)
    assert result.observations_ok, explain(result)


@pytest.mark.parametrize("name", NAMES)
def test_scenario_gets_expected_verdict(
    name: str, lab: Any, run_scenario: Callable[[str], ScenarioResult]
) -> None:
    result = run_scenario(name)
    assert lab.helper, lab.helper_error
    assert result.verdicts_ok, explain(result)
