"""The overview of a results database that `probe report` draws (probe/present/html.py).

Each function is one query over the ``latest`` bookkeeping (one row per vantage point and URL)
or over a bounded set of URLs, so what the report reads is bounded by what it draws however
large the database:

- :func:`vantage_overview`, :func:`latest_verdict_counts`: the vantage points with their runs,
  last measurement, and latest verdicts counted;
- :func:`urls_not_ok`: the URLs with a latest verdict other than ok somewhere;
- :func:`latest_of_urls`, :func:`final_history`: those URLs' latest verdicts, and every final
  verdict they had (the heatmap and the timeline);
- :func:`interference_mix`: latest verdicts of interference by verdict and stage;
- :func:`non_ok_count`, :func:`non_ok_latest`: the latest verdicts other than ok.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, NamedTuple

from probe.core.model import INTERFERENCE_VERDICTS
from probe.store.connection import scalar, typed_rows

if TYPE_CHECKING:
    from probe.store.database import Store

__all__ = [
    "FinalVerdict",
    "LatestOfUrl",
    "NonOk",
    "TechniqueCount",
    "UrlNotOk",
    "VantageOverview",
    "VerdictCount",
    "final_history",
    "interference_mix",
    "latest_of_urls",
    "latest_verdict_counts",
    "non_ok_count",
    "non_ok_latest",
    "urls_not_ok",
    "vantage_overview",
]

_CHUNK = 400  # URLs per query (SQLite's bound on parameters is far above)
_IN_INTERFERENCE = "(" + ", ".join(f"'{v}'" for v in INTERFERENCE_VERDICTS) + ")"


class VantageOverview(NamedTuple):
    """A vantage point, its network, how many runs it made and its latest measurement."""

    id: int
    name: str
    asn: int | None
    as_org: str | None
    country: str | None
    network: str | None
    runs: int
    last: str | None  # the time of its latest final verdict (None: none yet)


class VerdictCount(NamedTuple):
    """How many URLs have this latest verdict at a vantage point."""

    vantage_id: int
    verdict: str
    n: int


class UrlNotOk(NamedTuple):
    """A URL whose latest verdict is not ok at ``not_ok`` vantage points (``interference`` of them
    with blocked, reset, hijacked or throttled)."""

    url: str
    interference: int
    not_ok: int


class LatestOfUrl(NamedTuple):
    """A URL's latest final verdict at a vantage point, and the measurement that decided it."""

    url: str
    vantage_id: int
    verdict: str
    measurement_id: int


class FinalVerdict(NamedTuple):
    """One final verdict of a URL at a vantage point."""

    url: str
    vantage_id: int
    measured_at: str
    verdict: str


class TechniqueCount(NamedTuple):
    """How many URLs' latest verdict at a vantage point is this interference at this stage."""

    vantage_id: int
    verdict: str
    stage: str | None
    n: int


class NonOk(NamedTuple):
    """A latest verdict other than ok."""

    measurement_id: int
    vantage: str
    url: str
    verdict: str
    stage: str | None
    reasons: str  # JSON list
    measured_at: str


def _marks(values: Sequence[object]) -> str:
    return ",".join("?" * len(values))


def vantage_overview(store: Store, vantages: Sequence[str] | None = None) -> list[VantageOverview]:
    """Every vantage point (or those named), by name."""
    where = f" AND v.name IN ({_marks(vantages)})" if vantages else ""
    sql = ("SELECT v.id, v.name, v.asn, v.as_org, v.country, v.network, "
           "(SELECT count(*) FROM runs r WHERE r.vantage_id = v.id) AS runs, "
           "(SELECT max(l.measured_at) FROM latest l WHERE l.vantage_id = v.id) AS last "
           f"FROM vantage_points v WHERE 1 {where} ORDER BY v.name")  # fmt: skip
    return list(typed_rows(store.conn, VantageOverview, sql, list(vantages or ())))


def latest_verdict_counts(store: Store) -> Iterator[VerdictCount]:
    """Latest final verdicts counted per vantage point and verdict."""
    return typed_rows(store.conn, VerdictCount,
                      "SELECT l.vantage_id, m.verdict, count(*) AS n FROM latest l "
                      "JOIN measurements m ON m.id = l.measurement_id "
                      "GROUP BY l.vantage_id, m.verdict")  # fmt: skip


