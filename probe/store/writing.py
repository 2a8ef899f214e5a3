"""Writing measurements: batches of judged measurements, traces, re-judged verdicts."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import sqlite3
from collections.abc import Callable, Sequence
from typing import Any

from probe.core.model import Measurement, Verdict
from probe.store import rows as _rows
from probe.store.rows import now as _now
from probe.store.runs import Runs

__all__ = ["Writer"]

_SEEN_MAX = 20_000  # bodies/certificates remembered as already stored, per Store
_PROTOCOL_INSERT = ("INSERT OR REPLACE INTO protocol_verdicts (measurement_id, suite, verdict, stage, "
                    "hop, reasons, classifier_version) VALUES (?,?,?,?,?,?,?)")


class Writer(Runs):
    """Writes measurements, each batch in one committed transaction."""

    def __init__(self, conn: sqlite3.Connection, path: str) -> None:
        super().__init__(conn, path)
        self._seen_bodies: set[str] = set()
        self._certs: dict[str, _rows.Certificate] = {}

    def write(
        self,
        run_id: int,
        vantage_id: int,
        items: Sequence[tuple[Measurement, Verdict] | tuple[Measurement, Verdict, bool]],
        *,
        extra: Callable[[sqlite3.Connection, list[int]], None] | None = None,
    ) -> list[int]:
        """Store a batch of measurements with their verdicts, in one committed transaction.

        Items are ``(measurement, verdict)`` or ``(measurement, verdict, final)``. Every attempt
        is stored; ``final`` (default True) marks the attempt whose verdict counts for the URL.
        Returns the new measurement ids, in order. ``extra(conn, ids)`` runs inside the same
        transaction, for rows of other tables that refer to them (an import's source data).
        """
        if not items:
            return []
        c = self.conn
        new_ids: list[int] = []
        with self.transaction():
            mid = self._value("SELECT coalesce(max(id), 0) FROM measurements")
            ids = _rows.IdCounters(
                self._value("SELECT coalesce(max(id), 0) FROM dns_queries"),
                self._value("SELECT coalesce(max(id), 0) FROM dns_replies"),
            )
            rows = _rows.Rows()
            cert_info, body_ref = self._refs(rows)
            flatten = _rows.flatten
            try:
                for item in items:
                    mid += 1
                    new_ids.append(mid)
                    final = item[2] if len(item) > 2 else True
                    flatten(rows, mid, run_id, vantage_id, item[0], item[1], final, ids,
                            cert_info, body_ref)
                self._insert_rows(rows)
                if extra is not None:
                    extra(c, new_ids)
            except BaseException:
                # The rollback undoes the rows: forget what this batch marked as stored.
                self._seen_bodies.clear()
                self._certs.clear()
                raise
        return new_ids

    def _refs(self, rows: _rows.Rows) -> tuple[Any, Any]:
        """Per-batch callbacks that queue new certificates and bodies (each stored once)."""
        certs = self._certs
        seen = self._seen_bodies

        def cert_info(der: bytes) -> tuple[str, _rows.Certificate]:
            sha = hashlib.sha256(der).hexdigest()
            info = certs.get(sha)
            if info is None:
                info = _rows.parse_certificate(der)
                if len(certs) >= _SEEN_MAX:
                    certs.clear()
                certs[sha] = info
                rows.certs.append((sha, der, *info))
            return sha, info

        def body_ref(body: bytes) -> str:
            sha = _rows.body_key(body)
            if sha not in seen:
                if len(seen) >= _SEEN_MAX:
                    seen.clear()
                seen.add(sha)
                rows.bodies.append((sha, len(body), _rows.compress(body)))
            return sha

        return cert_info, body_ref

    def _insert_rows(self, rows: _rows.Rows) -> None:
        # The hot path: one prepared statement per table, executemany over tuples built by
        # rows.flatten in the column order written here (docs/design.md: why not sqlite-utils).
        x = self.conn.executemany
        x(
            "INSERT INTO measurements (id, run_id, vantage_id, url, original_url, domain, category, "
            "source, measured_at, started, runtime, attempt, final, failure, n_hops, final_url, "
            "verdict, stage, hop, reasons, classifier_version, uid) "
            "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            rows.measurements,
        )
        x("INSERT INTO observations (measurement_id, data) VALUES (?,?)", rows.observations)
        if rows.protocols:
            x(_PROTOCOL_INSERT, rows.protocols)
        if rows.packets:
            x(
                "INSERT INTO packets (measurement_id, idx, t, proto, src, sport, dport, ttl, ip_id, "
                "df, flags, window, seq, ack, seq_rel, ack_rel, payload, digest) "
                "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                rows.packets,
            )
        if rows.queries:
            x(
                "INSERT INTO dns_queries (id, measurement_id, hop, control, resolver, qtype, "
                "hostname, failure, n_replies, n_distinct) VALUES (?,?,?,?,?,?,?,?,?,?)",
                rows.queries,
            )
        if rows.replies:
            x(
                "INSERT INTO dns_replies (id, query_id, idx, t, source, rcode, flags, ttl) "
                "VALUES (?,?,?,?,?,?,?,?)",
                rows.replies,
            )
        if rows.answers:
            x("INSERT INTO dns_answers (reply_id, idx, type, value) VALUES (?,?,?,?)", rows.answers)
        if rows.tcp:
            x(
                "INSERT INTO tcp_connects (measurement_id, hop, ip, port, failure) "
                "VALUES (?,?,?,?,?)",
                rows.tcp,
            )
        if rows.certs:
            x(
                "INSERT OR IGNORE INTO certificates (sha256, der, subject, issuer, not_before, "
                "not_after) VALUES (?,?,?,?,?,?)",
                rows.certs,
            )
        if rows.tls:
            x(
                "INSERT INTO tls_handshakes (measurement_id, hop, ip, port, sni, failure, version, "
                "cert_valid, leaf_sha256) VALUES (?,?,?,?,?,?,?,?,?)",
                rows.tls,
            )
        if rows.bodies:
            x("INSERT OR IGNORE INTO http_bodies (sha256, length, body) VALUES (?,?,?)", rows.bodies)
        if rows.http:
            x(
                "INSERT INTO http_requests (measurement_id, hop, url, ip, port, failure, status, "
                "location, body_length, body_sha256, body_truncated, title, body_ref) "
                "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                rows.http,
            )
        if rows.controls:
            x(
                "INSERT INTO controls (measurement_id, hop, failure, dns_failure, dns_addrs, "
                "http_failure, http_status, http_body_length, http_title, http_transfer) "
                "VALUES (?,?,?,?,?,?,?,?,?,?)",
                rows.controls,
            )

    def write_trace(self, trace: Any, vantage: str = "default") -> int:
        """Store a :class:`probe.measure.trace.Trace` taken at ``vantage`` (``traces``, ``trace_hops``)."""
        vantage_id = self.vantage(vantage)
        record = {
            "vantage_id": vantage_id, "started_at": _rows.iso(trace.started), "url": trace.url,
            "trigger": trace.trigger, "control_name": trace.control_name, "ip": trace.ip,
            "port": trace.port, "censor_hop": trace.censor_hop, "placement": trace.placement,
            "packets_sent": trace.packets_sent, "duration": trace.duration,
            "data": json.dumps(dataclasses.asdict(trace)),
        }  # fmt: skip
        with self.transaction():
            tid = self.insert_records("traces", [record])
            self.insert_records("trace_hops", (
                {"trace_id": tid, "ttl": p.ttl, "probe": p.probe, "router": p.router,
                 "outcome": p.outcome, "rtt": p.rtt}
                for p in trace.probes
            ))  # fmt: skip
        return tid

    def set_verdicts(self, updates: Sequence[tuple[int, Verdict]]) -> None:
        """Replace the verdicts of measurements (by id), in one transaction (reclassify)."""
        if not updates:
            return
        now = _now()
        # Bulk: one prepared UPDATE over every row (sqlite-utils updates one row per call,
        # each after a SELECT of it); reclassify re-judges whole databases this way.
        with self.transaction():
            self.conn.executemany(
                "UPDATE measurements SET verdict = ?, stage = ?, hop = ?, reasons = ?, "
                "classifier_version = ?, classified_at = ? WHERE id = ?",
                [
                    (v.verdict, v.stage, v.hop, json.dumps(list(v.reasons)), v.classifier_version,
                     now, mid)
                    for mid, v in updates
                ],
            )
            protocols = [r for mid, v in updates for r in _rows.protocol_rows(mid, v)]
            if protocols:
                self.conn.executemany(_PROTOCOL_INSERT, protocols)
