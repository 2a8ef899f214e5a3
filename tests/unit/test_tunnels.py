"""Encrypted DNS, fully encrypted traffic and WireGuard, pure parts: the GFW's published rule,
WireGuard's handshake, endpoint rows, the reflector's advertisement and the judge's rules."""

from __future__ import annotations

import json
import struct

import pytest

from probe.core.failures import Failure
from probe.core.model import (
    ControlObservation,
    ControlTCP,
    ControlTLS,
    EchoTrial,
    EndpointObservation,
    NameQuery,
)
from probe.core.wgkey import decode_key, encode_key
from probe.inputs.endpointlists import EndpointListError, parse_endpoints
from probe.judge.circumvention import judge_endpoint
from probe.measure import fet, wireguard
from probe.measure.reflector import parse_health

HEADER = "kind,name,address,port,sni,notes,source,key\n"


# --- the fully encrypted traffic rule (Wu et al. 2023) -------------------------------------------


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (bytes(64), ("ex1",)),  # no bits set: popcount 0
        (b"\xff" * 64, ("ex1",)),  # every bit set
        (b"abcdef" + b"\x80\x81" * 40, ("ex2",)),  # first six printable (0x80/0x81: 1.5 bits, ex1 too)
        (b"\x80" + b"A" * 21 + b"\xf0\x0f" * 30, ("ex4",)),
        (b"\x16\x03\x01" + b"\x93\x6c" * 40, ("ex5",)),  # a TLS record header
        (b"GET " + b"\x93\x6c" * 40, ("ex5",)),  # an HTTP request: "GET " is 4 printable only
    ],
)
def test_each_exemption_is_recognised(payload: bytes, expected: tuple[str, ...]) -> None:
    found = fet.exemptions(payload)
    assert set(expected) <= set(found), found


def test_bits_per_byte_is_exempt_at_the_published_thresholds() -> None:
    # 0x0f has 4 bits set, 0x07 three: mixes reach exactly 3.4 and 4.6 bits per byte.
    at_34 = b"\x0f" * 40 + b"\x07" * 60  # (160 + 180) / 100 = 3.4
    at_46 = b"\x0f" * 40 + b"\x1f" * 60  # (160 + 300) / 100 = 4.6
    inside = b"\x0f" * 50 + b"\x07" * 50  # 3.5
    assert "ex1" in fet.exemptions(at_34) and "ex1" in fet.exemptions(at_46)
    assert "ex1" not in fet.exemptions(inside)


def test_more_than_half_printable_is_exempt_but_half_is_not() -> None:
    half = b"\x80A" * 50  # 50 % printable, runs of 1
    assert "ex3" not in fet.exemptions(half)
    assert "ex3" in fet.exemptions(half + b"A")


def test_the_random_payload_is_never_exempt_and_its_twin_always_is() -> None:
    for _ in range(200):
        r = fet.random_payload(fet.FIRST_SIZE)
        t = fet.printable_payload(fet.FIRST_SIZE)
        assert len(r) == len(t) == fet.FIRST_SIZE
        assert fet.exemptions(r) == () and {"ex2", "ex3", "ex4"} <= set(fet.exemptions(t))


# --- WireGuard ----------------------------------------------------------------------------------


def test_an_initiation_is_answered_and_the_answer_verified() -> None:
    server = wireguard.KeyPair.generate()
    init = wireguard.Initiation.create(server.public)
    assert len(init.packet) == 148 and wireguard.looks_like_initiation(init.packet)
    assert init.packet[116:132] != bytes(16) and init.packet[132:] == bytes(16)  # mac1 set, no mac2
    answer = wireguard.respond(server, init.packet)
    assert answer.outcome == "response" and answer.answer is not None and len(answer.answer) == 92
    assert wireguard.check_response(init, answer.answer) == "ok"
    # The response names our sender index as its receiver index (little-endian).
    assert struct.unpack_from("<I", answer.answer, 8)[0] == init.sender_index


def test_a_forged_or_foreign_answer_is_not_accepted() -> None:
    server = wireguard.KeyPair.generate()
    init = wireguard.Initiation.create(server.public)
    answer = wireguard.respond(server, init.packet).answer
    assert answer is not None
    tampered = bytearray(answer)
    tampered[50] ^= 1  # inside the encrypted empty payload: mac1 no longer matches
    assert wireguard.check_response(init, bytes(tampered)) == "mac1"
    other = wireguard.Initiation.create(server.public)
    assert wireguard.check_response(other, answer) == "index"
    # A middlebox that knows the layout but not the server's key cannot answer.
    impostor = wireguard.respond(wireguard.KeyPair.generate(), init.packet)
    assert impostor.answer is None and impostor.outcome == "mac1"
    assert wireguard.check_response(init, init.packet) == "size"


