"""Session fixtures of the censorship lab: one lab for the whole session, results per scenario.

The lab needs root and a few tools; without them every lab test skips with the reason (and in
CI, where CI=true, tests/conftest.py turns such a skip into a failure).

Each scenario runs once per session (:func:`run_scenario`); every test reading its result takes
the marks of ``scenario_runs.on_scenario``, which put it on the scenario's pytest-xdist group, so
that all of them share the one run.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from service_priority import favour_services

if TYPE_CHECKING:
    from probe.lab.lab import Lab, ScenarioResult


def lab_unavailable() -> str | None:
    """Why the lab cannot run here, or None."""
    if os.geteuid() != 0:
        return "the lab needs root (network namespaces, iptables)"
    from probe.lab.lab import missing_tools

    missing = missing_tools()
    if missing:
        return f"the lab needs: {', '.join(missing)}"
    return None


@pytest.fixture
def lab_tools() -> None:
    """Skip (with the reason) unless the lab could run here."""
    reason = lab_unavailable()
    if reason:
        pytest.skip(reason)


@pytest.fixture(scope="session")
def lab() -> Iterator[object]:
    """A running lab (namespaces, services, control helper), torn down after the session."""
    reason = lab_unavailable()
    if reason:
        pytest.skip(reason)
    from probe.lab.lab import Lab

    # Lab processes keep the test guard (it knows the session's root namespace from
    # PROBE_NETGUARD_ROOTNS) on top of probe.lab.safety's own check.
    lab_ = Lab.create(env=dict(os.environ))
    try:
        favour_services(lab_)
        yield lab_
    finally:
        lab_.down()


@pytest.fixture(scope="session")
def lab_workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the probe's databases of the session go."""
    return tmp_path_factory.mktemp("lab")


@pytest.fixture(scope="session")
def scenario_results(lab: object, lab_workdir: Path) -> dict[str, object]:
    """Results per scenario name, filled on first use (each scenario runs once per session)."""
    return {}


@pytest.fixture(scope="session")
def run_scenario(
    lab: Lab, lab_workdir: Path, scenario_results: dict[str, Any]
) -> Callable[[str], ScenarioResult]:
    """The result of scenario NAME in the session's lab, run on first use (databases in
    ``lab_workdir``, named after the scenario)."""
    from probe.lab.scenarios import by_name

    def result(name: str) -> ScenarioResult:
        if name not in scenario_results:
            scenario_results[name] = lab.run_scenario(by_name(name), lab_workdir)
        got: ScenarioResult = scenario_results[name]
        return got

    return result


# Second labs of this session: "two", the session's pid, then a serial number. Never a "pl"
# prefix (what Lab.create picks by default): no one mistakes it for another session's lab.
_second_labs = itertools.count()


@pytest.fixture(scope="module")
def second_lab(lab: Lab) -> Iterator[Lab]:
    """A second lab, under a prefix of its own, up next to the session's for one test module.

    It runs its own censor, sites and control helper, and is torn down when the module is
    done, whatever its tests did; the teardown then checks that nothing of it is left.
    """
    from probe.lab import topology
    from probe.lab.lab import Lab

    prefix = f"two{os.getpid() % 10**6}{next(_second_labs)}"
    with Lab.create(env=dict(os.environ), prefix=prefix) as other:  # Lab.__exit__: down()
        favour_services(other)
        assert other.topo.prefix != lab.topo.prefix
        yield other
    left = set(other.topo.namespaces) & set(topology.list_namespaces())
    assert not left and not other.state_dir.exists(), f"second lab {prefix} left {sorted(left)}"
