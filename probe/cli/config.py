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
    from probe.host.userconfig import load_config
    from probe.present.config import format_defaults

    loaded = load_config()
    if not loaded.exists:
        lines = format_defaults(loaded.path, None)
    else:
        ctx = click.get_current_context()
        defaults, used = config_defaults(ctx, cli, loaded.values, loaded.path)
        unknown = sorted(set(loaded.values) - used)
        if unknown:
            raise click.UsageError(f"{loaded.path}: unknown key(s): {', '.join(unknown)}")
        lines = format_defaults(loaded.path, defaults)
    for line in lines:
        click.echo(line)
