"""`probe check`: read a whole results database and say whether it is sound."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from probe.cli._group import cli
from probe.cli.options import db_option


@cli.command("check")
@db_option
@click.option("--max-problems", type=click.IntRange(min=1), default=20, show_default=True,
              help="Stop listing damage after this many findings.")
def check_command(db: Path, max_problems: int) -> None:
    """Check every page of a results database (read-only; nothing is written).

    Other commands read only what they answer from; this one reads the whole file:
    SQLite's integrity_check (pages, indexes) and foreign_key_check (rows that refer to
    rows that are not there). Exits 1 when anything is wrong, with what to do.

    \b
    Examples:
      probe check                      # results/probe.db
      probe check --db all.db
    """
    from probe.present.check import format_check
    from probe.store.integrity import check_database

    report = check_database(db, max_problems=max_problems)
    for line in format_check(report):
        click.echo(line)
    if not report.ok:
        sys.exit(1)
