"""`probe merge`: combine result databases of several probes (or copies of one) into one."""

from __future__ import annotations

from pathlib import Path

import click

from probe.cli._group import cli


@cli.command("merge")
@click.argument("sources", nargs=-1, required=True,
                type=click.Path(dir_okay=False, path_type=Path))
@click.option("--into", "into", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Output database (created when missing; merged into when it exists).")
def merge_command(sources: tuple[Path, ...], into: Path) -> None:
    """Merge probe databases into one, without duplicates.

    Everything is copied: vantage points, runs, measurements with their raw observations,
    controls and verdicts (each with its classifier version). Rows are matched by their global
    ids, so merging the same database again adds nothing (a source unchanged since it was
    merged is skipped unread), and a database still being written by a running probe can be
    merged (a consistent snapshot of it; merge again later for the rest). Sources are only
    read. Every row is checked before it enters: invalid ones are refused, named by table and
    row, with what depends on them; a damaged source is not merged (exit 1). Each source is
    merged in one transaction: an error leaves the output as it was before that source.

    \b
    Examples:
      probe merge moscow.db almaty.db --into all.db
      probe merge results/*.db --into all.db   # again tomorrow: only new ones
    """
    from probe.present.merge import format_merged
    from probe.store.merge import merge

    merge(into, sources, on_merged=lambda r: click.echo(format_merged(r)))
