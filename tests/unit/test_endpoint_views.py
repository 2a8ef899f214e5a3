"""Circumvention results where people look: `probe results`, `probe show`, `probe compare`."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from store_samples import sample_measurement

from probe.cli import cli
from probe.core.model import ControlObservation, ControlTCP, ControlTLS, EndpointObservation, Verdict
from probe.store import Store
from probe.store.circumvention import write_endpoints

T0 = 1_790_000_000.0
RELAY = ("tor", "moria1", "128.31.0.39", 9101, "tcp")
VPN_UDP = ("openvpn-udp", "vpn", "192.0.2.7", 1194, "udp")
VPN_TCP = ("openvpn-tcp", "vpn", "192.0.2.7", 1194, "tcp")


def _obs(ep: tuple[str, str, str, int, str], t: float, **kw: object) -> EndpointObservation:
    kind, name, address, port, transport = ep
    base: dict[str, object] = {"kind": kind, "name": name, "address": address, "port": port,
                               "transport": transport, "started": t, "runtime": 0.2,
                               "source": "endpoints.csv:2"}  # fmt: skip
    return EndpointObservation(**{**base, **kw})  # type: ignore[arg-type]


def _control(address: str, port: int) -> ControlObservation:
    return ControlObservation(source="https://127.0.0.1:9443/", url=f"tlshandshake://{address}:{port}",
                              started=T0, duration=0.3, tcp=(ControlTCP(address, port, True),),
                              tls=(ControlTLS(address, port, "www.x.com", True),))  # fmt: skip


def _v(verdict: str, stage: str | None, *reasons: str) -> Verdict:
    return Verdict(verdict, stage, None, reasons, "circumvention-1")


def _endpoint_run(store: Store, vantage: str, rows: list[tuple[EndpointObservation, ControlObservation | None,
                  Verdict]]) -> int:  # fmt: skip
    vid = store.vantage(vantage)
    run = store.start_run(vid, ["endpoints.csv"], {"suite": "circumvention"})
    write_endpoints(store, run, vid, "circumvention", rows)
    store.finish_run(run, "complete")
    return run


@pytest.fixture
def db(tmp_path: Path) -> Path:
    """moscow: a web run, then a circumvention run where the relay is blackholed and OpenVPN
    over TCP reset; almaty: everything reached."""
    path = tmp_path / "all.db"
    with Store.open(path) as s:
        vid = s.vantage("moscow")
        run = s.start_run(vid, [], {})
        s.write(run, vid, [(sample_measurement(0, started=T0), _v("ok", None))])
        s.finish_run(run, "complete")
        _endpoint_run(s, "moscow", [
            (_obs(RELAY, T0, tcp_failure="generic_timeout_error", tcp_duration=10.0),
             _control(RELAY[2], RELAY[3]), _v("blocked", "tcp", "tcp/timeout:128.31.0.39:9101")),
            (_obs(VPN_UDP, T0, handshake="openvpn", handshake_failure="generic_timeout_error"), None,
             _v("inconclusive", "openvpn", "openvpn/timeout:192.0.2.7:1194", "control/none:udp")),
            (_obs(VPN_TCP, T0, tcp_duration=0.1, handshake="openvpn", handshake_failure="connection_reset"),
             _control(VPN_TCP[2], VPN_TCP[3]), _v("reset", "openvpn", "openvpn/reset:192.0.2.7:1194")),
        ])  # fmt: skip
        _endpoint_run(s, "almaty", [
            (_obs(RELAY, T0 + 60, tcp_duration=0.1, handshake="tls", sni="www.abcd.com",
                  tls_version="TLSv1.3"), _control(RELAY[2], RELAY[3]),
             _v("ok", None, "tls/ok:128.31.0.39:9101")),
            (_obs(VPN_TCP, T0 + 60, tcp_duration=0.1, handshake="openvpn"), _control(VPN_TCP[2], VPN_TCP[3]),
             _v("ok", None, "openvpn/ok:192.0.2.7:1194")),
        ])  # fmt: skip
    return path


def _invoke(*args: str) -> str:
    r = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    assert r.exit_code == 0, r.output
    return r.output


def test_results_show_a_circumvention_run_when_it_is_the_latest(db: Path) -> None:
    out = _invoke("results", "--db", str(db))  # almaty's circumvention run is the newest
    assert "moria1" in out and "tls/ok:128.31.0.39:9101" in out and "(2 endpoints)" in out


def test_results_suite_circumvention_filters_by_vantage_and_verdict(db: Path) -> None:
    rows = [json.loads(x) for x in _invoke("results", "--db", str(db), "--suite", "circumvention",
                                           "--vantage", "moscow", "--json").splitlines()]  # fmt: skip
    assert [(r["kind"], r["verdict"]) for r in rows] == [
        ("tor", "blocked"), ("openvpn-udp", "inconclusive"), ("openvpn-tcp", "reset")]
    assert rows[0]["reasons"] == ["tcp/timeout:128.31.0.39:9101"] and rows[0]["run_id"] == 2
    out = _invoke("results", "--db", str(db), "--suite", "circumvention", "--run", "all",
                  "--verdict", "interference", "--csv")  # fmt: skip
    table = list(csv.DictReader(io.StringIO(out)))
    assert [(r["vantage"], r["name"], r["verdict"]) for r in table] == [
        ("moscow", "moria1", "blocked"), ("moscow", "vpn", "reset")]
    assert table[0]["explanation"] == "no answer to the TCP connection attempt (SYN)"


def test_results_of_a_web_run_stay_urls(db: Path) -> None:
    out = _invoke("results", "--db", str(db), "--run", "1")
    assert "site0.example.org" in out and "moria1" not in out
    out = _invoke("results", "--db", str(db), "--suite", "web", "--vantage", "almaty")
    assert "(0 results)" in out


def test_results_suite_circumvention_without_such_runs_says_so(tmp_path: Path) -> None:
    path = tmp_path / "web.db"
    with Store.open(path) as s:
        vid = s.vantage("home")
        s.finish_run(s.start_run(vid, [], {}), "complete")
    r = CliRunner().invoke(cli, ["results", "--db", str(path), "--suite", "circumvention"])
    assert r.exit_code == 1 and "no circumvention runs" in r.output


def test_show_an_endpoint_by_address_and_port_step_by_step(db: Path) -> None:
    out = _invoke("show", "192.0.2.7:1194", "--db", str(db), "--vantage", "moscow")
    assert "vpn (openvpn-tcp) 192.0.2.7:1194 over tcp" in out and "vpn (openvpn-udp)" in out
    assert "openvpn  connection_reset" in out
    assert "control  https://127.0.0.1:9443/: tcp 192.0.2.7:1194 ok" in out
    assert "verdict: reset at openvpn" in out and "servers do not; DPI boxes do" in out
    assert "control  none" in out and "no control can speak for a UDP path" in out


def test_show_an_endpoint_by_name_as_json_is_the_newest(db: Path) -> None:
    doc = json.loads(_invoke("show", "moria1", "--db", str(db), "--json"))
    (m,) = doc["endpoint_measurements"]
    assert (m["vantage"], m["verdict"], m["observation"]["sni"]) == ("almaty", "ok", "www.abcd.com")
    assert m["control"]["tls"][0]["ok"] is True
    r = CliRunner().invoke(cli, ["show", "[2001:db8::1]:443", "--db", str(db)])
    assert r.exit_code == 1 and "no endpoint measurement of '[2001:db8::1]:443'" in r.output
    r = CliRunner().invoke(cli, ["show", "nothing-by-that-name", "--db", str(db)])
    assert r.exit_code == 1 and "no measurement of 'nothing-by-that-name'" in r.output


def test_compare_sets_endpoints_side_by_side_per_vantage_point(db: Path) -> None:
    doc = json.loads(_invoke("compare", "--db", str(db), "--json"))
    relay = next(e for e in doc["endpoints"] if e["kind"] == "tor")
    assert {vp: v["verdict"] for vp, v in relay["verdicts"].items()} == {"almaty": "ok", "moscow": "blocked"}
    assert doc["endpoint_summary"]["moscow"]["tor"] == {"tried": 1, "blocked": 1}
    assert doc["endpoint_summary"]["almaty"]["openvpn-tcp"] == {"tried": 1, "ok": 1}
    out = _invoke("compare", "--db", str(db))
    line = next(x for x in out.splitlines() if x.startswith("moria1"))
    assert line.split()[-2:] == ["ok", "blocked/tcp"]  # almaty, moscow
    assert "moscow: openvpn-tcp 0/1, openvpn-udp 0/1, tor 0/1; 2 blocked or reset" in out
    diff = json.loads(_invoke("compare", "--db", str(db), "--json", "--only-differences"))
    assert sorted(e["kind"] for e in diff["endpoints"]) == ["openvpn-tcp", "tor"]  # UDP: moscow only
    only = json.loads(_invoke("compare", "--db", str(db), "--json", "--vantage", "almaty"))
    assert list(only["endpoint_summary"]) == ["almaty"]


def test_the_report_has_a_circumvention_section(db: Path, tmp_path: Path) -> None:
    out = tmp_path / "r.html"
    _invoke("report", "--db", str(db), "--out", str(out))
    page = out.read_text()
    section = page[page.index('id="circumvention-h"'):page.index('id="outages-h"')]
    row = section[section.index("<td>moria1</td>"):].split("</tr>")[0]
    # Columns in vantage-point order (almaty, moscow); the tooltip explains the reason.
    assert row.index(">ok</td>") < row.index(">blocked/tcp</td>")
    assert 'title="tcp/timeout:128.31.0.39:9101: no answer to the TCP connection attempt (SYN)"' in row
    # Reach per kind (openvpn-tcp, openvpn-udp, tor): almaty did not try OpenVPN over UDP.
    assert ('<td>almaty</td><td class="n">1 / 1 reached</td><td>-</td><td class="n">1 / 1 reached</td>'
            in section)
    assert section.index("moria1") < section.index("<td>openvpn-udp</td>")  # interference first


def test_a_report_without_endpoints_says_so(tmp_path: Path) -> None:
    path = tmp_path / "web.db"
    with Store.open(path) as s:
        vid = s.vantage("home")
        run = s.start_run(vid, [], {})
        s.write(run, vid, [(sample_measurement(0, started=T0), _v("ok", None))])
        s.finish_run(run, "complete")
    _invoke("report", "--db", str(path), "--out", str(tmp_path / "r.html"))
    page = (tmp_path / "r.html").read_text()
    assert "No circumvention endpoints measured" in page and "No outages" in page
