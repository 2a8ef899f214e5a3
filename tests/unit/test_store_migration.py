"""Migration 11 (compact observations) on databases written by the probe before it: of schema
version 9 (before main's protocol verdicts) and of version 10 (with them).

tests/fixtures/store/v9.sql is a dump of a database of schema version 9 written by probe as of
c86cfa8 (two vantage points, a retry, a control that timed its fetch, a measurement without
control or certificate); v9-measurements.json is what that probe rebuilt from it.
"""

from __future__ import annotations

import json
import sqlite3
import zlib
from pathlib import Path

import msgspec
import pytest

import probe.judge.classify
from probe.core.codec import from_data
from probe.core.model import Measurement
from probe.host.data import DATA_DIR
from probe.run.reclassify import reclassify
from probe.store import SCHEMA_VERSION, Store
from probe.store.merge import merge
from probe.store.observations import ObservationsError, json_text, pack, unpack

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "store"


@pytest.fixture
def old_db(tmp_path: Path) -> Path:
    path = tmp_path / "v9.db"
    conn = sqlite3.connect(path)
    conn.executescript((FIXTURES / "v9.sql").read_text())
    conn.close()
    return path


def _expected() -> list[Measurement]:
    return [from_data(Measurement, d) for d in json.loads((FIXTURES / "v9-measurements.json").read_text())]


def test_old_database_migrates_and_rebuilds_the_same_measurements(old_db: Path) -> None:
    conn = sqlite3.connect(old_db)
    assert conn.execute("SELECT max(version) FROM schema_migrations").fetchone()[0] == 9
    controls = conn.execute("SELECT count(*) FROM controls").fetchone()[0]
    conn.close()
    with Store.open(old_db, create=False) as store:
        assert store.schema_version() == SCHEMA_VERSION == 14
        assert [m for _, m in store.iter_measurements()] == _expected()
        cols = {t: [r[1] for r in store.conn.execute(f"PRAGMA table_info({t})")]
                for t in ("controls", "dns_replies", "tls_handshakes", "http_requests")}
        assert "data" not in cols["controls"] and "raw" not in cols["dns_replies"]
        assert not {"leaf_subject", "chain", "started", "cipher"} & set(cols["tls_handshakes"])
        assert "headers" not in cols["http_requests"]
        # Nothing of the controls was lost: the flat rows stay, the one that timed its fetch
        # says so, and each control is back in its hop.
        assert store.conn.execute("SELECT count(*) FROM controls").fetchone()[0] == controls
        assert store.conn.execute(
            "SELECT count(*) FROM controls WHERE http_transfer = 0.4").fetchone()[0] == 4
        assert store.conn.execute(
            "SELECT count(*) FROM tls_certificates WHERE leaf_subject = 'CN=www.example.org'"
        ).fetchone()[0] == 6
        kinds = {r[0] for r in store.conn.execute("SELECT typeof(data) FROM observations")}
        assert kinds == {"blob"}


def test_reclassify_gives_the_same_verdicts_after_the_migration(old_db: Path) -> None:
    expected = [probe.judge.classify.classify(m) for m in _expected()]
    with Store.open(old_db, create=False) as store:
        got = [probe.judge.classify.classify(m) for _, m in store.iter_measurements()]
        assert got == expected
        reclassify(store)
        stored = [v for _, _, v in store.iter_judged()]
    assert [(v.verdict, v.stage, v.reasons) for v in stored] == [
        (v.verdict, v.stage, v.reasons) for v in expected]


def test_packed_observations_round_trip_and_refuse_damage() -> None:
    data = {"target": {"url": "http://a.example/"}, "hops": [], "started": 1.5e9 + 0.123}
    blob = pack(data)
    assert blob[0] == 2 and unpack(blob) == data
    assert json.loads(json_text(blob) or "") == data
    for bad in (blob[:-3], blob[:10] + bytes([blob[10] ^ 0xFF]) + blob[11:], b"\x09" + blob[1:], b""):
        with pytest.raises(ObservationsError):
            unpack(bad)
        assert json_text(bad) is None
    with pytest.raises(ObservationsError, match="JSON text"):
        unpack("{}")  # type: ignore[arg-type]


def test_format_1_values_stay_readable_beside_format_2() -> None:
    # Format 1's dictionary was made before the QUIC and ECH fields; values packed against it
    # (by the branch that made it) read as before, and new values are written in format 2.
    data = {"target": {"url": "http://a.example/"}, "hops": [{"index": 0, "quic": []}]}
    c = zlib.compressobj(6, zlib.DEFLATED, zlib.MAX_WBITS, 9, zlib.Z_DEFAULT_STRATEGY,
                         (DATA_DIR / "observations-dict-1.json").read_bytes())
    old = b"\x01" + c.compress(msgspec.json.encode(data)) + c.flush()
    assert unpack(old) == data and json.loads(json_text(old) or "") == data
    assert pack(data)[0] == 2 and unpack(pack(data)) == data
    with pytest.raises(ObservationsError):  # another format's dictionary: refused, not misread
        unpack(b"\x02" + old[1:])


