"""What the exports read (probe/research/export/): measurements selected by :class:`Filters`, in
id order, chunk by chunk, so memory stays flat however big the database.

- :func:`iter_records`: each measurement rebuilt in full, with its verdict and where it was
  taken (:class:`Record`: the JSON-based formats, jsonl and OONI's);
- :func:`measurement_columns`: named columns of the measurements (CSV);
- :data:`TABLES`: the tables of the Parquet export read by SQL (vantage points, runs,
  measurements, the QUIC and ECH verdicts), each column with its kind and the SQL that reads it, and
  :func:`table_columns`, their rows a batch of columns at a time;
- :func:`observed`: the measurements' observations decoded, chunk by chunk, for the
  per-operation tables (DNS, TCP, TLS, HTTP, controls: probe/research/export/tables.py), and
  :func:`certificates`, the certificates they refer to.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

from probe.core.model import Measurement, Verdict
from probe.store.connection import typed_rows
from probe.store.observations import unpack
from probe.store.protocols import PROTOCOL_COLUMNS, protocol_verdicts_between

if TYPE_CHECKING:
    from probe.store.database import Store

__all__ = [
    "MEASUREMENT_COLUMNS",
    "TABLES",
    "CertificateRow",
    "ExportTable",
    "Filters",
    "ObservedRow",
    "Record",
    "certificates",
    "classifier_versions",
    "iter_records",
    "measurement_columns",
    "observed",
    "table_columns",
    "where",
]

_CHUNK = 500  # measurements rebuilt per read (iter_records)


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


# --- measurements rebuilt in full --------------------------------------------------------------
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
    # Where the measurement was taken, as the CSV and Parquet exports say it (MEASUREMENT_COLUMNS:
    # the run's network, else the vantage point's; network_source says which).
    network: tuple[int | None, str | None, str | None, int | None, str | None] = (
        None, None, None, None, None)  # asn, as_org, country, resolver_asn, network_source


class _RecordRow(NamedTuple):
    """What :func:`iter_records` reads of one measurement besides its controls."""

    id: int
    uid: str
    data: bytes  # the packed observations
    verdict: str
    stage: str | None
    hop: int | None
    reasons: str
    classifier_version: str
    final: int
    classified_at: str | None
    run_uid: str
    run_started_at: str
    software_version: str
    vantage_uid: str
    vantage: str
    asn: int | None
    as_org: str | None
    country: str | None
    run_asn: int | None
    run_as_org: str | None
    run_country: str | None
    resolver_ip: str | None
    resolver_asn: int | None
    resolver_as_org: str | None
    user_agent: str | None
    net_asn: int | None
    net_as_org: str | None
    net_country: str | None
    net_resolver_asn: int | None
    network_source: str | None


def iter_records(store: Store, f: Filters) -> Iterator[Record]:
    """Every measurement selected by ``f``, rebuilt in full, in id order, chunk by chunk."""
    cond, params = where(f)
    sql = (
        "SELECT m.id, m.uid, o.data, m.verdict, m.stage, m.hop, m.reasons, m.classifier_version, "
        "m.final, m.classified_at, r.uid AS run_uid, r.started_at AS run_started_at, "
        "r.software_version, v.uid AS vantage_uid, v.name AS vantage, v.asn, v.as_org, v.country, "
        "r.asn AS run_asn, r.as_org AS run_as_org, r.country AS run_country, r.resolver_ip, "
        "r.resolver_asn, r.resolver_as_org, "
        "json_extract(r.options, '$.measure.user_agent') AS user_agent, "
        + ", ".join(f"{MEASUREMENT_COLUMNS[c]} AS {'' if c == 'network_source' else 'net_'}{c}"
                    for c in ("asn", "as_org", "country", "resolver_asn", "network_source"))
        + " FROM measurements AS m "
        "JOIN observations AS o ON o.measurement_id = m.id "
        "JOIN runs AS r ON r.id = m.run_id JOIN vantage_points AS v ON v.id = m.vantage_id "
        f"WHERE m.id > ? AND {cond} ORDER BY m.id LIMIT {_CHUNK}"
    )
    last = 0
    while True:
        chunk = list(typed_rows(store.conn, _RecordRow, sql, [last, *params]))
        if not chunk:
            return
        lo, last = chunk[0].id, chunk[-1].id
        protocols = protocol_verdicts_between(store, lo, last)  # --quic, --ech
        for row in chunk:
            yield Record(
                row.uid, store.rebuild(row.data),
                Verdict(row.verdict, row.stage, row.hop, tuple(json.loads(row.reasons)),
                        row.classifier_version, protocols=protocols.get(row.id, ())),
                bool(row.final), row.classified_at, row.run_uid, row.run_started_at,
                row.software_version, row.vantage_uid, row.vantage, row.asn, row.as_org,
                row.country, run_asn=row.run_asn, run_as_org=row.run_as_org,
                run_country=row.run_country, resolver_ip=row.resolver_ip,
                resolver_asn=row.resolver_asn, resolver_as_org=row.resolver_as_org,
                user_agent=row.user_agent,
                network=(row.net_asn, row.net_as_org, row.net_country, row.net_resolver_asn,
                         row.network_source),
            )  # fmt: skip


# --- flat columns of the measurements ----------------------------------------------------------
_RUN_HAS_NETWORK = "(r.asn IS NOT NULL OR r.country IS NOT NULL)"

#: Column -> SQL for :func:`measurement_columns`: the measurement's own columns (``m``), its global
#: ids and where it was taken (``r`` its run, ``v`` its vantage point), and the verdicts of its
#: QUIC and ECH tests (``quic_verdict`` ... ``ech_reasons``: NULL when measured without them).
MEASUREMENT_COLUMNS: dict[str, str] = {
    "measurement_uid": "m.uid", "run_uid": "r.uid", "vantage_uid": "v.uid", "vantage": "v.name",
    # Where the measurement was taken: its own run's network (docs/identity.md), not its vantage
    # point's today. A run that recorded none (before schema version 7, --no-identity) falls
    # back to its vantage point's (what --asn/--country said), and network_source says which.
    **{c: f"CASE WHEN {_RUN_HAS_NETWORK} THEN r.{c} ELSE v.{c} END"
       for c in ("asn", "as_org", "country")},
    "resolver_asn": f"CASE WHEN {_RUN_HAS_NETWORK} THEN r.resolver_asn "
                    "ELSE json_extract(v.meta, '$.resolver_asn') END",
    "network_source": f"CASE WHEN {_RUN_HAS_NETWORK} THEN 'run' WHEN v.asn IS NOT NULL OR "
                      "v.country IS NOT NULL THEN 'vantage_point' END",
    **{c: f"m.{c}" for c in (
        "url", "original_url", "domain", "category", "source", "measured_at", "started",
        "runtime", "attempt", "final", "failure", "n_hops", "final_url", "verdict", "stage", "hop",
        "reasons", "classifier_version", "classified_at")},
    **PROTOCOL_COLUMNS,
}  # fmt: skip


def measurement_columns(store: Store, f: Filters, columns: Sequence[str], *, chunk: int = 2000
                        ) -> Iterator[list[tuple[Any, ...]]]:
    """The measurements selected by ``f``, in id order, as rows of the named ``columns`` (keys of
    :data:`MEASUREMENT_COLUMNS`; each row's values in the order of ``columns``), ``chunk`` rows
    at a time."""
    unknown = [c for c in columns if c not in MEASUREMENT_COLUMNS]
    if unknown:
        raise ValueError(f"no such measurement column: {', '.join(unknown)}")
    cond, params = where(f)
    select = ", ".join(f"{MEASUREMENT_COLUMNS[c]} AS {c}" for c in columns)
    cur = store.conn.execute(
        f"SELECT {select} FROM measurements AS m JOIN runs AS r ON r.id = m.run_id "
        f"JOIN vantage_points AS v ON v.id = m.vantage_id WHERE {cond} ORDER BY m.id",
        params,
    )
    names = tuple(d[0] for d in cur.description)
    assert names == tuple(columns), (names, columns)  # the order the caller's names give
    while rows := cur.fetchmany(chunk):
        yield rows


# --- the tables of the Parquet export ----------------------------------------------------------
#: Column kinds (each one Arrow type in the Parquet export): text, 32/64-bit integers, floats,
#: flags (0/1), ISO 8601 times, JSON lists of strings, JSON objects of counts by verdict.
KINDS = ("str", "i32", "i64", "f64", "bool", "ts", "strlist", "counts")


@dataclass(frozen=True)
class ExportTable:
    """One exported table read by SQL: its columns (name, kind, SQL expression), its FROM clause,
    and the columns the schema never leaves NULL (declared non-null in the Parquet schema)."""

    name: str
    columns: tuple[tuple[str, str, str], ...]
    source: str  # FROM ... (measurements AS m available for filtering when child=True)
    child: bool = True  # filtered through the measurement it belongs to
    order: str = "m.id"
    required: frozenset[str] = frozenset()
    # (name, SQL) read beside the columns but not exported: what a partitioned export needs of
    # a row's measurement (its vantage point, country and time) when the columns do not say it.
    keys: tuple[tuple[str, str], ...] = ()


_RUN_NETWORK = tuple((name, kind, MEASUREMENT_COLUMNS[name]) for name, kind in (
    ("asn", "i64"), ("as_org", "str"), ("country", "str"), ("resolver_asn", "i64"),
    ("network_source", "str")))

TABLES: tuple[ExportTable, ...] = (
    ExportTable("vantage_points", (
        ("uid", "str", "v.uid"), ("name", "str", "v.name"), ("asn", "i64", "v.asn"),
        ("as_org", "str", "v.as_org"), ("country", "str", "v.country"),
        ("resolver", "str", "v.resolver"), ("network", "str", "v.network"),
        ("meta", "str", "v.meta"), ("created_at", "ts", "v.created_at"),
        ("updated_at", "ts", "v.updated_at"),
    ), "vantage_points AS v", child=False, order="v.id",
        required=frozenset({"uid", "name", "meta", "created_at", "updated_at"})),
    ExportTable("runs", (
        ("uid", "str", "r.uid"), ("vantage_uid", "str", "v.uid"), ("vantage", "str", "v.name"),
        ("started_at", "ts", "r.started_at"), ("finished_at", "ts", "r.finished_at"),
        ("software_version", "str", "r.software_version"), ("lists", "strlist", "r.lists"),
        ("options", "str", "r.options"), ("status", "str", "r.status"),
        ("n_measurements", "i64", "r.n_measurements"), ("counts", "counts", "r.counts"),
        *_RUN_NETWORK, ("resolver_as_org", "str", "r.resolver_as_org"),
        ("network_changed", "bool", "r.network_changed"),
    ), "runs AS r JOIN vantage_points AS v ON v.id = r.vantage_id", child=False, order="r.id",
        required=frozenset({"uid", "vantage_uid", "vantage", "started_at", "software_version",
                            "lists", "options", "status", "n_measurements", "counts"})),
    ExportTable("measurements", (
        ("uid", "str", "m.uid"), ("run_uid", "str", "r.uid"), ("vantage_uid", "str", "v.uid"),
        ("vantage", "str", "v.name"), *_RUN_NETWORK, ("url", "str", "m.url"),
        ("original_url", "str", "m.original_url"), ("domain", "str", "m.domain"),
        ("category", "str", "m.category"), ("source", "str", "m.source"),
        ("measured_at", "ts", "m.measured_at"), ("started", "f64", "m.started"),
        ("runtime", "f64", "m.runtime"), ("attempt", "i32", "m.attempt"),
        ("final", "bool", "m.final"), ("failure", "str", "m.failure"),
        ("n_hops", "i32", "m.n_hops"), ("final_url", "str", "m.final_url"),
        ("verdict", "str", "m.verdict"), ("stage", "str", "m.stage"), ("hop", "i32", "m.hop"),
        ("reasons", "strlist", "m.reasons"), ("classifier_version", "str", "m.classifier_version"),
        ("classified_at", "ts", "m.classified_at"),
    ), "measurements AS m JOIN runs AS r ON r.id = m.run_id "
       "JOIN vantage_points AS v ON v.id = m.vantage_id",
        required=frozenset({"uid", "run_uid", "vantage_uid", "vantage", "url", "original_url",
                            "domain", "category", "source", "measured_at", "started", "runtime",
                            "attempt", "final", "n_hops", "verdict", "reasons",
                            "classifier_version"})),
    # The verdicts of the opt-in QUIC and ECH tests (probe run --quic, --ech; docs/protocols.md),
    # partitioned like their measurements (the keys are read, not written).
    ExportTable("protocol_verdicts", (
        ("measurement_uid", "str", "m.uid"), ("suite", "str", "p.suite"),
        ("verdict", "str", "p.verdict"), ("stage", "str", "p.stage"), ("hop", "i32", "p.hop"),
        ("reasons", "strlist", "p.reasons"), ("classifier_version", "str", "p.classifier_version"),
    ), "protocol_verdicts AS p JOIN measurements AS m ON m.id = p.measurement_id "
       "JOIN runs AS r ON r.id = m.run_id JOIN vantage_points AS v ON v.id = m.vantage_id",
        order="p.measurement_id, p.suite",
        required=frozenset({"measurement_uid", "suite", "verdict", "reasons",
                            "classifier_version"}),
        keys=(("vantage", "v.name"), ("country", MEASUREMENT_COLUMNS["country"]),
              ("measured_at", "m.measured_at"))),
)


class ObservedRow(NamedTuple):
    """One measurement's packed observations, decoded, with what names and partitions it."""

    uid: str
    vantage: str
    country: str | None  # its run's (else its vantage point's: MEASUREMENT_COLUMNS)
    measured_at: str
    data: Any  # the observations' data (probe.store.observations.unpack)


def observed(store: Store, f: Filters, *, chunk: int = _CHUNK) -> Iterator[list[ObservedRow]]:
    """The measurements selected by ``f``, in id order, ``chunk`` at a time, with their
    observations decoded (what the exports' per-operation tables are made from)."""
    cond, params = where(f)
    sql = (f"SELECT m.id, m.uid, v.name, {MEASUREMENT_COLUMNS['country']}, m.measured_at, o.data "
           "FROM measurements AS m "
           "JOIN observations AS o ON o.measurement_id = m.id JOIN runs AS r ON r.id = m.run_id "
           "JOIN vantage_points AS v ON v.id = m.vantage_id "
           f"WHERE m.id > ? AND {cond} ORDER BY m.id LIMIT {int(chunk)}")
    last = 0
    while True:
        rows = store.conn.execute(sql, [last, *params]).fetchall()
        if not rows:
            return
        last = rows[-1][0]
        yield [ObservedRow(uid, vantage, country, at, unpack(data))
               for _, uid, vantage, country, at, data in rows]


class CertificateRow(NamedTuple):
    """A stored certificate (``certificates``)."""

    sha256: str
    subject: str | None
    issuer: str | None
    not_before: str | None
    not_after: str | None
    der: bytes


def certificates(store: Store, shas: Sequence[str]) -> Iterator[CertificateRow]:
    """The certificates of these SHA-256 digests (those stored), in the order given."""
    for k in range(0, len(shas), 500):
        part = list(shas[k:k + 500])
        found = {row.sha256: row for row in typed_rows(
            store.conn, CertificateRow,
            "SELECT sha256, subject, issuer, not_before, not_after, der FROM certificates "
            f"WHERE sha256 IN ({','.join('?' * len(part))})", part)}
        yield from (found[sha] for sha in part if sha in found)


def classifier_versions(store: Store, f: Filters) -> list[str]:
    """The classifier versions of the verdicts selected by ``f`` (the exports' provenance)."""
    cond, params = where(f)
    return [str(r[0]) for r in store.conn.execute(
        f"SELECT DISTINCT m.classifier_version FROM measurements AS m WHERE {cond} ORDER BY 1",
        params)]


def table_columns(store: Store, table: ExportTable, f: Filters, *, fetch: int
                  ) -> Iterator[dict[str, tuple[Any, ...]]]:
    """The rows of an exported table selected by ``f``, ``fetch`` at a time, as columns by name
    (each column a tuple of values; its :attr:`ExportTable.keys` after its columns)."""
    names = [name for name, _, _ in table.columns] + [name for name, _ in table.keys]
    select = ", ".join([f"{expr} AS {name}" for name, _, expr in table.columns]
                       + [f"{expr} AS {name}" for name, expr in table.keys])
    if table.child or table.name == "measurements":
        cond, params = where(f)
    elif f.vantages:  # vantage_points and runs both name the vantage point v
        cond = f"v.name IN ({','.join('?' * len(f.vantages))})"
        params = list(f.vantages)
    else:
        cond, params = "1", []
    cur = store.conn.execute(
        f"SELECT {select} FROM {table.source} WHERE {cond} ORDER BY {table.order}", params
    )
    assert tuple(d[0] for d in cur.description) == tuple(names), table.name
    while True:
        rows = cur.fetchmany(fetch)
        if not rows:
            return
        columns = dict(zip(names, zip(*rows, strict=True), strict=True))
        del rows  # the Python objects of one fetch at a time: the caller drops the columns too
        yield columns
        del columns
