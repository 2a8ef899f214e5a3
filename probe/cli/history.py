"""`probe history URL`: one URL's verdicts over time, at every vantage point, and how stable."""

from __future__ import annotations

from pathlib import Path

import click

from probe.cli._group import cli
from probe.cli.options import db_option


@cli.command("history")
@db_option
@click.argument("url")
@click.option("--vantage", metavar="NAME", help="Only this vantage point.")
@click.option("--last", type=click.IntRange(min=1), default=10, show_default=True,
              help="Runs shown per vantage point (the newest), and over which the latest verdict's "
                   "stability is counted.")
@click.option("--json", "as_json", is_flag=True, help="JSON lines: every verdict, oldest first.")
@click.option("--csv", "as_csv", is_flag=True, help="CSV: every verdict, oldest first.")
def history_command(db: Path, url: str, vantage: str | None, last: int, as_json: bool,
                    as_csv: bool) -> None:
    """Show a URL's verdicts over time at each vantage point, newest first.

    Each vantage point's block starts with its latest verdict and how many of its last runs
    (--last) agree with it: a verdict seen once is weaker evidence than one seen run after
    run. One line per run: when (UTC), the run, the verdict and the reason that decided it.
    JSON and CSV list every verdict. The URL is matched as the test lists write it (case of
    the host, punycode, a trailing slash do not matter).

    \b
    Examples:
      probe history http://example.org/
      probe history example.org --db all.db --vantage moscow --last 30
      probe history https://example.org/ --json | jq .verdict
    """
    if as_json and as_csv:
        raise click.UsageError("--json and --csv exclude each other")
    from probe.present.history import render_history, render_history_csv, render_history_json
    from probe.present.terminal import output_width
    from probe.research.notebook import NotMeasured, history_rows, stability_rows
    from probe.store import Store

    with Store.open(db, create=False) as store:
        try:
            rows = history_rows(store, url, vantage)
        except NotMeasured as exc:
            raise click.BadParameter(str(exc), param_hint="URL") from None
        stable = {s.vantage: s for s in stability_rows(
            store, last=last, vantages=(vantage,) if vantage else (), url=rows[0].url)}
    if as_json:
        out = render_history_json(rows, stable)
    elif as_csv:
        out = render_history_csv(rows, stable)
    else:
        out = render_history(rows, stable, width=min(output_width(80), 80), last=last)
    for chunk in out:
        click.echo(chunk, nl=False)
