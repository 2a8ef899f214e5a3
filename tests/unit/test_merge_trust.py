"""`probe merge` trusts nobody's file: every row checked before it enters, invalid rows refused
by name, the output never poisoned, sources never written, unchanged sources skipped cheaply."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import shutil
import sqlite3
import zlib
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from store_samples import sample_measurement, sample_verdict

from probe.cli import cli
from probe.store import Store, observations
from probe.store import merge as merge_module
from probe.store.merge import MergeError, merge
from probe.store.schema import MIGRATIONS

T0 = 1_790_000_000.0


def _db(path: Path, vantage: str, n: int = 6, t0: float = T0) -> Path:
    with Store.open(path) as s:
        vid = s.vantage(vantage, asn=64496, country="ZZ")
        run = s.start_run(vid, ["list.csv"], {})
        s.write(run, vid, [(sample_measurement(i, started=t0 + i), sample_verdict()) for i in range(n)])
        s.finish_run(run, "complete")
        s.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return path


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _sidecars(path: Path) -> list[str]:
    return [s for s in ("-wal", "-shm", "-journal") if Path(f"{path}{s}").exists()]


def _packed_text(text: bytes) -> bytes:
    """``text`` stored as packed observations are (probe/store/observations.py), whatever it is."""
    c = zlib.compressobj(6, zlib.DEFLATED, zlib.MAX_WBITS, 9, zlib.Z_DEFAULT_STRATEGY,
                         observations._dictionary(observations.FORMAT))
    return bytes((observations.FORMAT,)) + c.compress(text) + c.flush()


def _poison(path: Path) -> None:
    """The issue's poisoned source: probe's schema, rows no reader of probe can take."""
    conn = sqlite3.connect(path)
    conn.execute("UPDATE observations SET data = ? WHERE measurement_id = 1",
                 (_packed_text(b"{not json"),))
    conn.execute("UPDATE measurements SET final = 7 WHERE id = 2")
    conn.execute("UPDATE measurements SET reasons = '[1, {}]' WHERE id = 3")
    # The control is packed in its hop (schema 11): one of the wrong type there.
    (blob,) = conn.execute("SELECT data FROM observations WHERE measurement_id = 4").fetchone()
    data = observations.unpack(blob)
    data["hops"][0]["control"] = {**(data["hops"][0].get("control") or {}), "source": 5}
    conn.execute("UPDATE observations SET data = ? WHERE measurement_id = 4",
                 (observations.pack(data),))
    conn.execute("UPDATE dns_answers SET value = x'00ff' WHERE reply_id = "
                 "(SELECT min(r.id) FROM dns_replies r JOIN dns_queries q ON q.id = r.query_id "
                 "WHERE q.measurement_id = 5)")
    conn.commit()
    conn.close()


def _reads_everything(db: Path, tmp_path: Path) -> dict[str, Any]:
    """Every reader of the output, as a researcher runs them: all must work."""
    runner = CliRunner()
    out: dict[str, Any] = {}
    for args in (["results"], ["runs"],
                 ["show", "http://site0.example.org/"], ["compare"], ["reclassify"]):
        r = runner.invoke(cli, [*args, "--db", str(db)])
        assert r.exit_code == 0, (args, r.output)
    for fmt in ("jsonl", "ooni"):
        r = runner.invoke(cli, ["export", "--db", str(db), "--format", fmt, "--all-attempts"])
        assert r.exit_code == 0, (fmt, r.output)
        out[fmt] = [json.loads(line) for line in r.output.splitlines()]
    r = runner.invoke(cli, ["export", "--db", str(db), "--format", "csv", "--all-attempts"])
    assert r.exit_code == 0, r.output
    out["csv"] = list(csv.DictReader(io.StringIO(r.output)))
    return out


def test_a_poisoned_source_is_refused_row_by_row_and_the_output_stays_readable(tmp_path: Path) -> None:
    good = _db(tmp_path / "good.db", "almaty")
    bad = _db(tmp_path / "bad.db", "moscow", t0=T0 + 1000)
    _poison(bad)
    out = tmp_path / "all.db"
    r = CliRunner().invoke(cli, ["merge", str(good), str(bad), "--into", str(out)])
    assert r.exit_code == 0, r.output
    # (the control is packed in its measurement's observations since schema 11: one row fewer)
    assert "5 invalid rows refused (5 measurements not merged)" in r.output
    for named in ("observations row 1: data: not JSON", "measurements row 2: final: '7' is not one of",
                  "measurements row 3: reasons", "data: hops[0].control.source: expected str",
                  "dns_answers reply_id"):
        assert named in r.output, r.output
    exported = _reads_everything(out, tmp_path)
    # Nothing silently dropped: every measurement in the output is in every export.
    n = sqlite3.connect(out).execute("SELECT count(*) FROM measurements").fetchone()[0]
    assert n == 6 + 1  # all of almaty, the one sound measurement of moscow
    assert len(exported["csv"]) == len(exported["jsonl"]) == len(exported["ooni"]) == n
    assert CliRunner().invoke(cli, ["check", "--db", str(out)]).exit_code == 0


def test_a_blob_name_or_a_bad_run_refuses_what_depends_on_it(tmp_path: Path) -> None:
    bad = _db(tmp_path / "bad.db", "moscow")
    conn = sqlite3.connect(bad)
    conn.execute("UPDATE vantage_points SET name = x'6d6f73636f77'")  # a BLOB, not text
    conn.commit()
    conn.close()
    other = _db(tmp_path / "other.db", "tashkent", t0=T0 + 500)
    conn = sqlite3.connect(other)
    conn.execute("UPDATE runs SET started_at = 'yesterday'")  # the exports parse it as a time
    conn.commit()
    conn.close()
    out = tmp_path / "all.db"
    results = merge(out, [bad, other])
    assert [(x.refused, x.refused_measurements, x.measurements) for x in results] == [(1, 6, 0), (1, 6, 0)]
    assert str(results[0].problems[0]) == "vantage_points row 1: name: a BLOB value"
    assert str(results[1].problems[0]).startswith("runs row 1: started_at")
    conn = sqlite3.connect(out)
    # tashkent itself is sound: it is merged, without its run.
    assert [r[0] for r in conn.execute("SELECT name FROM vantage_points")] == ["tashkent"]
    assert conn.execute("SELECT count(*) FROM runs").fetchone()[0] == 0
    assert conn.execute("SELECT count(*) FROM measurements").fetchone()[0] == 0
    assert conn.execute("SELECT count(*) FROM observations").fetchone()[0] == 0


def test_rows_whose_owner_is_missing_never_enter(tmp_path: Path) -> None:
    a = _db(tmp_path / "a.db", "moscow")
    conn = sqlite3.connect(a)
    # An observation and a TCP connect of measurement 99, which the source does not hold: copied,
    # they would belong to whichever measurement gets id 99 + offset in the output.
    conn.execute("INSERT INTO observations (measurement_id, data) VALUES (99, ?)",
                 (observations.pack({}),))
    conn.execute("INSERT INTO tcp_connects (measurement_id, hop, ip, port) "
                 "VALUES (99, 0, '192.0.2.9', 80)")
    conn.commit()
    conn.close()
    out = tmp_path / "all.db"
    (result,) = merge(out, [a])
    assert result.measurements == 6 and result.refused == 2
    assert any("refers to measurements 99" in str(p) for p in result.problems)
    conn = sqlite3.connect(out)
    assert conn.execute("SELECT count(*) FROM observations").fetchone()[0] == 6
    assert conn.execute("SELECT count(*) FROM tcp_connects WHERE ip = '192.0.2.9'").fetchone()[0] == 0
    assert conn.execute("PRAGMA foreign_key_check").fetchall() == []


def test_empty_and_foreign_files_are_never_written(tmp_path: Path) -> None:
    good = _db(tmp_path / "good.db", "moscow")
    empty = tmp_path / "empty.db"
    empty.touch()
    other = tmp_path / "other.db"
    conn = sqlite3.connect(other)
    conn.execute("CREATE TABLE notes (body TEXT)")
    conn.commit()
    conn.close()
    before = {p: _digest(p) for p in (empty, other, good)}
    out = tmp_path / "all.db"
    for source, message in ((empty, "is empty"), (other, "not a probe database")):
        r = CliRunner().invoke(cli, ["merge", str(good), str(source), "--into", str(out)])
        assert r.exit_code == 1 and message in r.output and "left untouched" in r.output, r.output
    assert {p: _digest(p) for p in before} == before
    assert empty.stat().st_size == 0 and not _sidecars(empty) and not _sidecars(other)
    assert not out.exists()  # refused before anything was written


def test_sources_are_read_only_even_an_older_one_that_needs_upgrading(tmp_path: Path) -> None:
    a = _db(tmp_path / "a.db", "moscow")
    conn = sqlite3.connect(a)  # as an older probe left it: one migration less, in DELETE mode
    version, _, sql = MIGRATIONS[-1]  # whichever is last: what it created is dropped, views first
    conn.execute("DELETE FROM schema_migrations WHERE version = ?", (version,))
    created = re.findall(r"CREATE (TABLE|VIEW) (\w+)", sql)
    assert created, f"migration {version} creates no table or view to drop"
    for kind, name in sorted(created, key=lambda c: c[0] != "VIEW"):
        conn.execute(f"DROP {kind} {name}")
    conn.commit()
    conn.execute("PRAGMA journal_mode = DELETE")
    conn.close()
    before = _digest(a)
    out = tmp_path / "all.db"
    (result,) = merge(out, [a])
    assert result.measurements == 6
    assert _digest(a) == before and not _sidecars(a)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.db", "all.db"]  # no copy left behind
    # The live source case: a database a probe is writing (WAL) is read, never written.
    b = _db(tmp_path / "b.db", "almaty", t0=T0 + 100)
    before = _digest(b)
    merge(out, [b])
    assert _digest(b) == before


def test_unchanged_sources_are_skipped_and_changed_ones_merged_again(tmp_path: Path) -> None:
    a, b = _db(tmp_path / "a.db", "moscow"), _db(tmp_path / "b.db", "almaty", t0=T0 + 100)
    out = tmp_path / "all.db"
    merge(out, [a, b])
    checked: list[str] = []
    real = merge_module.screen

    def counting(conn: sqlite3.Connection, **kw: Any) -> Any:
        checked.append("x")
        return real(conn, **kw)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(merge_module, "screen", counting)
        again = merge(out, [a, b])
        assert [x.unchanged is not None for x in again] == [True, True] and checked == []
        # b changes three ways: a new measurement, a re-judged verdict, the run's end.
        with Store.open(b) as s:
            run = s.start_run(s.vantage("almaty"), ["list.csv"], {})
            s.write(run, s.vantage("almaty"), [(sample_measurement(50, started=T0 + 900), sample_verdict())])
        third = merge(out, [a, b])
        assert third[0].unchanged and third[1].measurements == 1 and checked == ["x"]
        conn = sqlite3.connect(b)
        conn.execute("UPDATE measurements SET verdict = 'blocked', "
                     "classified_at = '2030-01-01T00:00:00.000Z' WHERE id = 1")
        conn.commit()
        conn.close()
        fourth = merge(out, [b])[0]
        assert fourth.verdicts_updated == 1 and fourth.measurements == 0
        with Store.open(b) as s:
            s.finish_run(run, "complete")
        assert merge(out, [b])[0].runs_updated == 1
        assert merge(out, [b])[0].unchanged


def test_a_damaged_source_is_not_merged_and_the_others_are(tmp_path: Path) -> None:
    a = _db(tmp_path / "a.db", "moscow", n=40)
    conn = sqlite3.connect(a)
    page = conn.execute("PRAGMA page_size").fetchone()[0]  # 8 KiB since schema 11
    # A page of the measurements' rows (merge reads every row of the tables it copies).
    (pageno,) = conn.execute("SELECT max(pageno) FROM dbstat WHERE name = 'measurements' "
                             "AND pagetype = 'leaf'").fetchone()
    conn.close()
    data = bytearray(a.read_bytes())
    data[(pageno - 1) * page:pageno * page] = bytes(page)
    a.write_bytes(bytes(data))
    b = _db(tmp_path / "b.db", "almaty", t0=T0 + 100)
    out = tmp_path / "all.db"
    r = CliRunner().invoke(cli, ["merge", str(a), str(b), "--into", str(out)])
    assert r.exit_code == 1, r.output
    assert "a.db: not merged: damaged" in r.output and "the other sources were merged" in r.output
    conn = sqlite3.connect(out)
    assert [x[0] for x in conn.execute("SELECT name FROM vantage_points")] == ["almaty"]


def test_rows_a_running_probe_adds_after_the_check_wait_for_the_next_merge(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    a = _db(tmp_path / "a.db", "moscow")
    real = merge_module.screen

    def check_then_the_probe_writes(conn: sqlite3.Connection, **kw: Any) -> Any:
        found = real(conn, **kw)
        with Store.open(a) as s:  # the probe writes on, between the check and the copy
            vid = s.vantage("moscow")
            s.write(1, vid, [(sample_measurement(77, started=T0 + 77), sample_verdict())])
        return found

    monkeypatch.setattr(merge_module, "screen", check_then_the_probe_writes)
    out = tmp_path / "all.db"
    (first,) = merge(out, [a])
    assert first.measurements == 6  # the seventh was not checked: not copied
    monkeypatch.setattr(merge_module, "screen", real)
    (second,) = merge(out, [a])
    assert second.measurements == 1
    assert sqlite3.connect(out).execute("PRAGMA foreign_key_check").fetchall() == []


def test_a_new_output_ends_in_wal_mode_and_an_existing_one_stays_there(tmp_path: Path) -> None:
    a, b = _db(tmp_path / "a.db", "moscow"), _db(tmp_path / "b.db", "almaty", t0=T0 + 100)
    out = tmp_path / "all.db"
    merge(out, [a])
    assert sqlite3.connect(out).execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    merge(out, [b])
    assert sqlite3.connect(out).execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_merge_fails_before_it_writes_when_a_source_is_missing(tmp_path: Path) -> None:
    a = _db(tmp_path / "a.db", "moscow")
    with pytest.raises(MergeError, match="no such file"):
        merge(tmp_path / "all.db", [a, tmp_path / "missing.db"])
    assert not (tmp_path / "all.db").exists()
    shutil.rmtree(tmp_path / "nothing", ignore_errors=True)


def test_rows_are_checked_against_probes_schema_not_the_sources_own(tmp_path: Path) -> None:
    a = _db(tmp_path / "a.db", "moscow")
    conn = sqlite3.connect(a)  # a file with probe's tables, one of them declared its own way
    cols = [r[1] for r in conn.execute("PRAGMA table_info(vantage_points)")]
    conn.execute("ALTER TABLE vantage_points RENAME TO vp_old")
    declared = ", ".join(c + (" BLOB" if c == "name" else "") for c in cols)
    conn.execute(f"CREATE TABLE vantage_points ({declared})")
    values = ", ".join("CAST(name AS BLOB)" if c == "name" else c for c in cols)
    conn.execute(f"INSERT INTO vantage_points SELECT {values} FROM vp_old")
    conn.commit()
    conn.close()
    (result,) = merge(tmp_path / "all.db", [a])
    assert result.measurements == 0 and str(result.problems[0]).startswith("vantage_points row 1: name")


def _golden_documents() -> list[str]:
    """Every golden case's observations and controls (tests/unit/golden), as stored JSON."""
    root = Path(__file__).parent / "golden"
    return [p.read_text() for p in sorted(root.glob("*/observations.json"))]


