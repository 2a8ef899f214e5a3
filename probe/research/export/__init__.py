"""Exports of a results database for other tools: CSV, JSON lines, OONI's data format, Parquet.

Every format streams: rows are read in chunks by id and written as they come, so memory stays
flat however big the database. Rows are named by their global ids (``uid``), so exports of
different databases can be concatenated without merging them first.

- ``csv``: one row per measurement (verdict, where, when; no raw observations).
- ``jsonl``: one JSON object per measurement: the verdict fields and the complete observations
  (``probe.core.codec.to_data`` of the Measurement: bodies and certificates in base64, controls).
- ``ooni``: one OONI Web Connectivity measurement per line (probe/research/ooni/export.py).
- ``parquet``: a directory with one file per entity (probe/research/export/parquet.py; needs pyarrow).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from probe.core.model import Measurement, Verdict
    from probe.store import Store

__all__ = ["FORMATS", "Filters", "Record", "csv_lines", "iter_records", "jsonl_lines", "where"]

FORMATS = ("csv", "jsonl", "ooni", "parquet")
_CHUNK = 500


@dataclass(frozen=True)
class Filters:
    """Which measurements to export (default: the final attempt of every URL of every run)."""

    vantages: Sequence[str] = ()
    run_id: int | None = None
    since: str | None = None  # ISO time: measured at or after
    all_attempts: bool = False


def where(f: Filters, alias: str = "m") -> tuple[str, list[Any]]:
    """SQL conditions on ``measurements AS alias`` (joined with vantage_points AS v)."""
    cond: list[str] = ["1"]
    params: list[Any] = []
    if not f.all_attempts:
        cond.append(f"{alias}.final = 1")
    if f.vantages:
        cond.append(f"{alias}.vantage_id IN (SELECT id FROM vantage_points WHERE name IN "
                    f"({','.join('?' * len(f.vantages))}))")
        params.extend(f.vantages)
    if f.run_id is not None:
        cond.append(f"{alias}.run_id = ?")
        params.append(f.run_id)
    if f.since is not None:
        cond.append(f"{alias}.measured_at >= ?")
        params.append(f.since)
    return " AND ".join(cond), params


@dataclass(frozen=True)
class Record:
    """One measurement with its verdict and where it was taken, for the JSON-based formats."""

    uid: str
    measurement: Measurement
    verdict: Verdict
    final: bool
    classified_at: str | None
    run_uid: str
    run_started_at: str
    software_version: str
    vantage_uid: str
    vantage: str
    asn: int | None
    as_org: str | None
    country: str | None
    # The run's network identity (docs/identity.md), when it was found: where this run was
    # measured (the vantage point's columns above are its latest run's), and its resolver as
    # seen from outside. None for runs from before identity, imports and synthetic data.
    run_asn: int | None = None
    run_as_org: str | None = None
    run_country: str | None = None
    resolver_ip: str | None = None
    resolver_asn: int | None = None
    resolver_as_org: str | None = None
    user_agent: str | None = None  # the User-Agent the run sent (runs.options)


def iter_records(store: Store, f: Filters) -> Iterator[Record]:
    """Every measurement selected by ``f``, rebuilt in full, in id order, chunk by chunk."""
    from probe.core.model import Verdict

    cond, params = where(f)
    sql = (
        "SELECT m.id, m.uid, o.data, m.verdict, m.stage, m.hop, m.reasons, m.classifier_version, "
        "m.final, m.classified_at, r.uid, r.started_at, r.software_version, v.uid, v.name, v.asn, "
        "v.as_org, v.country, r.asn, r.as_org, r.country, r.resolver_ip, r.resolver_asn, "
        "r.resolver_as_org, json_extract(r.options, '$.measure.user_agent') FROM measurements AS m "
        "JOIN observations AS o ON o.measurement_id = m.id "
        "JOIN runs AS r ON r.id = m.run_id JOIN vantage_points AS v ON v.id = m.vantage_id "
        f"WHERE m.id > ? AND {cond} ORDER BY m.id LIMIT {_CHUNK}"
    )
    conn = store.conn
    last = 0
    while True:
        chunk = conn.execute(sql, [last, *params]).fetchall()
        if not chunk:
            return
        lo, hi = chunk[0][0], chunk[-1][0]
        last = hi
        controls = store.controls_between(lo, hi)
        for (mid, uid, obs, verdict, stage, hop, reasons, version, final, classified_at,
             run_uid, run_started, software, v_uid, v_name, asn, as_org, country,
             *identity) in chunk:
            m = store.rebuild(obs, controls.get(mid, {}))
            v = Verdict(verdict, stage, hop, tuple(json.loads(reasons)), version)
            yield Record(uid, m, v, bool(final), classified_at, run_uid, run_started, software,
                         v_uid, v_name, asn, as_org, country, *identity)


def jsonl_lines(store: Store, f: Filters) -> Iterator[str]:
    """One JSON line per measurement: ids, where, the verdict and the complete observations."""
    from probe.core.codec import to_data

    dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
    for r in iter_records(store, f):
        v = r.verdict
        yield dumps({
            "measurement_uid": r.uid, "run_uid": r.run_uid, "vantage_uid": r.vantage_uid,
            "vantage": r.vantage, "asn": r.asn, "country": r.country, "final": r.final,
            "verdict": v.verdict, "stage": v.stage, "hop": v.hop, "reasons": list(v.reasons),
            "classifier_version": v.classifier_version, "classified_at": r.classified_at,
            "measurement": to_data(r.measurement),
        }) + "\n"


#: Columns of the CSV export, in order.
CSV_COLUMNS = ("measurement_uid", "run_uid", "vantage_uid", "vantage", "asn", "country", "url",
               "original_url", "domain", "category", "source", "measured_at", "runtime",
               "attempt", "final", "failure", "n_hops", "final_url", "verdict", "stage", "hop",
               "reasons", "classifier_version", "classified_at")


def csv_lines(store: Store, f: Filters) -> Iterator[str]:
    """CSV text (a header, then one row per measurement), in chunks. ``reasons`` is JSON."""
    import csv
    import io

    cond, params = where(f)
    cols = ", ".join(
        {"measurement_uid": "m.uid", "run_uid": "r.uid", "vantage_uid": "v.uid", "vantage": "v.name",
         "asn": "v.asn", "country": "v.country"}.get(c, f"m.{c}") for c in CSV_COLUMNS
    )
    cur = store.conn.execute(
        f"SELECT {cols} FROM measurements AS m JOIN runs AS r ON r.id = m.run_id "
        f"JOIN vantage_points AS v ON v.id = m.vantage_id WHERE {cond} ORDER BY m.id",
        params,
    )
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(CSV_COLUMNS)
    while True:
        rows = cur.fetchmany(2000)
        if not rows:
            break
        w.writerows(rows)
        yield buf.getvalue()
        buf.seek(0)
        buf.truncate()
    yield buf.getvalue()
