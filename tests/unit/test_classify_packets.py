"""Packet-level evidence (probe/judge/classify/packets.py) on recorded packet metadata.

The packets below are the metadata the lab's capture recorded (TTLs, IP IDs, DF) for the
scenarios of docs/packets.md: a server 4 routers away (TTL 64 -> 60), a censor at hop 3 whose
kernel resets (TTL 64 -> 62, IP ID 0, DF), a scapy injector (TTL 62, IP ID 1, no DF) and a
TTL-copying injector (TTL 60, no DF, random IP ID).
"""

from __future__ import annotations

import contextlib
import dataclasses

from classify_helpers import SITE, URL, dns, has, http, judge, measurement, plain, sctl, secure, tcp, tls

from probe.core.model import DNSObservation, DNSReply, HTTPObservation, Packet, TLSObservation
from probe.core.model import packet_digest as digest
from probe.judge.classify.packets import judge_flow

LOCAL = 40312
SYN_ACK = Packet(1.0, "tcp", SITE, 443, LOCAL, 60, 0, True, "SA", 64240, 1000, 5001, 0, 0)
SERVER_DATA = Packet(1.1, "tcp", SITE, 443, LOCAL, 60, 4711, True, "PA", 501, 1001, 5518, 1, 517, 1400)


def _rst(ttl: int, ip_id: int, df: bool, flags: str = "R") -> Packet:
    return Packet(1.05, "tcp", SITE, 443, LOCAL, ttl, ip_id, df, flags, 0, 5001, 0, None, None)


def _tls_reset(packets: tuple[Packet, ...], control: bool = True, failure: str = "connection_reset"):
    h = secure(ctl=sctl() if control else None, tls_=[tls(SITE, "news.example.com", failure)],
               http_=None)
    return dataclasses.replace(measurement(h), captured=True, packets=packets)


def test_censor_kernel_rst_two_hops_closer_is_injected_by_ttl() -> None:
    v = judge(_tls_reset((SYN_ACK, _rst(62, 0, True))))
    assert (v.verdict, v.stage) == ("reset", "tls")
    assert has(v, f"tcp/injected-rst:ttl-delta=2@{SITE}")


def test_ttl_copying_injector_is_caught_by_ip_id_and_df() -> None:
    v = judge(_tls_reset((SYN_ACK, _rst(60, 31337, False))))
    assert v.verdict == "reset"
    assert has(v, "tcp/injected-rst:ip-id")


def test_injected_rst_decides_even_without_a_control() -> None:
    without = judge(_tls_reset((), control=False))
    assert without.verdict == "inconclusive"
    v = judge(_tls_reset((SYN_ACK, _rst(62, 1, False)), control=False))
    assert (v.verdict, v.stage) == ("reset", "tls")


def test_reset_with_the_servers_own_ttl_and_ip_id_is_withdrawn() -> None:
    v = judge(_tls_reset((SYN_ACK, _rst(60, 0, True))))
    assert v.verdict == "inconclusive"
    assert has(v, "tcp/server-rst:ttl=60")


def test_server_rst_after_data_fits_its_ip_id_counter() -> None:
    rst = dataclasses.replace(_rst(60, 4712, True), seq=1518)
    assert judge_flow(rst, [SYN_ACK, SERVER_DATA]) == judge_flow(rst, [SERVER_DATA])
    j = judge_flow(rst, [SYN_ACK, SERVER_DATA])
    assert j is not None and not j.injected


def test_one_hop_of_ttl_difference_alone_is_not_injection() -> None:
    j = judge_flow(_rst(61, 0, True), [SYN_ACK])
    assert j is not None and not j.injected


def test_injected_fin_is_named_fin() -> None:
    v = judge(_tls_reset((SYN_ACK, _rst(62, 1, False, "FA")), failure="eof_error"))
    assert v.verdict == "reset" and has(v, "tcp/injected-fin:ttl-delta=2")


def test_without_capture_nothing_changes() -> None:
    v = judge(_tls_reset(()))
    assert (v.verdict, v.stage) == ("reset", "tls")
    assert not has(v, "injected") and not has(v, "server-rst")


