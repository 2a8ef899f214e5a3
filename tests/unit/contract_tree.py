"""A copy of the checkout's packages and contracts, to plant a violation in and run `lint-imports`
on (the real tree is never changed): tests/unit/test_layers.py and test_store_contract.py."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def copy_tree(tmp_path: Path) -> Path:
    """probe/ and bench/ (both are root packages of the contracts) and pyproject.toml, copied."""
    for package in ("probe", "bench"):
        shutil.copytree(ROOT / package, tmp_path / package,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "data", "out"))  # fmt: skip
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def plant(module: Path, line: str) -> None:
    """Append ``line`` to ``module``."""
    module.write_text(module.read_text(encoding="utf-8") + f"\n{line}\n", encoding="utf-8")


def lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    """`lint-imports` on the tree at ``root``."""
    # The copy comes first on the path: grimp must read it, not the editable install's tree (the
    # rest of PYTHONPATH keeps the network guard in the child).
    path = os.pathsep.join(p for p in (str(root), os.environ.get("PYTHONPATH", "")) if p)
    return subprocess.run([str(LINT_IMPORTS), "--no-cache", "--no-logo"], cwd=root,
                          env={**os.environ, "PYTHONPATH": path},
                          capture_output=True, text=True, timeout=120)  # fmt: skip