def urls_not_ok(store: Store, vantage_ids: Sequence[int]) -> list[UrlNotOk]:
    """URLs with a latest verdict other than ok at one of ``vantage_ids``, most interference
    first, then most not ok, then by URL."""
    if not vantage_ids:
        return []
    sql = (f"SELECT l.url, sum(m.verdict IN {_IN_INTERFERENCE}) AS interference, "
           "sum(m.verdict != 'ok') AS not_ok FROM latest l JOIN measurements m ON m.id = l.measurement_id "
           f"WHERE l.vantage_id IN ({_marks(vantage_ids)}) GROUP BY l.url HAVING not_ok > 0 "
           "ORDER BY interference DESC, not_ok DESC, l.url")  # fmt: skip
    return list(typed_rows(store.conn, UrlNotOk, sql, list(vantage_ids)))


def latest_of_urls(store: Store, urls: Sequence[str]) -> Iterator[LatestOfUrl]:
    """The latest final verdict of each of ``urls`` at every vantage point."""
    for i in range(0, len(urls), _CHUNK):
        chunk = urls[i: i + _CHUNK]
        yield from typed_rows(store.conn, LatestOfUrl,
                              "SELECT l.url, l.vantage_id, m.verdict, m.id AS measurement_id FROM latest l "
                              "JOIN measurements m ON m.id = l.measurement_id "
                              f"WHERE l.url IN ({_marks(chunk)})", chunk)  # fmt: skip


def final_history(store: Store, urls: Sequence[str]) -> Iterator[FinalVerdict]:
    """Every final verdict of each of ``urls`` at every vantage point, oldest first per URL."""
    for i in range(0, len(urls), _CHUNK):
        chunk = urls[i: i + _CHUNK]
        yield from typed_rows(store.conn, FinalVerdict,
                              "SELECT url, vantage_id, measured_at, verdict FROM measurements "
                              f"WHERE final = 1 AND url IN ({_marks(chunk)}) ORDER BY measured_at, id",
                              chunk)  # fmt: skip


def interference_mix(store: Store, vantage_ids: Sequence[int]) -> Iterator[TechniqueCount]:
    """Latest verdicts of interference at ``vantage_ids``, counted by verdict and stage."""
    if not vantage_ids:
        return iter(())
    return typed_rows(store.conn, TechniqueCount,
                      "SELECT l.vantage_id, m.verdict, m.stage, count(*) AS n FROM latest l "
                      "JOIN measurements m ON m.id = l.measurement_id "
                      f"WHERE m.verdict IN {_IN_INTERFERENCE} "
                      f"AND l.vantage_id IN ({_marks(vantage_ids)}) GROUP BY 1, 2, 3",
                      list(vantage_ids))  # fmt: skip


def non_ok_count(store: Store, vantage_ids: Sequence[int]) -> int:
    """How many latest verdicts at ``vantage_ids`` are not ok."""
    if not vantage_ids:
        return 0
    return int(scalar(store.conn,
                      "SELECT count(*) FROM latest l JOIN measurements m ON m.id = l.measurement_id "
                      f"WHERE m.verdict != 'ok' AND l.vantage_id IN ({_marks(vantage_ids)})",
                      list(vantage_ids)))  # fmt: skip


def non_ok_latest(store: Store, vantage_ids: Sequence[int], order: Sequence[str], limit: int
                  ) -> list[NonOk]:
    """The first ``limit`` latest verdicts other than ok at ``vantage_ids``, by verdict in
    ``order``, then URL, then vantage point."""
    if not vantage_ids:
        return []
    rank = "CASE m.verdict " + " ".join("WHEN ? THEN ?" for _ in order) + " END"
    params: list[object] = [x for i, v in enumerate(order) for x in (v, i)]
    sql = ("SELECT m.id AS measurement_id, v.name AS vantage, l.url, m.verdict, m.stage, m.reasons, "
           "m.measured_at FROM latest l JOIN measurements m ON m.id = l.measurement_id "
           "JOIN vantage_points v ON v.id = l.vantage_id "
           f"WHERE m.verdict != 'ok' AND l.vantage_id IN ({_marks(vantage_ids)}) "
           f"ORDER BY {rank}, l.url, v.name LIMIT ?")  # fmt: skip
    return list(typed_rows(store.conn, NonOk, sql, [*vantage_ids, *params, limit]))
