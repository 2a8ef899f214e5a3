"""`probe import ooni`: OONI Web Connectivity measurements into a probe database, re-judged."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import click

from probe.cli._group import cli
from probe.cli.options import db_option, fingerprints_option, geo_option

if TYPE_CHECKING:
    from probe.store import Store

_SHOW_ERRORS = 20


@cli.group("import")
def import_group() -> None:
    """Import measurements made by other tools."""


@import_group.command("ooni")
@click.argument("files", nargs=-1, type=click.Path(exists=True, path_type=Path))
@db_option
@click.option(
    "--report", is_flag=True, help="List imported measurements where probe's verdict differs from OONI's."
)
@click.option(
    "--limit", type=click.IntRange(min=1), default=50, show_default=True, help="Rows listed by --report."
)
@click.option("--json", "as_json", is_flag=True, help="--report as JSON lines.")
@fingerprints_option
@geo_option
def ooni_command(
    files: tuple[Path, ...],
    db: Path,
    report: bool,
    limit: int,
    as_json: bool,
    fingerprints: tuple[str, ...],
    geo: str | None,
) -> None:
    """Import OONI Web Connectivity measurements (JSONL, .gz, or directories of them).

    Each measurement is mapped into probe's records, classified by probe's classifier and
    stored with OONI's own verdict (blocking, accessible) beside probe's, in a vantage point
    ooni-CC-ASN and one run per OONI report. Malformed lines are reported as file:line and
    skipped; measurements already imported are skipped.

    \b
    Examples:
      probe import ooni 2024-01-01_IR_webconnectivity.jsonl.gz
      probe import ooni measurements/ --db ooni.db
      probe import ooni --report --db ooni.db      # where probe and OONI disagree
    """
    if not files and not report:
        raise click.UsageError("give OONI files or directories to import, or --report")
    from probe.inputs.fingerprints import FingerprintError, load_fingerprints
    from probe.inputs.geo import GeoDB, GeoError
    from probe.research.ooni.importer import import_ooni
    from probe.store import Store, StoreError

    try:
        fps = load_fingerprints(fingerprints) if fingerprints else None
        geodb = GeoDB.open(geo) if geo else None
        with Store.open(db, create=bool(files)) as store:
            if files:
                shown = 0

                def on_error(msg: str) -> None:
                    nonlocal shown
                    shown += 1
                    if shown <= _SHOW_ERRORS:
                        click.echo(f"skipped {msg}", err=True)

                stats = import_ooni(store, list(files), fingerprints=fps, geo=geodb, on_error=on_error)
                if shown > _SHOW_ERRORS:
                    click.echo(f"... and {shown - _SHOW_ERRORS} more skipped lines", err=True)
                counts = ", ".join(f"{k} {v}" for k, v in sorted(stats.verdicts.items()))
                click.echo(
                    f"imported {stats.imported} of {stats.read} lines into {db} "
                    f"({stats.duplicates} already there, {stats.skipped} skipped); "
                    f"probe's verdicts: {counts or 'none'}; agrees with OONI on "
                    f"{stats.agree} of {stats.imported + stats.duplicates}"
                )
                if stats.read and not stats.imported and not stats.duplicates:
                    raise SystemExit(1)
            if report:
                _report(store, limit, as_json)
    except (StoreError, FingerprintError, GeoError) as exc:
        raise click.ClickException(str(exc)) from None


def ooni_report(db: Path, *, limit: int, as_json: bool) -> None:
    """Print the agreement of probe and OONI on ``db``'s imported measurements, then where
    they differ (``probe import ooni --report``, ``probe compare --with-ooni``)."""
    from probe.store import Store, StoreError

    try:
        with Store.open(db, create=False) as store:
            _report(store, limit, as_json)
    except StoreError as exc:
        raise click.ClickException(str(exc)) from None


def _report(store: Store, limit: int, as_json: bool) -> None:
    from probe.research.ooni.importer import agreement as agree_fn
    from probe.research.ooni.importer import disagreements as disagree_fn

    rows = disagree_fn(store, limit)
    if as_json:
        for r in rows:
            click.echo(json.dumps(r, sort_keys=True))
        return
    pairs = agree_fn(store)
    total = sum(pairs.values())
    same = sum(n for k, n in pairs.items() if k.split("|")[0] == k.split("|")[1])
    click.echo(f"{total} imported measurements; probe and OONI agree on {same}")
    for k, n in sorted(pairs.items(), key=lambda kv: -kv[1]):
        p, o = k.split("|")
        click.echo(f"  probe {p:<13} OONI {o:<13} {n}")
    if rows:
        click.echo(f"where they differ (first {len(rows)}):")
    for r in rows:
        reasons = ", ".join(json.loads(str(r["probe_reasons"]))[:4])
        click.echo(
            f"  #{r['measurement_id']} {r['input']} {r['probe_cc']} {r['probe_asn']} "
            f"{r['measurement_start_time']}: probe {r['probe_verdict']}"
            f"{'/' + str(r['probe_stage']) if r['probe_stage'] else ''} ({reasons}); "
            f"OONI {r['ooni_verdict']} (blocking={r['ooni_blocking']}, "
            f"accessible={r['ooni_accessible']})"
        )
