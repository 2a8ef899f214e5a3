"""Parquet export: one file per entity (or a partitioned dataset), typed columns, provenance.

``probe export --format parquet --output DIR`` writes DIR/vantage_points.parquet, runs.parquet,
measurements.parquet and protocol_verdicts.parquet (the QUIC and ECH tests' verdicts; read
by SQL: probe.store.export.TABLES), and dns_queries, tcp_connects,
tls_handshakes, http_requests and controls (made from the stored observations:
probe/research/export/tables.py), with dns_replies.parquet, certificates.parquet and
observations.parquet on request. Types are fixed (docs/research.md lists them): times
``timestamp[ms, UTC]``, lists ``list<string>``, lists of records ``list<struct<...>>`` (HTTP
headers, a control's per-address results), verdict counts a struct, flags ``bool``, counts
``int32``/``int64``; a column the schema never leaves NULL is declared non-null, so ClickHouse
loads a file into a MergeTree table as it is (no ``Nullable`` key columns) and DuckDB reads the
same types. Rows refer to each other by uid (``measurement_uid``, ``run_uid``,
``vantage_uid``), never by local integer ids.

Every file carries its provenance as key-value metadata (``probe.*`` keys: probe's version, the
schema version, the classifier versions of its verdicts and the installed one, the export
time, the filters, the database's uid and those merged into it).

``--partition-by country,date,vantage`` writes a hive-style dataset instead:
DIR/<table>/country=RU/date=2026-11-20/part-<database uid>-<filters>-<n>.parquet (the run's
country, the measurement's UTC date, its vantage point; runs and vantage points unpartitioned,
DIR/<table>/part-...). File names are unique per source database and selection, so exports of
many probes extend one dataset without collisions, and exporting the same selection again
replaces exactly its own files.

Rows are read ``_FETCH`` at a time and written one record batch at a time: memory stays flat.
Needs pyarrow (``pip install 'censorship-probe[parquet]'``).
"""

from __future__ import annotations

import base64
import gc
import hashlib
import json
import os
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import msgspec

from probe import __version__
from probe.core.errors import ProbeError
from probe.core.model import VERDICTS
from probe.host.output import Staged, check_output_dir
from probe.judge.classify import CLASSIFIER_VERSION
from probe.research.export.tables import (
    CERTIFICATES,
    OBSERVED_TABLES,
    STABILITY,
    ObservedTable,
    rows_of,
)
from probe.store.export import (
    TABLES,
    CertificateRow,
    ExportTable,
    Filters,
    certificates,
    classifier_versions,
    observed,
    table_columns,
)
from probe.store.history import stability

if TYPE_CHECKING:
    import pyarrow as pa  # type: ignore[import-untyped,import-not-found,unused-ignore]

    from probe.store import Store

__all__ = ["PARTITIONS", "TABLES", "ParquetMissing", "arrow_schema", "arrow_table", "provenance",
           "write_parquet"]

_dumps = msgspec.json.encode

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
            "Parquet export needs pyarrow: pip install 'censorship-probe[parquet]' (or pyarrow)"
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


def _types(pa: Any) -> dict[str, Any]:
    """Arrow type of each column kind (probe.store.export.KINDS, research/export/tables.py)."""
    def rec(*fields: tuple[str, Any, bool]) -> Any:
        return pa.list_(pa.field("item", pa.struct(
            [pa.field(n, t, nullable=not req) for n, t, req in fields]), nullable=False))

    s, i32, i64 = pa.string(), pa.int32(), pa.int64()
    return {
        "str": s, "i32": i32, "i64": i64, "f64": pa.float64(), "bool": pa.bool_(),
        "ts": pa.timestamp("ms", tz="UTC"), "bytes": pa.binary(),
        "strlist": pa.list_(pa.field("item", s, nullable=False)),
        "counts": pa.struct([pa.field(v, i64, nullable=False) for v in VERDICTS]),
        "pairs": rec(("name", s, True), ("value", s, True)),
        "ctl_tcp": rec(("ip", s, True), ("port", i32, True), ("ok", pa.bool_(), True),
                       ("failure", s, False)),
        "ctl_tls": rec(("ip", s, True), ("port", i32, True), ("server_name", s, True),
                       ("ok", pa.bool_(), True), ("failure", s, False)),
        "ip_info": rec(("ip", s, True), ("asn", i64, True), ("flags", s, True)),
    }  # fmt: skip


