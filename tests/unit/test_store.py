"""The results database: schema, migrations, writes, reads, and kill safety."""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import textwrap
import zlib
from dataclasses import replace
from pathlib import Path

import pytest
from store_samples import BLOCKPAGE, certificate, sample_measurement, sample_verdict

from probe.core.codec import to_data
from probe.core.model import ProtocolVerdict, Verdict
from probe.store import SCHEMA_VERSION, Store, StoreError

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def store() -> Store:
    s = Store.open(":memory:")
    yield s
    s.close()


def _run(store: Store, name: str = "lab") -> tuple[int, int]:
    vid = store.vantage(name, asn=64496, country="ZZ")
    return store.start_run(vid, ["lists/test.csv"], {"concurrency": 8}), vid


def _count(store: Store, table: str) -> int:
    return store.conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


# --- round trip and flat tables ---------------------------------------------------------------
def test_written_measurements_rebuild_equal_including_bodies_certs_and_controls(store: Store) -> None:
    run_id, vid = _run(store)
    ms = [sample_measurement(i, started=1_790_000_000.0 + i) for i in range(3)]
    store.write(run_id, vid, [(m, sample_verdict()) for m in ms])
    got = list(store.iter_measurements(run_id))
    assert [m for _, m in got] == ms
    assert got[0][1].hops[1].http.body == ms[0].hops[1].http.body
    assert got[0][1].hops[1].tls[0].cert_chain == (certificate(), certificate()[:50])
    assert got[0][1].hops[0].control == ms[0].hops[0].control


def test_observations_json_holds_references_not_bodies_or_certificates(store: Store) -> None:
    run_id, vid = _run(store)
    store.write(run_id, vid, [(sample_measurement(0), sample_verdict())])
    (obs,) = store.conn.execute(
        "SELECT observations_json(data) FROM observations WHERE measurement_id = 1").fetchone()
    data = json.loads(obs)
    http = data["hops"][1]["http"]
    assert "body" not in http and len(http["body_ref"]) == 64
    assert "cert_chain" not in data["hops"][1]["tls"][0]
    assert len(data["hops"][1]["tls"][0]["cert_chain_sha256"]) == 2
    control = json.loads(json.dumps(to_data(sample_measurement(0).hops[0].control)))
    # Stored without the empty fields of the steps it did not take (QUIC, ECH: format 2) ...
    assert {k: control.pop(k) for k in ("quic", "http3_status", "http3_failure", "ech")} == {
        "quic": [], "http3_status": None, "http3_failure": None, "ech": []}
    assert data["hops"][0]["control"] == control
    # ... which the rebuilt measurement has again, as written.
    got = store.measurement(1)
    assert got is not None and got[0].hops[0].control == sample_measurement(0).hops[0].control
    # json_extract reads it through the function; the stored value is packed (format 2).
    (packed, addrs) = store.conn.execute(
        "SELECT data, json_extract(observations_json(data), '$.hops[0].dns[0].addresses') "
        "FROM observations WHERE measurement_id = 1").fetchone()
    assert packed[0] == 2 and len(packed) < len(obs) / 3 and addrs == '["10.10.34.34"]'


def test_identical_bodies_and_certificates_are_stored_once_compressed(store: Store) -> None:
    run_id, vid = _run(store)
    body = BLOCKPAGE * 50
    store.write(run_id, vid, [(sample_measurement(i, body=body), sample_verdict()) for i in range(4)])
    store.write(run_id, vid, [(sample_measurement(9, body=body), sample_verdict())])
    assert _count(store, "http_bodies") == 1
    length, blob = store.conn.execute("SELECT length, body FROM http_bodies").fetchone()
    assert length == len(body) and zlib.decompress(blob) == body and len(blob) < len(body)
    assert _count(store, "certificates") == 2  # the leaf and the truncated garbage "cert"