def test_the_responder_never_answers_more_than_it_was_sent() -> None:
    server = wireguard.KeyPair.generate()
    for packet in (wireguard.twin(), wireguard.unkeyed_initiation(), b"\x01\x00\x00\x00" + bytes(144), b""):
        r = wireguard.respond(server, packet)
        assert r.answer is None or len(r.answer) <= len(packet)


def test_the_twin_is_an_initiation_s_size_but_not_wireguard() -> None:
    t = wireguard.twin()
    assert len(t) == 148 and t[0] == wireguard.TWIN_TYPE and not wireguard.looks_like_initiation(t)
    assert wireguard.looks_like_initiation(wireguard.unkeyed_initiation())


def test_scapy_reads_our_initiation_as_wireguard() -> None:
    from scapy.contrib.wireguard import Wireguard, WireguardInitiation

    init = wireguard.Initiation.create(wireguard.KeyPair.generate().public)
    pkt = Wireguard(init.packet)
    assert pkt.haslayer(WireguardInitiation) and pkt[WireguardInitiation].sender_index == init.sender_index


def test_keys_round_trip_and_bad_keys_are_refused() -> None:
    pair = wireguard.KeyPair.generate()
    assert decode_key(encode_key(pair.public)) == pair.public
    for bad in ("", "abc", encode_key(b"x" * 31), "not base64!!"):
        with pytest.raises(ValueError, match="not a WireGuard key"):
            decode_key(bad)


# --- endpoint rows and the reflector's advertisement --------------------------------------------


def test_rows_of_the_new_kinds() -> None:
    key = encode_key(wireguard.KeyPair.generate().public)
    rows = ("doh,r,192.0.2.1,443,dns.example,,src,\n"
            f"wireguard,w,192.0.2.2,51820,,,src,{key}\n"
            "fet,f,192.0.2.3,7,,,src,\n")  # fmt: skip
    eps = parse_endpoints(HEADER + rows, "x.csv")
    assert [(e.kind, e.transport) for e in eps] == [("doh", "tcp"), ("wireguard", "udp"), ("fet", "tcp")]
    assert eps[1].key == key
    with pytest.raises(EndpointListError, match=r"x\.csv:2: a dot resolver needs its name"):
        parse_endpoints(HEADER + "dot,r,192.0.2.1,853,,,src,\n", "x.csv")
    with pytest.raises(EndpointListError, match=r"x\.csv:2: only wireguard rows take a key"):
        parse_endpoints(HEADER + f"tor,r,192.0.2.1,443,,,src,{key}\n", "x.csv")
    with pytest.raises(EndpointListError, match=r"x\.csv:2: .*not a WireGuard key"):
        parse_endpoints(HEADER + "wireguard,r,192.0.2.1,51820,,,src,short\n", "x.csv")


def test_a_reflector_advertisement_is_checked_field_by_field() -> None:
    key = encode_key(wireguard.KeyPair.generate().public)
    good = (b'{"status": "ok", "reflector": {"tcp_echo": [8781, 8782], "udp_echo": 8781, '
            b'"wireguard": {"port": 51820, "public_key": "' + key.encode() + b'"}}}')  # fmt: skip
    info = parse_health("http://h/", good)
    assert info is not None and info.tcp_echo == (8781, 8782) and info.wireguard_key == key
    eps = info.endpoints("192.0.2.9")
    assert [(e.kind, e.port, e.alt_port) for e in eps] == [("fet", 8781, 8782), ("wireguard", 51820, 0)]
    for bad in (b'{"status": "ok"}', b"[]", b"not json", b'{"reflector": {"tcp_echo": [0]}}',
                b'{"reflector": {"tcp_echo": [true]}}', b'{"reflector": {"udp_echo": 70000}}',
                b'{"reflector": {"wireguard": {"port": 1, "public_key": "xx"}}}'):  # fmt: skip
        assert parse_health("http://h/", bad) is None, bad


# --- the judge ----------------------------------------------------------------------------------

WHERE = ("192.0.2.7", 443)


