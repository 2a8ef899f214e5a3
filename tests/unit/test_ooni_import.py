"""`probe import ooni`: reading OONI files, mapping, storing beside probe's verdict, reporting."""

from __future__ import annotations

import gzip
import json
import sqlite3
from pathlib import Path

from click.testing import CliRunner

from probe.cli import cli
from probe.research.ooni import iter_lines, ooni_verdict, parse_measurement
from probe.research.ooni.importer import agreement, disagreements, import_ooni
from probe.store import Store

CORPUS = Path(__file__).resolve().parents[1] / "fixtures" / "ooni"


def _lines(name: str) -> list[str]:
    with gzip.open(CORPUS / name, "rt", encoding="utf-8") as fh:
        return [line for line in fh.read().splitlines() if line]


def test_malformed_lines_are_reported_with_file_and_line_and_skipped(tmp_path: Path) -> None:
    good = _lines("fastpath.jsonl.gz")[:2]
    f = tmp_path / "mixed.jsonl"
    f.write_text("\n".join([good[0], "{not json", json.dumps({"test_name": "ndt"}), good[1]]) + "\n")
    errors: list[str] = []
    with Store.open(tmp_path / "o.db") as store:
        stats = import_ooni(store, [f], on_error=errors.append)
    assert stats.imported == 2 and stats.skipped == 2
    assert errors[0].startswith(f"{f}:2: not JSON") and errors[1].startswith(f"{f}:3: not a web_connectivity")


def test_gzip_directories_and_pretty_printed_json_are_read(tmp_path: Path) -> None:
    lines = _lines("minipipeline-generated.jsonl.gz")[:3]
    d = tmp_path / "dir"
    d.mkdir()
    with gzip.open(d / "a.jsonl.gz", "wt") as fh:
        fh.write(lines[0] + "\n" + lines[1] + "\n")
    (d / "b.json").write_text(json.dumps(json.loads(lines[2]), indent=2))
    got = [obj for _, _, obj in iter_lines([d])]
    assert len(got) == 3 and all(isinstance(o, dict) for o in got)


def test_every_engine_generation_maps_with_what_was_inferred() -> None:
    recs = [parse_measurement(json.loads(line)) for line in _lines("fastpath.jsonl.gz")]
    engines = {r.meta["engine"] or r.meta["software"].split("/")[0] for r in recs}
    assert {"libmeasurement_kit", "ooniprobe-engine"} <= engines  # MK and the Go engine
    mk = next(
        r
        for r in recs
        if r.meta["engine"] == "libmeasurement_kit"
        and r.measurement.hops[-1].http
        and r.measurement.hops[-1].http.status
    )
    assert "http-ip" in mk.inferred and "dns-replies" in mk.inferred
    v05 = [parse_measurement(json.loads(line)) for line in _lines("minipipeline-generated.jsonl.gz")]
    assert any(
        r.meta["test_version"] == "0.5.28" or str(r.meta["test_version"]).startswith("0.5") for r in v05
    )
    # 0.5 records the address of each request: nothing inferred for it.
    assert any(r.measurement.hops[0].http and "http-ip" not in r.inferred for r in v05)


def test_ooni_verdict_vocabulary() -> None:
    assert ooni_verdict(False, True) == "ok"
    assert ooni_verdict(False, False) == "down"
    assert ooni_verdict("dns", False) == "hijacked"
    assert ooni_verdict("tcp_ip", False) == "blocked"
    assert ooni_verdict(None, None) == "inconclusive"


def test_import_keeps_oonis_verdict_beside_probes_and_is_idempotent(tmp_path: Path) -> None:
    db = tmp_path / "o.db"
    with Store.open(db) as store:
        first = import_ooni(store, [CORPUS / "fastpath.jsonl.gz"])
        again = import_ooni(store, [CORPUS / "fastpath.jsonl.gz"])
        conn = store.conn
        assert first.imported == 12 and again.imported == 0 and again.duplicates == 12
        row = conn.execute(
            "SELECT o.report_id, o.probe_cc, o.probe_asn, o.ooni_verdict, m.verdict, v.name, v.country "
            "FROM ooni_measurements o JOIN measurements m ON m.id = o.measurement_id "
            "JOIN vantage_points v ON v.id = m.vantage_id WHERE o.input = 'http://archive.org'"
        ).fetchone()
        assert row[0].startswith("20250527") and row[1] == "ID" and row[2] == "AS23693"
        assert (row[3], row[4]) == ("ok", "blocked")  # OONI missed the Kominfo redirect
        assert row[5] == "ooni-ID-AS23693" and row[6] == "ID"
        rows = disagreements(store)
        assert any(r["input"] == "http://archive.org" for r in rows)
        pairs = agreement(store)
        assert sum(pairs.values()) == 12


def test_cli_imports_and_reports_disagreements(tmp_path: Path) -> None:
    db = tmp_path / "o.db"
    r = CliRunner().invoke(cli, ["import", "ooni", str(CORPUS / "fastpath.jsonl.gz"), "--db", str(db)])
    assert r.exit_code == 0, r.output
    assert "imported 12 of 12 lines" in r.output
    r = CliRunner().invoke(cli, ["import", "ooni", "--report", "--db", str(db)])
    assert r.exit_code == 0, r.output
    assert "12 imported measurements" in r.output and "http://archive.org" in r.output
    r = CliRunner().invoke(cli, ["import", "ooni", "--report", "--json", "--db", str(db)])
    recs = [json.loads(line) for line in r.output.splitlines()]
    assert recs and all(x["probe_verdict"] != x["ooni_verdict"] for x in recs)
    assert sqlite3.connect(db).execute("SELECT count(*) FROM ooni_measurements").fetchone()[0] == 12


def test_cli_without_files_or_report_is_a_usage_error(tmp_path: Path) -> None:
    r = CliRunner().invoke(cli, ["import", "ooni", "--db", str(tmp_path / "o.db")])
    assert r.exit_code == 2


def test_compare_with_ooni_lists_where_probe_and_ooni_differ(tmp_path: Path) -> None:
    db = tmp_path / "o.db"
    CliRunner().invoke(cli, ["import", "ooni", str(CORPUS / "fastpath.jsonl.gz"), "--db", str(db)])
    r = CliRunner().invoke(cli, ["compare", "--db", str(db), "--with-ooni"])
    assert r.exit_code == 0, r.output
    assert "probe and OONI agree on 8" in r.output and "http://archive.org" in r.output
