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


def test_the_engine_imports_httpx_without_its_cli_or_trio() -> None:
    # httpx imports its CLI (click, rich, pygments) and httpcore imports trio when installed:
    # ~0.1 s at every run's start for code probe never runs (probe/host/httpstack.py).
    loaded = _modules_after("import probe.measure.engine, httpx\nassert httpx.AsyncClient")
    assert {"httpx", "httpcore"} <= loaded
    assert not {"rich", "pygments", "trio", "httpx._main"} & loaded


def test_the_stand_ins_are_gone_once_httpx_is_imported() -> None:
    # Only the import itself goes without them: trio and httpx's CLI stay importable later.
    code = (
        "from probe.host import httpstack\nhttpstack.load()\nimport httpx\n"
        "print(sys.modules.get('trio', 'absent'), sys.modules.get('httpx._main', 'absent'))\n"
        "import httpx._main\nassert httpx._main.main is not None\n"
        "try:\n    import trio\nexcept ModuleNotFoundError:\n    pass  # not installed here\n"
    )
    out = subprocess.run([sys.executable, "-c", "import sys\n" + code], capture_output=True,
                         text=True, check=True)
    assert out.stdout.split() == ["absent", "absent"]
