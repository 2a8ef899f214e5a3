"""What `probe run` shows while it measures: a live display on a terminal (rich), fitted to its
width; log lines for cron, journald and pipes (:class:`LogProgress`); errors only with --quiet
(:class:`QuietProgress`).

Imported only when stderr is a terminal, so that `probe --help` and runs under cron never
import rich. Every line is cropped to the terminal's width (never wrapped): a wrapped line
breaks the redraw and leaves one copy per refresh on the screen.

Three lines at most:

    [#######.............]  412/1722 URLs  3.9/s  1:45 elapsed  ETA 5:36
    ok 380  blocked 12  reset 9  hijacked 6  down 4  inconclusive 1
    waiting on 3: slow.example.org 41s, tarpit.example.net 38s, ...

The ETA is the larger of the time the URLs not yet started need at the rate so far and the
time the slowest URL in flight may still take (up to its deadline): when the last URLs are
timing out, it counts down their deadlines instead of claiming 0 s. The third line appears
when the run is waiting on slow URLs (everything is started, or one URL has taken more than
a quarter of its deadline).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from probe.core.model import VERDICTS, Target, Verdict
from probe.present.terminal import clean
from probe.run.summary import NullReporter

if TYPE_CHECKING:
    from rich.console import Console
    from rich.live import Live

__all__ = ["LiveProgress", "LogProgress", "QuietProgress", "eta_seconds", "format_duration", "stamp"]

_COLOURS = {"ok": "green", "blocked": "red", "reset": "red", "hijacked": "magenta",
            "throttled": "red", "down": "yellow", "inconclusive": "cyan"}
_BAR = 20


def format_duration(seconds: float) -> str:
    """``1:05`` for 65 s, ``1:01:05`` past an hour."""
    s = max(0, int(seconds + 0.5))
    h, rest = divmod(s, 3600)
    m, sec = divmod(rest, 60)
    return f"{h}:{m:02d}:{sec:02d}" if h else f"{m}:{sec:02d}"


def eta_seconds(total: int | None, done: int, in_flight_ages: list[float], elapsed: float,
                url_budget: float) -> float | None:
    """Honest seconds left: URLs not started at the rate so far, or the slowest URL in flight.

    ``url_budget`` is the most one URL may take (its deadline, retries included); a URL in
    flight for ``age`` seconds may still take ``url_budget - age``. None when unknown.
    """
    if total is None:
        return None
    unstarted = max(0, total - done - len(in_flight_ages))
    rate = done / elapsed if elapsed > 0 and done else 0.0
    if unstarted and rate <= 0:
        return None
    queue_eta = unstarted / rate if unstarted else 0.0
    slowest = max((max(0.0, url_budget - age) for age in in_flight_ages), default=0.0)
    if not unstarted and in_flight_ages:
        # Only the stragglers are left: they end by their deadlines at the latest. The rate so
        # far says nothing about them (the fast URLs are the ones that finished).
        return slowest
    return max(queue_eta, min(slowest, queue_eta + url_budget))


def stamp(message: str) -> str:
    """A log line for cron and journald: UTC time first, so lines can be ordered and matched."""
    return f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())} {message}"


class QuietProgress(NullReporter):
    """A :class:`probe.run.Reporter` for --quiet: only errors (messages starting with ``error``),
    stamped; no progress, warnings or summary. ``echo`` writes one line (to stderr)."""

    def __init__(self, echo: Callable[[str], None]) -> None:
        self.echo = echo

    def problem(self, message: str) -> None:
        if message.startswith("error"):
            self.echo(stamp(clean(message)))

    def close(self) -> None:
        pass


class LogProgress:
    """A :class:`probe.run.Reporter` writing log lines, each starting with the UTC time, for
    cron, journald and pipes: every URL that is neither ok nor inconclusive as it is judged, and
    the counts so far every 30 seconds. ``echo`` writes one line (to stderr)."""

    def __init__(self, echo: Callable[[str], None]) -> None:
        self.echo = echo
        self.total: int | None = None
        self.done = 0
        self.counts: dict[str, int] = {}
        self.t0 = time.monotonic()
        self.last_log = self.t0

    def started(self, run_id: int, total: int | None) -> None:
        self.total = total
        self.t0 = time.monotonic()
        self.echo(stamp(f"run {run_id}: measuring{f' up to {total} URLs' if total else ''}"))

    def measuring(self, target: Target) -> None:
        pass

    def result(self, target: Target, verdict: Verdict) -> None:
        self.done += 1
        self.counts[verdict.verdict] = self.counts.get(verdict.verdict, 0) + 1
        if verdict.verdict not in ("ok", "inconclusive"):
            stage = f"/{verdict.stage}" if verdict.stage else ""
            self.echo(stamp(f"{verdict.verdict}{stage} {target.url}"))
        now = time.monotonic()
        if now - self.last_log >= 30:
            self.last_log = now
            self.echo(stamp(self._line(now)))

    def settled(self, target: Target) -> None:
        pass

    def problem(self, message: str) -> None:
        # Messages may quote the network (a resolver's answer, an AS name): made safe first.
        self.echo(stamp(clean(message)))

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

    def close(self) -> None:
        pass


class LiveProgress:
    """A :class:`probe.run.Reporter` drawing a live, width-fitted display on stderr."""

    def __init__(self, url_budget: float = 60.0, console: Console | None = None) -> None:
        from rich.console import Console

        self.console = console or Console(stderr=True)
        self.url_budget = url_budget
        self.total: int | None = None
        self.run_id = 0
        self.done = 0
        self.counts: dict[str, int] = {}
        self.in_flight: dict[str, float] = {}  # url -> when it started
        self.t0 = time.monotonic()
        self._live: Live | None = None

    # -- Reporter events --------------------------------------------------------------------
    def started(self, run_id: int, total: int | None) -> None:
        from rich.live import Live

        self.run_id, self.total, self.t0 = run_id, total, time.monotonic()
        of = f" up to {total} URLs" if total else ""
        self.console.print(f"run {run_id}: measuring{of}", highlight=False)
        self._live = Live(_Render(self), console=self.console, refresh_per_second=4,
                          transient=False, redirect_stdout=False, redirect_stderr=False)
        self._live.start()

    def measuring(self, target: Target) -> None:
        self.in_flight[target.url] = time.monotonic()

    def result(self, target: Target, verdict: Verdict) -> None:
        self.done += 1
        self.counts[verdict.verdict] = self.counts.get(verdict.verdict, 0) + 1

    def settled(self, target: Target) -> None:
        self.in_flight.pop(target.url, None)

    def problem(self, message: str) -> None:
        # Printed above the live lines, which are then drawn again below it.
        self.console.print(clean(message), highlight=False, markup=False, soft_wrap=True)

    def close(self) -> None:
        """Draw the final state once and leave it on the screen."""
        if self._live is not None:
            self._live.stop()
            self._live = None

    # -- rendering -------------------------------------------------------------------------
    def lines(self, width: int, now: float | None = None) -> list[Any]:
        """The display as rich Text lines, each cropped to ``width`` cells."""
        from rich.text import Text

        now = time.monotonic() if now is None else now
        elapsed = now - self.t0
        # The refresh runs in rich's thread while the event loop adds and removes URLs:
        # copy the dict in one step (atomic under the GIL) before iterating.
        flight = list(self.in_flight.items())
        ages = [now - t for _, t in flight]
        rate = self.done / elapsed if elapsed > 0 else 0.0
        head = Text()
        if self.total:
            filled = int(_BAR * min(self.done, self.total) / self.total)
            head.append("[" + "#" * filled + "." * (_BAR - filled) + "]  ", style="bold")
        of = f"/{self.total}" if self.total else ""
        head.append(f"{self.done}{of} URLs  {rate:.1f}/s  {format_duration(elapsed)} elapsed")
        eta = eta_seconds(self.total, self.done, ages, elapsed, self.url_budget)
        if eta is not None and self.total and self.done < self.total:
            unstarted = self.total - self.done - len(ages)
            head.append(f"  ETA {'≤ ' if unstarted <= 0 and ages else ''}{format_duration(eta)}")
        counts = Text()
        for v in VERDICTS:
            n = self.counts.get(v, 0)
            if n or v in ("ok", "blocked", "reset", "hijacked"):
                counts.append(f"{v} ", style=_COLOURS.get(v, ""))
                counts.append(f"{n}  ", style="bold" if n and v != "ok" else "")
        out = [head, counts]
        slow = self._slow(flight, now)
        if slow:
            names = ", ".join(f"{_host(url)} {int(age)}s" for url, age in slow)
            out.append(Text(f"waiting on {len(flight)}: {names}", style="dim"))
        for line in out:
            line.no_wrap = True
            line.overflow = "ellipsis"
            line.truncate(max(width - 1, 10), overflow="ellipsis")
        return out

    def _slow(self, flight: list[tuple[str, float]], now: float) -> list[tuple[str, float]]:
        if not flight:
            return []
        ages = sorted(((url, now - t) for url, t in flight), key=lambda x: -x[1])
        everything_started = self.total is not None and self.done + len(flight) >= self.total
        if everything_started or ages[0][1] > self.url_budget / 4:
            return ages[:5]
        return []


def _host(url: str) -> str:
    return url.split("://", 1)[-1].split("/", 1)[0]


class _Render:
    """A rich renderable that asks the progress for its lines at each refresh."""

    def __init__(self, progress: LiveProgress) -> None:
        self.progress = progress

    def __rich_console__(self, console: Console, options: Any) -> Any:
        yield from self.progress.lines(options.max_width)
