"""`probe run`: measure test lists into the results database."""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING, Any

import click

from probe.cli._group import cli
from probe.cli.options import build_request, list_options, measure_options, run_settings_options

if TYPE_CHECKING:
    from probe.core.model import Target, Verdict


def _stamp(message: str) -> str:
    """A log line for cron and journald: UTC time first, so lines can be ordered and matched."""
    return f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())} {message}"


class _Quiet:
    """--quiet: only errors (lines starting with ``error``); no progress, warnings or summary."""

    def started(self, run_id: int, total: int | None) -> None:
        pass

    def result(self, target: Any, verdict: Any) -> None:
        pass

    def problem(self, message: str) -> None:
        if message.startswith("error"):
            click.echo(_stamp(message), err=True)

    def close(self) -> None:
        pass


class _Progress:
    """Progress on a terminal (one redrawn line), or plain log lines for cron and pipes.

    Log lines (not on a terminal) start with the UTC time.
    """

    def __init__(self, tty: bool) -> None:
        self.tty = tty
        self.total: int | None = None
        self.done = 0
        self.counts: dict[str, int] = {}
        self.t0 = time.monotonic()
        self.last_log = self.t0

    def started(self, run_id: int, total: int | None) -> None:
        self.total = total
        self.t0 = time.monotonic()
        click.echo(self._log(f"run {run_id}: measuring{f' up to {total} URLs' if total else ''}"),
                   err=True)

    def result(self, target: Target, verdict: Verdict) -> None:
        self.done += 1
        self.counts[verdict.verdict] = self.counts.get(verdict.verdict, 0) + 1
        now = time.monotonic()
        if self.tty:
            self._draw(now)
        else:
            if verdict.verdict not in ("ok", "inconclusive"):
                stage = f"/{verdict.stage}" if verdict.stage else ""
                click.echo(self._log(f"{verdict.verdict}{stage} {target.url}"), err=True)
            if now - self.last_log >= 30:
                self.last_log = now
                click.echo(self._log(self._line(now)), err=True)

    def _log(self, message: str) -> str:
        return message if self.tty else _stamp(message)

    def problem(self, message: str) -> None:
        if self.tty:
            click.echo("\r\x1b[K", nl=False, err=True)
        click.echo(self._log(message), err=True)

    def _line(self, now: float) -> str:
        elapsed = max(now - self.t0, 1e-6)
        rate = self.done / elapsed
        counts = " ".join(f"{k} {v}" for k, v in sorted(self.counts.items()))
        eta = ""
        if self.total and rate > 0 and self.total > self.done:
            secs = int((self.total - self.done) / rate)
            eta = f" ETA {secs // 60}m{secs % 60:02d}s"
        of = f"/{self.total}" if self.total else ""
        return f"{self.done}{of} URLs | {counts} | {rate:.1f} URLs/s{eta}"

    def _draw(self, now: float) -> None:
        bar = ""
        if self.total:
            filled = int(20 * min(self.done, self.total) / self.total)
            bar = "[" + "#" * filled + "." * (20 - filled) + "] "
        click.echo("\r\x1b[K" + bar + self._line(now), nl=False, err=True)

    def close(self) -> None:
        if self.tty and self.done:
            click.echo("", err=True)


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
      probe run                                   # the default list, results/probe.db
      probe run testlists/ru.csv --category NEWS,HUMR --vantage home-isp
      probe run --url https://example.org/ --control https://th.example.net/
    """
    from probe.api import measure_lists
    from probe.host import consent
    from probe.inputs.testlists import TestListError
    from probe.present.summary import print_summary
    from probe.run.preflight import NoControlError, NoNetworkError
    from probe.store import StoreError
    from probe.store.lock import EXIT_BUSY, DatabaseBusy

    request = build_request(ctx, params)
    category = request.selection.category
    if category:
        from probe.inputs.testlists import parse_categories, unknown_categories

        try:
            unknown = unknown_categories(parse_categories(category) or ())
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--category") from None
        if unknown:
            click.echo(f"warning: unknown category code(s): {', '.join(unknown)}", err=True)
    interactive = consent.is_interactive()
    if not consent.ensure_consent(accept_risks, interactive, click.echo, click.confirm):
        raise click.UsageError(
            consent.CONSENT_DECLINED_MESSAGE if interactive else consent.CONSENT_REQUIRED_MESSAGE
        )
    live = sys.stderr.isatty() if progress is None else progress
    reporter: Any
    if quiet:
        reporter = _Quiet()
    elif live:  # rich is imported only here: cron runs and `probe --help` never load it
        from probe.present.progress import LiveProgress

        m, st = request.measure, request.settings
        reporter = LiveProgress(url_budget=m.deadline * (st.retries + 1) + st.retry_pause * st.retries)
    else:
        reporter = _Progress(False)
    try:
        summary = measure_lists(request, reporter)
    except TestListError as exc:
        raise click.UsageError(str(exc)) from None
    except (StoreError, NoNetworkError, NoControlError) as exc:
        raise click.ClickException(str(exc)) from None
    except DatabaseBusy as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(EXIT_BUSY)
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
        print_summary(summary, request.settings.db, click.echo, tty, width)
        if summary.network:
            line = f"vantage {summary.vantage}: {summary.network}"
            if summary.network_changed:
                line += " (CHANGED during the run)"
            click.echo(line[: max(width, 40)])
    if summary.status == "interrupted":
        sys.exit(130)
    if summary.errors:
        sys.exit(1)  # some URLs hit a bug in probe; the rest are stored