def test_flat_tables_hold_every_operation(store: Store) -> None:
    run_id, vid = _run(store)
    store.write(run_id, vid, [(sample_measurement(0), sample_verdict())])
    q = store.conn.execute(
        "SELECT qtype, n_replies, n_distinct, control FROM dns_queries ORDER BY id"
    ).fetchall()
    assert q == [("A", 2, 2, 0), ("AAAA", 1, 1, 0), ("A", 1, 1, 1)]
    answers = store.conn.execute(
        "SELECT r.idx, a.type, a.value FROM dns_answers a JOIN dns_replies r ON r.id = a.reply_id "
        "JOIN dns_queries q ON q.id = r.query_id WHERE q.id = 1 ORDER BY r.idx, a.idx"
    ).fetchall()
    assert answers == [(0, "A", "10.10.34.34"), (1, "CNAME", "cdn.site0.example.org"),
                       (1, "A", "192.0.2.10"), (1, "A", "192.0.2.11")]
    assert store.conn.execute(
        "SELECT hop, ip, failure FROM tcp_connects ORDER BY id"
    ).fetchall() == [(0, "10.10.34.34", "connection_reset"), (0, "192.0.2.10", None),
                     (1, "192.0.2.10", None)]
    tls = store.conn.execute(
        "SELECT version, cert_valid, leaf_sha256 IS NOT NULL, failure "
        "FROM tls_handshakes ORDER BY id"
    ).fetchall()
    assert tls == [("TLSv1.3", 0, 1, "ssl_invalid_hostname"),
                   (None, None, 0, "generic_timeout_error")]
    # The leaf's names and dates are in `certificates`; the view joins them back.
    assert store.conn.execute(
        "SELECT leaf_subject, leaf_not_after, failure FROM tls_certificates").fetchall() == [
        ("CN=www.example.org", "2027-01-01T00:00:00Z", "ssl_invalid_hostname")]
    http = store.conn.execute(
        "SELECT hop, status, title, location, body_ref IS NOT NULL FROM http_requests ORDER BY hop"
    ).fetchall()
    assert http == [(0, 302, None, "https://site0.example.org/", 0),
                    (1, 200, "Access denied", None, 1)]
    ctl = store.conn.execute(
        "SELECT hop, failure, http_status, dns_addrs, http_transfer FROM controls ORDER BY hop"
    ).fetchall()
    assert ctl == [(0, None, 200, '["192.0.2.10","192.0.2.11"]', None),
                   (1, "connection_refused", None, "[]", None)]


def test_measurement_row_has_target_and_verdict_columns(store: Store) -> None:
    run_id, vid = _run(store)
    store.write(run_id, vid, [(sample_measurement(3), sample_verdict())])
    row = store.conn.execute(
        "SELECT url, original_url, domain, category, measured_at, attempt, final, n_hops, "
        "final_url, verdict, stage, hop, reasons, classifier_version FROM measurements"
    ).fetchone()
    assert row == ("http://site3.example.org/", "http://site3.example.org", "site3.example.org",
                   "NEWS", "2026-09-21T14:13:20.000Z", 0, 1, 2, "https://site3.example.org/",
                   "blocked", "http", 1, '["http/blockpage:test_1","dns/bogon:10.10.34.34"]',
                   "test-1")


def test_failed_batch_rolls_back_entirely(store: Store) -> None:
    run_id, vid = _run(store)
    good = (sample_measurement(0), sample_verdict())
    with pytest.raises(AttributeError):
        store.write(run_id, vid, [good, (object(), sample_verdict())])  # type: ignore[list-item]
    assert _count(store, "measurements") == _count(store, "http_bodies") == 0
    store.write(run_id, vid, [good])  # the body cache was reset: the body is stored now
    assert _count(store, "http_bodies") == 1


