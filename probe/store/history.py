"""What `probe history` and the notebook API read: a URL's verdicts over time, and how stable
each vantage point's latest verdict is.

- :func:`url_history`: every final verdict of one URL, at every vantage point (or one), oldest
  first, with the run and its network;
- :func:`stability`: per vantage point and URL, the latest final verdict and how many of the
  last ``last`` final verdicts (one per run) agree with it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, NamedTuple

from probe.store.connection import filters, typed_rows
from probe.store.export import MEASUREMENT_COLUMNS

if TYPE_CHECKING:
    from probe.store.database import Store

__all__ = ["HistoryRow", "StabilityRow", "known_urls", "stability", "url_history"]


class HistoryRow(NamedTuple):
    """One final verdict of a URL: where, when, which run, and the run's network."""

    vantage: str
    vantage_uid: str
    run_id: int
    run_uid: str
    measurement_id: int
    measurement_uid: str
    url: str
    measured_at: str
    attempt: int
    verdict: str
    stage: str | None
    hop: int | None
    reasons: str  # JSON list
    classifier_version: str
    asn: int | None
    country: str | None
    network_source: str | None


def url_history(store: Store, url: str, vantage: str | None = None) -> Iterator[HistoryRow]:
    """Every final verdict of ``url`` (at ``vantage`` when given), by vantage point, oldest first."""
    where, params = filters(("v.name = ?", vantage))
    net = ", ".join(f"{MEASUREMENT_COLUMNS[c]} AS {c}" for c in ("asn", "country", "network_source"))
    sql = ("SELECT v.name AS vantage, v.uid AS vantage_uid, m.run_id, r.uid AS run_uid, "
           "m.id AS measurement_id, m.uid AS measurement_uid, m.url, m.measured_at, m.attempt, "
           "m.verdict, m.stage, m.hop, m.reasons, m.classifier_version, "
           f"{net} FROM measurements AS m "
           "JOIN vantage_points AS v ON v.id = m.vantage_id JOIN runs AS r ON r.id = m.run_id "
           f"WHERE m.url = ? AND m.final = 1{where} ORDER BY v.name, m.measured_at, m.id")
    return typed_rows(store.conn, HistoryRow, sql, [url, *params])


def known_urls(store: Store, domain: str, limit: int = 5) -> list[str]:
    """Some URLs measured on ``domain`` (what to suggest when a URL was never measured)."""
    return [str(r[0]) for r in store.conn.execute(
        "SELECT DISTINCT url FROM measurements WHERE domain = ? ORDER BY url LIMIT ?",
        (domain, limit))]


class StabilityRow(NamedTuple):
    """How stable a vantage point's latest verdict of a URL is."""

    vantage: str
    vantage_uid: str
    url: str
    verdict: str  # the latest final verdict
    stage: str | None
    runs: int  # final verdicts considered: the last ``last`` (fewer when fewer runs measured it)
    agree: int  # of those, how many have the latest verdict (the latest itself included)


def stability(store: Store, last: int, vantage_ids: Sequence[int] = (), url: str | None = None
              ) -> Iterator[StabilityRow]:
    """Per vantage point (of ``vantage_ids``, or every one) and URL (or ``url``): the latest final
    verdict and how many of the last ``last`` final verdicts agree with it, by vantage and URL.

    One final verdict per run and URL, so these are the last ``last`` runs that measured it.
    Reads every final measurement of the vantage points (in the order of the
    ``measurements_vantage_url`` index): seconds for a million.
    """
    if last < 1:
        raise ValueError("stability needs at least one run")
    where, params = filters(("m.url = ?", url))
    if vantage_ids:
        where += f" AND m.vantage_id IN ({','.join('?' * len(vantage_ids))})"
        params.extend(vantage_ids)
    sql = f"""
WITH ranked AS (
    SELECT m.vantage_id, m.url, m.verdict,
           row_number() OVER w AS k,
           first_value(m.verdict) OVER w AS latest,
           first_value(m.stage) OVER w AS latest_stage
    FROM measurements AS m
    WHERE m.final = 1{where}
    WINDOW w AS (PARTITION BY m.vantage_id, m.url ORDER BY m.measured_at DESC, m.id DESC)
)
SELECT v.name AS vantage, v.uid AS vantage_uid, r.url, r.latest AS verdict,
       r.latest_stage AS stage, count(*) AS runs, sum(r.verdict = r.latest) AS agree
FROM ranked AS r JOIN vantage_points AS v ON v.id = r.vantage_id
WHERE r.k <= ?
GROUP BY r.vantage_id, r.url
ORDER BY v.name, r.url
"""
    return typed_rows(store.conn, StabilityRow, sql, [*params, int(last)])
