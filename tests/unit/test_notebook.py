"""For notebooks (issue 25, point 8): Arrow tables of measurements, a URL's history across runs
and vantage points, the stability of each latest verdict; `probe history`, `probe compare
--stability` and the export's stability table; docs/research.md's notebook examples as written."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from store_samples import sample_measurement

from probe.cli import cli
from probe.core.model import Verdict
from probe.store import Store

pa = pytest.importorskip("pyarrow")
DOC = Path(__file__).resolve().parents[2] / "docs" / "research.md"
T0 = 1_790_000_000.0
DAY = 86400.0
V = {"ok": Verdict("ok", None, None, (), "c1"),
     "dns": Verdict("hijacked", "dns", 0, ("dns/bogon:10.10.34.34",), "c1"),
     "tls": Verdict("reset", "tls", 1, ("tls/reset:192.0.2.10",), "c1")}
# Per vantage point, one run a day: the verdicts of site0 and site1.
RUNS = {"moscow": [("ok", "ok"), ("dns", "ok"), ("tls", "dns"), ("dns", "ok"), ("dns", "ok")],
        "almaty": [("ok", "ok"), ("ok", "tls"), ("ok", "ok")]}


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "all.db"
    with Store.open(path) as s:
        for k, (name, days) in enumerate(RUNS.items()):
            vid = s.vantage(name, country="RU" if name == "moscow" else "KZ")
            for d, verdicts in enumerate(days):
                run = s.start_run(vid, [], {})
                s.write(run, vid, [(sample_measurement(i, started=T0 + d * DAY + k * 60 + i), V[v])
                                   for i, v in enumerate(verdicts)])
                s.finish_run(run, "complete")
    return path


def test_measurements_history_and_stability_are_arrow_tables(db: Path) -> None:
    from probe.research import notebook as nb

    m = nb.measurements(db, vantages=["almaty"])
    assert isinstance(m, pa.Table) and m.num_rows == 6
    assert not m.schema.field("verdict").nullable and m.schema.field("reasons").type == pa.list_(
        pa.field("item", pa.string(), nullable=False))
    h = nb.history(db, "HTTP://Site0.Example.org")  # matched as the lists write URLs
    assert [(r["vantage"], r["verdict"]) for r in h.to_pylist()] == [
        ("almaty", "ok")] * 3 + [("moscow", v) for v in ("ok", "hijacked", "reset", "hijacked", "hijacked")]
    assert h.schema.field("measured_at").type == pa.timestamp("ms", tz="UTC")
    s = {(r["vantage"], r["url"]): (r["verdict"], r["agree"], r["runs"], r["stability"])
         for r in nb.stability(db, last=4).to_pylist()}
    assert s[("moscow", "http://site0.example.org/")] == ("hijacked", 3, 4, 0.75)
    assert s[("moscow", "http://site1.example.org/")] == ("ok", 3, 4, 0.75)
    assert s[("almaty", "http://site1.example.org/")] == ("ok", 2, 3, 2 / 3)
    with pytest.raises(nb.NotMeasured, match=re.escape("measured on site0.example.org: http://site0.example.org/")):
        nb.history(db, "http://site0.example.org/missing")


def test_the_documented_notebook_runs_as_written(db: Path) -> None:
    blocks = dict(re.findall(r"```python\n# notebook: (\S+)\n(.*?)```", DOC.read_text(), re.S))
    assert list(blocks) == ["measurements", "history", "stability"]
    ns: dict[str, Any] = {}
    for name, code in blocks.items():
        exec(compile(code.replace('"results/all.db"', repr(str(db))), name, "exec"), ns)
    assert ns["m"].column_names[:6] == ["uid", "run_uid", "vantage_uid", "vantage", "asn", "as_org"]
    assert len(ns["frame"]) == 10
    assert ns["h"].select(["vantage", "verdict", "stage"]).to_pylist()[-1] == {
        "vantage": "moscow", "verdict": "hijacked", "stage": "dns"}
    assert ns["shaky"] == [("moscow", "http://site0.example.org/", "hijacked", 3, 5)]


def test_history_command_shows_each_vantage_points_runs_and_stability_in_80_columns(db: Path) -> None:
    r = CliRunner().invoke(cli, ["history", "--db", str(db), "site0.example.org", "--last", "3"])
    assert r.exit_code == 0, r.output
    lines = r.output.splitlines()
    assert all(len(line) <= 80 for line in lines)
    assert "moscow: hijacked/dns now; 2 of the last 3 runs agree" in lines
    assert "almaty: ok now; all of the last 3 runs agree" in lines
    assert "  (2 older not shown: --last)" in lines
    first = lines[lines.index("moscow: hijacked/dns now; 2 of the last 3 runs agree") + 2]
    assert "hijacked/dns" in first and "dns/bogon:10.10.34.34" in first
    r = CliRunner().invoke(cli, ["history", "--db", str(db), "http://site1.example.org/", "--json"])
    rows = [json.loads(x) for x in r.output.splitlines()]
    assert len(rows) == 8 and rows[0]["reasons"] == [] and rows[-1]["stable_runs"] == 5
    r = CliRunner().invoke(cli, ["history", "--db", str(db), "http://site9.example.org/"])
    assert r.exit_code == 2 and "never measured" in r.output


def test_compare_stability_and_the_exports_stability_table(db: Path, tmp_path: Path) -> None:
    r = CliRunner().invoke(cli, ["compare", "--db", str(db), "--stability", "5", "--csv"])
    assert r.exit_code == 0, r.output
    rows = list(csv.DictReader(io.StringIO(r.output)))
    assert [(x["url"], x["moscow:stable"], x["almaty:stable"]) for x in rows] == [
        ("http://site0.example.org/", "3/5", "3/3"), ("http://site1.example.org/", "4/5", "2/3")]
    r = CliRunner().invoke(cli, ["compare", "--db", str(db), "--stability", "5"])
    assert "Stability of the latest verdicts over each vantage point's last 5 runs" in r.output
    assert all(len(line) <= 80 for line in r.output.splitlines()[-6:])
    pq = pytest.importorskip("pyarrow.parquet")
    out = tmp_path / "pq"
    r = CliRunner().invoke(cli, ["export", "--db", str(db), "--format", "parquet", "-o", str(out),
                                 "--stability", "5"])
    assert r.exit_code == 0, r.output
    t = pq.read_table(out / "stability.parquet")
    got = {(x["vantage"], x["url"]): (x["agree"], x["runs"]) for x in t.to_pylist()}
    assert got[("moscow", "http://site0.example.org/")] == (3, 5)
    assert t.schema.metadata[b"probe.stability_runs"] == b"5"
