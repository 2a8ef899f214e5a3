"""DNS rules of the classifier, one behaviour per test."""

from __future__ import annotations

import pytest
from classify_helpers import (
    CDN,
    CENSOR,
    HOST,
    PAGE,
    SITE,
    URL,
    control,
    ctl,
    dns,
    has,
    hop,
    http,
    judge,
    measurement,
    page,
    plain,
    sctl,
    secure,
    tcp,
)

from probe.core.model import ControlObservation
from probe.judge.classify.dns import injection


def test_two_identical_replies_are_not_injection() -> None:
    q = dns(HOST, replies=[("NOERROR", [SITE]), ("NOERROR", [SITE])])
    assert injection(q) == 1
    v = judge(measurement(plain(dns_=[q], ctl=ctl())))
    assert v.verdict == "ok"


def test_two_different_replies_are_injection_even_when_the_first_is_genuine() -> None:
    q = dns(HOST, replies=[("NOERROR", [SITE]), ("NOERROR", [CENSOR])])
    v = judge(measurement(plain(dns_=[q], ctl=ctl())))
    assert (v.verdict, v.stage) == ("hijacked", "dns")
    assert has(v, "dns/injection:2-replies")


def test_injected_nxdomain_then_real_answer_is_injection() -> None:
    q = dns(HOST, replies=[("NXDOMAIN", []), ("NOERROR", [SITE])], failure="dns_nxdomain_error")
    v = judge(measurement(plain(dns_=[q], ctl=None, tcp_=[], http_=None)))
    assert (v.verdict, v.stage) == ("hijacked", "dns")


def test_private_answer_for_public_name_is_a_bogon_when_control_is_public() -> None:
    v = judge(
        measurement(
            plain(("192.168.1.1",), ctl(), tcp_=[tcp("192.168.1.1", 80, "generic_timeout_error")], http_=None)
        )
    )
    assert (v.verdict, v.stage, v.hop) == ("hijacked", "dns", 0)
    assert has(v, "dns/bogon:192.168.1.1")


def test_private_answer_is_not_a_bogon_when_the_control_also_resolves_privately() -> None:
    # A lab or a LAN: the control sees 10.66.2.12, the liar answers 10.10.34.34. Consistency
    # decides (inconsistent), not the bogon rule.
    m = measurement(
        plain(
            ("10.10.34.34",),
            ctl(("10.66.2.12",)),
            tcp_=[tcp("10.10.34.34", 80, "generic_timeout_error")],
            http_=None,
        )
    )
    v = judge(m, geo=True)
    assert (v.verdict, v.stage) == ("hijacked", "dns")
    assert has(v, "dns/inconsistent:10.10.34.34")
    assert not has(v, "dns/bogon")


def test_private_answer_seen_by_the_control_too_is_consistent() -> None:
    url = "http://clean.lab.example/"
    m = measurement(
        hop(
            url,
            dns_=[dns("clean.lab.example", ["10.66.2.10"])],
            tcp_=[tcp("10.66.2.10")],
            http_=http(url, "10.66.2.10", body=PAGE),
            control=control(url, ["10.66.2.10"], tcp_=[("10.66.2.10", 80, None)], body=PAGE),
        )
    )
    assert judge(m).verdict == "ok"


def test_loopback_answer_for_a_special_use_name_proves_nothing_without_control() -> None:
    url = "http://site.test/"
    m = measurement(
        hop(
            url,
            dns_=[dns("site.test", ["127.0.0.1"])],
            tcp_=[tcp("127.0.0.1")],
            http_=http(url, "127.0.0.1", body=PAGE),
        )
    )
    v = judge(m)
    assert v.verdict == "inconclusive"
    assert not has(v, "dns/bogon") and not has(v, "dns/blockpage")


