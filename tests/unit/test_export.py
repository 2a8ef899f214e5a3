"""`probe export`: CSV, JSON lines, OONI Web Connectivity (checked against ooni/spec), Parquet."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from store_samples import sample_measurement, sample_verdict

from probe.cli import cli
from probe.core.codec import from_data
from probe.core.model import Measurement, Verdict
from probe.store import Store

ROOT = Path(__file__).resolve().parents[2]
SPEC_EXAMPLE = ROOT / "tests" / "fixtures" / "ooni_spec" / "web_connectivity_example.json"
T0 = 1_790_000_000.0


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "r.db"
    with Store.open(path) as s:
        vid = s.vantage("moscow", asn=64500, as_org="Example Telecom", country="RU")
        run = s.start_run(vid, ["list.csv"], {})
        items: list[Any] = [
            (sample_measurement(0, started=T0), Verdict("hijacked", "dns", 0, ("dns/bogon",), "c1")),
            (sample_measurement(1, started=T0 + 1), Verdict("ok", None, None, (), "c1")),
            (sample_measurement(2, started=T0 + 2, attempt=0), Verdict("reset", "tls", 1, (), "c1"),
             False),
            (sample_measurement(2, started=T0 + 3, attempt=1), Verdict("reset", "tls", 1, (), "c1")),
        ]
        s.write(run, vid, items)
        s.finish_run(run, "complete")
        vid2 = s.vantage("almaty")
        run2 = s.start_run(vid2, [], {})
        s.write(run2, vid2, [(sample_measurement(0, started=T0 + 10), sample_verdict())])
        s.finish_run(run2, "complete")
    return path


def _export(db: Path, *args: str) -> str:
    result = CliRunner().invoke(cli, ["export", "--db", str(db), *args])
    assert result.exit_code == 0, result.output
    return result.output


def test_csv_has_one_row_per_final_measurement_with_global_ids(db: Path) -> None:
    rows = list(csv.DictReader(io.StringIO(_export(db, "--format", "csv"))))
    assert [(r["vantage"], r["url"], r["verdict"]) for r in rows] == [
        ("moscow", "http://site0.example.org/", "hijacked"),
        ("moscow", "http://site1.example.org/", "ok"),
        ("moscow", "http://site2.example.org/", "reset"),
        ("almaty", "http://site0.example.org/", sample_verdict().verdict),
    ]
    assert rows[0]["asn"] == "64500" and rows[0]["country"] == "RU"
    assert json.loads(rows[0]["reasons"]) == ["dns/bogon"]
    assert len({r["measurement_uid"] for r in rows}) == 4
    every = list(csv.DictReader(io.StringIO(_export(db, "--format", "csv", "--all-attempts"))))
    assert len(every) == 5 and sorted(r["final"] for r in every) == ["0", "1", "1", "1", "1"]


def test_filters_select_vantage_and_run(db: Path, tmp_path: Path) -> None:
    rows = list(csv.DictReader(io.StringIO(_export(db, "--format", "csv", "--vantage", "almaty"))))
    assert [r["vantage"] for r in rows] == ["almaty"]
    rows = list(csv.DictReader(io.StringIO(_export(db, "--format", "csv", "--run", "1"))))
    assert {r["vantage"] for r in rows} == {"moscow"}
    result = CliRunner().invoke(cli, ["export", "--db", str(db), "--format", "csv", "--vantage", "x"])
    assert result.exit_code == 2 and "no vantage point x" in result.output
    result = CliRunner().invoke(cli, ["export", "--db", str(db), "--format", "parquet"])
    assert result.exit_code == 2 and "--output" in result.output


def test_jsonl_holds_the_complete_measurement(db: Path) -> None:
    lines = _export(db, "--format", "jsonl", "--vantage", "moscow").splitlines()
    first = json.loads(lines[0])
    assert first["verdict"] == "hijacked" and first["classifier_version"] == "c1"
    assert from_data(Measurement, first["measurement"]) == sample_measurement(0, started=T0)


def test_output_file_is_written_whole(db: Path, tmp_path: Path) -> None:
    out = tmp_path / "x.jsonl"
    result = CliRunner().invoke(cli, ["export", "--db", str(db), "--format", "ooni", "-o", str(out)])
    assert result.exit_code == 0
    assert len(out.read_text().splitlines()) == 4
    assert not (tmp_path / "x.jsonl.partial").exists()


# --- OONI's data format, checked against ooni/spec's example ------------------------------------
def _kind(v: object) -> str:
    return {bool: "bool", int: "number", float: "number", str: "string", list: "list",
            dict: "object", type(None): "null"}[type(v)]


def _same_shape(ours: dict[str, Any], theirs: dict[str, Any], where: str) -> None:
    """Every key of the spec's example is in ours, with the same JSON type (or null)."""
    missing = sorted(set(theirs) - set(ours))
    assert not missing, f"{where}: missing {missing}"
    for k, v in theirs.items():
        if ours[k] is None or v is None:
            continue
        assert _kind(ours[k]) == _kind(v), f"{where}.{k}: {_kind(ours[k])} != {_kind(v)}"


