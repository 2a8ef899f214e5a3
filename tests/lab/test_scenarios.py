"""Every lab scenario, run against the real censor: observations, then verdicts.

The observation checks test the measurement engine against real censorship techniques; the
verdict checks test the classifier with the control helper running on the uncensored side.
Each scenario runs once per session; its two tests read the same result (with pytest-xdist,
both run on one worker: its group is the scenario's).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from probe.lab.scenarios import SCENARIOS

pytestmark = pytest.mark.lab

NAMES = [pytest.param(s.name, marks=pytest.mark.xdist_group(f"scenario-{s.name}")) for s in SCENARIOS]


def _result(name: str, lab, lab_workdir: Path, scenario_results: dict):  # type: ignore[no-untyped-def]
    from probe.lab.scenarios import by_name

    if name not in scenario_results:
        scenario_results[name] = lab.run_scenario(by_name(name), lab_workdir)
    return scenario_results[name]


def _explain(result) -> str:  # type: ignore[no-untyped-def]
    lines = []
    for o in result.outcomes:
        lines.append(f"{o.url}: stored {o.verdict}; observed {o.observed}")
        lines += [f"  {e}" for e in (*o.observation_errors, *o.verdict_errors)]
    if result.probe_exit:
        lines.append(f"probe exited {result.probe_exit}: {result.probe_stderr[-1500:]}")
    return "\n".join(lines)


@pytest.mark.parametrize("name", NAMES)
def test_scenario_observations_match(name: str, lab, lab_workdir: Path, scenario_results: dict) -> None:  # type: ignore[no-untyped-def]
    result = _result(name, lab, lab_workdir, scenario_results)
    assert result.observations_ok, _explain(result)


@pytest.mark.parametrize("name", NAMES)
def test_scenario_gets_expected_verdict(name: str, lab, lab_workdir: Path, scenario_results: dict) -> None:  # type: ignore[no-untyped-def]
    result = _result(name, lab, lab_workdir, scenario_results)
    assert lab.helper, lab.helper_error
    assert result.verdicts_ok, _explain(result)
