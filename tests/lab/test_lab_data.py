"""The lab's data (scenarios, sites, block page) is consistent; no root or network needed."""

from __future__ import annotations

import pytest

from probe.core.model import INTERFERENCE_VERDICTS, STAGES, VERDICTS
from probe.inputs.endpointlists import KINDS
from probe.inputs.testlists import parse_url
from probe.lab.blockpage import BLOCKPAGE_FINGERPRINT, BLOCKPAGE_HTML
from probe.lab.catalogue import GROUPS, NOT_IN_LAB, by_group, select, terms
from probe.lab.scenarios import (
    SCENARIOS,
    EndpointExpect,
    Expect,
    Expectation,
    TraceExpect,
    by_name,
    host_hex,
    sni_hex,
)
from probe.lab.sites import DOMAIN, SITES, server_addresses, zone


def test_lab_has_the_scenarios_of_issues_5_12_14_24_26_and_27() -> None:
    assert sorted(s.number for s in SCENARIOS) == list(range(1, 85))
    assert len({s.name for s in SCENARIOS}) == 84
    # issues 5 and 12, 14, 26 (QUIC/ECH: 42-51), 26 (encrypted DNS and VPN protocols: 52-60),
    # 24 (DNS interception, 61), 27 (the catalogue: 62-78; messaging apps: 79-84)
    assert [s.kind for s in SCENARIOS].count("censorship") == 17 + 8 + 5 + 6 + 11 + 4
    assert [s.kind for s in SCENARIOS].count("benign") == 15 + 1 + 5 + 3 + 1 + 6 + 2
    assert [s.number for s in SCENARIOS if s.endpoints] == [*range(52, 61), 70, 71, 72, *range(79, 85)]


def test_circumvention_scenarios_censor_something_and_their_benign_twins_nothing() -> None:
    suites = [s for s in SCENARIOS if s.endpoints]
    for s in suites:
        assert not s.targets and all(e.kind in KINDS and e.verdict in VERDICTS for e in s.endpoints), s.name
        flagged = [e for e in s.endpoints if e.verdict in INTERFERENCE_VERDICTS]
        assert bool(flagged) == (s.kind == "censorship"), s.name
    # Every kind a censored scenario blocks is also measured by a benign one (its twin).
    blocked = {e.kind for s in suites if s.kind == "censorship" for e in s.endpoints}
    benign = {e.kind for s in suites if s.kind == "benign" for e in s.endpoints}
    assert blocked <= benign and {"doh", "dot", "fet", "wireguard", "tor", "openvpn-tcp"} <= blocked
    assert {"telegram-dc", "telegram-web", "whatsapp", "whatsapp-web", "signal"} <= benign
    assert {"telegram-dc", "whatsapp", "whatsapp-web", "signal"} <= blocked


def test_messaging_scenarios_use_lab_stand_ins_never_the_apps_addresses() -> None:
    from probe.inputs.endpointlists import MESSAGING_APPS, MESSAGING_LIST, load_endpoints
    from probe.lab.messaging import is_messaging

    real = {e.address for e in load_endpoints([MESSAGING_LIST])}
    for s in SCENARIOS:
        if not is_messaging(s):
            assert not any(e.kind in MESSAGING_APPS for e in s.endpoints), s.name
            continue
        for e in s.endpoints:
            assert e.address not in real, (s.name, e.address)
            assert e.address.endswith("." + DOMAIN) or e.address.startswith("10.66.2."), (s.name, e.address)
        assert len({e.name for e in s.endpoints}) == len(s.endpoints), s.name  # read back by name


def _flags(e: Expectation) -> set[str]:
    """What an expectation calls interference: censorship verdicts, a censor named by a trace,
    an outage."""
    if isinstance(e, Expect):
        return {e.verdict, *(v for _, v, _ in e.protocols)} & {*INTERFERENCE_VERDICTS, "throttled"}
    if isinstance(e, EndpointExpect):
        return {e.verdict} & set(INTERFERENCE_VERDICTS)
    if isinstance(e, TraceExpect):
        return {"censor"} if e.censor_hop is not None else set()
    return set(e.states)


def test_every_censorship_scenario_names_a_benign_twin_that_flags_nothing() -> None:
    for s in SCENARIOS:
        if s.kind != "censorship":
            assert not s.twin, f"{s.name}: only censorship scenarios have twins"
            continue
        assert s.twin, f"{s.name} names no benign twin"
        twin = by_name(s.twin)
        assert twin.kind == "benign" and twin.group == s.group, (s.name, twin.name)
        assert not any(_flags(e) for e in twin.expectations), twin.name
        assert any(_flags(e) for e in s.expectations), s.name


def test_every_scenario_is_in_a_group_and_every_group_has_censorship_and_twins() -> None:
    assert not set(GROUPS) & {s.name for s in SCENARIOS}  # `probe lab run NAME` is never ambiguous
    assert {s.group for s in SCENARIOS} == set(GROUPS)
    for group in GROUPS:
        kinds = {s.kind for s in by_group(group)}
        assert kinds == {"censorship", "benign"}, group
    assert select(["trace", "trace-drop"]) == by_group("trace")
    assert select([]) == tuple(s for g in GROUPS for s in by_group(g))
    with pytest.raises(KeyError, match="groups: web, packets"):
        select(["no-such-thing"])


