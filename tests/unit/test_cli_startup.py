"""`probe --help` and `probe results` must stay cheap: no scapy, no httpx at import time."""

from __future__ import annotations

import json
import subprocess
import sys

import click
import pytest

from probe.cli import cli

HEAVY = ("scapy", "httpx", "httpcore", "dns", "aiohttp", "cryptography", "sqlite_utils", "rich")


def _modules_after(code: str) -> set[str]:
    script = f"import sys, json\n{code}\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


def test_help_imports_no_heavy_module() -> None:
    code = (
        "from click.testing import CliRunner\nfrom probe.cli import cli\n"
        "r = CliRunner().invoke(cli, ['--help'])\nassert r.exit_code == 0, r.output"
    )
    loaded = _modules_after(code)
    heavy = sorted(m for m in loaded if m.split(".")[0] in HEAVY)
    assert heavy == []


def test_version_prints_package_version() -> None:
    from click.testing import CliRunner

    from probe import __version__

    result = CliRunner().invoke(cli, ["--version"])
    assert result.exit_code == 0
    assert __version__ in result.output


def _walk(group: click.Group, prefix: tuple[str, ...] = ()):  # type: ignore[no-untyped-def]
    for name, command in group.commands.items():
        yield (*prefix, name), command
        if isinstance(command, click.Group):
            yield from _walk(command, (*prefix, name))


@pytest.mark.parametrize("path", [p for p, _ in _walk(cli)], ids=lambda p: " ".join(p))
def test_every_command_is_documented(path: tuple[str, ...]) -> None:
    from click.testing import CliRunner

    command = cli
    for name in path:
        command = command.commands[name]  # type: ignore[union-attr]
    assert command.help, f"probe {' '.join(path)} has no help text"
    result = CliRunner().invoke(cli, [*path, "--help"])
    assert result.exit_code == 0
    assert "Usage:" in result.output


def test_unknown_flag_is_a_usage_error() -> None:
    from click.testing import CliRunner

    result = CliRunner().invoke(cli, ["run", "--no-such-flag"])
    assert result.exit_code == 2
