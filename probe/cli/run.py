"""`probe run`: measure test lists into the results database."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import click

from probe.cli._group import cli

# OONI's public Web Connectivity test helpers speak the protocol our helper speaks; they are the
# default control, as in OONI Probe. Self-hosters pass --control with their own helper.
DEFAULT_CONTROLS = (
    "https://0.th.ooni.org/",
    "https://1.th.ooni.org/",
    "https://2.th.ooni.org/",
    "https://3.th.ooni.org/",
)


class _Progress:
    """Progress on a terminal (one redrawn line), or plain log lines for cron and pipes."""

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
        click.echo(f"run {run_id}: measuring{f' up to {total} URLs' if total else ''}", err=True)

    def result(self, target, verdict) -> None:  # type: ignore[no-untyped-def]
        self.done += 1
        self.counts[verdict.verdict] = self.counts.get(verdict.verdict, 0) + 1
        now = time.monotonic()
        if self.tty:
            self._draw(now)
        else:
            if verdict.verdict not in ("ok", "inconclusive"):
                stage = f"/{verdict.stage}" if verdict.stage else ""
                click.echo(f"{verdict.verdict}{stage} {target.url}", err=True)
            if now - self.last_log >= 30:
                self.last_log = now
                click.echo(self._line(now), err=True)

    def problem(self, message: str) -> None:
        if self.tty:
            click.echo("\r\x1b[K", nl=False, err=True)
        click.echo(message, err=True)

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
@click.argument("lists", nargs=-1, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--url", "urls", multiple=True, metavar="URL", help="Measure this URL (repeatable).")
@click.option("--category", metavar="CODES", help="Only these categories, e.g. NEWS,HUMR.")
@click.option("--strict", is_flag=True, help="Any invalid list row is fatal (exit 2).")
@click.option("--db", type=click.Path(dir_okay=False, path_type=Path), default="results/probe.db",
              show_default=True, help="Results database.")
@click.option("--vantage", default="default", show_default=True, help="Name of this vantage point.")
@click.option("--resolver", "resolvers", multiple=True, metavar="IP[:PORT]",
              help="Resolve through this UDP resolver instead of /etc/resolv.conf (repeatable).")
@click.option("--resolv-conf", default="/etc/resolv.conf", show_default=True,
              help="resolv.conf to read the system resolver from.")
@click.option("--doh", multiple=True, metavar="URL", help="DNS-over-HTTPS server used as DNS control.")
@click.option("--control", "controls", multiple=True, metavar="URL",
              help="Test helper (OONI Web Connectivity protocol); repeatable, tried in turn. "
              "Default: OONI's public helpers.")
@click.option("--no-control", is_flag=True, help="Use no control: only locally provable verdicts.")
@click.option("--cafile", type=click.Path(exists=True, dir_okay=False), help="Extra CA bundle (PEM).")
@click.option("--concurrency", type=click.IntRange(1, 4096), default=None,
              help="URLs in flight  [default: 64, from the benchmark]")
@click.option("--per-host", type=click.IntRange(1, 1024), default=4, show_default=True,
              help="URLs in flight per host name.")
@click.option("--dns-timeout", type=click.FloatRange(0.1), default=4.0, show_default=True)
@click.option("--tcp-timeout", type=click.FloatRange(0.1), default=10.0, show_default=True)
@click.option("--tls-timeout", type=click.FloatRange(0.1), default=10.0, show_default=True)
@click.option("--http-timeout", type=click.FloatRange(0.1), default=15.0, show_default=True)
@click.option("--deadline", type=click.FloatRange(1.0), default=60.0, show_default=True,
              help="Seconds allowed per URL, all steps and redirects included.")
@click.option("--late-window", type=click.FloatRange(0.0), default=0.5, show_default=True,
              help="Seconds to keep listening for more DNS replies (injection evidence).")
@click.option("--body-cap", type=click.IntRange(0), default=1 << 20, show_default=True,
              help="Bytes of each HTTP body kept.")
@click.option("--max-redirects", type=click.IntRange(0, 50), default=10, show_default=True)
@click.option("--retries", type=click.IntRange(0, 5), default=1, show_default=True,
              help="Re-measure a URL whose step failed while the control succeeded.")
@click.option("--retry-pause", type=click.FloatRange(0.0), default=2.0, show_default=True)
@click.option("--fingerprints", multiple=True, type=click.Path(exists=True, dir_okay=False),
              help="Extra block-page fingerprint file (repeatable).")
@click.option("--geo", type=click.Path(exists=True, dir_okay=False),
              help="IP-to-ASN database (.mmdb or ip2asn TSV) for DNS consistency.")
@click.option("--accept-risks", is_flag=True, help="Accept the risks of measuring (non-interactive).")
@click.option("--progress/--no-progress", default=None, help="Progress bar  [default: on a terminal]")
def run(lists: tuple[Path, ...], urls: tuple[str, ...], category: str | None, strict: bool, db: Path,
        vantage: str, resolvers: tuple[str, ...], resolv_conf: str, doh: tuple[str, ...],
        controls: tuple[str, ...], no_control: bool, cafile: str | None, concurrency: int | None,
        per_host: int, dns_timeout: float, tcp_timeout: float, tls_timeout: float, http_timeout: float,
        deadline: float, late_window: float, body_cap: int, max_redirects: int, retries: int,
        retry_pause: float, fingerprints: tuple[str, ...], geo: str | None, accept_risks: bool,
        progress: bool | None) -> None:
    """Measure URLs from test lists (default: testlists/global.csv) and store the results.

    \b
    Examples:
      probe run                                   # the default list, results/probe.db
      probe run testlists/ru.csv --category NEWS,HUMR --vantage home-isp
      probe run --url https://example.org/ --control https://th.example.net/
    """
    from probe import consent
    from probe.api import RunRequest, measure_lists
    from probe.cli._summary import print_summary
    from probe.runner import NoNetworkError
    from probe.store import StoreError
    from probe.testlists import TestListError

    if controls and no_control:
        raise click.UsageError("--control and --no-control exclude each other")
    if category:
        from probe.testlists import parse_categories, unknown_categories

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
    request = RunRequest(
        lists=lists, urls=urls, category=category, strict=strict, db=db, vantage=vantage,
        resolvers=resolvers, resolv_conf=resolv_conf, doh=doh,
        controls=() if no_control else (controls or DEFAULT_CONTROLS), cafile=cafile,
        concurrency=concurrency, per_host=per_host, dns_timeout=dns_timeout,
        tcp_timeout=tcp_timeout, tls_timeout=tls_timeout, http_timeout=http_timeout,
        deadline=deadline, late_window=late_window, body_cap=body_cap,
        max_redirects=max_redirects, retries=retries, retry_pause=retry_pause,
        fingerprints=fingerprints, geo=geo, accept_risks=accept_risks,
    )
    live = sys.stderr.isatty() if progress is None else progress
    reporter: Any
    if live:  # rich is imported only here: cron runs and `probe --help` never load it
        from probe.cli._progress import LiveProgress

        reporter = LiveProgress(url_budget=deadline * (retries + 1) + retry_pause * retries)
    else:
        reporter = _Progress(False)
    try:
        summary = measure_lists(request, reporter)
    except TestListError as exc:
        raise click.UsageError(str(exc)) from None
    except (StoreError, NoNetworkError) as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        reporter.close()
    import shutil

    tty = sys.stdout.isatty()
    width = shutil.get_terminal_size((80, 24)).columns if tty else 80
    print_summary(summary, db, click.echo, tty, width)
    if summary.status == "interrupted":
        sys.exit(130)
    if summary.errors:
        sys.exit(1)  # some URLs hit a bug in probe; the rest are stored
