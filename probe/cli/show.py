"""`probe show URL|MEASUREMENT_ID`: the whole evidence of one measurement, step by step."""

from __future__ import annotations

from pathlib import Path

import click

from probe.cli._group import cli
from probe.cli.options import db_option


@cli.command("show")
@click.argument("what", metavar="URL|MEASUREMENT_ID")
@db_option
@click.option("--vantage", metavar="NAME", help="The URL's newest measurement from this vantage point.")
@click.option("--run", "run_id", type=click.IntRange(min=1), metavar="ID",
              help="The URL's measurement in this run.")
@click.option("--json", "as_json", is_flag=True, help="The evidence as one JSON document.")
def show_command(what: str, db: Path, vantage: str | None, run_id: int | None, as_json: bool) -> None:
    """Show the whole evidence of one measurement, step by step.

    WHAT is a measurement id (from `probe results --json`) or a URL: its newest final
    measurement (narrowed by --vantage or --run). For each hop: every DNS query and reply
    (injected replies marked), TCP per address, TLS with the certificate, HTTP with the
    fingerprints it matches, each next to what the control saw; then the verdict and every
    reason in plain words.

    \b
    Examples:
      probe show http://example.org/
      probe show 42 --json | jq .verdict
    """
    import shutil
    import sys

    from probe.evidence import EvidenceError, dumps, evidence, find_measurement, render_text
    from probe.fingerprints import default_fingerprints
    from probe.store import Store, StoreError

    try:
        with Store.open(db, create=False) as store:
            mid = find_measurement(store, what, vantage, run_id)
            ev = evidence(store, mid, fingerprints=default_fingerprints())
    except (StoreError, EvidenceError) as exc:
        raise click.ClickException(str(exc)) from None
    if as_json:
        click.echo(dumps(ev))
        return
    width = shutil.get_terminal_size((100, 24)).columns if sys.stdout.isatty() else 100
    for line in render_text(ev, width):
        click.echo(line)
