"""What the outage rules read (probe/research/outages.py): per run, what its measurements saw.

- :func:`finished_runs`: the runs (not those still running), oldest first, with their vantage
  point's name and country;
- :func:`run_counts`: per run, counts of its final measurements' first hop: URLs, resolver
  silent, TCP tried, TCP dead, control failed;
- :func:`first_hop_addresses`: per final measurement, each address its first hop connected to
  and whether anything answered there (for the isolation rule, by the addresses' country).

Which failures count as "no answer at all" is the outage rules' choice: the callers pass them
(``silent``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

from probe.store.connection import filters, typed_rows

if TYPE_CHECKING:
    from probe.store.database import Store

__all__ = ["AddressRow", "RunCounts", "RunRow", "finished_runs", "first_hop_addresses", "run_counts"]


class RunRow(NamedTuple):
    """A finished run and where it was made."""

    run_id: int
    vantage: str
    status: str
    started_at: str
    finished_at: str | None
    country: str  # the vantage point's country as stored ("" when unknown)


class RunCounts(NamedTuple):
    """Counts of one run's final measurements, by what their first hop saw."""

    run_id: int
    urls: int
    dns_silent: int  # every probe A query got no reply at all
    tcp_tried: int  # at least one TCP connect
    tcp_dead: int  # ...and every one of them failed with a ``silent`` failure
    control_failed: int  # the control could not be had


class AddressRow(NamedTuple):
    """One address a final measurement's first hop connected to."""

    run_id: int
    measurement_id: int
    ip: str
    alive: int  # 1: some connection to it got an answer (not a ``silent`` failure)


def _where(vantage: str | None, since: str | None) -> tuple[str, list[Any]]:
    """Conditions on ``runs AS r`` joined with ``vantage_points AS v``."""
    return filters(("v.name = ?", vantage), ("r.started_at >= ?", since))


def finished_runs(store: Store, vantage: str | None = None, since: str | None = None) -> list[RunRow]:
    """Runs not ``running`` (of ``vantage``, started at or after ``since``), oldest first."""
    where, params = _where(vantage, since)
    sql = ("SELECT r.id AS run_id, v.name AS vantage, r.status, r.started_at, r.finished_at, "
           "coalesce(v.country, '') AS country "
           "FROM runs AS r JOIN vantage_points AS v ON v.id = r.vantage_id "
           f"WHERE r.status != 'running' {where} ORDER BY r.started_at, r.id")  # fmt: skip
    return list(typed_rows(store.conn, RunRow, sql, params))


def run_counts(store: Store, silent: Sequence[str], vantage: str | None = None,
               since: str | None = None) -> Iterator[RunCounts]:
    """Per run with final measurements (of ``vantage``, since ``since``): what their first
    hop saw. ``silent``: the failure strings of a connection that got no answer at all."""
    where, params = _where(vantage, since)
    marks = ", ".join("?" * len(silent))
    sql = f"""
WITH final AS (
    SELECT m.id, m.run_id FROM measurements AS m
    JOIN runs AS r ON r.id = m.run_id
    JOIN vantage_points AS v ON v.id = r.vantage_id
    WHERE m.final = 1 {where}
),
dns AS (
    SELECT q.measurement_id AS mid, max(q.n_replies) AS replies
    FROM dns_queries AS q JOIN final AS f ON f.id = q.measurement_id
    WHERE q.control = 0 AND q.hop = 0 AND q.qtype = 'A'
    GROUP BY q.measurement_id
),
tcp AS (
    SELECT t.measurement_id AS mid,
           sum(CASE WHEN t.failure IN ({marks}) THEN 0 ELSE 1 END) AS alive
    FROM tcp_connects AS t JOIN final AS f ON f.id = t.measurement_id
    WHERE t.hop = 0
    GROUP BY t.measurement_id
),
ctl AS (
    SELECT c.measurement_id AS mid, max(c.failure IS NOT NULL) AS failed
    FROM controls AS c JOIN final AS f ON f.id = c.measurement_id
    WHERE c.hop = 0
    GROUP BY c.measurement_id
)
SELECT f.run_id,
       count(*) AS urls,
       coalesce(sum(dns.replies = 0), 0) AS dns_silent,
       count(tcp.mid) AS tcp_tried,
       coalesce(sum(tcp.alive = 0), 0) AS tcp_dead,
       coalesce(sum(coalesce(ctl.failed, 0)), 0) AS control_failed
FROM final AS f
LEFT JOIN dns ON dns.mid = f.id
LEFT JOIN tcp ON tcp.mid = f.id
LEFT JOIN ctl ON ctl.mid = f.id
GROUP BY f.run_id
"""
    return typed_rows(store.conn, RunCounts, sql, [*params, *silent])


def first_hop_addresses(store: Store, silent: Sequence[str], vantage: str | None = None,
                        since: str | None = None) -> Iterator[AddressRow]:
    """The addresses each final measurement's first hop connected to (of ``vantage``, since
    ``since``), grouped by measurement in id order."""
    where, params = _where(vantage, since)
    sql = f"""
SELECT m.run_id, t.measurement_id, t.ip,
       max(CASE WHEN t.failure IN ({", ".join("?" * len(silent))}) THEN 0 ELSE 1 END) AS alive
FROM tcp_connects AS t
JOIN measurements AS m ON m.id = t.measurement_id
JOIN runs AS r ON r.id = m.run_id
JOIN vantage_points AS v ON v.id = r.vantage_id
WHERE m.final = 1 AND t.hop = 0 {where}
GROUP BY t.measurement_id, t.ip
ORDER BY t.measurement_id
"""
    return typed_rows(store.conn, AddressRow, sql, [*silent, *params])
