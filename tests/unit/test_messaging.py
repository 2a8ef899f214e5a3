"""Messaging apps, pure parts: MTProto's first exchange, the endpoint list, the judge's rules
(golden cases for Telegram's DCs and the services reached by name) and the per-app summary."""

from __future__ import annotations

import dataclasses
import struct
from pathlib import Path

import pytest
from classify_helpers import SITE, control, dns, hop, http, page, tcp, tls

from probe.core.model import ControlObservation, ControlTCP, EndpointObservation, Hop
from probe.inputs.endpointlists import (
    MESSAGING_APPS,
    MESSAGING_LIST,
    EndpointListError,
    load_endpoints,
    parse_endpoints,
    suite_of,
)
from probe.judge.circumvention import judge_endpoint
from probe.measure import mtproto
from probe.present.messaging import app_lines, app_parts

DC = "192.0.2.50"
HEADER = "kind,name,address,port,path,ca,notes,source\n"


# --- MTProto -----------------------------------------------------------------------------------


def _dc_answer(hello: bytes, answer: bytes | None = None) -> tuple[bytes, bytes]:
    """What a DC reads from ``hello`` (the req_pq_multi's nonce) and the bytes it answers."""
    side = mtproto.server_side(hello[:64])
    assert side.tag == mtproto.INTERMEDIATE
    body = side.decrypt.update(hello[64:])
    size = struct.unpack("<I", body[:4])[0]
    message = body[4 : 4 + size]
    assert struct.unpack("<I", message[20:24])[0] == mtproto.REQ_PQ_MULTI
    nonce = message[24:40]
    if answer is None:
        answer = mtproto.res_pq(nonce, b"S" * 16, b"\x17\xed\x48\x94\x1a\x08\xf9\x81", (0x1234,))
    return nonce, side.encrypt.update(struct.pack("<I", len(answer)) + answer)


def test_a_dc_that_follows_the_obfuscation_answers_our_nonce() -> None:
    hello = mtproto.client_hello(2)
    nonce, sealed = _dc_answer(hello.data)
    assert nonce == hello.nonce
    plain = hello.decrypt.update(sealed)
    assert mtproto.parse_res_pq(plain[4:], hello.nonce) == "ok"


def test_answers_that_are_not_a_res_pq_for_our_nonce_are_told_apart() -> None:
    hello = mtproto.client_hello()
    other = mtproto.res_pq(b"N" * 16, b"S" * 16, b"\x01", ())
    assert mtproto.parse_res_pq(other, hello.nonce) == "wrong-nonce"
    assert mtproto.parse_res_pq(struct.pack("<i", -404), hello.nonce) == "error:-404"
    assert mtproto.parse_res_pq(b"HTTP/1.1 400 Bad Request\r\n\r\n" * 3, hello.nonce) == "not-res-pq"
    assert mtproto.parse_res_pq(b"\0" * 10, hello.nonce) == "truncated"


def test_the_obfuscated_header_never_looks_like_another_protocol() -> None:
    for _ in range(200):
        data = mtproto.client_hello().data
        assert data[0] != 0xEF and data[:4] not in (b"GET ", b"POST", b"HEAD", mtproto.INTERMEDIATE)
        assert data[4:8] != b"\0\0\0\0"


# --- the endpoint list -------------------------------------------------------------------------


def test_the_packaged_list_names_every_app_with_sources_and_a_date() -> None:
    eps = load_endpoints([MESSAGING_LIST])
    assert {MESSAGING_APPS[e.kind] for e in eps} == {"telegram", "whatsapp", "signal"}
    assert all(e.source for e in eps)
    dcs = [e for e in eps if e.kind == "telegram-dc"]
    assert {e.address for e in dcs} >= {"149.154.175.50", "149.154.167.51", "149.154.171.5"}
    assert {e.port for e in dcs} == {80, 443}
    signal = [e for e in eps if e.kind == "signal"]
    assert signal and all(Path(e.ca).name == "signal-ca.pem" and Path(e.ca).is_file() for e in signal)
    web = next(e for e in eps if e.address == "web.whatsapp.com")
    assert web.by_name and web.url == "https://web.whatsapp.com/"
    chat = next(e for e in eps if e.address == "e1.whatsapp.net" and e.port == 5222)
    assert chat.url == "http://e1.whatsapp.net:5222/"  # what its control asks the helper about
    header = MESSAGING_LIST.read_text().splitlines()[0]
    assert header.endswith(",checked")


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("telegram-dc,x,dc.example,443,,,,", "is not an IP address"),
        ("signal,x,bad name!,443,,,,", "is not a host name or an IP address"),
        ("whatsapp,x,e1.example,443,/v2,,,", "only https services"),
        ("signal,x,chat.example,443,v2,,,", "must start with /"),
        ("whatsapp,x,e1.example,443,,ca.pem,,", "only https services"),
        ("signal,x,chat.example,443,,../ca.pem,,", "must be a file name next to the list"),
    ],
)
def test_bad_messaging_rows_name_the_list_and_line(row: str, message: str) -> None:
    with pytest.raises(EndpointListError, match=f"messaging.csv:2: .*{message}"):
        parse_endpoints(HEADER + row + "\n", "messaging.csv", Path("/nonexistent"))