# --- opening and migrations ---------------------------------------------------------------------
def test_open_creates_parent_directories_in_wal_mode(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "probe.db"
    with Store.open(path) as s:
        assert s.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert s.conn.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
        assert s.schema_version() == SCHEMA_VERSION
    assert path.exists()


def test_migrations_are_idempotent(tmp_path: Path) -> None:
    path = tmp_path / "probe.db"
    for _ in range(3):
        Store.open(path).close()
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT count(*) FROM schema_migrations").fetchone()[0] == SCHEMA_VERSION


def test_database_of_the_first_schema_is_upgraded_in_place(tmp_path: Path) -> None:
    """A results database written by an older probe keeps its runs and gains the new columns."""
    from probe.store.schema import MIGRATIONS

    path = tmp_path / "probe.db"
    conn = sqlite3.connect(path)
    conn.executescript(MIGRATIONS[0][2])
    conn.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, "
                 "applied_at TEXT NOT NULL)")
    conn.execute("INSERT INTO schema_migrations VALUES (1, 'initial schema', '2026-11-01')")
    conn.execute("INSERT INTO vantage_points (name, created_at, updated_at) VALUES ('v', 't', 't')")
    conn.execute("INSERT INTO runs (vantage_id, started_at, software_version) VALUES (1, 't', '0')")
    conn.commit()
    conn.close()
    with Store.open(path) as s:
        assert s.schema_version() == SCHEMA_VERSION
        assert s.conn.execute("SELECT status, owner FROM runs").fetchall() == [("running", None)]
        assert s.close_dead_runs() == []  # no owner recorded: nothing to judge


def test_database_from_a_newer_probe_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "probe.db"
    Store.open(path).close()
    conn = sqlite3.connect(path)
    conn.execute("INSERT INTO schema_migrations VALUES (999, 'future', '2030-01-01')")
    conn.commit()
    conn.close()
    with pytest.raises(StoreError, match=r"probe\.db.*newer probe.*999"):
        Store.open(path)


def test_non_sqlite_file_is_refused_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "notes.db"
    path.write_text("this is not a database\n" * 100)
    with pytest.raises(StoreError, match=r"notes\.db.*not a usable SQLite database"):
        Store.open(path)


def test_other_sqlite_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE customers (id INTEGER)")
    conn.commit()
    conn.close()
    with pytest.raises(StoreError, match=r"other\.db.*not a probe database.*customers"):
        Store.open(path)


def test_missing_database_is_an_error_when_not_creating(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="no such database"):
        Store.open(tmp_path / "missing.db", create=False)
    assert not (tmp_path / "missing.db").exists()


# --- vantage points and runs ----------------------------------------------------------------------
def test_vantage_is_upserted_by_name_and_refuses_the_probe_address(store: Store) -> None:
    a = store.vantage("home", asn=64496, resolver="127.0.0.53", isp_note="fibre")
    b = store.vantage("home", country="ZZ")
    assert a == b
    row = store.conn.execute("SELECT asn, country, resolver, meta FROM vantage_points").fetchone()
    assert row == (64496, "ZZ", "127.0.0.53", '{"isp_note": "fibre"}')
    with pytest.raises(ValueError, match="address"):
        store.vantage("home", public_ip="203.0.113.7")


def test_finish_run_records_status_and_counts(store: Store) -> None:
    run_id, vid = _run(store)
    store.write(run_id, vid, [(sample_measurement(0), sample_verdict("ok")),
                              (sample_measurement(1), sample_verdict("blocked"))])
    store.finish_run(run_id, "interrupted")
    info = store.run_info(run_id)
    assert info["status"] == "interrupted" and info["finished_at"]
    assert info["n_measurements"] == 2 and info["counts"]["ok"] == 1
    assert info["lists"] == ["lists/test.csv"] and info["options"] == {"concurrency": 8}
    with pytest.raises(ValueError):
        store.finish_run(run_id, "done")


# --- reading --------------------------------------------------------------------------------------
def _two_runs(store: Store) -> tuple[int, int]:
    r1, v1 = _run(store, "alpha")
    store.write(r1, v1, [(sample_measurement(0, started=1000.0), sample_verdict("blocked")),
                         (sample_measurement(1, started=1001.0), sample_verdict("ok"))])
    r2, v2 = _run(store, "beta")
    store.write(r2, v2, [(sample_measurement(0, started=2000.0), sample_verdict("ok"))])
    return r1, r2


