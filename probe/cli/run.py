"""`probe run`: measure test lists into the results database."""

from __future__ import annotations

import sys
from typing import Any

import click

from probe.cli._group import cli
from probe.cli.options import (
    build_request,
    echo_err,
    list_options,
    measure_options,
    require_consent,
    run_settings_options,
)


@cli.command()
@list_options
@run_settings_options
@measure_options
@click.option("--accept-risks", is_flag=True, help="Accept the risks of measuring (non-interactive).")
@click.option("--progress/--no-progress", default=None, help="Progress bar  [default: on a terminal]")
@click.option("-q", "--quiet", is_flag=True,
              help="Print only errors: no progress, warnings or summary (for cron).")
@click.pass_context
def run(ctx: click.Context, /, accept_risks: bool, progress: bool | None, quiet: bool,
        **params: Any) -> None:
    """Measure URLs from test lists (default: the bundled global list) and store the results.

    LISTS are Citizen Lab CSV files; `-` reads one from standard input. Defaults come from the
    config file (see `probe config path`), then $PROBE_DB for the database; flags override both.

    \b
    Examples:
      probe run                      # the default list, results/probe.db
      probe run testlists/ru.csv --category NEWS,HUMR --vantage home-isp
      probe run --url https://example.org/ --control https://th.example.net/
    """
    from probe.api import measure_lists
    from probe.present.progress import LiveProgress, LogProgress, QuietProgress
    from probe.present.summary import print_summary

    request = build_request(ctx, params)
    category = request.selection.category
    if category:
        from probe.inputs.testlists import parse_categories

        try:
            parse_categories(category)  # codes unknown to the lists: measure_lists says so
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--category") from None
    require_consent(accept_risks)
    live = sys.stderr.isatty() if progress is None else progress
    reporter: LiveProgress | LogProgress | QuietProgress
    if quiet:
        reporter = QuietProgress(echo_err)
    elif live:  # rich is imported by LiveProgress only: cron runs and `probe --help` never load it
        m, st = request.measure, request.settings
        reporter = LiveProgress(url_budget=m.deadline * (st.retries + 1) + st.retry_pause * st.retries)
    else:
        reporter = LogProgress(echo_err)
    try:
        summary = measure_lists(request, reporter)
    except KeyboardInterrupt:
        # Only possible before the run starts (e.g. waiting on a FIFO nobody writes to): once
        # it runs, SIGINT ends it cleanly as interrupted.
        click.echo("interrupted before measuring; nothing was stored", err=True)
        sys.exit(130)
    finally:
        reporter.close()
    import shutil

    tty = sys.stdout.isatty()
    width = shutil.get_terminal_size((80, 24)).columns if tty else 80
    if not quiet:
        print_summary(summary, request.settings.db, click.echo, tty, width,
                      resume=_resume_command(summary.run_id))
    if summary.status == "interrupted":
        sys.exit(130)
    if summary.errors:
        sys.exit(1)  # some URLs hit a bug in probe; the rest are stored


def _resume_command(run_id: int) -> str:
    """The command that resumes run ``run_id``: this one, with ``--resume RUN_ID``.

    Made from the command line as typed (shown, never stored): the same lists, filters and
    measuring options, so the resumed part is measured as the first part was.
    """
    import shlex

    argv = sys.argv[1:]
    args = argv[argv.index("run") + 1:] if "run" in argv else argv
    kept: list[str] = []
    skip = False
    for arg in args:
        if skip:
            skip = False
            if arg == "latest" or arg.isdigit():
                continue  # --resume's value
        if arg == "--resume":
            skip = True
            continue
        if arg.startswith("--resume="):
            continue
        kept.append(arg)
    return shlex.join(["probe", "run", *kept, "--resume", str(run_id)])
