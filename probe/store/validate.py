"""What every row of a database must hold for probe to read it later: checked on a merge source
before anything of it enters the output.

``probe merge`` copies rows with SQL (``INSERT ... SELECT``), fast, but blind: a source with
probe's schema and a malformed row (``observations.data = '{not json'``, a BLOB where a name
belongs, ``final = 7``) would enter the output and make ``results``, ``show``, ``compare``,
``reclassify`` and the exports fail for every vantage point there. So every row of a source is
checked first against what the code that reads it assumes:

- every column's storage class against its declared type (``typeof``: an INTEGER column holds
  integers, TEXT text, REAL numbers, BLOB blobs; NULL only where the schema allows it), in one
  SQL scan per table that returns only the rows that fail;
- the values with a vocabulary (``final`` 0 or 1, ``verdict`` one of the verdicts, a run's
  ``status``), times in ISO 8601 (the exports parse them), the JSON columns' shapes (an array
  of strings, an object, header pairs), in the same scan;
- the packed observations (controls inside, schema 11) unpacked as
  :mod:`probe.store.observations` unpacks them and decoded by the codec that rebuilds them
  (:func:`probe.store.rows.check_observations`), the endpoint measurements' observation and
  control (every circumvention kind's, doh/dot/fet/wireguard included) by the codec that
  re-judges them, a run's recorded selection (``runs.options.selection``, what ``--resume``
  reads), and HTTP bodies decompressed and matched against their content address;
- references: a row whose owner is not in the source (an observation without its
  measurement) would be given another measurement's id in the output.

A row that fails is refused with everything that depends on it: a bad DNS answer refuses its
measurement, a bad run its measurements, a bad vantage point its runs. Each problem is named
by table, row and column (:class:`Problem`); the rows refused are in :class:`Screened` for the
copy to leave out. Memory stays flat: rows are read in chunks and only problems are kept (the
first :data:`MAX_PROBLEMS`, all of them counted).

What is not checked: whether text is valid UTF-8, outside the JSON documents (SQLite does not
check it, and reading every text column of every row in Python would cost more than the copy).
"""

from __future__ import annotations

import hashlib
import sqlite3
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from probe.core.codec import CodecError, checker
from probe.core.model import VERDICTS, ControlObservation, EndpointObservation
from probe.store.connection import named_rows
from probe.store.observations import ObservationsError, json_bytes
from probe.store.rows import check_observations
from probe.store.runs import RUN_STATUSES

__all__ = ["MAX_DOCUMENT", "MAX_PROBLEMS", "Declared", "Problem", "Screened", "declared", "row_checks",
           "screen"]

#: Problems kept (with table, row and reason) for the report; all are counted.
MAX_PROBLEMS = 20
#: Largest JSON document read into Python (observations, controls): a measurement's is a few kB.
MAX_DOCUMENT = 16 << 20
_FETCH = 512

# Tables whose rows are one measurement's (directly or through their parent), the entities and
# their owners; the rest (content-addressed bodies and certificates, runs' own tables) by rule.
_ENTITIES = ("vantage_points", "runs", "measurements")
_ISO = "'[0-9][0-9][0-9][0-9]-[0-1][0-9]-[0-3][0-9]T[0-2][0-9]:[0-5][0-9]:[0-6][0-9]*'"
_TIMES = frozenset({"measured_at", "started_at", "finished_at", "classified_at", "created_at",
                    "updated_at", "merged_at"})  # fmt: skip
# Tables no merge copies: the output's own (migrations, its database id) or rebuilt by triggers.
_NOT_CHECKED = ("schema_migrations", "latest", "probe_meta")
# Columns whose storage class is not the one declared: the packed observations (schema 11) are
# BLOBs in a column declared TEXT when it held JSON.
_STORED_AS = {("observations", "data"): "BLOB"}
_VOCABULARY: dict[tuple[str, str], Sequence[object]] = {
    ("measurements", "final"): (0, 1),
    ("measurements", "verdict"): VERDICTS,
    ("runs", "status"): ("running", *RUN_STATUSES),
    ("endpoint_measurements", "verdict"): VERDICTS,
    ("protocol_verdicts", "verdict"): VERDICTS,
    ("dns_queries", "control"): (0, 1),
    ("http_requests", "body_truncated"): (0, 1),
}
# Columns added by a migration (so declared without NOT NULL) that merge needs all the same.
_REQUIRED = frozenset({("vantage_points", "uid"), ("runs", "uid"), ("measurements", "uid"),
                       ("endpoint_measurements", "uid")})  # fmt: skip