def test_results_filters_by_run_verdict_vantage_and_limit(store: Store) -> None:
    r1, r2 = _two_runs(store)
    # Latest: each vantage point's latest run (alpha's r1 and beta's r2).
    assert [r["run_id"] for r in store.results()] == [r1, r1, r2]
    assert store.latest_runs() == [("alpha", r1), ("beta", r2)]
    assert [r["url"] for r in store.results(r1)] == ["http://site0.example.org/",
                                                    "http://site1.example.org/"]
    assert len(list(store.results(None))) == 3
    assert [r["vantage"] for r in store.results(None, verdict="ok")] == ["alpha", "beta"]
    assert [r["run_id"] for r in store.results("latest", vantage="alpha")] == [r1, r1]
    assert len(list(store.results(None, limit=1))) == 1
    first = next(store.results(r1))
    assert first["reasons"] == ["http/blockpage:test_1", "dns/bogon:10.10.34.34"]
    assert {"url", "verdict", "stage", "hop", "vantage", "run_id", "measured_at", "category"} <= set(first)


def test_results_of_unknown_run_or_empty_database_raise(store: Store) -> None:
    with pytest.raises(StoreError, match="no runs"):
        list(store.results())
    _two_runs(store)
    with pytest.raises(StoreError, match="no run 42"):
        list(store.results(42))


def test_run_summary_counts_final_attempts_only(store: Store) -> None:
    run_id, vid = _run(store)
    m = sample_measurement(0)
    store.write(run_id, vid, [(m, sample_verdict("down"), False),
                              (replace(m, attempt=1), sample_verdict("ok"), True)])
    assert store.run_summary(run_id) == {"ok": 1, "blocked": 0, "reset": 0, "hijacked": 0,
                                         "throttled": 0, "down": 0, "inconclusive": 0}
    assert [r["attempt"] for r in store.results(run_id)] == [1]
    assert len(list(store.iter_measurements(run_id))) == 2  # retries are stored too


def test_latest_verdicts_keep_the_newest_final_measurement_per_vantage_and_url(store: Store) -> None:
    r1, r2 = _two_runs(store)
    r3 = store.start_run(store.vantage("alpha"), [], {})
    vid = store.vantage("alpha")
    store.write(r3, vid, [(sample_measurement(1, started=3000.0), sample_verdict("reset")),
                          (sample_measurement(0, started=500.0), sample_verdict("down")),
                          (sample_measurement(0, started=4000.0), sample_verdict("hijacked"), False)])
    latest = {(r["vantage"], r["url"]): (r["verdict"], r["run_id"]) for r in store.latest_verdicts()}
    assert latest == {
        ("alpha", "http://site0.example.org/"): ("blocked", r1),  # older and non-final ignored
        ("alpha", "http://site1.example.org/"): ("reset", r3),
        ("beta", "http://site0.example.org/"): ("ok", r2),
    }
    assert [r["url"] for r in store.latest_verdicts(vantage="alpha", verdict="reset")] == [
        "http://site1.example.org/"]


def test_deleting_a_measurement_falls_back_to_the_previous_latest(store: Store) -> None:
    r1, _ = _two_runs(store)
    vid = store.vantage("alpha")
    r3 = store.start_run(vid, [], {})
    store.write(r3, vid, [(sample_measurement(0, started=3000.0), sample_verdict("reset"))])
    newest = store.conn.execute("SELECT max(id) FROM measurements").fetchone()[0]
    store.conn.execute("DELETE FROM measurements WHERE id = ?", (newest,))
    rows = store.conn.execute(
        "SELECT verdict, run_id FROM latest_verdicts WHERE vantage = 'alpha' AND url LIKE '%site0%'"
    ).fetchall()
    assert rows == [("blocked", r1)]


