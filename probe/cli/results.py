"""`probe results`: show stored verdicts as a table or JSON lines."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import click

from probe.cli._group import cli
from probe.cli.options import db_option

if TYPE_CHECKING:
    from probe.store import Store

# The verdict vocabulary of probe.core.model.VERDICTS, repeated so that `probe --help` imports only
# click (a unit test checks the two agree).
VERDICT_CHOICES = ("ok", "blocked", "reset", "hijacked", "throttled", "down", "inconclusive")
#: What `probe results --suite` shows: URLs (`probe run`), endpoints (`probe circumvention`,
#: `probe messaging`), or
#: the verdicts of the opt-in protocol tests of URLs (`probe run --quic`, `--ech`).
SUITES = ("web", "circumvention", "messaging", "quic", "ech")


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
@click.option("--suite", type=click.Choice(SUITES),
              help="web: URLs (`probe run`); circumvention: Tor, OpenVPN and VPN endpoints "
              "(`probe circumvention`); messaging: Telegram, WhatsApp and Signal (`probe "
              "messaging`); quic, ech: the QUIC (HTTP/3) and ECH tests of URLs "
              "(`probe run --quic`, `--ech`). Default: the suite of the run shown (web for --run "
              "all).")
def results_command(db: Path, run: str, verdicts: tuple[str, ...], vantage: str | None,
                    limit: int | None, as_json: bool, as_csv: bool, suite: str | None) -> None:
    """Show the verdicts of a run (by default the latest), one line per URL or endpoint.

    In a database of several vantage points (probe merge), the default is the latest run of
    each of them, and a note on standard error names them.

    The table fits the terminal; its REASON column is the reason that decided the verdict
    (`probe show URL` or `probe show ADDRESS:PORT` explains every reason). Times are UTC.
    With --suite circumvention (messaging), --run latest is the latest `probe circumvention`
    (`probe messaging`) run; the messaging table ends with each app in a line.

    \b
    Examples:
      probe results                                  # the latest run, as a table
      probe results --verdict interference   # blocked, reset, hijacked, throttled
      probe results --verdict blocked --verdict reset --json   # for jq
      probe results --run all --vantage home --csv > home.csv
      probe results --suite circumvention --verdict interference   # Tor, VPNs
      probe results --suite messaging      # Telegram, WhatsApp, Signal
      probe results --suite quic --verdict blocked   # blocked HTTP/3
    """
    if as_json and as_csv:
        raise click.UsageError("--json and --csv exclude each other")
    run_value = _run_param(run)
    from probe.present.tables import format_csv, format_json_lines, format_table
    from probe.present.terminal import output_width
    from probe.store import Store

    with Store.open(db, create=False) as store:
        if suite in ("quic", "ech"):
            _protocol_results(store, suite, run_value, expand_verdicts(verdicts), vantage, limit,
                              as_json, as_csv)
            return
        if suite in ("circumvention", "messaging") or (
                suite is None and _endpoint_run(store, run_value, vantage)):
            _endpoint_results(store, suite, run_value, expand_verdicts(verdicts), vantage, limit,
                              as_json, as_csv)
            return
        rows = store.results(run_value, verdict=expand_verdicts(verdicts), vantage=vantage,
                             limit=limit)
        if run_value == "latest" and vantage is None:
            latest = store.latest_runs()
            if len(latest) > 1:  # a merged database: say whose runs these are
                from probe.present.tables import format_latest_runs

                click.echo(format_latest_runs(latest, output_width(80, err=True)), nl=False,
                           err=True)
        _echo(format_json_lines(rows) if as_json else format_csv(rows) if as_csv
              else format_table(rows, output_width(160)))  # fmt: skip


def _protocol_results(store: Store, suite: str, run: str | int | None,
                      verdicts: tuple[str, ...] | None, vantage: str | None, limit: int | None,
                      as_json: bool, as_csv: bool) -> None:
    """`probe results --suite quic|ech`: the protocol test's verdicts of a run's URLs."""
    from probe.present.protocols import format_protocol_csv, format_protocol_table
    from probe.present.tables import format_json_lines
    from probe.present.terminal import output_width
    from probe.store import StoreError
    from probe.store.protocols import RESULT_KEYS, latest_protocol_run, protocol_results

    run_id: int | None = None
    if run == "latest":
        run_id = latest_protocol_run(store, suite, vantage)
        if run_id is None:
            where = f" for vantage point {vantage!r}" if vantage else ""
            raise StoreError(f"{store.path}: no run measured with --{suite}{where} yet "
                             f"(probe run --{suite})")
    elif run is not None:
        run_id = store.resolve_run(run)
    rows = protocol_results(store, suite, run_id, verdicts=verdicts, vantage=vantage, limit=limit)
    _echo(format_json_lines(rows, keys=RESULT_KEYS) if as_json else format_protocol_csv(rows)
          if as_csv else format_protocol_table(rows, output_width(160)))  # fmt: skip


def _endpoint_run(store: Store, run: str | int | None, vantage: str | None) -> bool:
    """True when the run shown (``latest`` or an id) measured endpoints and no URLs."""
    from probe.store.circumvention import run_has_endpoints

    rid = store.resolve_run(run, vantage)
    return rid is not None and run_has_endpoints(store, rid)


def _endpoint_results(store: Store, suite: str | None, run: str | int | None,
                      verdicts: tuple[str, ...] | None, vantage: str | None, limit: int | None,
                      as_json: bool, as_csv: bool) -> None:
    """`probe results --suite circumvention|messaging`: endpoint verdicts of a `probe
    circumvention` or `probe messaging` run (``suite`` None: every endpoint of the run)."""
    from probe.present.circumvention import format_endpoint_csv, format_endpoint_table
    from probe.present.tables import format_json_lines
    from probe.present.terminal import output_width
    from probe.store import StoreError
    from probe.store.circumvention import RESULT_KEYS, endpoint_results, latest_endpoint_run

    run_id: int | None = None
    if run == "latest":
        run_id = latest_endpoint_run(store, vantage, suite)
        if run_id is None:
            where = f" for vantage point {vantage!r}" if vantage else ""
            what = suite or "circumvention"
            raise StoreError(f"{store.path}: no {what} runs{where} yet (probe {what})")
    elif run is not None:
        run_id = store.resolve_run(run)
    rows = list(endpoint_results(store, run_id, suite, verdicts=verdicts, vantage=vantage, limit=limit))
    _echo(format_json_lines(rows, keys=RESULT_KEYS) if as_json else format_endpoint_csv(rows)
          if as_csv else format_endpoint_table(rows, output_width(160)))  # fmt: skip
    if suite == "messaging" and not (as_json or as_csv) and rows:
        from probe.present.messaging import app_lines

        click.echo("")
        for line in app_lines(rows, output_width(160)):
            click.echo(line)


def _echo(chunks: Iterable[str]) -> None:
    for chunk in chunks:
        click.echo(chunk, nl=False)
