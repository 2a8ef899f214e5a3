"""Vantage points and runs: creating, resuming, closing and listing them."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Any

from probe import __version__
from probe.core.model import VERDICTS
from probe.store.connection import Connection, StoreError, dict_rows
from probe.store.names import LIKE_SUFFIXED, base_name, suffixed_like
from probe.store.owner import Owner, current_owner, is_dead
from probe.store.rows import now as _now
from probe.store.uid import uuid7

__all__ = ["RUN_STATUSES", "Runs"]

#: Final states of a run (``running`` is the state while it runs).
RUN_STATUSES = ("complete", "interrupted", "offline", "failed")

# Keys that would identify the person running the probe: refused in vantage metadata.
_PRIVATE_KEYS = frozenset({"ip", "public_ip", "probe_ip", "client_ip", "address", "addr"})
_VANTAGE_COLUMNS = ("asn", "as_org", "country", "resolver", "network")


class Runs(Connection):
    """The vantage points and runs of a database."""

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
        with self.transaction():
            row = self._row("SELECT id, meta FROM vantage_points WHERE name = ?", (name,))
            if row is None:
                record = {"name": name, **dict.fromkeys(_VANTAGE_COLUMNS), **cols,
                          "meta": json.dumps(meta), "created_at": now, "updated_at": now,
                          "uid": uuid7()}  # fmt: skip
                return self.insert_records("vantage_points", [record])
            merged = {**json.loads(row["meta"] or "{}"), **meta}
            self._update("vantage_points", row["id"],
                         {**cols, "meta": json.dumps(merged), "updated_at": now})  # fmt: skip
            return int(row["id"])

    def start_run(self, vantage_id: int, lists: list[str], options: dict[str, Any]) -> int:
        """Record a new run (status ``running``, owned by this process) and return its id.

        Runs of this database left ``running`` by a process that is gone are closed first
        (:meth:`close_dead_runs`).
        """
        self.close_dead_runs()
        record = {
            "vantage_id": vantage_id,
            "started_at": _now(),
            "software_version": __version__,
            "lists": json.dumps([str(x) for x in lists]),
            "options": json.dumps(options, default=str, sort_keys=True),
            "status": "running",
            "owner": current_owner().to_text(),
            "uid": uuid7(),
        }
        with self.transaction():
            return self.insert_records("runs", [record])

    def interrupted_run(self, run: int | str) -> int:
        """The id of the interrupted run ``run`` names (an id, or ``"latest"``: the newest).

        Runs left ``running`` by a process that is gone are closed first. Raises
        :class:`StoreError` when the run does not exist or did not end as interrupted (a
        complete run has nothing left to do).
        """
        self.close_dead_runs()  # a killed run is interrupted from now on
        if run == "latest":
            latest = self._value(
                "SELECT id FROM runs WHERE status = 'interrupted' ORDER BY id DESC LIMIT 1"
            )
            if latest is None:
                raise StoreError(f"{self.path}: no interrupted run to resume")
            return int(latest)
        run_id = int(run)
        status = self._value("SELECT status FROM runs WHERE id = ?", (run_id,))
        if status is None:
            raise StoreError(f"{self.path}: no run {run_id}")
        if status != "interrupted":
            raise StoreError(f"{self.path}: run {run_id} is {status}; "
                             "only an interrupted run can be resumed")  # fmt: skip
        return run_id

    def resume_run(self, run: int | str) -> tuple[int, int]:
        """Reopen an interrupted run (an id or ``"latest"``) as ``running``, owned by this
        process; returns ``(run_id, vantage_id)``. Raises :class:`StoreError` as
        :meth:`interrupted_run` does."""
        run_id = self.interrupted_run(run)
        with self.transaction():
            row = self._row("SELECT status, vantage_id FROM runs WHERE id = ?", (run_id,))
            if row is None or row["status"] != "interrupted":  # another process took it since
                raise StoreError(f"{self.path}: run {run_id} is no longer interrupted")
            self._update("runs", run_id, {
                "status": "running", "finished_at": None, "owner": current_owner().to_text()})  # fmt: skip
        return run_id, int(row["vantage_id"])

    def final_urls(self, run_id: int) -> Iterator[str]:
        """The URLs of a run that have a final verdict stored."""
        for row in self._rows("SELECT url FROM measurements WHERE run_id = ? AND final = 1", (run_id,)):
            yield row["url"]

    def set_run_identity(
        self, run_id: int, record: dict[str, Any], *, network_changed: bool | None = None
    ) -> None:
        """Store a run's network identity (:meth:`probe.measure.identity.Identity.record` and checks).

        ``record`` holds ``start`` (and ``end``, ``checks``) identity records; the columns
        take the start's values. ``network_changed`` is NULL until the run's end was checked.
        """
        private = _PRIVATE_KEYS.intersection(k.lower() for k in record.get("start", {}))
        if private:
            raise ValueError(f"refusing to store the probe's address ({', '.join(sorted(private))})")
        start = record.get("start", {})
        columns = ("asn", "as_org", "country", "resolver_ip", "resolver_asn", "resolver_as_org")
        updates = {k: start.get(k) for k in columns}
        updates["network_changed"] = None if network_changed is None else int(network_changed)
        updates["identity"] = json.dumps(record, sort_keys=True)
        with self.transaction():
            self._update("runs", run_id, updates)

    def close_dead_runs(self) -> list[int]:
        """Mark ``interrupted`` the runs still ``running`` whose process is certainly gone.

        A probe killed by SIGKILL, a crash or a power cut cannot record its end. Such a run
        gets ``finished_at`` = its last stored measurement (or its start), and its counts; what
        it measured stays. Only runs started on this machine can be judged (see
        :func:`probe.store.owner.is_dead`). Returns the ids closed.
        """
        here = current_owner()
        dead = [
            int(row["id"])
            for row in self._rows("SELECT id, owner FROM runs WHERE status = 'running' AND owner IS NOT NULL")
            if (owner := Owner.parse(row["owner"])) is not None and is_dead(owner, here)
        ]
        for run_id in dead:
            # Its process is gone: nothing more arrives, so its last measurement is its end.
            last = self._value(
                "SELECT coalesce((SELECT max(measured_at) FROM measurements WHERE run_id = ?), "
                "started_at) FROM runs WHERE id = ?",
                (run_id, run_id),
            )
            self.finish_run(run_id, "interrupted", finished_at=last)
        return dead

    def finish_run(self, run_id: int, status: str, *, finished_at: str | None = None) -> None:
        """Close a run: its end time (default now), status and verdict counts."""
        if status not in RUN_STATUSES:
            raise ValueError(f"run status must be one of {', '.join(RUN_STATUSES)}, not {status!r}")
        with self.transaction():
            counts = self._counts(run_id)
            self._update("runs", run_id, {"finished_at": finished_at or _now(), "status": status,
                                      "n_measurements": sum(counts.values()),
                                      "counts": json.dumps(counts)})  # fmt: skip

    def _counts(self, run_id: int) -> dict[str, int]:
        counts = dict.fromkeys(VERDICTS, 0)
        for row in self._rows(
            "SELECT verdict, count(*) AS n FROM measurements WHERE run_id = ? AND final = 1 "
            "GROUP BY verdict",
            (run_id,),
        ):
            counts[row["verdict"]] = row["n"]
        return counts

    def run_summary(self, run_id: int) -> dict[str, int]:
        """Final verdict counts of a run: every verdict of the vocabulary, zeros included."""
        return self._counts(run_id)

    def run_info(self, run_id: int) -> dict[str, Any] | None:
        """One run as a dict (vantage name, times, status, lists, options, counts), or None."""
        info = next(dict_rows(self.conn.execute(
            "SELECT r.id AS run_id, v.name AS vantage, r.started_at, r.finished_at, "
            "r.software_version, r.lists, r.options, r.status, r.n_measurements FROM runs r "
            "JOIN vantage_points v ON v.id = r.vantage_id WHERE r.id = ?",
            (run_id,),
        )), None)  # fmt: skip
        if info is None:
            return None
        info["lists"] = json.loads(info["lists"])
        info["options"] = json.loads(info["options"])
        info["counts"] = self._counts(run_id)
        return info

    def latest_run_id(self, vantage: str | None = None) -> int | None:
        """The most recent run (of vantage point ``vantage``, when given), or None."""
        if vantage is None:
            rid = self._value("SELECT max(id) FROM runs")
        else:
            rid = self._value(
                "SELECT max(r.id) FROM runs r JOIN vantage_points v ON v.id = r.vantage_id "
                "WHERE v.name = ?",
                (vantage,),
            )
        return None if rid is None else int(rid)

    def database_uids(self) -> tuple[str, list[str]]:
        """This database's global id, and those of the databases merged into it (oldest first)."""
        own = self._value("SELECT value FROM probe_meta WHERE key = 'uid'")
        merged = [str(r["uid"]) for r in self._rows(
            "SELECT uid FROM merged_sources ORDER BY merged_at, uid")]
        return str(own), merged

    def latest_runs(self) -> list[tuple[str, int]]:
        """(vantage point, its latest run id) for every vantage point with a run, by name."""
        return [(str(row["vantage"]), int(row["run_id"])) for row in self._rows(
            "SELECT v.name AS vantage, max(r.id) AS run_id FROM runs r "
            "JOIN vantage_points v ON v.id = r.vantage_id GROUP BY r.vantage_id ORDER BY v.name")]

    def _renamed_hint(self, name: str | None) -> str:
        """``" (a merge renamed it apart: home~4d5e6f70, home~9a8b7c6d)"`` when ``name`` was
        renamed apart by a merge (probe/store/names.py), else ``""``."""
        if not name:
            return ""
        found = [row["name"] for row in self._rows(
            f"SELECT name, uid FROM vantage_points WHERE {LIKE_SUFFIXED} ORDER BY name",
            (suffixed_like(name),)) if base_name(row["name"], row["uid"]) == name]
        return f" (a merge renamed it apart: {', '.join(found)})" if found else ""

    def vantage_ids(self, names: Sequence[str] | None = None) -> dict[str, int]:
        """Vantage point name -> id: every one, by name, or those named, in that order.

        Raises ``KeyError`` naming the unknown ones (comma-separated) when a name is not there.
        """
        known = {row["name"]: int(row["id"])
                 for row in self._rows("SELECT name, id FROM vantage_points ORDER BY name")}  # fmt: skip
        if not names:
            return known
        missing = [n for n in names if n not in known]
        if missing:
            raise KeyError(", ".join(missing))
        return {n: known[n] for n in names}

    def run_ids(self) -> list[int]:
        """Every run's id, oldest first."""
        return [int(row["id"]) for row in self._rows("SELECT id FROM runs ORDER BY id")]

    def run_vantage_id(self, run_id: int) -> int | None:
        """The id of the vantage point that made run ``run_id`` (None: no such run)."""
        vid = self._value("SELECT vantage_id FROM runs WHERE id = ?", (run_id,))
        return None if vid is None else int(vid)

    def previous_run(self, vantage_id: int, run_id: int) -> int | None:
        """The vantage point's run before ``run_id`` (by id), or None when it is the first."""
        rid = self._value("SELECT max(id) FROM runs WHERE vantage_id = ? AND id < ?", (vantage_id, run_id))
        return None if rid is None else int(rid)

    def runs(self, vantage: str | None = None, limit: int | None = None) -> Iterator[dict[str, Any]]:
        """Runs, newest first, as dicts (of vantage point ``vantage`` when given).

        Keys: run_id, vantage, started_at, finished_at, status, n_measurements, counts (verdict
        -> URLs; counted now for a run still ``running``), lists, software_version.
        """
        sql = (
            "SELECT r.id AS run_id, v.name AS vantage, r.started_at, r.finished_at, r.status, "
            "r.n_measurements, r.counts, r.lists, r.software_version FROM runs r "
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
        for run in list(dict_rows(self.conn.execute(sql, params))):
            run["counts"] = json.loads(run["counts"] or "{}")
            if run["status"] == "running":
                run["counts"] = self._counts(run["run_id"])
                run["n_measurements"] = sum(run["counts"].values())
            run["lists"] = json.loads(run["lists"] or "[]")
            yield run

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
                raise StoreError(f"{self.path}: no runs{where} yet{self._renamed_hint(vantage)}")
            return rid
        try:
            rid = int(run)
        except (TypeError, ValueError):
            raise StoreError(f"run must be an id or 'latest', not {run!r}") from None
        if self._value("SELECT 1 FROM runs WHERE id = ?", (rid,)) is None:
            raise StoreError(f"{self.path}: no run {rid}")
        return rid
