"""`probe reclassify`: re-judge stored observations with the current classifier."""

from __future__ import annotations

from pathlib import Path

import click

from probe.cli._group import cli
from probe.cli.options import db_option, fingerprints_option, geo_option


@cli.command("reclassify")
@db_option
@click.option("--run", "run", metavar="ID|latest", help="Only this run (default: every run).")
@fingerprints_option
@geo_option
def reclassify_command(db: Path, run: str | None, fingerprints: tuple[str, ...],
                       geo: str | None) -> None:
    """Re-judge stored measurements with this probe's classifier and report what changed.

    \b
    Examples:
      probe reclassify                # every run of the default database
      probe reclassify --run latest
    """
    if run is not None and run != "latest" and not run.isdigit():
        raise click.BadParameter(f"expected a run id or 'latest', not {run!r}", param_hint="--run")
    from probe.inputs.fingerprints import load_fingerprints
    from probe.inputs.geo import GeoDB
    from probe.present.reclassify import format_reclassify
    from probe.present.terminal import output_width
    from probe.run.reclassify import reclassify
    from probe.store import Store

    fps = load_fingerprints(fingerprints) if fingerprints else None
    geodb = GeoDB.open(geo) if geo else None
    with Store.open(db, create=False, check=True) as store:
        run_id = store.resolve_run(run) if run is not None else None
        report = reclassify(store, run_id, fingerprints=fps, geo=geodb)
    for line in format_reclassify(report, run_id, output_width()):
        click.echo(line)
