"""The verdicts of the opt-in protocol tests (``probe run --quic``, ``--ech``) in a results database.

One row per measurement and test in ``protocol_verdicts`` (written with the measurement by
:mod:`probe.store.writing`); these are the named read queries over it, and the columns the CSV
export reads of it (:data:`PROTOCOL_COLUMNS`).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

from probe.core.model import ProtocolVerdict
from probe.store.connection import filters, named_rows, scalar, typed_rows, verdicts_in_order

if TYPE_CHECKING:
    from probe.store.database import Store

__all__ = [
    "PROTOCOL_COLUMNS",
    "RESULT_KEYS",
    "SUITES",
    "ProtocolCell",
    "ProtocolSummary",
    "latest_protocol_run",
    "latest_protocol_verdicts",
    "protocol_results",
    "protocol_summary",
    "protocol_verdicts_between",
    "protocol_verdicts_of",
    "run_has_protocol",
    "run_protocol_counts",
]

#: The protocol tests, in the order they run (probe.measure.protocols.requested).
SUITES = ("quic", "ech")

#: Each key of a protocol result (`probe results --suite quic --json`), in output order, with
#: the column it is read from (rows are read by name).
_RESULT_COLUMNS = (
    ("id", "m.id"), ("run_id", "m.run_id"), ("vantage", "v.name"), ("url", "m.url"),
    ("category", "m.category"), ("measured_at", "m.measured_at"), ("suite", "p.suite"),
    ("verdict", "p.verdict"), ("stage", "p.stage"), ("hop", "p.hop"), ("reasons", "p.reasons"),
    ("web_verdict", "m.verdict"), ("classifier_version", "p.classifier_version"),
)  # fmt: skip
#: Keys of a protocol result, in output order.
RESULT_KEYS = tuple(key for key, _ in _RESULT_COLUMNS)
_SELECT = "SELECT " + ", ".join(f"{column} AS {key}" for key, column in _RESULT_COLUMNS)
_FROM = ("FROM protocol_verdicts p JOIN measurements m ON m.id = p.measurement_id "
         "JOIN vantage_points v ON v.id = m.vantage_id")  # fmt: skip

#: The CSV export's columns of the QUIC and ECH verdicts (``quic_verdict``, ``quic_reasons``,
#: ``ech_verdict``, ``ech_reasons``), each with the SQL that reads it for ``measurements AS m``
#: (NULL for a URL measured without the test): :data:`probe.store.export.MEASUREMENT_COLUMNS`.
PROTOCOL_COLUMNS: dict[str, str] = {
    f"{suite}_{what}": f"(SELECT p.{what} FROM protocol_verdicts AS p WHERE p.measurement_id = m.id "
                       f"AND p.suite = '{suite}')"
    for suite in SUITES for what in ("verdict", "reasons")
}  # fmt: skip


def _result(row: sqlite3.Row) -> dict[str, Any]:
    d = {key: row[key] for key in RESULT_KEYS}
    d["reasons"] = json.loads(d["reasons"])
    return d


class _VerdictRow(NamedTuple):
    """One row of ``protocol_verdicts``."""

    measurement_id: int
    suite: str
    verdict: str
    stage: str | None
    hop: int | None
    reasons: str  # JSON list
    classifier_version: str


def _verdict(r: _VerdictRow) -> ProtocolVerdict:
    return ProtocolVerdict(r.suite, r.verdict, r.stage, r.hop, tuple(json.loads(r.reasons)),
                           r.classifier_version)


_VERDICT_COLUMNS = "measurement_id, suite, verdict, stage, hop, reasons, classifier_version"
# The order the tests run in (SUITES): quic, then ech.
_ORDER = "ORDER BY measurement_id, CASE suite WHEN 'quic' THEN 0 WHEN 'ech' THEN 1 ELSE 2 END, suite"


def protocol_verdicts_of(store: Store, measurement_id: int) -> tuple[ProtocolVerdict, ...]:
    """The stored protocol verdicts of one measurement (quic first, then ech)."""
    rows = typed_rows(store.conn, _VerdictRow, f"SELECT {_VERDICT_COLUMNS} FROM protocol_verdicts "
                      f"WHERE measurement_id = ? {_ORDER}", (measurement_id,))  # fmt: skip
    return tuple(_verdict(r) for r in rows)


def protocol_verdicts_between(store: Store, lo: int, hi: int) -> dict[int, tuple[ProtocolVerdict, ...]]:
    """measurement id -> its protocol verdicts, for the ids from ``lo`` to ``hi`` (exports read
    them a chunk of measurements at a time)."""
    out: dict[int, list[ProtocolVerdict]] = {}
    for r in typed_rows(store.conn, _VerdictRow, f"SELECT {_VERDICT_COLUMNS} FROM protocol_verdicts "
                        f"WHERE measurement_id BETWEEN ? AND ? {_ORDER}", (lo, hi)):  # fmt: skip
        out.setdefault(r.measurement_id, []).append(_verdict(r))
    return {k: tuple(v) for k, v in out.items()}


def latest_protocol_run(store: Store, suite: str, vantage: str | None = None) -> int | None:
    """The newest run with ``suite`` verdicts (of ``vantage`` when given), or None."""
    where, params = filters(("v.name = ?", vantage))
    run_id = scalar(store.conn, f"SELECT max(m.run_id) {_FROM} WHERE p.suite = ?{where}",
                    [suite, *params])  # fmt: skip
    return None if run_id is None else int(run_id)


class _VerdictCount(NamedTuple):
    vantage: str
    verdict: str
    n: int


class _NotOkUrl(NamedTuple):
    url: str
    bad: int  # at how many vantage points it is blocked or reset


class ProtocolSummary(NamedTuple):
    """What the report shows of one protocol test (:func:`protocol_summary`)."""

    #: vantage point -> verdict -> how many URLs' latest verdict it is
    counts: dict[str, dict[str, int]]
    #: the URLs not ok somewhere that are shown, those most often blocked or reset first
    urls: list[str]
    #: how many URLs are not ok somewhere, in all
    total: int


def protocol_summary(store: Store, suite: str, vantages: Sequence[str], limit: int) -> ProtocolSummary:
    """Per vantage point, how many URLs' latest ``suite`` verdict is each verdict; and the URLs
    (at most ``limit``, those most often not ok first) whose latest verdict is not ok somewhere,
    with how many there are in all. Grouped queries over ``latest``: what is read is bounded."""
    marks = ",".join("?" * len(vantages))
    base = ("FROM latest l JOIN protocol_verdicts p ON p.measurement_id = l.measurement_id "
            f"JOIN vantage_points v ON v.id = l.vantage_id WHERE p.suite = ? AND v.name IN ({marks})")
    counts: dict[str, dict[str, int]] = {}
    for c in typed_rows(store.conn, _VerdictCount,
                        f"SELECT v.name AS vantage, p.verdict, count(*) AS n {base} "
                        "GROUP BY v.name, p.verdict", (suite, *vantages)):  # fmt: skip
        counts.setdefault(c.vantage, {})[c.verdict] = c.n
    urls = [r.url for r in typed_rows(
        store.conn, _NotOkUrl,
        f"SELECT l.url, sum(p.verdict IN ('blocked', 'reset')) AS bad {base} AND p.verdict != 'ok' "
        "GROUP BY l.url ORDER BY bad DESC, l.url LIMIT ?", (suite, *vantages, limit))]
    total = scalar(store.conn, f"SELECT count(DISTINCT l.url) {base} AND p.verdict != 'ok'",
                   (suite, *vantages))  # fmt: skip
    return ProtocolSummary(counts, urls, int(total or 0))


class _SuiteCount(NamedTuple):
    suite: str
    verdict: str
    n: int


def run_protocol_counts(store: Store, run_id: int) -> dict[str, dict[str, int]]:
    """suite -> verdict -> how many URLs of the run (their final attempt) got it."""
    out: dict[str, dict[str, int]] = {}
    for c in typed_rows(store.conn, _SuiteCount,
                        "SELECT p.suite, p.verdict, count(*) AS n FROM protocol_verdicts p "
                        "JOIN measurements m ON m.id = p.measurement_id "
                        "WHERE m.run_id = ? AND m.final = 1 GROUP BY 1, 2", (run_id,)):  # fmt: skip
        out.setdefault(c.suite, {})[c.verdict] = c.n
    return out


def run_has_protocol(store: Store, run_id: int, suite: str) -> bool:
    """True when the run measured URLs with the protocol test ``suite`` (``quic``, ``ech``)."""
    return scalar(store.conn,
                  "SELECT 1 FROM measurements m JOIN protocol_verdicts p ON p.measurement_id = m.id "
                  "WHERE m.run_id = ? AND p.suite = ? LIMIT 1", (run_id, suite)) is not None  # fmt: skip


def protocol_results(
    store: Store,
    suite: str,
    run_id: int | None = None,
    *,
    verdicts: Iterable[str] | None = None,
    vantage: str | None = None,
    limit: int | None = None,
) -> Iterator[dict[str, Any]]:
    """The ``suite`` verdicts of the final attempt of each URL (of one run, or all), oldest
    first, as dicts with :data:`RESULT_KEYS`."""
    where, params = filters(("m.run_id = ?", run_id), ("v.name = ?", vantage))
    sql = f"{_SELECT} {_FROM} WHERE p.suite = ? AND m.final = 1{where}"
    params.insert(0, suite)
    tail, more = verdicts_in_order("p.verdict", verdicts, "m.id", limit)
    for row in named_rows(store.conn, sql + tail, params + more):
        yield _result(row)


class ProtocolCell(NamedTuple):
    """The ``suite`` verdict of one URL's latest measurement at one vantage point."""

    url: str
    category: str | None
    vantage: str
    verdict: str
    stage: str | None
    reasons: tuple[str, ...]
    measured_at: str


