"""The end of `probe run`: what was blocked and why on a terminal, one compact line otherwise.

On a terminal the non-ok URLs of the run are listed grouped by verdict (interference first),
each with the reason that decided its verdict in plain words (:mod:`probe.judge.explain`), then the
counts and where the data is. Under cron or systemd (no terminal) one line: the per-URL lines
were already logged while the run went on.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from probe.core.model import VERDICTS
from probe.core.settings import DEFAULT_DB
from probe.judge.explain import decisive, explain
from probe.present.terminal import clean
from probe.present.text import cut_middle, wrap
from probe.store import Store, StoreError
from probe.store.protocols import protocol_results, run_protocol_counts

__all__ = ["SHOWN_PER_VERDICT", "compact_summary", "summary_lines"]

#: Order of the groups: interference first, then sites down for everyone, then the unsure.
_GROUPS = (
    ("hijacked", "hijacked (DNS or TLS lied)"),
    ("reset", "reset (connection cut)"),
    ("blocked", "blocked (timed out or a block page)"),
    ("throttled", "throttled (loads, but far slower than the other sites)"),
    ("down", "down (the control failed too: not censorship)"),
    ("inconclusive", "inconclusive (not enough evidence either way)"),
)
#: URLs listed per verdict on a terminal; the rest are counted, with the command listing them.
SHOWN_PER_VERDICT = 25


def _counts_text(counts: dict[str, int]) -> str:
    return ", ".join(f"{v} {counts.get(v, 0)}" for v in VERDICTS)


def compact_summary(run_id: int, status: str, measured: int, elapsed: float,
                    counts: dict[str, int], db: Path) -> str:
    """One line for logs: status, counts and where the data is."""
    rate = measured / elapsed if elapsed else 0.0
    return (f"run {run_id} {status}: {measured} URLs in {elapsed:.1f} s ({rate:.1f} URLs/s); "
            f"{_counts_text(counts)}; results in {db} (run {run_id})")


def summary_lines(
    run_id: int,
    status: str,
    measured: int,
    elapsed: float,
    counts: dict[str, int],
    db: Path,
    rows: Iterable[dict[str, Any]],
    width: int = 80,
) -> Iterator[str]:
    """The terminal summary, line by line, fitted to ``width`` columns.

    ``rows`` are the run's non-ok results (dicts of :meth:`probe.store.Store.results`).
    """
    rate = measured / elapsed if elapsed else 0.0
    groups: dict[str, list[dict[str, Any]]] = {v: [] for v, _ in _GROUPS}
    extra: dict[str, int] = {v: 0 for v, _ in _GROUPS}
    for r in rows:
        v = r["verdict"]
        if v not in groups:
            continue
        if len(groups[v]) < SHOWN_PER_VERDICT:
            groups[v].append(r)
        else:
            extra[v] += 1
    yield f"run {run_id} {status}: {measured} URLs in {elapsed:.1f} s ({rate:.1f} URLs/s)"
    dbq = shlex.quote(str(db))
    for verdict, title in _GROUPS:
        if not groups[verdict]:
            continue
        yield ""
        yield f"{title}: {counts.get(verdict, len(groups[verdict]) + extra[verdict])}"
        for r in groups[verdict]:
            key = decisive(verdict, r["stage"], r["reasons"] or [])
            words = explain(key, verdict) if key else "no reason recorded"
            yield from _entry(r["url"], words, width)
        if extra[verdict]:
            yield (f"  ... and {extra[verdict]} more: probe results --db {dbq} --run {run_id} "
                   f"--verdict {verdict}")
    yield ""
    yield _counts_text(counts)
    yield f"results: {db} (run {run_id})"
    db_opt = "" if Path(db) == DEFAULT_DB else f" --db {dbq}"
    for command, what in ((f"probe results{db_opt} --run {run_id}", "every verdict"),
                          (f"probe show{db_opt} URL", "the evidence for one URL")):
        line = f"  {command:<40}  {what}"
        yield line if len(line) <= width else f"  {command}"  # a long path cannot be cut


def _entry(url: str, words: str, width: int) -> Iterator[str]:
    # The URL on its own line, the reason indented under it: both stay readable at 80 columns.
    width = max(width, 40)
    yield "  " + cut_middle(clean(url), width - 2)
    yield from wrap(words, width, "      ")


def print_summary(summary: Any, db: Path, echo: Callable[[str], Any], tty: bool, width: int,
                  resume: str = "") -> None:
    """Write the end-of-run summary of a :class:`probe.run.RunSummary`.

    On a terminal: the non-ok URLs with their reasons (read back from the database, so what is
    said is what was stored); otherwise one compact line. Then the network measured from, when
    it is known; for an interrupted run, ``resume``: the command that finishes it.
    """
    counts = dict(summary.verdicts)
    if not tty:
        echo(compact_summary(summary.run_id, summary.status, summary.measured, summary.elapsed,
                             counts, db))
        if summary.protocols:
            try:
                with Store.open(db, create=False) as store:
                    for line in protocol_lines(store, summary.run_id, db, tty=False):
                        echo(line)
            except StoreError:
                pass  # the database went away: the compact line said what matters
        _problems(summary, echo)
        _network(summary, echo, width)
        _resume(summary, resume, echo)
        return
    try:
        with Store.open(db, create=False) as store:
            rows = store.results(summary.run_id,
                                 verdict=tuple(v for v, _ in _GROUPS))
            for line in summary_lines(summary.run_id, summary.status, summary.measured,
                                      summary.elapsed, counts, db, rows, width):
                echo(line)
            if summary.protocols:
                for line in protocol_lines(store, summary.run_id, db, width):
                    echo(line)
    except StoreError:  # the database went away: the counts are still worth printing
        echo(compact_summary(summary.run_id, summary.status, summary.measured, summary.elapsed,
                             counts, db))
    _problems(summary, echo)
    _network(summary, echo, width)
    _resume(summary, resume, echo)


def _resume(summary: Any, command: str, echo: Callable[[str], Any]) -> None:
    if summary.status == "interrupted" and command:
        # Whole on its own line, even past the width: a command is copied, not read.
        echo("to measure the URLs it has not measured yet, in the same run:")
        echo(f"  {command}")


def _network(summary: Any, echo: Callable[[str], Any], width: int) -> None:
    if summary.network:
        line = f"vantage {clean(summary.vantage)}: {clean(summary.network)}"
        if summary.network_changed:
            line += " (CHANGED during the run)"
        for part in wrap(line, max(width, 40), "", "  "):
            echo(part)
    if summary.address_unknown:
        text = (f"your public address stayed unknown ({summary.address_unknown}): pages that "
                "show it may hold it; this machine's own addresses were scrubbed")
        for part in wrap(text, max(width, 40)):
            echo(part)


_SUITES = (("quic", "QUIC (HTTP/3)"), ("ech", "ECH"))


def protocol_lines(store: Store, run_id: int, db: Path, width: int = 80, *, tty: bool = True
                   ) -> Iterator[str]:
    """What the run's QUIC and ECH tests found (``probe run --quic``, ``--ech``): their counts
    and, on a terminal, the URLs they found blocked or reset with the reason in words."""
    counts = run_protocol_counts(store, run_id)
    dbq = "" if Path(db) == DEFAULT_DB else f" --db {shlex.quote(str(db))}"
    for suite, title in _SUITES:
        if suite not in counts:
            continue
        line = ", ".join(f"{v} {n}" for v, n in sorted(counts[suite].items()))
        if not tty:
            yield f"run {run_id} {suite}: {line}"
            continue
        yield ""
        yield from wrap(f"{title}, judged apart from the web verdicts above: {line}", max(width, 40))
        for r in protocol_results(store, suite, run_id, verdicts=("blocked", "reset"),
                                  limit=SHOWN_PER_VERDICT):
            key = decisive(r["verdict"], r["stage"], r["reasons"] or [])
            yield from _entry(f"{r['verdict']}: {r['url']}", explain(key) if key else r["verdict"], width)
        yield f"  probe results{dbq} --run {run_id} --suite {suite}"


def _problems(summary: Any, echo: Callable[[str], Any]) -> None:
    if summary.problems:
        echo(f"invalid list rows skipped: {summary.problems}")
    if summary.errors:
        echo(f"URLs not measured because of an internal error: {summary.errors}")