def _dns_pair(forged_ttl: int, genuine_ttl: int, forged_df: bool = False):
    forged = DNSReply(0.01, "10.66.2.53:53", "NOERROR", ("203.0.113.7",), raw=b"forged")
    genuine = DNSReply(0.02, "10.66.2.53:53", "NOERROR", (SITE,), raw=b"genuine")
    q = dataclasses.replace(dns("news.example.com", (SITE,)), addresses=("203.0.113.7",),
                            replies=(forged, genuine))
    pk = (Packet(1.0, "udp", "10.66.2.53", 53, 5353, forged_ttl, 1, forged_df, payload=6,
                 digest=digest(b"forged")),
          Packet(1.01, "udp", "10.66.2.53", 53, 5353, genuine_ttl, 0, True, payload=7,
                 digest=digest(b"genuine")))
    h = plain(("203.0.113.7",), ctl=_ctl(), dns_=[q], http_=None, tcp_=[tcp("203.0.113.7")])
    return dataclasses.replace(measurement(h), captured=True, packets=pk)


def _ctl():
    from classify_helpers import ctl

    return ctl()


def test_dns_reply_from_closer_than_the_resolver_is_injected() -> None:
    v = judge(_dns_pair(62, 60))
    assert (v.verdict, v.stage) == ("hijacked", "dns")
    assert has(v, "dns/injected:ttl-delta=2")
    assert has(v, "dns/injection:2-replies")  # the capture-free evidence stays


def test_dns_replies_without_capture_keep_the_reply_count_evidence() -> None:
    m = dataclasses.replace(_dns_pair(62, 60), captured=False, packets=())
    v = judge(m)
    assert v.verdict == "hijacked" and has(v, "dns/injection:2-replies")
    assert not has(v, "dns/injected:")


def test_junk_from_the_resolvers_address_is_no_injection_evidence() -> None:
    # A junk flood (garbage, another id, another question) from the resolver's address, sent
    # from another distance: kept as MALFORMED evidence, it never answered the query, so its
    # TTL says nothing about who answered (26 of 600 clean URLs were hijacked this way).
    genuine = DNSReply(0.01, "10.66.2.53:53", "NOERROR", (SITE,), raw=b"genuine")
    junk = (DNSReply(0.011, "10.66.2.53:53", "MALFORMED", raw=b"junk-1"),
            DNSReply(0.012, "10.66.2.53:53", "MALFORMED", ("10.10.34.34",), raw=b"junk-2"))
    q = dataclasses.replace(dns("news.example.com", (SITE,)), replies=(genuine, *junk))
    pk = tuple(Packet(1.0 + i / 100, "udp", "10.66.2.53", 53, 5353, ttl, i, False, payload=6,
                      digest=digest(raw)) for i, (ttl, raw) in
               enumerate(((60, b"genuine"), (50, b"junk-1"), (50, b"junk-2"))))
    h = plain((SITE,), ctl=_ctl(), dns_=[q])
    v = judge(dataclasses.replace(measurement(h), captured=True, packets=pk))
    assert v.verdict == "ok", v
    assert not has(v, "dns/injected:")


def test_an_answer_from_an_address_without_dns_server_the_control_contradicts_is_injected() -> None:
    probe_q = DNSObservation("news.example.com", "A", "udp://10.66.2.99:53", "udp", 0.0, 0.01,
                             None, ("203.0.113.7",),
                             (DNSReply(0.005, "10.66.2.99:53", "NOERROR", ("203.0.113.7",)),))
    h = dataclasses.replace(plain(ctl=_ctl()), dns_probe=(probe_q,))
    v = judge(measurement(h))
    assert (v.verdict, v.stage) == ("hijacked", "dns")
    assert has(v, "dns/injected:no-resolver@10.66.2.99")


def test_the_true_answer_from_an_address_without_dns_server_is_interception_not_injection() -> None:
    # An ISP that redirects all DNS to an honest resolver: before, every site was hijacked.
    probe_q = DNSObservation("news.example.com", "A", "udp://10.66.2.99:53", "udp", 0.0, 0.01,
                             None, (SITE,), (DNSReply(0.005, "10.66.2.99:53", "NOERROR", (SITE,)),))
    h = dataclasses.replace(plain(ctl=_ctl()), dns_probe=(probe_q,))
    v = judge(measurement(h))
    assert v.verdict == "ok", v
    assert has(v, "dns/intercepted:no-resolver@10.66.2.99") and not has(v, "dns/injected")


def test_silence_from_an_address_without_dns_server_is_no_evidence() -> None:
    probe_q = DNSObservation("news.example.com", "A", "udp://10.66.2.99:53", "udp", 0.0, 0.01,
                             "connection_refused")
    h = dataclasses.replace(plain(ctl=_ctl()), dns_probe=(probe_q,))
    assert judge(measurement(h)).verdict == "ok"