def _dns_obs(**kw: object) -> EndpointObservation:
    base: dict[str, object] = {"kind": "doh", "name": "r", "address": WHERE[0], "port": WHERE[1],
                               "transport": "tcp", "started": 0.0, "runtime": 0.1, "sni": "dns.example",
                               "handshake": "tls"}  # fmt: skip
    return EndpointObservation(**(base | kw))  # type: ignore[arg-type]  # test records


def _control(tcp_ok: bool = True, tls_ok: bool = True, failure: str | None = None) -> ControlObservation:
    tls_failure = None if tls_ok else Failure.CONNECTION_RESET
    return ControlObservation(
        "th", "https://dns.example:443/", 0.0, 0.1,
        tcp=(ControlTCP(WHERE[0], WHERE[1], tcp_ok, None if tcp_ok else Failure.GENERIC_TIMEOUT_ERROR),),
        tls=(ControlTLS(WHERE[0], WHERE[1], "dns.example", tls_ok, tls_failure),), failure=failure,
    )  # fmt: skip


def _name(name: str, addrs: tuple[str, ...]) -> ControlObservation:
    return ControlObservation("th", f"http://{name}/", 0.0, 0.1, dns_addrs=addrs)


def test_a_resolver_whose_answers_match_is_ok() -> None:
    obs = _dns_obs(queries=(NameQuery("news.example.org", "A", 0.01, None, "NOERROR", ("203.0.113.5",)),),
                   name_controls=(_name("news.example.org", ("203.0.113.5",)),))  # fmt: skip
    v = judge_endpoint(obs, _control())
    assert v.verdict == "ok" and v.reasons[0] == "doh/ok:192.0.2.7:443"


def test_answers_in_another_as_than_the_control_s_are_a_lie() -> None:
    asns = {"198.51.100.1": 64500, "203.0.113.5": 64501}
    obs = _dns_obs(queries=(NameQuery("news.org", "A", 0.01, None, "NOERROR", ("198.51.100.1",)),),
                   name_controls=(_name("news.org", ("203.0.113.5",)),))  # fmt: skip
    v = judge_endpoint(obs, _control(), asns.get)
    assert v.verdict == "hijacked" and v.stage == "dns"
    assert "dns/answers-differ:news.org:other-asn" in v.reasons


def test_a_cdn_in_the_same_as_or_unknown_as_data_is_not_a_lie() -> None:
    obs = _dns_obs(queries=(NameQuery("cdn.org", "A", 0.01, None, "NOERROR", ("198.51.100.1",)),),
                   name_controls=(_name("cdn.org", ("203.0.113.5",)),))  # fmt: skip
    same = {"198.51.100.1": 64500, "203.0.113.5": 64500}
    assert judge_endpoint(obs, _control(), same.get).verdict == "ok"
    v = judge_endpoint(obs, _control(), {}.get)
    assert v.verdict == "ok" and "dns/unverified:cdn.org" in v.reasons


def test_a_bogon_or_nxdomain_for_a_name_the_control_resolved_is_a_lie() -> None:
    obs = _dns_obs(queries=(NameQuery("news.org", "A", 0.01, None, "NOERROR", ("10.10.34.34",)),
                            NameQuery("blog.org", "A", 0.01, None, "NXDOMAIN")),
                   name_controls=(_name("news.org", ("203.0.113.5",)), _name("blog.org", ("203.0.113.6",))))
    v = judge_endpoint(obs, _control())
    assert v.verdict == "hijacked" and v.reasons[:2] == ("dns/answers-differ:news.org:bogon",
                                                         "dns/answers-differ:blog.org:nxdomain")  # fmt: skip


def test_a_resolver_blocked_by_name_and_by_address() -> None:
    reset = _dns_obs(handshake_failure=Failure.CONNECTION_RESET, decoy_sni="example.com", decoy_failure=None)
    v = judge_endpoint(reset, _control())
    assert v.verdict == "reset" and v.stage == "tls" and "tls/sni-filtered:decoy=example.com" in v.reasons
    dropped = _dns_obs(handshake_failure=Failure.GENERIC_TIMEOUT_ERROR, decoy_sni="example.com",
                       decoy_failure=Failure.GENERIC_TIMEOUT_ERROR)  # fmt: skip
    v = judge_endpoint(dropped, _control())
    assert v.verdict == "blocked" and "tls/address-blocked:decoy-failed:generic_timeout_error" in v.reasons
    syn = _dns_obs(tcp_failure=Failure.GENERIC_TIMEOUT_ERROR, handshake="")
    assert judge_endpoint(syn, _control()).verdict == "blocked"


