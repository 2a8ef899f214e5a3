"""The QUIC and ECH verdicts where people look: stored, re-judged, merged, shown, compared,
reported and exported (a database written by the Store, read back by the commands)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from probe.cli import cli
from probe.core.failures import Failure
from probe.core.model import (
    ControlECH,
    ControlObservation,
    ControlTLS,
    Hop,
    HTTPObservation,
    Measurement,
    QUICObservation,
    Target,
    TCPObservation,
    TLSHelloObservation,
    TLSObservation,
)
from probe.judge.classify import classify
from probe.present.evidence import evidence, render_text
from probe.run.reclassify import reclassify
from probe.store import Store
from probe.store.merge import merge
from probe.store.protocols import protocol_results, protocol_verdicts_of

IP = "198.51.100.9"
TIMEOUT = Failure.GENERIC_TIMEOUT_ERROR


def _measurement(host: str, *, quic_blocked: bool, started: float = 1_790_000_000.0) -> Measurement:
    url = f"https://{host}/"
    body = b"<html><title>t</title>page</html>"
    control = ControlObservation(
        "helper", url, started, 0.1, dns_addrs=(IP,), tcp=(), http_status=200,
        http_body_length=len(body), http_title="t",
        quic=(ControlTLS(IP, 443, host, True),),
        ech=(ControlECH(IP, 443, host, True, True),),
    )  # fmt: skip
    quic = ((QUICObservation(IP, 443, host, started, 5.0, TIMEOUT),
             QUICObservation(IP, 443, host, started + 6, 5.0, TIMEOUT, attempt=1))
            if quic_blocked else (QUICObservation(IP, 443, host, started, 0.05, None, "h3", 2,
                                                  h3_status=200),))
    decoy = ((QUICObservation(IP, 443, "example.com", started + 5, 0.05, None, "h3", 2),)
             if quic_blocked else ())
    hop = Hop(
        0, url, host, 443, "https",
        tcp=(TCPObservation(IP, 443, started, 0.01),),
        tls=(TLSObservation(IP, 443, host, started, 0.02, None, "TLSv1.3", cert_valid=True),),
        http=HTTPObservation(url, IP, 443, started, 0.1, status=200, body_length=len(body),
                             title="t", body=body),
        control=control, quic=quic, decoy_quic=decoy,
        ech=(TLSHelloObservation(IP, 443, host, False, started, 0.01, None, True, "server_hello"),
             TLSHelloObservation(IP, 443, host, True, started, 0.01, None, True, "server_hello")),
    )  # fmt: skip
    target = Target(url, url, "https", host, 443, category_code="NEWS")
    return Measurement(target, started, 12.0, hops=(hop,), protocols=("quic", "ech"))


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "probe.db"
    with Store.open(path) as s:
        vid = s.vantage("home")
        run = s.start_run(vid, [], {})
        ms = [_measurement("blocked.example", quic_blocked=True),
              _measurement("open.example", quic_blocked=False, started=1_790_000_100.0)]
        s.write(run, vid, [(m, classify(m)) for m in ms])
        s.finish_run(run, "complete")
    return path


def _invoke(*args: str) -> str:
    r = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    assert r.exit_code == 0, r.output
    return r.output


def test_protocol_verdicts_are_stored_beside_the_web_verdict(db: Path) -> None:
    with Store.open(db, create=False) as s:
        rows = {r["url"]: r for r in protocol_results(s, "quic")}
        assert rows["https://blocked.example/"]["verdict"] == "blocked"
        assert rows["https://blocked.example/"]["web_verdict"] == "ok"
        assert "quic/sni-filtered:decoy=example.com" in rows["https://blocked.example/"]["reasons"]
        assert rows["https://open.example/"]["verdict"] == "ok"
        assert [p.suite for p in protocol_verdicts_of(s, 1)] == ["quic", "ech"]


def test_reclassify_keeps_unchanged_protocol_verdicts_and_rewrites_changed_ones(db: Path) -> None:
    with Store.open(db) as s:
        assert reclassify(s).changed == 0
        s.conn.execute("UPDATE protocol_verdicts SET verdict = 'ok' WHERE suite = 'quic'")
        report = reclassify(s)
        assert report.changed == 1
        assert protocol_verdicts_of(s, 1)[0].verdict == "blocked"


def test_merge_copies_the_protocol_verdicts(db: Path, tmp_path: Path) -> None:
    out = tmp_path / "all.db"
    merge(out, [db])
    merge(out, [db])  # again: nothing twice
    with Store.open(out, create=False) as s:
        assert s.conn.execute("SELECT count(*) FROM protocol_verdicts").fetchone()[0] == 4


def test_results_suite_quic_lists_the_quic_verdicts(db: Path) -> None:
    out = _invoke("results", "--db", str(db), "--suite", "quic")
    blocked = next(line for line in out.splitlines() if "blocked.example" in line)
    assert "blocked" in blocked and "quic/sni-filtered" in blocked
    rows = [json.loads(line) for line in
            _invoke("results", "--db", str(db), "--suite", "ech", "--json").splitlines()]
    assert {(r["url"], r["verdict"], r["web_verdict"]) for r in rows} == {
        ("https://blocked.example/", "ok", "ok"), ("https://open.example/", "ok", "ok")}
    only = _invoke("results", "--db", str(db), "--suite", "quic", "--verdict", "blocked", "--csv")
    (row,) = csv.DictReader(io.StringIO(only))
    assert row["decisive_reason"] == "quic/sni-filtered:decoy=example.com" and row["explanation"]


def test_results_suite_without_such_runs_says_so(tmp_path: Path) -> None:
    path = tmp_path / "empty.db"
    Store.open(path).close()
    r = CliRunner().invoke(cli, ["results", "--db", str(path), "--suite", "quic"])
    assert r.exit_code == 1 and "no run measured with --quic" in r.output


def test_show_lists_quic_and_ech_steps_and_their_verdicts(db: Path) -> None:
    out = _invoke("show", "https://blocked.example/", "--db", str(db))
    assert "QUIC decoy" in out and "SNI example.com" in out
    assert "HTTP/3 200" in _invoke("show", "https://open.example/", "--db", str(db))
    assert "TLS hello + ECH" in out
    assert "QUIC verdict: BLOCKED" in out and "ECH verdict: OK" in out
    with Store.open(db, create=False) as s:
        lines = list(render_text(evidence(s, 1), 80))
    assert "QUIC verdict: BLOCKED at quic (hop 0)  (classifier quic-1)" in lines
    assert all(len(line) <= 80 for line in lines)
    ev = json.loads(_invoke("show", "1", "--db", str(db), "--json"))
    assert [p["suite"] for p in ev["protocols"]] == ["quic", "ech"]
    assert [q["decoy"] for q in ev["hops"][0]["quic"]] == [False, True, False]  # in the order made


def test_compare_suite_quic_draws_the_quic_matrix(db: Path) -> None:
    out = _invoke("compare", "--db", str(db), "--suite", "quic", "--csv")
    rows = list(csv.reader(io.StringIO(out)))
    assert rows[0] == ["url", "category", "home", "home:stage"]
    assert ["https://blocked.example/", "NEWS", "blocked", "quic"] in rows


def test_report_has_the_protocol_section(db: Path, tmp_path: Path) -> None:
    out = tmp_path / "r.html"
    _invoke("report", "--db", str(db), "--out", str(out))
    html = out.read_text()
    assert 'id="protocols-h"' in html and 'id="quic-matrix"' in html
    assert "blocked.example" in html.split('id="quic-matrix"')[1].split("</table>")[0]


def test_exports_carry_the_protocol_verdicts(db: Path, tmp_path: Path) -> None:
    _invoke("export", "--db", str(db), "--format", "csv", "-o", str(tmp_path / "a.csv"))
    rows = {r["url"]: r for r in csv.DictReader((tmp_path / "a.csv").open())}
    assert rows["https://blocked.example/"]["quic_verdict"] == "blocked"
    assert rows["https://open.example/"]["ech_verdict"] == "ok"
    _invoke("export", "--db", str(db), "--format", "jsonl", "-o", str(tmp_path / "a.jsonl"))
    first = json.loads((tmp_path / "a.jsonl").read_text().splitlines()[0])
    assert [p["suite"] for p in first["protocols"]] == ["quic", "ech"]
    _invoke("export", "--db", str(db), "--format", "ooni", "-o", str(tmp_path / "a.ooni"))
    keys = json.loads((tmp_path / "a.ooni").read_text().splitlines()[0])["test_keys"]
    assert [(q["network"], q["server_name"]) for q in keys["quic_handshakes"]] == [
        ("udp", "blocked.example"), ("udp", "example.com"), ("udp", "blocked.example")]
    assert keys["control"]["quic_handshake"][f"{IP}:443"]["status"] is True
    assert keys["x_probe_protocols"][0]["verdict"] == "blocked"


def test_the_end_of_run_summary_counts_the_protocol_verdicts_apart(db: Path) -> None:
    from probe.present.summary import protocol_lines

    with Store.open(db, create=False) as s:
        lines = list(protocol_lines(s, 1, db, 80))
        compact = list(protocol_lines(s, 1, db, tty=False))
    assert lines[1].startswith("QUIC (HTTP/3), judged apart from the web verdicts above:")
    assert "  blocked: https://blocked.example/" in lines
    assert all(len(line) <= 80 for line in lines if not line.startswith("  probe results"))  # a path
    assert compact == ["run 1 quic: blocked 1, ok 1", "run 1 ech: ok 2"]
