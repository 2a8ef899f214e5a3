"""Endpoint measurements (``probe circumvention``) in a results database."""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from probe.core.codec import to_data
from probe.core.model import ControlObservation, Verdict
from probe.store.connection import filters, named_rows, scalar
from probe.store.rows import iso
from probe.store.uid import uuid7

if TYPE_CHECKING:
    from probe.core.model import EndpointObservation
    from probe.store.database import Store

__all__ = [
    "RESULT_KEYS",
    "endpoint_measurements_at",
    "endpoint_records",
    "endpoint_results",
    "latest_endpoint_run",
    "latest_endpoints",
    "run_has_endpoints",
    "write_endpoints",
]

def endpoint_records(
    run_id: int,
    vantage_id: int,
    suite: str,
    rows: Iterable[tuple[EndpointObservation, ControlObservation | None, Verdict]],
) -> list[dict[str, Any]]:
    """The ``endpoint_measurements`` rows of judged endpoint observations (a new uid each)."""
    return [
        {"run_id": run_id, "vantage_id": vantage_id, "suite": suite, "kind": obs.kind,
         "name": obs.name, "address": obs.address, "port": obs.port, "transport": obs.transport,
         "source": obs.source, "measured_at": iso(obs.started), "runtime": obs.runtime,
         "tcp_failure": obs.tcp_failure, "handshake": obs.handshake,
         "handshake_failure": obs.handshake_failure, "verdict": verdict.verdict,
         "stage": verdict.stage, "reasons": json.dumps(list(verdict.reasons)),
         "classifier_version": verdict.classifier_version,
         "observation": json.dumps(dataclasses.asdict(obs), sort_keys=True),
         "control": None if control is None else json.dumps(to_data(control), sort_keys=True),
         "uid": uuid7(int(obs.started * 1000))}  # a global id (probe merge), from when it was taken
        for obs, control, verdict in rows
    ]  # fmt: skip


def write_endpoints(
    store: Store,
    run_id: int,
    vantage_id: int,
    suite: str,
    rows: Iterable[tuple[EndpointObservation, ControlObservation | None, Verdict]],
) -> int:
    """Store judged endpoint observations in one transaction; the number stored."""
    records = endpoint_records(run_id, vantage_id, suite, rows)
    with store.transaction():
        store.insert_records("endpoint_measurements", records)
    return len(records)


#: Each key of an endpoint result (`probe results --suite circumvention --json`), in output order,
#: with the column it is read from. The SELECT names every column after its key and rows are read
#: by name, so a column added to the table or the query cannot shift a value into another key.
_RESULT_COLUMNS = (
    ("id", "e.id"), ("run_id", "e.run_id"), ("vantage", "v.name"), ("suite", "e.suite"),
    ("kind", "e.kind"), ("name", "e.name"), ("address", "e.address"), ("port", "e.port"),
    ("transport", "e.transport"), ("measured_at", "e.measured_at"), ("runtime", "e.runtime"),
    ("verdict", "e.verdict"), ("stage", "e.stage"), ("reasons", "e.reasons"), ("source", "e.source"),
)  # fmt: skip
#: Keys of an endpoint result, in output order.
RESULT_KEYS = tuple(key for key, _ in _RESULT_COLUMNS)
_SELECT = "SELECT " + ", ".join(f"{column} AS {key}" for key, column in _RESULT_COLUMNS)
_FROM = "FROM endpoint_measurements e JOIN vantage_points v ON v.id = e.vantage_id"


def _result(row: sqlite3.Row) -> dict[str, Any]:
    """The endpoint result in a row that selected :data:`_SELECT` (other columns are left out)."""
    d = {key: row[key] for key in RESULT_KEYS}
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
    where, params = filters(("e.run_id = ?", run_id), ("e.suite = ?", suite), ("v.name = ?", vantage))
    sql = f"{_SELECT} {_FROM} WHERE 1{where}"
    if verdicts is not None:
        wanted = list(dict.fromkeys(verdicts))
        sql += f" AND e.verdict IN ({','.join('?' * len(wanted))})" if wanted else " AND 0"
        params.extend(wanted)
    sql += " ORDER BY e.id"
    if limit is not None:
        sql += " LIMIT ?"
        params.append(int(limit))
    for row in named_rows(store.conn, sql, params):
        yield _result(row)


def latest_endpoint_run(store: Store, vantage: str | None = None) -> int | None:
    """The newest run that measured endpoints (of ``vantage`` when given), or None."""
    sql = "SELECT max(e.run_id) FROM endpoint_measurements e"
    params: list[Any] = []
    if vantage is not None:
        sql += " JOIN vantage_points v ON v.id = e.vantage_id WHERE v.name = ?"
        params.append(vantage)
    run_id = scalar(store.conn, sql, params)
    return None if run_id is None else int(run_id)


def run_has_endpoints(store: Store, run_id: int) -> bool:
    """True when the run measured endpoints (``probe circumvention``) and no URLs."""
    c = store.conn
    return (scalar(c, "SELECT 1 FROM endpoint_measurements WHERE run_id = ? LIMIT 1", (run_id,)) is not None
            and scalar(c, "SELECT 1 FROM measurements WHERE run_id = ? LIMIT 1", (run_id,)) is None)


def latest_endpoints(
    store: Store, vantages: Sequence[str] | None = None, since: str | None = None
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
           f"e.port ORDER BY e.measured_at DESC, e.id DESC) AS n {_FROM} WHERE 1 {where}) WHERE n = 1 "
           "ORDER BY kind, name, address, port, vantage")  # fmt: skip
    return [_result(row) for row in named_rows(store.conn, sql, params)]


def endpoint_measurements_at(
    store: Store, address: str | None, port: int | None, *, name: str | None = None,
    vantage: str | None = None, run_id: int | None = None,
) -> list[dict[str, Any]]:
    """The newest measurement of each kind of endpoint at ``address:port`` (or named ``name``),
    narrowed by vantage point and run, with its observation and control decoded (``probe show``).
    """
    where, params = filters(("e.name = ?", name), ("v.name = ?", vantage), ("e.run_id = ?", run_id))
    if address is not None:
        where, params = f" AND e.address = ? AND e.port = ?{where}", [address, port, *params]
    sql = (f"SELECT * FROM ({_SELECT}, e.classifier_version, e.observation, e.control, "
           "row_number() OVER (PARTITION BY e.kind, e.address, e.port ORDER BY e.measured_at DESC, "
           f"e.id DESC) AS n {_FROM} WHERE 1 {where}) WHERE n = 1 ORDER BY kind, address, port")  # fmt: skip
    out = []
    for row in named_rows(store.conn, sql, params):
        d = _result(row)
        d["classifier_version"] = row["classifier_version"]
        d["observation"] = json.loads(row["observation"])
        d["control"] = None if row["control"] is None else json.loads(row["control"])
        out.append(d)
    return out