def test_a_resolver_down_for_the_control_too_is_down_and_interception_is_hijacked() -> None:
    syn = _dns_obs(tcp_failure=Failure.CONNECTION_REFUSED, handshake="")
    assert judge_endpoint(syn, _control(tcp_ok=False)).verdict == "down"
    assert judge_endpoint(syn, _control(failure=Failure.GENERIC_TIMEOUT_ERROR)).verdict == "inconclusive"
    mitm = _dns_obs(handshake_failure=Failure.SSL_UNKNOWN_AUTHORITY)
    assert judge_endpoint(mitm, _control()).verdict == "hijacked"
    assert judge_endpoint(mitm, _control(tls_ok=False)).verdict == "down"


def _trial(role: str, failure: str | None = None, step: str = "", detail: str = "echoed") -> EchoTrial:
    return EchoTrial(role, 8781, 0.0, 0.01, 320, 0 if failure else 320, failure, step, detail=detail)


def _twin_obs(kind: str, *trials: EchoTrial, key: str = "k") -> EndpointObservation:
    return EndpointObservation(kind, "r", "192.0.2.9", 8781, "tcp" if kind == "fet" else "udp", 0.0, 0.1,
                               handshake=kind, trials=trials, key=key)  # fmt: skip


T = Failure.GENERIC_TIMEOUT_ERROR


@pytest.mark.parametrize(
    ("trials", "verdict", "reason"),
    [
        ((_trial("twin"), _trial("random"), _trial("random")), "ok", "fet/ok:192.0.2.9:8781"),
        ((_trial("twin", T, "first"),), "inconclusive", "fet/twin-failed:192.0.2.9:8781"),
        ((_trial("twin"), _trial("random", T, "second"), _trial("followup")), "blocked",
         "fet/twin-passed-after"),
        ((_trial("twin"), _trial("random", Failure.CONNECTION_RESET, "first"), _trial("followup")), "reset",
         "fet/random-reset:192.0.2.9:8781"),
        ((_trial("twin"), _trial("random", T, "second"), _trial("followup", T, "connect"),
          _trial("other-port")), "blocked", "fet/residual:port=8781"),
        ((_trial("twin"), _trial("random", T, "second"), _trial("followup", T, "connect")), "inconclusive",
         "fet/followup-failed"),
    ],
)  # fmt: skip
def test_fully_encrypted_traffic_is_judged_against_its_twin(
    trials: tuple[EchoTrial, ...], verdict: str, reason: str
) -> None:
    v = judge_endpoint(_twin_obs("fet", *trials), None)
    assert v.verdict == verdict and reason in v.reasons, v


def test_a_silent_wireguard_server_without_a_key_is_never_blocked() -> None:
    silent = (_trial("twin"), _trial("initiation", T, "answer"), _trial("followup"))
    obs = _twin_obs("wireguard", *silent, key="")
    v = judge_endpoint(obs, None)
    assert v.verdict == "inconclusive" and "wireguard/no-key:192.0.2.9:8781" in v.reasons
    keyed = _twin_obs("wireguard", _trial("twin"), _trial("initiation", T, "answer"), _trial("followup"))
    v = judge_endpoint(keyed, None)
    assert v.verdict == "blocked" and "wireguard/initiation-dropped:192.0.2.9:8781" in v.reasons
    answered = _twin_obs("wireguard", _trial("twin"), _trial("initiation", detail="ok"))
    assert judge_endpoint(answered, None).verdict == "ok"
    junk = _twin_obs("wireguard", _trial("twin"), _trial("initiation", Failure.WIREGUARD_UNEXPECTED_REPLY,
                                                          "answer", "mac1"), _trial("followup"))  # fmt: skip
    assert judge_endpoint(junk, None).verdict == "inconclusive"


# --- how people read them -----------------------------------------------------------------------


def _stored(obs: EndpointObservation, v: object) -> dict[str, object]:
    import dataclasses

    return {"name": obs.name, "kind": obs.kind, "address": obs.address, "port": obs.port,
            "transport": obs.transport, "vantage": "home", "run_id": 1, "measured_at": "2026-12-01T10:00:00Z",
            "source": "lab", "verdict": v.verdict, "stage": v.stage, "reasons": list(v.reasons),  # type: ignore[attr-defined]
            "classifier_version": "x", "observation": dataclasses.asdict(obs), "control": None}  # fmt: skip


