"""What `probe compare` and `probe diff` read: final verdicts by vantage point and URL.

- :func:`latest_cells`: the latest final verdict of every URL at each vantage point (the
  ``latest`` table, kept by triggers: one scan in key order, so a million measurements cost what
  their latest verdicts cost), for the URL x vantage point matrix;
- :func:`latest_by_url`, :func:`before_by_url`, :func:`run_by_url`: one vantage point's verdict of
  each URL now, before a time, or in one run, the two sides of a diff.

Only the standard library: `probe compare` and `probe diff` import nothing heavy.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, NamedTuple

from probe.store.connection import typed_rows

if TYPE_CHECKING:
    from probe.store.database import Store

__all__ = ["LatestCell", "UrlVerdict", "before_by_url", "latest_by_url", "latest_cells", "run_by_url"]


class LatestCell(NamedTuple):
    """The latest final verdict of one URL at one vantage point."""

    vantage_id: int
    url: str
    category: str | None
    verdict: str
    stage: str | None
    measured_at: str | None  # None when not asked for (``times=False``)


class UrlVerdict(NamedTuple):
    """One URL's final verdict at a vantage point, and when it was measured."""

    url: str
    verdict: str
    stage: str | None
    measured_at: str


def latest_cells(
    store: Store,
    vantage_ids: Sequence[int],
    categories: Sequence[str] | None = None,
    since: str | None = None,
    *,
    times: bool = True,
) -> Iterator[LatestCell]:
    """The latest final verdict per URL at each of ``vantage_ids``, grouped by vantage point.

    ``categories``: only URLs of these category codes; ``since``: only verdicts measured at or
    after this ISO time; ``times=False`` leaves ``measured_at`` out (None: less to read).
    """
    if not vantage_ids:
        return iter(())
    where = [f"vantage_id IN ({','.join('?' * len(vantage_ids))})"]
    params: list[object] = list(vantage_ids)
    if categories:
        where.append(f"category IN ({','.join('?' * len(categories))})")
        params.extend(categories)
    if since:
        where.append("measured_at >= ?")
        params.append(since)
    # `latest` alone (schema version 5 keeps the verdicts there): one scan in key order.
    sql = (f"SELECT vantage_id, url, category, verdict, stage, "
           f"{'measured_at' if times else 'NULL AS measured_at'} "
           f"FROM latest WHERE {' AND '.join(where)}")  # fmt: skip
    return typed_rows(store.conn, LatestCell, sql, params)


def latest_by_url(store: Store, vantage_id: int) -> Iterator[UrlVerdict]:
    """Each URL's latest final verdict at a vantage point."""
    return typed_rows(store.conn, UrlVerdict,
                      "SELECT url, verdict, stage, measured_at FROM latest WHERE vantage_id = ?",
                      (vantage_id,))  # fmt: skip


def before_by_url(store: Store, vantage_id: int, before: str) -> Iterator[UrlVerdict]:
    """Each URL's latest final verdict at a vantage point measured before ``before`` (ISO)."""
    # SQLite returns the other columns of the row holding max(): one pass over the
    # (vantage_id, url, measured_at) index.
    return typed_rows(store.conn, UrlVerdict,
                      "SELECT url, verdict, stage, max(measured_at) AS measured_at FROM measurements "
                      "WHERE vantage_id = ? AND final = 1 AND measured_at < ? GROUP BY url",
                      (vantage_id, before))  # fmt: skip


def run_by_url(store: Store, run_id: int) -> Iterator[UrlVerdict]:
    """Each URL's final verdict in one run, in measurement order."""
    return typed_rows(store.conn, UrlVerdict,
                      "SELECT url, verdict, stage, measured_at FROM measurements "
                      "WHERE run_id = ? AND final = 1 ORDER BY id", (run_id,))  # fmt: skip
