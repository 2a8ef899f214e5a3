"""docs/design.md is drawn from the folders: one line per module of probe/, under its folder's
heading, and the layers in the order that pyproject's import contract checks.

A failure names the exact line to add or remove, so that whoever adds, moves or deletes a
module can fix the document in the same commit.
"""

from __future__ import annotations

import ast
import re
import tomllib
from collections import Counter
from pathlib import Path

from source_ast import parse

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "probe"
DESIGN = ROOT / "docs" / "design.md"

#: A module's line: "- `probe/store/runs.py` what it holds".
MODULE_LINE = re.compile(r"^- `(probe/[\w/]+\.py)`(?: |$)")
#: A folder's heading: "### probe/store/ (what belongs there)"; "### probe/ (...)" for the root.
FOLDER_HEADING = re.compile(r"^### (probe/(?:\w+/)?)(?: |$)")
#: A module path written anywhere in the document (prose, tables, code).
MODULE_MENTION = re.compile(r"\bprobe/[\w/]*\w\.py\b")
#: The layers, top to bottom, as the document writes them: "cli > serve | present > ...".
LAYERS_LINE = re.compile(r"^\s+(cli >.*)$")


def _doc() -> list[str]:
    return DESIGN.read_text(encoding="utf-8").splitlines()


def _modules() -> list[str]:
    """Every .py file under probe/, as a path from the checkout's root."""
    return sorted(
        p.relative_to(ROOT).as_posix() for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts
    )


def _folder(module: str) -> str:
    """The heading a module is listed under: its layer folder, or probe/ for the root's files."""
    parts = module.split("/")
    return "probe/" if len(parts) == 2 else f"probe/{parts[1]}/"


def _listed() -> list[tuple[int, str, str | None]]:
    """(line number, module, heading folder it is under) for every module line of the document."""
    out: list[tuple[int, str, str | None]] = []
    heading: str | None = None
    for n, line in enumerate(_doc(), 1):
        if line.startswith("#"):
            m = FOLDER_HEADING.match(line)
            heading = m.group(1) if m else None
        elif m := MODULE_LINE.match(line):
            out.append((n, m.group(1), heading))
    return out


def _summary(module: str) -> str:
    """The first line of a module's docstring: a starting point for its line in the document."""
    tree = parse(ROOT / module)
    doc = ast.get_docstring(tree) or ""
    return doc.strip().splitlines()[0] if doc.strip() else "<what it holds>"


def _heading_line(folder: str) -> int | None:
    for n, line in enumerate(_doc(), 1):
        m = FOLDER_HEADING.match(line)
        if m and m.group(1) == folder:
            return n
    return None


def test_every_module_of_probe_has_a_line_in_design_md() -> None:
    listed = {module for _, module, _ in _listed()}
    missing = [m for m in _modules() if m not in listed]
    advice = []
    for module in missing:
        folder = _folder(module)
        at = _heading_line(folder)
        where = f"under '### {folder}' (line {at})" if at else f"under a new heading '### {folder} (...)'"
        advice.append(f"  {where}:\n    - `{module}` {_summary(module)}")
    assert not missing, (
        f"docs/design.md does not list {len(missing)} module(s); add one line each, saying in a few "
        "words what the module holds:\n" + "\n".join(advice)
    )


def test_design_md_lists_only_modules_that_exist() -> None:
    existing = set(_modules())
    gone = [(n, module) for n, module, _ in _listed() if module not in existing]
    assert not gone, "docs/design.md lists modules that do not exist; remove the line or fix its path:\n" + (
        "\n".join(f"  docs/design.md:{n}: {module}" for n, module in gone)
    )


def test_every_module_path_in_design_md_prose_exists() -> None:
    existing = set(_modules())
    stale = [
        (n, path)
        for n, line in enumerate(_doc(), 1)
        if not MODULE_LINE.match(line)  # the module lines: the test above
        for path in MODULE_MENTION.findall(line)
        if path not in existing
    ]
    assert not stale, "docs/design.md's text names modules that do not exist (moved or removed?):\n" + (
        "\n".join(f"  docs/design.md:{n}: {path}" for n, path in stale)
    )


def test_each_module_is_listed_once_under_its_own_folder() -> None:
    listed = _listed()
    twice = sorted(m for m, k in Counter(m for _, m, _ in listed).items() if k > 1)
    misplaced = [(n, m, h) for n, m, h in listed if h != _folder(m)]
    assert not twice, f"docs/design.md lists these modules more than once: {twice}"
    assert not misplaced, "docs/design.md lists modules outside their folder's heading:\n" + "\n".join(
        f"  docs/design.md:{n}: {m} is under {h or 'no folder heading'}; move it under '### {_folder(m)}'"
        for n, m, h in misplaced
    )


def _contract_layers() -> list[str]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    [contract] = [
        c
        for c in config["tool"]["importlinter"]["contracts"]
        if c["type"] == "layers" and any(str(layer).startswith("probe.") for layer in c["layers"])
    ]
    return [
        " | ".join(part.strip().removeprefix("probe.") for part in layer.split("|"))
        for layer in contract["layers"]
    ]


def test_design_md_states_the_layers_of_the_import_contract() -> None:
    stated = [m.group(1).strip() for line in _doc() if (m := LAYERS_LINE.match(line))]
    expected = " > ".join(_contract_layers())
    assert stated == [expected], (
        "docs/design.md's '## Layers' must state the layers once, as pyproject's [tool.importlinter] "
        f"layers contract orders them:\n    {expected}\nfound: {stated}"
    )


def test_every_layer_folder_is_in_the_import_contract() -> None:
    layers = {name for layer in _contract_layers() for name in layer.split(" | ")}
    folders = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()}
    assert folders == layers, (
        f"folders of probe/ not in the layers contract: {sorted(folders - layers)}; "
        f"layers without a folder: {sorted(layers - folders)}"
    )
