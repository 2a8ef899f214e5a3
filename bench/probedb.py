"""Reading what a benchmark's probe run stored: its verdicts, measuring span and step timeline.

Every reader opens the database, runs its queries and closes it (:func:`read`); a run that left
no database, or an unreadable one, gives an empty answer, never an exception that would lose
the other figures of a benchmark run.
"""

from __future__ import annotations

import sqlite3
import statistics
from pathlib import Path
from typing import Any

from probe.store.observations import unpack

__all__ = ["control_failures", "measuring_span", "packets", "probe_ok", "read", "timeline"]


def read(db: Path, *sql: str) -> list[list[tuple[Any, ...]]]:
    """The rows of each query over the probe's database, in one connection.

    Raises FileNotFoundError when the run left no database, sqlite3.Error when it cannot be read.
    """
    if not db.exists():
        raise FileNotFoundError(db)
    con = sqlite3.connect(db)
    try:
        return [con.execute(q).fetchall() for q in sql]
    finally:
        con.close()


def probe_ok(db: Path) -> tuple[int | None, dict[str, int]]:
    """How many URLs the probe judged ok, and the verdict counts, read from its database."""
    try:
        verdicts, attempts = read(
            db, "select verdict, count(*) from measurements where final = 1 group by verdict",
            "select count(*) from measurements")  # fmt: skip
    except (FileNotFoundError, sqlite3.Error):
        return None, {}
    counts = dict(verdicts)
    counts["_all_attempts"] = attempts[0][0]
    return counts.get("ok", 0), counts


# Databases whose flat tables hold the timings (probe trees before the packed observations of
# schema version 11; --probe-tree runs an older one): read by SQL.
_TIMELINE_SQL = """
select
  (select min(q.started + q.duration) from dns_queries q where q.measurement_id = m.id
     and q.hop = 0 and q.control = 0 and q.qtype = 'A') - m.started,
  (select min(q.started + q.duration) from dns_queries q where q.measurement_id = m.id
     and q.hop = 0 and q.control = 0 and q.qtype = 'AAAA') - m.started,
  (select min(t.started) from tcp_connects t where t.measurement_id = m.id and t.hop = 0) - m.started,
  (select min(t.started + t.duration) from tcp_connects t where t.measurement_id = m.id
     and t.hop = 0) - m.started,
  (select min(t.started) from tls_handshakes t where t.measurement_id = m.id and t.hop = 0)
     - m.started,
  (select min(t.started + t.duration) from tls_handshakes t where t.measurement_id = m.id
     and t.hop = 0) - m.started,
  (select min(h.started) from http_requests h where h.measurement_id = m.id and h.hop = 0)
     - m.started,
  (select min(h.started + h.duration) from http_requests h where h.measurement_id = m.id
     and h.hop = 0) - m.started,
  (select min(json_extract(c.data, '$.started')) from controls c where c.measurement_id = m.id
     and c.hop = 0) - m.started,
  (select min(json_extract(c.data, '$.started') + json_extract(c.data, '$.duration'))
     from controls c where c.measurement_id = m.id and c.hop = 0) - m.started,
  m.runtime
from measurements m where m.final = 1
"""
_TIMELINE = ("dns_a_done", "dns_aaaa_done", "tcp_start", "tcp_done", "tls_start", "tls_done",
             "http_start", "http_done", "control_start", "control_done", "runtime")  # fmt: skip


def measuring_span(db: Path) -> float | None:
    """Seconds from the first measurement's start to the last one's end (every attempt).

    The probe's measuring time without its fixed costs (start-up, identity and pre-flight
    checks, the end-of-run check): what the floor's own ``elapsed`` (first URL to last) is
    compared with in :func:`run_pair`'s ``probe_vs_floor_measuring``.
    """
    try:
        [[(first, last)]] = read(
            db, "select min(started), max(started + runtime) from measurements")
    except (FileNotFoundError, sqlite3.Error):
        return None
    return round(last - first, 3) if first is not None and last is not None else None


def _timeline_row(started: float, runtime: float, data: dict[str, Any]) -> tuple[Any, ...]:
    """The offsets of _TIMELINE for one measurement, from its observations (hop 0)."""
    hop = next((h for h in data.get("hops") or () if h.get("index") == 0), {})

    def first(items: Any, end: bool, pick: Any = lambda x: True) -> float | None:
        ts = [x["started"] + (x["duration"] if end else 0.0) for x in items or () if pick(x)]
        return min(ts) - started if ts else None

    http = [hop["http"]] if hop.get("http") else []
    ctl = [hop["control"]] if hop.get("control") else []
    return (first(hop.get("dns"), True, lambda q: q["qtype"] == "A"),
            first(hop.get("dns"), True, lambda q: q["qtype"] == "AAAA"),
            first(hop.get("tcp"), False), first(hop.get("tcp"), True),
            first(hop.get("tls"), False), first(hop.get("tls"), True),
            first(http, False), first(http, True), first(ctl, False), first(ctl, True), runtime)


# Whether the flat tables still hold the timings (a column, not a schema version: probe trees
# of other branches numbered their migrations differently).
_FLAT_TIMINGS = "select count(*) from pragma_table_info('tcp_connects') where name = 'started'"
_PACKED = ("select m.started, m.runtime, o.data from measurements m "
           "join observations o on o.measurement_id = m.id where m.final = 1")


def timeline(db: Path) -> dict[str, float | None]:
    """Median offsets (ms after the measurement started) of each step of the probe's URLs.

    Read from the probe's own database: where the time of one URL goes (extra round trips,
    gaps between steps, the control on or off the critical path). Timings are in the packed
    observations since schema version 11 (the flat tables of older probes, --probe-tree, held
    them as columns).
    """
    try:
        [[(flat,)]] = read(db, _FLAT_TIMINGS)
        if flat:
            [rows] = read(db, _TIMELINE_SQL)
        else:
            [packed] = read(db, _PACKED)
            rows = [_timeline_row(started, runtime, unpack(data))
                    for started, runtime, data in packed]
    except FileNotFoundError:
        return {}
    except sqlite3.Error as exc:
        return {"error": str(exc)}  # type: ignore[dict-item]
    out: dict[str, float | None] = {}
    for i, name in enumerate(_TIMELINE):
        xs = [r[i] for r in rows if r[i] is not None]
        out[name] = round(statistics.median(xs) * 1000, 1) if xs else None
    return out


def _count(db: Path, sql: str) -> int | None:
    """The one number ``sql`` selects, or None when the database cannot be read."""
    try:
        [[(n,)]] = read(db, sql)
    except (FileNotFoundError, sqlite3.Error):
        return None
    return int(n)


def control_failures(db: Path) -> int | None:
    """How many of the run's controls failed, or None when the database cannot be read."""
    return _count(db, "SELECT count(*) FROM controls WHERE failure IS NOT NULL")


def packets(db: Path) -> int | None:
    """How many packets the run's capture stored, or None when the database cannot be read."""
    return _count(db, "SELECT count(*) FROM packets")
