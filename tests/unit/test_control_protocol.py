"""The Web Connectivity test-helper protocol, checked against ooni/spec's JSON examples."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from probe.core.codec import decode_json, encode_json
from probe.core.model import (
    DNSObservation,
    Hop,
    HTTPObservation,
    Measurement,
    TCPObservation,
    TLSObservation,
)
from probe.core.net import format_endpoint, parse_endpoint
from probe.measure.control.protocol import (
    IP_FLAG_BOGON,
    IP_FLAG_RESOLVED_BY_PROBE,
    IP_FLAG_RESOLVED_BY_TH,
    IP_FLAG_VALID_FOR_DOMAIN,
    MAX_ENDPOINTS,
    THRequestError,
    THResponse,
    THResponseError,
    build_request,
    build_response,
    parse_request,
    parse_response,
    response_problems,
    target_from_url,
)

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "ooni_th"


def load(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def on_wire(resp: THResponse) -> Any:
    """A built response as the JSON the helper sends, decoded."""
    return json.loads(encode_json(resp))


# --- requests ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["request.json", "request_two_ports.json", "request_2021.json"])
def test_spec_request_is_parsed(name: str) -> None:
    data = load(name)
    req = parse_request(json.dumps(data).encode())
    assert req.url == data["http_request"]
    assert req.target.scheme == "https" and req.target.port == 443
    assert req.target.host == "www.example.com"
    assert [format_endpoint(ip, port) for ip, port in req.endpoints] == data["tcp_connect"]
    assert req.header("user-agent") == data["http_request_headers"]["User-Agent"][0]
    assert req.quic_enabled is data.get("x_quic_enabled", False)


def test_request_addresses_keep_only_the_urls_port() -> None:
    req = parse_request(load("request_two_ports.json"))
    assert len(req.endpoints) == 4
    assert req.addresses == ("93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946")


def test_request_url_without_path_gets_slash() -> None:
    req = parse_request(load("request_2021.json"))
    assert req.target.url == "https://www.example.com/"
    assert req.target.path == "/"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b"{not json", "not JSON"),
        (b"[1, 2]", "JSON object"),
        (b"{}", "http_request"),
        (b'{"http_request": "ftp://example.org/"}', "scheme"),
        (b'{"http_request": "https:///nohost"}', "no host"),
        (b'{"http_request": "https://u:p@example.org/"}', "credentials"),
        (b'{"http_request": "https://example.org:99999/"}', "http_request"),
        (b'{"http_request": "https://example.org/", "tcp_connect": "1.2.3.4:443"}', "tcp_connect"),
        (b'{"http_request": "https://example.org/", "tcp_connect": ["1.2.3.4"]}', "tcp_connect[0]"),
        (b'{"http_request": "https://example.org/", "tcp_connect": ["a.b:443"]}', "tcp_connect[0]"),
        (b'{"http_request": "https://example.org/", "tcp_connect": ["1.2.3.4:0"]}', "tcp_connect[0]"),
        (b'{"http_request": "https://example.org/", "http_request_headers": []}', "http_request_headers"),
        (b'{"http_request": "https://example.org/", "http_request_headers": {"A": [1]}}', "headers.A"),
        (b'{"http_request": "https://example.org/", "x_quic_enabled": "yes"}', "x_quic_enabled"),
    ],
)
def test_bad_request_error_names_the_field(body: bytes, field: str) -> None:
    with pytest.raises(THRequestError, match=field.replace("[", r"\[").replace("]", r"\]")):
        parse_request(body)


def test_request_with_too_many_endpoints_is_refused() -> None:
    eps = [f"192.0.2.{i % 250}:{1000 + i}" for i in range(MAX_ENDPOINTS + 1)]
    with pytest.raises(THRequestError, match="more than"):
        parse_request({"http_request": "http://example.org/", "tcp_connect": eps})


def test_built_request_parses_back() -> None:
    body = build_request("http://example.org:8080/a?b=1", ["192.0.2.1", "2001:db8::1", "192.0.2.1"], 8080,
                         headers={"User-Agent": "ua/1"})
    req = parse_request(encode_json(body))
    assert req.endpoints == (("192.0.2.1", 8080), ("2001:db8::1", 8080))
    assert req.addresses == ("192.0.2.1", "2001:db8::1")
    assert req.target.path == "/a?b=1" and req.target.port == 8080
    assert req.header("User-Agent") == "ua/1"


def test_idn_host_becomes_punycode() -> None:
    t = target_from_url("http://bücher.example/")
    assert t.host == "xn--bcher-kva.example"
    assert t.url == "http://xn--bcher-kva.example/"


@pytest.mark.parametrize("text", ["1.2.3.4:80", "[2001:db8::1]:443", "[::1]:8080"])
def test_endpoint_round_trip(text: str) -> None:
    assert format_endpoint(*parse_endpoint(text)) == text


# --- responses from other helpers ----------------------------------------------------------


@pytest.mark.parametrize("name", ["response.json", "response_two_ports.json"])
def test_spec_response_has_the_current_shape(name: str) -> None:
    assert response_problems(load(name)) == []


@pytest.mark.parametrize("name", ["response.json", "response_two_ports.json", "response_2021.json"])
def test_spec_response_is_parsed_into_control_observation(name: str) -> None:
    data = load(name)
    obs = parse_response(json.dumps(data), source="https://th.example/", url="https://www.example.com/",
                         started=1.0, duration=0.5)
    assert obs.failure is None and obs.source == "https://th.example/"
    assert obs.dns_addrs == tuple(data["dns"]["addrs"])
    assert obs.dns_failure == data["dns"]["failure"]
    assert {(format_endpoint(t.ip, t.port), t.ok, t.failure) for t in obs.tcp} == {
        (ep, v["status"], v["failure"]) for ep, v in data["tcp_connect"].items()
    }
    assert {(format_endpoint(t.ip, t.port), t.server_name, t.ok) for t in obs.tls} == {
        (ep, v["server_name"], v["status"]) for ep, v in data.get("tls_handshake", {}).items()
    }
    http = data["http_request"]
    assert obs.http_status == http["status_code"]
    assert obs.http_body_length == http["body_length"]
    assert obs.http_title == http["title"]
    assert obs.http_failure == http["failure"]
    assert dict(obs.http_headers) == {k.lower(): v for k, v in http["headers"].items()}
    assert {ip for ip, _, _ in obs.ip_info} == set(data.get("ip_info", {}))


def test_ip_info_flags_become_names() -> None:
    obs = parse_response(load("response.json"), source="s", url="u")
    for _ip, asn, flags in obs.ip_info:
        assert asn == 15133
        assert flags == "resolved_by_probe,resolved_by_th,valid_for_domain"  # 11 = 1 + 2 + 8


def test_failed_fetch_minus_one_becomes_none() -> None:
    data = {
        "tcp_connect": {"192.0.2.1:443": {"status": False, "failure": "connection_refused"}},
        "http_request": {"body_length": -1, "status_code": -1, "failure": "connection_refused",
                         "title": "", "headers": {}},
        "dns": {"failure": None, "addrs": ["192.0.2.1"]},
    }
    obs = parse_response(data, source="s", url="u")
    assert obs.http_status is None and obs.http_body_length is None and obs.http_title is None
    assert obs.http_failure == "connection_refused"
    assert obs.tcp[0].ok is False and obs.tcp[0].failure == "connection_refused"


def test_missing_and_null_fields_are_tolerated() -> None:
    data = {"dns": None, "http_request": {"headers": {"X-A": ["1", "2"]}},
            "tcp_connect": {"bogus key": {}, "192.0.2.1:80": {"failure": None}}, "ip_info": None}
    obs = parse_response(data, source="s", url="u")
    assert obs.dns_addrs == () and obs.dns_failure is None
    assert obs.http_headers == (("x-a", "1"),)
    assert [(t.ip, t.port, t.ok) for t in obs.tcp] == [("192.0.2.1", 80, True)]


@pytest.mark.parametrize("body", [b"<html>", b"[]", b'{"status": "ok"}'])
def test_non_helper_body_is_rejected(body: bytes) -> None:
    with pytest.raises(THResponseError):
        parse_response(body, source="s", url="u")


# --- responses we build ------------------------------------------------------------------

LEAF = b"\x30\x82leaf-der"


def _measurement(url: str = "https://www.example.com/") -> Measurement:
    req = parse_request(load("request.json"))
    t = req.target
    hop0 = Hop(
        index=0, url=t.url, host=t.host, port=443, scheme="https",
        dns=(
            DNSObservation(hostname=t.host, qtype="A", resolver="udp://127.0.0.53:53", transport="udp",
                           started=0.0, duration=0.01, addresses=("93.184.216.34", "198.51.100.7")),
            DNSObservation(hostname=t.host, qtype="AAAA", resolver="udp://127.0.0.53:53",
                           transport="udp", started=0.0, duration=0.01, failure="dns_no_answer"),
        ),
        tcp=(
            TCPObservation(ip="93.184.216.34", port=443, started=0.0, duration=0.02),
            TCPObservation(ip="198.51.100.7", port=443, started=0.0, duration=0.02),
            TCPObservation(ip="2606:2800:220:1:248:1893:25c8:1946", port=443, started=0.0, duration=0.02,
                           failure="network_unreachable"),
        ),
        tls=(
            TLSObservation(ip="93.184.216.34", port=443, sni=t.host, started=0.0, duration=0.03,
                           version="TLSv1.3", cipher="TLS_AES_128_GCM_SHA256", alpn="http/1.1",
                           cert_chain=(LEAF,), cert_valid=True),
            TLSObservation(ip="198.51.100.7", port=443, sni=t.host, started=0.0, duration=0.03,
                           failure="ssl_invalid_hostname", cert_valid=False),
        ),
        http=HTTPObservation(url=t.url, ip="93.184.216.34", port=443, started=0.0, duration=0.1,
                             status=301, headers=(("location", "https://example.com/"),),
                             location="https://example.com/"),
    )
    hop1 = Hop(
        index=1, url="https://example.com/", host="example.com", port=443, scheme="https",
        http=HTTPObservation(
            url="https://example.com/", ip="93.184.216.34", port=443, started=0.1, duration=0.1,
            status=200, body_length=1256, body_sha256="ab" * 32, title="Example Domain",
            headers=(("content-type", "text/html"), ("set-cookie", "a=1"), ("set-cookie", "b=2"),
                     ("alt-svc", 'h3=":443"; ma=86400')),
        ),
    )
    return Measurement(target=t, started=0.0, runtime=0.3, hops=(hop0, hop1))


def test_built_response_has_the_spec_shape_and_keys() -> None:
    req = parse_request(load("request.json"))
    resp = on_wire(build_response(req, _measurement(), version="9.9"))
    assert response_problems(resp) == []
    spec = load("response.json")
    assert set(spec) <= set(resp)
    assert set(spec["http_request"]) <= set(resp["http_request"])
    assert all(k in spec or k.startswith("x_") for k in resp)
    assert all(k in spec["http_request"] or k.startswith("x_") for k in resp["http_request"])
    json.dumps(resp)  # JSON-serialisable


def test_built_response_reports_the_final_hop_and_every_endpoint() -> None:
    req = parse_request(load("request.json"))
    m = _measurement()
    resp = on_wire(build_response(req, m, version="9.9", asn=lambda ip: 64500))
    final = m.hops[-1].http
    assert final is not None
    http = resp["http_request"]
    assert (http["status_code"], http["body_length"], http["title"]) == (final.status, final.body_length,
                                                                          final.title)
    assert http["headers"]["Set-Cookie"] == "a=1"  # first value, canonical case
    assert http["x_body_sha256"] == final.body_sha256
    assert http["x_final_url"] == "https://example.com/" and http["x_redirects"] == ["https://example.com/"]
    assert http["discovered_h3_endpoint"] == "example.com:443"
    assert set(resp["tcp_connect"]) == {format_endpoint(t.ip, t.port) for t in m.hops[0].tcp}
    assert resp["tcp_connect"]["[2606:2800:220:1:248:1893:25c8:1946]:443"] == {
        "status": False, "failure": "network_unreachable"}
    assert resp["tls_handshake"]["198.51.100.7:443"]["status"] is False
    assert resp["x_tls"]["93.184.216.34:443"]["version"] == "TLSv1.3"
    assert resp["dns"] == {"failure": None, "addrs": ["93.184.216.34", "198.51.100.7"]}
    assert resp["x_version"] == "9.9"


def test_ip_info_flags_say_who_resolved_and_what_validated() -> None:
    req = parse_request(load("request.json"))
    info = on_wire(build_response(req, _measurement(), asn=lambda ip: 64500))["ip_info"]
    both = IP_FLAG_RESOLVED_BY_PROBE | IP_FLAG_RESOLVED_BY_TH | IP_FLAG_VALID_FOR_DOMAIN
    assert info["93.184.216.34"] == {"asn": 64500, "flags": both}
    assert info["198.51.100.7"]["flags"] == IP_FLAG_RESOLVED_BY_TH | IP_FLAG_BOGON  # TEST-NET-2
    assert info["2606:2800:220:1:248:1893:25c8:1946"]["flags"] == IP_FLAG_RESOLVED_BY_PROBE


def test_our_response_parses_back_consistently() -> None:
    req = parse_request(load("request.json"))
    m = _measurement()
    obs = parse_response(encode_json(build_response(req, m)), source="s", url=req.url)
    assert obs.http_status == 200 and obs.http_body_sha256 == "ab" * 32
    assert {(t.ip, t.ok) for t in obs.tcp} == {(t.ip, t.failure is None) for t in m.hops[0].tcp}
    assert {(t.ip, t.ok) for t in obs.tls} == {("93.184.216.34", True), ("198.51.100.7", False)}


def test_dns_failure_gives_failed_fetch_with_minus_one() -> None:
    req = parse_request({"http_request": "http://nx.example/", "tcp_connect": []})
    hop = Hop(index=0, url=req.target.url, host="nx.example", port=80, scheme="http", dns=(
        DNSObservation(hostname="nx.example", qtype="A", resolver="udp://127.0.0.53:53", transport="udp",
                       started=0.0, duration=0.01, failure="dns_nxdomain_error"),
        DNSObservation(hostname="nx.example", qtype="AAAA", resolver="udp://127.0.0.53:53",
                       transport="udp", started=0.0, duration=0.01, failure="dns_no_answer"),
    ))
    resp = on_wire(build_response(req, Measurement(target=req.target, started=0.0, runtime=0.1, hops=(hop,))))
    assert response_problems(resp) == []
    assert resp["dns"] == {"failure": "dns_nxdomain_error", "addrs": []}
    assert resp["http_request"]["failure"] == "dns_nxdomain_error"
    assert resp["http_request"]["status_code"] == -1 and resp["http_request"]["body_length"] == -1


def test_ip_literal_url_reports_itself_as_dns_answer() -> None:
    req = parse_request({"http_request": "http://192.0.2.9/", "tcp_connect": ["192.0.2.9:80"]})
    hop = Hop(index=0, url=req.target.url, host="192.0.2.9", port=80, scheme="http",
              tcp=(TCPObservation(ip="192.0.2.9", port=80, started=0.0, duration=0.1,
                                  failure="generic_timeout_error"),))
    resp = on_wire(build_response(req, Measurement(target=req.target, started=0.0, runtime=0.1, hops=(hop,))))
    assert resp["dns"] == {"failure": None, "addrs": ["192.0.2.9"]}
    assert resp["http_request"]["failure"] == "generic_timeout_error"


def test_unmeasured_request_still_gives_a_valid_response() -> None:
    req = parse_request({"http_request": "https://example.org/"})
    resp = on_wire(build_response(req, Measurement(target=req.target, started=0.0, runtime=60.0,
                                           failure="deadline_exceeded")))
    assert response_problems(resp) == []
    assert resp["http_request"]["failure"] == "deadline_exceeded"
    assert resp["x_failure"] == "deadline_exceeded"


def test_response_over_an_invalid_certificate_is_a_failed_fetch() -> None:
    req = parse_request(load("request.json"))
    t = req.target
    hop = Hop(index=0, url=t.url, host=t.host, port=443, scheme="https",
              tcp=(TCPObservation(ip="93.184.216.34", port=443, started=0.0, duration=0.01),),
              tls=(TLSObservation(ip="93.184.216.34", port=443, sni=t.host, started=0.0, duration=0.01,
                                  failure="ssl_unknown_authority", cert_valid=False),),
              http=HTTPObservation(url=t.url, ip="93.184.216.34", port=443, started=0.0, duration=0.1,
                                   status=200, body_length=10, title="Block"))
    resp = on_wire(build_response(req, Measurement(target=t, started=0.0, runtime=0.1, hops=(hop,))))
    assert response_problems(resp) == []
    http = resp["http_request"]
    assert (http["failure"], http["status_code"], http["body_length"]) == ("ssl_unknown_authority", -1, -1)
    assert http["x_insecure_response"]["title"] == "Block"


@pytest.mark.parametrize(
    "body",
    [
        b'{"tcp_connect": [], "http_request": 5, "dns": "x"}',
        b'{"tcp_connect": {"1.2.3.4:80": []}, "tls_handshake": {"1.2.3.4:443": 7}}',
        b'{"http_request": {"headers": [1, 2], "status_code": true, "body_length": "9"}}',
        b'{"dns": {"addrs": "1.2.3.4", "failure": 3}, "ip_info": {"1.2.3.4": {"asn": "x"}}}',
        b'{"http_request": {"x_http_timing": {"ttfb": "nan", "transfer": -1}}, "dns": {}}',
        b'\xff\xfe{',
        b"",
        b"null",
    ],
)
def test_a_malformed_reply_is_a_failed_control_never_a_crash(body: bytes) -> None:
    """A helper answering junk costs the control of one URL: no exception but THResponseError."""
    try:
        obs = parse_response(body, source="s", url="u")
    except THResponseError:
        return
    assert obs.failure is None and obs.source == "s"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"http_request": 5}', "http_request: expected str, got int"),
        (b'{"http_request": "http://example.org/", "tcp_connect": ["1.2.3.4:80", 7]}',
         "tcp_connect[1]: expected str, got int"),
        (b'{"http_request": "http://example.org/", "x_quic_enabled": "true"}',
         "x_quic_enabled: expected bool, got str"),
        (b'{"http_request": "http://example.org/", "http_request_headers": {"A": ["1"], "B": {}}}',
         "http_request_headers.B: must be a list of strings"),
    ],
)
def test_the_codec_names_the_field_of_a_malformed_request(body: bytes, message: str) -> None:
    with pytest.raises(THRequestError) as info:
        parse_request(body)
    assert str(info.value) == message


# --- the wire types: lenient where OONI's helpers differ, strict on types ------------------


def test_ooni_go_helper_nulls_are_read_as_absent() -> None:
    """OONI's Go helper sends null for empty maps and slices and for a missing ip_info entry."""
    data = {
        "tcp_connect": {"192.0.2.1:443": {"status": False, "failure": "connection_refused"}},
        "tls_handshake": None,
        "quic_handshake": None,
        "http_request": {"body_length": -1, "discovered_h3_endpoint": "", "failure": "connection_refused",
                         "title": "", "headers": None, "status_code": -1},
        "http3_request": None,
        "dns": {"failure": "dns_nxdomain_error", "addrs": None},
        "ip_info": {"192.0.2.1": None, "192.0.2.2": {"asn": 0, "flags": 1}},
    }
    obs = parse_response(json.dumps(data), source="s", url="u")
    assert obs.failure is None and obs.tls == () and obs.http_headers == ()
    assert obs.dns_addrs == () and obs.dns_failure == "dns_nxdomain_error"
    assert obs.ip_info == (("192.0.2.1", 0, ""), ("192.0.2.2", 0, "resolved_by_probe"))
    assert obs.http_status is None and obs.http_failure == "connection_refused"


