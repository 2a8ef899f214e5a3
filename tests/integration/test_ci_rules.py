"""CI's rule holds on parallel workers: a lab test that skips in CI fails the run (the rule lives in
tests/conftest.py's report hook, which runs on each pytest-xdist worker)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]

SKIPPING = """
import pytest

@pytest.mark.lab
def test_lab_skips():
    pytest.skip("no lab here")

def test_plain_skips():
    pytest.skip("not needed here")

def test_passes():
    pass
"""


def test_a_lab_test_that_skips_in_ci_fails_the_run_on_two_workers(tmp_path: Path) -> None:
    (tmp_path / "test_skipping.py").write_text(SKIPPING)
    env = dict(os.environ, CI="true", PYTHONPATH=os.pathsep.join([str(TESTS), os.environ["PYTHONPATH"]]))
    r = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "conftest", "-n", "2", "-p", "no:cacheprovider", "-rA",
         "-W", "ignore::pytest.PytestUnknownMarkWarning", "-c", os.devnull, "--rootdir", str(tmp_path),
         str(tmp_path)],
        capture_output=True, text=True, env=env, timeout=120, cwd=tmp_path,
    )  # fmt: skip
    assert "2 workers [3 items]" in r.stdout, r.stdout
    assert "FAILED test_skipping.py::test_lab_skips - lab test skipped in CI" in r.stdout, r.stdout
    assert "SKIPPED [1] test_skipping.py" in r.stdout and "PASSED test_skipping.py::test_passes" in r.stdout
    assert r.returncode == 1