def test_every_term_the_judges_name_is_reproduced_or_said_why_not() -> None:
    found = terms()
    missing = [t.key for t in found if not t.scenarios and not t.why_not]
    assert not missing, f"no scenario reproduces these, and NOT_IN_LAB says nothing of them: {missing}"
    stale = [(t.key, t.scenarios) for t in found if t.scenarios and t.why_not]
    assert not stale, f"NOT_IN_LAB explains terms a scenario reproduces: {stale}"
    assert set(NOT_IN_LAB) <= {t.key for t in found}, "NOT_IN_LAB names terms the judges do not"
    # Every verdict, every trace technique but an injected response, every outage state a
    # single run can show.
    assert all(t.scenarios for t in found if t.kind == "verdict")
    assert {t.code for t in found if t.kind == "trace" and t.scenarios} == {"rst", "fin", "drop"}
    assert {t.code for t in found if t.kind == "outage" and t.scenarios} == {"full", "dns", "isolated",
                                                                            "partial"}


def test_expected_reasons_are_reason_codes() -> None:
    for s in SCENARIOS:
        for e in s.targets:
            for reason in (e.reason, *e.evidence, *(r for _, _, r in e.protocols)):
                assert reason is None or "/" in reason.partition(":")[0], (s.name, reason)
        for ep in s.endpoints:
            assert ep.reason is None or "/" in ep.reason.partition(":")[0], (s.name, ep.reason)


def test_censorship_scenarios_expect_a_censorship_verdict_and_benign_ones_never_do() -> None:
    for s in SCENARIOS:
        for e in s.targets:
            assert e.verdict in VERDICTS and (e.stage is None or e.stage in STAGES), s.name
            # The web verdict, or a protocol test's (QUIC, ECH: the web one stays ok there).
            verdicts = {e.verdict, *(verdict for _, verdict, _ in e.protocols)}
            assert all(v in VERDICTS for v in verdicts), s.name
            if s.kind == "benign":
                assert verdicts <= {"ok", "down", "inconclusive"}, s.name
        if s.kind == "censorship" and s.targets:
            assert {v for e in s.targets for v in (e.verdict, *(v for _, v, _ in e.protocols))} & {
                "blocked", "reset", "hijacked", "throttled"}, s.name


def test_protocol_scenarios_ask_for_their_test_and_keep_the_web_verdict_ok() -> None:
    for s in SCENARIOS:
        for e in s.targets:
            for suite, _, _ in e.protocols:
                assert f"--{suite}" in s.probe_args, s.name
                assert e.verdict == "ok", s.name


def test_every_scenario_url_names_a_lab_site() -> None:
    names = {site.name for site in SITES}
    for s in SCENARIOS:
        for e in s.targets:
            host = parse_url(e.url).host
            # Under lab.example, except the public-looking name of the issue 12 case (a public
            # name on a private address), which the lab's zone serves like any other.
            assert host.endswith("." + DOMAIN) or host == "private-news.probe-lab.net", e.url
            assert host in names, e.url


def test_zone_has_every_site_with_an_address_and_nothing_else_of_the_sites() -> None:
    z = zone()
    for site in SITES:
        assert (site.name in z) == (site.ip is not None), site.name
    assert "does-not-exist.lab.example" not in z


def test_site_addresses_are_unique_and_in_the_server_subnet() -> None:
    addrs = server_addresses()
    assert len(addrs) == len(set(addrs))
    assert all(a.startswith("10.66.2.") for a in addrs)


def test_sni_pattern_includes_the_length_so_longer_names_do_not_match() -> None:
    assert sni_hex("a.example") == "|000009|a.example"
    assert host_hex("a.example") == "Host:|20|a.example|0d0a|"


def test_block_page_matches_exactly_its_ooni_fingerprint() -> None:
    from probe.inputs.fingerprints import default_fingerprints

    fps = default_fingerprints()
    headers = [("content-type", "text/html; charset=utf-8")]
    assert [f.name for f in fps.blockpages(BLOCKPAGE_HTML, headers)] == [BLOCKPAGE_FINGERPRINT]
    assert fps.false_positives(BLOCKPAGE_HTML, headers) == []


def test_scenario_lookup_names_the_known_scenarios_on_a_typo() -> None:
    assert by_name("dns-injection").number == 4
    try:
        by_name("dns-injektion")
    except KeyError as exc:
        assert "dns-injection" in str(exc)
    else:
        raise AssertionError("a typo must raise KeyError")


def test_quic_censor_reads_the_sni_of_a_clients_initial() -> None:
    from aioquic.quic.configuration import QuicConfiguration
    from aioquic.quic.connection import QuicConnection

    from probe.lab.quiccensor import initial_sni

    config = QuicConfiguration(is_client=True, alpn_protocols=["h3"], server_name="quic-sni.lab.example")
    conn = QuicConnection(configuration=config)
    conn.connect(("10.66.2.81", 443), now=0.0)
    (datagram, _), = conn.datagrams_to_send(now=0.0)
    assert initial_sni(datagram) == "quic-sni.lab.example"
    assert initial_sni(b"\x00" * 1200) is None  # a short-header packet: not inspected
    assert initial_sni(datagram[:200]) is None  # truncated: cannot be decrypted


def test_quic_censor_tells_application_data_from_the_handshake() -> None:
    from aioquic.quic.configuration import QuicConfiguration
    from aioquic.quic.connection import QuicConnection

    from probe.lab.quiccensor import carries_data

    conn = QuicConnection(configuration=QuicConfiguration(is_client=True, alpn_protocols=["h3"],
                                                          server_name="quic-data.lab.example"))
    conn.connect(("10.66.2.87", 443), now=0.0)
    (initial, _), = conn.datagrams_to_send(now=0.0)
    assert not carries_data(initial)  # a long-header Initial, padded with zeros to 1200 bytes
    assert carries_data(bytes([0x41]) + bytes(40))  # a short-header (1-RTT) packet
    assert carries_data(initial[:initial.index(bytes(8))] + bytes([0x5f]) + bytes(30))  # coalesced
    assert not carries_data(b"")
