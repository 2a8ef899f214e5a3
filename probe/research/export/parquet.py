"""Parquet export: one file per entity, stable column types, rows named by global ids.

``probe export --format parquet --output DIR`` writes DIR/vantage_points.parquet, runs.parquet,
measurements.parquet, dns_queries.parquet, tcp_connects.parquet, tls_handshakes.parquet,
http_requests.parquet and controls.parquet (and observations.parquet with ``--observations``).
Each table's columns and their kinds are fixed in :data:`probe.store.export.TABLES`, and their
Arrow types here (docs/research.md lists them): times are
``timestamp[ms, UTC]``, JSON lists of strings are ``list<string>``, flags are ``bool``, counts
``int32``/``int64``, so DuckDB and ClickHouse read the same types from every export. Rows refer to
each other by uid (``measurement_uid``, ``run_uid``, ``vantage_uid``), never by the local integer
ids, so exports of several databases can be read together as one dataset.

Rows are read ``_FETCH`` at a time, as columns by name (:func:`probe.store.export.table_columns`),
and written one record batch at a time: memory stays flat.
Needs pyarrow (``pip install 'probe[parquet]'``).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from probe.core.errors import ProbeError
from probe.host.output import check_output_dir, stage_files
from probe.store.export import OBSERVATIONS, TABLES, ExportTable, Filters, table_columns

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


def arrow_schema(table: ExportTable) -> pa.Schema:
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


def _write_table(store: Store, table: ExportTable, f: Filters, path: Path) -> int:
    # pyarrow is the optional extra `parquet`: imported by an export only, once _arrow() (above)
    # has set its allocator up, or said how to install it.
    import pyarrow.parquet as pq  # type: ignore[import-untyped,import-not-found,unused-ignore]

    pa = _arrow()
    schema = arrow_schema(table)
    convert = {name: _converter(kind, schema.field(name).type) for name, kind, _ in table.columns}
    batches = table_columns(store, table, f, fetch=_FETCH)
    n = 0
    with pq.ParquetWriter(path, schema, compression="zstd") as writer:
        group: list[Any] = []  # record batches of the row group being gathered
        group_bytes = group_rows = 0
        while True:
            columns = next(batches, None)
            done = columns is None
            if columns is not None:
                batch = pa.record_batch([conv(columns[name]) for name, conv in convert.items()],
                                        schema=schema)  # fmt: skip
                del columns  # the Python objects go before the next fetch
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


def write_parquet(store: Store, out_dir: Path, f: Filters, *, observations: bool = False,
                  force: bool = False) -> dict[str, int]:
    """Write every table into ``out_dir``; return rows per table.

    Only this export's files are written (``vantage_points.parquet``, ...); a directory holding
    anything else is refused unless ``force`` (:func:`probe.host.output.check_output_dir`), and
    nothing is ever deleted. The files are written under temporary names and renamed into place
    once all of them are complete: an interrupted export leaves the directory as it was.
    """
    _arrow()
    out_dir = Path(out_dir)
    tables = (*TABLES, *((OBSERVATIONS,) if observations else ()))
    names = [f"{table.name}.parquet" for table in tables]
    check_output_dir(out_dir, names, force=force, what="a Parquet export")
    counts: dict[str, int] = {}
    with stage_files([out_dir / name for name in names]) as files:
        for table, staged in zip(tables, files, strict=True):
            counts[table.name] = _write_table(store, table, f, staged.tmp)
    return counts
