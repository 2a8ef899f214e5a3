"""The rows the throttling rule reads from a results database (probe/judge/throttling.py).

Keyset pages by measurement id, so memory holds one page whatever the run's size. The SQL
chooses the candidates (a fetch large enough to give a sample, or reasons the rule wrote
before) so that the other measurements' JSON is never decoded.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from probe.core.model import Verdict

if TYPE_CHECKING:
    from probe.store.database import Store

__all__ = ["CHUNK", "JudgedRow", "control_rows", "judged_rows", "other_ok_rows", "run_status"]

#: Measurements per page.
CHUNK = 2000

# The run's final measurements judged ok or throttled (keyset pages by id)...
_JUDGED = ("SELECT m.id, m.url, m.verdict, m.stage, m.hop, m.reasons, m.classifier_version, o.data "
           "FROM measurements m JOIN observations o ON o.measurement_id = m.id "
           "WHERE m.run_id = ? AND m.final = 1 AND m.verdict IN ('ok', 'throttled') AND m.id > ? ")
# ...and, of those, the only ones the rule can change without references from the others:
# a fetch large enough to give a sample (see MIN_BODY), or a verdict or reasons it wrote before.
_CANDIDATE = ("(m.verdict = 'throttled' "
              "OR m.reasons LIKE '%\"http/slow:%' OR m.reasons LIKE '%\"control/http-speed:%' "
              "OR EXISTS (SELECT 1 FROM http_requests h WHERE h.measurement_id = m.id "
              "AND h.status = 200 AND h.failure IS NULL AND (h.body_length >= ? OR h.body_truncated = 1)))")
# The others with a control that reported its speed: the control's references for a slow page.
# Their final hop (the last with an HTTP fetch) is the highest hop of their http_requests rows.
_CONTROL_ONLY = ("SELECT m.id, m.url, m.verdict, m.stage, m.hop, m.reasons, m.classifier_version, "
                 "(SELECT max(h.hop) FROM http_requests h WHERE h.measurement_id = m.id) "
                 "FROM measurements m WHERE m.run_id = ? AND m.final = 1 AND m.verdict = 'ok' "
                 f"AND m.id > ? AND NOT {_CANDIDATE} AND EXISTS (SELECT 1 FROM controls c "
                 "WHERE c.measurement_id = m.id AND instr(c.data, '\"http_transfer\"')) "
                 "ORDER BY m.id LIMIT ?")
_CONTROLS = ("SELECT measurement_id, hop, data FROM controls "
             "WHERE measurement_id IN (SELECT value FROM json_each(?))")

#: (measurement id, URL, verdict, its observations' JSON or its final hop)
JudgedRow = tuple[int, str, Verdict, Any]


def _verdict(verdict: str, stage: str | None, hop: int | None, reasons: str, version: str) -> Verdict:
    return Verdict(verdict, stage, hop, tuple(json.loads(reasons)), version)


def control_rows(
    store: Store, ids: list[int], timed_only: bool = False
) -> dict[int, dict[int, dict[str, Any]]]:
    """The controls' JSON of these measurements, by measurement and hop (``timed_only``: only
    those that reported their fetch's speed)."""
    controls: dict[int, dict[int, dict[str, Any]]] = {}
    sql = _CONTROLS + (" AND instr(data, '\"http_transfer\"')" if timed_only else "")
    for mid, hop, data in store.conn.execute(sql + " ORDER BY id", (json.dumps(ids),)):
        controls.setdefault(mid, {})[hop] = json.loads(data)
    return controls


def judged_rows(store: Store, run_id: int, min_body: int, *, candidates_only: bool = True
                ) -> Iterator[list[JudgedRow]]:
    """Pages of the run's final measurements judged ok or throttled, with their observations'
    JSON decoded; ``candidates_only``: only those with a fetch of ``min_body`` decoded bytes or
    more, or the rule's own reasons."""
    sql = _JUDGED + (f"AND {_CANDIDATE} " if candidates_only else "") + "ORDER BY m.id LIMIT ?"
    last = 0
    while True:
        params = (run_id, last, min_body, CHUNK) if candidates_only else (run_id, last, CHUNK)
        chunk = store.conn.execute(sql, params).fetchall()
        if not chunk:
            return
        last = chunk[-1][0]
        yield [(mid, url, _verdict(v, st, hop, rs, ver), json.loads(data))
               for mid, url, v, st, hop, rs, ver, data in chunk]  # fmt: skip


def other_ok_rows(store: Store, run_id: int, min_body: int) -> Iterator[list[JudgedRow]]:
    """Pages of the run's other ok measurements whose control reported its speed, with their
    final hop (their observations are not read)."""
    last = 0
    while True:
        chunk = store.conn.execute(_CONTROL_ONLY, (run_id, last, min_body, CHUNK)).fetchall()
        if not chunk:
            return
        last = chunk[-1][0]
        yield [(mid, url, _verdict(v, st, hop, rs, ver), final_hop)
               for mid, url, v, st, hop, rs, ver, final_hop in chunk]  # fmt: skip


def run_status(store: Store, run_id: int) -> tuple[str, str | None] | None:
    """The run's status and end time (None: no such run)."""
    row = store.conn.execute("SELECT status, finished_at FROM runs WHERE id = ?", (run_id,)).fetchone()
    return None if row is None else (row[0], row[1])
