"""Parquet export: one file per entity, stable column types, rows named by global ids.

``probe export --format parquet --output DIR`` writes DIR/vantage_points.parquet, runs.parquet,
measurements.parquet, dns_queries.parquet, tcp_connects.parquet, tls_handshakes.parquet,
http_requests.parquet and controls.parquet (and observations.parquet with ``--observations``).
Each table's Arrow schema is fixed below (docs/research.md lists it): times are
``timestamp[ms, UTC]``, JSON lists of strings are ``list<string>``, flags are ``bool``, counts
``int32``/``int64``, so DuckDB and ClickHouse read the same types from every export. Rows refer to
each other by uid (``measurement_uid``, ``run_uid``, ``vantage_uid``), never by the local integer
ids, so exports of several databases can be read together as one dataset.

Rows are read with ``fetchmany`` and written one record batch at a time: memory stays flat.
Needs pyarrow (``pip install 'probe[parquet]'``).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from probe.core.errors import ProbeError
from probe.research.export import Filters, where

if TYPE_CHECKING:
    import pyarrow as pa  # type: ignore[import-untyped,import-not-found,unused-ignore]

    from probe.store import Store

__all__ = ["TABLES", "ParquetMissing", "write_parquet"]

# Memory is bounded twice, whatever the size of the database: rows are read from SQLite and
# turned into Arrow arrays _FETCH at a time (Python objects cost several times the data: a
# batch of 4,096 wide rows held tens of MB), and the compact Arrow batches are gathered into a
# row group of at most _GROUP_BYTES (or _GROUP_ROWS rows), written and released, so a reader
# still gets row groups of useful size.
_FETCH = 1024
_GROUP_BYTES = 8 << 20
_GROUP_ROWS = 128 * 1024


class ParquetMissing(ProbeError, RuntimeError):
    """pyarrow is not installed."""


# Column kinds -> Arrow types (made once pyarrow is imported).
_KINDS = ("str", "i32", "i64", "f64", "bool", "ts", "strlist")


@dataclass(frozen=True)
class Table:
    """One exported table: its columns (name, kind, SQL expression) and its FROM clause."""

    name: str
    columns: tuple[tuple[str, str, str], ...]
    source: str  # FROM ... (measurements AS m available for filtering when child=True)
    child: bool = True  # filtered through the measurement it belongs to
    order: str = "m.id"


def _child(name: str, alias: str, cols: Sequence[tuple[str, str, str]], order: str) -> Table:
    return Table(
        name,
        (("measurement_uid", "str", "m.uid"), *cols),
        f"{name} AS {alias} JOIN measurements AS m ON m.id = {alias}.measurement_id",
        order=order,
    )


TABLES: tuple[Table, ...] = (
    Table("vantage_points", (
        ("uid", "str", "v.uid"), ("name", "str", "v.name"), ("asn", "i64", "v.asn"),
        ("as_org", "str", "v.as_org"), ("country", "str", "v.country"),
        ("resolver", "str", "v.resolver"), ("network", "str", "v.network"),
        ("meta", "str", "v.meta"), ("created_at", "ts", "v.created_at"),
        ("updated_at", "ts", "v.updated_at"),
    ), "vantage_points AS v", child=False, order="v.id"),
    Table("runs", (
        ("uid", "str", "r.uid"), ("vantage_uid", "str", "v.uid"), ("vantage", "str", "v.name"),
        ("started_at", "ts", "r.started_at"), ("finished_at", "ts", "r.finished_at"),
        ("software_version", "str", "r.software_version"), ("lists", "strlist", "r.lists"),
        ("options", "str", "r.options"), ("status", "str", "r.status"),
        ("n_measurements", "i64", "r.n_measurements"), ("counts", "str", "r.counts"),
    ), "runs AS r JOIN vantage_points AS v ON v.id = r.vantage_id", child=False, order="r.id"),
    Table("measurements", (
        ("uid", "str", "m.uid"), ("run_uid", "str", "r.uid"), ("vantage_uid", "str", "v.uid"),
        ("vantage", "str", "v.name"), ("url", "str", "m.url"),
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
       "JOIN vantage_points AS v ON v.id = m.vantage_id"),
    _child("dns_queries", "q", (
        ("hop", "i32", "q.hop"), ("control", "bool", "q.control"), ("resolver", "str", "q.resolver"),
        ("transport", "str", "q.transport"), ("qtype", "str", "q.qtype"),
        ("hostname", "str", "q.hostname"), ("started", "f64", "q.started"),
        ("duration", "f64", "q.duration"), ("failure", "str", "q.failure"),
        ("addresses", "strlist", "q.addresses"), ("n_replies", "i32", "q.n_replies"),
        ("n_distinct", "i32", "q.n_distinct"),
    ), "q.id"),
    _child("tcp_connects", "t", (
        ("hop", "i32", "t.hop"), ("ip", "str", "t.ip"), ("port", "i32", "t.port"),
        ("started", "f64", "t.started"), ("duration", "f64", "t.duration"),
        ("failure", "str", "t.failure"),
    ), "t.id"),
    _child("tls_handshakes", "t", (
        ("hop", "i32", "t.hop"), ("ip", "str", "t.ip"), ("port", "i32", "t.port"),
        ("sni", "str", "t.sni"), ("started", "f64", "t.started"), ("duration", "f64", "t.duration"),
        ("failure", "str", "t.failure"), ("version", "str", "t.version"),
        ("cipher", "str", "t.cipher"), ("alpn", "str", "t.alpn"),
        ("cert_valid", "bool", "t.cert_valid"), ("leaf_sha256", "str", "t.leaf_sha256"),
        ("leaf_subject", "str", "t.leaf_subject"), ("leaf_issuer", "str", "t.leaf_issuer"),
        ("leaf_not_after", "ts", "t.leaf_not_after"), ("chain", "strlist", "t.chain"),
    ), "t.id"),
    _child("http_requests", "h", (
        ("hop", "i32", "h.hop"), ("url", "str", "h.url"), ("ip", "str", "h.ip"),
        ("port", "i32", "h.port"), ("started", "f64", "h.started"),
        ("duration", "f64", "h.duration"), ("failure", "str", "h.failure"),
        ("status", "i32", "h.status"), ("headers", "str", "h.headers"),
        ("location", "str", "h.location"), ("body_length", "i64", "h.body_length"),
        ("body_sha256", "str", "h.body_sha256"), ("body_truncated", "bool", "h.body_truncated"),
        ("title", "str", "h.title"),
    ), "h.id"),
    _child("controls", "c", (
        ("hop", "i32", "c.hop"), ("source", "str", "c.source"), ("url", "str", "c.url"),
        ("failure", "str", "c.failure"), ("dns_failure", "str", "c.dns_failure"),
        ("dns_addrs", "strlist", "c.dns_addrs"), ("http_failure", "str", "c.http_failure"),
        ("http_status", "i32", "c.http_status"), ("http_body_length", "i64", "c.http_body_length"),
        ("http_title", "str", "c.http_title"), ("http_body_sha256", "str", "c.http_body_sha256"),
        ("data", "str", "c.data"),
    ), "c.id"),
)

OBSERVATIONS = _child("observations", "o", (("data", "str", "o.data"),), "o.measurement_id")


def _arrow() -> Any:
    if "pyarrow" not in sys.modules:
        # The C library's malloc returns each freed batch to the system; pyarrow's default
        # allocator (mimalloc) held about 20 MB more at the peak of an export (163 against
        # 144 MB for 20k measurements). Only when this process has not imported pyarrow yet
        # (the variable is read once, at import) and nobody chose another allocator.
        os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "system")
    try:
        import pyarrow as pa  # type: ignore[import-untyped,import-not-found,unused-ignore]
        import pyarrow.parquet  # type: ignore[import-untyped,import-not-found,unused-ignore]
    except ImportError:
        raise ParquetMissing(
            "Parquet export needs pyarrow: pip install 'probe[parquet]' (or pyarrow)"
        ) from None
    _without_pandas(pa)
    return pa


def _without_pandas(pa: Any) -> None:
    """Keep pyarrow from importing pandas, when this process has not imported it.

    ``pa.array(list)`` asks whether the list is a pandas object, and the first time it asks,
    pyarrow imports pandas when it is installed: +50 MB of RSS, a quarter of the export's memory
    budget, for lists that are never pandas objects. Making that first import fail tells pyarrow
    pandas is absent for those checks; a pyarrow call that needs pandas (``to_pandas``) imports
    it again later, so nothing else changes.
    """
    if "pandas" in sys.modules:
        return
    finder = _NoPandas()
    sys.meta_path.insert(0, finder)
    try:
        pa.array([], pa.string())  # pyarrow's one-time "is pandas there?" check, answered no
    finally:
        sys.meta_path.remove(finder)


class _NoPandas:
    """An import finder under which ``import pandas`` raises ImportError."""

    def find_spec(self, name: str, path: object = None, target: object = None) -> None:
        if name == "pandas" or name.startswith("pandas."):
            raise ImportError("pandas is not used by probe's Parquet export")


def arrow_schema(table: Table) -> pa.Schema:
    """The fixed Arrow schema of an exported table."""
    pa = _arrow()
    types = {"str": pa.string(), "i32": pa.int32(), "i64": pa.int64(), "f64": pa.float64(),
             "bool": pa.bool_(), "ts": pa.timestamp("ms", tz="UTC"),
             "strlist": pa.list_(pa.string())}
    return pa.schema([pa.field(name, types[kind]) for name, kind, _ in table.columns])


def _json_list(text: str | None) -> list[str] | None:
    if text is None:
        return None
    return [] if text == "[]" else [str(x) for x in json.loads(text)]


def _converter(kind: str, typ: Any) -> Callable[[Sequence[Any]], Any]:
    pa = _arrow()
    if kind == "ts":
        # ISO 8601 text ("...T11:52:28.123Z") parses in Arrow's own cast, not row by row.
        return lambda col: pa.array(col, pa.string()).cast(typ)
    if kind == "bool":
        return lambda col: pa.array(col, pa.int64()).cast(typ)
    if kind == "strlist":
        return lambda col: pa.array([_json_list(x) for x in col], typ)
    return lambda col: pa.array(col, typ)


def _write_table(store: Store, table: Table, f: Filters, path: Path) -> int:
    import pyarrow.parquet as pq  # type: ignore[import-untyped,import-not-found,unused-ignore]

    pa = _arrow()
    schema = arrow_schema(table)
    convert = [_converter(kind, schema.field(name).type) for name, kind, _ in table.columns]
    select = ", ".join(expr for _, _, expr in table.columns)
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
    n = 0
    with pq.ParquetWriter(path, schema, compression="zstd") as writer:
        group: list[Any] = []  # record batches of the row group being gathered
        group_bytes = group_rows = 0
        while True:
            rows = cur.fetchmany(_FETCH)
            done = not rows
            if rows:
                columns = list(zip(*rows, strict=True))
                batch = pa.record_batch(
                    [conv(col) for conv, col in zip(convert, columns, strict=True)], schema=schema
                )
                del rows, columns  # the Python objects go before the next fetch
                group.append(batch)
                group_bytes += batch.nbytes
                group_rows += batch.num_rows
                n += batch.num_rows
            if group and (done or group_bytes >= _GROUP_BYTES or group_rows >= _GROUP_ROWS):
                writer.write_table(pa.Table.from_batches(group, schema), row_group_size=group_rows)
                group, group_bytes, group_rows = [], 0, 0
            if done:
                break
    return n


def write_parquet(store: Store, out_dir: Path, f: Filters, *, observations: bool = False
                  ) -> dict[str, int]:
    """Write every table into ``out_dir`` (created; replaced atomically); return rows per table."""
    _arrow()
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise NotADirectoryError(f"{out_dir}: exists and is not a directory")
    tmp = out_dir.with_name(out_dir.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    counts: dict[str, int] = {}
    try:
        for table in (*TABLES, *((OBSERVATIONS,) if observations else ())):
            counts[table.name] = _write_table(store, table, f, tmp / f"{table.name}.parquet")
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    # A reader never sees a half-written export: the directory appears complete.
    if out_dir.exists():
        old = out_dir.with_name(out_dir.name + ".old")
        shutil.rmtree(old, ignore_errors=True)
        os.rename(out_dir, old)
        os.rename(tmp, out_dir)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.rename(tmp, out_dir)
    return counts
