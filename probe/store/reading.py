"""Reading results back: final verdicts, the latest verdicts, measurements rebuilt in full."""

from __future__ import annotations

import json
import sqlite3
import zlib
from collections.abc import Iterable, Iterator
from typing import Any

from probe.core.model import Measurement, Verdict
from probe.store import rows as _rows
from probe.store.connection import dict_rows
from probe.store.runs import Runs

__all__ = ["Reader"]

_CHUNK = 500  # measurements per read chunk (iter_measurements, reclassify)
_BLOB_CACHE_BYTES = 16 << 20  # bodies/certificates kept in memory while reading
_VERDICT = "m.verdict, m.stage, m.hop, m.reasons, m.classifier_version"  # what _verdict reads


class Reader(Runs):
    """Reads results and measurements back."""

    def __init__(self, conn: sqlite3.Connection, path: str) -> None:
        super().__init__(conn, path)
        self._blob_cache: dict[str, bytes] = {}
        self._blob_bytes = 0

    def results(
        self,
        run: int | str | None = "latest",
        verdict: str | Iterable[str] | None = None,
        vantage: str | None = None,
        limit: int | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Final verdicts, one dict per URL measured, in measurement order.

        ``run``: an id, ``"latest"`` (the latest run of ``vantage`` when given, otherwise the
        latest run of every vantage point: :meth:`latest_runs`) or None (every run).
        ``verdict``: one verdict or several (any of them). Keys: measurement_id, run_id,
        vantage, url, original_url, domain, category,
        measured_at, runtime, attempt, verdict, stage, hop, reasons (list), classifier_version.
        """
        where = ["m.final = 1"]
        params: list[Any] = []
        if run == "latest" and vantage is None:
            runs = [rid for _, rid in self.latest_runs()]
            if not runs:
                self.resolve_run(run)  # raises: no runs yet
            where.append(f"m.run_id IN ({','.join('?' * len(runs))})")
            params.extend(runs)
        elif (rid := self.resolve_run(run, vantage)) is not None:
            where.append("m.run_id = ?")
            params.append(rid)
        if verdict is not None:
            wanted = [verdict] if isinstance(verdict, str) else list(dict.fromkeys(verdict))
            where.append(f"m.verdict IN ({','.join('?' * len(wanted))})" if wanted else "0")
            params.extend(wanted)
        if vantage is not None:
            where.append("v.name = ?")
            params.append(vantage)
        sql = (
            "SELECT m.id AS measurement_id, m.run_id, v.name AS vantage, m.url, m.original_url, "
            "m.domain, m.category, m.measured_at, m.runtime, m.attempt, m.verdict, m.stage, m.hop, "
            "m.reasons, m.classifier_version FROM measurements m "
            "JOIN vantage_points v ON v.id = m.vantage_id "
            f"WHERE {' AND '.join(where)} ORDER BY m.id"
        )
        if limit is not None:
            sql += " LIMIT ?"
            params.append(int(limit))
        for row in dict_rows(self.conn.execute(sql, params)):
            row["reasons"] = _reasons(row["reasons"])
            yield row

    def latest_verdicts(
        self, vantage: str | None = None, verdict: str | None = None
    ) -> Iterator[dict[str, Any]]:
        """Rows of the ``latest_verdicts`` view (the newest final verdict per vantage and URL)."""
        where, params = [], []
        if vantage is not None:
            where.append("vantage = ?")
            params.append(vantage)
        if verdict is not None:
            where.append("verdict = ?")
            params.append(verdict)
        sql = "SELECT * FROM latest_verdicts" + (f" WHERE {' AND '.join(where)}" if where else "")
        for row in dict_rows(self.conn.execute(sql, params)):
            row["reasons"] = _reasons(row["reasons"])
            yield row

    def iter_measurements(self, run_id: int | None = None) -> Iterator[tuple[int, Measurement]]:
        """Every stored measurement (every attempt) of a run, or of all runs, rebuilt in full."""
        for mid, m, _v in self.iter_judged(run_id):
            yield mid, m

    def iter_judged(
        self, run_id: int | None = None
    ) -> Iterator[tuple[int, Measurement, Verdict]]:
        """Like :meth:`iter_measurements`, with each measurement's stored verdict.

        Reads in chunks by id, holding no cursor open between chunks, so callers may write
        (e.g. :meth:`set_verdicts`) while iterating.
        """
        select = f"SELECT m.id, o.data, {_VERDICT} FROM measurements m " \
                 "JOIN observations o ON o.measurement_id = m.id"  # fmt: skip
        last = 0
        while True:
            if run_id is None:
                chunk = self._rows(f"{select} WHERE m.id > ? ORDER BY m.id LIMIT ?",
                                   (last, _CHUNK)).fetchall()  # fmt: skip
            else:
                chunk = self._rows(f"{select} WHERE m.run_id = ? AND m.id > ? ORDER BY m.id LIMIT ?",
                                   (run_id, last, _CHUNK)).fetchall()  # fmt: skip
            if not chunk:
                return
            last = chunk[-1]["id"]
            for row in chunk:
                yield row["id"], self.rebuild(row["data"]), _verdict(row)

    def measurement(self, measurement_id: int) -> tuple[Measurement, Verdict] | None:
        """One stored measurement rebuilt in full, with its stored verdict (None: no such id)."""
        row = self._row(
            f"SELECT o.data, {_VERDICT} "
            "FROM measurements m JOIN observations o ON o.measurement_id = m.id WHERE m.id = ?",
            (measurement_id,),
        )
        if row is None:
            return None
        return self.rebuild(row["data"]), _verdict(row)

    def rebuild(self, observations: bytes) -> Measurement:
        """A stored measurement rebuilt in full from its packed observations (and the bodies and
        certificates they refer to)."""
        return _rows.rebuild(observations, self._body, self._cert)

    def _body(self, sha: str) -> bytes:
        body = self._blob_cache.get(sha)
        if body is None:
            row = self._row("SELECT body FROM http_bodies WHERE sha256 = ?", (sha,))
            body = zlib.decompress(row["body"]) if row else b""
            self._remember(sha, body)
        return body

    def _cert(self, sha: str) -> bytes:
        der = self._blob_cache.get(sha)
        if der is None:
            row = self._row("SELECT der FROM certificates WHERE sha256 = ?", (sha,))
            der = bytes(row["der"]) if row else b""
            self._remember(sha, der)
        return der

    def _remember(self, sha: str, blob: bytes) -> None:
        # Block pages and interception certificates repeat across thousands of measurements:
        # keep recent blobs, up to a fixed number of bytes.
        if self._blob_bytes + len(blob) > _BLOB_CACHE_BYTES:
            self._blob_cache.clear()
            self._blob_bytes = 0
        if len(blob) <= _BLOB_CACHE_BYTES // 4:
            self._blob_cache[sha] = blob
            self._blob_bytes += len(blob)


def _verdict(row: sqlite3.Row) -> Verdict:
    """The stored verdict of a row that selected the columns of ``_VERDICT``."""
    return Verdict(row["verdict"], row["stage"], row["hop"], tuple(json.loads(row["reasons"])),
                   row["classifier_version"])  # fmt: skip


def _reasons(text: str) -> list[str]:
    # Most verdicts (ok) have no reasons: skip the JSON parser for them.
    return [] if text == "[]" else json.loads(text)