Columns = Sequence[tuple[str, str, bool]]  # (name, kind, required)


def _schema(columns: Columns, metadata: Mapping[str, str] | None = None) -> pa.Schema:
    pa = _arrow()
    types = _types(pa)
    return pa.schema([pa.field(name, types[kind], nullable=not req) for name, kind, req in columns],
                     metadata=metadata)


def _sql_columns(table: ExportTable) -> Columns:
    return [(name, kind, name in table.required) for name, kind, _ in table.columns]


def _observed_columns(table: ObservedTable) -> Columns:
    return [(c.name, c.kind, c.required) for c in table.columns]


def arrow_schema(table: ExportTable | ObservedTable) -> pa.Schema:
    """The fixed Arrow schema of an exported table (without the provenance metadata)."""
    if isinstance(table, ObservedTable):
        return _schema(_observed_columns(table))
    return _schema(_sql_columns(table))


def _json_list(text: str | None) -> list[str] | None:
    if text is None:
        return None
    return [] if text == "[]" else [str(x) for x in json.loads(text)]


def _counts(text: str | None) -> dict[str, int] | None:
    if text is None:
        return None
    got = json.loads(text)
    return {v: int(got.get(v, 0)) for v in VERDICTS}


def _array(kind: str, typ: Any, col: Sequence[Any], *, sql: bool) -> Any:
    """One column as an Arrow array: SQL values (JSON text for lists) or observed values."""
    pa = _arrow()
    if kind == "ts":
        # ISO 8601 text ("...T11:52:28.123Z") parses in Arrow's own cast, not row by row.
        return pa.array(col, pa.string()).cast(typ)
    if kind == "bool":
        return pa.array([None if x is None else int(x) for x in col], pa.int64()).cast(typ)
    if kind == "strlist" and sql:
        return pa.array([_json_list(x) for x in col], typ)
    if kind == "counts":
        return pa.array([_counts(x) for x in col], typ)
    if kind == "bytes":  # DNS wire data, base64 in the observations
        return pa.array([base64.b64decode(x) if isinstance(x, str) else x for x in col], typ)
    return pa.array(col, typ)


def arrow_table(columns: Columns, data: Mapping[str, Sequence[Any]], *, sql: bool = True
                ) -> pa.Table:
    """Columns of values (SQL values when ``sql``: JSON text for lists) as an Arrow table with
    the export's types and nullability (the notebook API, probe/research/notebook.py)."""
    pa = _arrow()
    schema = _schema(columns)
    return pa.table([_array(kind, schema.field(name).type, data[name], sql=sql)
                     for name, kind, _ in columns], schema=schema)


class _File:
    """One Parquet file being written: record batches gathered into row groups of bounded size."""

    def __init__(self, path: Path, schema: Any, columns: Columns, *, sql: bool, group_bytes: int
                 ) -> None:
        # pyarrow is the optional parquet extra: imported once an export is written (_arrow()).
        import pyarrow.parquet as pq  # type: ignore[import-untyped,import-not-found,unused-ignore]

        self.path, self.schema, self.sql = path, schema, sql
        self.kinds = [(name, kind) for name, kind, _ in columns]
        self.group_bytes = group_bytes
        path.parent.mkdir(parents=True, exist_ok=True)
        # A temporary name of its own (created exclusively: never a file someone else has),
        # put in place by commit() once the whole export is written (probe/host/output.py).
        self.staged = Staged(path)
        self.writer = pq.ParquetWriter(self.staged.tmp, schema, compression="zstd")
        self.group: list[Any] = []
        self.bytes = self.rows = self.total = 0

    def add(self, columns: Mapping[str, Sequence[Any]]) -> None:
        pa = _arrow()
        batch = pa.record_batch(
            [_array(kind, self.schema.field(name).type, columns[name], sql=self.sql)
             for name, kind in self.kinds], schema=self.schema)
        self.group.append(batch)
        self.bytes += batch.nbytes
        self.rows += batch.num_rows
        self.total += batch.num_rows
        if self.bytes >= self.group_bytes or self.rows >= _GROUP_ROWS:
            self.flush()

    def flush(self) -> None:
        if self.group:
            pa = _arrow()
            self.writer.write_table(pa.Table.from_batches(self.group, self.schema),
                                    row_group_size=self.rows)
            self.group, self.bytes, self.rows = [], 0, 0

    def close(self) -> None:
        """Finish writing (the file stays under its temporary name until :meth:`commit`)."""
        self.flush()
        self.writer.close()

    def commit(self) -> None:
        self.staged.commit()

    def abort(self) -> None:
        if self.writer.is_open:
            self.writer.close()
        self.staged.discard()


