"""Results as Arrow tables, for notebooks: pandas, polars and DuckDB read them without copies.

    from probe.research import notebook as nb

    m = nb.measurements("results/all.db", vantages=["moscow"], since="2026-11-01")
    h = nb.history("results/all.db", "http://example.org/")   # every vantage point, every run
    s = nb.stability("results/all.db", last=10)               # how stable each latest verdict is
    m.to_pandas(); polars.from_arrow(m); duckdb.sql("SELECT verdict, count(*) FROM m GROUP BY 1")

Each function takes a database path (opened read-only: no migration, no write, a probe may keep
writing it) or an open :class:`probe.store.Store`, and returns a ``pyarrow.Table`` with the
types and nullability of the Parquet export (docs/research.md): times ``timestamp[ms, UTC]``,
lists ``list<string>``, columns that are never NULL declared so. Needs pyarrow
(``pip install 'censorship-probe[parquet]'``). docs/research.md, section 7, runs these examples.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from probe.core.errors import ProbeUsageError
from probe.core.net.urls import parse_url
from probe.research.export.parquet import TABLES, Columns, arrow_table
from probe.research.export.tables import STABILITY
from probe.store import Store
from probe.store import history as _history
from probe.store.export import Filters, table_columns

if TYPE_CHECKING:
    import pyarrow as pa  # type: ignore[import-untyped,import-not-found,unused-ignore]

__all__ = ["HISTORY_COLUMNS", "STABILITY_COLUMNS", "NotMeasured", "history", "measurements",
           "stability"]

T = TypeVar("T")


class NotMeasured(ProbeUsageError, LookupError):
    """The URL (or vantage point) asked about was never measured in this database."""


@contextmanager
def _opened(db: str | Path | Store) -> Iterator[Store]:
    if isinstance(db, Store):
        yield db
        return
    with Store.open(db, readonly=True) as store:
        yield store


def measurements(db: str | Path | Store, *, vantages: Sequence[str] = (), run: int | None = None,
                 since: str | None = None, all_attempts: bool = False) -> pa.Table:
    """The measurements (final attempts, unless ``all_attempts``) as the Parquet export's
    ``measurements`` table: ids, where (the run's network), the URL, the verdict, its reasons."""
    table = next(t for t in TABLES if t.name == "measurements")
    columns: Columns = [(name, kind, name in table.required) for name, kind, _ in table.columns]
    with _opened(db) as store:
        f = Filters(tuple(vantages), run, since, all_attempts)
        # Converted a fetch at a time: Python holds one fetch's values, Arrow the rest (compact).
        parts = [arrow_table(columns, chunk) for chunk in table_columns(store, table, f, fetch=4096)]
    if not parts:
        return arrow_table(columns, {name: [] for name, _, _ in columns})
    return _concat(parts)


def _concat(parts: Sequence[pa.Table]) -> pa.Table:
    """Tables of one schema as one (their chunks kept, nothing copied)."""
    # pyarrow is the optional parquet extra (arrow_table has imported it by now).
    import pyarrow as pa  # type: ignore[import-untyped,import-not-found,unused-ignore]

    return pa.concat_tables(parts)


#: The columns of :func:`history` (name, kind, never NULL).
HISTORY_COLUMNS: Columns = (
    ("vantage", "str", True), ("vantage_uid", "str", True), ("run_uid", "str", True),
    ("measurement_uid", "str", True), ("url", "str", True), ("measured_at", "ts", True),
    ("attempt", "i32", True), ("verdict", "str", True), ("stage", "str", False),
    ("hop", "i32", False), ("reasons", "strlist", True), ("classifier_version", "str", True),
    ("asn", "i64", False), ("country", "str", False), ("network_source", "str", False),
)


def canonical_url(url: str) -> str:
    """``url`` as probe stores it (the test lists' URL rules: lower-case host, punycode, a path)."""
    return parse_url(url).url


def history_rows(store: Store, url: str, vantage: str | None = None) -> list[_history.HistoryRow]:
    """Every final verdict of ``url`` (canonicalised; a bare domain means its one measured URL)
    at every vantage point (or ``vantage``), oldest first; :class:`NotMeasured` when there is
    none (naming URLs of its domain)."""
    if "://" not in url:  # a bare domain: its URL, when it has only one
        found = _history.known_urls(store, url.strip().lower().rstrip("."))
        if len(found) > 1:
            raise NotMeasured(f"{url}: several URLs measured on it, give one: {', '.join(found)}")
        url = found[0] if found else f"http://{url}/"
    target = parse_url(url)
    rows = list(_history.url_history(store, target.url, vantage))
    if not rows:
        where = f" at vantage point {vantage!r}" if vantage else ""
        others = _history.known_urls(store, target.host)
        hint = f" (measured on {target.host}: {', '.join(others)})" if others else ""
        raise NotMeasured(f"{target.url} was never measured{where} in {store.path}{hint}")
    return rows


def _columns(rows: Sequence[T], columns: Columns, get: Callable[[T, str], Any]) -> dict[str, list[Any]]:
    return {name: [get(r, name) for r in rows] for name, _, _ in columns}


def history(db: str | Path | Store, url: str, *, vantage: str | None = None) -> pa.Table:
    """A URL's history: every final verdict of it, at every vantage point (or ``vantage``), in
    every run, oldest first per vantage point, with each run's network (:data:`HISTORY_COLUMNS`).
    Raises :class:`NotMeasured` when the URL was never measured."""
    with _opened(db) as store:
        rows = history_rows(store, url, vantage)
    return arrow_table(HISTORY_COLUMNS, _columns(rows, HISTORY_COLUMNS, getattr))


#: The columns of :func:`stability` (name, kind, never NULL): the exports' ``stability`` table.
STABILITY_COLUMNS: Columns = tuple((c.name, c.kind, c.required) for c in STABILITY)


def stability_rows(store: Store, *, last: int = 10, vantages: Sequence[str] = (),
                   url: str | None = None) -> list[_history.StabilityRow]:
    """Per vantage point and URL: the latest verdict and how many of the last ``last`` runs that
    measured it agree (:func:`probe.store.history.stability`)."""
    ids: list[int] = []
    if vantages:
        try:
            ids = list(store.vantage_ids(vantages).values())
        except KeyError as exc:
            raise NotMeasured(f"no vantage point {exc.args[0]} in {store.path}") from None
    return list(_history.stability(store, last, ids, canonical_url(url) if url else None))


def stability(db: str | Path | Store, *, last: int = 10, vantages: Sequence[str] = (),
              url: str | None = None) -> pa.Table:
    """How stable each latest verdict is: per vantage point and URL, the latest final verdict,
    the runs considered (the last ``last`` that measured the URL), how many agree with it, and
    ``stability`` = agree / runs (1.0: every one of them said the same)."""
    with _opened(db) as store:
        rows = stability_rows(store, last=last, vantages=vantages, url=url)

    def get(r: _history.StabilityRow, name: str) -> Any:
        return r.agree / r.runs if name == "stability" else getattr(r, name)

    return arrow_table(STABILITY_COLUMNS, _columns(rows, STABILITY_COLUMNS, get))


def reasons(row: _history.HistoryRow) -> list[str]:
    """A history row's reasons as a list."""
    return [] if row.reasons == "[]" else [str(x) for x in json.loads(row.reasons)]
