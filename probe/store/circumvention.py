"""Endpoint measurements (``probe circumvention``) in a results database."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

from probe.core.codec import from_data, to_data
from probe.core.model import ControlObservation, EndpointObservation, Verdict
from probe.store.connection import filters, named_rows, scalar, typed_rows, verdicts_in_order
from probe.store.rows import iso
from probe.store.uid import uuid7

if TYPE_CHECKING:
    from probe.store.database import Store

__all__ = [
    "RESULT_KEYS",
    "endpoint_measurements_at",
    "endpoint_results",
    "iter_endpoint_exports",
    "iter_endpoint_judged",
    "latest_endpoint_run",
    "latest_endpoints",
    "run_has_endpoints",
    "set_endpoint_verdicts",
    "write_endpoints",
]

def write_endpoints(
    store: Store,
    run_id: int,
    vantage_id: int,
    suite: str | Callable[[str], str],
    rows: Iterable[tuple[EndpointObservation, ControlObservation | None, Verdict]],
    *,
    uids: Sequence[str] | None = None,
    beside: Mapping[str, Sequence[Mapping[str, Any]]] | None = None,
) -> int:
    """Store judged endpoint observations in one transaction; the number stored. ``suite`` is
    the rows' suite, or a function naming each row's from its kind (``circumvention``,
    ``messaging``). ``uids``: the rows' global ids, one per row, when they are named outside
    probe (an imported OONI endpoint's, derived from OONI's identity of it, so that every
    database importing it names it alike); otherwise new ones. ``beside``: rows of other tables
    (table -> row dicts) stored in the same transaction (OONI's own row of each endpoint)."""
    suite_of = suite if callable(suite) else (lambda _kind: suite)
    records = [
        {"run_id": run_id, "vantage_id": vantage_id, "suite": suite_of(obs.kind), "kind": obs.kind,
         "name": obs.name, "address": obs.address, "port": obs.port, "transport": obs.transport,
         "source": obs.source, "measured_at": iso(obs.started), "runtime": obs.runtime,
         "tcp_failure": obs.tcp_failure, "handshake": obs.handshake,
         "handshake_failure": obs.handshake_failure, "verdict": verdict.verdict,
         "stage": verdict.stage, "reasons": json.dumps(list(verdict.reasons)),
         "classifier_version": verdict.classifier_version,
         # to_data: a service's hops hold bytes (certificates, a body's start), as base64
         "observation": json.dumps(to_data(obs), sort_keys=True),
         "control": None if control is None else json.dumps(to_data(control), sort_keys=True),
         "uid": uuid7(int(obs.started * 1000))}  # a global id (probe merge), from when it was taken
        for obs, control, verdict in rows
    ]  # fmt: skip
    if uids is not None:
        for rec, uid in zip(records, uids, strict=True):
            rec["uid"] = uid
    with store.transaction():
        store.insert_records("endpoint_measurements", records)
        for table, others in (beside or {}).items():
            store.insert_records(table, others)
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
    tail, more = verdicts_in_order("e.verdict", verdicts, "e.id", limit)
    for row in named_rows(store.conn, sql + tail, params + more):
        yield _result(row)


def latest_endpoint_run(store: Store, vantage: str | None = None, suite: str | None = None) -> int | None:
    """The newest run that measured endpoints (of ``vantage``, of ``suite`` when given), or None."""
    where, params = filters(("v.name = ?", vantage), ("e.suite = ?", suite))
    sql = ("SELECT max(e.run_id) FROM endpoint_measurements e JOIN vantage_points v ON v.id = e.vantage_id "
           f"WHERE 1{where}")  # fmt: skip
    run_id = scalar(store.conn, sql, params)
    return None if run_id is None else int(run_id)


def run_has_endpoints(store: Store, run_id: int) -> bool:
    """True when the run measured endpoints (``probe circumvention``) and no URLs."""
    c = store.conn
    return (scalar(c, "SELECT 1 FROM endpoint_measurements WHERE run_id = ? LIMIT 1", (run_id,)) is not None
            and scalar(c, "SELECT 1 FROM measurements WHERE run_id = ? LIMIT 1", (run_id,)) is None)


def _vantage_since(vantages: Sequence[str] | None, since: str | None) -> tuple[str, list[Any]]:
    """SQL conditions (``AND ...``) and parameters: of these vantage points, measured since."""
    where, params = "", list[Any]()
    if vantages:
        where += f" AND v.name IN ({','.join('?' * len(vantages))})"
        params.extend(vantages)
    if since is not None:
        where += " AND e.measured_at >= ?"
        params.append(since)
    return where, params


def latest_endpoints(
    store: Store, vantages: Sequence[str] | None = None, since: str | None = None
) -> list[dict[str, Any]]:
    """The newest result of every endpoint (kind, address, port) at every vantage point (of
    ``vantages``, measured at or after ``since``), ordered by kind, name, address, port, vantage.
    """
    where, params = _vantage_since(vantages, since)
    sql = (f"SELECT * FROM ({_SELECT}, row_number() OVER (PARTITION BY e.vantage_id, e.kind, e.address, "
           f"e.port ORDER BY e.measured_at DESC, e.id DESC) AS n {_FROM} WHERE 1 {where}) WHERE n = 1 "
           "ORDER BY kind, name, address, port, vantage")  # fmt: skip
    return [_result(row) for row in named_rows(store.conn, sql, params)]


def endpoint_measurements_at(
    store: Store, address: str | None, port: int | None, *, name: str | None = None,
    vantage: str | None = None, run_id: int | None = None,
) -> list[dict[str, Any]]:
    """The newest measurement of each kind of endpoint at ``address:port`` (or named ``name``:
    its list's name or, for a service reached by name, its host name),
    narrowed by vantage point and run, with its observation and control decoded (``probe show``).
    """
    # A name is the list's (``DC2``) or the host name a service is reached by (``web.whatsapp.com``).
    where, params = filters(("? IN (e.name, e.address)", name), ("v.name = ?", vantage),
                            ("e.run_id = ?", run_id))  # fmt: skip
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


def iter_endpoint_exports(
    store: Store, *, run_id: int | None = None, vantages: Sequence[str] = (), since: str | None = None,
    chunk: int = 500, suite: str | None = None,
) -> Iterator[dict[str, Any]]:
    """Every endpoint measurement (of ``run_id``, of ``vantages``, measured at or after
    ``since``, of ``suite``) in id order, with its global ids, observation and control decoded,
    read chunk by chunk (`probe export --suite circumvention|messaging`)."""
    where, params = _vantage_since(vantages, since)
    more, more_params = filters(("e.run_id = ?", run_id), ("e.suite = ?", suite))
    where += more
    params.extend(more_params)
    sql = (f"{_SELECT}, e.uid AS uid, r.uid AS run_uid, v.uid AS vantage_uid, e.classifier_version, "
           f"e.observation, e.control {_FROM} JOIN runs r ON r.id = e.run_id WHERE e.id > ? {where} "
           f"ORDER BY e.id LIMIT {int(chunk)}")  # fmt: skip
    last = 0
    while True:
        rows = list(named_rows(store.conn, sql, [last, *params]))
        if not rows:
            return
        last = rows[-1]["id"]
        for row in rows:
            d = _result(row)
            for key in ("uid", "run_uid", "vantage_uid", "classifier_version"):
                d[key] = row[key]
            d["observation"] = json.loads(row["observation"])
            d["control"] = None if row["control"] is None else json.loads(row["control"])
            yield d


class _JudgedRow(NamedTuple):
    """An endpoint measurement as :func:`iter_endpoint_judged` reads it."""

    eid: int
    observation: str  # JSON
    control: str | None  # JSON
    verdict: str
    stage: str | None
    reasons: str  # JSON list
    classifier_version: str


def iter_endpoint_judged(
    store: Store, run_id: int | None = None, chunk: int = 500
) -> Iterator[tuple[int, EndpointObservation, ControlObservation | None, Verdict]]:
    """Every stored endpoint measurement (of ``run_id``, or all) rebuilt as records with its
    stored verdict, in id order, chunk by chunk (`probe reclassify`)."""
    where, params = filters(("run_id = ?", run_id))
    sql = ("SELECT id AS eid, observation, control, verdict, stage, reasons, classifier_version "
           f"FROM endpoint_measurements WHERE id > ?{where} ORDER BY id LIMIT {int(chunk)}")  # fmt: skip
    last = 0
    while True:
        rows = list(typed_rows(store.conn, _JudgedRow, sql, [last, *params]))
        if not rows:
            return
        last = rows[-1].eid
        for r in rows:
            control = None if r.control is None else from_data(ControlObservation, json.loads(r.control))
            verdict = Verdict(r.verdict, r.stage, None, tuple(json.loads(r.reasons)), r.classifier_version)
            yield r.eid, from_data(EndpointObservation, json.loads(r.observation)), control, verdict


def set_endpoint_verdicts(store: Store, verdicts: Sequence[tuple[int, Verdict]]) -> None:
    """Write re-judged verdicts of endpoint measurements (by id) in one transaction."""
    if not verdicts:
        return
    with store.transaction():
        store.conn.executemany(
            "UPDATE endpoint_measurements SET verdict = ?, stage = ?, reasons = ?, classifier_version = ? "
            "WHERE id = ?",
            [(v.verdict, v.stage, json.dumps(list(v.reasons)), v.classifier_version, eid)
             for eid, v in verdicts],
        )
