"""`probe outages`: outage intervals per vantage point, from its runs and the gaps between them."""

from __future__ import annotations

from pathlib import Path

import click

from probe.cli._group import cli


@cli.command("outages")
@click.option("--db", type=click.Path(dir_okay=False, path_type=Path), default="results/probe.db",
              show_default=True, help="Results database.")
@click.option("--vantage", metavar="NAME", help="Only this vantage point.")
@click.option("--since", metavar="TIME", help="Only runs started at or after this ISO time (UTC).")
@click.option("--json", "as_json", is_flag=True, help="JSON lines instead of a table.")
def outages_command(db: Path, vantage: str | None, since: str | None, as_json: bool) -> None:
    """Outages seen by each vantage point: full, DNS-only, partial, and missed runs.

    Every run is judged from what its measurements saw (an offline run, a silent resolver, dead
    TCP connections far beyond the usual), consecutive runs in one state become an interval, and
    gaps much longer than the usual interval between runs are reported as missed runs. Each
    interval has two bounds: when it was seen (FIRST SEEN .. LAST SEEN) and the runs around it
    (AFTER .. BEFORE). See docs/outages.md.

    \b
    Examples:
      probe outages
      probe outages --vantage moscow-home --since 2026-11-01 --json
    """
    from datetime import datetime

    from probe.outages import outages, run_stats
    from probe.store import Store, StoreError
    from probe.store.report import format_json_lines, format_outages_table

    if since is not None:
        try:
            datetime.fromisoformat(since)
        except ValueError:
            raise click.BadParameter(f"{since!r} is not an ISO date or time", param_hint="--since") from None
    try:
        with Store.open(db, create=False) as store:
            rows = (o.to_dict() for o in outages(run_stats(store.conn, vantage, since)))
            out = format_json_lines(rows, keys=None) if as_json else format_outages_table(rows)
            for chunk in out:
                click.echo(chunk, nl=False)
    except StoreError as exc:
        raise click.ClickException(str(exc)) from None