# JSON columns and the shape their readers take for granted: an object, an array (the exports
# read lists of strings with str() of each element, the headers as text), an array of strings
# (reasons: joined into sentences), an object of counts, or a document the codec decodes.
_SHAPES: dict[tuple[str, str], str] = {
    ("vantage_points", "meta"): "object",
    ("runs", "lists"): "array",
    ("runs", "options"): "options",
    ("runs", "counts"): "counts",
    ("runs", "identity"): "object",
    ("measurements", "reasons"): "texts",
    ("controls", "dns_addrs"): "array",
    ("observations", "data"): "packed",
    ("endpoint_measurements", "reasons"): "texts",
    ("endpoint_measurements", "observation"): "document",
    ("endpoint_measurements", "control"): "document",
    ("protocol_verdicts", "reasons"): "texts",
    ("ooni_measurements", "inferred"): "array",
    ("ooni_endpoints", "ooni_keys"): "object",
    ("traces", "data"): "object",
}
# JSON shapes in SQL, each parsing the text once: valid JSON whose first and last characters make
# it an array or an object (json_type would parse it again); element types only where a reader
# needs them (json_each), after the empty array, most rows' value.
_SHAPE_SQL = {
    "object": "json_valid({c}) AND trim({c}) GLOB '{{*}}'",
    "array": "{c} = '[]' OR (json_valid({c}) AND trim({c}) GLOB '[[]*]')",
    "texts": ("{c} = '[]' OR (json_valid({c}) AND trim({c}) GLOB '[[]*]' "
              "AND NOT EXISTS (SELECT 1 FROM json_each({c}) WHERE type != 'text'))"),
    "counts": ("json_valid({c}) AND trim({c}) GLOB '{{*}}' "
               "AND NOT EXISTS (SELECT 1 FROM json_each({c}) WHERE type != 'integer')"),
    # A run's options: an object; its selection, when recorded (probe run --resume reads it:
    # probe/run/resume.py), an object whose lists are {name, sha256} texts, its URLs and
    # categories arrays of texts.
    "options": ("json_valid({c}) AND trim({c}) GLOB '{{*}}' AND (json_type({c}, '$.selection') "
                "IS NULL OR (json_type({c}, '$.selection') = 'object' "
                "AND json_type({c}, '$.selection.lists') = 'array' "
                "AND NOT EXISTS (SELECT 1 FROM json_each({c}, '$.selection.lists') "
                "WHERE type != 'object' OR json_type(value, '$.name') IS NOT 'text' "
                "OR json_type(value, '$.sha256') IS NOT 'text') "
                "AND coalesce(json_type({c}, '$.selection.urls'), 'null') IN ('array', 'null') "
                "AND NOT EXISTS (SELECT 1 FROM json_each({c}, '$.selection.urls') "
                "WHERE type != 'text' AND json_type({c}, '$.selection.urls') = 'array') "
                "AND coalesce(json_type({c}, '$.selection.category'), 'null') IN ('array', 'null') "
                "AND NOT EXISTS (SELECT 1 FROM json_each({c}, '$.selection.category') "
                "WHERE type != 'text' AND json_type({c}, '$.selection.category') = 'array')))"),
    # Decoded in Python by the codec (_DOCUMENTS); here only its size, so that the decoder never
    # reads a document of gigabytes into memory.
    "document": f"length(CAST({{c}} AS BLOB)) <= {MAX_DOCUMENT}",
    # Packed observations (probe/store/observations.py): unpacked and decoded in Python; here
    # only the compressed size (unpacking bounds what it inflates to).
    "packed": f"length({{c}}) <= {MAX_DOCUMENT}",
}


# Documents the store's codec rebuilds: table -> (column, check) for each of its documents.
_DOCUMENTS: dict[str, tuple[tuple[str, Callable[[str | bytes], None]], ...]] = {
    "observations": (("data", check_observations),),  # type: ignore[dict-item]
    "endpoint_measurements": (("observation", checker(EndpointObservation)),
                              ("control", checker(ControlObservation))),
}


