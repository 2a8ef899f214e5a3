"""`probe import ooni` of OONI's other experiments, on real OONI measurements of each type
(tests/fixtures/ooni/experiments.json says where each comes from)."""

from __future__ import annotations

import copy
import gzip
import json
import sqlite3
from pathlib import Path
from typing import Any

from probe.research.ooni.experiments import EXPERIMENTS, parse_experiment
from probe.research.ooni.importer import import_ooni
from probe.store import Store
from probe.store.merge import merge

# probe messaging's endpoint kinds and the experiment each comes from (main's MESSAGING_APPS).
MESSAGING_KINDS = {"telegram-dc": "telegram", "telegram-web": "telegram", "whatsapp": "whatsapp",
                   "whatsapp-web": "whatsapp", "signal": "signal"}
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "ooni"
SAMPLES = FIXTURES / "experiments.jsonl.gz"


def _samples() -> list[dict[str, Any]]:
    with gzip.open(SAMPLES, "rt", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def _rows(db: Path, where: str = "1", params: tuple[object, ...] = ()) -> list[sqlite3.Row]:
    conn = sqlite3.connect(db)
    conn.row_factory = sqlite3.Row
    return conn.execute(
        "SELECT o.test_name, o.target, o.ooni_verdict, o.ooni_status, e.kind, e.suite, e.verdict, e.stage, "
        "e.reasons, v.name AS vantage FROM ooni_endpoints o JOIN endpoint_measurements e ON e.uid = o.uid "
        f"JOIN vantage_points v ON v.id = e.vantage_id WHERE {where} ORDER BY e.id", params).fetchall()


def _one(db: Path, test_name: str, target: str, cc: str) -> sqlite3.Row:
    rows = _rows(db, "o.test_name = ? AND o.target = ? AND o.probe_cc = ?", (test_name, target, cc))
    assert len(rows) == 1, rows
    return rows[0]


def test_every_experiment_probe_imports_has_a_real_sample_and_is_imported(tmp_path: Path) -> None:
    assert {m["test_name"] for m in _samples()} == set(EXPERIMENTS)
    db = tmp_path / "o.db"
    with Store.open(db) as store:
        stats = import_ooni(store, [SAMPLES])
    assert stats.skipped == 0 and stats.imported == len(_samples()) == 24
    assert set(stats.experiments) == set(EXPERIMENTS)
    rows = _rows(db)
    assert len(rows) == stats.endpoints == 173
    # probe messaging's kinds (docs/messaging.md); OONI's experiment stays in ooni_endpoints.
    messaging = {r["kind"] for r in rows if r["test_name"] in ("telegram", "whatsapp", "signal")}
    assert messaging == set(MESSAGING_KINDS)
    assert {r["suite"] for r in rows if r["kind"] in MESSAGING_KINDS} == {"messaging"}
    assert {r["suite"] for r in rows if r["kind"] == "tor"} == {"circumvention"}
    assert {r["vantage"] for r in rows} >= {"ooni-AM-AS44395", "ooni-CN-AS17623", "ooni-IT-AS30722"}
    # Without a control nothing is called blocked on a failure alone.
    assert {r["verdict"] for r in rows} == {"ok", "inconclusive"}


def test_messaging_endpoints_take_probe_messagings_kinds_and_names(tmp_path: Path) -> None:
    db = tmp_path / "o.db"
    with Store.open(db) as store:
        import_ooni(store, [SAMPLES])
    conn = sqlite3.connect(db)
    rows = conn.execute(
        "SELECT o.test_name, o.target, e.kind, e.name, e.address, e.port, e.suite FROM ooni_endpoints o "
        "JOIN endpoint_measurements e ON e.uid = o.uid "
        "WHERE o.test_name IN ('telegram', 'whatsapp', 'signal')"
    ).fetchall()
    assert all(MESSAGING_KINDS[kind] == test_name and suite == "messaging"
               for test_name, _, kind, *_, suite in rows)
    got = {(kind, name, address, port) for _, _, kind, name, address, port, _ in rows}
    # As probe/data/messaging.csv names them: a DC by address and its number, the web clients
    # and WhatsApp's registration service by name, the chat endpoints eN, Signal by first label.
    assert {("telegram-dc", "DC2", "149.154.167.51", 443), ("telegram-dc", "DC2", "95.161.76.100", 80),
            ("telegram-dc", "DC5", "149.154.171.5", 80), ("telegram-web", "web", "web.telegram.org", 443),
            ("whatsapp", "e1", "e1.whatsapp.net", 5222), ("whatsapp-web", "web", "web.whatsapp.com", 443),
            ("whatsapp-web", "registration", "v.whatsapp.net", 443),
            ("signal", "storage", "storage.signal.org", 443), ("signal", "sfu", "sfu.voip.signal.org", 443),
            ("signal", "chat", "chat.signal.org", 443)} <= got
    # An address outside Telegram Desktop's table (an older OONI's 149.154.167.99) is a DC unnamed.
    unnamed = {(address, port) for kind, name, address, port in got if kind == "telegram-dc" and name == "DC"}
    assert unnamed == {("149.154.167.99", 80), ("149.154.167.99", 443)}
    dcs = {name for kind, name, *_ in got if kind == "telegram-dc"}
    assert dcs == {"DC", *(f"DC{n}" for n in range(1, 6))}
    # The registration service keeps OONI's own verdict field beside probe's row.
    status = {s for (s,) in conn.execute(
        "SELECT o.ooni_status FROM ooni_endpoints o JOIN endpoint_measurements e ON e.uid = o.uid "
        "WHERE e.name = 'registration'")}  # fmt: skip
    assert status and all(s.startswith("registration_server_status=") for s in status)


def test_failures_without_a_control_are_inconclusive_where_ooni_says_blocked(tmp_path: Path) -> None:
    db = tmp_path / "o.db"
    with Store.open(db) as store:
        import_ooni(store, [SAMPLES])
    # Armenia 2022: Signal's hosts answered with a certificate of no known authority. An
    # interception, or a middlebox, or the server's own: OONI says blocked, probe cannot tell.
    r = _one(db, "signal", "storage.signal.org:443", "AM")
    assert (r["verdict"], r["stage"], r["ooni_verdict"]) == ("inconclusive", "tls", "blocked")
    assert json.loads(r["reasons"]) == ["tls/cert-invalid:storage.signal.org:443", "control/absent:ooni"]
    # The host that worked in the same measurement is ok for both.
    r = _one(db, "signal", "api.directory.signal.org:443", "AM")
    assert (r["verdict"], r["ooni_verdict"]) == ("ok", "ok")
    # China 2022: Tor's bootstrap timed out: OONI's anomaly, probe's inconclusive.
    r = _one(db, "vanilla_tor", "vanilla", "CN")
    assert (r["verdict"], r["ooni_verdict"]) == ("inconclusive", "anomaly")
    # A dnscheck lookup over IPv6 with no route: a local failure, never a censor's.
    r = _one(db, "dnscheck", "dot://[2001:4860:4860::8844]:853", "IT")
    assert r["verdict"] == "inconclusive" and "tcp/local:host_unreachable" in json.loads(r["reasons"])
    # An old engine's wrapped failure string (Get ...: eof_error) is read as the failure it wraps.
    r = _one(db, "tor", "199.58.81.140:80", "IT")
    assert json.loads(r["reasons"])[0] == "http/eof:199.58.81.140:80"


def test_where_probe_and_ooni_differ_is_in_the_report(tmp_path: Path) -> None:
    db = tmp_path / "o.db"
    with Store.open(db) as store:
        import_ooni(store, [SAMPLES])
    conn = sqlite3.connect(db)
    differ = {(t, target) for t, target in conn.execute(
        "SELECT test_name, target FROM ooni_endpoint_disagreements")}
    # Ireland 2022: web.whatsapp.com answered 400 over TLS with a valid certificate; OONI's
    # http_unexpected_status_code made it "blocked". probe: the endpoint answered.
    assert ("whatsapp", "web.whatsapp.com:443") in differ
    r = _one(db, "whatsapp", "web.whatsapp.com:443", "IE")
    assert (r["verdict"], r["ooni_verdict"]) == ("ok", "blocked")
    assert ("signal", "storage.signal.org:443") in differ
    assert len(differ) == 14  # distinct (experiment, endpoint); 15 rows


def test_a_bogon_answer_for_an_apps_own_name_is_hijacked_without_a_control(tmp_path: Path) -> None:
    # Synthetic, from the real spec sample: e1.whatsapp.net resolved to Iran's 10.10.34.35.
    raw = copy.deepcopy(next(m for m in _samples() if m["test_name"] == "whatsapp"))
    for q in raw["test_keys"]["queries"]:
        if q["hostname"] == "e1.whatsapp.net":
            q["answers"] = [{"answer_type": "A", "ipv4": "10.10.34.35"}]
    f = tmp_path / "forged.jsonl"
    f.write_text(json.dumps(raw) + "\n")
    db = tmp_path / "o.db"
    with Store.open(db) as store:
        import_ooni(store, [f])
    r = _rows(db, "o.target = 'e1.whatsapp.net:443'")[0]
    assert (r["verdict"], r["stage"]) == ("hijacked", "dns")
    assert any(x.startswith("dns/bogon:10.10.34.35") for x in json.loads(r["reasons"]))


def test_bad_experiment_lines_cost_only_themselves(tmp_path: Path) -> None:
    lines = [json.dumps(m) for m in _samples()[:3]]
    bad = [json.dumps({"test_name": "tor", "measurement_start_time": "2020-01-01 00:00:00",
                       "test_keys": {"targets": 5}}),
           json.dumps({"test_name": "signal", "test_keys": {}}),
           json.dumps({"test_name": "telegram", "measurement_start_time": "2020-01-01 00:00:00",
                       "probe_cc": ["IT"], "test_keys": {"tcp_connect": [{"ip": "1.2.3.4", "port": 443}]}})]
    f = tmp_path / "mixed.jsonl"
    f.write_text("\n".join([lines[0], bad[0], lines[1], bad[1], bad[2], lines[2]]) + "\n")
    errors: list[str] = []
    with Store.open(tmp_path / "o.db") as store:
        stats = import_ooni(store, [f], on_error=errors.append)
    assert stats.imported == 3 and stats.skipped == 3
    assert errors[0].startswith(f"{f}:2: tor: no endpoint recorded")
    assert errors[1].startswith(f"{f}:4: measurement_start_time missing")
    assert errors[2].startswith(f"{f}:5: probe_cc: expected a string")


def test_reimport_and_merge_keep_one_row_per_ooni_endpoint(tmp_path: Path) -> None:
    a, b = tmp_path / "a.db", tmp_path / "b.db"
    for db in (a, b):
        with Store.open(db) as store:
            import_ooni(store, [SAMPLES])
    with Store.open(a) as store:
        again = import_ooni(store, [SAMPLES])
    assert again.imported == 0 and again.duplicates == 24
    out = tmp_path / "all.db"
    with Store.open(out):
        pass
    merge(out, [a, b])
    conn = sqlite3.connect(out)
    assert conn.execute("SELECT count(*) FROM endpoint_measurements").fetchone()[0] == 173
    assert conn.execute("SELECT count(*) FROM ooni_endpoints").fetchone()[0] == 173
    assert conn.execute("SELECT count(*) FROM ooni_endpoint_disagreements").fetchone()[0] == 15


def test_parse_keeps_oonis_verdict_fields() -> None:
    exp = parse_experiment(next(m for m in _samples() if m["test_name"] == "tor" and m["probe_cc"] == "IT"
                                and len(m["test_keys"]["targets"]) > 30))
    assert exp.ooni_keys["dir_port_accessible"] == 9 and exp.ooni_keys["obfs4_total"] == 14
    assert len(exp.endpoints) == 34


def test_reclassify_leaves_oonis_endpoints_as_imported_and_says_so(tmp_path: Path) -> None:
    # `probe reclassify` re-judges endpoint rows by the control rules; OONI's carry no control and
    # their content verdicts came from evidence not stored with them (a bogon answer here): they
    # are counted as skipped, never turned into control/unavailable, while probe's own are judged.
    from dataclasses import replace

    from probe.core.model import EndpointObservation
    from probe.judge.circumvention import judge_endpoint
    from probe.present.reclassify import format_reclassify
    from probe.run.reclassify import reclassify
    from probe.store.circumvention import write_endpoints

    raw = copy.deepcopy(next(m for m in _samples() if m["test_name"] == "whatsapp"))
    for q in raw["test_keys"]["queries"]:
        if q["hostname"] == "e1.whatsapp.net":
            q["answers"] = [{"answer_type": "A", "ipv4": "10.10.34.35"}]
    forged = tmp_path / "forged.jsonl"
    forged.write_text(json.dumps(raw) + "\n")
    db = tmp_path / "o.db"
    with Store.open(db) as store:
        import_ooni(store, [forged, SAMPLES])  # the genuine whatsapp sample: a duplicate
        vid = store.vantage("kazan")
        run = store.start_run(vid, ["endpoints.csv"], {"suite": "circumvention"})
        own = EndpointObservation(kind="tor", name="relay", address="198.51.100.9", port=443,
                                  transport="tcp", started=1_790_000_000.0, runtime=0.5,
                                  source="circumvention.csv:2", tcp_failure="connection_refused")
        stale = replace(judge_endpoint(own, None), verdict="ok")  # a verdict the rules now change
        write_endpoints(store, run, vid, "circumvention", [(own, None, stale)])
        store.finish_run(run, "complete")
    before = [tuple(r) for r in _rows(db)]
    hijacked = _rows(db, "o.target = 'e1.whatsapp.net:443' AND e.verdict = 'hijacked'")
    assert len(hijacked) == 1
    messaging = _rows(db, "e.suite = 'messaging'")
    assert messaging and all(not any(x.startswith("control/unavailable") for x in json.loads(r["reasons"]))
                             for r in messaging)
    with Store.open(db, create=False) as store:
        report = reclassify(store)
        n_ooni = store.conn.execute("SELECT count(*) FROM endpoint_measurements WHERE source = 'ooni'"
                                    ).fetchone()[0]
        own_row = store.conn.execute("SELECT verdict, reasons FROM endpoint_measurements "
                                     "WHERE source = 'circumvention.csv:2'").fetchone()
    assert report.endpoints_skipped == n_ooni == len(before)
    assert (report.endpoints_judged, report.endpoints_changed) == (1, 1)
    rejudged = judge_endpoint(own, None)
    assert rejudged.verdict == "inconclusive" and "control/unavailable" in rejudged.reasons
    assert own_row == (rejudged.verdict, json.dumps(list(rejudged.reasons)))
    assert [tuple(r) for r in _rows(db)] == before  # OONI's endpoints: as imported
    text = "\n".join(format_reclassify(report, None, 80))
    assert f"all runs: {n_ooni} endpoints imported from OONI not re-judged" in text
    assert all(len(line) <= 80 for line in text.splitlines())