def test_an_ooni_answer_without_our_extensions_has_no_timing_or_digest() -> None:
    data = load("response.json")
    assert not any(k.startswith("x_") for k in data) and "x_body_sha256" not in data["http_request"]
    obs = parse_response(json.dumps(data).encode(), source="s", url="u")
    assert obs.http_body_sha256 is None and obs.http_ttfb is None and obs.http_rtt is None
    assert obs.http_status == data["http_request"]["status_code"]


def test_header_values_may_be_a_list_a_string_or_empty() -> None:
    data = {"http_request": {"headers": {"Set-Cookie": ["a=1", "b=2"], "Server": "nginx", "X-Empty": []}}}
    obs = parse_response(json.dumps(data), source="s", url="u")
    assert obs.http_headers == (("set-cookie", "a=1"), ("server", "nginx"), ("x-empty", ""))


def test_missing_status_is_read_from_the_failure() -> None:
    data = {"tcp_connect": {"192.0.2.1:80": {"failure": "connection_refused"}, "192.0.2.2:80": {}}}
    obs = parse_response(json.dumps(data), source="s", url="u")
    assert [(t.ip, t.ok, t.failure) for t in obs.tcp] == [("192.0.2.1", False, "connection_refused"),
                                                          ("192.0.2.2", True, None)]