@dataclass(frozen=True)
class Problem:
    """One row that cannot enter: where it is and why."""

    table: str
    row: int  # the row's rowid (its id), or its first key column's value (``key``)
    column: str
    reason: str
    key: str = "row"  # what ``row`` is: "row", or the key column of a table WITHOUT ROWID

    def __str__(self) -> str:
        return f"{self.table} {self.key} {self.row}: {self.column}: {self.reason}"


@dataclass
class Screened:
    """What the check of one source found: the rows refused, and why."""

    vantage_points: set[int] = field(default_factory=set)
    runs: set[int] = field(default_factory=set)
    measurements: set[int] = field(default_factory=set)
    rows: dict[str, set[int]] = field(default_factory=dict)  # other tables: rowids refused
    keys: dict[str, set[str]] = field(default_factory=dict)  # content-addressed: keys refused
    orphans: set[str] = field(default_factory=set)  # tables with rows whose owner is missing
    problems: list[Problem] = field(default_factory=list)  # the first MAX_PROBLEMS
    count: int = 0  # every problem found
    limits: dict[str, int] = field(default_factory=dict)  # table -> the last rowid checked
    damaged: str | None = None  # the structure is damaged (quick_check): nothing of it is read

    @property
    def clean(self) -> bool:
        """Nothing refused."""
        return self.count == 0

    def add(self, problem: Problem) -> None:
        """Count a problem (and keep it when there is room)."""
        self.count += 1
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(problem)


@dataclass(frozen=True)
class _Column:
    name: str
    type: str  # declared, upper case
    notnull: bool
    pk: bool


def _columns(conn: sqlite3.Connection, table: str) -> list[_Column]:
    return [_Column(r["name"], str(r["type"]).upper(), bool(r["notnull"]), bool(r["pk"]))
            for r in named_rows(conn, f"PRAGMA table_info({table})")]  # fmt: skip


def _refs(conn: sqlite3.Connection, table: str) -> dict[str, str]:
    """Column -> the table it refers to."""
    return {str(r["from"]): str(r["table"]) for r in named_rows(conn, f"PRAGMA foreign_key_list({table})")}


def _has_integer_id(conn: sqlite3.Connection, table: str) -> bool:
    cols = _columns(conn, table)
    return [c.name for c in cols if c.pk] == ["id"] and cols[0].type == "INTEGER"


def row_checks(table: str, columns: Iterable[tuple[str, str, bool]], alias: str = ""
               ) -> list[tuple[str, str]]:
    """``(column, SQL condition)`` for each column of ``table`` (name, declared type, NOT NULL):
    true when the value is what probe's readers expect. ``alias`` qualifies the columns."""
    out = []
    for name, declared, notnull in columns:
        if name == "id" and declared == "INTEGER":
            continue  # the rowid itself: SQLite keeps it an integer
        c = f"{alias}.{name}" if alias else name
        stored = _STORED_AS.get((table, name), declared)
        kind = {"INTEGER": "'integer'", "REAL": "'real', 'integer'", "TEXT": "'text'",
                "BLOB": "'blob'"}.get(stored)  # fmt: skip
        conds = [f"typeof({c}) IN ({kind})"] if kind else []
        vocab = _VOCABULARY.get((table, name))
        if vocab is not None:
            conds.append(f"{c} IN ({', '.join(repr(v) for v in vocab)})")
        if name in _TIMES and declared == "TEXT":
            conds.append(f"{c} GLOB {_ISO}")
        shape = _SHAPES.get((table, name))
        if shape is not None:
            conds.append(_SHAPE_SQL[shape].format(c=c))
        if not conds:
            continue
        cond = " AND ".join(f"({x})" for x in conds)
        required = notnull or (table, name) in _REQUIRED
        out.append((name, cond if required else f"{c} IS NULL OR ({cond})"))
    return out


#: What a table's columns are declared as in probe's schema: (name, declared type, NOT NULL).
Declared = Mapping[str, Sequence[tuple[str, str, bool]]]


def declared(conn: sqlite3.Connection) -> dict[str, list[tuple[str, str, bool]]]:
    """Every table's columns as the database on ``conn`` declares them (for probe's own
    schema: the output of a merge, migrated by this probe)."""
    names = [r["name"] for r in named_rows(
        conn, "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")]
    return {n: [(c.name, c.type, c.notnull) for c in _columns(conn, n)] for n in names}


