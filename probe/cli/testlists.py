"""`probe testlists`: the test lists probe knows, with URL counts per category."""

from __future__ import annotations

from pathlib import Path

import click

from probe.cli._group import cli

__all__ = ["testlists"]


@cli.command()
@click.argument("paths", nargs=-1, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="One JSON object per list instead of a table.")
def testlists(paths: tuple[Path, ...], as_json: bool) -> None:
    """Show test lists with their URL counts per category (default: the shipped lists).

    Invalid rows are reported on stderr with file:line and the reason.

    \b
    Examples:
      probe testlists
      probe testlists my-list.csv testlists/ru.csv
    """
    import json

    from probe.testlists import TestListError, render_summary, summarize, summary_records

    try:
        summary = summarize(paths or None)
    except TestListError as exc:
        click.echo(f"Error: {exc}", err=True)
        raise SystemExit(2) from None
    for entry in summary.lists:
        for problem in entry.problems:
            click.echo(f"warning: {problem}", err=True)
        if entry.problem_count > len(entry.problems):
            more = entry.problem_count - len(entry.problems)
            click.echo(f"warning: {entry.path}: {more} more invalid row(s)", err=True)
    if as_json:
        for record in summary_records(summary):
            click.echo(json.dumps(record, ensure_ascii=False))
    else:
        click.echo(render_summary(summary))