def test_ooni_export_has_the_fields_and_types_of_the_spec_example(db: Path) -> None:
    spec = json.loads(SPEC_EXAMPLE.read_text())
    ours = [json.loads(x) for x in _export(db, "--format", "ooni").splitlines()]
    assert len(ours) == 4
    for m in ours:
        _same_shape(m, spec, "measurement")
        assert m["test_name"] == "web_connectivity" and m["data_format_version"] == "0.2.0"
        tk, stk = m["test_keys"], spec["test_keys"]
        classic = {"agent", "client_resolver", "retries", "socksproxy", "network_events", "queries",
                   "tcp_connect", "tls_handshakes", "requests", "control", "control_failure",
                   "dns_experiment_failure", "dns_consistency", "http_experiment_failure",
                   "body_length_match", "body_proportion", "headers_match", "status_code_match",
                   "title_match", "accessible", "blocking"}
        assert classic <= set(tk) and classic <= set(stk)
        for key in ("queries", "tcp_connect", "tls_handshakes", "requests"):
            assert tk[key], key
            for entry in tk[key]:
                _same_shape(entry, stk[key][0], key)
        for entry in tk["requests"]:
            _same_shape(entry["request"], stk["requests"][0]["request"], "requests.request")
            _same_shape(entry["response"], stk["requests"][0]["response"], "requests.response")
        certs = [c for e in tk["tls_handshakes"] for c in e["peer_certificates"] or ()]
        assert certs
        for cert in certs:
            _same_shape(cert, stk["tls_handshakes"][0]["peer_certificates"][0], "peer_certificates")
        for key in ("tcp_connect", "tls_handshake", "http_request", "dns"):
            assert key in tk["control"]
        _same_shape(tk["control"]["http_request"], stk["control"]["http_request"], "control.http")


def test_ooni_export_maps_verdicts_and_keeps_identity_private(db: Path) -> None:
    ours = [json.loads(x) for x in _export(db, "--format", "ooni", "--vantage", "moscow").splitlines()]
    got = [(m["test_keys"]["accessible"], m["test_keys"]["blocking"],
            m["test_keys"]["x_probe_verdict"]["verdict"]) for m in ours]
    assert got == [(False, "dns", "hijacked"), (True, False, "ok"), (False, "http-failure", "reset")]
    first = ours[0]
    assert (first["probe_asn"], first["probe_cc"], first["probe_ip"]) == ("AS64500", "RU", "127.0.0.1")
    assert first["probe_network_name"] == "Example Telecom"
    assert first["measurement_start_time"] == "2026-09-21 14:13:20"
    assert first["test_keys"]["dns_consistency"] == "inconsistent"
    # df-001: requests newest first (the redirect target before the URL of the list).
    urls = [r["request"]["url"] for r in first["test_keys"]["requests"]]
    assert urls == ["https://site0.example.org/", "http://site0.example.org/"]
    assert all(q["tags"] for q in first["test_keys"]["queries"])


# --- Parquet -----------------------------------------------------------------------------------
def test_parquet_writes_one_file_per_table_with_stable_types(db: Path, tmp_path: Path) -> None:
    pq = pytest.importorskip("pyarrow.parquet")
    from probe.research.export.parquet import TABLES, arrow_schema

    out = tmp_path / "pq"
    _export(db, "--format", "parquet", "-o", str(out))
    for table in TABLES:
        t = pq.read_table(out / f"{table.name}.parquet")
        assert t.schema.equals(arrow_schema(table)), table.name
    m = pq.read_table(out / "measurements.parquet").to_pylist()
    assert [r["verdict"] for r in m] == ["hijacked", "ok", "reset", sample_verdict().verdict]
    assert m[0]["reasons"] == ["dns/bogon"] and m[0]["final"] is True
    assert m[0]["measured_at"].isoformat() == "2026-09-21T14:13:20+00:00"
    q = pq.read_table(out / "dns_queries.parquet").to_pylist()
    assert {r["measurement_uid"] for r in q} == {r["uid"] for r in m}
    # An empty selection still writes every table, with the same schema.
    empty = tmp_path / "empty"
    _export(db, "--format", "parquet", "-o", str(empty), "--since", "2030-01-01")
    t = pq.read_table(empty / "measurements.parquet")
    assert t.num_rows == 0 and t.schema.equals(arrow_schema(TABLES[2]))


