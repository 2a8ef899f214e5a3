"""The import contracts of pyproject.toml ([tool.importlinter]) hold on the tree, and they catch
what they are for: an import up a layer, and a command module importing another.

Each case copies probe/ and pyproject.toml to a temporary directory, plants one import there and
runs `lint-imports` on the copy (the real tree is never changed).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _lint(tree: Path) -> subprocess.CompletedProcess[str]:
    # The copy comes first on the path: grimp must read it, not the editable install's tree
    # (the rest of PYTHONPATH keeps the network guard in the child).
    path = os.pathsep.join(p for p in (str(tree), os.environ.get("PYTHONPATH", "")) if p)
    env = {**os.environ, "PYTHONPATH": path}
    return subprocess.run([str(LINT_IMPORTS), "--no-cache"], cwd=tree, env=env,
                          capture_output=True, text=True, timeout=120)  # fmt: skip


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A copy of the package and its contracts."""
    shutil.copytree(ROOT / "probe", tmp_path / "probe",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))  # fmt: skip
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def _plant(module: Path, line: str) -> None:
    module.write_text(module.read_text(encoding="utf-8") + f"\n{line}\n", encoding="utf-8")


def test_the_tree_keeps_every_contract(tree: Path) -> None:
    result = _lint(tree)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "planted", "broken", "chain"),
    [
        # store is below present: an upward import
        ("store/uid.py", "import probe.present.text", "Layers: imports only go downward",
         "probe.store.uid -> probe.present.text"),
        # a command module importing another
        ("cli/diff.py", "import probe.cli.runs",
         "Commands are independent: a cli command module never imports another",
         "probe.cli.diff -> probe.cli.runs"),
    ],
    ids=["upward import", "cross-command import"],
)
def test_a_planted_import_breaks_its_contract(tree: Path, module: str, planted: str, broken: str,
                                              chain: str) -> None:
    _plant(tree / "probe" / module, f"{planted}  # planted")
    result = _lint(tree)
    assert result.returncode != 0
    assert f"{broken} BROKEN" in result.stdout
    assert chain in result.stdout
    kept = len(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]) - 1
    assert f"Contracts: {kept} kept, 1 broken." in result.stdout  # only the contract planted against
