"""Global ids: UUIDv7 for vantage points, runs and measurements, and their backfill."""

from __future__ import annotations

import sqlite3
import uuid
from pathlib import Path

from store_samples import sample_measurement, sample_verdict

from probe.store import SCHEMA_VERSION, Store
from probe.store.uid import UID_RE, sql_uuid7, uuid7


def test_uuid7_is_rfc9562_version_7_with_the_given_time() -> None:
    u = uuid7(1_790_000_000_123)
    parsed = uuid.UUID(u)
    assert parsed.version == 7 and parsed.variant == uuid.RFC_4122
    assert int(u.replace("-", "")[:12], 16) == 1_790_000_000_123
    assert UID_RE.match(u)


def test_uuid7_values_are_distinct_and_sort_by_time() -> None:
    many = {uuid7(1000) for _ in range(10_000)}
    assert len(many) == 10_000
    assert uuid7(1000) < uuid7(2000) < uuid7()


def test_sql_uuid7_matches_the_python_form() -> None:
    conn = sqlite3.connect(":memory:")
    values = [conn.execute(f"SELECT {sql_uuid7('1790000000123')}").fetchone()[0] for _ in range(200)]
    assert all(UID_RE.match(v) for v in values), values[:3]
    assert len(set(values)) == 200
    assert {v[:13] for v in values} == {uuid7(1_790_000_000_123)[:13]}
    assert uuid.UUID(values[0]).version == 7


def test_every_written_row_gets_a_uid_with_its_own_time() -> None:
    with Store.open(":memory:") as store:
        vid = store.vantage("home")
        run = store.start_run(vid, [], {})
        m = sample_measurement(0, started=1_790_000_000.5)
        store.write(run, vid, [(m, sample_verdict())])
        (v_uid,) = store.conn.execute("SELECT uid FROM vantage_points").fetchone()
        (r_uid,) = store.conn.execute("SELECT uid FROM runs").fetchone()
        (m_uid,) = store.conn.execute("SELECT uid FROM measurements").fetchone()
    assert all(UID_RE.match(u) for u in (v_uid, r_uid, m_uid))
    assert int(m_uid.replace("-", "")[:12], 16) == 1_790_000_000_500


def test_database_from_before_uids_is_backfilled_with_distinct_uids(tmp_path: Path) -> None:
    from probe.store.schema import MIGRATIONS

    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    conn.executescript(MIGRATIONS[0][2])
    conn.executescript(MIGRATIONS[1][2])
    conn.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, "
                 "applied_at TEXT NOT NULL)")
    conn.executemany("INSERT INTO schema_migrations VALUES (?, ?, '2026-11-01')",
                     [(1, "initial schema"), (2, "run owners")])
    conn.execute("INSERT INTO vantage_points (name, created_at, updated_at) "
                 "VALUES ('v', '2026-11-01T10:00:00.000Z', 't')")
    conn.execute("INSERT INTO runs (vantage_id, started_at, software_version) "
                 "VALUES (1, '2026-11-01T10:00:01.250Z', '0')")
    conn.executemany(
        "INSERT INTO measurements (run_id, vantage_id, url, original_url, domain, measured_at, "
        "started, runtime, verdict) VALUES (1, 1, ?, ?, 'a', 't', ?, 0.1, 'ok')",
        [(f"http://a/{i}", f"http://a/{i}", 1_790_000_000.0 + i) for i in range(50)],
    )
    conn.commit()
    conn.close()
    with Store.open(path) as s:
        assert s.schema_version() == SCHEMA_VERSION
        uids = [r[0] for r in s.conn.execute("SELECT uid FROM measurements ORDER BY id")]
        (run_uid,) = s.conn.execute("SELECT uid FROM runs").fetchone()
    assert len(set(uids)) == 50 and all(UID_RE.match(u) for u in uids)
    assert uids == sorted(uids)  # their time part is each measurement's start
    assert int(run_uid.replace("-", "")[:12], 16) == 1_793_527_201_250  # 2026-11-01T10:00:01.250Z


def test_endpoint_measurements_of_a_schema_8_database_are_backfilled_with_uids(tmp_path: Path) -> None:
    from probe.store.schema import MIGRATIONS

    path = tmp_path / "v8.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, "
                 "applied_at TEXT NOT NULL)")
    for version, name, sql in MIGRATIONS[:8]:
        conn.executescript(sql)
        conn.execute("INSERT INTO schema_migrations VALUES (?, ?, '2026-11-01')", (version, name))
    conn.execute("INSERT INTO vantage_points (name, created_at, updated_at) VALUES ('v', 't', 't')")
    conn.execute("INSERT INTO runs (vantage_id, started_at, software_version) VALUES (1, 't', '0')")
    conn.executemany(
        "INSERT INTO endpoint_measurements (run_id, vantage_id, suite, kind, name, address, port, "
        "transport, measured_at, runtime, verdict, observation) "
        "VALUES (1, 1, 'circumvention', 'tor', ?, '192.0.2.1', 443, 'tcp', ?, 0.1, 'ok', '{}')",
        [(f"r{i}", f"2026-11-01T10:00:0{i}.000Z") for i in range(5)],
    )
    conn.commit()
    conn.close()
    with Store.open(path) as s:
        assert s.schema_version() == SCHEMA_VERSION
        uids = [r[0] for r in s.conn.execute("SELECT uid FROM endpoint_measurements ORDER BY id")]
    assert len(set(uids)) == 5 and all(UID_RE.match(u) for u in uids)
    assert uids == sorted(uids)  # their time part is each endpoint measurement's start
