"""Endpoint results are read from the database by column name, never by position."""

from __future__ import annotations

import json
from typing import Any

from probe.core.model import EndpointObservation, Verdict
from probe.store import Store
from probe.store.circumvention import (
    RESULT_KEYS,
    endpoint_measurements_at,
    endpoint_results,
    latest_endpoints,
    write_endpoints,
)

T0 = 1_790_000_000.0


def _store_one(store: Store) -> None:
    # Every field has a value no other field has, so a value read into the wrong key shows.
    vid = store.vantage("kazan")
    run = store.start_run(vid, ["endpoints.csv"], {"suite": "circumvention"})
    obs = EndpointObservation(kind="obfs4", name="bridge-7", address="198.51.100.9", port=4431,
                              transport="tcp", started=T0, runtime=0.75, source="bridges.csv:9",
                              tcp_failure="connection_reset")  # fmt: skip
    verdict = Verdict("reset", "tcp", None, ("tcp/reset:198.51.100.9:4431",), "circumvention-1")
    write_endpoints(store, run, vid, "circumvention", [(obs, None, verdict)])
    store.finish_run(run, "complete")


EXPECTED: dict[str, Any] = {
    "id": 1, "run_id": 1, "vantage": "kazan", "suite": "circumvention", "kind": "obfs4",
    "name": "bridge-7", "address": "198.51.100.9", "port": 4431, "transport": "tcp",
    "measured_at": "2026-09-21T14:13:20.000Z", "runtime": 0.75, "verdict": "reset", "stage": "tcp",
    "reasons": ["tcp/reset:198.51.100.9:4431"], "source": "bridges.csv:9",
}  # fmt: skip


def _read(store: Store) -> tuple[list[dict[str, Any]], ...]:
    return (list(endpoint_results(store)), latest_endpoints(store),
            endpoint_measurements_at(store, "198.51.100.9", 4431))  # fmt: skip


def test_endpoint_results_put_each_stored_value_under_its_own_key() -> None:
    with Store.open(":memory:") as store:
        _store_one(store)
        results, latest, at = _read(store)
    assert results == [EXPECTED] and latest == [EXPECTED]
    assert list(results[0]) == list(RESULT_KEYS)  # the order `--json` and `--csv` print
    (shown,) = at
    assert {k: shown[k] for k in RESULT_KEYS} == EXPECTED
    assert shown["classifier_version"] == "circumvention-1" and shown["control"] is None
    observation = shown["observation"]
    assert (observation["tcp_failure"], observation["name"]) == ("connection_reset", "bridge-7")


def test_a_table_rebuilt_with_its_columns_reordered_and_one_added_reads_the_same() -> None:
    with Store.open(":memory:") as store:
        _store_one(store)
        before = _read(store)
        c = store.conn
        # What a migration that rebuilds the table may do: other column order, a new column.
        columns = [r[1] for r in c.execute("PRAGMA table_info(endpoint_measurements)")]
        reordered = ", ".join([*reversed(columns[1:]), "'extra' AS added", columns[0]])
        # The views that read the table (ooni_endpoint_disagreements) are dropped and made again
        # around the rebuild, as SQLite's rebuild procedure does.
        views = c.execute("SELECT name, sql FROM sqlite_master WHERE type = 'view' "
                          "AND sql LIKE '%endpoint_measurements%'").fetchall()
        with store.transaction():
            for name, _ in views:
                c.execute(f"DROP VIEW {name}")
            c.execute(f"CREATE TABLE rebuilt AS SELECT {reordered} FROM endpoint_measurements")
            c.execute("DROP TABLE endpoint_measurements")
            c.execute("ALTER TABLE rebuilt RENAME TO endpoint_measurements")
            for _, sql in views:
                c.execute(sql)
        assert next(r[1] for r in c.execute("PRAGMA table_info(endpoint_measurements)")) != "id"
        after = _read(store)
    assert after == before
    assert json.dumps(after[0][0]) == json.dumps(EXPECTED)