def test_a_pinned_ca_is_read_next_to_the_list_and_checked(tmp_path: Path) -> None:
    lst = tmp_path / "m.csv"
    lst.write_text(HEADER + "signal,chat,chat.example,443,/,missing.pem,,me\n")
    with pytest.raises(EndpointListError, match=r"m\.csv:2"):
        load_endpoints([lst])
    (tmp_path / "ca.pem").write_bytes((MESSAGING_LIST.parent / "signal-ca.pem").read_bytes())
    lst.write_text(HEADER + "signal,chat,Chat.Example.,443,/,ca.pem,,me\n")
    (ep,) = load_endpoints([lst])
    assert ep.address == "chat.example" and ep.ca == str(tmp_path / "ca.pem")


def test_each_kind_is_stored_under_its_own_suite() -> None:
    assert suite_of("telegram-dc") == suite_of("signal") == "messaging"
    assert suite_of("tor") == suite_of("doh") == "circumvention"


# --- Telegram's data centres -------------------------------------------------------------------


def _dc(tcp_failure: str | None = None, hs_failure: str | None = None,
        answer: str = "") -> EndpointObservation:  # fmt: skip
    return EndpointObservation("telegram-dc", "DC2", DC, 443, "tcp", 1.0, 0.1, tcp_failure=tcp_failure,
                               handshake="mtproto", handshake_failure=hs_failure, answer=answer)  # fmt: skip


def _dc_control(tcp_failure: str | None = None, http_status: int | None = 501,
                http_failure: str | None = None) -> ControlObservation:  # fmt: skip
    return ControlObservation("http://helper/", f"http://{DC}:443/", 1.0, 0.2,
                              tcp=(ControlTCP(DC, 443, tcp_failure is None, tcp_failure),),
                              http_status=None if http_failure else http_status,
                              http_failure=http_failure)  # fmt: skip


@pytest.mark.parametrize(
    ("obs", "ctl", "verdict", "stage", "reason"),
    [
        (_dc(answer="res_pq"), _dc_control(), "ok", None, f"mtproto/ok:{DC}:443"),
        (_dc(answer="error:-404"), None, "ok", None, "mtproto/error-code:-404"),
        (_dc("generic_timeout_error"), _dc_control(), "blocked", "tcp", f"tcp/timeout:{DC}:443"),
        (_dc("connection_refused"), _dc_control(), "reset", "tcp", f"tcp/refused:{DC}:443"),
        # Down for the control too: the DC's side, never the network's.
        (_dc("generic_timeout_error"), _dc_control("generic_timeout_error"), "down", "tcp",
         f"control/tcp-timeout:{DC}:443"),
        (_dc("generic_timeout_error"), None, "inconclusive", "tcp", "control/unavailable"),
        (_dc("network_unreachable"), _dc_control(), "inconclusive", "tcp", "tcp/local:network_unreachable"),
        (_dc(hs_failure="connection_reset"), _dc_control(), "reset", "mtproto", f"mtproto/reset:{DC}:443"),
        # Silence after connecting is blocking only when the DC talked to the control.
        (_dc(hs_failure="generic_timeout_error"), _dc_control(), "blocked", "mtproto",
         "control/http-answered:501"),
        (_dc(hs_failure="generic_timeout_error"), _dc_control(http_failure="generic_timeout_error"),
         "inconclusive", "mtproto", "mtproto/silent"),
        (_dc(hs_failure="mtproto_unexpected_reply", answer="not-res-pq"), _dc_control(), "inconclusive",
         "mtproto", "mtproto/unexpected:not-res-pq"),
    ],
)  # fmt: skip
def test_a_data_centre_is_judged_against_the_control(
    obs: EndpointObservation, ctl: ControlObservation | None, verdict: str, stage: str | None, reason: str
) -> None:
    v = judge_endpoint(obs, ctl)
    assert (v.verdict, v.stage) == (verdict, stage)
    assert any(reason in r for r in v.reasons), v.reasons
    assert v.classifier_version == "messaging-1"


