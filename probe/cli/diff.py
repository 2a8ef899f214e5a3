"""`probe diff`: what changed at a vantage point between two runs, or since a date."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from probe.cli._group import cli
from probe.cli.options import db_option, since_option

if TYPE_CHECKING:
    from probe.store import Store

#: Exit status of `probe diff --exit-code` when something changed (0: nothing did).
EXIT_CHANGED = 3


@cli.command("diff")
@db_option
@click.option("--vantage", metavar="NAME",
              help="The vantage point (needed when the database has several).")
@click.option("--from", "from_run", metavar="ID", type=click.IntRange(min=1),
              help="The earlier run (default: the run before --to).")
@click.option("--to", "to_run", metavar="ID|latest", default="latest", show_default=True,
              help="The later run.")
@since_option("Compare the latest verdicts with those of before this date instead of runs "
              "(2026-11-20, 2026-11-20T10:00, 7d, 24h).")
@click.option("--json", "as_json", is_flag=True, help="JSON lines: one change per line.")
@click.option("--exit-code", is_flag=True,
              help=f"Exit with status {EXIT_CHANGED} when anything changed (for cron alerts).")
def diff_command(db: Path, vantage: str | None, from_run: int | None, to_run: str,
                 since: str | None, as_json: bool, exit_code: bool) -> None:
    """Show what changed at a vantage point: newly blocked, unblocked, technique changed.

    A URL is newly blocked when it was not interfered with before and is now (blocked, reset
    or hijacked); unblocked when it was and is now ok; technique changed when it is interfered
    with in both but by another verdict or at another stage; unclear when it was interfered
    with and is now down or inconclusive. URLs measured on one side only are counted, not
    listed. On a vantage point's first run (or a database without runs yet) there is nothing
    to compare yet: it says so and exits 0, also with --exit-code (a cron job's first night).

    \b
    Examples:
      probe diff                      # the latest run against the one before
      probe diff --vantage moscow --from 12 --to 15
      probe diff --vantage moscow --since 7d --exit-code || mail ...
    """
    from probe.present.diff import format_changes, format_changes_json
    from probe.present.terminal import clean, output_width
    from probe.research import compare as cmp
    from probe.store import SQLiteError, Store

    since_iso = since  # made ISO by the option's callback
    if since_iso is not None and from_run is not None:
        raise click.UsageError("--since and --from are exclusive")
    if to_run != "latest" and not to_run.isdigit():
        raise click.BadParameter(f"expected a run id or 'latest', not {to_run!r}", param_hint="--to")
    try:
        with Store.open(db, create=False) as store:
            vps = store.vantage_ids()
            if vantage is None and not vps and from_run is None and to_run == "latest":
                _nothing_yet(f"{db}: no runs yet", as_json)
                return
            if vantage is None:
                if len(vps) != 1:
                    raise click.UsageError(
                        f"{db} has {len(vps)} vantage points: name one with --vantage "
                        f"({clean(', '.join(vps)) or 'none'})")
                vantage = next(iter(vps))
            if vantage not in vps:
                raise click.BadParameter(f"no vantage point {vantage!r} in {db} "
                                         f"(known: {clean(', '.join(vps)) or 'none'})",
                                         param_hint="--vantage")
            vid = vps[vantage]
            if to_run == "latest" and store.latest_run_id(vantage) is None:
                _nothing_yet(f"{clean(vantage)}: no runs yet", as_json)
                return
            if since_iso is not None and to_run == "latest":
                before, after = cmp.state_at(store, vid, since_iso), cmp.state_latest(store, vid)
                title = f"{vantage}: latest verdicts against those before {since_iso[:16]}"
            else:
                later = _run_of(store, to_run, vantage, vid)
                if since_iso is not None:
                    before = cmp.state_at(store, vid, since_iso)
                    title = f"{vantage}: run {later} against the verdicts before {since_iso[:16]}"
                else:
                    earlier = from_run if from_run is not None else store.previous_run(vid, later)
                    if earlier is None:
                        _nothing_yet(f"{clean(vantage)}: run {later} is its first run", as_json)
                        return
                    _check_run(store, earlier, vantage, vid, "--from")
                    before = cmp.state_of_run(store, earlier)
                    title = f"{vantage}: run {earlier} -> run {later}"
                after = cmp.state_of_run(store, later)
    except SQLiteError as exc:  # a file that is not a database (Store.open does not check it)
        raise click.ClickException(str(exc)) from None
    changes = cmp.diff_states(before, after)
    lines = (format_changes_json(vantage, changes) if as_json
             else format_changes(title, before, after, changes, output_width()))  # fmt: skip
    for line in lines:
        click.echo(line, nl=False)
    if exit_code and changes:
        raise SystemExit(EXIT_CHANGED)


def _run_of(store: Store, run: str, vantage: str, vid: int) -> int:
    rid = store.resolve_run(run, vantage)
    assert rid is not None
    _check_run(store, rid, vantage, vid, "--to")
    return rid


def _check_run(store: Store, run_id: int, vantage: str, vid: int, flag: str) -> None:
    run_vid = store.run_vantage_id(run_id)
    if run_vid is None:
        raise click.BadParameter(f"no run {run_id}", param_hint=flag)
    if run_vid != vid:
        raise click.BadParameter(f"run {run_id} is not a run of vantage point {vantage!r}",
                                 param_hint=flag)


def _nothing_yet(what: str, as_json: bool) -> None:
    """A first run has nothing before it: say so (on stderr under --json, whose lines are
    changes) and end with status 0, --exit-code or not."""
    click.echo(f"{what}: nothing to compare yet", err=as_json)
