"""`probe results`: show stored verdicts as a table or JSON lines."""

from __future__ import annotations

from pathlib import Path

import click

from probe.cli._group import cli

# The verdict vocabulary of probe.model.VERDICTS, repeated so that `probe --help` imports only
# click (a unit test checks the two agree).
VERDICT_CHOICES = ("ok", "blocked", "reset", "hijacked", "down", "inconclusive")


def _run_param(value: str) -> str | int | None:
    if value == "latest":
        return "latest"
    if value == "all":
        return None
    try:
        return int(value)
    except ValueError:
        raise click.BadParameter(
            f"expected a run id, 'latest' or 'all', not {value!r}", param_hint="--run"
        ) from None


@cli.command("results")
@click.option("--db", type=click.Path(dir_okay=False, path_type=Path), default="results/probe.db",
              show_default=True, help="Results database.")
@click.option("--run", "run", default="latest", show_default=True, metavar="ID|latest|all",
              help="Which run: an id, the latest run, or all runs.")
@click.option("--verdict", type=click.Choice(VERDICT_CHOICES), help="Only this verdict.")
@click.option("--vantage", metavar="NAME", help="Only this vantage point (with --run latest: "
              "its latest run).")
@click.option("--limit", type=click.IntRange(min=1), help="At most this many rows.")
@click.option("--json", "as_json", is_flag=True, help="JSON lines instead of a table.")
def results_command(db: Path, run: str, verdict: str | None, vantage: str | None,
                    limit: int | None, as_json: bool) -> None:
    """Show the verdicts of a run (by default the latest), one line per URL.

    \b
    Examples:
      probe results                              # the latest run, as a table
      probe results --verdict blocked --json     # JSON lines, for jq
      probe results --run all --vantage home     # every run of vantage point "home"
    """
    run_value = _run_param(run)
    from probe.store import Store, StoreError
    from probe.store.report import format_json_lines, format_table

    try:
        with Store.open(db, create=False) as store:
            rows = store.results(run_value, verdict=verdict, vantage=vantage, limit=limit)
            for chunk in (format_json_lines if as_json else format_table)(rows):
                click.echo(chunk, nl=False)
    except StoreError as exc:
        raise click.ClickException(str(exc)) from None