def test_show_tells_the_twin_exchanges_and_the_names_step_by_step() -> None:
    from probe.present.circumvention import explain_endpoint_reason, render_endpoint

    obs = _twin_obs("fet", _trial("twin"), _trial("random", T, "second"), _trial("followup", T, "connect"),
                    _trial("other-port"))  # fmt: skip
    v = judge_endpoint(obs, None)
    text = "\n".join(render_endpoint(_stored(obs, v)))
    assert "random     :8781 sent 320, back 0: second: generic_timeout_error in 10 ms" in text
    assert all(len(line) <= 80 for line in text.splitlines() if not line.startswith("  fet/")), text
    assert "the twin exchanges above" in text and "tcp      connected" not in text
    assert "residual blocking" in text and "verdict: blocked at fet" in text
    dns = _dns_obs(queries=(NameQuery("news.org", "A", 0.01, None, "NOERROR", ("10.10.34.34",)),),
                   name_controls=(_name("news.org", ("203.0.113.5",)),))  # fmt: skip
    text = "\n".join(render_endpoint(_stored(dns, judge_endpoint(dns, _control()))))
    assert "A        news.org: 10.10.34.34 (control: 203.0.113.5)" in text
    for reason in ("wireguard/initiation-dropped:1.2.3.4:51820", "fet/twin-failed:x",
                   "tls/sni-filtered:decoy=a", "dns/answers-differ:news.org:bogon", "wireguard/no-key:x"):
        assert explain_endpoint_reason(reason) != reason, reason


def test_results_compare_and_the_report_show_the_new_kinds(tmp_path: object) -> None:
    from pathlib import Path

    from click.testing import CliRunner

    from probe.cli import cli
    from probe.store import Store
    from probe.store.circumvention import write_endpoints

    path = Path(str(tmp_path)) / "p.db"
    blocked = _dns_obs(handshake_failure=Failure.CONNECTION_RESET, decoy_sni="example.com")
    fet_obs = _twin_obs("fet", _trial("twin"), _trial("random", T, "second"), _trial("followup"))
    with Store.open(path) as s:
        for vantage, rows in (("moscow", [blocked, fet_obs]), ("almaty", [_dns_obs(queries=())])):
            vid = s.vantage(vantage)
            run = s.start_run(vid, ["x.csv"], {"suite": "circumvention"})
            write_endpoints(s, run, vid, "circumvention", [(o, _control(), judge_endpoint(o, _control()))
                                                             for o in rows])  # fmt: skip
            s.finish_run(run, "complete")

    def invoke(*args: str) -> str:
        r = CliRunner().invoke(cli, list(args), catch_exceptions=False)
        assert r.exit_code == 0, r.output
        return r.output

    table = invoke("results", "--db", str(path), "--suite", "circumvention", "--run", "1")
    assert "doh" in table and "reset" in table and "fet" in table and "blocked" in table
    doc = json.loads(invoke("compare", "--db", str(path), "--json"))
    assert doc["endpoint_summary"]["moscow"]["doh"] == {"tried": 1, "reset": 1}
    assert doc["endpoint_summary"]["almaty"]["doh"] == {"tried": 1, "ok": 1}
    assert doc["endpoint_summary"]["moscow"]["fet"] == {"tried": 1, "blocked": 1}
    out = Path(str(tmp_path)) / "r.html"
    invoke("report", "--db", str(path), "--out", str(out))
    page = out.read_text()
    tor = page[page.index('id="circumvention-h"'):page.index('id="tunnels-h"')]
    tunnels = page[page.index('id="tunnels-h"'):page.index('id="protocols-h"')]
    assert "No circumvention endpoints measured" in tor
    assert "<td>doh</td>" in tunnels and "<td>fet</td>" in tunnels and "reset/tls" in tunnels
    assert "a harmless SNI to the same address completed" in tunnels  # the reason in words
    assert 'id="tunnel-matrix"' in tunnels


