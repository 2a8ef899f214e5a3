"""`probe runs`: list the runs in a results database, newest first, with their status."""

from __future__ import annotations

from pathlib import Path

import click

from probe.cli._group import cli
from probe.cli.options import db_option


@cli.command("runs")
@db_option
@click.option("--vantage", metavar="NAME", help="Only this vantage point's runs.")
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True,
              help="At most this many runs (the newest).")
@click.option("--json", "as_json", is_flag=True, help="JSON lines instead of a table.")
def runs_command(db: Path, vantage: str | None, limit: int, as_json: bool) -> None:
    """List runs, newest first: when, where, status and verdict counts.

    A run's status is running, complete, interrupted (Ctrl-C, SIGTERM, or killed: closed by
    the next `probe run` on the same machine), offline (no network) or failed.

    \b
    Examples:
      probe runs                       # the 20 newest runs
      probe runs --vantage home --json
    """
    from probe.present.tables import format_json_lines, format_runs_table
    from probe.present.terminal import output_width
    from probe.store import Store

    with Store.open(db, create=False) as store:
        rows = store.runs(vantage=vantage, limit=limit)
        out = format_json_lines(rows, keys=None) if as_json else format_runs_table(rows, output_width())
        for chunk in out:
            click.echo(chunk, nl=False)
