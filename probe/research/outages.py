"""Outages: turn a vantage point's runs, and the gaps between them, into outage intervals.

A shutdown is seen from inside as the absence of everything: nothing to measure, or nothing
that answers. Each stored run is first judged on its own (:func:`run_state`) from what its
measurements saw, then consecutive runs of the same state are joined into intervals
(:func:`outage_intervals`). Runs that should have happened but did not (a scheduled probe that
missed its slots) become ``missed`` intervals (:func:`missed_slots`).

The states, most severe first:

- ``full``: nothing answered. Either the run found no network before measuring (status
  ``offline``) or, during the run, both the resolver and the control stopped answering.
- ``dns``: the resolver stopped answering (no reply at all to most queries) while the control,
  reached over the same network, still answered: a DNS-only outage.
- ``isolated``: national isolation. Sites whose addresses are in the vantage point's own country
  (by the offline IP-to-country data) were reached, and nearly every site abroad was not: what
  Russia's "sovereign RuNet" law is built to do. Needs the vantage point's country.
- ``partial``: most TCP connections timed out or found no route, far more than usual at this
  vantage point, while the network itself answered (otherwise the run would be ``full``).
- ``ok``: none of the above.

Like a censorship verdict, an outage is a public claim, so the thresholds are conservative: a
censor that blackholes many addresses looks like a partial outage from inside, so ``partial``
needs a rate of dead connections far above the vantage point's own usual rate (its median over
its other runs), or nearly all connections dead when there is no history to compare with.

An interval is reported with two bounds: ``first_seen``/``last_seen`` are the starts of the
first and last run that saw the state (the outage certainly lasted at least that long), and
``after``/``before`` the end of the last run before it and the start of the first run after it
(the outage certainly fit inside them). Between two runs nobody knows.
"""

from __future__ import annotations

import functools
import itertools
import statistics
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from probe.core.failures import Failure
from probe.inputs.geo import GeoDB, open_default_geo
from probe.store.outages import AddressRow, finished_runs, first_hop_addresses, run_counts

if TYPE_CHECKING:
    from probe.store import Store

__all__ = [
    "OUTAGE_STATES",
    "Isolation",
    "Outage",
    "RunStats",
    "country_lookup",
    "isolation",
    "missed_slots",
    "outage_intervals",
    "outages",
    "run_state",
    "run_stats",
]

#: Run states that are outages, most severe first.
OUTAGE_STATES: tuple[str, ...] = ("full", "dns", "isolated", "partial")

#: Share of URLs whose resolver gave no reply at all that makes a run a DNS (or full) outage.
DNS_SILENT_SHARE = 0.8
#: Share of URLs whose control failed that, with a silent resolver or dead TCP, makes it ``full``.
CONTROL_FAILED_SHARE = 0.8
#: Share of URLs whose every TCP connection timed out or had no route for a ``partial`` outage...
TCP_DEAD_SHARE = 0.5
#: ...when it is at least this many times the vantage point's usual share,
TCP_DEAD_FACTOR = 3.0
#: ...or, with fewer than BASELINE_RUNS earlier ordinary runs to compare with, this share.
TCP_DEAD_SHARE_NO_BASELINE = 0.9
BASELINE_RUNS = 3
#: Isolation: at most this share of URLs abroad reached, while at least ISOLATED_DOMESTIC at home.
ISOLATED_FOREIGN = 0.05
ISOLATED_DOMESTIC = 0.5
#: Fewest URLs (with a TCP attempt) a run needs before its TCP share means anything.
MIN_URLS = 5
#: A gap longer than this many times the usual interval between runs counts as missed slots.
GAP_FACTOR = 2.0
#: Fewest runs before the usual interval (the cadence) of a vantage point is trusted.
CADENCE_RUNS = 4
#: Shortest cadence taken for a schedule (runs started by hand one after another are not one).
MIN_CADENCE = 300.0
#: A schedule is regular when at least this share of its intervals is within 25 % of the median.
REGULAR_SHARE = 0.5

