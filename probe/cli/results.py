"""`probe results`: show stored verdicts as a table or JSON lines."""

from __future__ import annotations

from pathlib import Path

import click

from probe.cli._group import cli
from probe.cli.options import db_option

# The verdict vocabulary of probe.model.VERDICTS, repeated so that `probe --help` imports only
# click (a unit test checks the two agree).
VERDICT_CHOICES = ("ok", "blocked", "reset", "hijacked", "throttled", "down", "inconclusive")


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


#: The word for "any interference" (blocked, reset, hijacked or throttled): what the `blocked`
#: view holds.
INTERFERENCE_WORD = "interference"
INTERFERENCE = ("blocked", "reset", "hijacked", "throttled")


def expand_verdicts(chosen: tuple[str, ...]) -> tuple[str, ...] | None:
    """The verdicts ``--verdict`` values name (``interference``: blocked, reset, hijacked, throttled)."""
    if not chosen:
        return None
    out: list[str] = []
    for v in chosen:
        out.extend(INTERFERENCE if v == INTERFERENCE_WORD else (v,))
    return tuple(dict.fromkeys(out))


def table_width() -> int:
    """Columns of the terminal on stdout, or 160 when it is a pipe or a file."""
    import shutil
    import sys

    if sys.stdout.isatty():
        return shutil.get_terminal_size((80, 24)).columns
    return 160


@cli.command("results")
@db_option
@click.option("--run", "run", default="latest", show_default=True, metavar="ID|latest|all",
              help="Which run: an id, the latest run, or all runs.")
@click.option("--verdict", "verdicts", multiple=True,
              type=click.Choice((*VERDICT_CHOICES, INTERFERENCE_WORD)),
              help="Only this verdict (repeatable: any of them). 'interference' means blocked, "
              "reset, hijacked or throttled: what the `blocked` view holds.")
@click.option("--vantage", metavar="NAME", help="Only this vantage point (with --run latest: "
              "its latest run).")
@click.option("--limit", type=click.IntRange(min=1), help="At most this many rows.")
@click.option("--json", "as_json", is_flag=True, help="JSON lines instead of a table.")
@click.option("--csv", "as_csv", is_flag=True, help="CSV (with the decisive reason in words).")
def results_command(db: Path, run: str, verdicts: tuple[str, ...], vantage: str | None,
                    limit: int | None, as_json: bool, as_csv: bool) -> None:
    """Show the verdicts of a run (by default the latest), one line per URL.

    The table fits the terminal; its REASON column is the reason that decided the verdict
    (`probe show URL` explains every reason). Times are UTC.

    \b
    Examples:
      probe results                                  # the latest run, as a table
      probe results --verdict interference           # blocked, reset, hijacked or throttled
      probe results --verdict blocked --verdict reset --json   # JSON lines, for jq
      probe results --run all --vantage home --csv > home.csv
    """
    if as_json and as_csv:
        raise click.UsageError("--json and --csv exclude each other")
    run_value = _run_param(run)
    from probe.store import Store, StoreError
    from probe.store.report import format_csv, format_json_lines, format_table

    try:
        with Store.open(db, create=False) as store:
            rows = store.results(run_value, verdict=expand_verdicts(verdicts), vantage=vantage,
                                 limit=limit)
            if as_json:
                out = format_json_lines(rows)
            elif as_csv:
                out = format_csv(rows)
            else:
                out = format_table(rows, table_width())
            for chunk in out:
                click.echo(chunk, nl=False)
    except StoreError as exc:
        raise click.ClickException(str(exc)) from None