#: How a partition value is read from a measurement's row: the run's country, the UTC date.
PARTITIONS = ("country", "date", "vantage")
_MAX_OPEN = 32  # partition files open at once (each holds at most its row group)


class _Sink:
    """Where one table's rows go: one file, or one file per partition (hive layout)."""

    def __init__(self, root: Path, name: str, columns: Columns, metadata: Mapping[str, str], *,
                 sql: bool, partition_by: Sequence[str], stem: str) -> None:
        self.root, self.name, self.columns, self.sql = root, name, columns, sql
        self.schema = _schema(columns, {**metadata, "probe.table": name})
        self.partition_by, self.stem = tuple(partition_by), stem
        self.files: dict[tuple[str, ...], _File] = {}
        self.count: dict[tuple[str, ...], int] = {}
        self.done: list[_File] = []
        self.rows = 0

    def _file(self, key: tuple[str, ...]) -> _File:
        f = self.files.pop(key, None)
        if f is None:
            if len(self.files) >= _MAX_OPEN:  # close the least recently used
                old = next(iter(self.files))
                self._close(old)
            n = self.count.get(key, 0)
            self.count[key] = n + 1
            if self.stem:
                parts = [f"{k}={quote(v, safe='')}" for k, v in zip(self.partition_by, key, strict=True)]
                path = self.root.joinpath(self.name, *parts, f"part-{self.stem}-{n}.parquet")
            else:
                path = self.root / f"{self.name}.parquet"
            group = _GROUP_BYTES if not self.partition_by else _GROUP_BYTES // 4
            f = _File(path, self.schema, self.columns, sql=self.sql, group_bytes=group)
        self.files[key] = f  # most recently used last
        return f

    def _close(self, key: tuple[str, ...]) -> None:
        f = self.files.pop(key)
        f.close()
        self.done.append(f)

    def add(self, columns: Mapping[str, Sequence[Any]], keys: Sequence[tuple[str, ...]] | None) -> None:
        n = len(next(iter(columns.values()))) if columns else 0
        self.rows += n
        if not keys:
            self._file(()).add(columns)
            return
        by_key: dict[tuple[str, ...], list[int]] = {}
        for i, key in enumerate(keys):
            by_key.setdefault(key, []).append(i)
        for key, idx in by_key.items():
            self._file(key).add({c: [v[i] for i in idx] for c, v in columns.items()})

    def close(self) -> None:
        if not self.files and not self.done and not self.partition_by:
            self._file(())  # an empty selection still writes the table, with its schema
        for key in list(self.files):
            self._close(key)

    @property
    def paths(self) -> list[Path]:
        """The files written (closed)."""
        return [f.path for f in self.done]

    def commit(self) -> None:
        """Put every file written in place (after every table of the export is complete)."""
        for f in self.done:
            f.commit()

    def abort(self) -> None:
        for f in (*self.files.values(), *self.done):
            f.abort()
        self.files.clear()


def _partition(values: Mapping[str, Any], by: Sequence[str]) -> tuple[str, ...]:
    """The partition of a measurement: its run's country, its UTC date, its vantage point."""
    out = []
    for key in by:
        if key == "date":
            out.append(str(values["measured_at"])[:10])
        else:
            v = values[key]
            out.append("unknown" if v is None or v == "" else str(v))
    return tuple(out)


def provenance(store: Store, f: Filters) -> dict[str, str]:
    """The key-value metadata every exported file carries (``probe.*`` keys)."""
    own, merged = store.database_uids()
    return {
        "probe.version": __version__,
        "probe.schema_version": str(store.schema_version()),
        "probe.classifier_versions": json.dumps(classifier_versions(store, f)),
        "probe.classifier_version_installed": CLASSIFIER_VERSION,
        "probe.exported_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "probe.filters": json.dumps({"vantages": list(f.vantages), "run_id": f.run_id,
                                     "since": f.since, "all_attempts": f.all_attempts},
                                    sort_keys=True),
        "probe.database_uid": own,
        "probe.merged_database_uids": json.dumps(merged),
    }