def test_loopback_answer_for_a_public_name_without_control_is_hijacked() -> None:
    v = judge(
        measurement(
            plain(("127.0.0.1",), None, tcp_=[tcp("127.0.0.1", 80, "connection_refused")], http_=None)
        )
    )
    assert (v.verdict, v.stage) == ("hijacked", "dns")
    assert has(v, "dns/bogon:127.0.0.1")


def test_unspecified_address_is_a_bogon_for_any_name() -> None:
    url = "http://blocked.lab.example/"
    m = measurement(
        hop(
            url,
            dns_=[dns("blocked.lab.example", ["0.0.0.0"])],
            tcp_=[tcp("0.0.0.0", 80, "connection_refused")],
        )
    )
    v = judge(m)
    assert v.verdict == "hijacked" and has(v, "dns/bogon:0.0.0.0")


def test_known_block_page_ip_is_hijacked_and_named() -> None:
    v = judge(
        measurement(
            plain(("8.7.198.45",), ctl(), tcp_=[tcp("8.7.198.45", 80, "generic_timeout_error")], http_=None)
        )
    )
    assert v.verdict == "hijacked" and has(v, "dns/blockpage:ooni.cn_0@8.7.198.45")


def test_known_block_page_cname_is_hijacked() -> None:
    q = dns(HOST, [CENSOR], cnames=["restricted.tri.co.id."])
    v = judge(
        measurement(plain((CENSOR,), ctl(), dns_=[q], http_=http(URL, CENSOR, body=page("Blocked", 500))))
    )
    assert v.verdict == "hijacked" and has(v, "dns/blockpage:ooni.id_41@restricted.tri.co.id")


def test_block_page_ip_the_control_also_sees_is_not_evidence() -> None:
    v = judge(
        measurement(plain(("8.7.198.45",), ctl(("8.7.198.45",)), http_=http(URL, "8.7.198.45", body=PAGE)))
    )
    assert v.verdict == "ok"


@pytest.mark.parametrize(
    ("failure", "reason"),
    [
        ("dns_nxdomain_error", "dns/nxdomain"),
        ("dns_no_answer", "dns/no-answer"),
        ("dns_servfail_error", "dns/servfail"),
        ("dns_refused_error", "dns/refused"),
    ],
)
def test_resolver_error_while_the_control_resolves_is_hijacked(failure: str, reason: str) -> None:
    v = judge(measurement(plain((), ctl(), dns_=[dns(HOST, failure=failure)], tcp_=[], http_=None)))
    assert (v.verdict, v.stage, v.hop) == ("hijacked", "dns", 0)
    assert reason in v.reasons


def test_timeout_while_the_control_resolves_is_blocked() -> None:
    v = judge(
        measurement(plain((), ctl(), dns_=[dns(HOST, failure="generic_timeout_error")], tcp_=[], http_=None))
    )
    assert (v.verdict, v.stage) == ("blocked", "dns")


def test_aaaa_timeout_for_an_ipv4_only_site_decides_nothing() -> None:
    qs = [dns(HOST, [SITE]), dns(HOST, qtype="AAAA", failure="generic_timeout_error")]
    v = judge(measurement(plain(ctl=ctl(), dns_=qs)))
    assert v.verdict == "ok" and has(v, "dns/timeout")


def test_timeout_without_control_is_inconclusive() -> None:
    v = judge(
        measurement(plain((), None, dns_=[dns(HOST, failure="generic_timeout_error")], tcp_=[], http_=None))
    )
    assert (v.verdict, v.stage) == ("inconclusive", "dns")


def test_nxdomain_for_everyone_is_down() -> None:
    c = control(URL, (), dns_failure="dns_nxdomain_error", http_failure="dns_nxdomain_error")
    v = judge(measurement(plain((), c, dns_=[dns(HOST, failure="dns_nxdomain_error")], tcp_=[], http_=None)))
    assert (v.verdict, v.stage) == ("down", "dns")


