"""Network identity and privacy: STUN messages, vantage names, overrides, and the scrubber."""

from __future__ import annotations

import dataclasses
import struct

import pytest

from probe.core.model import DNSReply
from probe.core.settings import DEFAULT_STUN_FALLBACK, IdentityConfig
from probe.lab.stun import binding_response
from probe.measure.identity import Identity, _parse_stun, vantage_name
from probe.run.scrub import SCRUBBED, Scrubber

TXID = bytes(range(12))
REQUEST = struct.pack("!HHI", 1, 0, 0x2112A442) + TXID


# --- STUN -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("ip", ["192.0.2.77", "2001:db8::77"])
def test_stun_binding_response_round_trips_the_mapped_address(ip: str) -> None:
    response = binding_response(REQUEST, ip, 54321)
    assert response is not None
    assert _parse_stun(response, TXID) == ip


def test_stun_reply_for_another_transaction_is_ignored() -> None:
    response = binding_response(REQUEST, "192.0.2.77", 1)
    assert response is not None
    assert _parse_stun(response, bytes(12)) is None  # a spoofed or stale reply sets nothing


@pytest.mark.parametrize("junk", [b"", b"\x01\x01" + b"\0" * 10, b"x" * 64,
                                  struct.pack("!HHI", 0x0111, 0, 0x2112A442) + TXID])
def test_junk_and_error_replies_give_no_address(junk: bytes) -> None:
    assert _parse_stun(junk, TXID) is None


def test_xor_mapped_address_wins_over_a_rewritten_mapped_address() -> None:
    response = binding_response(REQUEST, "192.0.2.77", 1)
    assert response is not None
    # A NAT rewriting addresses in payloads mangles MAPPED-ADDRESS; XOR-MAPPED-ADDRESS survives.
    mangled = response.replace(bytes([192, 0, 2, 77]), bytes([10, 0, 0, 1]))
    assert _parse_stun(mangled, TXID) == "192.0.2.77"


def test_stun_server_ignores_what_is_not_a_binding_request() -> None:
    assert binding_response(b"GET / HTTP/1.0\r\n\r\n", "192.0.2.1", 1) is None
    assert binding_response(REQUEST[:19], "192.0.2.1", 1) is None


# --- identity -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("ident", "name"),
    [
        (Identity(asn=12389, country="RU"), "AS12389-RU"),
        (Identity(asn=4134), "AS4134"),
        (Identity(country="KZ"), "unknown-KZ"),
        (Identity(), "unknown"),
    ],
)
def test_vantage_name_is_derived_from_the_network(ident: Identity, name: str) -> None:
    assert vantage_name(ident) == name


def test_same_network_needs_the_same_as_and_a_shared_address() -> None:
    a = Identity(asn=64501, country="XA", public_ips=frozenset({"192.0.2.1", "192.0.2.2"}))
    assert a.same_network(dataclasses.replace(a, public_ips=frozenset({"192.0.2.2"})))  # CGN pool
    assert not a.same_network(dataclasses.replace(a, public_ips=frozenset({"192.0.2.9"})))
    assert not a.same_network(dataclasses.replace(a, asn=64502))


def test_identity_record_never_holds_the_probe_addresses() -> None:
    ident = Identity(asn=64501, as_org="LAB", country="XA", resolver_ip="198.51.100.53",
                     public_ips=frozenset({"192.0.2.1"}), local_ips=frozenset({"10.0.0.5"}))
    text = repr(ident.record()) + repr(ident) + ident.describe()
    assert "192.0.2.1" not in text and "10.0.0.5" not in text
    assert ident.describe() == "network AS64501 LAB XA"
    long = dataclasses.replace(ident, as_org="A VERY LONG ORGANISATION NAME INDEED", resolver_asn=64502)
    assert len(long.describe()) <= 70 and long.describe().endswith(", resolver AS64502")
    assert Identity(failures=("stun 127.0.0.1:9: connection_refused",)).describe() == (
        "network unknown (no STUN server answered)")


def test_identity_config_flags_then_environment_then_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROBE_STUN_SERVERS", "127.0.0.1:3478, 127.0.0.2:3478")
    monkeypatch.setenv("PROBE_WHOAMI_NAMES", "none")
    cfg = IdentityConfig.from_options()
    assert cfg.stun_servers == ("127.0.0.1:3478", "127.0.0.2:3478") and cfg.whoami_names == ()
    assert IdentityConfig.from_options(["127.0.0.9:1"]).stun_servers == ("127.0.0.9:1",)
    off = IdentityConfig.from_options(["127.0.0.9:1"], enabled=False)
    assert off.stun_servers == () and off.whoami_names == () and not off.ask_helpers
    # Servers given replace both default sets: the fallback servers are asked only by default.
    assert IdentityConfig.from_options().stun_fallback == ()
    monkeypatch.delenv("PROBE_STUN_SERVERS")
    assert IdentityConfig.from_options().stun_fallback == DEFAULT_STUN_FALLBACK


