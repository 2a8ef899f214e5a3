"""Endpoint measurements (``probe circumvention``) in a results database."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from probe.model import ControlObservation, Verdict, to_json

if TYPE_CHECKING:
    from probe.circumvention.measure import EndpointObservation
    from probe.store.database import Store

__all__ = ["endpoint_results", "write_endpoints"]

_COLUMNS = ("run_id", "vantage_id", "suite", "kind", "name", "address", "port", "transport", "source",
            "measured_at", "runtime", "tcp_failure", "handshake", "handshake_failure", "verdict",
            "stage", "reasons", "classifier_version", "observation", "control")  # fmt: skip


def write_endpoints(
    store: Store,
    run_id: int,
    vantage_id: int,
    suite: str,
    rows: Iterable[tuple[EndpointObservation, ControlObservation | None, Verdict]],
) -> int:
    """Store judged endpoint observations in one transaction; the number stored."""
    from probe.store.rows import iso

    values = []
    for obs, control, verdict in rows:
        values.append((
            run_id, vantage_id, suite, obs.kind, obs.name, obs.address, obs.port, obs.transport,
            obs.source, iso(obs.started), obs.runtime, obs.tcp_failure, obs.handshake,
            obs.handshake_failure, verdict.verdict, verdict.stage, json.dumps(list(verdict.reasons)),
            verdict.classifier_version, json.dumps(dataclasses.asdict(obs), sort_keys=True),
            None if control is None else json.dumps(to_json(control), sort_keys=True),
        ))  # fmt: skip
    sql = (f"INSERT INTO endpoint_measurements ({', '.join(_COLUMNS)}) "
           f"VALUES ({', '.join('?' * len(_COLUMNS))})")  # fmt: skip
    with store._transaction():
        store.conn.executemany(sql, values)
    return len(values)


def endpoint_results(
    store: Store, run_id: int | None = None, suite: str | None = None
) -> Iterator[dict[str, Any]]:
    """Stored endpoint results (of one run, or all), oldest first, as dicts with named keys."""
    sql = ("SELECT e.id, e.run_id, v.name, e.suite, e.kind, e.name, e.address, e.port, e.transport, "
           "e.measured_at, e.verdict, e.stage, e.reasons, e.source FROM endpoint_measurements e "
           "JOIN vantage_points v ON v.id = e.vantage_id WHERE 1")  # fmt: skip
    params: list[Any] = []
    if run_id is not None:
        sql += " AND e.run_id = ?"
        params.append(run_id)
    if suite is not None:
        sql += " AND e.suite = ?"
        params.append(suite)
    keys = ("id", "run_id", "vantage", "suite", "kind", "name", "address", "port", "transport",
            "measured_at", "verdict", "stage", "reasons", "source")  # fmt: skip
    for row in store.conn.execute(sql + " ORDER BY e.id", params):
        d = dict(zip(keys, row, strict=True))
        d["reasons"] = json.loads(d["reasons"])
        yield d
