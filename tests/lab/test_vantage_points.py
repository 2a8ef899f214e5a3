"""Two vantage points behind different censors, measuring at the same time: merged, compared,
diffed and exported.

"moscow" sits behind a censor that lies about DNS, resets TCP and resets TLS on an SNI (the lab
scenarios dns-bogon, tcp-reset and tls-sni-rst, combined); "almaty" behind one that only resets
TCP (tcp-reset). They are two labs side by side (two client namespaces,
each behind its own censor, with its own sites and control helper), and each runs the real
`probe run` into its own database at the same time as the other; then the databases are merged
and the commands researchers use are checked against what each censor did.
"""

from __future__ import annotations

import json
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from probe.cli import cli
from probe.lab.combine import combine, conflicts
from probe.lab.scenarios import Censor, by_name

pytestmark = pytest.mark.lab

DNS = "http://dns-bogon.lab.example/"
TCP = "http://tcp-reset.lab.example/"
TLS = "https://tls-rst.lab.example/"
CLEAN = "http://clean.lab.example/"
URLS = (DNS, TCP, TLS, CLEAN)

# The censors are the lab's scenarios, combined as `probe lab censor` combines them.
MOSCOW_TECHNIQUES = tuple(by_name(n) for n in ("dns-bogon", "tcp-reset", "tls-sni-rst"))
MOSCOW = combine(MOSCOW_TECHNIQUES)
ALMATY = by_name("tcp-reset").censor


def test_moscows_techniques_combine() -> None:
    assert conflicts(MOSCOW_TECHNIQUES) == []
    assert len(MOSCOW.forward) == 2 and len(MOSCOW.resolver) == 1


def _measure(lab: Any, censor: Censor, vantage: str, db: Path) -> None:
    lab.apply(censor)
    try:
        proc = lab.probe(URLS, db, extra=["--vantage", vantage])
    finally:
        lab.reset()
    assert proc.returncode == 0, proc.stderr[-2000:]


def _run_span(db: Path) -> tuple[str, str]:
    conn = sqlite3.connect(db)
    try:
        ((started, finished),) = conn.execute("SELECT started_at, finished_at FROM runs").fetchall()
    finally:
        conn.close()
    return started, finished


def _cli(*args: str) -> str:
    result = CliRunner().invoke(cli, list(args))
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture(scope="module")
def merged(lab: Any, second_lab: Any, lab_workdir: Path) -> Path:
    work = lab_workdir / "vantage-points"
    work.mkdir(exist_ok=True)
    moscow, almaty = work / "moscow.db", work / "almaty.db"
    for db in (moscow, almaty):
        db.unlink(missing_ok=True)
    # Both probes at once, each in its own lab behind its own censor: moscow in the session's
    # lab, almaty in the second lab (tests/lab/conftest.py).
    with ThreadPoolExecutor(2) as pool:
        done = [pool.submit(_measure, lab, MOSCOW, "moscow", moscow),
                pool.submit(_measure, second_lab, ALMATY, "almaty", almaty)]
        for future in done:
            future.result()
    (m_start, m_end), (a_start, a_end) = _run_span(moscow), _run_span(almaty)
    assert max(m_start, a_start) < min(m_end, a_end), "the two runs did not overlap in time"
    out = work / "all.db"
    out.unlink(missing_ok=True)
    _cli("merge", str(moscow), str(almaty), "--into", str(out))
    again = _cli("merge", str(moscow), str(almaty), "--into", str(out))
    assert again.count("unchanged since merged") == 2  # idempotent: skipped unread
    return out


def test_compare_shows_who_blocks_what_and_how(merged: Path) -> None:
    doc = json.loads(_cli("compare", "--db", str(merged), "--json", "--vantage", "moscow,almaty"))
    cells = {u["url"]: {vp: (c["verdict"], c["stage"]) for vp, c in u["verdicts"].items()}
             for u in doc["urls"]}
    assert cells[DNS] == {"moscow": ("hijacked", "dns"), "almaty": ("ok", None)}
    assert cells[TCP] == {"moscow": ("reset", "tcp"), "almaty": ("reset", "tcp")}
    assert cells[TLS] == {"moscow": ("reset", "tls"), "almaty": ("ok", None)}
    assert cells[CLEAN] == {"moscow": ("ok", None), "almaty": ("ok", None)}
    (pair,) = doc["pairs"]
    assert pair == {"a": "moscow", "b": "almaty", "common_urls": 4, "a_blocks": 3, "b_blocks": 1,
                    "both_block": 1, "same_technique": 1, "jaccard": round(1 / 3, 4)}
    t = doc["techniques"]["moscow"]
    assert (t["dns"], t["tcp"], t["tls"], t["hijacked"], t["reset"]) == (1, 1, 1, 1, 2)
    diff = _cli("compare", "--db", str(merged), "--only-differences", "--csv")
    assert sorted(line.split(",")[0] for line in diff.splitlines()[1:]) == sorted([DNS, TLS])


def test_diff_sees_almaty_start_blocking_like_moscow(merged: Path, lab: Any) -> None:
    almaty = merged.parent / "almaty.db"
    _measure(lab, MOSCOW, "almaty", almaty)  # the censor at almaty now does what moscow's does
    result = CliRunner().invoke(cli, ["diff", "--db", str(almaty), "--exit-code", "--json"])
    assert result.exit_code == 3, result.output
    changes = {json.loads(x)["url"]: json.loads(x)["change"] for x in result.output.splitlines()}
    assert changes == {DNS: "newly_blocked", TLS: "newly_blocked"}


def test_exports_of_the_merged_database(merged: Path) -> None:
    lines = _cli("export", "--db", str(merged), "--format", "ooni").splitlines()
    ooni = {(m["annotations"]["probe_vantage_point"], m["input"]): m for m in map(json.loads, lines)}
    assert len(ooni) == 8
    assert ooni[("moscow", DNS)]["test_keys"]["blocking"] == "dns"
    assert ooni[("moscow", TCP)]["test_keys"]["blocking"] == "tcp_ip"
    assert ooni[("almaty", CLEAN)]["test_keys"]["accessible"] is True
    assert all(m["probe_ip"] == "127.0.0.1" for m in ooni.values())
    pq = pytest.importorskip("pyarrow.parquet")
    out = merged.parent / "parquet"
    _cli("export", "--db", str(merged), "--format", "parquet", "-o", str(out))
    rows = pq.read_table(out / "measurements.parquet").to_pylist()
    assert sorted((r["vantage"], r["url"], r["verdict"]) for r in rows) == sorted(
        (m["annotations"]["probe_vantage_point"], m["input"],
         m["test_keys"]["x_probe_verdict"]["verdict"]) for m in ooni.values())
