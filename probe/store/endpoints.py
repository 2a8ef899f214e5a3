"""Endpoint measurements (``probe circumvention``) in a results database."""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from probe.model import ControlObservation, Verdict, to_json

if TYPE_CHECKING:
    from probe.circumvention.measure import EndpointObservation
    from probe.store.database import Store

__all__ = [
    "RESULT_KEYS",
    "endpoint_measurements_at",
    "endpoint_results",
    "latest_endpoint_run",
    "latest_endpoints",
    "run_has_endpoints",
    "write_endpoints",
]

def write_endpoints(
    store: Store,
    run_id: int,
    vantage_id: int,
    suite: str,
    rows: Iterable[tuple[EndpointObservation, ControlObservation | None, Verdict]],
) -> int:
    """Store judged endpoint observations in one transaction; the number stored."""
    from probe.store.rows import iso
    from probe.store.uid import uuid7

    records = [
        {"run_id": run_id, "vantage_id": vantage_id, "suite": suite, "kind": obs.kind,
         "name": obs.name, "address": obs.address, "port": obs.port, "transport": obs.transport,
         "source": obs.source, "measured_at": iso(obs.started), "runtime": obs.runtime,
         "tcp_failure": obs.tcp_failure, "handshake": obs.handshake,
         "handshake_failure": obs.handshake_failure, "verdict": verdict.verdict,
         "stage": verdict.stage, "reasons": json.dumps(list(verdict.reasons)),
         "classifier_version": verdict.classifier_version,
         "observation": json.dumps(dataclasses.asdict(obs), sort_keys=True),
         "control": None if control is None else json.dumps(to_json(control), sort_keys=True),
         "uid": uuid7(int(obs.started * 1000))}  # a global id (probe merge), from when it was taken
        for obs, control, verdict in rows
    ]  # fmt: skip
    with store.transaction():
        store.insert_records("endpoint_measurements", records)
    return len(records)


#: Keys of an endpoint result (`probe results --suite circumvention --json`).
RESULT_KEYS = ("id", "run_id", "vantage", "suite", "kind", "name", "address", "port", "transport",
               "measured_at", "runtime", "verdict", "stage", "reasons", "source")  # fmt: skip
_SELECT = ("SELECT e.id, e.run_id, v.name AS vantage, e.suite, e.kind, e.name AS endpoint, "
           "e.address, e.port, e.transport, e.measured_at, e.runtime, e.verdict, e.stage, e.reasons, "
           "e.source")


def _row(row: tuple[Any, ...]) -> dict[str, Any]:
    d = dict(zip(RESULT_KEYS, row, strict=True))
    d["reasons"] = json.loads(d["reasons"])
    return d


def endpoint_results(
    store: Store,
    run_id: int | None = None,
    suite: str | None = None,
    *,
    verdicts: Iterable[str] | None = None,
    vantage: str | None = None,
    limit: int | None = None,
) -> Iterator[dict[str, Any]]:
    """Stored endpoint results (of one run, or all), oldest first, as dicts with :data:`RESULT_KEYS`.

    ``verdicts``: only these (any of them); ``vantage``: only this vantage point's.
    """
    sql = _SELECT + " FROM endpoint_measurements e JOIN vantage_points v ON v.id = e.vantage_id WHERE 1"
    params: list[Any] = []
    if run_id is not None:
        sql += " AND e.run_id = ?"
        params.append(run_id)
    if suite is not None:
        sql += " AND e.suite = ?"
        params.append(suite)
    if verdicts is not None:
        wanted = list(dict.fromkeys(verdicts))
        sql += f" AND e.verdict IN ({','.join('?' * len(wanted))})" if wanted else " AND 0"
        params.extend(wanted)
    if vantage is not None:
        sql += " AND v.name = ?"
        params.append(vantage)
    sql += " ORDER BY e.id"
    if limit is not None:
        sql += " LIMIT ?"
        params.append(int(limit))
    for row in store.conn.execute(sql, params):
        yield _row(row)


def latest_endpoint_run(store: Store, vantage: str | None = None) -> int | None:
    """The newest run that measured endpoints (of ``vantage`` when given), or None."""
    sql = "SELECT max(e.run_id) FROM endpoint_measurements e"
    params: list[Any] = []
    if vantage is not None:
        sql += " JOIN vantage_points v ON v.id = e.vantage_id WHERE v.name = ?"
        params.append(vantage)
    row = store.conn.execute(sql, params).fetchone()
    return None if row is None or row[0] is None else int(row[0])


def run_has_endpoints(store: Store, run_id: int) -> bool:
    """True when the run measured endpoints (``probe circumvention``) and no URLs."""
    c = store.conn
    return (c.execute("SELECT 1 FROM endpoint_measurements WHERE run_id = ? LIMIT 1", (run_id,)).fetchone()
            is not None and
            c.execute("SELECT 1 FROM measurements WHERE run_id = ? LIMIT 1", (run_id,)).fetchone() is None)


def latest_endpoints(
    conn: sqlite3.Connection, vantages: Sequence[str] | None = None, since: str | None = None
) -> list[dict[str, Any]]:
    """The newest result of every endpoint (kind, address, port) at every vantage point (of
    ``vantages``, measured at or after ``since``), ordered by kind, name, address, port, vantage.
    """
    where, params = "", list[Any]()
    if vantages:
        where += f" AND v.name IN ({','.join('?' * len(vantages))})"
        params.extend(vantages)
    if since is not None:
        where += " AND e.measured_at >= ?"
        params.append(since)
    sql = (f"SELECT * FROM ({_SELECT}, row_number() OVER (PARTITION BY e.vantage_id, e.kind, e.address, "
           "e.port ORDER BY e.measured_at DESC, e.id DESC) AS n FROM endpoint_measurements e "
           f"JOIN vantage_points v ON v.id = e.vantage_id WHERE 1 {where}) WHERE n = 1 "
           "ORDER BY kind, endpoint, address, port, vantage")  # fmt: skip
    return [_row(row[:-1]) for row in conn.execute(sql, params)]


def endpoint_measurements_at(
    store: Store, address: str | None, port: int | None, *, name: str | None = None,
    vantage: str | None = None, run_id: int | None = None,
) -> list[dict[str, Any]]:
    """The newest measurement of each kind of endpoint at ``address:port`` (or named ``name``),
    narrowed by vantage point and run, with its observation and control decoded (``probe show``).
    """
    where, params = "", list[Any]()
    if address is not None:
        where += " AND e.address = ? AND e.port = ?"
        params += [address, port]
    if name is not None:
        where += " AND e.name = ?"
        params.append(name)
    if vantage is not None:
        where += " AND v.name = ?"
        params.append(vantage)
    if run_id is not None:
        where += " AND e.run_id = ?"
        params.append(run_id)
    sql = (f"SELECT * FROM ({_SELECT}, e.classifier_version, e.observation, e.control, "
           "row_number() OVER (PARTITION BY e.kind, e.address, e.port ORDER BY e.measured_at DESC, "
           "e.id DESC) AS n FROM endpoint_measurements e JOIN vantage_points v ON v.id = e.vantage_id "
           f"WHERE 1 {where}) WHERE n = 1 ORDER BY kind, address, port")  # fmt: skip
    out = []
    for row in store.conn.execute(sql, params):
        d = _row(row[: len(RESULT_KEYS)])
        version, observation, control = row[len(RESULT_KEYS): len(RESULT_KEYS) + 3]
        d["classifier_version"] = version
        d["observation"] = json.loads(observation)
        d["control"] = None if control is None else json.loads(control)
        out.append(d)
    return out