# --- scrubbing ------------------------------------------------------------------------------------
def test_scrubber_replaces_whole_addresses_only() -> None:
    s = Scrubber(["10.1.2.3", "2001:db8::7"])
    assert s.text("you are 10.1.2.3.") == f"you are {SCRUBBED}."
    assert s.text("10.1.2.34 and 110.1.2.3 and 10.1.2.3.4") == "10.1.2.34 and 110.1.2.3 and 10.1.2.3.4"
    assert s.text("ip=10.1.2.3&x=1") == f"ip={SCRUBBED}&x=1"
    assert s.text("dns/inconsistent:10.1.2.3") == f"dns/inconsistent:{SCRUBBED}"
    assert s.text("tcp/refused:2001:db8::7") == f"tcp/refused:{SCRUBBED}"
    assert s.text("2001:db8::7:1") == "2001:db8::7:1"  # another address
    assert s.text("[2001:DB8::7]:443") == f"[{SCRUBBED}]:443"
    assert s.text("2001:0db8:0000:0000:0000:0000:0000:0007") == SCRUBBED
    assert s.text("2001:db8::70") == "2001:db8::70"
    assert s.data(b"<b>10.1.2.3</b>") == b"<b>[scrubbed]</b>"


def test_scrubber_leaves_loopback_alone_and_clean_records_uncopied() -> None:
    assert not Scrubber(["127.0.0.1", "::1", "0.0.0.0", "not an ip"])
    s = Scrubber(["192.0.2.77"])
    reply = DNSReply(t=0.0, source="127.0.0.1:53", rcode="NOERROR", answers=("198.51.100.1",))
    assert s.record(reply) is reply


def test_scrubber_zeroes_packed_addresses_in_dns_wire_data() -> None:
    s = Scrubber(["192.0.2.77"])
    raw = b"\x12\x34header" + bytes([192, 0, 2, 77]) + b"tail"
    reply = DNSReply(t=0.0, source="127.0.0.1:53", rcode="NOERROR",
                     answers=("192.0.2.77",), raw=raw)
    out = s.record(reply)
    assert out.answers == (SCRUBBED,)
    assert out.raw == b"\x12\x34header\0\0\0\0tail" and len(out.raw) == len(raw)


def test_scrubber_finds_an_address_anywhere_in_a_record_before_walking_it() -> None:
    s = Scrubber(["2001:db8::7", "192.0.2.77"])
    clean = DNSReply(t=0.0, source="127.0.0.1:53", rcode="NOERROR", answers=("2001:db8::8",),
                     raw=b"\x20\x01\x0d\xb8" + bytes(11) + b"\x08")  # fmt: skip
    assert s.record(clean) is clean
    body = DNSReply(t=0.0, source="127.0.0.1:53", rcode="NOERROR", raw=b"<p>you: 2001:DB8::7</p>")
    assert s.record(body).raw == b"<p>you: [scrubbed]</p>"
    odd = ("x", {frozenset({"192.0.2.77"}): object()})  # msgpack cannot pack it: walked anyway
    assert s.record(odd)[1] != odd[1]


def test_scrubber_walks_nested_records_dicts_and_lists() -> None:
    s = Scrubber(["192.0.2.77"])
    value = {"headers": [("X-Client-IP", "192.0.2.77")], "n": 1, "nested": ("a", b"192.0.2.77")}
    assert s.record(value) == {"headers": [("X-Client-IP", SCRUBBED)], "n": 1,
                               "nested": ("a", b"[scrubbed]")}


# --- the local addresses of the probe's sockets ----------------------------------------------
def test_local_addresses_are_noted_once_in_the_forms_sites_write(monkeypatch: pytest.MonkeyPatch) -> None:
    from probe.measure import localaddrs

    monkeypatch.setattr(localaddrs, "_seen", set())
    before = localaddrs.generation()
    for sockname in [("192.0.2.10", 5555), ("::ffff:192.0.2.10", 1, 0, 0), ("fe80::1%eth0", 2, 0, 3),
                     ("127.0.0.1", 3), ("::1", 4, 0, 0), ("0.0.0.0", 0), None, "", ("junk", 1)]:
        localaddrs.note(sockname)
    assert localaddrs.seen() == {"192.0.2.10", "fe80::1"}
    assert localaddrs.generation() == before + 2  # a known address costs no new scrubber


def test_the_watch_scrubs_every_local_address_even_when_the_public_one_is_unknown(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from probe.measure import localaddrs
    from probe.run.summary import NullReporter
    from probe.run.watch import NetworkWatch

    monkeypatch.setattr(localaddrs, "_seen", set())
    watch = NetworkWatch(Identity(failures=("stun x: generic_timeout_error",)), None, [], None,
                         NullReporter())
    assert not watch.scrubber  # nothing known yet
    localaddrs.note(("2001:db8::5", 40000, 0, 0))  # a socket of a measurement, IPv6: no NAT
    page = DNSReply(t=0.0, source="127.0.0.1:53", rcode="NOERROR", raw=b"you are 2001:db8::5")
    assert watch.scrubber.record(page).raw == b"you are [scrubbed]"
    assert watch.scrubber is watch.scrubber  # rebuilt only when an address is new