# --- services reached by name ------------------------------------------------------------------

WEB = "web.chat.example"
WURL = f"https://{WEB}/"
BODY = page("Chat web", 3000)


def _service(kind: str, h: Hop, pinned: tuple[str, ...] = ()) -> EndpointObservation:
    return EndpointObservation(kind, "web", WEB, 443, "tcp", 1.0, 0.2, hops=(h,), pinned=pinned)


def _web_ctl(**kw: object) -> ControlObservation:
    kw.setdefault("tcp_", [(SITE, 443, None)])
    kw.setdefault("tls_", [(SITE, 443, None)])
    kw.setdefault("body", BODY)
    return control(WURL, [SITE], **kw)  # type: ignore[arg-type]


def _web_hop(addrs: tuple[str, ...] = (SITE,), ctl: ControlObservation | None = None, *,
             dns_failure: str | None = None, tls_failure: str | None = None,
             reached: bool = True) -> Hop:  # fmt: skip
    ok = tls_failure is None and reached
    return hop(WURL, dns_=[dns(WEB, addrs, failure=dns_failure)],
               tcp_=[tcp(a, 443) for a in addrs] if not dns_failure else [],
               tls_=[tls(a, WEB, tls_failure) for a in addrs] if not dns_failure else [],
               http_=http(WURL, addrs[0], body=BODY) if ok and not dns_failure else None,
               control=ctl or _web_ctl())  # fmt: skip


def test_an_https_service_that_answered_over_a_verified_connection_is_ok() -> None:
    v = judge_endpoint(_service("whatsapp-web", _web_hop()), None)
    assert v.verdict == "ok" and "https/reached:200" in v.reasons


def test_a_dns_lie_about_a_service_is_hijacked_at_dns_as_for_the_web() -> None:
    v = judge_endpoint(_service("whatsapp-web", _web_hop(dns_failure="dns_nxdomain_error")), None)
    assert (v.verdict, v.stage) == ("hijacked", "dns")


def test_a_reset_handshake_the_control_completed_is_reset_at_tls() -> None:
    v = judge_endpoint(_service("signal", _web_hop(tls_failure="connection_reset")), None)
    assert (v.verdict, v.stage) == ("reset", "tls")


def test_a_service_that_fails_for_the_control_too_is_not_interference() -> None:
    ctl = _web_ctl(tcp_=[(SITE, 443, "connection_refused")], tls_=[], http_failure="connection_refused",
                   status=None, body=None)  # fmt: skip
    h = hop(WURL, dns_=[dns(WEB, [SITE])], tcp_=[tcp(SITE, 443, "connection_refused")], control=ctl)
    v = judge_endpoint(_service("telegram-web", h), None)
    assert v.verdict in ("down", "inconclusive") and v.verdict not in ("blocked", "reset")


def test_a_chat_endpoint_is_ok_once_it_accepted_the_connection() -> None:
    url = f"http://{WEB}:5222/"
    ctl = control(url, [SITE], tcp_=[(SITE, 5222, None)], body=BODY)
    h = hop(url, dns_=[dns(WEB, [SITE])], tcp_=[tcp(SITE, 5222)], control=ctl)
    obs = EndpointObservation("whatsapp", "e1", WEB, 5222, "tcp", 1.0, 0.1, hops=(h,))
    v = judge_endpoint(obs, None)
    assert v.verdict == "ok" and f"tcp/reached:{SITE}:5222" in v.reasons
    assert not any("http/" in r for r in v.reasons)  # no GET is made there: nothing to say


def test_an_unmeasured_service_is_inconclusive() -> None:
    obs = EndpointObservation("signal", "chat", WEB, 443, "tcp", 1.0, 0.0)
    assert judge_endpoint(obs, None).verdict == "inconclusive"


# --- per app, for people -----------------------------------------------------------------------


