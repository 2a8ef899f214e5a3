"""The verdicts of the opt-in protocol tests (``probe run --quic``, ``--ech``) in a results database.

One row per measurement and test in ``protocol_verdicts`` (written with the measurement by
:mod:`probe.store.writing`); these are the named read queries over it.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from probe.core.model import ProtocolVerdict
from probe.store.connection import named_rows

if TYPE_CHECKING:
    from probe.store.database import Store

__all__ = [
    "RESULT_KEYS",
    "latest_protocol_run",
    "latest_protocol_verdicts",
    "protocol_results",
    "protocol_summary",
    "protocol_verdicts_between",
    "protocol_verdicts_of",
    "run_has_protocol",
    "run_protocol_counts",
]

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


def _result(row: sqlite3.Row) -> dict[str, Any]:
    d = {key: row[key] for key in RESULT_KEYS}
    d["reasons"] = json.loads(d["reasons"])
    return d


def _verdict(r: sqlite3.Row) -> ProtocolVerdict:
    return ProtocolVerdict(r["suite"], r["verdict"], r["stage"], r["hop"],
                           tuple(json.loads(r["reasons"])), r["classifier_version"])


_VERDICT_COLUMNS = "measurement_id, suite, verdict, stage, hop, reasons, classifier_version"
# The order the tests run in (probe.measure.protocols.requested): quic, then ech.
_ORDER = "ORDER BY measurement_id, CASE suite WHEN 'quic' THEN 0 WHEN 'ech' THEN 1 ELSE 2 END, suite"


def protocol_verdicts_of(store: Store, measurement_id: int) -> tuple[ProtocolVerdict, ...]:
    """The stored protocol verdicts of one measurement (quic first, then ech)."""
    rows = named_rows(store.conn, f"SELECT {_VERDICT_COLUMNS} FROM protocol_verdicts "
                      f"WHERE measurement_id = ? {_ORDER}", (measurement_id,))  # fmt: skip
    return tuple(_verdict(r) for r in rows)


def protocol_verdicts_between(conn: sqlite3.Connection, lo: int, hi: int
                              ) -> dict[int, tuple[ProtocolVerdict, ...]]:
    """measurement id -> its protocol verdicts, for the ids from ``lo`` to ``hi`` (exports read
    them a chunk of measurements at a time)."""
    out: dict[int, list[ProtocolVerdict]] = {}
    for r in named_rows(conn, f"SELECT {_VERDICT_COLUMNS} FROM protocol_verdicts "
                        f"WHERE measurement_id BETWEEN ? AND ? {_ORDER}", (lo, hi)):  # fmt: skip
        out.setdefault(r["measurement_id"], []).append(_verdict(r))
    return {k: tuple(v) for k, v in out.items()}


def latest_protocol_run(store: Store, suite: str, vantage: str | None = None) -> int | None:
    """The newest run with ``suite`` verdicts (of ``vantage`` when given), or None."""
    sql = ("SELECT max(m.run_id) FROM protocol_verdicts p JOIN measurements m ON m.id = p.measurement_id "
           "JOIN vantage_points v ON v.id = m.vantage_id WHERE p.suite = ?")  # fmt: skip
    params: list[Any] = [suite]
    if vantage is not None:
        sql += " AND v.name = ?"
        params.append(vantage)
    row = store.conn.execute(sql, params).fetchone()
    return None if row is None or row[0] is None else int(row[0])


def protocol_summary(
    conn: sqlite3.Connection, suite: str, vantages: Sequence[str], limit: int
) -> tuple[dict[str, dict[str, int]], list[str], int]:
    """Per vantage point, how many URLs' latest ``suite`` verdict is each verdict; and the URLs
    (at most ``limit``, those most often not ok first) whose latest verdict is not ok somewhere,
    with how many there are in all. Grouped queries over ``latest``: what is read is bounded."""
    marks = ",".join("?" * len(vantages))
    base = ("FROM latest l JOIN protocol_verdicts p ON p.measurement_id = l.measurement_id "
            f"JOIN vantage_points v ON v.id = l.vantage_id WHERE p.suite = ? AND v.name IN ({marks})")
    counts: dict[str, dict[str, int]] = {}
    for name, verdict, n in conn.execute(f"SELECT v.name, p.verdict, count(*) {base} "
                                         "GROUP BY v.name, p.verdict", (suite, *vantages)):
        counts.setdefault(name, {})[verdict] = n
    urls = [r[0] for r in conn.execute(
        f"SELECT l.url, sum(p.verdict IN ('blocked', 'reset')) AS bad {base} AND p.verdict != 'ok' "
        "GROUP BY l.url ORDER BY bad DESC, l.url LIMIT ?", (suite, *vantages, limit))]
    (total,) = conn.execute(f"SELECT count(DISTINCT l.url) {base} AND p.verdict != 'ok'",
                            (suite, *vantages)).fetchone()
    return counts, urls, int(total)


def run_protocol_counts(store: Store, run_id: int) -> dict[str, dict[str, int]]:
    """suite -> verdict -> how many URLs of the run (their final attempt) got it."""
    out: dict[str, dict[str, int]] = {}
    for suite, verdict, n in store.conn.execute(
            "SELECT p.suite, p.verdict, count(*) FROM protocol_verdicts p JOIN measurements m "
            "ON m.id = p.measurement_id WHERE m.run_id = ? AND m.final = 1 GROUP BY 1, 2", (run_id,)):
        out.setdefault(suite, {})[verdict] = n
    return out


def run_has_protocol(store: Store, run_id: int, suite: str) -> bool:
    """True when the run measured URLs with the protocol test ``suite`` (``quic``, ``ech``)."""
    row = store.conn.execute(
        "SELECT 1 FROM measurements m JOIN protocol_verdicts p ON p.measurement_id = m.id "
        "WHERE m.run_id = ? AND p.suite = ? LIMIT 1", (run_id, suite)).fetchone()
    return row is not None


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
    sql = f"{_SELECT} {_FROM} WHERE p.suite = ? AND m.final = 1"
    params: list[Any] = [suite]
    if run_id is not None:
        sql += " AND m.run_id = ?"
        params.append(run_id)
    if verdicts is not None:
        wanted = list(dict.fromkeys(verdicts))
        sql += f" AND p.verdict IN ({','.join('?' * len(wanted))})" if wanted else " AND 0"
        params.extend(wanted)
    if vantage is not None:
        sql += " AND v.name = ?"
        params.append(vantage)
    sql += " ORDER BY m.id"
    if limit is not None:
        sql += " LIMIT ?"
        params.append(int(limit))
    for row in named_rows(store.conn, sql, params):
        yield _result(row)


def latest_protocol_verdicts(
    conn: sqlite3.Connection, suite: str, vantages: Sequence[str] | None = None,
    since: str | None = None, *, urls: Sequence[str] | None = None,
) -> list[dict[str, Any]]:
    """The ``suite`` verdict of the latest measurement of every URL (of ``urls``) at every
    vantage point (of ``vantages``, measured at or after ``since``) that has one, ordered by URL
    and vantage."""
    where, params = "", list[Any]([suite])
    if urls is not None:
        where += f" AND l.url IN ({','.join('?' * len(urls))})" if urls else " AND 0"
        params.extend(urls)
    if vantages:
        where += f" AND v.name IN ({','.join('?' * len(vantages))})"
        params.extend(vantages)
    if since is not None:
        where += " AND l.measured_at >= ?"
        params.append(since)
    sql = (f"{_SELECT} FROM latest l JOIN protocol_verdicts p ON p.measurement_id = l.measurement_id "
           "JOIN measurements m ON m.id = l.measurement_id JOIN vantage_points v ON v.id = l.vantage_id "
           f"WHERE p.suite = ? {where} ORDER BY m.url, v.name")  # fmt: skip
    return [_result(row) for row in named_rows(conn, sql, params)]