def _decoy_tls(failure: str | None) -> TLSObservation:
    return TLSObservation(SITE, 443, "decoy.example", 0.0, 0.01, failure)


def test_decoy_sni_success_means_sni_filtering() -> None:
    h = secure(ctl=None, tls_=[tls(SITE, "news.example.com", "connection_reset")], http_=None)
    v = judge(measurement(dataclasses.replace(h, decoy_tls=(_decoy_tls(None),))))
    assert (v.verdict, v.stage) == ("reset", "tls")
    assert has(v, "tls/sni-filtered:decoy=decoy.example")


def test_decoy_sni_failure_means_the_address_is_blocked() -> None:
    h = secure(ctl=sctl(), tls_=[tls(SITE, "news.example.com", "generic_timeout_error")], http_=None)
    v = judge(measurement(dataclasses.replace(h, decoy_tls=(_decoy_tls("generic_timeout_error"),))))
    assert v.verdict == "blocked"
    assert has(v, "tls/address-blocked:decoy-failed:generic_timeout_error")


def test_decoy_host_success_means_host_filtering() -> None:
    decoy = HTTPObservation("http://decoy.example/", SITE, 80, 0.0, 0.01, None, 200)
    h = plain(ctl=None, http_=http(URL, SITE, failure="connection_reset"))
    v = judge(measurement(dataclasses.replace(h, decoy_http=(decoy,))))
    assert (v.verdict, v.stage) == ("reset", "http")
    assert has(v, "http/host-filtered:decoy=decoy.example")


def test_decoy_host_failure_means_the_address_is_blocked() -> None:
    decoy = HTTPObservation("http://decoy.example/", SITE, 80, 0.0, 0.01, "connection_reset")
    h = plain(ctl=None, http_=http(URL, SITE, failure="connection_reset"))
    v = judge(measurement(dataclasses.replace(h, decoy_http=(decoy,))))
    assert has(v, "http/address-blocked:decoy-failed:connection_reset")


def test_packets_round_trip_through_json() -> None:
    from probe.core.codec import from_data, to_data
    from probe.core.model import Measurement

    m = _tls_reset((SYN_ACK, _rst(62, 0, True)))
    assert from_data(Measurement, to_data(m)) == m


@contextlib.contextmanager
def _stored_reset(tmp_path):  # type: ignore[no-untyped-def]
    """A store holding one judged measurement: a TLS reset with its SYN-ACK (TTL 60) and RST (62)."""
    from probe.judge.classify import classify
    from probe.store import Store

    m = _tls_reset((SYN_ACK, _rst(62, 0, True)))
    with Store.open(tmp_path / "p.db") as store:
        vid = store.vantage("test")
        store.write(store.start_run(vid, [], {}), vid, [(m, classify(m))])
        yield store, m


def test_packets_are_stored_in_their_table_and_come_back(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with _stored_reset(tmp_path) as (store, m):
        rows = store.conn.execute("SELECT idx, flags, ttl, ip_id, df FROM packets ORDER BY idx").fetchall()
        assert rows == [(0, "SA", 60, 0, 1), (1, "R", 62, 0, 1)]
        ((_, back, v),) = list(store.iter_judged())
        assert back.packets == m.packets and back.captured
        assert "tcp/injected-rst:ttl-delta=2@192.0.2.10" in v.reasons


def test_show_lists_the_captured_packets_behind_the_verdict(tmp_path) -> None:  # type: ignore[no-untyped-def]
    # `probe show` prints the tells the verdict rests on: the SYN-ACK at TTL 60, the RST at 62.
    from probe.present.evidence import evidence, render_text

    with _stored_reset(tmp_path) as (store, _m):
        mid = store.conn.execute("SELECT id FROM measurements").fetchone()[0]
        ev = evidence(store, mid)
    assert [(p["flags"], p["ttl"], p["t"]) for p in ev["packets"]] == [("SA", 60, 0.0), ("R", 62, 0.05)]
    lines = list(render_text(ev, width=80))
    assert all(len(line) <= 80 for line in lines)
    text = "\n".join(lines)
    assert "packets captured (2)" in text
    assert f"+0 ms tcp {SITE}:443 ttl 60 id 0 DF SA win 64240 seq +0 ack +0 0 B" in text
    assert f"+50 ms tcp {SITE}:443 ttl 62 id 0 DF R win 0 0 B" in text
