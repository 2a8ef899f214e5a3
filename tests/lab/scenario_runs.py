"""How lab tests share a scenario's one run per session: the marks that put every test reading
a scenario's result on one pytest-xdist worker, and the words of a failed check."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from probe.lab.lab import ScenarioResult

__all__ = ["SLOW_GROUPS", "explain", "on_scenario", "scenario_param"]

#: Scenario groups whose runs take long by design (transfers policed to a few KB/s): their tests
#: are ``slow`` (tests/conftest.py runs those on one worker, one at a time).
SLOW_GROUPS = ("throttling",)


def on_scenario(name: str) -> pytest.MarkDecorator:
    """The mark of a test that reads scenario ``name``'s result: its xdist group, or ``slow``
    (the slow group is one worker too) for the scenarios slow by design."""
    from probe.lab.scenarios import by_name

    if by_name(name).group in SLOW_GROUPS:
        return pytest.mark.slow
    return pytest.mark.xdist_group(f"scenario-{name}")


def scenario_param(name: str) -> Any:
    """``name`` as a pytest parameter with :func:`on_scenario`'s mark."""
    return pytest.param(name, marks=on_scenario(name))


def explain(result: ScenarioResult) -> str:
    """What a scenario's probe stored, and every mismatch, for an assertion's message."""
    lines = []
    for o in result.outcomes:
        lines.append(f"{o.url}: stored {o.verdict}; observed {o.observed}")
        lines += [f"  {e}" for e in (*o.observation_errors, *o.verdict_errors)]
    if result.probe_exit:
        lines.append(f"probe exited {result.probe_exit}: {result.probe_stderr[-1500:]}")
    return "\n".join(lines)