def test_set_verdicts_replaces_verdict_and_records_version(store: Store) -> None:
    run_id, vid = _run(store)
    store.write(run_id, vid, [(sample_measurement(0), sample_verdict())])
    store.set_verdicts([(1, Verdict("ok", None, None, (), "v2"))])
    ((_, _, v),) = list(store.iter_judged(run_id))
    assert v == Verdict("ok", None, None, (), "v2")
    assert store.conn.execute("SELECT classified_at FROM measurements").fetchone()[0]
    assert next(store.latest_verdicts())["verdict"] == "ok"


def test_views_answer_researcher_questions(store: Store) -> None:
    _two_runs(store)
    assert store.conn.execute("SELECT count(*) FROM blocked").fetchone()[0] == 1
    counts = store.conn.execute(
        "SELECT vantage, verdict, n FROM verdict_counts ORDER BY run_id, verdict").fetchall()
    assert counts == [("alpha", "blocked", 1), ("alpha", "ok", 1), ("beta", "ok", 1)]
    injected = store.conn.execute(
        "SELECT DISTINCT hostname FROM dns_queries WHERE n_distinct > 1 AND control = 0 "
        "ORDER BY hostname").fetchall()
    assert injected == [("site0.example.org",), ("site1.example.org",)]
    sets = store.conn.execute(
        "SELECT answers FROM dns_answer_sets WHERE query_id = 1 ORDER BY reply_idx").fetchall()
    assert sets == [("10.10.34.34",), ("192.0.2.10,192.0.2.11",)]


# --- kill safety ----------------------------------------------------------------------------------
_WRITER = textwrap.dedent("""
    import sys
    sys.path.insert(0, sys.argv[2])
    from store_samples import sample_measurement, sample_verdict
    from probe.store import Store
    s = Store.open(sys.argv[1])
    vid = s.vantage("killed")
    run = s.start_run(vid, [], {})
    n = 0
    while True:
        s.write(run, vid, [(sample_measurement(n + i), sample_verdict()) for i in range(10)])
        n += 10
        print(n, flush=True)
""")


def test_killed_writer_leaves_a_valid_database_with_every_committed_batch(tmp_path: Path) -> None:
    path = tmp_path / "killed.db"
    proc = subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(path), str(Path(__file__).parent)],
        stdout=subprocess.PIPE, text=True, cwd=ROOT,
    )
    try:
        committed = 0
        for line in proc.stdout:  # type: ignore[union-attr]
            committed = int(line)
            if committed >= 60:
                break
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    assert committed >= 60
    with Store.open(path) as s:
        assert s.conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        n = s.conn.execute("SELECT count(*) FROM measurements").fetchone()[0]
        assert n >= committed and n % 10 == 0  # whole batches only
        ids = [mid for mid, _ in s.iter_measurements()]
        assert ids == list(range(1, n + 1))
        assert s.conn.execute("SELECT status FROM runs").fetchone()[0] == "running"


def test_db_property_is_a_sqlite_utils_view_of_the_same_connection(store: Store) -> None:
    run_id, vid = _run(store)
    store.write(run_id, vid, [(sample_measurement(0), sample_verdict())])
    assert store.db["measurements"].count == 1
    assert "latest_verdicts" in store.db.view_names()


def test_codec_writes_every_field_in_declared_order_with_bytes_as_base64() -> None:
    """The store's JSON (probe.core.codec) is the model's JSON: one codec, the documented shape."""
    import base64
    import dataclasses

    from probe.core.codec import to_data

    m = sample_measurement(5)
    assert list(to_data(m)) == [f.name for f in dataclasses.fields(m)]
    tls = next(t for hop in m.hops for t in hop.tls if t.cert_chain)
    assert list(to_data(tls)["cert_chain"]) == [base64.b64encode(c).decode() for c in tls.cert_chain]