# --- a database of main's schema version 10 (protocol verdicts) --------------------------------
# tests/fixtures/store/v10.sql: written by probe as of be9d593 (tests/fixtures/store/write_v10.py):
# two vantage points whose runs stored their identity and selection, the sample measurements, two
# URLs per run measured with --quic --ech (their protocol verdicts), endpoint measurements of the
# tunnels kinds (tor, doh, wireguard). v10-measurements.json: what that probe rebuilt from it.

_ENDPOINT_COLUMNS = ("uid, run_id, vantage_id, suite, kind, name, address, port, transport, source, "
                     "measured_at, runtime, tcp_failure, handshake, handshake_failure, verdict, "
                     "stage, reasons, classifier_version, observation, control")


@pytest.fixture
def v10_db(tmp_path: Path) -> Path:
    path = tmp_path / "v10.db"
    conn = sqlite3.connect(path)
    conn.executescript((FIXTURES / "v10.sql").read_text())
    conn.close()
    return path


def _v10_rows(conn: sqlite3.Connection) -> dict[str, list[tuple[object, ...]]]:
    """What a migration must keep as it was: the protocol verdicts (by measurement uid), the
    endpoint measurements, the runs' identity and options (their selection) and the web verdicts."""
    return {
        "protocol_verdicts": conn.execute(
            "SELECT m.uid, p.suite, p.verdict, p.stage, p.hop, p.reasons, p.classifier_version "
            "FROM protocol_verdicts p JOIN measurements m ON m.id = p.measurement_id "
            "ORDER BY m.uid, p.suite").fetchall(),
        "endpoint_measurements": conn.execute(
            f"SELECT {_ENDPOINT_COLUMNS} FROM endpoint_measurements ORDER BY id").fetchall(),
        "runs": conn.execute("SELECT uid, options, identity, asn, country, resolver_asn, status "
                             "FROM runs ORDER BY id").fetchall(),
        "measurements": conn.execute("SELECT uid, url, attempt, final, verdict, stage, reasons "
                                     "FROM measurements ORDER BY id").fetchall(),
    }


def _expected_v10() -> list[Measurement]:
    return [from_data(Measurement, d)
            for d in json.loads((FIXTURES / "v10-measurements.json").read_text())]


def test_main_v10_database_migrates_keeping_protocol_verdicts_and_endpoints(v10_db: Path) -> None:
    conn = sqlite3.connect(v10_db)
    assert conn.execute("SELECT max(version) FROM schema_migrations").fetchone()[0] == 10
    before = _v10_rows(conn)
    conn.close()
    assert len(before["protocol_verdicts"]) == 8 and len(before["endpoint_measurements"]) == 6
    with Store.open(v10_db, create=False) as store:
        assert store.schema_version() == SCHEMA_VERSION == 14
        assert [m for _, m in store.iter_measurements()] == _expected_v10()
        assert _v10_rows(store.conn) == before
        assert {r[0] for r in store.conn.execute("SELECT typeof(data) FROM observations")} == {"blob"}
        # The QUIC and ECH observations are packed in their hops, the control's answers with them.
        quic = [unpack(d) for (d,) in store.conn.execute(
            "SELECT o.data FROM observations o JOIN protocol_verdicts p "
            "ON p.measurement_id = o.measurement_id AND p.suite = 'quic' "
            "WHERE p.verdict = 'blocked'")]  # fmt: skip
        assert len(quic) == 2
        hop = quic[0]["hops"][0]
        assert len(hop["quic"]) == 2 and hop["decoy_quic"] and len(hop["ech"]) == 2
        assert hop["control"]["quic"][0]["ok"] is True
        own, merged = store.database_uids()
        assert own and merged == []
        selection = json.loads(before["runs"][0][1])["selection"]
        assert selection["lists"] == [{"name": "list.csv", "sha256": "00" * 32}]


def test_reclassify_after_the_v10_migration_changes_nothing(v10_db: Path) -> None:
    with Store.open(v10_db, create=False) as store:
        before = _v10_rows(store.conn)
        report = reclassify(store)
        assert (report.judged, report.changed) == (12, 0)
        assert (report.endpoints_judged, report.endpoints_changed) == (6, 0)
        assert _v10_rows(store.conn) == before


