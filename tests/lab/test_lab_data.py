"""The lab's data (scenarios, sites, block page) is consistent; no root or network needed."""

from __future__ import annotations

from probe.core.model import STAGES, VERDICTS
from probe.inputs.testlists import parse_url
from probe.lab.blockpage import BLOCKPAGE_FINGERPRINT, BLOCKPAGE_HTML
from probe.lab.scenarios import SCENARIOS, by_name, host_hex, sni_hex
from probe.lab.sites import DOMAIN, SITES, server_addresses, zone


def test_lab_has_the_scenarios_of_issues_5_12_14_and_24() -> None:
    assert sorted(s.number for s in SCENARIOS) == list(range(1, 43))
    assert len({s.name for s in SCENARIOS}) == 42
    assert [s.kind for s in SCENARIOS].count("censorship") == 17 + 8
    assert [s.kind for s in SCENARIOS].count("benign") == 15 + 1 + 1


def test_censorship_scenarios_expect_a_censorship_verdict_and_benign_ones_never_do() -> None:
    for s in SCENARIOS:
        for e in s.targets:
            assert e.verdict in VERDICTS and (e.stage is None or e.stage in STAGES), s.name
            if s.kind == "censorship":
                assert e.verdict in ("blocked", "reset", "hijacked"), s.name
            else:
                assert e.verdict in ("ok", "down", "inconclusive"), s.name


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