def test_parquet_observations_are_opt_in(db: Path, tmp_path: Path) -> None:
    pq = pytest.importorskip("pyarrow.parquet")
    out = tmp_path / "pq"
    _export(db, "--format", "parquet", "-o", str(out), "--observations")
    obs = pq.read_table(out / "observations.parquet").to_pylist()
    assert len(obs) == 4 and json.loads(obs[0]["data"])["target"]["url"] == "http://site0.example.org/"
    # Without --observations the file is not this export's: kept, and the export refused
    # (tests/unit/test_outputs.py); into a new directory there is none.
    _export(db, "--format", "parquet", "-o", str(tmp_path / "pq2"))
    assert not (tmp_path / "pq2" / "observations.parquet").exists()


def test_parquet_without_pyarrow_says_how_to_install_it(db: Path, tmp_path: Path) -> None:
    import subprocess
    import sys

    code = (
        "import sys; sys.modules['pyarrow'] = None\n"
        "from probe.cli import cli\n"
        f"cli(['export', '--db', {str(db)!r}, '--format', 'parquet', '-o', {str(tmp_path / 'p')!r}])"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 1 and "pip install 'censorship-probe[parquet]'" in proc.stderr
    assert not (tmp_path / "p").exists() and not (tmp_path / "p.partial").exists()


def test_parquet_row_groups_are_bounded_and_hold_every_row(
    db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pq = pytest.importorskip("pyarrow.parquet")
    from probe.research.export import parquet as pqexport

    # Tiny bounds, so that the five measurements make several fetches and row groups.
    monkeypatch.setattr(pqexport, "_FETCH", 2)
    monkeypatch.setattr(pqexport, "_GROUP_ROWS", 3)
    out = tmp_path / "p"
    _export(db, "--format", "parquet", "-o", str(out), "--all-attempts")
    f = pq.ParquetFile(out / "measurements.parquet")
    sizes = [f.metadata.row_group(i).num_rows for i in range(f.metadata.num_row_groups)]
    assert sizes == [4, 1]  # fetches of 2 gathered until 3 rows or more, then the rest
    monkeypatch.setattr(pqexport, "_GROUP_ROWS", 10**6)
    monkeypatch.setattr(pqexport, "_GROUP_BYTES", 1)  # every fetch is over the byte bound
    _export(db, "--format", "parquet", "-o", str(out), "--all-attempts")
    f = pq.ParquetFile(out / "measurements.parquet")
    sizes = [f.metadata.row_group(i).num_rows for i in range(f.metadata.num_row_groups)]
    assert sizes == [2, 2, 1]
    uids = [r["uid"] for r in f.read().to_pylist()]
    assert len(uids) == 5 and len(set(uids)) == 5


def test_parquet_export_does_not_import_pandas(db: Path, tmp_path: Path) -> None:
    import subprocess
    import sys

    pytest.importorskip("pyarrow.parquet")
    code = (
        "import sys\n"
        "from probe.cli import cli\n"
        f"try: cli(['export', '--db', {str(db)!r}, '--format', 'parquet', '-o', {str(tmp_path / 'p')!r}])\n"
        "except SystemExit: pass\n"
        "print('pandas' in sys.modules)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "False"  # pyarrow would import it: +50 MB RSS


def _identity_db(tmp_path: Path) -> Path:
    """A run with its network identity and User-Agent recorded, as `probe run` records them."""
    path = tmp_path / "identity.db"
    with Store.open(path) as s:
        vid = s.vantage("home", asn=64500, country="RU")
        run = s.start_run(vid, ["list.csv"], {"measure": {"user_agent": "Mozilla/5.0 test"}})
        s.conn.execute(
            "UPDATE runs SET asn = 64501, as_org = 'Run Telecom', country = 'KZ', "
            "resolver_ip = '198.51.100.53', resolver_asn = 64511, resolver_as_org = 'Resolver Net' "
            "WHERE id = ?", (run,))
        s.write(run, vid, [(sample_measurement(0, started=T0), sample_verdict())])
        s.finish_run(run, "complete")
    return path


def test_ooni_export_fills_network_events_from_what_probe_timed(tmp_path: Path) -> None:
    spec = json.loads(SPEC_EXAMPLE.read_text())["test_keys"]["network_events"]
    (m,) = [json.loads(x) for x in _export(_identity_db(tmp_path), "--format", "ooni").splitlines()]
    tk = m["test_keys"]
    events = tk["network_events"]
    ops = [e["operation"] for e in events]
    # One connect per TCP connect, same endpoint, failure, times and transaction.
    connects = [e for e in events if e["operation"] == "connect"]
    assert [(e["address"], e["failure"], e["t0"], e["t"], e["transaction_id"]) for e in connects] == [
        (f"{c['ip']}:{c['port']}", c["status"]["failure"], c["t0"], c["t"], c["transaction_id"])
        for c in tk["tcp_connect"]]
    assert ops.count("tls_handshake_start") == ops.count("tls_handshake_done") == len(
        tk["tls_handshakes"])
    assert ops.count("http_transaction_start") == len(tk["requests"])
    # DNS over UDP: the query sent, then every reply read with its size (DoH has no UDP events).
    udp = [q for q in tk["queries"] if q["engine"] == "udp"]
    assert ops.count("write_to") == len(udp)
    reads = [e for e in events if e["operation"] == "read_from" and e.get("num_bytes")]
    assert reads and all(e["proto"] == "udp" and e["address"] == "127.0.0.53:53" for e in reads)
    assert [e["t"] for e in events] == sorted(e["t"] for e in events)
    # The shape of the spec example's events of the same operation.
    for e in events:
        theirs = next((x for x in spec if x["operation"] == e["operation"]), None)
        if theirs is not None:
            _same_shape(e, {k: v for k, v in theirs.items() if k != "num_bytes"}, e["operation"])
        assert e["t0"] <= e["t"] and isinstance(e["transaction_id"], int)


def test_ooni_export_fills_the_runs_identity_resolver_and_sent_headers(tmp_path: Path) -> None:
    (m,) = [json.loads(x) for x in _export(_identity_db(tmp_path), "--format", "ooni").splitlines()]
    # The run's own network, not the vantage point's latest.
    assert (m["probe_asn"], m["probe_cc"], m["probe_network_name"]) == ("AS64501", "KZ", "Run Telecom")
    assert (m["resolver_ip"], m["resolver_asn"], m["resolver_network_name"]) == (
        "198.51.100.53", "AS64511", "Resolver Net")
    assert m["test_keys"]["client_resolver"] == "198.51.100.53"
    assert m["probe_ip"] == "127.0.0.1"
    sent = m["test_keys"]["requests"][-1]["request"]["headers_list"]
    assert sent[:2] == [["Host", "site0.example.org"], ["User-Agent", "Mozilla/5.0 test"]]
    assert ["Accept-Language", "en-US,en;q=0.9"] in sent


def test_ooni_export_answers_carry_the_helpers_or_the_ip_datas_asn(db: Path) -> None:
    from probe.research.export import Filters, iter_records
    from probe.research.ooni.export import to_ooni

    with Store.open(db) as s:
        record = next(iter_records(s, Filters(vantages=("moscow",))))
    # The helper reported 192.0.2.10 in AS64496 (ip_info); the IP data knows 10.10.34.34.
    data = {"10.10.34.34": (64999, "Bogon Holder"), "192.0.2.10": (64496, "Example CDN")}
    tk = to_ooni(record, lambda ip: data.get(ip, (0, "")))["test_keys"]
    got = {a.get("ipv4"): (a["asn"], a["as_org_name"]) for q in tk["queries"]
           for a in q["answers"] or () if a.get("ipv4")}
    assert got["10.10.34.34"] == (64999, "Bogon Holder")
    assert got["192.0.2.10"] == (64496, "Example CDN")
    no_data = to_ooni(record)["test_keys"]  # without IP data: the helper's, else 0 (unknown)
    got = {a.get("ipv4"): a["asn"] for q in no_data["queries"] for a in q["answers"] or ()
           if a.get("ipv4")}
    assert got["10.10.34.34"] == 0 and got["192.0.2.10"] == 64496


def test_ooni_export_is_read_back_by_probe_import_ooni(db: Path, tmp_path: Path) -> None:
    from probe.research.ooni.importer import import_ooni

    out = tmp_path / "export.jsonl"
    out.write_text(_export(db, "--format", "ooni"))
    with Store.open(tmp_path / "back.db") as s:
        stats = import_ooni(s, [out])
    assert (stats.read, stats.imported, stats.skipped) == (4, 4, 0), stats.errors