def screen(conn: sqlite3.Connection, *, spec: Declared | None = None,
           tables: Sequence[str] | None = None,
           stop: Callable[[], bool] = lambda: False) -> Screened:
    """Check every row of the probe database on ``conn`` (opened on the source, read-only).

    ``spec`` is probe's schema (:func:`declared` of the output): the source's own declarations
    are not trusted (a file with probe's table names may declare ``name BLOB``); default: the
    source's. ``tables`` limits the check (default: every table with rules). The last rowid
    checked of each table is in ``Screened.limits``: rows added after (a probe still writing the
    source) were not checked, and the copy leaves them for the next merge. ``stop`` is asked
    between chunks; when it says so the check ends early (merge failed).
    """
    result = Screened()
    names = [r["name"] for r in named_rows(
        conn, "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' "
              f"AND name NOT IN {_NOT_CHECKED!r} ORDER BY name")]
    wanted = [n for n in names if tables is None or n in tables]
    for table in wanted:
        if stop():
            return result
        _screen_table(conn, table, result, names, stop, spec)
    if "http_bodies" in wanted and not stop():
        _screen_bodies(conn, result)
    _propagate(conn, result, names)
    return result


def _key_column(conn: sqlite3.Connection, table: str) -> str:
    """What names a row of ``table``: ``rowid``, or the first primary key column of a table
    created WITHOUT ROWID."""
    try:
        conn.execute(f"SELECT rowid FROM {table} LIMIT 0")
        return "rowid"
    except sqlite3.OperationalError:  # no such column: a WITHOUT ROWID table
        return next(c.name for c in _columns(conn, table) if c.pk)


def _screen_table(conn: sqlite3.Connection, table: str, result: Screened, names: Sequence[str],
                  stop: Callable[[], bool] = lambda: False, spec: Declared | None = None) -> None:
    info = _columns(conn, table)
    here = {c.name for c in info}
    columns = ([c for c in spec[table] if c[0] in here] if spec is not None and table in spec
               else [(c.name, c.type, c.notnull) for c in info])  # fmt: skip
    checks = row_checks(table, columns, alias="t")
    refs = _refs(conn, table)
    for col, parent in refs.items():
        # An owner missing from the source: the row would be given another row's id in the output.
        if parent in names and _has_integer_id(conn, parent):
            nullable = not next(c.notnull for c in info if c.name == col)
            exists = f"EXISTS (SELECT 1 FROM {parent} AS p WHERE p.id = t.{col})"
            checks.append((f"{col} -> {parent}",
                           f"t.{col} IS NULL OR {exists}" if nullable else exists))
    key = _key_column(conn, table)
    bound = ""
    if key == "rowid":
        limit = int(conn.execute(f"SELECT coalesce(max(rowid), 0) FROM {table}").fetchone()[0])
        result.limits[table] = limit
        bound = f"t.rowid <= {limit} AND "
    if not checks:
        return
    # Evaluated once a row (which check failed is asked after, for the rows that fail); a NULL
    # anywhere counts as a failure.
    every = "coalesce(" + " AND ".join(f"({cond})" for _, cond in checks) + ", 0)"
    documents = _DOCUMENTS.get(table, ())
    if not documents:  # SQL alone: only the rows that fail come back
        sql = f"SELECT t.{key} FROM {table} AS t WHERE {bound}NOT ({every})"
        for (k,) in conn.execute(sql).fetchall():
            _failed(conn, result, table, key, checks, k)
        return
    # A table of documents: every row comes back, checked by SQL and decoded by the codec, in
    # one pass (the documents only when SQL found the row right, their sizes included).
    owner = "t.measurement_id" if "measurement_id" in here else "NULL"
    # A document is read only within its size bound (which ``every`` checks too): a row of
    # gigabytes never comes into memory.
    cols = ", ".join(f"CASE WHEN length(CAST(t.{col} AS BLOB)) <= {MAX_DOCUMENT} THEN t.{col} END"
                     for col, _ in documents)
    sql = (f"SELECT t.{key}, {owner}, {every}, {cols} FROM {table} AS t "
           f"WHERE {bound.removesuffix(' AND ') or '1'}")
    cur = conn.execute(sql)
    while rows := cur.fetchmany(_FETCH):
        if stop():
            return
        for k, mid, ok, *values in rows:
            if not ok:
                _failed(conn, result, table, key, checks, k)
                continue
            for (col, check), data in zip(documents, values, strict=True):
                if data is None:
                    continue  # NULL where the schema allows it (SQL checked that)
                try:
                    check(data)
                except CodecError as exc:
                    result.add(Problem(table, int(k), col, str(exc)[:200]))
                    if isinstance(mid, int):
                        result.measurements.add(mid)
                    else:
                        _refuse(conn, result, table, key, k)
                    break


