"""`probe testlists`: the test lists probe knows (with URL counts per category), and `update`."""

from __future__ import annotations

from pathlib import Path

import click

from probe.cli._group import ProbeGroup, cli
from probe.cli.options import ConfigOption

__all__ = ["testlists"]


class _ShowByDefault(ProbeGroup):
    """`probe testlists [LIST]...` shows lists; `probe testlists update` updates them."""

    configurable = True  # `testlists_url` in the config file sets `update --source-url`

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if not args or (args[0] not in self.commands and args[0] not in ctx.help_option_names):
            args = ["show", *args]
        return super().parse_args(ctx, args)


@cli.group(cls=_ShowByDefault)
def testlists() -> None:
    """Show the test lists (default: the installed ones), or fetch current ones with `update`.

    \b
    Examples:
      probe testlists                # the lists probe measures, URLs per category
      probe testlists my-list.csv testlists/ru.csv
      probe testlists update                # fetch current Citizen Lab lists
    """


@testlists.command("show")
@click.argument("paths", nargs=-1, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="One JSON object per list instead of a table.")
def show(paths: tuple[Path, ...], as_json: bool) -> None:
    """Show test lists with their URL counts per category (default: the installed lists).

    Invalid rows are reported on stderr with file:line and the reason.

    \b
    Examples:
      probe testlists
      probe testlists my-list.csv testlists/ru.csv
    """
    import json

    from probe.inputs.testlists import summarize, summary_records
    from probe.present.terminal import clean, json_safe, output_width
    from probe.present.testlists import render_summary

    summary = summarize(paths or None)
    for entry in summary.lists:
        for problem in entry.problems:
            click.echo(f"warning: {clean(problem)}", err=True)
        if entry.problem_count > len(entry.problems):
            more = entry.problem_count - len(entry.problems)
            click.echo(f"warning: {clean(entry.path)}: {more} more invalid row(s)", err=True)
    if as_json:
        for record in summary_records(summary):
            click.echo(json_safe(json.dumps(record, ensure_ascii=False)))
    else:
        click.echo(render_summary(summary, width=output_width()))


@testlists.command("update")
@click.option("--source-url", "testlists_url", cls=ConfigOption, metavar="URL",
              envvar="PROBE_TESTLISTS_URL", show_envvar=True,
              help="A copy of the citizenlab/test-lists tree (lists/NAME.csv, README.md) "
                   "[default: the config file's testlists_url, else the upstream repository on "
                   "GitHub].")  # fmt: skip
@click.option("--dir", "directory", type=click.Path(file_okay=False, path_type=Path),
              help="Install here [default: $PROBE_TESTLISTS_DIR, else ~/.local/share/probe/testlists, "
                   "which probe then measures instead of the shipped lists].")  # fmt: skip
@click.option("--list", "extra", multiple=True, metavar="NAME",
              help="Also fetch this country list (e.g. ir, de); repeatable. The lists installed "
                   "now are always fetched.")  # fmt: skip
@click.option("--timeout", type=click.FloatRange(1, 600), default=60.0, show_default=True,
              metavar="SECONDS", help="Time allowed for each file's whole download (a server "
              "trickling bytes is cut off).")  # fmt: skip
@click.option("--force", is_flag=True, help="Install a list even when it loses more than half "
              "of its URLs (refused otherwise: a broken or hostile mirror?).")
@click.option("--endpoints-url", "endpoints_url", cls=ConfigOption, metavar="URL",
              envvar="PROBE_ENDPOINTS_URL", show_envvar=True,
              help="Also update the messaging endpoint list (`probe messaging`) from this "
                   "mirror: messaging.csv and the CA files it names [default: the config "
                   "file's endpoints_url; none: the packaged list stays].")  # fmt: skip
def update(testlists_url: str | None, directory: Path | None, extra: tuple[str, ...],
           timeout: float, force: bool, endpoints_url: str | None) -> None:  # fmt: skip
    """Fetch the current Citizen Lab lists, check them, and install them with their license.

    Every file is fetched and checked (a Citizen Lab header, valid URLs, the legend, the
    CC BY-NC-SA 4.0 license) before any installed list is replaced; each is then replaced with
    an atomic rename, so a failed or interrupted update never destroys the installed lists.
    Prints, per list, how many URLs it has and how many were added and removed. A list that
    would lose more than half of its URLs is refused unless --force; staging directories left
    by a killed update are removed.

    \b
    Examples:
      probe testlists update
      probe testlists update --list ir --list de
      probe testlists update --source-url https://mirror.example/test-lists/
      probe testlists update --endpoints-url https://mirror.example/endpoints/

    With --endpoints-url, the messaging endpoint list is then updated the same way
    (checked, atomic, refused when it loses more than half of its endpoints) into
    ~/.local/share/probe/endpoints, which `probe messaging` then measures.
    """
    from probe.inputs.endpointupdate import endpoints_source, update_endpoints
    from probe.inputs.testlists.update import UpdateError, update_testlists
    from probe.present.messaging import format_endpoint_update
    from probe.present.terminal import output_width
    from probe.present.testlists import format_update

    try:
        source = endpoints_source(endpoints_url)
        result = update_testlists(testlists_url, directory, extra, timeout=timeout, force=force)
    except UpdateError as exc:
        raise click.ClickException(f"{exc} (installed lists unchanged)") from None
    for line in format_update(result, output_width()):
        click.echo(line)
    if source is None:
        return
    try:
        endpoints = update_endpoints(source, timeout=timeout, force=force)
    except UpdateError as exc:
        raise click.ClickException(f"{exc} (installed endpoint list unchanged)") from None
    for line in format_endpoint_update(endpoints, output_width()):
        click.echo(line)