@pytest.mark.parametrize("mutate", [
    lambda d: d, lambda d: {**d, "hops": [{**h, "tcp": [{"ip": 5}]} for h in d["hops"]]},
    lambda d: {**d, "runtime": "slow"}, lambda d: {k: v for k, v in d.items() if k != "target"},
    lambda d: {**d, "started": 3}, lambda d: {**d, "extra": {"ignored": True}},
    lambda d: {**d, "hops": [{**h, "dns": [{"hostname": None}]} for h in d["hops"]]},
    lambda d: {**d, "target": {**d["target"], "port": "80"}},
])
def test_the_fast_check_accepts_exactly_what_the_codec_decodes(mutate: Any) -> None:
    from probe.core.codec import CodecError, checker, decode_json
    from probe.core.model import Measurement

    check = checker(Measurement)
    docs = _golden_documents()
    assert len(docs) >= 50
    for text in docs:
        data = json.dumps(mutate(json.loads(text)))
        try:
            decode_json(data, Measurement)
            expected = None
        except CodecError as exc:
            expected = str(exc)
        try:
            check(data)
            got = None
        except CodecError as exc:
            got = str(exc)
        assert got == expected


def test_the_fast_check_of_controls_agrees_with_the_codec() -> None:
    from probe.core.codec import CodecError, checker, decode_json
    from probe.core.model import ControlObservation

    check = checker(ControlObservation)
    root = Path(__file__).parent / "golden"
    controls = [c for p in sorted(root.glob("*/control.json")) for c in json.loads(p.read_text()) or []
                if c is not None]
    assert len(controls) >= 20
    for c in controls:
        for variant in (c, {**c, "source": 5}, {**c, "http_status": "200"}, {**c, "dns_addrs": "x"}):
            data = json.dumps(variant)
            outcomes = []
            for f in (lambda d: decode_json(d, ControlObservation), check):
                try:
                    f(data)
                    outcomes.append(None)
                except CodecError as exc:
                    outcomes.append(str(exc))
            assert outcomes[0] == outcomes[1]


