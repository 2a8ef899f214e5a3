"""`probe merge`: everything copied once, idempotent, one transaction per source, bad input refused."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from store_samples import sample_measurement, sample_verdict

from probe.cli import cli
from probe.core.model import Verdict
from probe.present.merge import format_merged
from probe.store import Store
from probe.store import merge as merge_module
from probe.store.merge import MergeError, merge

TABLES = ("vantage_points", "runs", "measurements", "observations", "dns_queries", "dns_replies",
          "dns_answers", "tcp_connects", "tls_handshakes", "http_requests", "controls",
          "certificates", "http_bodies", "latest")


def _probe_db(path: Path, vantage: str, n: int = 4, t0: float = 1_790_000_000.0,
              finish: bool = True) -> Path:
    with Store.open(path) as s:
        vid = s.vantage(vantage, asn=64496, country="ZZ")
        run = s.start_run(vid, ["list.csv"], {})
        s.write(run, vid, [(sample_measurement(i, started=t0 + i), sample_verdict()) for i in range(n)])
        if finish:
            s.finish_run(run, "complete")
    return path


def _counts(path: Path) -> dict[str, int]:
    conn = sqlite3.connect(path)
    try:
        return {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in TABLES}
    finally:
        conn.close()


def _measurements(path: Path) -> list[object]:
    with Store.open(path, create=False) as s:
        return [m for _, m in s.iter_measurements()]


def test_merge_copies_every_row_and_measurements_rebuild_equal(tmp_path: Path) -> None:
    a = _probe_db(tmp_path / "a.db", "moscow")
    b = _probe_db(tmp_path / "b.db", "almaty", n=3, t0=1_790_100_000.0)
    out = tmp_path / "all.db"
    results = merge(out, [a, b])
    assert [r.measurements for r in results] == [4, 3]
    ca, cb, co = _counts(a), _counts(b), _counts(out)
    for table in TABLES:
        if table in ("certificates", "http_bodies"):  # content-addressed: each stored once
            shas = set()
            for path in (a, b):
                conn = sqlite3.connect(path)
                shas |= {r[0] for r in conn.execute(f"SELECT sha256 FROM {table}")}
                conn.close()
            assert co[table] == len(shas), table
        else:
            assert co[table] == ca[table] + cb[table], table
    assert _measurements(out) == _measurements(a) + _measurements(b)


def test_merging_again_adds_nothing(tmp_path: Path) -> None:
    a = _probe_db(tmp_path / "a.db", "moscow")
    out = tmp_path / "all.db"
    merge(out, [a])
    before = _counts(out)
    (again,) = merge(out, [a])  # unchanged since: skipped unread
    assert again.unchanged and again.measurements == 0 and "unchanged since" in format_merged(again)
    assert _counts(out) == before
    # A copy of the same database is the same measurements.
    shutil.copy(a, tmp_path / "copy.db")
    merge(out, [tmp_path / "copy.db"])
    assert _counts(out) == before
    # Merged by a probe that kept no fingerprints: read again, and nothing added (by uid).
    conn = sqlite3.connect(out)
    conn.execute("DELETE FROM merged_sources")
    conn.commit()
    conn.close()
    (again,) = merge(out, [a])
    assert again.measurements == 0 and again.already_present == 4 and again.runs == 0
    assert _counts(out) == before


def test_merge_into_a_database_with_its_own_runs_keeps_them(tmp_path: Path) -> None:
    out = _probe_db(tmp_path / "all.db", "home", n=2)
    own = _measurements(out)
    b = _probe_db(tmp_path / "b.db", "vps", n=3, t0=1_790_200_000.0)
    merge(out, [b])
    assert _measurements(out) == own + _measurements(b)
    with Store.open(out, create=False) as s:
        latest = {(r["vantage"], r["url"]) for r in s.latest_verdicts()}
        runs = {r["vantage"]: r["status"] for r in s.runs()}
    assert {v for v, _ in latest} == {"home", "vps"}
    assert runs == {"home": "complete", "vps": "complete"}


def test_uids_and_classifier_versions_travel_unchanged(tmp_path: Path) -> None:
    a = tmp_path / "a.db"
    with Store.open(a) as s:
        vid = s.vantage("moscow")
        run = s.start_run(vid, [], {})
        s.write(run, vid, [(sample_measurement(0), Verdict("blocked", "http", 1, ("x",), "clf-7")),
                           (sample_measurement(1), Verdict("ok", None, None, (), "clf-6"))])
    merge(tmp_path / "all.db", [a])
    q = "SELECT uid, classifier_version, verdict FROM measurements ORDER BY uid"
    src, out = sqlite3.connect(a), sqlite3.connect(tmp_path / "all.db")
    assert src.execute(q).fetchall() == out.execute(q).fetchall()
    for table in ("runs", "vantage_points"):
        assert (src.execute(f"SELECT uid FROM {table}").fetchall()
                == out.execute(f"SELECT uid FROM {table}").fetchall())


def _names(path: Path) -> dict[str, str]:
    """uid -> name of every vantage point."""
    conn = sqlite3.connect(path)
    try:
        return dict(conn.execute("SELECT uid, name FROM vantage_points").fetchall())
    finally:
        conn.close()


def test_same_name_from_another_probe_is_kept_apart(tmp_path: Path) -> None:
    a = _probe_db(tmp_path / "a.db", "default")
    b = _probe_db(tmp_path / "b.db", "default", t0=1_790_300_000.0)
    out = tmp_path / "all.db"
    first, second = merge(out, [a, b])
    assert first.renamed == []
    uid_a, uid_b = next(iter(_names(a))), next(iter(_names(b)))
    # Both carry the end of their uid: the one merged first is renamed too.
    assert _names(out) == {uid_a: f"default~{uid_a[-8:]}", uid_b: f"default~{uid_b[-8:]}"}
    assert sorted(second.renamed) == sorted([("default", f"default~{uid_a[-8:]}"),
                                             ("default", f"default~{uid_b[-8:]}")])
    assert "another probe has its name" in format_merged(second)
    r = CliRunner().invoke(cli, ["results", "--db", str(out), "--vantage", "default"])
    assert r.exit_code == 1
    assert f"a merge renamed it apart: default~{min(uid_a[-8:], uid_b[-8:])}" in r.output


def test_vantage_point_names_do_not_depend_on_merge_order(tmp_path: Path) -> None:
    a = _probe_db(tmp_path / "a.db", "home")
    b = _probe_db(tmp_path / "b.db", "home", t0=1_790_300_000.0)
    c = _probe_db(tmp_path / "c.db", "vps", t0=1_790_400_000.0)
    merge(tmp_path / "abc.db", [a, b, c])
    merge(tmp_path / "cba.db", [c, b, a])
    merge(tmp_path / "ac.db", [a, c])
    merge(tmp_path / "ac.db", [b])  # later, on its own
    names = _names(tmp_path / "abc.db")
    assert names == _names(tmp_path / "cba.db") == _names(tmp_path / "ac.db")
    assert sorted(names.values()) == sorted(
        [f"home~{u[-8:]}" for u in (*_names(a), *_names(b))] + ["vps"])
    # A database of suffixed names merged again names every probe the same way.
    merge(tmp_path / "again.db", [tmp_path / "abc.db"])
    assert _names(tmp_path / "again.db") == names
    # One of them alone needs no suffix.
    merge(tmp_path / "one.db", [a])
    assert list(_names(tmp_path / "one.db").values()) == ["home"]


def test_running_probe_is_merged_as_a_snapshot_then_completed_by_the_next_merge(tmp_path: Path) -> None:
    src = tmp_path / "live.db"
    out = tmp_path / "all.db"
    with Store.open(src) as writer:  # stays open: the probe is still running
        vid = writer.vantage("moscow")
        run = writer.start_run(vid, [], {})
        writer.write(run, vid, [(sample_measurement(i), sample_verdict()) for i in range(2)])
        (r1,) = merge(out, [src])
        assert r1.measurements == 2
        writer.write(run, vid, [(sample_measurement(i + 10), sample_verdict()) for i in range(3)])
        writer.finish_run(run, "complete")
    (r2,) = merge(out, [src])
    assert (r2.measurements, r2.already_present, r2.runs, r2.runs_updated) == (3, 2, 0, 1)
    with Store.open(out, create=False) as s:
        (info,) = list(s.runs())
    assert info["status"] == "complete" and info["n_measurements"] == 5


def test_reclassified_verdict_in_a_source_replaces_the_older_one(tmp_path: Path) -> None:
    a = _probe_db(tmp_path / "a.db", "moscow", n=2)
    out = tmp_path / "all.db"
    merge(out, [a])
    with Store.open(a) as s:
        s.set_verdicts([(1, Verdict("reset", "tls", 1, ("tls/reset",), "clf-9"))])
    (r,) = merge(out, [a])
    assert r.verdicts_updated == 1 and r.measurements == 0
    conn = sqlite3.connect(out)
    assert conn.execute("SELECT verdict, classifier_version FROM measurements ORDER BY id").fetchall() \
        == [("reset", "clf-9"), (sample_verdict().verdict, sample_verdict().classifier_version)]


def test_failure_in_a_source_rolls_it_back_and_keeps_earlier_sources(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    a = _probe_db(tmp_path / "a.db", "moscow")
    b = _probe_db(tmp_path / "b.db", "almaty", t0=1_790_500_000.0)
    out = tmp_path / "all.db"
    merge(out, [a])
    before = _counts(out)
    original = merge_module._merge_measurements

    def fail_after_copying(*args: object) -> int:
        original(*args)  # type: ignore[arg-type]
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(merge_module, "_merge_measurements", fail_after_copying)
    with pytest.raises(MergeError, match=r"b\.db: merge failed and was rolled back: disk I/O"):
        merge(out, [b])
    assert _counts(out) == before


def test_bad_sources_are_refused_before_anything_is_written(tmp_path: Path) -> None:
    good = _probe_db(tmp_path / "good.db", "moscow")
    out = tmp_path / "all.db"
    text = tmp_path / "notes.db"
    text.write_text("not a database\n" * 50)
    other = tmp_path / "other.db"
    conn = sqlite3.connect(other)
    conn.execute("CREATE TABLE customers (id INTEGER)")
    conn.commit()
    conn.close()
    newer = _probe_db(tmp_path / "newer.db", "x")
    conn = sqlite3.connect(newer)
    conn.execute("INSERT INTO schema_migrations VALUES (999, 'future', '2030-01-01')")
    conn.commit()
    conn.close()
    cases = [(text, "not a usable SQLite database"), (other, "not a probe database"),
             (newer, "newer probe"), (tmp_path / "missing.db", "no such file"),
             (out, "output database itself")]
    merge(out, [good])
    before = _counts(out)
    for bad, message in cases:
        result = CliRunner().invoke(cli, ["merge", str(good), str(bad), "--into", str(out)])
        assert result.exit_code == 1, result.output
        assert bad.name in result.output and message in result.output
        assert _counts(out) == before  # not even the good source was merged again


def test_read_only_output_is_refused_with_a_clear_message(tmp_path: Path) -> None:
    a = _probe_db(tmp_path / "a.db", "moscow")
    ro = tmp_path / "ro"
    ro.mkdir()
    out = ro / "all.db"
    merge(out, [_probe_db(tmp_path / "b.db", "almaty", t0=1_790_600_000.0)])
    for suffix in ("-wal", "-shm"):
        Path(f"{out}{suffix}").unlink(missing_ok=True)
    before = _counts(out)
    cmd = [sys.executable, "-m", "probe", "merge", str(a), "--into", str(out)]
    if os.geteuid() == 0:
        # root writes through file modes: make the directory a read-only mount instead.
        script = f"mount --bind {ro} {ro} && mount -o remount,ro,bind {ro} && exec \"$@\""
        cmd = ["unshare", "-m", "sh", "-c", script, "sh", *cmd]
    else:
        out.chmod(0o444)
        ro.chmod(0o555)
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    ro.chmod(0o755)
    assert proc.returncode == 1, proc.stderr
    assert "all.db" in proc.stderr and "read-only" in proc.stderr
    out.chmod(0o644)
    assert _counts(out) == before


def test_every_table_of_the_schema_has_a_merge_rule() -> None:
    with Store.open(":memory:") as s:
        plan = merge_module._Plan(s.conn)
        tables = set(s._tables())
    ruled = (set(plan.content) | {t for t, _, _ in plan.owned} | set(merge_module._ENTITIES)
             | set(plan.keyed) | merge_module._NOT_COPIED)
    assert tables <= ruled, tables - ruled


def test_table_without_a_rule_is_refused_by_name() -> None:
    with Store.open(":memory:") as s:
        s.conn.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT)")
        with pytest.raises(MergeError, match="notes"):
            merge_module._Plan(s.conn)


def _endpoints(store: Store, run: int, vid: int, names: list[str], t0: float = 1_790_000_000.0) -> None:
    from probe.core.model import EndpointObservation
    from probe.store.circumvention import write_endpoints

    rows = [(EndpointObservation("tor", n, "192.0.2.1", 443, "tcp", t0 + i, 0.1,
                                 tcp_failure="connection_reset"),
             None, Verdict("reset", "tcp", None, ("tcp/reset",), "test"))
            for i, n in enumerate(names)]  # fmt: skip
    write_endpoints(store, run, vid, "circumvention", rows)


def _endpoint_rows(path: Path) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(
            "SELECT v.name, r.uid, e.uid, e.name, e.verdict FROM endpoint_measurements e "
            "JOIN runs r ON r.id = e.run_id JOIN vantage_points v ON v.id = e.vantage_id "
            "ORDER BY e.uid").fetchall()
    finally:
        conn.close()


def test_endpoint_rows_added_to_an_already_merged_run_come_with_the_next_merge(
    tmp_path: Path,
) -> None:
    a = tmp_path / "a.db"
    with Store.open(a) as s:
        vid = s.vantage("moscow")
        run = s.start_run(vid, ["endpoints.csv"], {})
        _endpoints(s, run, vid, ["r1", "r2"])
    out = _probe_db(tmp_path / "all.db", "home")
    first = merge(out, [a])[0]
    assert first.keyed["endpoint_measurements"] == 2
    with Store.open(a) as s:  # the same run goes on after it was merged
        _endpoints(s, run, vid, ["r3"], t0=1_790_000_100.0)
        s.finish_run(run, "complete")
    again = merge(out, [a])[0]
    assert again.keyed["endpoint_measurements"] == 1 and again.runs == 0
    assert "+1 endpoint measurements" in format_merged(again)
    assert merge(out, [a])[0].unchanged
    rows = _endpoint_rows(out)
    assert rows == _endpoint_rows(a)  # same vantage point, run uid, uid, name and verdict
    assert [r[3] for r in rows] == ["r1", "r2", "r3"]


def test_endpoint_rows_merged_before_they_had_uids_are_not_copied_again(tmp_path: Path) -> None:
    a = tmp_path / "a.db"
    with Store.open(a) as s:
        vid = s.vantage("moscow")
        run = s.start_run(vid, ["endpoints.csv"], {})
        _endpoints(s, run, vid, ["r1", "r2"])
        s.finish_run(run, "complete")
    out = tmp_path / "all.db"
    merge(out, [a])
    # Both databases upgraded to schema 9 on their own: each drew other uids for the same rows.
    conn = sqlite3.connect(out)
    conn.execute("UPDATE endpoint_measurements SET uid = 'old-' || id")
    conn.execute("DELETE FROM merged_sources")  # as merged by a probe that kept no fingerprints
    conn.commit()
    conn.close()
    assert merge(out, [a])[0].keyed["endpoint_measurements"] == 0
    assert len(_endpoint_rows(out)) == 2


def test_endpoint_measurements_come_with_their_runs_once(tmp_path: Path) -> None:
    a = _probe_db(tmp_path / "a.db", "moscow")
    conn = sqlite3.connect(a)
    conn.execute(
        "INSERT INTO endpoint_measurements (run_id, vantage_id, suite, kind, name, address, port, "
        "transport, measured_at, runtime, verdict, observation, uid) VALUES (1, 1, 'tor', "
        "'relay', 'r1', '192.0.2.1', 443, 'tcp', '2026-09-21T00:00:00.000Z', 0.1, 'blocked', ?, "
        "'e1')",
        # An observation reclassify can read (merge checks it by the codec: '{}' is refused).
        ('{"kind": "relay", "name": "r1", "address": "192.0.2.1", "port": 443, '
         '"transport": "tcp", "started": 1.0, "runtime": 0.1}',),
    )
    conn.commit()
    conn.close()
    out = _probe_db(tmp_path / "all.db", "home")  # the output has its own run 1 and vantage 1
    merge(out, [a])
    merge(out, [a])
    conn = sqlite3.connect(out)
    rows = conn.execute(
        "SELECT v.name, r.uid, e.name FROM endpoint_measurements e JOIN runs r ON r.id = e.run_id "
        "JOIN vantage_points v ON v.id = e.vantage_id").fetchall()
    (src_run_uid,) = sqlite3.connect(a).execute("SELECT uid FROM runs").fetchone()
    assert rows == [("moscow", src_run_uid, "r1")]


OONI_FILE = Path(__file__).resolve().parents[1] / "fixtures" / "ooni" / "fastpath.jsonl.gz"


def _ooni_parts(tmp_path: Path) -> tuple[Path, Path]:
    import gzip

    with gzip.open(OONI_FILE, "rt", encoding="utf-8") as fh:
        lines = [x for x in fh.read().splitlines() if x]
    first, second = tmp_path / "part1.jsonl", tmp_path / "part2.jsonl"
    first.write_text("\n".join(lines[:6]) + "\n")
    second.write_text("\n".join(lines[6:]) + "\n")
    return first, second


def _ooni_rows(path: Path) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(
            "SELECT o.report_id, o.input, o.measurement_uid, o.ooni_verdict, o.source, m.uid, "
            "m.verdict, v.name, json_extract(r.options, '$.report_id') "
            "FROM ooni_measurements o JOIN measurements m ON m.id = o.measurement_id "
            "JOIN runs r ON r.id = m.run_id JOIN vantage_points v ON v.id = m.vantage_id "
            "ORDER BY o.report_id, o.input").fetchall()
    finally:
        conn.close()


def test_imported_ooni_measurements_travel_with_their_ooni_rows(tmp_path: Path) -> None:
    from probe.research.ooni.importer import import_ooni

    part1, part2 = _ooni_parts(tmp_path)
    a, out = tmp_path / "a.db", tmp_path / "all.db"
    with Store.open(a) as s:
        import_ooni(s, [part1])
    assert merge(out, [a])[0].measurements == 6
    with Store.open(a) as s:  # more of OONI's archive imported after the merge
        import_ooni(s, [part2])
    again = merge(out, [a])[0]
    assert (again.measurements, again.already_present) == (6, 6)
    assert merge(out, [a])[0].measurements == 0
    assert len(_ooni_rows(out)) == 12 and _ooni_rows(out) == _ooni_rows(a)
    with Store.open(out) as s:  # the output knows them as imported: importing again adds nothing
        assert import_ooni(s, [OONI_FILE]).duplicates == 12
    conn = sqlite3.connect(out)
    assert conn.execute("SELECT count(*) FROM ooni_disagreements").fetchone()[0] == (
        sqlite3.connect(a).execute("SELECT count(*) FROM ooni_disagreements").fetchone()[0])


def test_the_same_ooni_measurement_imported_into_two_databases_is_merged_once(
    tmp_path: Path,
) -> None:
    from probe.research.ooni.importer import import_ooni

    part1, _ = _ooni_parts(tmp_path)
    a, b, out = tmp_path / "a.db", tmp_path / "b.db", tmp_path / "all.db"
    with Store.open(a) as s:
        import_ooni(s, [part1])
    with Store.open(b) as s:
        import_ooni(s, [OONI_FILE])
    first, second = merge(out, [a, b])
    assert first.measurements == 6
    # b's six others are new; its copies of a's six are the same OONI measurements, in the same
    # OONI vantage points (ooni-CC-ASN) and runs (one per report), not kept apart as new ones.
    assert (second.measurements, second.already_present) == (6, 6)
    assert second.renamed == [] and second.vantage_points == _ooni_vantages(b) - _ooni_vantages(a)
    rows = _ooni_rows(out)
    assert len(rows) == 12 and len({r[:3] for r in rows}) == 12
    assert {r[0]: r[7] for r in rows} == {r[0]: r[7] for r in _ooni_rows(b)}
    assert all(r[0] == r[8] for r in rows)  # each in the run of its report
    conn = sqlite3.connect(out)
    assert conn.execute("SELECT count(*) FROM runs").fetchone()[0] == len({r[0] for r in rows})
    assert merge(out, [a, b])[1].measurements == 0


def _ooni_vantages(path: Path) -> int:
    return int(sqlite3.connect(path).execute("SELECT count(*) FROM vantage_points").fetchone()[0])
