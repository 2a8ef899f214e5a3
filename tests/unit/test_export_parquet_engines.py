"""Exports that carry the truth (issue 25, point 5): each row its own run's network, Parquet
non-null where the schema is, provenance in every file, loaded as they are into a ClickHouse
MergeTree table (chdb) and DuckDB, hive-partitioned datasets that several probes extend."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from store_samples import sample_measurement

from probe.cli import cli
from probe.core.model import Verdict
from probe.store import Store

pq = pytest.importorskip("pyarrow.parquet")
T0 = 1_790_000_000.0


def _laptop(path: Path, name: str = "laptop", t0: float = T0) -> Path:
    """A vantage point that measured on two networks: a run in RU, then a run in KZ."""
    with Store.open(path) as s:
        vid = s.vantage(name, asn=64500, country="RU")
        for k, (asn, org, cc, rasn) in enumerate(((64500, "Example RU", "RU", 64501),
                                                   (64510, "Example KZ", "KZ", 64511))):
            run = s.start_run(vid, ["list.csv"], {})
            s.set_run_identity(run, {"start": {"asn": asn, "as_org": org, "country": cc,
                                               "resolver_asn": rasn}})
            s.vantage(name, asn=asn, as_org=org, country=cc)  # the vantage point follows
            verdict = Verdict("hijacked", "dns", 0, ("dns/bogon",), "c1") if k == 0 else \
                Verdict("ok", None, None, (), "c1")
            s.write(run, vid, [(sample_measurement(i, started=t0 + 86400 * k + i), verdict)
                               for i in range(2)])
            s.finish_run(run, "complete")
    return path


def _export(db: Path, *args: str) -> str:
    r = CliRunner().invoke(cli, ["export", "--db", str(db), *args])
    assert r.exit_code == 0, r.output
    return r.output


def test_csv_and_jsonl_rows_carry_their_own_runs_network(tmp_path: Path) -> None:
    db = _laptop(tmp_path / "l.db")
    rows = list(csv.DictReader(io.StringIO(_export(db, "--format", "csv"))))
    got = [(r["asn"], r["as_org"], r["country"], r["resolver_asn"], r["network_source"])
           for r in rows]
    assert got == [("64500", "Example RU", "RU", "64501", "run")] * 2 + [
        ("64510", "Example KZ", "KZ", "64511", "run")] * 2
    lines = [json.loads(x) for x in _export(db, "--format", "jsonl").splitlines()]
    assert [(x["country"], x["asn"], x["network_source"]) for x in lines] == [
        ("RU", 64500, "run")] * 2 + [("KZ", 64510, "run")] * 2


def test_parquet_declares_non_null_carries_provenance_and_run_networks(tmp_path: Path) -> None:
    db = _laptop(tmp_path / "l.db")
    out = tmp_path / "pq"
    _export(db, "--format", "parquet", "-o", str(out), "--dns-replies", "--certificates")
    runs = pq.read_table(out / "runs.parquet")
    assert [(r["country"], r["asn"], r["resolver_asn"]) for r in runs.to_pylist()] == [
        ("RU", 64500, 64501), ("KZ", 64510, 64511)]
    assert runs.to_pylist()[0]["counts"]["hijacked"] == 2
    m = pq.read_table(out / "measurements.parquet")
    assert [r["country"] for r in m.to_pylist()] == ["RU", "RU", "KZ", "KZ"]
    for name in ("uid", "url", "verdict", "measured_at", "reasons", "final"):
        assert not m.schema.field(name).nullable, name
    assert m.schema.field("stage").nullable and m.schema.field("asn").nullable
    meta = {k.decode(): v.decode() for k, v in m.schema.metadata.items()}
    with Store.open(db, create=False) as s:
        own, _ = s.database_uids()
    assert meta["probe.database_uid"] == own and meta["probe.table"] == "measurements"
    assert json.loads(meta["probe.classifier_versions"]) == ["c1"]
    assert json.loads(meta["probe.filters"])["all_attempts"] is False
    assert {"probe.version", "probe.schema_version", "probe.exported_at",
            "probe.classifier_version_installed"} <= set(meta)
    # Every field of the observations, nested where it is a list of records.
    http = pq.read_table(out / "http_requests.parquet").to_pylist()
    assert http[0]["headers"][0] == {"name": "location", "value": "https://site0.example.org/"}
    assert http[1]["started"] == pytest.approx(T0 + 0.2)
    ctl = pq.read_table(out / "controls.parquet").to_pylist()[0]
    assert ctl["tcp"][0] == {"ip": "10.10.34.34", "port": 80, "ok": True, "failure": None}
    assert ctl["ip_info"][1] == {"ip": "10.10.34.34", "asn": 0, "flags": "bogon"}
    tls = pq.read_table(out / "tls_handshakes.parquet").to_pylist()[0]
    assert tls["leaf_subject"] == "CN=www.example.org" and len(tls["chain"]) == 2
    replies = pq.read_table(out / "dns_replies.parquet").to_pylist()
    assert replies[0]["raw"] == sample_measurement(0).hops[0].dns[0].replies[0].raw
    assert len(replies) == 4 * 4  # four replies a measurement
    certs = pq.read_table(out / "certificates.parquet").to_pylist()
    assert sorted(c["sha256"] for c in certs) == sorted(set(tls["chain"]))


def _mergetree(out: Path, table: str, order: str) -> Any:
    chdb = pytest.importorskip("chdb")
    from chdb import session

    sess = session.Session()
    try:
        sess.query(f"CREATE TABLE t ENGINE = MergeTree ORDER BY ({order}) AS "
                   f"SELECT * FROM file('{out}/{table}.parquet', Parquet)")
        return (sess.query("SELECT count() FROM t", "CSV").bytes().decode().strip(),
                sess.query("SELECT name, type FROM system.columns WHERE table = 't'",
                           "JSONEachRow").bytes().decode())
    finally:
        sess.close()
        del chdb


def test_parquet_loads_into_a_clickhouse_mergetree_and_duckdb_as_it_is(tmp_path: Path) -> None:
    duckdb = pytest.importorskip("duckdb")
    db = _laptop(tmp_path / "l.db")
    out = tmp_path / "pq"
    _export(db, "--format", "parquet", "-o", str(out))
    n, types = _mergetree(out, "measurements", "vantage_uid, url, measured_at")
    assert n == "4"
    assert '"name":"url","type":"String"' in types and "DateTime64(3" in types
    n, _ = _mergetree(out, "controls", "measurement_uid, hop")
    assert n == "8"  # a control per hop
    n, _ = _mergetree(out, "runs", "vantage_uid, started_at")
    assert n == "2"
    con = duckdb.connect()
    assert con.execute(f"SELECT count(*) FROM read_parquet('{out}/measurements.parquet') "
                   "WHERE country = 'KZ'").fetchone() == (2,)
    assert con.execute(f"SELECT h.headers[1].name FROM read_parquet('{out}/http_requests.parquet') AS h "
                   "WHERE h.hop = 0 LIMIT 1").fetchone() == ("location",)


def test_partitioned_datasets_of_two_probes_extend_one_another(tmp_path: Path) -> None:
    duckdb = pytest.importorskip("duckdb")
    a = _laptop(tmp_path / "a.db", "laptop")
    b = _laptop(tmp_path / "b.db", "laptop", t0=T0 + 10)  # the same name, another probe
    ds = tmp_path / "dataset"
    ds.mkdir()
    (ds / "README").write_text("a neighbour")
    # A file the export does not write needs --force (probe/host/output.py), and is kept.
    r = CliRunner().invoke(cli, ["export", "--db", str(a), "--format", "parquet", "-o", str(ds),
                                 "--partition-by", "country,date"])
    assert r.exit_code == 2 and "README" in r.output and "--force" in r.output
    assert sorted(p.name for p in ds.iterdir()) == ["README"]
    _export(a, "--format", "parquet", "-o", str(ds), "--partition-by", "country,date", "--force")
    # The dataset's own tables are no strangers: another probe's export extends it as it is.
    r = CliRunner().invoke(cli, ["export", "--db", str(b), "--format", "parquet", "-o", str(ds),
                                 "--partition-by", "country,date"])
    assert r.exit_code == 2 and "README" in r.output  # ... but the README still is one
    _export(b, "--format", "parquet", "-o", str(ds), "--partition-by", "country,date", "--force")
    assert (ds / "README").read_text() == "a neighbour"
    files = sorted(str(p.relative_to(ds)) for p in ds.rglob("*.parquet"))
    with Store.open(a, create=False) as s:
        uid_a = s.database_uids()[0]
    assert f"measurements/country=RU/date=2026-09-21/part-{uid_a}-" in "\n".join(files)
    assert len([f for f in files if f.startswith("measurements/")]) == 4  # 2 probes x 2 days
    con = duckdb.connect()
    rows = con.execute(f"SELECT country, date, count(*) FROM read_parquet('{ds}/measurements/**/*.parquet', "
                   "hive_partitioning = true) GROUP BY ALL ORDER BY ALL").fetchall()
    assert [(c, str(d), n) for c, d, n in rows] == [("KZ", "2026-09-22", 4), ("RU", "2026-09-21", 4)]
    assert con.execute(f"SELECT count(DISTINCT measurement_uid) FROM "
                   f"read_parquet('{ds}/dns_queries/**/*.parquet')").fetchone() == (8,)
    # Exporting a again replaces its own files only: same rows, the neighbour untouched.
    _export(a, "--format", "parquet", "-o", str(ds), "--partition-by", "country,date", "--force")
    assert sorted(str(p.relative_to(ds)) for p in ds.rglob("*.parquet")) == files
    assert (ds / "README").read_text() == "a neighbour"
    assert not list(ds.rglob("*.partial"))


def test_partition_by_is_checked(tmp_path: Path) -> None:
    db = _laptop(tmp_path / "l.db")
    r = CliRunner().invoke(cli, ["export", "--db", str(db), "--format", "parquet", "-o",
                                 str(tmp_path / "x"), "--partition-by", "country,asn"])
    assert r.exit_code == 2 and "--partition-by" in r.output
    r = CliRunner().invoke(cli, ["export", "--db", str(db), "--format", "csv",
                                 "--partition-by", "date"])
    assert r.exit_code == 2 and "parquet only" in r.output
