"""Outage intervals from runs: run states, joined intervals, missed slots, the store query, the CLI."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from probe.cli import cli
from probe.core.model import (
    ControlObservation,
    DNSObservation,
    DNSReply,
    Hop,
    Measurement,
    Target,
    TCPObservation,
    Verdict,
)
from probe.research.outages import (
    RunStats,
    missed_slots,
    outage_intervals,
    outages,
    run_state,
    run_stats,
)
from probe.store import Store

T0 = datetime(2026, 11, 1, tzinfo=UTC)


def _ts(hours: float) -> str:
    return (T0 + timedelta(hours=hours)).isoformat()


def _run(
    rid: int,
    hours: float,
    *,
    status: str = "complete",
    urls: int = 20,
    silent: int = 0,
    tried: int = 20,
    dead: int = 0,
    ctl: int = 0,
) -> RunStats:
    return RunStats(rid, "home", status, _ts(hours), _ts(hours + 0.1), urls, silent, tried, dead, ctl)


def test_an_offline_run_is_a_full_outage() -> None:
    assert run_state(_run(1, 0, status="offline", urls=0, tried=0))[0] == "full"


def test_a_silent_resolver_with_a_working_control_is_a_dns_outage() -> None:
    state, why = run_state(_run(1, 0, silent=19, tried=1, ctl=1))
    assert state == "dns" and "95%" in why


def test_a_silent_resolver_and_a_dead_control_is_a_full_outage() -> None:
    assert run_state(_run(1, 0, silent=20, tried=0, ctl=20))[0] == "full"


def test_dead_tcp_needs_to_be_far_above_the_usual_rate() -> None:
    # 60 % dead: a partial outage where 5 % is usual, not where 40 % is (a censor's blackholes).
    assert run_state(_run(1, 0, dead=12), usual_tcp_dead=0.05)[0] == "partial"
    assert run_state(_run(1, 0, dead=12), usual_tcp_dead=0.40)[0] == "ok"


def test_without_history_only_nearly_all_dead_tcp_is_an_outage() -> None:
    assert run_state(_run(1, 0, dead=12))[0] == "ok"
    assert run_state(_run(1, 0, dead=19))[0] == "partial"
    assert run_state(_run(1, 0, tried=3, dead=3))[0] == "ok"  # too few URLs to say


def test_a_network_that_always_blackholes_half_the_list_has_no_outage() -> None:
    runs = [_run(i, i, dead=11) for i in range(10)]
    assert outage_intervals(runs) == []


def test_consecutive_runs_in_one_state_become_one_interval_with_both_bounds() -> None:
    runs = [
        _run(1, 0),
        _run(2, 1),
        _run(3, 2),
        _run(4, 3, status="offline", urls=0, tried=0),
        _run(5, 4, status="offline", urls=0, tried=0),
        _run(6, 5, silent=20, tried=0),
        _run(7, 6),
    ]
    found = outage_intervals(runs)
    assert [(o.state, o.runs) for o in found] == [("full", (4, 5)), ("dns", (6,))]
    full = found[0]
    assert (full.first_seen, full.last_seen) == (_ts(3), _ts(4))
    assert (full.after, full.before) == (_ts(2.1), _ts(5))


def test_an_outage_at_the_last_run_is_still_going() -> None:
    found = outage_intervals([_run(1, 0), _run(2, 1, status="offline", urls=0, tried=0)])
    assert found[0].before is None and found[0].after == _ts(0.1)


def test_partial_is_judged_against_earlier_ordinary_runs() -> None:
    runs = [_run(i, i, dead=1) for i in range(4)] + [_run(9, 4, dead=12), _run(10, 5, dead=1)]
    found = outage_intervals(runs)
    assert [(o.state, o.runs) for o in found] == [("partial", (9,))]
    assert "usually 5%" in found[0].evidence


def test_a_gap_in_an_hourly_schedule_is_reported_as_missed_runs() -> None:
    runs = [_run(i, h) for i, h in enumerate([0, 1, 2, 3, 8, 9])]
    (gap,) = missed_slots(runs)
    assert gap.state == "missed" and gap.missed == 4
    assert (gap.after, gap.before) == (_ts(3.1), _ts(8))


def test_too_few_runs_give_no_cadence() -> None:
    assert missed_slots([_run(1, 0), _run(2, 1), _run(3, 9)]) == []


def test_runs_started_by_hand_have_no_slots_to_miss() -> None:
    # Irregular intervals (no schedule), and runs a few seconds apart (below any schedule).
    assert missed_slots([_run(i, h) for i, h in enumerate([0, 0.5, 3, 3.2, 9, 20])]) == []
    assert missed_slots([_run(i, h / 3600) for i, h in enumerate([0, 1, 2, 3, 30])]) == []


def _measurement(
    n: int, *, silent: bool = False, dead: bool = False, control_failed: bool = False
) -> Measurement:
    host = f"site{n}.example.org"
    target = Target(url=f"http://{host}/", original_url=f"http://{host}/", scheme="http", host=host,
                    port=80, path="/")  # fmt: skip
    reply = DNSReply(t=0.01, source="127.0.0.53:53", rcode="NOERROR", answers=("192.0.2.1",))
    replies = () if silent else (reply,)
    dns = (
        DNSObservation(hostname=host, qtype="A", resolver="udp://127.0.0.53:53", transport="udp",
                       started=1.0, duration=0.01, addresses=() if silent else ("192.0.2.1",),
                       failure="generic_timeout_error" if silent else None, replies=replies),
    )  # fmt: skip
    tcp = () if silent else (
        TCPObservation("192.0.2.1", 80, 1.0, 0.01, "generic_timeout_error" if dead else None),
    )  # fmt: skip
    control = ControlObservation(source="http://127.0.0.1:1/", url=target.url, started=1.0, duration=0.1,
                                 failure="connection_refused" if control_failed else None)  # fmt: skip
    hop = Hop(index=0, url=target.url, host=host, port=80, scheme="http", dns=dns, tcp=tcp, control=control)
    return Measurement(target=target, started=1.0, runtime=0.1, attempt=0, hops=(hop,))


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "probe.db"
    verdict = Verdict("inconclusive", None, None, (), "test")
    with Store.open(path) as s:
        vid = s.vantage("home")
        for kind in ("ok", "dns", "ok"):
            run = s.start_run(vid, [], {})
            rows = [
                (_measurement(i, silent=kind == "dns" and i < 9), verdict) for i in range(10)
            ]
            s.write(run, vid, rows)
            s.finish_run(run, "complete")
        run = s.start_run(vid, [], {})
        s.finish_run(run, "offline")
    return path


def test_run_stats_count_silent_resolvers_dead_tcp_and_failed_controls(db: Path) -> None:
    with Store.open(db, create=False) as s:
        stats = run_stats(s)
    assert [(r.status, r.urls, r.dns_silent, r.tcp_tried) for r in stats] == [
        ("complete", 10, 0, 10),
        ("complete", 10, 9, 1),
        ("complete", 10, 0, 10),
        ("offline", 0, 0, 0),
    ]
    assert [o.state for o in outages(stats)] == ["dns", "full"]


def test_probe_outages_prints_a_table_and_json_lines(db: Path) -> None:
    r = CliRunner().invoke(cli, ["outages", "--db", str(db)], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    lines = r.output.splitlines()
    assert lines[0].split()[:2] == ["VANTAGE", "STATE"]
    assert lines[-1] == "(2 outages)" and all(len(line) <= 80 for line in lines)
    second = next(i for i, line in enumerate(lines[2:], 2) if not line.startswith(" "))
    assert lines[second].split()[1] == "full" and "ongoing" in " ".join(lines[second:-1])
    r = CliRunner().invoke(cli, ["outages", "--db", str(db), "--json"], catch_exceptions=False)
    rows = [json.loads(line) for line in r.output.splitlines()]
    assert [(o["state"], o["runs"]) for o in rows] == [("dns", [2]), ("full", [4])]
    r = CliRunner().invoke(cli, ["outages", "--db", str(db), "--vantage", "elsewhere", "--json"])
    assert r.exit_code == 0 and r.output == ""


def test_probe_outages_rejects_a_bad_since(db: Path) -> None:
    r = CliRunner().invoke(cli, ["outages", "--db", str(db), "--since", "yesterday"])
    assert r.exit_code == 2 and "--since" in r.output


def _iso(dom: tuple[int, int], abroad: tuple[int, int], **kw: object) -> RunStats:
    base = _run(1, 0, **kw)  # type: ignore[arg-type]
    return RunStats(base.run_id, base.vantage, base.status, base.started_at, base.finished_at, base.urls,
                    base.dns_silent, base.tcp_tried, base.tcp_dead, base.control_failed, "RU",
                    dom[0], dom[1], abroad[0], abroad[1])  # fmt: skip


def test_sites_at_home_reached_and_none_abroad_is_national_isolation() -> None:
    state, why = run_state(_iso((10, 9), (10, 0), dead=10, ctl=20))
    assert state == "isolated" and why == "9/10 URLs in RU reached, 0/10 abroad"


def test_isolation_needs_home_to_work_and_enough_urls_both_ways() -> None:
    assert run_state(_iso((10, 2), (10, 0), dead=18, ctl=20))[0] == "full"  # nothing works
    assert run_state(_iso((10, 9), (10, 3), dead=7))[0] == "ok"  # abroad partly reachable
    assert run_state(_iso((3, 3), (10, 0), dead=10), usual_tcp_dead=0.05)[0] == "partial"  # 3 at home


def _two_country_db(path: Path, abroad_alive: bool) -> None:
    verdict = Verdict("ok", None, None, (), "test")
    with Store.open(path) as s:
        vid = s.vantage("moscow", country="RU")
        run = s.start_run(vid, [], {})
        rows = []
        for i in range(12):
            m = _measurement(i, dead=i >= 6 and not abroad_alive)
            ip = "198.51.100.1" if i < 6 else "203.0.113.1"  # home, abroad
            hop = m.hops[0]
            hop = type(hop)(**{**hop.__dict__, "tcp": (replace(hop.tcp[0], ip=ip),)})
            rows.append((replace(m, hops=(hop,)), verdict))
        s.write(run, vid, rows)
        s.finish_run(run, "complete")


def _geo_file(tmp_path: Path) -> Path:
    """IP-to-country data: 198.51.100.0/24 in Russia (home), 203.0.113.0/24 in Germany."""
    geo = tmp_path / "geo.tsv"
    geo.write_text("198.51.100.0\t198.51.100.255\t64500\tRU\tHOME-NET\n"
                   "203.0.113.0\t203.0.113.255\t64501\tDE\tABROAD-NET\n")  # fmt: skip
    return geo


def _country_of(ip: str) -> str:
    return {"198.51.100.1": "RU", "203.0.113.1": "DE"}.get(ip, "")


def test_run_stats_split_urls_by_the_country_of_their_addresses(tmp_path: Path) -> None:
    db = tmp_path / "p.db"
    _two_country_db(db, abroad_alive=False)
    with Store.open(db, create=False) as s:
        (stats,) = run_stats(s, country_of=_country_of)
        assert (stats.country, stats.domestic_tried, stats.domestic_alive) == ("RU", 6, 6)
        assert (stats.foreign_tried, stats.foreign_alive) == (6, 0)
        assert [o.state for o in outages([stats])] == ["isolated"]
        (unknown,) = run_stats(s, country_of=lambda ip: "")
        assert unknown.domestic_tried == unknown.foreign_tried == 0
        (elsewhere,) = run_stats(s, country_of=_country_of, country="de")
        assert (elsewhere.domestic_tried, elsewhere.foreign_alive) == (6, 6)


def test_probe_outages_reports_isolation_with_geo_data(tmp_path: Path) -> None:
    db = tmp_path / "p.db"
    _two_country_db(db, abroad_alive=False)
    geo = _geo_file(tmp_path)
    args = ["outages", "--db", str(db), "--geo", str(geo), "--json"]
    r = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert r.exit_code == 0, r.output
    (row,) = [json.loads(x) for x in r.output.splitlines()]
    assert row["state"] == "isolated" and "6/6 URLs in RU reached, 0/6 abroad" in row["evidence"]
    r = CliRunner().invoke(cli, ["outages", "--db", str(db), "--country", "Russia"])
    assert r.exit_code == 2 and "--country" in r.output


def test_probe_compare_shows_each_vantage_points_isolation(tmp_path: Path) -> None:
    db = tmp_path / "p.db"
    _two_country_db(db, abroad_alive=False)
    geo = _geo_file(tmp_path)
    r = CliRunner().invoke(cli, ["compare", "--db", str(db), "--geo", str(geo), "--json"],
                           catch_exceptions=False)  # fmt: skip
    assert r.exit_code == 0, r.output
    iso = json.loads(r.output)["isolation"]["moscow"]
    assert (iso["country"], iso["runs"], iso["isolated_runs"]) == ("RU", 1, 1)
    (interval,) = iso["intervals"]
    assert interval["state"] == "isolated" and interval["runs"] == [1] and interval["before"] is None
    r = CliRunner().invoke(cli, ["compare", "--db", str(db), "--geo", str(geo), "--summary"])
    assert "moscow (RU): 1 of 1 runs isolated" in r.output and "6/6 URLs in RU reached" in r.output
    # Without --isolation (or --geo) compare stays one pass over the latest verdicts.
    r = CliRunner().invoke(cli, ["compare", "--db", str(db), "--json"])
    assert "isolation" not in json.loads(r.output)
    r = CliRunner().invoke(cli, ["compare", "--db", str(db), "--isolation"])
    assert "National isolation" in r.output


def test_probe_compare_finds_no_isolation_where_sites_abroad_work(tmp_path: Path) -> None:
    db = tmp_path / "p.db"
    _two_country_db(db, abroad_alive=True)
    geo = _geo_file(tmp_path)
    r = CliRunner().invoke(cli, ["compare", "--db", str(db), "--geo", str(geo), "--json"],
                           catch_exceptions=False)  # fmt: skip
    iso = json.loads(r.output)["isolation"]["moscow"]
    assert (iso["runs"], iso["isolated_runs"], iso["intervals"]) == (1, 0, [])


def test_the_report_shows_outages_and_isolation(tmp_path: Path) -> None:
    db = tmp_path / "p.db"
    _two_country_db(db, abroad_alive=False)
    geo = _geo_file(tmp_path)
    out = tmp_path / "r.html"
    r = CliRunner().invoke(cli, ["report", "--db", str(db), "--geo", str(geo), "--out", str(out)])
    assert r.exit_code == 0, r.output
    page = out.read_text()
    section = page[page.index('id="outages-h"'):page.index('id="evidence-h"')]
    assert '<td>moscow</td><td>RU</td><td class="n">1</td><td class="n">1</td>' in section
    assert '<tr class="o-isolated"><td>moscow</td><td>isolated</td>' in section
    assert "6/6 URLs in RU reached, 0/6 abroad" in section