def _failed(conn: sqlite3.Connection, result: Screened, table: str, key: str,
            checks: Sequence[tuple[str, str]], k: object) -> None:
    """Record the first check the row ``k`` fails (asked again, for this row only)."""
    flags = conn.execute(f"SELECT {', '.join(f'coalesce(({c}), 0)' for _, c in checks)} "
                         f"FROM {table} AS t WHERE t.{key} = ?", (k,)).fetchone()
    for (name, _), ok in zip(checks, flags or [0] * len(checks), strict=True):
        if not ok:
            result.add(Problem(table, k if isinstance(k, int) else 0, name,
                               _reason(conn, table, name, k, key),
                               "row" if key == "rowid" else key))
            if "->" in name:
                result.orphans.add(table)
            _refuse(conn, result, table, key, k)
            return


def _reason(conn: sqlite3.Connection, table: str, column: str, key: object, key_col: str) -> str:
    """Why ``column`` of the row failed, in words (read once per problem: problems are few)."""
    if "->" in column:
        col, parent = (x.strip() for x in column.split("->"))
        value = conn.execute(f"SELECT {col} FROM {table} WHERE {key_col} = ?", (key,)).fetchone()
        return f"refers to {parent} {value[0] if value else '?'}, which the source does not hold"
    row = conn.execute(f"SELECT typeof({column}), substr(CAST({column} AS TEXT), 1, 40) "
                       f"FROM {table} WHERE {key_col} = ?", (key,)).fetchone()  # fmt: skip
    if row is None:
        return "invalid"
    kind, text = row
    shape = _SHAPES.get((table, column))
    if shape is not None and kind == "text":
        if shape == "document":
            return f"a JSON document over {MAX_DOCUMENT >> 20} MiB"
        return f"not {'a JSON object' if shape == 'object' else 'the expected JSON'}: {text!r}"
    if (table, column) in _VOCABULARY and kind != "null":
        return f"{text!r} is not one of {', '.join(map(str, _VOCABULARY[(table, column)]))}"
    if column in _TIMES and kind == "text":
        return f"{text!r} is not an ISO 8601 time"
    return f"a {kind.upper()} value" + (f" ({text!r})" if kind == "text" else "")


def _screen_bodies(conn: sqlite3.Connection, result: Screened) -> None:
    """Every body decompresses (within its length) to the bytes its key is the sha256 of."""
    for row in conn.execute("SELECT rowid, sha256, length, body FROM http_bodies "
                            "WHERE typeof(body) = 'blob' AND typeof(length) = 'integer'"):
        rowid, sha, length, blob = row
        try:
            z = zlib.decompressobj()
            body = z.decompress(blob, max(0, int(length)) + 1)
            ok = len(body) == length and not z.unconsumed_tail and hashlib.sha256(body).hexdigest() == sha
            reason = "does not decompress to the body its sha256 names"
        except zlib.error as exc:
            ok, reason = False, f"not zlib data ({exc})"
        if not ok:
            result.add(Problem("http_bodies", int(rowid), "body", reason))
            result.keys.setdefault("http_bodies", set()).add(str(sha))


