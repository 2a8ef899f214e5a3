"""`probe import ooni`: OONI Web Connectivity measurements into a probe database, re-judged."""

from __future__ import annotations

from pathlib import Path

import click

from probe.cli._group import cli
from probe.cli.options import db_option, fingerprints_option, geo_option
from probe.cli.types import Bytes

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
@click.option("--max-line-bytes", "max_line", type=Bytes(1024, 1 << 30), default="8M",
              show_default=True,
              help="Longer lines are skipped unread (file:line); also bounds the values a line "
                   "may hold, so memory stays bounded whatever the file.")
@click.option("--max-ratio", type=click.FloatRange(min=1.0), default=100.0, show_default=True,
              help="A .gz file that decompresses to more than this many times its size is a "
                   "compression bomb: the rest of it is skipped.")
@fingerprints_option
@geo_option
def ooni_command(
    files: tuple[Path, ...],
    db: Path,
    report: bool,
    limit: int,
    as_json: bool,
    max_line: int,
    max_ratio: float,
    fingerprints: tuple[str, ...],
    geo: str | None,
) -> None:
    """Import OONI measurements (JSONL, .gz, or directories of them).

    Web Connectivity, and tor, vanilla_tor, torsf, openvpn, riseupvpn, psiphon, telegram,
    whatsapp, signal, dnscheck, echcheck and urlgetter (as endpoints, beside probe's own
    circumvention and messaging results; docs/ooni.md).

    Each measurement is mapped into probe's records, classified by probe's classifier and
    stored with OONI's own verdict (blocking, accessible) beside probe's, in a vantage point
    ooni-CC-ASN and one run per OONI report. Lines that cannot be read, parsed, mapped or
    stored (malformed, too long, nested too deep, wrong types) are reported as file:line and
    skipped, the rest of the file is imported; measurements already imported are skipped.
    Memory stays bounded whatever the files hold (--max-line-bytes, --max-ratio).

    \b
    Examples:
      probe import ooni 2024-01-01_IR_webconnectivity.jsonl.gz
      probe import ooni measurements/ --db ooni.db
      probe import ooni --report --db ooni.db      # where probe and OONI disagree
    """
    if not files and not report:
        raise click.UsageError("give OONI files or directories to import, or --report")
    from probe.inputs.fingerprints import load_fingerprints
    from probe.inputs.geo import GeoDB
    from probe.present.ooni import format_import, format_skipped, ooni_report
    from probe.present.terminal import output_width
    from probe.research.ooni.importer import Limits, import_ooni
    from probe.store import Store

    fps = load_fingerprints(fingerprints) if fingerprints else None
    geodb = GeoDB.open(geo) if geo else None
    with Store.open(db, create=bool(files), check=bool(files)) as store:
        if files:
            shown = 0

            def on_error(msg: str) -> None:
                nonlocal shown
                shown += 1
                if shown <= _SHOW_ERRORS:
                    click.echo(format_skipped(msg, output_width(err=True)), err=True)

            stats = import_ooni(store, list(files), fingerprints=fps, geo=geodb, on_error=on_error,
                                limits=Limits(max_line=max_line, max_ratio=max_ratio))
            if shown > _SHOW_ERRORS:
                click.echo(f"... and {shown - _SHOW_ERRORS} more skipped lines", err=True)
            click.echo(format_import(stats, db, output_width()))
            if stats.read and not stats.imported and not stats.duplicates:
                raise SystemExit(1)
        if report:
            for line in ooni_report(store, limit, as_json, output_width()):
                click.echo(line, nl=False)