def test_addresses_while_the_control_gets_nxdomain_are_hijacked() -> None:
    c = control(URL, (), dns_failure="dns_nxdomain_error", http_failure="dns_nxdomain_error")
    v = judge(measurement(plain((CENSOR,), c, http_=http(URL, CENSOR, body=page("Landing", 900)))))
    assert v.verdict == "hijacked" and has(v, "dns/answer-for-nxdomain:203.0.113.66")


def test_inconsistent_answer_serving_another_page_is_hijacked() -> None:
    v = judge(
        measurement(plain((CENSOR,), ctl(), http_=http(URL, CENSOR, body=page("Access restricted", 700))))
    )
    assert (v.verdict, v.stage) == ("hijacked", "dns")
    assert has(v, "dns/inconsistent:203.0.113.66") and has(v, "http/diff")


def test_same_asn_is_consistent_only_with_ip_data() -> None:
    other_page = page("Mirror", 600)
    m = measurement(plain((CDN,), ctl(("198.51.100.99",)), http_=http(URL, CDN, body=other_page)))
    with_geo = judge(m, geo=True)
    assert has(with_geo, "dns/consistent:asn")
    assert with_geo.stage != "dns"
    without = judge(m)
    assert (without.verdict, without.stage) == ("hijacked", "dns")


def test_helper_ip_info_asns_stand_in_for_missing_ip_data() -> None:
    from dataclasses import replace

    c: ControlObservation = ctl(("198.51.100.99",))
    c = replace(c, ip_info=((CDN, 64497, "probe"), ("198.51.100.99", 64497, "th")))
    v = judge(measurement(plain((CDN,), c, http_=http(URL, CDN, body=page("Mirror", 600)))))
    assert has(v, "dns/consistent:asn")


def test_valid_certificate_from_another_address_is_consistent() -> None:
    v = judge(measurement(secure((CENSOR,), sctl())))
    assert v.verdict == "ok" and has(v, "dns/consistent:tls")


def test_control_tls_to_the_probes_address_is_consistent() -> None:
    c = control(URL, (SITE,), tcp_=[(CENSOR, 80, None)], tls_=[(CENSOR, 443, None)], body=PAGE)
    v = judge(measurement(plain((CENSOR,), c, http_=http(URL, CENSOR, body=page("Other", 300)))))
    assert has(v, "dns/consistent:control-tls")
    assert v.stage != "dns"


def test_doh_control_is_used_when_the_helper_is_missing() -> None:
    h = plain((CENSOR,), None, http_=http(URL, CENSOR, body=page("Access restricted", 700)))
    from dataclasses import replace

    h = replace(h, dns_control=(dns(HOST, [SITE], resolver="doh:https://127.0.0.1/dns-query"),))
    v = judge(measurement(h))
    assert (v.verdict, v.stage) == ("hijacked", "dns")


def test_ip_literal_url_has_no_dns_stage() -> None:
    url = f"http://{SITE}/"
    m = measurement(
        hop(
            url,
            tcp_=[tcp(SITE)],
            http_=http(url, SITE, body=PAGE),
            control=control(url, (SITE,), tcp_=[(SITE, 80, None)], body=PAGE),
        )
    )
    v = judge(m)
    assert v.verdict == "ok" and not any(r.startswith("dns/") for r in v.reasons)


def test_helper_ip_info_valid_for_domain_flag_is_consistent() -> None:
    from dataclasses import replace

    c = replace(ctl(), ip_info=((CENSOR, 0, "resolved_by_probe,valid_for_domain"),))
    v = judge(measurement(plain((CENSOR,), c, http_=http(URL, CENSOR, body=page("Other", 300)))))
    assert has(v, "dns/consistent:control-tls")


def test_cdn_bot_challenge_from_another_address_is_not_a_dns_lie() -> None:
    captcha = page("Just a moment...", 4000)
    v = judge(measurement(plain((CENSOR,), ctl(), http_=http(URL, CENSOR, status=403, body=captcha))))
    assert has(v, "dns/consistent:false-positive")
    assert (v.verdict, v.stage) == ("inconclusive", "http")
