"""The click group every command attaches to, and the one place where probe's errors become
click's. Kept import-light: `probe --help` must be fast."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import click

from probe import __version__
from probe.core.errors import ProbeError

__all__ = ["ProbeCommand", "ProbeGroup", "cli", "click_error", "config_defaults"]


def click_error(exc: ProbeError, ctx: click.Context) -> click.ClickException:
    """The click error that ends a command with ``exc``: a usage error (exit 2, with the
    command's usage) for bad input given by the user, else ``Error: message`` and the error's
    exit status (1 unless its class says otherwise, e.g. 75 for a busy database)."""
    if exc.usage:
        return click.UsageError(str(exc), ctx)
    return _exiting_with(exc.exit_code)(str(exc))


@functools.cache
def _exiting_with(code: int) -> type[click.ClickException]:
    # click reads the exit status from the exception's class.
    return type(f"ExitWith{code}", (click.ClickException,), {"exit_code": code})


class _MapsErrors(click.Command):
    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ProbeError as exc:
            raise _safe(click_error(exc, ctx)) from None
        except click.ClickException as exc:
            raise _safe(exc)  # noqa: B904  (the same exception, its message made safe)


def _safe(exc: click.ClickException) -> click.ClickException:
    """``exc`` with its message safe for a terminal: errors quote files, databases and the
    network (a list's row, a vantage point's name), so this is the one boundary where every
    error's text passes through the terminal sanitizer (:mod:`probe.present.terminal`)."""
    import sys

    from probe.present.terminal import clean_lines, fit_lines, output_width

    text = clean_lines(exc.message)
    if sys.stderr.isatty():  # on a terminal, lines fit it ("Error: " leads the first one)
        text = fit_lines(text, output_width(err=True), first=len("Error: "))
    # click declares ``message`` Final; the exception keeps its class (exit status, usage line,
    # parameter hint) and only its text changes.
    setattr(exc, "message", text)  # noqa: B010
    return exc


class ProbeCommand(_MapsErrors, click.Command):
    """A command whose :class:`~probe.core.errors.ProbeError` ends it as :func:`click_error` says:
    commands catch only what they can say better (a hint, the flag concerned)."""


class ProbeGroup(_MapsErrors, click.Group):
    """A group whose commands and sub-groups map probe's errors the same way."""

    command_class = ProbeCommand
    group_class = type  # sub-groups are ProbeGroups


def _keys(command: click.Command) -> dict[str, click.Parameter]:
    """Config-file keys a command accepts: the long names and the parameter name of each of its
    shared run options (:mod:`probe.cli.options`); a command's own filters such as
    `probe results --vantage` are not configurable."""
    keys: dict[str, click.Parameter] = {}
    for param in command.params:
        if param.name is None or not getattr(param, "configurable", False):
            continue
        names = [param.name]
        if isinstance(param, click.Option):
            names += [o[2:].replace("-", "_") for o in param.opts if o.startswith("--")]
        for name in names:
            keys[name] = param
    return keys


def config_defaults(
    ctx: click.Context, group: click.Group, values: dict[str, Any], where: Path
) -> tuple[dict[str, Any], set[str]]:
    """The ``default_map`` for ``group``'s commands from config ``values``, and the keys used.

    Keys apply to the shared options of the top-level commands (`run`, `results`, `runs`,
    `reclassify`, ...) and of groups that opt in (``configurable = True``: `testlists`), not
    to sub-group commands such as `geo lookup --db` or `helper serve`, whose options share
    names but not meanings.
    Each value is checked with its option's type, so a bad value is a
    usage error naming the file and the key rather than the flag the user never typed.
    """
    out: dict[str, Any] = {}
    used: set[str] = set()
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            if not getattr(command, "configurable", False):
                continue  # e.g. `helper serve`: a server's settings are its command line's
            # A group that opts in (`testlists update --source-url`) takes config keys too.
            nested, nested_used = config_defaults(ctx, command, values, where)
            used |= nested_used
            if nested:
                out[name] = nested
            continue
        keys = _keys(command)
        mapped: dict[str, Any] = {}
        for key, value in values.items():
            param = keys.get(key)
            if param is None or param.name is None:
                continue
            used.add(key)
            if param.multiple or param.nargs == -1:
                value = list(value) if isinstance(value, list) else [value]
            elif isinstance(value, list):
                raise click.UsageError(f"{where}: {key}: expected one value, not a list")
            try:
                param.type_cast_value(ctx, value)
            except click.BadParameter as exc:
                raise click.UsageError(f"{where}: {key}: {exc.message}") from None
            mapped[param.name] = value
        if mapped:
            out[name] = mapped
    return out, used


@click.group(cls=ProbeGroup,
             context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="probe")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """probe: measure Internet censorship with DNS, TCP, TLS and HTTP tests.

    \b
    Defaults for any option can be set in a TOML config file (`probe config
    path` shows where); the command line and $PROBE_DB override it. See
    docs/running.md.

    \b
    Exit status: 0 when the command completed (whatever censorship a run found),
    1 on a probe error (bad database, no network, ...), 2 on a usage error
    (bad flags, invalid test list with --strict), 75 when another run holds the
    database (see --wait-lock), 130 when interrupted.
    """
    from probe.host.userconfig import load_config

    if ctx.invoked_subcommand == "config":
        return  # `probe config` must work to show a broken file
    config = load_config()
    if not config.values:
        return
    defaults, used = config_defaults(ctx, cli, config.values, config.path)
    unknown = sorted(set(config.values) - used)
    if unknown:
        raise click.UsageError(f"{config.path}: unknown key(s): {', '.join(unknown)}")
    ctx.default_map = defaults
