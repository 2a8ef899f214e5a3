"""Which scenarios' censors can be switched on together (`probe lab censor A B`), and the words
of a refusal: pure data, no lab needed."""

from __future__ import annotations

import pytest

from probe.lab.combine import combine, conflicts, effects
from probe.lab.scenarios import SCENARIOS, Censor, by_name


def _refused(*names: str) -> list[tuple[str, str, str]]:
    return [(c.first, c.second, c.why) for c in conflicts([by_name(n) for n in names])]


@pytest.mark.parametrize("names", [
    ("dns-bogon", "tcp-reset", "tls-sni-rst"),  # three sites, three techniques
    ("http-blockpage", "forged-redirect", "broken-location"),  # one proxy, three Hosts
    ("http-blockpage", "tls-interception"),  # the proxy on port 80, the interceptor on 443
    ("quic-sni", "quic-data-drop"),  # one QUIC censor program, two addresses
    ("tls-sni-rst", "packets-injected"),  # the same RST rule, kept once
    ("encdns-address", "fet-entropy", "wireguard-first-packet"),
])  # fmt: skip
def test_techniques_on_different_traffic_combine(names: tuple[str, ...]) -> None:
    assert _refused(*names) == []
    merged = combine([by_name(n) for n in names])
    for n in names:  # nothing of any of them is lost
        for part in ("forward", "nat", "resolver", "inject_tcp", "proxy_block", "quic_sni", "programs"):
            assert set(getattr(by_name(n).censor, part)) <= set(getattr(merged, part)), (n, part)


def test_a_rule_two_scenarios_share_is_kept_once() -> None:
    merged = combine([by_name("tls-sni-rst"), by_name("packets-injected")])
    assert len(merged.forward) == len(set(merged.forward)) == len(by_name("packets-injected").censor.forward)


@pytest.mark.parametrize(("first", "second", "words"), [
    # The same name's DNS rewritten twice: the resolver has one answer per name.
    ("dns-bogon", "dns-outage", "UDP to 10.66.12.2 port 53 naming dns-bogon.lab.example"),
    # The same ClientHello dropped by one and answered with a FIN by the other.
    ("trace-drop", "tls-sni-fin", "naming tls-fin.lab.example"),
    ("tls-sni-rst", "down-everywhere", "naming tls-rst.lab.example"),
    # Every TCP connection to the sites blackholed: nothing else on TCP could show.
    ("partial-outage", "http-host-rst", "TCP"),
    # A shutdown drops everything.
    ("shutdown", "dns-nxdomain", "shutdown by"),
])  # fmt: skip
def test_techniques_on_the_same_traffic_are_refused_with_the_reason(first: str, second: str,
                                                                   words: str) -> None:  # fmt: skip
    refused = _refused(first, second)
    assert len(refused) == 1, refused
    a, b, why = refused[0]
    assert (a, b) == (first, second)
    assert words in why and f"{first} by " in why and f"; {second} by " in why


def test_two_delays_or_bandwidths_cannot_both_hold() -> None:
    slow = by_name("tunnels-slow")
    other = type(slow)(**{**slow.__dict__, "name": "slower", "latency_ms": 300.0, "censor": Censor()})
    (c,) = conflicts([slow, other])
    assert "delay" in c.why and "150" in c.why and "300" in c.why


def test_nfqueue_served_by_two_programs_is_refused() -> None:
    fet = by_name("fet-entropy")
    queue = next(r for r in fet.censor.forward if "NFQUEUE" in r)
    # A second scenario feeding the same queue with no program of its own: "nothing" serves it.
    other = type(fet)(**{**fet.__dict__, "name": "other-queue", "censor": Censor(
        forward=(queue.replace("--dport 8781", "--dport 9999"),))})  # fmt: skip
    found = conflicts([fet, other])
    assert any("NFQUEUE" in c.why for c in found), found


def test_every_scenario_combines_with_itself_and_reads_as_effects() -> None:
    for s in SCENARIOS:
        assert conflicts([s, s]) == [], s.name
        parts = effects(s)
        censor = s.censor
        assert len(parts) >= len(censor.forward) + len(censor.resolver) + len(censor.nat), s.name
