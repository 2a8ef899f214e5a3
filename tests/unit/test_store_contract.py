"""Only probe/store/ speaks SQL: the import contract says so, and it catches a planted violation.

Two checks, each shown to fail on a violation planted in a copy of the tree:

- import-linter's contract "Only the store speaks SQL" (pyproject.toml, run by .ci/run): no module
  outside ``probe.store`` imports ``sqlite3`` or ``sqlite_utils``;
- a scan of every file under probe/ (also those import-linter cannot see: the Datasette plugin
  is loaded from a plain directory, not a package) for those imports and for SQL statements
  written outside probe/store/.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from contract_tree import ROOT, copy_tree, lint_imports, plant
from source_ast import parse

_SQL = re.compile(r"^\s*(SELECT|INSERT|UPDATE|DELETE|CREATE|DROP|ALTER|PRAGMA|WITH|ATTACH)\s")
_DATABASE_MODULES = {"sqlite3", "sqlite_utils"}


def sql_outside_store(root: Path) -> list[str]:
    """``path:line: what`` for each database import or SQL statement outside ``root/probe/store``."""
    found = []
    for path in sorted((root / "probe").rglob("*.py")):
        rel = path.relative_to(root)
        if rel.parts[:2] == ("probe", "store"):
            continue
        for node in ast.walk(parse(path, str(rel))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                names = []
            for name in names:
                if name.split(".")[0] in _DATABASE_MODULES:
                    found.append(f"{rel}:{node.lineno}: imports {name}")
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and _SQL.match(node.value):
                found.append(f"{rel}:{node.lineno}: SQL {node.value.strip()[:40]!r}")
    return found


def test_the_tree_keeps_every_import_contract() -> None:
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Only the store speaks SQL KEPT" in result.stdout


@pytest.mark.parametrize(("module", "line"), [
    ("probe/research/compare.py", "import sqlite3"),
    ("probe/present/tables.py", "from sqlite_utils import Database"),
])
def test_the_import_contract_fails_on_a_database_import_outside_the_store(
    tmp_path: Path, module: str, line: str
) -> None:
    root = copy_tree(tmp_path)
    assert lint_imports(root).returncode == 0  # the copy keeps the contracts before planting
    plant(root / module, line)
    result = lint_imports(root)
    assert result.returncode != 0
    importer = module.removesuffix(".py").replace("/", ".")
    assert "Only the store speaks SQL BROKEN" in result.stdout
    assert f"{importer} -> {line.split()[1]}" in result.stdout


def test_no_sql_or_database_import_outside_the_store() -> None:
    assert sql_outside_store(ROOT) == []


def test_the_scan_finds_sql_and_imports_planted_outside_the_store(tmp_path: Path) -> None:
    root = copy_tree(tmp_path)
    plant(root / "probe/research/datasette_plugins/probe_sql.py", "import sqlite3")
    plant(root / "probe/cli/report.py", 'NAMES = "SELECT name FROM vantage_points"')
    plant(root / "probe/store/matrix.py", 'EXTRA = "SELECT 1"')  # the store may
    assert [f.split(": ", 1)[1] for f in sql_outside_store(root)] == [
        "SQL 'SELECT name FROM vantage_points'", "imports sqlite3"]
