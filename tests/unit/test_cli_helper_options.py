"""`probe helper serve` checks its flags at parse time with the run's shared option types."""

from __future__ import annotations

from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from probe.cli import cli
from probe.cli._group import config_defaults


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--resolver", "bogus"], "--resolver"),
        (["--resolver", "127.0.0.1:99999"], "--resolver"),
        (["--deadline", "nan"], "not a finite number of seconds"),
        (["--header-timeout", "inf"], "not a finite number of seconds"),
        (["--body-timeout", "0.1"], "not in the range"),
    ],
)
def test_bad_values_are_usage_errors_before_anything_listens(args: list[str], message: str) -> None:
    result = CliRunner().invoke(cli, ["helper", "serve", *args])
    assert result.exit_code == 2, result.output
    assert message in result.output


def test_a_cafile_that_is_not_pem_is_a_usage_error(tmp_path: Path) -> None:
    bogus = tmp_path / "ca.pem"
    bogus.write_text("not a certificate\n")
    result = CliRunner().invoke(cli, ["helper", "serve", "--cafile", str(bogus)])
    assert result.exit_code == 2
    assert "expected PEM certificates" in result.output


def test_config_file_keys_set_the_probes_options_not_the_helpers(tmp_path: Path) -> None:
    # The helper takes the shared decorators, but a server's settings are its command line's:
    # the probe's `resolver` in the config file must not change what a helper resolves with.
    defaults, used = config_defaults(click.Context(cli), cli, {"resolver": ["192.0.2.1"]},
                                     tmp_path / "config.toml")  # fmt: skip
    assert used == {"resolver"}
    assert defaults["run"]["resolvers"] == ["192.0.2.1"]
    assert "helper" not in defaults
