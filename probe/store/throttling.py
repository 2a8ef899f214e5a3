"""The rows the throttling rule reads from a results database (probe/judge/throttling.py).

Keyset pages by measurement id, so memory holds one page whatever the run's size. The SQL
chooses the candidates (a fetch large enough to give a sample, or reasons the rule wrote
before) so that the other measurements' JSON is never decoded.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, NamedTuple

from probe.core.model import Verdict
from probe.store.connection import typed_row, typed_rows
from probe.store.observations import unpack

if TYPE_CHECKING:
    from probe.store.database import Store

__all__ = ["CHUNK", "JudgedRow", "RunStatus", "control_rows", "controls_of", "judged_rows", "other_ok_rows",
           "run_status"]

#: Measurements per page.
CHUNK = 2000

# The run's final measurements judged ok or throttled (keyset pages by id)...
_JUDGED = ("SELECT m.id, m.url, m.verdict, m.stage, m.hop, m.reasons, m.classifier_version, o.data AS extra "
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
                 "(SELECT max(h.hop) FROM http_requests h WHERE h.measurement_id = m.id) AS extra "
                 "FROM measurements m WHERE m.run_id = ? AND m.final = 1 AND m.verdict = 'ok' "
                 f"AND m.id > ? AND NOT {_CANDIDATE} AND EXISTS (SELECT 1 FROM controls c "
                 "WHERE c.measurement_id = m.id AND c.http_transfer IS NOT NULL) "
                 "ORDER BY m.id LIMIT ?")
# The observations of these measurements (their controls are in their hops).
_CONTROLS = ("SELECT o.measurement_id, o.data FROM observations o "
             "WHERE o.measurement_id IN (SELECT value FROM json_each(?))")
_TIMED = (" AND EXISTS (SELECT 1 FROM controls c WHERE c.measurement_id = o.measurement_id "
          "AND c.http_transfer IS NOT NULL)")

class JudgedRow(NamedTuple):
    """A measurement with its stored verdict and what the rule reads of it."""

    measurement_id: int
    url: str
    verdict: Verdict
    data: Any  # its observations' JSON decoded (judged_rows), or its final hop (other_ok_rows)


class _Row(NamedTuple):
    """What the queries select; ``extra`` is the observations' JSON or the final hop."""

    id: int
    url: str
    verdict: str
    stage: str | None
    hop: int | None
    reasons: str
    classifier_version: str
    extra: Any


class RunStatus(NamedTuple):
    """A run's status and end time."""

    status: str
    finished_at: str | None


def _verdict(row: _Row) -> Verdict:
    return Verdict(row.verdict, row.stage, row.hop, tuple(json.loads(row.reasons)), row.classifier_version)


class _Control(NamedTuple):
    measurement_id: int
    data: bytes


def control_rows(
    store: Store, ids: list[int], timed_only: bool = False
) -> dict[int, dict[int, dict[str, Any]]]:
    """The controls' data of these measurements, by measurement and hop (``timed_only``: only
    those that reported their fetch's speed)."""
    controls: dict[int, dict[int, dict[str, Any]]] = {}
    sql = _CONTROLS + (_TIMED if timed_only else "")
    for row in typed_rows(store.conn, _Control, sql + " ORDER BY o.measurement_id",
                          (json.dumps(ids),)):
        controls[row.measurement_id] = controls_of(unpack(row.data))
    return controls


def controls_of(data: dict[str, Any]) -> dict[int, dict[str, Any]]:
    """The controls of a measurement's data (:func:`judged_rows`' ``data``), by hop."""
    return {int(hd["index"]): hd["control"] for hd in data.get("hops", ())
            if isinstance(hd, dict) and hd.get("control") is not None}


def judged_rows(store: Store, run_id: int, min_body: int, *, candidates_only: bool = True
                ) -> Iterator[list[JudgedRow]]:
    """Pages of the run's final measurements judged ok or throttled, with their observations'
    JSON decoded; ``candidates_only``: only those with a fetch of ``min_body`` decoded bytes or
    more, or the rule's own reasons."""
    sql = _JUDGED + (f"AND {_CANDIDATE} " if candidates_only else "") + "ORDER BY m.id LIMIT ?"
    last = 0
    while True:
        params = (run_id, last, min_body, CHUNK) if candidates_only else (run_id, last, CHUNK)
        chunk = list(typed_rows(store.conn, _Row, sql, params))
        if not chunk:
            return
        last = chunk[-1].id
        yield [JudgedRow(r.id, r.url, _verdict(r), unpack(r.extra)) for r in chunk]


def other_ok_rows(store: Store, run_id: int, min_body: int) -> Iterator[list[JudgedRow]]:
    """Pages of the run's other ok measurements whose control reported its speed, with their
    final hop (their observations are not read)."""
    last = 0
    while True:
        chunk = list(typed_rows(store.conn, _Row, _CONTROL_ONLY, (run_id, last, min_body, CHUNK)))
        if not chunk:
            return
        last = chunk[-1].id
        yield [JudgedRow(r.id, r.url, _verdict(r), r.extra) for r in chunk]


def run_status(store: Store, run_id: int) -> RunStatus | None:
    """The run's status and end time (None: no such run)."""
    return typed_row(store.conn, RunStatus, "SELECT status, finished_at FROM runs WHERE id = ?", (run_id,))
