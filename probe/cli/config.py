"""`probe config`: where the config file is and what it sets."""

from __future__ import annotations

import click

from probe.cli._group import cli

__all__ = ["config"]


@cli.group()
def config() -> None:
    """The config file: TOML defaults for any option (see docs/running.md)."""


@config.command("path")
def path_command() -> None:
    """Print where the config file is read from ($PROBE_CONFIG, else the XDG location)."""
    from probe.host.userconfig import config_path

    click.echo(str(config_path()))


@config.command("show")
def show_command() -> None:
    """Check the config file and print the defaults it sets, per command (exit 2 if invalid)."""
    from probe.cli._group import config_defaults
    from probe.host.userconfig import ConfigError, load_config

    try:
        loaded = load_config()
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from None
    if not loaded.exists:
        click.echo(f"# {loaded.path}: no config file (built-in defaults)")
        return
    ctx = click.get_current_context()
    defaults, used = config_defaults(ctx, cli, loaded.values, loaded.path)
    unknown = sorted(set(loaded.values) - used)
    if unknown:
        raise click.UsageError(f"{loaded.path}: unknown key(s): {', '.join(unknown)}")
    click.echo(f"# {loaded.path}")

    def show(prefix: str, tree: dict[str, object]) -> None:
        for name, value in sorted(tree.items()):
            if isinstance(value, dict):
                show(f"{prefix}{name} ", value)
            else:
                click.echo(f"{prefix.strip()}: {name} = {value!r}")

    show("probe ", defaults)
