"""The network vocabulary (probe.core.net): one URL policy, one host:port syntax, one resolv.conf."""

from __future__ import annotations

from pathlib import Path

import pytest

from probe.core.net import (
    Endpoint,
    InvalidURL,
    addr_class,
    authority,
    format_endpoint,
    format_resolver,
    host_of,
    is_ip_literal,
    is_public_address,
    is_valid_host,
    parse_endpoint,
    parse_hostport,
    parse_listen,
    parse_resolver,
    parse_url,
    read_resolv_conf,
    run_resolvers,
    split_port,
    system_nameservers,
)
from probe.measure.control.protocol import target_from_url

# --- the URL policy -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "url", "host"),
    [
        ("http://bücher.example/", "http://xn--bcher-kva.example/", "xn--bcher-kva.example"),
        # UTS #46 non-transitional (IDNA 2008): sharp s is kept, not mapped to "ss".
        ("https://faß.de/", "https://xn--fa-hia.de/", "xn--fa-hia.de"),
        # UTS #46 mapping: upper-case non-ASCII is folded before punycode.
        ("http://BÜCHER.example/", "http://xn--bcher-kva.example/", "xn--bcher-kva.example"),
        ("HTTP://ExAmple.ORG/Path", "http://example.org/Path", "example.org"),
        ("http://example.org./", "http://example.org./", "example.org."),
        ("http://[2001:DB8:0:0::1]:8080/x", "http://[2001:db8::1]:8080/x", "2001:db8::1"),
        ("https://[::1]:443/", "https://[::1]/", "::1"),
        ("http://example.org:80/", "http://example.org/", "example.org"),
        ("https://example.org:8443", "https://example.org:8443/", "example.org"),
        ("http://192.0.2.7/", "http://192.0.2.7/", "192.0.2.7"),
    ],
)
def test_url_policy_normalises_hosts_and_ports(given: str, url: str, host: str) -> None:
    t = parse_url(given)
    assert (t.url, t.host) == (url, host)


@pytest.mark.parametrize(
    "given",
    [
        "http://bücher.example/a b?q=ü",
        "https://ExAmple.ORG:8443/x%2Fy?p=5%",
        "http://[2001:DB8::1]/",
        "http://example.org./",
    ],
)
def test_probe_and_helper_measure_the_same_url(given: str) -> None:
    probe_side = parse_url(given)
    helper_side = target_from_url(probe_side.url)  # what the probe sends, as the helper reads it
    assert (helper_side.url, helper_side.host, helper_side.port, helper_side.path) == (
        probe_side.url,
        probe_side.host,
        probe_side.port,
        probe_side.path,
    )


def test_normalising_twice_changes_nothing() -> None:
    once = parse_url("http://Bücher.example:80/100%/a b?x=ü#frag")
    assert parse_url(once.url).url == once.url


@pytest.mark.parametrize(
    "given",
    ["ftp://example.org/", "http://user@example.org/", "http://exa mple.org/", "http://[::1/", "http://a..b/"],
)
def test_unmeasurable_urls_are_refused(given: str) -> None:
    with pytest.raises(InvalidURL):
        parse_url(given)


@pytest.mark.parametrize(
    ("host", "valid"),
    [("example.org", True), ("Bücher.example", True), ("::1", True), ("a..b", False), ("-x.org", False)],
)
def test_redirect_hosts_follow_the_same_host_rules(host: str, valid: bool) -> None:
    assert is_valid_host(host) is valid


# --- host:port ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "port", "scheme", "text"),
    [
        ("example.org", 80, "http", "example.org"),
        ("::1", 8443, "https", "[::1]:8443"),
        ("::1", 443, "https", "[::1]"),
    ],
)
def test_authority_brackets_ipv6_and_drops_the_default_port(
    host: str, port: int, scheme: str, text: str
) -> None:
    assert authority(host, port, scheme) == text


@pytest.mark.parametrize(
    ("text", "expected"),
    [("1.2.3.4:80", Endpoint("1.2.3.4", 80)), ("[2001:DB8::1]:443", Endpoint("2001:db8::1", 443))],
)
def test_endpoints_parse_to_compressed_addresses(text: str, expected: Endpoint) -> None:
    ep = parse_endpoint(text)
    assert ep == expected and str(ep) == format_endpoint(*expected)


@pytest.mark.parametrize("text", ["1.2.3.4", "[::1]", "::1:80", "1.2.3.4:0", "[::1]:x", "name:80"])
def test_bad_endpoints_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_endpoint(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("9.9.9.9", ("9.9.9.9", 53)), ("127.0.0.1:5353", ("127.0.0.1", 5353)), ("::1", ("::1", 53)),
     ("[::1]:5353", ("::1", 5353)), ("[::1]", ("::1", 53))],
)
def test_resolver_specifications(text: str, expected: tuple[str, int]) -> None:
    assert parse_resolver(text) == expected