def test_export_writes_endpoint_measurements_with_their_observations(tmp_path: object) -> None:
    from pathlib import Path

    from click.testing import CliRunner

    from probe.cli import cli
    from probe.store import Store
    from probe.store.circumvention import write_endpoints

    path = Path(str(tmp_path)) / "p.db"
    fet_obs = _twin_obs("fet", _trial("twin"), _trial("random", T, "second"), _trial("followup"))
    with Store.open(path) as s:
        vid = s.vantage("moscow")
        run = s.start_run(vid, ["x.csv"], {"suite": "circumvention"})
        write_endpoints(s, run, vid, "circumvention", [(fet_obs, None, judge_endpoint(fet_obs, None))])
        s.finish_run(run, "complete")
    base = ["export", "--db", str(path), "--suite", "circumvention", "--format"]
    r = CliRunner().invoke(cli, [*base, "jsonl"])
    assert r.exit_code == 0, r.output
    row = json.loads(r.output.splitlines()[0])
    assert row["kind"] == "fet" and row["verdict"] == "blocked" and row["uid"] and row["run_uid"]
    assert [t["role"] for t in row["observation"]["trials"]] == ["twin", "random", "followup"]
    r = CliRunner().invoke(cli, [*base, "csv"])
    assert r.exit_code == 0 and r.output.splitlines()[0].startswith("uid,run_uid,vantage_uid,vantage,kind")
    assert ',fet,' in r.output.splitlines()[1]
    r = CliRunner().invoke(cli, [*base, "ooni"])
    assert r.exit_code == 2 and "csv or jsonl" in r.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--reflector-tcp", "9000"], "need --reflector"),
        (["--reflector", "--reflector-key", "KEYFILE"], "not a WireGuard key"),
        (["--reflector", "--reflector-rate", "0"], "not in the range"),
    ],
)
def test_bad_reflector_flags_are_usage_errors_before_anything_listens(
    args: list[str], message: str, tmp_path: object
) -> None:
    from pathlib import Path

    from click.testing import CliRunner

    from probe.cli import cli

    key = Path(str(tmp_path)) / "wg.key"
    key.write_text("not a key\n")
    r = CliRunner().invoke(cli, ["helper", "serve", *(str(key) if a == "KEYFILE" else a for a in args)])
    assert r.exit_code == 2 and message in r.output, r.output


def test_circumvention_rejects_an_unknown_kind_and_an_empty_selection(tmp_path: object) -> None:
    from pathlib import Path

    from click.testing import CliRunner

    from probe.cli import cli

    lst = Path(str(tmp_path)) / "l.csv"
    lst.write_text(HEADER + "tor,r,192.0.2.1,443,,,src,\n")
    db = str(Path(str(tmp_path)) / "p.db")
    base = ["circumvention", str(lst), "--db", db, "--accept-risks", "--no-control"]
    r = CliRunner().invoke(cli, [*base, "--kind", "vpn"])
    assert r.exit_code == 2 and "unknown kind 'vpn'" in r.output
    r = CliRunner().invoke(cli, [*base, "--kind", "doh"])
    assert r.exit_code == 2 and "no endpoint of kind doh" in r.output


def test_reclassify_judges_stored_endpoints_again_and_writes_what_changed(tmp_path: object) -> None:
    import sqlite3
    from pathlib import Path

    from click.testing import CliRunner

    from probe.cli import cli
    from probe.core.model import Verdict
    from probe.store import Store
    from probe.store.circumvention import write_endpoints

    path = Path(str(tmp_path)) / "p.db"
    fet_obs = _twin_obs("fet", _trial("twin"), _trial("random", T, "second"), _trial("followup"))
    tor = EndpointObservation("tor", "relay", "192.0.2.7", 443, "tcp", 0.0, 0.1,
                              tcp_failure=Failure.GENERIC_TIMEOUT_ERROR)  # fmt: skip
    stale = Verdict("ok", None, None, ("fet/ok:old",), "circumvention-0")  # as an older rule judged it
    with Store.open(path) as s:
        vid = s.vantage("home")
        run = s.start_run(vid, ["x.csv"], {"suite": "circumvention"})
        write_endpoints(s, run, vid, "circumvention", [(fet_obs, None, stale),
                                                       (tor, _control(), judge_endpoint(tor, _control()))])
        s.finish_run(run, "complete")
    r = CliRunner().invoke(cli, ["reclassify", "--db", str(path)])
    assert r.exit_code == 0, r.output
    assert "re-judged 2 circumvention endpoints; 1 verdict changed" in r.output
    assert "ok -> blocked: 1" in r.output
    with sqlite3.connect(path) as c:
        sql = "SELECT kind, verdict, classifier_version FROM endpoint_measurements ORDER BY id"
        rows = c.execute(sql).fetchall()
    assert rows == [("fet", "blocked", "circumvention-2"), ("tor", "blocked", "circumvention-1")]