def _refuse(conn: sqlite3.Connection, result: Screened, table: str, key_col: str, key: object) -> None:
    """Mark the row, or the unit it belongs to, as refused: a measurement's row refuses the
    measurement, a trace's hop the trace; a body or certificate its key."""
    if table in ("http_bodies", "certificates"):
        sha = conn.execute(f"SELECT sha256 FROM {table} WHERE {key_col} = ?", (key,)).fetchone()
        if sha is not None:
            result.keys.setdefault(table, set()).add(str(sha[0]))
        return
    if key_col != "rowid" and not _refs(conn, table):  # a table WITHOUT ROWID of its own
        result.keys.setdefault(table, set()).add(str(key))  # (merged_sources): its key
        return
    unit, unit_id = _unit(conn, table, key_col, key)
    if unit_id is None:
        return  # its owner is missing: never copied (result.orphans)
    if unit == "vantage_points":
        result.vantage_points.add(unit_id)
    elif unit == "runs":
        result.runs.add(unit_id)
    elif unit == "measurements":
        result.measurements.add(unit_id)
    else:  # a table of runs or vantage points (endpoint results, traces): that row
        result.rows.setdefault(unit, set()).add(unit_id)


def _unit(conn: sqlite3.Connection, table: str, key_col: str, key: object) -> tuple[str, int | None]:
    """The row that stands or falls with this one: up the references (``dns_answers`` ->
    ``dns_replies`` -> ``dns_queries`` -> ``measurements``) to an entity, or to the last row
    below the runs and vantage points (a trace for its hops)."""
    current, col_key, value = table, key_col, key
    for _ in range(6):
        if current in _ENTITIES:
            return current, value if isinstance(value, int) else None
        refs = {c: p for c, p in _refs(conn, current).items() if p not in ("certificates", "http_bodies")}
        owner = next(((c, p) for c, p in refs.items() if p not in ("runs", "vantage_points")), None)
        if owner is None:  # owned by runs or vantage points only: this row is the unit
            rowid = conn.execute(f"SELECT rowid FROM {current} WHERE {col_key} = ?", (value,)).fetchone()
            return current, None if rowid is None else int(rowid[0])
        col, parent = owner
        row = conn.execute(f"SELECT {col} FROM {current} WHERE {col_key} = ?", (value,)).fetchone()
        if row is None or not isinstance(row[0], int):
            return parent, None
        if not conn.execute(f"SELECT 1 FROM {parent} WHERE id = ?", (row[0],)).fetchone():
            return parent, None  # an orphan: its owner is not there
        current, col_key, value = parent, "id", row[0]
    return current, None


def _propagate(conn: sqlite3.Connection, result: Screened, names: Sequence[str]) -> None:
    """Refuse what depends on a refused row: a vantage point's runs, a run's measurements, the
    measurements that show a refused body or certificate, runs' own rows."""
    if result.vantage_points:
        marks = ",".join(map(str, sorted(result.vantage_points)))
        result.runs |= {r[0] for r in conn.execute(f"SELECT id FROM runs WHERE vantage_id IN ({marks})")}
        result.measurements |= {r[0] for r in conn.execute(
            f"SELECT id FROM measurements WHERE vantage_id IN ({marks})")}
    if result.runs:
        marks = ",".join(map(str, sorted(result.runs)))
        result.measurements |= {r[0] for r in conn.execute(
            f"SELECT id FROM measurements WHERE run_id IN ({marks})")}
        for table in names:
            refs = _refs(conn, table)
            col = next((c for c, p in refs.items() if p == "runs"), None)
            if col is not None and table not in _ENTITIES and "measurement_id" not in refs:
                result.rows.setdefault(table, set()).update(
                    r[0] for r in conn.execute(f"SELECT rowid FROM {table} WHERE {col} IN ({marks})"))
    for sha in result.keys.get("http_bodies", ()):
        result.measurements |= {r[0] for r in conn.execute(
            "SELECT measurement_id FROM http_requests WHERE body_ref = ?", (sha,))}
    certs = result.keys.get("certificates", set())
    for sha in certs:
        result.measurements |= {r[0] for r in conn.execute(
            "SELECT measurement_id FROM tls_handshakes WHERE leaf_sha256 = ?", (sha,))}
    if certs and "observations" in names:
        # The rest of each chain is named in the packed observations only (schema 11): read
        # them all, once, for a refused certificate (rare: a damaged row).
        wanted = [sha.encode() for sha in certs]
        for mid, blob in conn.execute("SELECT measurement_id, data FROM observations "
                                      "WHERE typeof(data) = 'blob'"):
            try:
                raw = json_bytes(blob)
            except ObservationsError:
                continue  # refused already, as undecodable
            if any(sha in raw for sha in wanted):
                result.measurements.add(mid)
