"""National isolation and outages in the lab: a censor that drops everything bound for "foreign"
prefixes (by the lab's own IP-to-country data) while "domestic" sites keep working, a resolver
that stops answering, every connection blackholed, a full shutdown, and the same network with
no censor.

Each is a lab scenario (`probe lab run outages`: isolation, dns-outage, partial-outage,
shutdown and their twin no-outage), run through the scenario machinery: `probe run` over the
lab's sites with its IP-to-country table, then the outage rules. `probe outages` itself is
checked on the isolation scenario's database.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from scenario_runs import explain, on_scenario

if TYPE_CHECKING:
    from probe.lab.lab import ScenarioResult

pytestmark = pytest.mark.lab
Run = Callable[[str], "ScenarioResult"]


@on_scenario("isolation")
def test_a_censor_that_cuts_the_country_off_is_isolation(run_scenario: Run, lab_workdir: Path) -> None:
    from probe.lab.scenarios import by_name
    from probe.lab.sites import GEO

    result = run_scenario("isolation")
    assert result.ok, explain(result)  # one "isolated" interval, 0 of the sites abroad reached
    # `probe outages` on what the run stored says the same.
    geo = lab_workdir / "isolation-geo.tsv"
    geo.write_text(GEO)
    argv = [sys.executable, "-m", "probe", "outages", "--db", str(lab_workdir / "isolation.db"),
            "--geo", str(geo), "--country", "RU", "--json"]  # fmt: skip
    out = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    found = [json.loads(line) for line in out.stdout.splitlines()]
    expected = by_name("isolation").outages
    assert expected is not None
    assert [o["state"] for o in found] == ["isolated"]
    assert found[0]["evidence"].endswith(expected.evidence)


@on_scenario("no-outage")
def test_the_same_network_without_a_censor_has_no_outage(run_scenario: Run) -> None:
    result = run_scenario("no-outage")
    assert result.ok, explain(result)


@on_scenario("dns-outage")
def test_a_resolver_that_stops_answering_is_a_dns_outage(run_scenario: Run) -> None:
    result = run_scenario("dns-outage")
    assert result.ok, explain(result)


@on_scenario("partial-outage")
def test_every_connection_blackholed_is_a_partial_outage(run_scenario: Run) -> None:
    result = run_scenario("partial-outage")
    assert result.ok, explain(result)


@on_scenario("shutdown")
def test_a_shutdown_is_an_offline_run_and_a_full_outage(run_scenario: Run) -> None:
    result = run_scenario("shutdown")
    assert result.ok, explain(result)
    assert result.probe_exit == 1 and "no network" in result.probe_stderr
