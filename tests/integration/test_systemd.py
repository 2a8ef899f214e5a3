"""The systemd service and timer in contrib/systemd are valid and do what docs/running.md says."""

from __future__ import annotations

import configparser
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

UNITS = Path(__file__).resolve().parents[2] / "contrib" / "systemd"


def _analyze() -> str:
    tool = shutil.which("systemd-analyze")
    if tool is None:
        if os.environ.get("CI") == "true":
            pytest.fail("systemd-analyze is missing: .ci/setup installs systemd")
        pytest.skip("systemd-analyze is not installed")
    return tool


def _unit(name: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # keys are case-sensitive
    parser.read(UNITS / name)
    return parser


def test_systemd_analyze_verifies_the_service_and_timer(tmp_path: Path) -> None:
    tool = _analyze()
    # ExecStart= must name an executable that exists: point it at this environment's probe,
    # as the install instructions in the unit say to do.
    probe = Path(sys.executable).with_name("probe")
    assert probe.exists()
    text = (UNITS / "probe.service").read_text()
    assert "ExecStart=/opt/probe/.venv/bin/probe " in text
    (tmp_path / "probe.service").write_text(text.replace("/opt/probe/.venv/bin/probe", str(probe)))
    shutil.copy(UNITS / "probe.timer", tmp_path / "probe.timer")
    result = subprocess.run([tool, "verify", "--man=no", "probe.service", "probe.timer"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == "", result.stderr  # unknown keys only warn


def test_the_service_writes_an_absolute_database_in_its_state_directory() -> None:
    service = _unit("probe.service")["Service"]
    assert service["DynamicUser"] == "yes" and service["StateDirectory"] == "probe"
    # StateDirectory=probe is /var/lib/probe: the database is an absolute path inside it.
    text = (UNITS / "probe.service").read_text()
    assert "\nEnvironment=PROBE_DB=/var/lib/probe/probe.db\n" in text
    assert "--accept-risks" in service["ExecStart"]
    assert "130" in service["SuccessExitStatus"].split()


def test_the_timer_catches_up_missed_runs() -> None:
    timer = _unit("probe.timer")
    assert timer["Timer"]["Persistent"] == "true"
    assert timer["Install"]["WantedBy"] == "timers.target"