def test_our_timing_extension_is_read_and_implausible_timing_dropped() -> None:
    timing = {"ttfb": 0.25, "transfer": 0.5, "wire_bytes": 1300, "rtt": 0.1}
    obs = parse_response(json.dumps({"http_request": {"x_http_timing": timing}}), source="s", url="u")
    assert (obs.http_ttfb, obs.http_transfer, obs.http_wire_bytes, obs.http_rtt) == (0.25, 0.5, 1300, 0.1)
    negative = {**timing, "rtt": -0.1}
    obs = parse_response(json.dumps({"http_request": {"x_http_timing": negative}}), source="s", url="u")
    assert obs.http_rtt is None and obs.http_ttfb is None
    infinite = {"http_request": {"x_http_timing": {**timing, "ttfb": float("inf")}}}  # decoded elsewhere
    assert parse_response(infinite, source="s", url="u").http_ttfb is None
    with pytest.raises(THResponseError, match="out of range"):  # JSON cannot say inf: 1e999 is junk
        parse_response(json.dumps(infinite).replace("Infinity", "1e999"), source="s", url="u")


@pytest.mark.parametrize(
    ("body", "where"),
    [
        (b'{"tcp_connect": {"1.2.3.4:80": {"status": "yes"}}}', "tcp_connect"),
        (b'{"tls_handshake": {"1.2.3.4:443": {"server_name": 7}}, "dns": {}}', "tls_handshake"),
        (b'{"http_request": {"headers": {"A": [1]}}}', "http_request.headers"),
        (b'{"http_request": {"headers": {"A": {"b": "c"}}}}', "http_request.headers"),
        (b'{"http_request": {"status_code": true}}', "http_request.status_code"),
        (b'{"http_request": {"body_length": "9"}}', "http_request.body_length"),
        (b'{"http_request": {"x_http_timing": {"ttfb": "nan", "transfer": 0, "wire_bytes": 1, "rtt": 0}}}',
         "http_request.x_http_timing.ttfb"),
        (b'{"http_request": {"x_http_timing": {"ttfb": 1}}}', "x_http_timing.transfer"),
        (b'{"http_request": {"x_insecure_response": {"title": ["x"]}}}', "x_insecure_response.title"),
        (b'{"dns": {"addrs": [1, 2]}}', "dns.addrs[0]"),
        (b'{"dns": {"addrs": ["192.0.2.1", {"a": [[[[[]]]]]}]}}', "dns.addrs[1]"),
        (b'{"dns": {}, "ip_info": {"192.0.2.1": {"asn": true}}}', "ip_info"),
        (b'{"dns": {}, "x_tls": {"192.0.2.1:443": {"chain_length": "2"}}}', "x_tls"),
        (b'{"dns": {}, "x_dns": [{"replies": []}]}', "x_dns[0].replies"),
        (b'{"dns": "192.0.2.1"}', "dns"),
        (b'{"tcp_connect": []}', "tcp_connect"),
        (b'{"dns": {}, "http_request": {"headers": {"A": "1"}, "title": ' + b"[" * 200 + b"]" * 200 + b"}}",
         "http_request.title"),
    ],
)
def test_a_wrong_type_anywhere_is_a_failed_control_naming_the_field(body: bytes, where: str) -> None:
    """Hostile or broken answers: the decoder refuses them; no exception but THResponseError."""
    with pytest.raises(THResponseError, match=re.escape(where)):
        parse_response(body, source="s", url="u")
    with pytest.raises(THResponseError, match=re.escape(where)):  # already decoded (OONI import)
        parse_response(json.loads(body), source="s", url="u")