def test_merge_of_migrated_v9_and_v10_databases_copies_every_table(
        old_db: Path, v10_db: Path, tmp_path: Path) -> None:
    out = tmp_path / "all.db"
    for db in (old_db, v10_db):  # migrated (merge never writes its sources: their upgraded
        Store.open(db, create=False).close()  # copies would draw other database ids)
    merge(out, [old_db, v10_db])
    merge(out, [v10_db, old_db])  # again, the other way round: nothing twice
    with Store.open(v10_db, create=False) as store:
        expected = _v10_rows(store.conn)
        v10_uid = store.database_uids()[0]
    with Store.open(old_db, create=False) as store:
        v9_uid = store.database_uids()[0]
    with Store.open(out, create=False) as store:
        got = _v10_rows(store.conn)
        assert got["protocol_verdicts"] == expected["protocol_verdicts"]
        endpoints = store.conn.execute("SELECT e.uid, v.name, e.kind, e.observation "
                                       "FROM endpoint_measurements e "
                                       "JOIN vantage_points v ON v.id = e.vantage_id").fetchall()
        assert sorted(e[0] for e in endpoints) == sorted(r[0] for r in expected["endpoint_measurements"])
        assert {e[2] for e in endpoints} == {"tor", "doh", "wireguard"}
        # Both databases have a moscow and an almaty: each is told apart by its uid, whatever the
        # order, and the endpoint measurements follow their vantage points' new names.
        names = sorted(n for (n,) in store.conn.execute("SELECT name FROM vantage_points"))
        assert len(names) == 4 and all("~" in n for n in names)
        assert {n.split("~")[0] for _, n, _, _ in endpoints} == {"moscow", "almaty"}
        merged = store.database_uids()[1]
        assert sorted(merged) == sorted([v9_uid, v10_uid])  # each source once, as merged into it
        assert store.conn.execute("SELECT count(*) FROM measurements").fetchone()[0] == 8 + 12
        assert len([m for _, m in store.iter_measurements()]) == 20


def test_parquet_export_of_a_migrated_v10_database_has_the_protocol_verdicts(
        v10_db: Path, tmp_path: Path) -> None:
    pq = pytest.importorskip("pyarrow.parquet")
    from probe.research.export.parquet import write_parquet
    from probe.store.export import Filters

    with Store.open(v10_db, create=False) as store:
        counts = write_parquet(store, tmp_path / "out", Filters(all_attempts=True))
        dataset = write_parquet(store, tmp_path / "ds", Filters(all_attempts=True),
                                partition_by=("country", "date"))
        own = store.database_uids()[0]
    assert counts["protocol_verdicts"] == dataset["protocol_verdicts"] == 8
    table = pq.read_table(tmp_path / "out" / "protocol_verdicts.parquet")
    schema = table.schema
    assert schema.names == ["measurement_uid", "suite", "verdict", "stage", "hop", "reasons",
                            "classifier_version"]
    assert [f.name for f in schema if not f.nullable] == [
        "measurement_uid", "suite", "verdict", "reasons", "classifier_version"]
    meta = {k.decode(): v.decode() for k, v in schema.metadata.items()}
    assert meta["probe.table"] == "protocol_verdicts" and meta["probe.database_uid"] == own
    assert meta["probe.schema_version"] == "14"
    assert sorted(table.column("verdict").to_pylist()) == ["blocked", "blocked"] + ["ok"] * 6
    parts = sorted(p.relative_to(tmp_path / "ds").parts[:3]
                   for p in (tmp_path / "ds" / "protocol_verdicts").rglob("*.parquet"))
    assert parts == [("protocol_verdicts", "country=ZZ", "date=2026-09-21")]


def test_a_v12_database_keeps_its_merged_databases_in_merged_sources(tmp_path: Path) -> None:
    # Main's schema 12 named the databases merged into one as probe_meta's 'merged:UID' rows;
    # migration 13 moves them to merged_sources (one table says which databases were merged).
    # (Migration 14, OONI's endpoint imports, came after: what it made is dropped too.)
    db = tmp_path / "v12.db"
    with Store.open(db) as store:
        own = store.database_uids()[0]
    conn = sqlite3.connect(db, isolation_level=None)
    conn.executescript(
        "DROP VIEW ooni_endpoint_disagreements; DROP TABLE ooni_endpoints;"
        "DROP TABLE merged_sources; DELETE FROM schema_migrations WHERE version >= 13;"
        "INSERT INTO probe_meta VALUES ('merged:0190a000-0000-7000-8000-000000000001', "
        "'2026-12-01T10:00:00.000Z'), ('merged:0190a000-0000-7000-8000-000000000002', "
        "'2026-12-02T10:00:00.000Z');")
    assert conn.execute("SELECT max(version) FROM schema_migrations").fetchone()[0] == 12
    conn.close()
    with Store.open(db, create=False) as store:
        assert store.schema_version() == SCHEMA_VERSION == 14
        assert store.database_uids() == (own, ["0190a000-0000-7000-8000-000000000001",
                                               "0190a000-0000-7000-8000-000000000002"])
        assert store.conn.execute("SELECT key FROM probe_meta").fetchall() == [("uid",)]
        rows = store.conn.execute("SELECT merged_at, fingerprint, name FROM merged_sources "
                                  "ORDER BY uid").fetchall()
        assert rows == [("2026-12-01T10:00:00.000Z", None, None),
                        ("2026-12-02T10:00:00.000Z", None, None)]
    # Merged into another database, they come along as that one's sources' sources.
    out = tmp_path / "all.db"
    merge(out, [db])
    with Store.open(out, create=False) as store:
        assert sorted(store.database_uids()[1]) == sorted([
            own, "0190a000-0000-7000-8000-000000000001", "0190a000-0000-7000-8000-000000000002"])
        assert store.conn.execute("SELECT count(*) FROM merged_sources WHERE fingerprint IS NOT NULL"
                                  ).fetchone()[0] == 1
