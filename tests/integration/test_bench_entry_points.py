"""Every benchmark's command line starts: its modules import (no cycle, no missing name) and
parse --help, without building a lab or sending anything."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ENTRY_POINTS = sorted(
    p.stem for p in (ROOT / "bench").glob("*.py") if 'if __name__ == "__main__":' in p.read_text()
)


def test_the_benchmarks_have_entry_points() -> None:
    assert {"throughput", "capture", "loopback", "ooni_import", "bench_research"} <= set(ENTRY_POINTS)


@pytest.mark.parametrize("module", ENTRY_POINTS)
def test_benchmark_prints_its_usage(module: str) -> None:
    r = subprocess.run(
        [sys.executable, "-m", f"bench.{module}", "--help"],
        capture_output=True, text=True, cwd=ROOT, timeout=60,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr[-2000:]
    assert "usage:" in r.stdout
