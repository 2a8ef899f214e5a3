"""The results database: opening and migrating it, writing batches, reading results back."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from probe.model import VERDICTS, Measurement, Verdict
from probe.store import rows as _rows
from probe.store.schema import APPLICATION_ID, MIGRATIONS, SCHEMA_VERSION
from probe.store.uid import uuid7

if TYPE_CHECKING:
    import sqlite_utils

__all__ = ["RUN_STATUSES", "Store", "StoreError"]

#: Final states of a run (``running`` is the state while it runs).
RUN_STATUSES = ("complete", "interrupted", "offline", "failed")

# Keys that would identify the person running the probe: refused in vantage metadata.
_PRIVATE_KEYS = frozenset({"ip", "public_ip", "probe_ip", "client_ip", "address", "addr"})
_VANTAGE_COLUMNS = ("asn", "as_org", "country", "resolver", "network")

_BUSY_TIMEOUT_MS = 30_000
_CHUNK = 500  # measurements per read chunk (iter_measurements, reclassify)
_SEEN_MAX = 20_000  # bodies/certificates remembered as already stored, per Store
_BLOB_CACHE_BYTES = 16 << 20  # bodies/certificates kept in memory while reading


def _writable(path: Path) -> bool:
    """Whether probe could write ``path`` and its directory (journal files live beside it)."""
    import os

    if not (os.access(path, os.W_OK) and os.access(path.parent, os.W_OK)):
        return False
    try:  # root passes os.access even on a read-only mount: ask the file system too
        return not (os.statvfs(path).f_flag & os.ST_RDONLY)
    except OSError:
        return True


class StoreError(Exception):
    """The database cannot be used: not SQLite, not a probe database, too new, unwritable."""


def _now() -> str:
    return _rows.iso(time.time())


class Store:
    """A probe results database (SQLite through sqlite-utils).

    Open with :meth:`open`; every write is one transaction that is committed before the call
    returns (WAL, ``synchronous=NORMAL``): a kill loses at most the batch being written.
    """

    def __init__(self, conn: sqlite3.Connection, path: str) -> None:
        self.conn = conn
        self.path = path
        self._db: sqlite_utils.Database | None = None
        self.readonly = False  # opened read-only (a database probe cannot write)
        self._seen_bodies: set[str] = set()
        self._certs: dict[str, _rows.Certificate] = {}
        self._blob_cache: dict[str, bytes] = {}
        self._blob_bytes = 0

    # --- opening -------------------------------------------------------------------------
    @classmethod
    def open(cls, path: str | Path, *, create: bool = True) -> Store:
        """Open (creating it and its parent directories if needed) and migrate a database.

        ``":memory:"`` opens a private in-memory database. With ``create=False`` a missing file
        is an error, and a database probe cannot write (read-only file, directory or medium) is
        opened read-only, for reading. Raises :class:`StoreError` naming the file and the reason.

        Nothing is written before the file is known to be a sound probe database: another
        application's SQLite file is refused untouched (no WAL switch), and a corrupt database
        (``PRAGMA quick_check``) is refused before anything is written into it.
        """
        name = str(path)
        readonly = False
        if name != ":memory:":
            p = Path(path)
            if p.is_dir():
                raise StoreError(f"{name}: is a directory, not a database file")
            if not p.exists():
                if not create:
                    raise StoreError(f"{name}: no such database (run `probe run` first?)")
                try:
                    p.parent.mkdir(parents=True, exist_ok=True)
                except OSError as exc:
                    raise StoreError(f"{name}: cannot create its directory: {exc}") from None
            elif not create and not _writable(p):
                readonly = True
        try:
            if readonly:
                # immutable: a read-only medium cannot hold the WAL index (-shm) SQLite would
                # otherwise need to read a WAL database.
                uri = f"{p.resolve().as_uri()}?mode=ro&immutable=1"
                conn = sqlite3.connect(uri, uri=True, timeout=_BUSY_TIMEOUT_MS / 1000,
                                       isolation_level=None, check_same_thread=False)
            else:
                conn = sqlite3.connect(name, timeout=_BUSY_TIMEOUT_MS / 1000,
                                       isolation_level=None, check_same_thread=False)
        except sqlite3.Error as exc:
            raise StoreError(f"{name}: cannot open: {exc}") from None
        store = cls(conn, name)
        store.readonly = readonly
        try:
            store._refuse_foreign()
            if not readonly:
                store._check_integrity()
            store._configure()
            store._migrate()
        except StoreError:
            conn.close()
            raise
        except sqlite3.DatabaseError as exc:
            conn.close()
            if "malformed" in str(exc):
                raise StoreError(
                    f"{name}: the database is corrupt ({exc}); nothing was written to it. Keep a "
                    f"copy, then try `sqlite3 {name} .recover`"
                ) from None
            raise StoreError(f"{name}: not a usable SQLite database: {exc}") from None
        return store

    def _refuse_foreign(self) -> None:
        """StoreError for a SQLite file of another application; reads only (nothing changes)."""
        c = self.conn
        c.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
        # Reading the header is the first access: a non-SQLite file fails here.
        c.execute("PRAGMA schema_version").fetchone()
        app_id = c.execute("PRAGMA application_id").fetchone()[0]
        tables = self._tables()
        if app_id not in (0, APPLICATION_ID) or (tables and "schema_migrations" not in tables):
            shown = ", ".join(tables[:5]) + (", ..." if len(tables) > 5 else "")
            raise StoreError(
                f"{self.path}: not a probe database "
                f"(application_id {app_id:#x}; tables: {shown or 'none'}); left untouched"
            )

    def _check_integrity(self) -> None:
        """StoreError when SQLite's quick_check finds damage: nothing is written into it then.

        quick_check reads every page once (no index cross-check): well under a second for the
        databases of bench/ (docs/reliability.md), paid once per opening for writing.
        """
        if self.path == ":memory:":
            return
        problems = [r[0] for r in self.conn.execute("PRAGMA quick_check(5)")]
        if problems != ["ok"]:
            raise StoreError(
                f"{self.path}: the database is corrupt ({'; '.join(problems[:3])}); nothing was "
                f"written to it. Keep a copy, then try `sqlite3 {self.path} .recover`"
            )

    @property
    def db(self) -> sqlite_utils.Database:
        """The same connection as a :class:`sqlite_utils.Database`, for ad-hoc queries.

        Created on first use: importing sqlite-utils costs ~0.15 s (it imports numpy when
        installed), which `probe results` must not pay (issue 4: results in <= 1 s).
        """
        if self._db is None:
            import sqlite_utils

            self._db = sqlite_utils.Database(self.conn)
        return self._db

    def _tables(self) -> list[str]:
        return [r[0] for r in self.conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' "
            "ORDER BY name")]

    def close(self) -> None:
        """Close the connection (committed data is already on disk)."""
        self.conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _configure(self) -> None:
        c = self.conn
        if self.readonly:
            c.execute("PRAGMA query_only = 1")
            return
        if self.path != ":memory:":
            mode = c.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise StoreError(f"{self.path}: cannot switch to WAL journal mode (got {mode})")
        c.execute("PRAGMA synchronous = NORMAL")
        # 8 MiB: the writer appends, so a big cache only holds pages it will not read again
        # (32 MiB made most of the RSS growth in bench/); big reads are sequential scans anyway.
        c.execute("PRAGMA cache_size = -8192")
        c.execute("PRAGMA temp_store = MEMORY")

    def schema_version(self) -> int:
        """The highest migration applied (0 for an empty database)."""
        if "schema_migrations" not in self._tables():
            return 0
        row = self.conn.execute("SELECT max(version) FROM schema_migrations").fetchone()
        return int(row[0] or 0)

    def _migrate(self) -> None:
        c = self.conn  # a foreign database was refused by _refuse_foreign already
        current = self.schema_version()
        if current > SCHEMA_VERSION:
            raise StoreError(
                f"{self.path}: written by a newer probe (schema version {current}, this probe "
                f"knows up to {SCHEMA_VERSION}); upgrade probe to read it"
            )
        if current == SCHEMA_VERSION:
            return
        if self.readonly:
            raise StoreError(
                f"{self.path}: read-only, and written by an older probe (schema version "
                f"{current}); open it where probe can write, once, to upgrade it"
            )
        c.execute("BEGIN IMMEDIATE")
        try:
            c.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                "version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
            )
            c.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            c.execute("COMMIT")
        except BaseException:
            c.execute("ROLLBACK")
            raise
        for version, name, sql in MIGRATIONS:
            c.execute("BEGIN IMMEDIATE")
            try:
                # Re-check inside the lock: another process may have migrated meanwhile.
                done = c.execute(
                    "SELECT 1 FROM schema_migrations WHERE version = ?", (version,)
                ).fetchone()
                if not done:
                    for statement in _split_sql(sql):
                        c.execute(statement)
                    c.execute(
                        "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                        (version, name, _now()),
                    )
                c.execute("COMMIT")
            except BaseException:
                c.execute("ROLLBACK")
                raise
        c.execute("ANALYZE sqlite_schema")  # load the planner statistics into this connection

    # --- vantage points and runs -----------------------------------------------------------
    def vantage(self, name: str, **meta: Any) -> int:
        """The id of vantage point ``name``, created or updated with the metadata given.

        Known keys (``asn``, ``as_org``, ``country``, ``resolver``, ``network``) become columns;
        other keys go to the ``meta`` JSON. The probe's own public IP is never stored: keys
        such as ``ip`` or ``public_ip`` raise ``ValueError``. ``None`` values are ignored.
        """
        if not name:
            raise ValueError("a vantage point needs a name")
        private = _PRIVATE_KEYS.intersection(k.lower() for k in meta)
        if private:
            raise ValueError(f"refusing to store the probe's address ({', '.join(sorted(private))})")
        meta = {k: v for k, v in meta.items() if v is not None}
        cols = {k: meta.pop(k) for k in _VANTAGE_COLUMNS if k in meta}
        now = _now()
        c = self.conn
        c.execute("BEGIN IMMEDIATE")
        try:
            row = c.execute("SELECT id, meta FROM vantage_points WHERE name = ?", (name,)).fetchone()
            if row is None:
                cur = c.execute(
                    "INSERT INTO vantage_points (name, asn, as_org, country, resolver, network, "
                    "meta, created_at, updated_at, uid) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (name, *(cols.get(k) for k in _VANTAGE_COLUMNS), json.dumps(meta), now, now,
                     uuid7()),
                )
                vid = int(cur.lastrowid or 0)
            else:
                vid = int(row[0])
                merged = {**json.loads(row[1] or "{}"), **meta}
                sets = ", ".join(f"{k} = ?" for k in cols)
                c.execute(
                    f"UPDATE vantage_points SET {sets + ', ' if sets else ''}meta = ?, "
                    "updated_at = ? WHERE id = ?",
                    (*cols.values(), json.dumps(merged), now, vid),
                )
            c.execute("COMMIT")
        except BaseException:
            c.execute("ROLLBACK")
            raise
        return vid

    def start_run(self, vantage_id: int, lists: list[str], options: dict[str, Any]) -> int:
        """Record a new run (status ``running``, owned by this process) and return its id.

        Runs of this database left ``running`` by a process that is gone are closed first
        (:meth:`close_dead_runs`).
        """
        from probe import __version__
        from probe.store.owner import current_owner

        self.close_dead_runs()
        with self._transaction():
            cur = self.conn.execute(
                "INSERT INTO runs (vantage_id, started_at, software_version, lists, options, "
                "status, owner, uid) VALUES (?, ?, ?, ?, ?, 'running', ?, ?)",
                (vantage_id, _now(), __version__, json.dumps([str(x) for x in lists]),
                 json.dumps(options, default=str, sort_keys=True), current_owner().to_text(),
                 uuid7()),
            )
        return int(cur.lastrowid or 0)

    def resume_run(self, run: int | str) -> tuple[int, int]:
        """Reopen an interrupted run (an id or ``"latest"``) as ``running``, owned by this
        process; returns ``(run_id, vantage_id)``. Raises :class:`StoreError` when the run does
        not exist or did not end as interrupted (a complete run has nothing left to do)."""
        from probe.store.owner import current_owner

        self.close_dead_runs()  # a killed run is interrupted from now on
        if run == "latest":
            row = self.conn.execute(
                "SELECT id FROM runs WHERE status = 'interrupted' ORDER BY id DESC LIMIT 1"
            ).fetchone()
            if row is None:
                raise StoreError(f"{self.path}: no interrupted run to resume")
            run = int(row[0])
        run_id = int(run)
        with self._transaction():
            row = self.conn.execute(
                "SELECT status, vantage_id FROM runs WHERE id = ?", (run_id,)
            ).fetchone()
            if row is None:
                raise StoreError(f"{self.path}: no run {run_id}")
            if row[0] != "interrupted":
                raise StoreError(
                    f"{self.path}: run {run_id} is {row[0]}; only an interrupted run can be resumed"
                )
            self.conn.execute(
                "UPDATE runs SET status = 'running', finished_at = NULL, owner = ? WHERE id = ?",
                (current_owner().to_text(), run_id),
            )
        return run_id, int(row[1])

    def final_urls(self, run_id: int) -> Iterator[str]:
        """The URLs of a run that have a final verdict stored."""
        for (url,) in self.conn.execute(
            "SELECT url FROM measurements WHERE run_id = ? AND final = 1", (run_id,)
        ):
            yield url

    def set_run_identity(
        self, run_id: int, record: dict[str, Any], *, network_changed: bool | None = None
    ) -> None:
        """Store a run's network identity (:meth:`probe.identity.Identity.record` and checks).

        ``record`` holds ``start`` (and ``end``, ``checks``) identity records; the columns
        take the start's values. ``network_changed`` is NULL until the run's end was checked.
        """
        private = _PRIVATE_KEYS.intersection(k.lower() for k in record.get("start", {}))
        if private:
            raise ValueError(f"refusing to store the probe's address ({', '.join(sorted(private))})")
        start = record.get("start", {})
        with self._transaction():
            self.conn.execute(
                "UPDATE runs SET asn = ?, as_org = ?, country = ?, resolver_ip = ?, resolver_asn = ?, "
                "resolver_as_org = ?, network_changed = ?, identity = ? WHERE id = ?",
                (start.get("asn"), start.get("as_org"), start.get("country"), start.get("resolver_ip"),
                 start.get("resolver_asn"), start.get("resolver_as_org"),
                 None if network_changed is None else int(network_changed),
                 json.dumps(record, sort_keys=True), run_id),
            )

    def close_dead_runs(self) -> list[int]:
        """Mark ``interrupted`` the runs still ``running`` whose process is certainly gone.

        A probe killed by SIGKILL, a crash or a power cut cannot record its end. Such a run
        gets ``finished_at`` = its last stored measurement (or its start), and its counts; what
        it measured stays. Only runs started on this machine can be judged (see
        :func:`probe.store.owner.is_dead`). Returns the ids closed.
        """
        from probe.store.owner import Owner, current_owner, is_dead

        here = current_owner()
        dead = [
            run_id
            for run_id, text in self.conn.execute(
                "SELECT id, owner FROM runs WHERE status = 'running' AND owner IS NOT NULL"
            )
            if (owner := Owner.parse(text)) is not None and is_dead(owner, here)
        ]
        for run_id in dead:
            # Its process is gone: nothing more arrives, so its last measurement is its end.
            (last,) = self.conn.execute(
                "SELECT coalesce((SELECT max(measured_at) FROM measurements WHERE run_id = ?), "
                "started_at) FROM runs WHERE id = ?",
                (run_id, run_id),
            ).fetchone()
            self.finish_run(run_id, "interrupted", finished_at=last)
        return dead

    def finish_run(self, run_id: int, status: str, *, finished_at: str | None = None) -> None:
        """Close a run: its end time (default now), status and verdict counts."""
        if status not in RUN_STATUSES:
            raise ValueError(f"run status must be one of {', '.join(RUN_STATUSES)}, not {status!r}")
        with self._transaction():
            counts = self._counts(run_id)
            self.conn.execute(
                "UPDATE runs SET finished_at = ?, status = ?, n_measurements = ?, counts = ? "
                "WHERE id = ?",
                (finished_at or _now(), status, sum(counts.values()), json.dumps(counts), run_id),
            )

    def _counts(self, run_id: int) -> dict[str, int]:
        counts = dict.fromkeys(VERDICTS, 0)
        for verdict, n in self.conn.execute(
            "SELECT verdict, count(*) FROM measurements WHERE run_id = ? AND final = 1 "
            "GROUP BY verdict",
            (run_id,),
        ):
            counts[verdict] = n
        return counts

    def run_summary(self, run_id: int) -> dict[str, int]:
        """Final verdict counts of a run: every verdict of the vocabulary, zeros included."""
        return self._counts(run_id)

    def run_info(self, run_id: int) -> dict[str, Any] | None:
        """One run as a dict (vantage name, times, status, lists, options, counts), or None."""
        row = self.conn.execute(
            "SELECT r.id, v.name, r.started_at, r.finished_at, r.software_version, r.lists, "
            "r.options, r.status, r.n_measurements FROM runs r "
            "JOIN vantage_points v ON v.id = r.vantage_id WHERE r.id = ?",
            (run_id,),
        ).fetchone()
        if row is None:
            return None
        keys = ("run_id", "vantage", "started_at", "finished_at", "software_version", "lists",
                "options", "status", "n_measurements")
        info = dict(zip(keys, row, strict=True))
        info["lists"] = json.loads(info["lists"])
        info["options"] = json.loads(info["options"])
        info["counts"] = self._counts(run_id)
        return info

    def latest_run_id(self, vantage: str | None = None) -> int | None:
        """The most recent run (of vantage point ``vantage``, when given), or None."""
        if vantage is None:
            row = self.conn.execute("SELECT max(id) FROM runs").fetchone()
        else:
            row = self.conn.execute(
                "SELECT max(r.id) FROM runs r JOIN vantage_points v ON v.id = r.vantage_id "
                "WHERE v.name = ?",
                (vantage,),
            ).fetchone()
        return None if row[0] is None else int(row[0])

    # --- writing ---------------------------------------------------------------------------
    def _transaction(self) -> _Tx:
        return _Tx(self.conn)

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
        with self._transaction():
            mid = c.execute("SELECT coalesce(max(id), 0) FROM measurements").fetchone()[0]
            ids = _rows.IdCounters(
                c.execute("SELECT coalesce(max(id), 0) FROM dns_queries").fetchone()[0],
                c.execute("SELECT coalesce(max(id), 0) FROM dns_replies").fetchone()[0],
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
                self._insert(rows)
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

    def _insert(self, rows: _rows.Rows) -> None:
        x = self.conn.executemany
        x(
            "INSERT INTO measurements (id, run_id, vantage_id, url, original_url, domain, category, "
            "source, measured_at, started, runtime, attempt, final, failure, n_hops, final_url, "
            "verdict, stage, hop, reasons, classifier_version, uid) "
            "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            rows.measurements,
        )
        x("INSERT INTO observations (measurement_id, data) VALUES (?,?)", rows.observations)
        if rows.packets:
            x(
                "INSERT INTO packets (measurement_id, idx, t, proto, src, sport, dport, ttl, ip_id, "
                "df, flags, window, seq, ack, seq_rel, ack_rel, payload, digest) "
                "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                rows.packets,
            )
        if rows.queries:
            x(
                "INSERT INTO dns_queries (id, measurement_id, hop, control, resolver, transport, "
                "qtype, hostname, started, duration, failure, addresses, n_replies, n_distinct) "
                "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                rows.queries,
            )
        if rows.replies:
            x(
                "INSERT INTO dns_replies (id, query_id, idx, t, source, rcode, flags, ttl, raw) "
                "VALUES (?,?,?,?,?,?,?,?,?)",
                rows.replies,
            )
        if rows.answers:
            x("INSERT INTO dns_answers (reply_id, idx, type, value) VALUES (?,?,?,?)", rows.answers)
        if rows.tcp:
            x(
                "INSERT INTO tcp_connects (measurement_id, hop, ip, port, started, duration, "
                "failure) VALUES (?,?,?,?,?,?,?)",
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
                "INSERT INTO tls_handshakes (measurement_id, hop, ip, port, sni, started, duration, "
                "failure, version, cipher, alpn, cert_valid, leaf_sha256, leaf_subject, "
                "leaf_issuer, leaf_not_after, chain) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                rows.tls,
            )
        if rows.bodies:
            x("INSERT OR IGNORE INTO http_bodies (sha256, length, body) VALUES (?,?,?)", rows.bodies)
        if rows.http:
            x(
                "INSERT INTO http_requests (measurement_id, hop, url, ip, port, started, duration, "
                "failure, status, headers, location, body_length, body_sha256, body_truncated, "
                "title, body_ref) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                rows.http,
            )
        if rows.controls:
            x(
                "INSERT INTO controls (measurement_id, hop, source, url, failure, dns_failure, "
                "dns_addrs, http_failure, http_status, http_body_length, http_title, "
                "http_body_sha256, data) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                rows.controls,
            )

    def write_trace(self, trace: Any, vantage: str = "default") -> int:
        """Store a :class:`probe.trace.Trace` taken at ``vantage`` (``traces``, ``trace_hops``)."""
        import dataclasses

        vantage_id = self.vantage(vantage)
        with self._transaction():
            cur = self.conn.execute(
                "INSERT INTO traces (vantage_id, started_at, url, trigger, control_name, ip, port, "
                "censor_hop, placement, packets_sent, duration, data) "
                "VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                (vantage_id, _rows.iso(trace.started), trace.url, trace.trigger, trace.control_name, trace.ip,
                 trace.port, trace.censor_hop, trace.placement, trace.packets_sent, trace.duration,
                 json.dumps(dataclasses.asdict(trace))),
            )
            tid = int(cur.lastrowid or 0)
            self.conn.executemany(
                "INSERT INTO trace_hops (trace_id, ttl, probe, router, outcome, rtt) "
                "VALUES (?,?,?,?,?,?)",
                [(tid, p.ttl, p.probe, p.router, p.outcome, p.rtt) for p in trace.probes],
            )
        return tid

    def set_verdicts(self, updates: Sequence[tuple[int, Verdict]]) -> None:
        """Replace the verdicts of measurements (by id), in one transaction (reclassify)."""
        if not updates:
            return
        now = _now()
        with self._transaction():
            self.conn.executemany(
                "UPDATE measurements SET verdict = ?, stage = ?, hop = ?, reasons = ?, "
                "classifier_version = ?, classified_at = ? WHERE id = ?",
                [
                    (v.verdict, v.stage, v.hop, json.dumps(list(v.reasons)), v.classifier_version,
                     now, mid)
                    for mid, v in updates
                ],
            )

    # --- reading ---------------------------------------------------------------------------
    def runs(self, vantage: str | None = None, limit: int | None = None) -> Iterator[dict[str, Any]]:
        """Runs, newest first, as dicts (of vantage point ``vantage`` when given).

        Keys: run_id, vantage, started_at, finished_at, status, n_measurements, counts (verdict
        -> URLs; counted now for a run still ``running``), lists, software_version.
        """
        sql = (
            "SELECT r.id, v.name, r.started_at, r.finished_at, r.status, r.n_measurements, "
            "r.counts, r.lists, r.software_version FROM runs r "
            "JOIN vantage_points v ON v.id = r.vantage_id"
        )
        params: list[Any] = []
        if vantage is not None:
            sql += " WHERE v.name = ?"
            params.append(vantage)
        sql += " ORDER BY r.id DESC"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(int(limit))
        for r in self.conn.execute(sql, params).fetchall():
            counts = json.loads(r[6] or "{}")
            n = r[5]
            if r[4] == "running":
                counts = self._counts(r[0])
                n = sum(counts.values())
            yield {
                "run_id": r[0], "vantage": r[1], "started_at": r[2], "finished_at": r[3],
                "status": r[4], "n_measurements": n, "counts": counts,
                "lists": json.loads(r[7] or "[]"), "software_version": r[8],
            }

    def resolve_run(self, run: int | str | None, vantage: str | None = None) -> int | None:
        """``"latest"`` -> the latest run id (of ``vantage``); an id or digits -> that id.

        Raises :class:`StoreError` when there is no such run (or no run at all).
        """
        if run is None:
            return None
        if run == "latest":
            rid = self.latest_run_id(vantage)
            if rid is None:
                where = f" for vantage point {vantage!r}" if vantage else ""
                raise StoreError(f"{self.path}: no runs{where} yet")
            return rid
        try:
            rid = int(run)
        except (TypeError, ValueError):
            raise StoreError(f"run must be an id or 'latest', not {run!r}") from None
        if self.conn.execute("SELECT 1 FROM runs WHERE id = ?", (rid,)).fetchone() is None:
            raise StoreError(f"{self.path}: no run {rid}")
        return rid

    def results(
        self,
        run: int | str | None = "latest",
        verdict: str | Iterable[str] | None = None,
        vantage: str | None = None,
        limit: int | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Final verdicts, one dict per URL measured, in measurement order.

        ``run``: an id, ``"latest"`` (the latest run, of ``vantage`` when given) or None (every
        run). ``verdict``: one verdict or several (any of them). Keys: measurement_id, run_id,
        vantage, url, original_url, domain, category,
        measured_at, runtime, attempt, verdict, stage, hop, reasons (list), classifier_version.
        """
        rid = self.resolve_run(run, vantage)
        where = ["m.final = 1"]
        params: list[Any] = []
        if rid is not None:
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
            "SELECT m.id, m.run_id, v.name, m.url, m.original_url, m.domain, m.category, "
            "m.measured_at, m.runtime, m.attempt, m.verdict, m.stage, m.hop, m.reasons, "
            "m.classifier_version FROM measurements m "
            "JOIN vantage_points v ON v.id = m.vantage_id "
            f"WHERE {' AND '.join(where)} ORDER BY m.id"
        )
        if limit is not None:
            sql += " LIMIT ?"
            params.append(int(limit))
        for r in self.conn.execute(sql, params):
            yield {
                "measurement_id": r[0], "run_id": r[1], "vantage": r[2], "url": r[3],
                "original_url": r[4], "domain": r[5], "category": r[6], "measured_at": r[7],
                "runtime": r[8], "attempt": r[9], "verdict": r[10], "stage": r[11],
                "hop": r[12], "reasons": _reasons(r[13]), "classifier_version": r[14],
            }

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
        cur = self.conn.execute(sql, params)
        names = [d[0] for d in cur.description]
        at = names.index("reasons")
        for r in cur:
            d = dict(zip(names, r, strict=True))
            d["reasons"] = _reasons(r[at])
            yield d

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
        c = self.conn
        last = 0
        while True:
            if run_id is None:
                chunk = c.execute(
                    "SELECT m.id, o.data, verdict, stage, hop, reasons, classifier_version "
                    "FROM measurements m JOIN observations o ON o.measurement_id = m.id "
                    "WHERE m.id > ? ORDER BY m.id LIMIT ?",
                    (last, _CHUNK),
                ).fetchall()
            else:
                chunk = c.execute(
                    "SELECT m.id, o.data, verdict, stage, hop, reasons, classifier_version "
                    "FROM measurements m JOIN observations o ON o.measurement_id = m.id "
                    "WHERE m.run_id = ? AND m.id > ? ORDER BY m.id LIMIT ?",
                    (run_id, last, _CHUNK),
                ).fetchall()
            if not chunk:
                return
            lo, hi = chunk[0][0], chunk[-1][0]
            last = hi
            controls = self.controls_between(lo, hi)
            for mid, obs, verdict, stage, hop, reasons, version in chunk:
                m = self.rebuild(obs, controls.get(mid, {}))
                v = Verdict(verdict, stage, hop, tuple(json.loads(reasons)), version)
                yield mid, m, v

    def measurement(self, measurement_id: int) -> tuple[Measurement, Verdict] | None:
        """One stored measurement rebuilt in full, with its stored verdict (None: no such id)."""
        row = self.conn.execute(
            "SELECT o.data, verdict, stage, hop, reasons, classifier_version "
            "FROM measurements m JOIN observations o ON o.measurement_id = m.id WHERE m.id = ?",
            (measurement_id,),
        ).fetchone()
        if row is None:
            return None
        controls = dict(self.conn.execute(
            "SELECT hop, data FROM controls WHERE measurement_id = ?", (measurement_id,)
        ).fetchall())
        m = _rows.rebuild(row[0], controls, self._body, self._cert)
        return m, Verdict(row[1], row[2], row[3], tuple(json.loads(row[4])), row[5])

    def controls_between(self, lo: int, hi: int) -> dict[int, dict[int, str]]:
        """Control JSON of measurements ``lo``..``hi``: measurement id -> hop -> JSON."""
        controls: dict[int, dict[int, str]] = {}
        for mid, hop, data in self.conn.execute(
            "SELECT measurement_id, hop, data FROM controls WHERE measurement_id BETWEEN ? AND ?",
            (lo, hi),
        ):
            controls.setdefault(mid, {})[hop] = data
        return controls

    def rebuild(self, observations: str, controls: dict[int, str]) -> Measurement:
        """A stored measurement rebuilt in full from its observations JSON and its controls."""
        return _rows.rebuild(observations, controls, self._body, self._cert)

    def _body(self, sha: str) -> bytes:
        body = self._blob_cache.get(sha)
        if body is None:
            import zlib

            row = self.conn.execute(
                "SELECT body FROM http_bodies WHERE sha256 = ?", (sha,)
            ).fetchone()
            body = zlib.decompress(row[0]) if row else b""
            self._remember(sha, body)
        return body

    def _cert(self, sha: str) -> bytes:
        der = self._blob_cache.get(sha)
        if der is None:
            row = self.conn.execute(
                "SELECT der FROM certificates WHERE sha256 = ?", (sha,)
            ).fetchone()
            der = bytes(row[0]) if row else b""
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


def _reasons(text: str) -> list[str]:
    # Most verdicts (ok) have no reasons: skip the JSON parser for them.
    return [] if text == "[]" else json.loads(text)


class _Tx:
    """``BEGIN IMMEDIATE`` ... ``COMMIT`` (``ROLLBACK`` on any exception)."""

    __slots__ = ("conn",)

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def __enter__(self) -> None:
        self.conn.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            self.conn.execute("COMMIT")
        else:
            self.conn.execute("ROLLBACK")


def _split_sql(sql: str) -> list[str]:
    """Split a migration into statements (sqlite3.execute runs one at a time)."""
    out: list[str] = []
    buf: list[str] = []
    for line in sql.splitlines():
        if line.strip().startswith("--") and not buf:
            continue
        buf.append(line)
        candidate = "\n".join(buf)
        if sqlite3.complete_statement(candidate):
            out.append(candidate.strip())
            buf = []
    if "".join(buf).strip():
        out.append("\n".join(buf).strip())
    return out