@pytest.mark.parametrize("body", [b'{"dns": null}', b'{"x_version": "1"}', b"{}"])
def test_an_answer_with_no_protocol_section_is_not_a_helper_response(body: bytes) -> None:
    with pytest.raises(THResponseError, match="none of"):
        parse_response(body, source="s", url="u")


def test_both_sides_share_the_wire_types() -> None:
    """The probe decodes what the helper encodes into the very same records, losslessly."""
    req = parse_request(load("request.json"))
    built = build_response(req, _measurement(), version="9.9", asn=lambda ip: 64500,
                           skipped=[("10.0.0.1", 443)])
    wire = encode_json(built)
    assert decode_json(wire, THResponse, strict=True) == built
    assert encode_json(decode_json(wire, THResponse, strict=True)) == wire
    assert json.loads(wire)["x_skipped_endpoints"] == ["10.0.0.1:443"]


def test_absent_extensions_are_not_written() -> None:
    """Our optional x_ keys are left out when unset, never written as null."""
    req = parse_request({"http_request": "http://192.0.2.9/", "tcp_connect": ["192.0.2.9:80"]})
    resp = on_wire(build_response(req, Measurement(target=req.target, started=0.0, runtime=0.1)))
    assert "x_failure" not in resp and "x_skipped_endpoints" not in resp
    assert "x_http_timing" not in resp["http_request"] and "x_insecure_response" not in resp["http_request"]
    assert resp["http3_request"] is None and resp["quic_handshake"] == {}  # the spec's, always written


def test_skip_http_is_written_only_when_asked_and_read_back() -> None:
    from probe.core.codec import encode_json
    from probe.measure.control.protocol import build_request

    usual = json.loads(encode_json(build_request("https://192.0.2.9:853/", ["192.0.2.9"], 853)))
    assert "x_skip_http" not in usual  # OONI's helpers see the request they always saw
    assert parse_request(usual).http is True
    bare = json.loads(encode_json(build_request("https://192.0.2.9:853/", ["192.0.2.9"], 853,
                                                http=False)))
    assert bare["x_skip_http"] is True and parse_request(bare).http is False
