"""`probe lab` on the command line: the scenario table, and a clear refusal without root."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from probe.cli import cli
from probe.lab.scenarios import SCENARIOS


def test_lab_list_shows_every_scenario_with_its_expected_verdict() -> None:
    result = CliRunner().invoke(cli, ["lab", "list"])
    assert result.exit_code == 0
    for s in SCENARIOS:
        assert s.name in result.output
    assert "reset/tls@1" in result.output  # the redirect scenario names its hop


@pytest.mark.parametrize("command", [["up"], ["down"], ["run", "clean"], ["export-golden", "/tmp/x"]])
def test_lab_commands_refuse_clearly_without_root(command: list[str], monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr("os.geteuid", lambda: 1000)
    result = CliRunner().invoke(cli, ["lab", *command])
    assert result.exit_code == 1
    assert "the lab needs root" in result.output


def test_lab_run_names_the_known_scenarios_on_a_typo(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr("os.geteuid", lambda: 0)
    result = CliRunner().invoke(cli, ["lab", "run", "no-such-scenario"])
    assert result.exit_code == 2
    assert "dns-injection" in result.output


@pytest.mark.parametrize("command", ["list", "run"])
def test_lab_help_names_every_technique_group(command: str) -> None:
    from probe.lab.catalogue import GROUPS

    result = CliRunner().invoke(cli, ["lab", command, "--help"])
    words = " ".join(result.output.split())
    assert result.exit_code == 0 and all(g in words for g in GROUPS), result.output


def test_lab_list_of_a_group_shows_its_scenarios_only() -> None:
    result = CliRunner().invoke(cli, ["lab", "list", "trace"])
    assert result.exit_code == 0
    assert "trace-drop" in result.output and "dns-nxdomain" not in result.output
    assert "twin (benign):      trace-server-mute" in result.output
