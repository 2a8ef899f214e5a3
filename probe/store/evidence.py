"""What the evidence of one measurement reads besides the measurement itself (probe/present/evidence.py):
which measurement a URL names, where and when it was taken, its attempts, its certificates.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Literal, NamedTuple

from probe.store.connection import filters, scalar, typed_row, typed_rows

if TYPE_CHECKING:
    from probe.store.database import Store

__all__ = [
    "Attempt",
    "CertificateInfo",
    "MeasurementPlace",
    "URLColumn",
    "attempts",
    "certificate_info",
    "has_measurement",
    "measurement_place",
    "newest_final",
    "urls_of_host",
]

#: The columns a URL is looked up by: as measured, as written in the list, its host name.
URLColumn = Literal["url", "original_url", "domain"]


class MeasurementPlace(NamedTuple):
    """Where and when a measurement was taken, and of which URL."""

    run_id: int
    vantage: str
    measured_at: str
    final: int
    category: str | None
    url: str
    original_url: str


class Attempt(NamedTuple):
    """One attempt at a URL in a run."""

    measurement_id: int
    attempt: int
    final: int
    verdict: str
    measured_at: str


class CertificateInfo(NamedTuple):
    """What the store parsed out of a certificate."""

    subject: str | None
    issuer: str | None
    not_before: str | None
    not_after: str | None


def has_measurement(store: Store, measurement_id: int) -> bool:
    """True when a measurement of this id is stored."""
    return scalar(store.conn, "SELECT 1 FROM measurements WHERE id = ?", (measurement_id,)) is not None


def newest_final(store: Store, column: URLColumn, value: str, *, vantage: str | None = None,
                 run: int | None = None) -> int | None:
    """The id of the newest final measurement whose ``column`` is ``value`` (of ``vantage``, in
    ``run``), or None."""
    if column not in ("url", "original_url", "domain"):  # a column name goes into the SQL
        raise ValueError(f"not a URL column: {column!r}")
    where, params = filters((f"m.{column} = ?", value), ("v.name = ?", vantage), ("m.run_id = ?", run))
    mid = scalar(store.conn,
                 "SELECT m.id FROM measurements m JOIN vantage_points v ON v.id = m.vantage_id "
                 f"WHERE m.final = 1 {where} ORDER BY m.measured_at DESC, m.id DESC LIMIT 1",
                 params)  # fmt: skip
    return None if mid is None else int(mid)


def urls_of_host(store: Store, host: str, *, vantage: str | None = None, run: int | None = None,
                 limit: int = 5) -> list[str]:
    """The URLs of host ``host`` with a final measurement (of ``vantage``, in ``run``), the
    most recently measured first, at most ``limit``."""
    where, params = filters(("m.domain = ?", host), ("v.name = ?", vantage), ("m.run_id = ?", run))
    rows = store.conn.execute(
        "SELECT m.url FROM measurements m JOIN vantage_points v ON v.id = m.vantage_id "
        f"WHERE m.final = 1 {where} GROUP BY m.url ORDER BY max(m.measured_at) DESC LIMIT ?",
        (*params, limit))  # fmt: skip
    return [str(url) for (url,) in rows]


def measurement_place(store: Store, measurement_id: int) -> MeasurementPlace | None:
    """Where, when and of which URL measurement ``measurement_id`` was taken (None: no such id)."""
    return typed_row(store.conn, MeasurementPlace,
                     "SELECT m.run_id, v.name AS vantage, m.measured_at, m.final, m.category, m.url, "
                     "m.original_url FROM measurements m JOIN vantage_points v ON v.id = m.vantage_id "
                     "WHERE m.id = ?", (measurement_id,))  # fmt: skip


def attempts(store: Store, run_id: int, url: str) -> list[Attempt]:
    """Every attempt at ``url`` in the run, first to last."""
    return list(typed_rows(store.conn, Attempt,
                           "SELECT id AS measurement_id, attempt, final, verdict, measured_at "
                           "FROM measurements WHERE run_id = ? AND url = ? ORDER BY attempt, id",
                           (run_id, url)))  # fmt: skip


def certificate_info(store: Store, shas: Iterable[str]) -> dict[str, CertificateInfo]:
    """What is stored of each certificate of ``shas`` (SHA-256 of the DER, hex), by hash."""
    out: dict[str, CertificateInfo] = {}
    for sha in shas:
        row = typed_row(store.conn, CertificateInfo,
                        "SELECT subject, issuer, not_before, not_after FROM certificates WHERE sha256 = ?",
                        (sha,))  # fmt: skip
        if row is not None:
            out[sha] = row
    return out