# Failure strings of a connection that got no answer at all (as opposed to a refusal or reset,
# which prove that something on the path answered).
_SILENT = (
    Failure.GENERIC_TIMEOUT_ERROR,
    Failure.HOST_UNREACHABLE,
    Failure.NETWORK_UNREACHABLE,
    Failure.NETWORK_DOWN,
)


@dataclass(frozen=True)
class RunStats:
    """What one run's final measurements saw of the network, as counts of URLs."""

    run_id: int
    vantage: str
    status: str
    started_at: str
    finished_at: str | None
    urls: int = 0
    dns_silent: int = 0  # every probe A query of the first hop got no reply at all
    tcp_tried: int = 0  # at least one TCP connect on the first hop
    tcp_dead: int = 0  # ...and every one of them timed out or had no route
    control_failed: int = 0  # the control for the first hop could not be had
    country: str = ""  # the vantage point's country (ISO 3166 alpha-2), "" when unknown
    domestic_tried: int = 0  # URLs whose first-hop addresses are all in ``country``
    domestic_alive: int = 0  # ...and that connected
    foreign_tried: int = 0  # URLs whose first-hop addresses are all in other, known countries
    foreign_alive: int = 0


@dataclass(frozen=True)
class Outage:
    """An interval of one state at one vantage point (see the module's docstring)."""

    vantage: str
    state: str  # full | dns | isolated | partial | missed
    first_seen: str
    last_seen: str
    after: str | None  # end of the last run before (None: no earlier run)
    before: str | None  # start of the first run after (None: still going at the last run)
    runs: tuple[int, ...]  # the runs that saw it (none for ``missed``)
    missed: int = 0  # for ``missed``: how many scheduled runs did not happen
    evidence: str = ""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        d = asdict(self)
        d["runs"] = list(self.runs)
        return d


def _home_abroad(
    rows: Iterable[AddressRow], country_of: Callable[[str], str], countries: dict[int, str],
) -> dict[int, tuple[int, int, int, int]]:
    """Per run: (domestic tried, alive, foreign tried, alive), URLs by their addresses' country."""
    out: dict[int, list[int]] = {}
    for _, group in itertools.groupby(rows, key=lambda r: r.measurement_id):
        group_rows = list(group)
        run_id = group_rows[0].run_id
        home = countries.get(run_id, "")
        if not home:
            continue
        where_to = {country_of(r.ip) for r in group_rows}
        alive = any(r.alive for r in group_rows)
        if "" in where_to:  # an address of unknown country: neither home nor abroad
            continue
        acc = out.setdefault(run_id, [0, 0, 0, 0])
        if where_to == {home}:
            acc[0] += 1
            acc[1] += alive
        elif home not in where_to:
            acc[2] += 1
            acc[3] += alive
    return {k: (v[0], v[1], v[2], v[3]) for k, v in out.items()}


def run_stats(
    store: Store,
    vantage: str | None = None,
    since: str | None = None,
    *,
    country_of: Callable[[str], str] | None = None,
    country: str | None = None,
) -> list[RunStats]:
    """Per-run network statistics of a probe database, oldest run first (every run, measured or not).

    ``country_of`` maps an address to its country ("" unknown; from the offline geo data): with
    it, URLs are counted at home and abroad for the isolation rule. The vantage point's country
    is ``country`` when given, else the one stored with the vantage point.
    """
    counts = {c.run_id: c for c in run_counts(store, _SILENT, vantage, since)}
    runs = finished_runs(store, vantage, since)
    countries = {r.run_id: (country or r.country or "").upper() for r in runs}
    split = (_home_abroad(first_hop_addresses(store, _SILENT, vantage, since), country_of, countries)
             if country_of is not None else {})  # fmt: skip
    out = []
    for run in runs:
        c = counts.get(run.run_id)
        home = split.get(run.run_id, (0, 0, 0, 0))
        out.append(RunStats(run.run_id, run.vantage, run.status, run.started_at, run.finished_at,
                            *((c.urls, c.dns_silent, c.tcp_tried, c.tcp_dead, c.control_failed)
                              if c is not None else (0, 0, 0, 0, 0)),
                            countries[run.run_id], *home))  # fmt: skip
    return out


