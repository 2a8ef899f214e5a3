"""One run configuration: shared options, one default database, config file and $PROBE_DB,
and every flag value checked at parse time (usage error, exit 2, naming the flag)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from probe.cli import cli
from probe.core.settings import DEFAULT_DB, MeasureConfig, RunSettings


def invoke(*args: str, env: dict[str, str] | None = None) -> click.testing.Result:
    return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)


@pytest.fixture
def config_file(tmp_config: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    tmp_config.mkdir(parents=True, exist_ok=True)
    path = tmp_config / "config.toml"
    monkeypatch.delenv("PROBE_DB", raising=False)
    return path


def _commands(group: click.Group, prefix: str = "") -> list[tuple[str, click.Command]]:
    out = []
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            out += _commands(command, f"{prefix}{name} ")
        else:
            out.append((prefix + name, command))
    return out


def test_every_results_database_option_has_the_one_default_and_the_env_var() -> None:
    dbs = {
        name: param
        for name, command in _commands(cli)
        for param in command.params
        if param.name == "db" and not name.startswith("geo ")
    }
    assert {"run", "results", "runs", "reclassify"} <= set(dbs)
    for name, param in dbs.items():
        assert Path(str(param.default)) == DEFAULT_DB, name
        assert getattr(param, "envvar", None) == "PROBE_DB", name


def test_option_defaults_are_the_settings_defaults() -> None:
    run = cli.commands["run"]
    params = {p.name: p for p in run.params}
    checked = 0
    for cls in (MeasureConfig, RunSettings):
        for f in dataclasses.fields(cls):
            param = params.get(f.name)
            if param is None or param.multiple or isinstance(param.default, bool) or f.name == "db":
                continue
            if isinstance(param.default, int | float | str):
                assert param.default == f.default, f.name
                checked += 1
    assert checked >= 12


def test_database_precedence_is_flag_then_env_then_config_then_default(config_file: Path) -> None:
    def missing(*args: str, env: dict[str, str] | None = None) -> str:
        result = invoke("runs", *args, env=env)
        assert result.exit_code == 1
        return result.output

    assert str(DEFAULT_DB) in missing()
    config_file.write_text('db = "/nonexistent/from-config.db"\nvantage = "office"\n')
    assert "from-config.db" in missing()
    assert "from-env.db" in missing(env={"PROBE_DB": "/nonexistent/from-env.db"})
    assert "from-flag.db" in missing("--db", "/nonexistent/from-flag.db",
                                     env={"PROBE_DB": "/nonexistent/from-env.db"})


def test_config_show_lists_the_defaults_per_command(config_file: Path) -> None:
    config_file.write_text('db = "/srv/p.db"\ncontrol = "https://th.example.net/"\n'
                           'lists = ["a.csv"]\ndns-timeout = 2\n')
    out = invoke("config", "show").output
    assert "run: controls = ['https://th.example.net/']" in out
    assert "run: dns_timeout = 2" in out
    assert "run: lists = ['a.csv']" in out
    assert "results: db = '/srv/p.db'" in out
    assert invoke("config", "path").output.strip() == str(config_file)


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ('dns_timeout = "nan"', "dns_timeout"),
        ("colour = 3", "unknown key(s): colour"),
        ("db = [", "invalid TOML"),
        ('resolver = "bogus"', "resolver"),
        ("[run]\ndb = 1", "tables are not supported"),
    ],
)
def test_a_bad_config_file_is_a_usage_error_naming_file_and_key(
    config_file: Path, text: str, needle: str
) -> None:
    config_file.write_text(text + "\n")
    result = invoke("runs")
    assert result.exit_code == 2
    assert str(config_file) in result.output and needle in result.output


def test_probe_config_env_names_the_file_and_must_exist(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PROBE_CONFIG", str(tmp_path / "nope.toml"))
    result = invoke("runs")
    assert result.exit_code == 2 and "no such config file" in result.output


def test_config_vantage_names_this_probe_and_never_filters_results(config_file: Path) -> None:
    config_file.write_text('vantage = "office"\n')
    out = invoke("config", "show").output
    assert "run: vantage = 'office'" in out
    assert "results:" not in out and "runs:" not in out


def test_config_keys_do_not_leak_into_subgroups(config_file: Path, tmp_path: Path) -> None:
    # `geo lookup --db` is an ASN database, not a results database.
    config_file.write_text(f'db = "{tmp_path / "results.db"}"\n')
    result = invoke("geo", "lookup", "192.0.2.1", "--db", str(tmp_path / "none.tsv"))
    assert "results.db" not in result.output


def _bad_pem(tmp_path: Path) -> str:
    path = tmp_path / "ca.pem"
    path.write_text("not a certificate\n")
    return str(path)


@pytest.mark.parametrize(
    ("args", "flag"),
    [
        (["--resolver", "bogus"], "--resolver"),
        (["--resolver", "999.1.1.1"], "--resolver"),
        (["--resolver", "192.0.2.1:99999"], "--resolver"),
        (["--vantage="], "--vantage"),
        (["--vantage", "  "], "--vantage"),
        (["--doh", "http://x/"], "--doh"),
        (["--doh", "https://"], "--doh"),
        (["--control", "ftp://x/"], "--control"),
        (["--control", "th.example.net"], "--control"),
        (["--dns-timeout", "nan"], "--dns-timeout"),
        (["--http-timeout", "inf"], "--http-timeout"),
        (["--deadline", "-1"], "--deadline"),
        (["--retry-pause", "nan"], "--retry-pause"),
        (["--resolv-conf", "/nonexistent/resolv.conf"], "--resolv-conf"),
        (["--cafile", "PEM"], "--cafile"),
        (["--geo", "GEO"], "--geo"),
        (["--fingerprints", "FP"], "--fingerprints"),
    ],
)
def test_bad_flag_values_are_usage_errors_naming_the_flag(
    tmp_path: Path, tmp_config: Path, args: list[str], flag: str
) -> None:
    bad = tmp_path / "junk.bin"
    bad.write_bytes(b"\x00\x01garbage\xff" * 10)
    args = [{"PEM": _bad_pem(tmp_path), "GEO": str(bad), "FP": str(bad)}.get(a, a) for a in args]
    db = tmp_path / "r.db"
    result = CliRunner().invoke(cli, ["run", "--url", "http://192.0.2.1/", "--accept-risks",
                                      "--db", str(db), *args])
    assert result.exit_code == 2, result.output
    assert flag in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert not db.exists()  # nothing was started