def test_an_app_is_told_in_parts_with_the_stage_of_what_failed() -> None:
    rows = [{"kind": "telegram-dc", "name": f"DC{i}", "verdict": v, "stage": s}
            for i, (v, s) in enumerate([("ok", None), ("blocked", "tcp"), ("blocked", "tcp")])]
    rows += [{"kind": "telegram-web", "name": "web", "verdict": "ok", "stage": None},
             {"kind": "signal", "name": "chat", "verdict": "down", "stage": "tcp"}]  # fmt: skip
    parts = app_parts(rows)
    assert list(parts) == ["telegram", "signal"]
    assert [p.part for p in parts["telegram"]] == ["data centres", "web"]
    lines = list(app_lines(rows, 60))
    assert lines[0].startswith("Telegram: partly reachable (data centres: 1 of 3 reached,")
    assert "2 blocked at tcp" in " ".join(" ".join(lines).split())
    assert all(len(line) <= 60 for line in lines)
    assert any(line.startswith("Signal: not reached") for line in lines)


def test_the_commands_app_choices_are_the_lists_apps() -> None:
    from probe.cli.messaging import APPS

    assert set(APPS) == set(MESSAGING_APPS.values())


def test_stored_results_are_scrubbed_of_the_probes_local_addresses() -> None:
    from probe.core.model import Verdict
    from probe.measure import localaddrs
    from probe.run.circumvention import _scrubbed

    localaddrs.note(("198.51.100.77", 40000))  # TEST-NET-2: the address a socket of ours used
    ctl = _web_ctl()
    echoed = http(WURL, SITE, body=page("Your address is 198.51.100.77", 3000))
    h = hop(WURL, dns_=[dns(WEB, [SITE])], tcp_=[tcp(SITE, 443)], tls_=[tls(SITE, WEB)], http_=echoed,
            control=ctl)  # fmt: skip
    obs = _service("whatsapp-web", h)
    (stored, _, verdict), = _scrubbed([(obs, ctl, Verdict("ok", None, None, ("x:198.51.100.77",), "m"))])
    assert stored.hops[0].http is not None and stored.hops[0].http.title == "Your address is [scrubbed]"
    assert verdict.reasons == ("x:[scrubbed]",)


def test_a_chat_endpoint_is_ok_though_the_controls_http_there_fails() -> None:
    """WhatsApp's chat port speaks no HTTP: the helper's fetch there fails for everyone, and
    says nothing against the connection the probe made."""
    url = f"http://{WEB}:5222/"
    ctl = control(url, [SITE], tcp_=[(SITE, 5222, None)], http_failure="connection_reset", status=None)
    h = hop(url, dns_=[dns(WEB, [SITE])], tcp_=[tcp(SITE, 5222)], control=ctl)
    obs = EndpointObservation("whatsapp", "e1", WEB, 5222, "tcp", 1.0, 0.1, hops=(h,))
    assert judge_endpoint(obs, None).verdict == "ok"
    refused = hop(url, dns_=[dns(WEB, [SITE])], tcp_=[tcp(SITE, 5222, "generic_timeout_error")], control=ctl)
    v = judge_endpoint(dataclasses.replace(obs, hops=(refused,)), None)
    assert (v.verdict, v.stage) == ("blocked", "tcp")  # the helper connected; we timed out


def test_an_empty_selection_and_a_bad_list_are_usage_errors(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from probe.cli import cli

    lst = tmp_path / "m.csv"
    lst.write_text(HEADER + "telegram-dc,DC1,192.0.2.50,443,,,,me\n")
    db = tmp_path / "p.db"
    r = CliRunner().invoke(cli, ["messaging", str(lst), "--app", "signal", "--db", str(db), "--accept-risks"])
    assert r.exit_code == 2 and "no messaging endpoint of signal in the lists" in r.output
    lst.write_text(HEADER + "telegram-dc,DC1,dc.example,443,,,,me\n")
    r = CliRunner().invoke(cli, ["messaging", str(lst), "--db", str(db), "--accept-risks"])
    assert r.exit_code == 2 and "m.csv:2" in r.output
    r = CliRunner().invoke(cli, ["messaging", str(lst), "--db", str(db), "--control", "http://127.0.0.1:9/",
                                 "--no-control", "--accept-risks"])  # fmt: skip
    assert r.exit_code == 2 and "exclude each other" in r.output
    assert not db.exists()  # nothing measured, nothing created
