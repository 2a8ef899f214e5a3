"""`probe outages`: outage intervals per vantage point, from its runs and the gaps between them."""

from __future__ import annotations

from pathlib import Path

import click

from probe.cli._group import cli
from probe.cli.options import country_lookup, db_option


@cli.command("outages")
@db_option
@click.option("--vantage", metavar="NAME", help="Only this vantage point.")
@click.option("--since", metavar="TIME", help="Only runs started at or after this ISO time (UTC).")
@click.option("--geo", type=click.Path(exists=True, dir_okay=False),
              help="IP-to-country data (.mmdb or ip2asn TSV) for the isolation rule  [default: probe's]")
@click.option("--country", metavar="CC", help="The vantage point's country (ISO 3166), if not stored.")
@click.option("--json", "as_json", is_flag=True, help="JSON lines instead of a table.")
def outages_command(db: Path, vantage: str | None, since: str | None, geo: str | None,
                    country: str | None, as_json: bool) -> None:  # fmt: skip
    """Outages seen by each vantage point: full, DNS-only, isolated, partial, and missed runs.

    Every run is judged from what its measurements saw (an offline run, a silent resolver, dead
    TCP connections far beyond the usual, sites at home reached while those abroad are not),
    consecutive runs in one state become an interval, and
    gaps much longer than the usual interval between runs are reported as missed runs. Each
    interval has two bounds: when it was seen (FIRST SEEN .. LAST SEEN) and the runs around it
    (AFTER .. BEFORE). See docs/outages.md.

    \b
    Examples:
      probe outages
      probe outages --vantage moscow-home --since 2026-11-01 --json
    """
    from datetime import datetime

    from probe.present.tables import format_json_lines, format_outages_table
    from probe.present.terminal import output_width
    from probe.research.outages import outages, run_stats
    from probe.store import Store

    if since is not None:
        try:
            datetime.fromisoformat(since)
        except ValueError:
            raise click.BadParameter(f"{since!r} is not an ISO date or time", param_hint="--since") from None
    if country is not None and not (len(country) == 2 and country.isalpha()):
        raise click.BadParameter(f"{country!r} is not a two-letter country code", param_hint="--country")
    country_of = country_lookup(geo)

    with Store.open(db, create=False) as store:
        stats = run_stats(store, vantage, since, country_of=country_of,
                          country=country)  # fmt: skip
        rows = (o.to_dict() for o in outages(stats))
        out = format_json_lines(rows, keys=None) if as_json else format_outages_table(rows, output_width())
        for chunk in out:
            click.echo(chunk, nl=False)
