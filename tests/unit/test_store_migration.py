"""Migration 10 (compact observations) on a database written by the probe before it.

tests/fixtures/store/v9.sql is a dump of a database of schema version 9 written by probe as of
c86cfa8 (two vantage points, a retry, a control that timed its fetch, a measurement without
control or certificate); v9-measurements.json is what that probe rebuilt from it.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

import probe.judge.classify
from probe.core.codec import from_data
from probe.core.model import Measurement
from probe.run.reclassify import reclassify
from probe.store import SCHEMA_VERSION, Store
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
        assert store.schema_version() == SCHEMA_VERSION == 11
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
    assert blob[0] == 1 and unpack(blob) == data
    assert json.loads(json_text(blob) or "") == data
    for bad in (blob[:-3], blob[:10] + bytes([blob[10] ^ 0xFF]) + blob[11:], b"\x09" + blob[1:], b""):
        with pytest.raises(ObservationsError):
            unpack(bad)
        assert json_text(bad) is None
    with pytest.raises(ObservationsError, match="JSON text"):
        unpack("{}")  # type: ignore[arg-type]
