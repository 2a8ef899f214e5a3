"""`probe reclassify`: re-judge stored observations with the current classifier."""

from __future__ import annotations

from pathlib import Path

import click

from probe.cli._group import cli
from probe.cli.options import db_option, fingerprints_option, geo_option

_SHOW = 200  # changed verdicts listed on the terminal


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
    from probe.inputs.fingerprints import FingerprintError, load_fingerprints
    from probe.inputs.geo import GeoDB, GeoError
    from probe.run.reclassify import reclassify
    from probe.store import Store, StoreError

    try:
        fps = load_fingerprints(fingerprints) if fingerprints else None
        geodb = GeoDB.open(geo) if geo else None
        with Store.open(db, create=False) as store:
            run_id = store.resolve_run(run) if run is not None else None
            report = reclassify(store, run_id, fingerprints=fps, geo=geodb)
    except (StoreError, FingerprintError, GeoError) as exc:
        raise click.ClickException(str(exc)) from None
    scope = f"run {run_id}" if run_id is not None else "all runs"
    click.echo(
        f"{scope}: re-judged {report.judged} measurements with classifier "
        f"{report.classifier_version or '(unversioned)'}; {report.changed} verdicts changed"
    )
    for (old, new), n in sorted(report.transitions.items(), key=lambda kv: -kv[1]):
        click.echo(f"  {old} -> {new}: {n}")
    for change in report.changes[:_SHOW]:
        click.echo(f"  #{change.measurement_id} {change.describe()}")
    if report.changed > _SHOW:
        click.echo(f"  ... and {report.changed - _SHOW} more (see the measurements table)")
    if report.endpoints_judged:
        click.echo(f"{scope}: re-judged {report.endpoints_judged} circumvention endpoints; "
                   f"{report.endpoints_changed} verdicts changed")
        for (old, new), n in sorted(report.endpoint_transitions.items(), key=lambda kv: -kv[1]):
            click.echo(f"  {old} -> {new}: {n}")