def test_a_new_output_appears_complete_with_every_index_and_its_statistics(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b = _db(tmp_path / "a.db", "moscow"), _db(tmp_path / "b.db", "almaty", t0=T0 + 100)
    out = tmp_path / "all.db"
    real = merge_module._merge_one
    calls: list[int] = []

    def fail_at_the_second(*args: Any) -> Any:
        calls.append(1)
        if len(calls) == 2:
            raise MergeError("b.db: merge failed and was rolled back: disk I/O error")
        return real(*args)

    monkeypatch.setattr(merge_module, "_merge_one", fail_at_the_second)
    with pytest.raises(MergeError, match="disk I/O"):
        merge(out, [a, b])
    # Nothing half-made (the sources' -shm/-wal are SQLite's index of a WAL database read).
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.endswith(("-shm", "-wal"))) == [
        "a.db", "b.db"]
    monkeypatch.setattr(merge_module, "_merge_one", real)
    merge(out, [a, b])
    fresh = tmp_path / "fresh.db"
    Store.open(fresh).close()

    def schema(path: Path) -> tuple[list[Any], list[Any]]:
        conn = sqlite3.connect(path)
        try:
            return (conn.execute("SELECT name, sql FROM sqlite_master ORDER BY name").fetchall(),
                    conn.execute("SELECT tbl, idx, stat FROM sqlite_stat1 ORDER BY tbl, idx").fetchall())
        finally:
            conn.close()

    assert schema(out) == schema(fresh)
    conn = sqlite3.connect(out)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