# --- the documented example queries ---------------------------------------------------------------
def _doc_queries() -> list[str]:
    text = (ROOT / "docs" / "schema.md").read_text()
    return re.findall(r"```sql\n(.*?)```", text, re.S)


def test_schema_doc_has_example_queries() -> None:
    assert len(_doc_queries()) >= 12


@pytest.mark.parametrize("n", range(14))
def test_documented_example_query_runs_and_finds_rows(store: Store, n: int) -> None:
    queries = _doc_queries()
    if n >= len(queries):
        pytest.skip(f"docs/schema.md has {len(queries)} example queries")
    home = store.vantage("home")
    vps = store.vantage("vps")
    r1 = store.start_run(home, [], {})
    # The second URL was also measured with --quic: its HTTP/3 is blocked (docs/protocols.md).
    quic = ProtocolVerdict("quic", "blocked", "quic", 0, ("quic/udp-blocked",), "quic-1")
    store.write(r1, home, [(sample_measurement(0), sample_verdict("blocked")),
                           (sample_measurement(1), replace(sample_verdict("ok"), protocols=(quic,)))])
    store.finish_run(r1, "complete")
    r2 = store.start_run(vps, [], {})
    m = sample_measurement(0)
    honest = replace(m.hops[0].dns[0], replies=m.hops[0].dns[0].replies[1:])
    m = replace(m, hops=(replace(m.hops[0], dns=(honest,)), *m.hops[1:]))
    store.write(r2, vps, [(m, sample_verdict("ok"))])
    store.finish_run(r2, "complete")
    rows = store.conn.execute(queries[n]).fetchall()
    assert rows, queries[n]


def test_codec_reads_back_and_tolerates_unknown_and_missing_keys() -> None:
    from probe.core.codec import from_data, to_data
    from probe.core.model import Measurement

    m = sample_measurement(6)
    data = json.loads(json.dumps(to_data(m)))
    assert from_data(Measurement, data) == m
    data["unknown_key"] = 1
    del data["attempt"]
    assert from_data(Measurement, data) == replace(m, attempt=0)


def test_codec_reads_observations_written_by_an_older_probe() -> None:
    """Stored JSON without the fields added since (timing, decoys, packets) still decodes."""
    from probe.core.codec import from_data, to_data
    from probe.core.model import Measurement

    m = sample_measurement(7)
    data = json.loads(json.dumps(to_data(m)))
    for key in ("captured", "packets"):
        del data[key]
    data["started"] = int(data["started"])  # an integer where a float is declared
    for hop in data["hops"]:
        for key in ("dns_probe", "decoy_tls", "decoy_http"):
            del hop[key]
        if hop["http"] is not None:
            for key in ("ttfb", "wire_bytes", "path_rtt"):
                del hop["http"][key]
    old = from_data(Measurement, data)
    assert old.started == int(m.started) and old.packets == () and not old.captured
    assert old.hops[0].decoy_tls == () and old.hops[-1].http is not None
    assert old.hops[-1].http.ttfb is None and old.hops[-1].http.body == m.hops[-1].http.body  # type: ignore[union-attr]


def test_codec_names_where_a_stored_value_does_not_fit() -> None:
    from probe.core.codec import CodecError, from_data, to_data
    from probe.core.model import Measurement

    data = json.loads(json.dumps(to_data(sample_measurement(8))))
    data["hops"][0]["tcp"][0]["port"] = "eighty"
    with pytest.raises(CodecError, match=r"hops\[0\]\.tcp\[0\]\.port: expected int, got str"):
        from_data(Measurement, data)


def test_documented_queries_use_indexes_not_automatic_ones(store: Store) -> None:
    # SQLite builds an "automatic index" when no declared index fits a join: fine on a sample,
    # minutes on a research database. The shipped planner statistics must avoid it.
    for query in _doc_queries():
        plan = " / ".join(r[3] for r in store.conn.execute("EXPLAIN QUERY PLAN " + query))
        assert "AUTOMATIC" not in plan, (query, plan)
