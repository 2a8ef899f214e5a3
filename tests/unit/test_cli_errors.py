"""probe's own exceptions share one base, and the command line maps it to click's errors in one
place (probe/cli/_group.py): exit 1 with the message, 2 with the usage, or the class's status."""

from __future__ import annotations

import ast
import builtins
import importlib
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from source_ast import parse

import probe
from probe.cli import cli
from probe.cli._group import ProbeCommand, ProbeGroup
from probe.core.errors import ProbeError
from probe.host.userconfig import ConfigError
from probe.inputs.testlists import TestListError
from probe.store import StoreError
from probe.store.lock import DatabaseBusy

ROOT = Path(probe.__file__).parent


def _raising(exc: BaseException) -> ProbeGroup:
    @click.group(cls=ProbeGroup)
    def group() -> None:
        """A group."""

    @group.command("go")
    def go() -> None:
        """Raise."""
        raise exc

    return group


@pytest.mark.parametrize(
    ("exc", "code", "usage"),
    [(StoreError("x.db: not a probe database"), 1, False),
     (TestListError("list.csv:3: invalid URL"), 2, True),
     (ConfigError("config.toml: db: expected a string"), 2, True),
     (DatabaseBusy("x.db is in use by run 4"), 75, False)],
)
def test_an_error_ends_the_command_with_its_message_and_exit_status(
        exc: ProbeError, code: int, usage: bool) -> None:
    result = CliRunner().invoke(_raising(exc), ["go"])
    assert result.exit_code == code
    assert f"Error: {exc}" in result.stderr
    assert ("Usage:" in result.stderr) is usage
    assert "Traceback" not in result.output


def test_an_error_that_is_not_probes_is_not_taken_for_one() -> None:
    result = CliRunner().invoke(_raising(KeyError("bug")), ["go"])
    assert isinstance(result.exception, KeyError)


def test_every_command_maps_errors() -> None:
    def walk(group: click.Group) -> list[click.Command]:
        out: list[click.Command] = []
        for command in group.commands.values():
            out.append(command)
            if isinstance(command, click.Group):
                out += walk(command)
        return out

    assert isinstance(cli, ProbeGroup)
    plain = [c.name for c in walk(cli) if not isinstance(c, ProbeCommand | ProbeGroup)]
    assert plain == []


def _exception_classes() -> list[tuple[str, str]]:
    """(module, class) of every class in probe/ with an exception among its bases."""
    builtin = {name for name, value in vars(builtins).items()
               if isinstance(value, type) and issubclass(value, BaseException)}  # fmt: skip
    found = []
    for path in sorted(ROOT.rglob("*.py")):
        module = ".".join(path.relative_to(ROOT.parent).with_suffix("").parts)
        for node in parse(path).body:
            if not isinstance(node, ast.ClassDef):
                continue
            bases = {b.attr if isinstance(b, ast.Attribute) else getattr(b, "id", "") for b in node.bases}
            if bases & builtin or any(b.endswith(("Error", "Exception")) for b in bases):
                found.append((module.removesuffix(".__init__"), node.name))
    return found


def test_every_exception_of_probe_derives_from_probe_error() -> None:
    classes = _exception_classes()
    assert len(classes) >= 20
    strays = [f"{m}.{name}" for m, name in classes
              if not issubclass(getattr(importlib.import_module(m), name), ProbeError)]  # fmt: skip
    assert strays == []