class _CellRow(NamedTuple):
    url: str
    category: str | None
    vantage: str
    verdict: str
    stage: str | None
    reasons: str  # JSON list
    measured_at: str


def latest_protocol_verdicts(
    store: Store, suite: str, vantages: Sequence[str] | None = None,
    since: str | None = None, *, urls: Sequence[str] | None = None,
) -> list[ProtocolCell]:
    """The ``suite`` verdict of the latest measurement of every URL (of ``urls``) at every
    vantage point (of ``vantages``, measured at or after ``since``) that has one, ordered by URL
    and vantage."""
    where, params = filters(("l.measured_at >= ?", since))
    if urls is not None:
        where += f" AND l.url IN ({','.join('?' * len(urls))})" if urls else " AND 0"
        params.extend(urls)
    if vantages:
        where += f" AND v.name IN ({','.join('?' * len(vantages))})"
        params.extend(vantages)
    sql = ("SELECT m.url, m.category, v.name AS vantage, p.verdict, p.stage, p.reasons, "
           "m.measured_at FROM latest l "
           "JOIN protocol_verdicts p ON p.measurement_id = l.measurement_id "
           "JOIN measurements m ON m.id = l.measurement_id JOIN vantage_points v ON v.id = l.vantage_id "
           f"WHERE p.suite = ?{where} ORDER BY m.url, v.name")  # fmt: skip
    return [ProtocolCell(r.url, r.category, r.vantage, r.verdict, r.stage,
                         tuple(json.loads(r.reasons)), r.measured_at)
            for r in typed_rows(store.conn, _CellRow, sql, [suite, *params])]