def run_state(stats: RunStats, usual_tcp_dead: float | None = None) -> tuple[str, str]:
    """(state, evidence in words) of one run; ``usual_tcp_dead`` is the vantage point's usual
    share of dead TCP URLs (None when there is not enough history)."""
    if stats.status == "offline":
        return "full", "no network before measuring (run recorded offline)"
    if stats.urls == 0:
        return "ok", "nothing measured"
    silent = stats.dns_silent / stats.urls
    ctl = stats.control_failed / stats.urls
    dead = stats.tcp_dead / stats.tcp_tried if stats.tcp_tried else 0.0
    if silent >= DNS_SILENT_SHARE:
        if ctl >= CONTROL_FAILED_SHARE:
            return "full", f"resolver silent for {silent:.0%} of URLs and control failed for {ctl:.0%}"
        return "dns", f"resolver silent for {silent:.0%} of URLs while the control answered"
    if stats.domestic_tried >= MIN_URLS and stats.foreign_tried >= MIN_URLS:
        home = stats.domestic_alive / stats.domestic_tried
        abroad = stats.foreign_alive / stats.foreign_tried
        # The control helper is abroad too, so its failures say nothing here.
        if abroad <= ISOLATED_FOREIGN and home >= ISOLATED_DOMESTIC:
            return "isolated", (
                f"{stats.domestic_alive}/{stats.domestic_tried} URLs in {stats.country} reached, "
                f"{stats.foreign_alive}/{stats.foreign_tried} abroad"
            )
    if stats.tcp_tried >= MIN_URLS:
        if usual_tcp_dead is None:
            partial = dead >= TCP_DEAD_SHARE_NO_BASELINE
            usual = "no history to compare with"
        else:
            partial = dead >= TCP_DEAD_SHARE and dead >= TCP_DEAD_FACTOR * usual_tcp_dead
            usual = f"usually {usual_tcp_dead:.0%}"
        if partial:
            if ctl >= CONTROL_FAILED_SHARE:
                return "full", f"TCP dead for {dead:.0%} of URLs and control failed for {ctl:.0%}"
            return "partial", f"TCP timed out or unroutable for {dead:.0%} of URLs ({usual})"
    return "ok", ""


def _parse(ts: str) -> datetime:
    return datetime.fromisoformat(ts.replace("Z", "+00:00"))


def _states(runs: Sequence[RunStats]) -> list[tuple[RunStats, str, str]]:
    """Each run with its state, judging ``partial`` against the runs before it."""
    out: list[tuple[RunStats, str, str]] = []
    ordinary: list[float] = []  # dead-TCP shares of earlier ``ok`` runs with enough URLs
    for r in runs:
        usual = statistics.median(ordinary) if len(ordinary) >= BASELINE_RUNS else None
        state, why = run_state(r, usual)
        out.append((r, state, why))
        if state == "ok" and r.tcp_tried >= MIN_URLS:
            ordinary.append(r.tcp_dead / r.tcp_tried)
    return out


def outage_intervals(runs: Sequence[RunStats]) -> list[Outage]:
    """Join consecutive runs of one vantage point (oldest first) in the same outage state."""
    judged = _states(runs)
    out: list[Outage] = []
    i = 0
    while i < len(judged):
        run, state, why = judged[i]
        if state not in OUTAGE_STATES:
            i += 1
            continue
        j = i
        while j + 1 < len(judged) and judged[j + 1][1] == state:
            j += 1
        prev = judged[i - 1][0] if i > 0 else None
        nxt = judged[j + 1][0] if j + 1 < len(judged) else None
        out.append(
            Outage(
                vantage=run.vantage,
                state=state,
                first_seen=run.started_at,
                last_seen=judged[j][0].started_at,
                after=(prev.finished_at or prev.started_at) if prev else None,
                before=nxt.started_at if nxt else None,
                runs=tuple(r.run_id for r, _, _ in judged[i : j + 1]),
                evidence=why,
            )
        )
        i = j + 1
    return out