@pytest.mark.parametrize(
    ("text", "why"),
    [("dns.example", "not an IP address"), ("[::1", "missing"), ("1.2.3.4:x", "bad port"),
     ("1.2.3.4:70000", "out of range")],
)
def test_bad_resolvers_say_why(text: str, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        parse_resolver(text)


def test_resolvers_are_recorded_with_brackets() -> None:
    assert format_resolver("::1", 53) == "udp://[::1]:53"
    assert format_resolver("127.0.0.1", 5353, "tcp") == "tcp://127.0.0.1:5353"


def test_listen_addresses_allow_every_address_and_port_zero() -> None:
    assert parse_listen(":0") == ("", 0)
    with pytest.raises(ValueError, match="HOST:PORT"):
        parse_listen("127.0.0.1")


@pytest.mark.parametrize(
    ("spec", "expected"),
    [("127.0.0.1", ("127.0.0.1", 3478)), ("127.0.0.1:19302", ("127.0.0.1", 19302)),
     ("[::1]:443", ("::1", 443)), ("::1", ("::1", 3478)), ("stun.example:3478", ("stun.example", 3478))],
)
def test_stun_server_specs(spec: str, expected: tuple[str, int]) -> None:
    assert parse_hostport(spec, 3478) == expected


@pytest.mark.parametrize("spec", ["127.0.0.1:0", "127.0.0.1:99999", "host:x", "[::1", ":3478"])
def test_bad_stun_server_specs(spec: str) -> None:
    with pytest.raises(ValueError):
        parse_hostport(spec, 3478)


def test_a_port_is_required_without_a_default() -> None:
    assert parse_hostport("[2001:db8::1]:443") == ("2001:db8::1", 443)
    with pytest.raises(ValueError, match="no port"):
        parse_hostport("192.0.2.1")
    with pytest.raises(ValueError, match="no host"):
        parse_hostport(":443", 53)


def test_the_host_of_a_host_header_is_looked_up_without_port_brackets_or_dot() -> None:
    assert host_of("Blocked.Lab.Example.:8080") == "blocked.lab.example"
    assert host_of("[2001:db8::1]:443") == "2001:db8::1"
    assert host_of("[2001:db8::1") == "[2001:db8::1"  # not host[:port]: as it is


@pytest.mark.parametrize(
    ("text", "expected"),
    [("192.0.2.1:5555", ("192.0.2.1", 5555)), ("::ffff:192.0.2.1:80", ("::ffff:192.0.2.1", 80)),
     ("[2001:db8::1]:443", ("[2001:db8::1]", 443)), ("12:30", ("12", 30)),
     ("192.0.2.1", None), ("host:x", None), ("2001:db8::", None)],
)
def test_a_port_is_split_from_text_we_did_not_write(text: str, expected: object) -> None:
    # Log lines: an IPv6 address may stand unbracketed before its port (serve/privacy.py).
    assert split_port(text) == expected


# --- resolv.conf ----------------------------------------------------------------------------


def test_resolv_conf_is_read_in_order_without_comments(tmp_path: Path) -> None:
    conf = tmp_path / "resolv.conf"
    conf.write_text("# comment\nsearch lab\nnameserver 127.0.0.53 # local\n; old\nnameserver ::1\n")
    assert read_resolv_conf(conf) == ("127.0.0.53", "::1")
    assert system_nameservers(conf) == ["127.0.0.53", "::1"]


def test_broken_resolv_conf_names_the_line(tmp_path: Path) -> None:
    conf = tmp_path / "resolv.conf"
    conf.write_text("search lab\nnameserver\n")
    with pytest.raises(ValueError, match=r"resolv.conf:2: nameserver without an address"):
        read_resolv_conf(conf)
    assert system_nameservers(conf) == []
    assert system_nameservers(tmp_path / "missing") == []


# --- address classes ----------------------------------------------------------------------


def test_ip_literals_are_bare_addresses() -> None:
    assert is_ip_literal("::1") and is_ip_literal("192.0.2.1")
    assert not is_ip_literal("[::1]") and not is_ip_literal("example.org")


@pytest.mark.parametrize(
    ("ip", "klass", "public"),
    [
        ("8.8.8.8", None, True),
        ("127.0.0.1", "loopback", False),
        ("10.1.2.3", "private", False),
        ("::ffff:10.1.2.3", "private", False),
        ("0.0.0.0", "unspecified", False),
        # Documentation prefixes: usable answers for the classifier, never a helper destination.
        ("192.0.2.1", None, False),
        ("2001:db8::1", None, False),
    ],
)
def test_the_two_address_policies(ip: str, klass: str | None, public: bool) -> None:
    assert addr_class(ip) == klass
    assert is_public_address(ip) is public


def test_a_run_asks_its_resolvers_else_the_nameservers_of_resolv_conf(tmp_path: Path) -> None:
    conf = tmp_path / "resolv.conf"
    conf.write_text("nameserver 192.0.2.53\nnameserver dns.example\nnameserver 2001:db8::53\n")
    given = run_resolvers(["198.51.100.1:5353"], True, conf)
    assert given.addresses == (("198.51.100.1", 5353),) and given.missing is None
    system = run_resolvers((), True, conf)
    assert system.addresses == (("192.0.2.53", 53), ("2001:db8::53", 53))
    assert system.ignored == ("dns.example",)  # a name would need a resolver
    assert system.endpoints() == ["192.0.2.53:53", "[2001:db8::53]:53"]
    assert run_resolvers((), False, conf).missing == "no resolver configured"
    assert run_resolvers((), True, tmp_path / "none").missing == f"no nameserver in {tmp_path / 'none'}"