def _stem(meta: Mapping[str, str]) -> str:
    """Part of every file name of a partitioned export: the database's uid and a digest of the
    selection, so that two databases, or two selections of one, never write the same file."""
    digest = hashlib.sha256(meta["probe.filters"].encode()).hexdigest()[:8]
    return f"{meta['probe.database_uid']}-{digest}"


def _write_all(store: Store, root: Path, f: Filters, meta: Mapping[str, str], *,
               extra: frozenset[str], observations: bool, partition_by: Sequence[str],
               stem: str, stability_runs: int) -> tuple[dict[str, int], set[Path]]:
    """Every table into ``root`` (one file per table, or partitions); rows per table, and the
    files written."""
    sinks: list[_Sink] = []
    # Hundreds of thousands of small dicts and lists (decoded observations, rows) live for a
    # page at a time: the cyclic collector would walk them again and again (decoding took 200
    # instead of 40 us a measurement). They hold no cycles; reference counting frees them.
    collecting = gc.isenabled()
    gc.disable()

    def sink(name: str, columns: Columns, *, sql: bool, partitioned: bool = True) -> _Sink:
        s = _Sink(root, name, columns, meta, sql=sql,
                  partition_by=partition_by if partitioned else (), stem=stem)
        sinks.append(s)
        return s

    try:
        for table in TABLES:  # vantage points, runs, measurements, protocol verdicts: by SQL
            is_m = table.child  # a measurement's row, partitioned like it
            out = sink(table.name, _sql_columns(table), sql=True, partitioned=is_m)
            for columns in table_columns(store, table, f, fetch=_FETCH):
                parts = None
                if is_m and partition_by:
                    parts = [_partition(dict(zip(columns, row, strict=True)), partition_by)
                             for row in zip(*columns.values(), strict=True)]
                out.add(columns, parts)
                del columns
        # How stable each latest verdict is, per vantage point (of the selection) and URL.
        ids = list(store.vantage_ids(f.vantages).values()) if f.vantages else []
        out = sink("stability", [(c.name, c.kind, c.required) for c in STABILITY], sql=False,
                   partitioned=False)
        batch: list[Any] = []
        for stable in (*stability(store, stability_runs, ids), None):
            if stable is not None:
                batch.append(stable)
            if batch and (stable is None or len(batch) >= _FETCH):
                out.add({c.name: [r.agree / r.runs if c.name == "stability" else getattr(r, c.name)
                                  for r in batch] for c in STABILITY}, None)
                batch = []
        wanted = [t for t in OBSERVED_TABLES if t.default or t.name in extra]
        outs = {t.name: sink(t.name, _observed_columns(t), sql=False) for t in wanted}
        obs_out = (sink("observations", [("measurement_uid", "str", True), ("data", "str", True)],
                        sql=False) if observations else None)
        leaves: dict[str, tuple[str | None, str | None, str | None]] = {}
        chains: set[str] = set()
        cert_out = (sink("certificates", [(c.name, c.kind, c.required) for c in CERTIFICATES],
                         sql=False, partitioned=False) if "certificates" in extra else None)
        seen_certs: set[str] = set()

        def leaf(sha: str) -> tuple[str | None, str | None, str | None]:
            return leaves.get(sha, (None, None, None))

        for page in observed(store, f, chunk=_FETCH // 2):
            wanted_leaves = {t["cert_chain_sha256"][0] for r in page for h in r.data.get("hops") or ()
                             for t in h.get("tls") or () if t.get("cert_chain_sha256")}
            missing = sorted(wanted_leaves - leaves.keys())
            if len(leaves) > 10_000:
                leaves.clear()
                missing = sorted(wanted_leaves)
            for c in certificates(store, missing):
                leaves[c.sha256] = (c.subject, c.issuer, c.not_after)
            rows: dict[str, list[dict[str, Any]]] = {name: [] for name in outs}
            part_of: dict[str, list[tuple[str, ...]]] = {name: [] for name in outs}
            for r in page:
                part = _partition(r._asdict(), partition_by) if partition_by else ()
                for name, row in rows_of(r.uid, r.data, leaf, chains):
                    if name in rows:
                        rows[name].append(row)
                        part_of[name].append(part)
            for name, sink_ in outs.items():
                if rows[name]:
                    cols = [c for c, _, _ in sink_.columns]
                    sink_.add({c: [row[c] for row in rows[name]] for c in cols},
                              part_of[name] if partition_by else None)
            if obs_out is not None:
                obs_out.add({"measurement_uid": [r.uid for r in page],
                             "data": [_dumps(r.data).decode() for r in page]},
                            [_partition(r._asdict(), partition_by) for r in page]
                            if partition_by else None)
            if cert_out is not None and chains - seen_certs:
                new = sorted(chains - seen_certs)
                seen_certs.update(new)
                chains.clear()
                got: list[CertificateRow] = list(certificates(store, new))
                if got:
                    cert_out.add({c.name: [getattr(g, c.name) for g in got] for c in CERTIFICATES},
                                 None)
            chains.clear()
        for s in sinks:
            s.close()
        # Every file is complete: each takes its name, one rename after the other.
        for s in sinks:
            s.commit()
    except BaseException:
        for s in sinks:
            s.abort()
        raise
    finally:
        if collecting:
            gc.enable()
    return {s.name: s.rows for s in sinks}, {p for s in sinks for p in s.paths}


def _names(extra: frozenset[str], observations: bool) -> list[str]:
    """The tables an export writes (each a file NAME.parquet, or a directory NAME of a dataset)."""
    names = [t.name for t in TABLES] + ["stability"]
    names += [t.name for t in OBSERVED_TABLES if t.default or t.name in extra]
    names += ["observations"] if observations else []
    names += ["certificates"] if "certificates" in extra else []
    return names


def write_parquet(store: Store, out_dir: Path, f: Filters, *, observations: bool = False,
                  dns_replies: bool = False, certificates: bool = False,
                  partition_by: Sequence[str] = (), stability_runs: int = 10,
                  force: bool = False) -> dict[str, int]:
    """Write every table into ``out_dir`` or, with ``partition_by``, into the dataset
    ``out_dir``; return rows per table.

    Only this export's files are written (probe/host/output.py): ``vantage_points.parquet``,
    ... or, in a dataset, ``TABLE/KEY=VALUE/part-UID-DIGEST-N.parquet`` named by this database's
    uid and the selection's digest. A directory holding anything else (for a dataset: anything
    but its tables' directories, which other databases' exports extend) is refused unless
    ``force`` (:func:`probe.host.output.check_output_dir`). The files are written under
    temporary names and renamed into place once all of them are complete: an interrupted
    export leaves the directory as it was. Nothing is deleted but, in a dataset, this
    database's own files of the same selection that the export did not write again (a partition
    that no longer has rows): files an earlier export of this very database and selection wrote.
    """
    _arrow()
    unknown = [p for p in partition_by if p not in PARTITIONS]
    if unknown:
        raise ValueError(f"cannot partition by {', '.join(unknown)} (only {', '.join(PARTITIONS)})")
    out_dir = Path(out_dir)
    meta = {**provenance(store, f), "probe.stability_runs": str(stability_runs)}
    extra = frozenset(n for n, on in (("dns_replies", dns_replies), ("certificates", certificates))
                      if on)
    names = _names(extra, observations)
    if partition_by:
        stem = _stem(meta)
        check_output_dir(out_dir, names, force=force, what="a partitioned Parquet export")
        # This database's files of this selection from an earlier export, and only those: an
        # export into the dataset replaces its own files, never another probe's.
        old = [p for p in out_dir.rglob(f"part-{stem}-*.parquet") if p.is_file()]
        counts, written = _write_all(store, out_dir, f, meta, extra=extra,
                                     observations=observations, partition_by=partition_by,
                                     stem=stem, stability_runs=stability_runs)
        for path in old:  # written again: replaced; not written again: stale
            if path not in written:
                path.unlink(missing_ok=True)
        return counts
    check_output_dir(out_dir, [f"{n}.parquet" for n in names], force=force,
                     what="a Parquet export")
    counts, _ = _write_all(store, out_dir, f, meta, extra=extra, observations=observations,
                           partition_by=(), stem="", stability_runs=stability_runs)
    return counts
