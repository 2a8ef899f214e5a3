"""The import contracts of pyproject.toml ([tool.importlinter]) hold on the tree, and they catch
what they are for: an import up a layer, and a command module importing another.

Each case copies probe/ and pyproject.toml to a temporary directory, plants one import there and
runs `lint-imports` on the copy (the real tree is never changed).
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from contract_tree import ROOT, copy_tree, lint_imports, plant


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A copy of the package and its contracts."""
    return copy_tree(tmp_path)


def test_the_tree_keeps_every_contract(tree: Path) -> None:
    result = lint_imports(tree)
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
    plant(tree / "probe" / module, f"{planted}  # planted")
    result = lint_imports(tree)
    assert result.returncode != 0
    assert f"{broken} BROKEN" in result.stdout
    assert chain in result.stdout
    kept = len(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]) - 1
    assert f"Contracts: {kept} kept, 1 broken." in result.stdout  # only the contract planted against