def missed_slots(runs: Sequence[RunStats]) -> list[Outage]:
    """Gaps in a vantage point's schedule: intervals between runs much longer than usual.

    The usual interval (cadence) is the median of the intervals between consecutive run starts;
    it needs :data:`CADENCE_RUNS` runs, at least :data:`MIN_CADENCE` seconds, and a regular
    schedule (most intervals near the median: runs started by hand at random times have no
    slots to miss). A missed slot says only that no run happened: the
    machine may have been off, or the network down (a run that starts with no network is
    recorded ``offline`` and is a ``full`` outage instead).
    """
    if len(runs) < CADENCE_RUNS:
        return []
    starts = [_parse(r.started_at) for r in runs]
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(starts)]
    cadence = statistics.median(gaps)
    if cadence < MIN_CADENCE:
        return []
    if sum(abs(g - cadence) <= 0.25 * cadence for g in gaps) < REGULAR_SHARE * len(gaps):
        return []
    out = []
    for k, gap in enumerate(gaps):
        if gap > GAP_FACTOR * cadence:
            before, after = runs[k], runs[k + 1]
            n = round(gap / cadence) - 1
            out.append(
                Outage(
                    vantage=before.vantage,
                    state="missed",
                    first_seen=before.finished_at or before.started_at,
                    last_seen=after.started_at,
                    after=before.finished_at or before.started_at,
                    before=after.started_at,
                    runs=(),
                    missed=n,
                    evidence=f"{n} scheduled run(s) missing (usual interval {cadence / 60:.0f} min)",
                )
            )
    return out


def outages(stats: Iterable[RunStats]) -> Iterator[Outage]:
    """Every outage and missed-slot interval, per vantage point, in time order."""
    by_vantage: dict[str, list[RunStats]] = {}
    for s in stats:
        by_vantage.setdefault(s.vantage, []).append(s)
    for name in sorted(by_vantage):
        runs = by_vantage[name]
        found = outage_intervals(runs) + missed_slots(runs)
        yield from sorted(found, key=lambda o: (o.first_seen, o.state))


@dataclass(frozen=True)
class Isolation:
    """National isolation at one vantage point: its runs judged, those ``isolated``, and the
    intervals they form (`probe compare`, the report)."""

    vantage: str
    country: str  # "" when unknown: the rule cannot apply
    runs: int  # finished runs judged
    isolated_runs: int
    intervals: tuple[Outage, ...]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {"vantage": self.vantage, "country": self.country, "runs": self.runs,
                "isolated_runs": self.isolated_runs,
                "intervals": [o.to_dict() for o in self.intervals]}  # fmt: skip


def isolation(stats: Iterable[RunStats]) -> dict[str, Isolation]:
    """Per vantage point (by name, sorted), its isolation from :func:`run_stats` rows."""
    by_vantage: dict[str, list[RunStats]] = {}
    for s in stats:
        by_vantage.setdefault(s.vantage, []).append(s)
    out = {}
    for name in sorted(by_vantage):
        runs = by_vantage[name]
        judged = _states(runs)
        intervals = tuple(o for o in outage_intervals(runs) if o.state == "isolated")
        country = next((r.country for r in reversed(runs) if r.country), "")
        out[name] = Isolation(name, country, len(runs), sum(1 for _, st, _ in judged if st == "isolated"),
                              intervals)  # fmt: skip
    return out


def country_lookup(geo: str | None = None) -> Callable[[str], str] | None:
    """An address -> country function ("" unknown) from the IP-to-country data ``geo`` (a file),
    or probe's default data; None when there is none. Raises :class:`probe.inputs.geo.GeoError`."""
    geodb = GeoDB([geo]) if geo else open_default_geo()
    if geodb is None:
        return None

    @functools.lru_cache(maxsize=65536)
    def country_of(ip: str) -> str:
        info = geodb.lookup(ip)
        return info.country.upper() if info is not None else ""

    return country_of
