"""OONI measurements imported into a results database (``probe import ooni``).

Each imported measurement is a probe measurement plus one ``ooni_measurements`` row: OONI's
identifiers, OONI's own verdict and what had to be inferred (:class:`OONISource`), written in
the same transaction (:func:`write_imported`). :func:`imported_keys` says which are there
already (an import can be repeated or resumed); :func:`disagreements` and
:func:`verdict_pairs` read where probe's verdict and OONI's differ.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

from probe.store.circumvention import write_endpoints
from probe.store.connection import dict_rows, typed_rows

if TYPE_CHECKING:
    from probe.core.model import ControlObservation, EndpointObservation, Measurement, Verdict
    from probe.store.database import Store

__all__ = ["ImportKey", "OONIEndpointSource", "OONISource", "VerdictPair", "disagreements",
           "endpoint_disagreements", "endpoint_verdict_pairs", "imported_endpoint_uids", "imported_keys",
           "verdict_pairs", "write_imported", "write_imported_endpoints"]


class ImportKey(NamedTuple):
    """What identifies an OONI measurement: its report, input, start time and uid."""

    report_id: str
    input: str
    measurement_start_time: str
    measurement_uid: str


class OONISource(NamedTuple):
    """What probe keeps of an OONI measurement beside its own records (``ooni_measurements``)."""

    report_id: str
    measurement_uid: str
    input: str
    measurement_start_time: str
    probe_asn: str | None
    probe_cc: str | None
    resolver_asn: str | None
    software: str | None
    engine: str | None
    test_version: str | None
    blocking: str | None  # OONI's ``blocking`` as published
    accessible: bool | None
    ooni_verdict: str
    inferred: tuple[str, ...]  # what OONI's record did not say and probe inferred
    source: str  # file:line of the import


class VerdictPair(NamedTuple):
    """How many imported measurements probe judged ``probe_verdict`` and OONI ``ooni_verdict``."""

    probe_verdict: str
    ooni_verdict: str
    n: int


_INSERT = ("INSERT INTO ooni_measurements (measurement_id, report_id, measurement_uid, input, "
           "measurement_start_time, probe_asn, probe_cc, resolver_asn, software, engine, "
           "test_version, blocking, accessible, ooni_verdict, inferred, source) "
           "VALUES (:measurement_id, :report_id, :measurement_uid, :input, :measurement_start_time, "
           ":probe_asn, :probe_cc, :resolver_asn, :software, :engine, :test_version, :blocking, "
           ":accessible, :ooni_verdict, :inferred, :source)")  # fmt: skip


def write_imported(store: Store, run_id: int, vantage_id: int,
                   items: Sequence[tuple[Measurement, Verdict, OONISource]]) -> list[int]:
    """Store imported measurements, judged, with their OONI source rows, in one transaction;
    returns the new measurement ids."""
    sources = [src for _, _, src in items]

    def extra(conn: sqlite3.Connection, ids: list[int]) -> None:
        conn.executemany(_INSERT, [
            {**src._asdict(), "measurement_id": mid,
             "accessible": None if src.accessible is None else int(src.accessible),
             "inferred": json.dumps(list(src.inferred))}
            for mid, src in zip(ids, sources, strict=True)
        ])  # fmt: skip

    return store.write(run_id, vantage_id, [(m, v) for m, v, _ in items], extra=extra)


def imported_keys(store: Store, keys: Iterable[ImportKey]) -> set[ImportKey]:
    """Those of ``keys`` already imported."""
    found: set[ImportKey] = set()
    q = ("SELECT 1 FROM ooni_measurements WHERE report_id = ? AND input = ? "
         "AND measurement_start_time = ? AND measurement_uid = ? LIMIT 1")  # fmt: skip
    for key in set(keys):
        if store.conn.execute(q, key).fetchone() is not None:
            found.add(key)
    return found


def disagreements(store: Store, limit: int | None = None) -> list[dict[str, Any]]:
    """Rows of the ``ooni_disagreements`` view (docs/schema.md), by measurement id, as dicts."""
    return _view_rows(store, "ooni_disagreements", "measurement_id", limit)


def verdict_pairs(store: Store) -> list[VerdictPair]:
    """Imported measurements counted by (probe's verdict, OONI's verdict)."""
    return _verdict_pairs(store, "ooni_measurements AS o JOIN measurements AS e ON e.id = o.measurement_id")


# The two views and joins below are named by the code, never by input.
def _view_rows(store: Store, view: str, order: str, limit: int | None) -> list[dict[str, Any]]:
    """The rows of ``view`` by ``order``, the first ``limit`` of them, as dicts."""
    sql = f"SELECT * FROM {view} ORDER BY {order}"
    params: list[int] = []
    if limit is not None:
        sql += " LIMIT ?"
        params.append(int(limit))
    return list(dict_rows(store.conn.execute(sql, params)))


def _verdict_pairs(store: Store, joined: str) -> list[VerdictPair]:
    """The rows of ``joined`` (OONI's as ``o``, probe's as ``e``) counted by (probe's verdict,
    OONI's verdict)."""
    return list(typed_rows(store.conn, VerdictPair,
                           "SELECT e.verdict AS probe_verdict, o.ooni_verdict, count(*) AS n "
                           f"FROM {joined} GROUP BY 1, 2"))  # fmt: skip


class OONIEndpointSource(NamedTuple):
    """What probe keeps of one endpoint of an OONI experiment beside its endpoint row
    (``ooni_endpoints``); ``uid`` is the endpoint row's."""

    uid: str
    test_name: str
    report_id: str
    measurement_uid: str
    input: str
    measurement_start_time: str
    target: str  # the endpoint as OONI names it in the measurement
    probe_asn: str | None
    probe_cc: str | None
    resolver_asn: str | None
    software: str | None
    engine: str | None
    test_version: str | None
    ooni_status: str  # OONI's own fields behind ooni_verdict, "name=value, ..."
    ooni_verdict: str  # ok, blocked, anomaly or inconclusive
    ooni_keys: str  # JSON object: OONI's blocking flags and status fields of the measurement
    source: str  # file:line of the import


def write_imported_endpoints(
    store: Store, run_id: int, vantage_id: int, suite: str,
    items: Sequence[tuple[EndpointObservation, ControlObservation | None, Verdict, OONIEndpointSource]],
) -> int:
    """Store judged endpoints of OONI experiments with their OONI rows, in one transaction (the
    endpoint rows take the uids of their sources); the number stored."""
    return write_endpoints(store, run_id, vantage_id, suite, [(o, c, v) for o, c, v, _ in items],
                           uids=[src.uid for *_, src in items],
                           beside={"ooni_endpoints": [src._asdict() for *_, src in items]})


def imported_endpoint_uids(store: Store, uids: Iterable[str]) -> set[str]:
    """Those of ``uids`` already imported (as endpoint rows)."""
    q = "SELECT 1 FROM endpoint_measurements WHERE uid = ? LIMIT 1"
    return {u for u in set(uids) if store.conn.execute(q, (u,)).fetchone() is not None}


def endpoint_disagreements(store: Store, limit: int | None = None) -> list[dict[str, Any]]:
    """Rows of the ``ooni_endpoint_disagreements`` view (docs/schema.md), oldest first, as dicts."""
    return _view_rows(store, "ooni_endpoint_disagreements", "endpoint_id", limit)


def endpoint_verdict_pairs(store: Store) -> list[VerdictPair]:
    """Imported endpoints counted by (probe's verdict, OONI's verdict)."""
    return _verdict_pairs(store, "ooni_endpoints AS o JOIN endpoint_measurements AS e ON e.uid = o.uid")
