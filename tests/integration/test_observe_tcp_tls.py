"""TCP and TLS steps: connects per address, handshakes with SNI, chains and validation."""

from __future__ import annotations

import pytest
from cryptography import x509
from observe_helpers import config, run
from servers import LoopbackNet


def test_tcp_connect_is_recorded_per_address(loopback_net: LoopbackNet) -> None:
    m = run(loopback_net.url("ok.test"), config(loopback_net))
    (tcp,) = m.hops[0].tcp
    assert (tcp.ip, tcp.port, tcp.failure) == (loopback_net.web_ip, loopback_net.http_port, None)
    assert tcp.duration >= 0


def test_nothing_listening_is_connection_refused(loopback_net: LoopbackNet) -> None:
    m = run(loopback_net.url("refused.test"), config(loopback_net))
    (tcp,) = m.hops[0].tcp
    assert tcp.failure == "connection_refused"
    assert m.hops[0].http is None


def test_every_address_is_connected_and_http_uses_one(loopback_net: LoopbackNet) -> None:
    m = run(loopback_net.url("multi.test", tls=True), config(loopback_net))
    hop = m.hops[0]
    # Addresses keep the order of the DNS answer (which the server shuffles).
    assert tuple(t.ip for t in hop.tcp) == next(d for d in hop.dns if d.qtype == "A").addresses
    assert {t.ip for t in hop.tcp} == {loopback_net.reset_ip, loopback_net.web_ip}
    tls = {t.ip: t for t in hop.tls}
    assert tls[loopback_net.reset_ip].failure == "connection_reset"
    assert tls[loopback_net.web_ip].failure is None
    # HTTP goes over the address whose certificate validated.
    assert hop.http is not None and hop.http.ip == loopback_net.web_ip and hop.http.status == 200


def test_valid_handshake_records_version_alpn_and_chain(loopback_net: LoopbackNet) -> None:
    m = run(loopback_net.url("ok.test", tls=True), config(loopback_net))
    (tls,) = m.hops[0].tls
    assert tls.failure is None
    assert tls.cert_valid is True
    assert tls.sni == "ok.test"
    assert tls.version in ("TLSv1.2", "TLSv1.3")
    assert tls.cipher
    assert tls.alpn == "http/1.1"
    leaf = x509.load_der_x509_certificate(tls.cert_chain[0])
    names = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "ok.test" in names.get_values_for_type(x509.DNSName)


@pytest.mark.parametrize(
    ("name", "failure"),
    [
        ("wronghost.test", "ssl_invalid_hostname"),
        ("untrusted.test", "ssl_unknown_authority"),
        ("expired.test", "ssl_invalid_certificate"),
    ],
)
def test_certificate_failures_keep_the_chain_as_evidence(
    loopback_net: LoopbackNet, name: str, failure: str
) -> None:
    m = run(loopback_net.url(name, tls=True), config(loopback_net))
    (tls,) = m.hops[0].tls
    assert tls.failure == failure
    assert tls.cert_valid is False
    assert tls.cert_chain, "the evidence handshake captures the presented chain"
    x509.load_der_x509_certificate(tls.cert_chain[0])
    assert tls.version is not None


def test_wrong_hostname_chain_names_the_other_host(loopback_net: LoopbackNet) -> None:
    m = run(loopback_net.url("wronghost.test", tls=True), config(loopback_net))
    leaf = x509.load_der_x509_certificate(m.hops[0].tls[0].cert_chain[0])
    names = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["other.test"]


def test_without_the_lab_ca_the_authority_is_unknown(loopback_net: LoopbackNet) -> None:
    m = run(loopback_net.url("ok.test", tls=True), config(loopback_net, cafile=None))
    assert m.hops[0].tls[0].failure == "ssl_unknown_authority"


def test_http_falls_back_to_an_invalid_certificate_connection(loopback_net: LoopbackNet) -> None:
    m = run(loopback_net.url("untrusted.test", tls=True), config(loopback_net))
    http = m.hops[0].http
    assert http is not None and http.status == 200
    assert m.hops[0].tls[0].cert_valid is False


def test_reset_during_handshake(loopback_net: LoopbackNet) -> None:
    m = run(loopback_net.url("reset.test", tls=True), config(loopback_net))
    assert m.hops[0].tcp[0].failure is None
    assert m.hops[0].tls[0].failure == "connection_reset"
    assert m.hops[0].tls[0].cert_valid is None
    assert m.hops[0].http is None


def test_silent_server_times_out_the_handshake(loopback_net: LoopbackNet) -> None:
    m = run(loopback_net.url("blackhole.test", tls=True), config(loopback_net, tls_timeout=0.3))
    assert m.hops[0].tcp[0].failure is None
    assert m.hops[0].tls[0].failure == "generic_timeout_error"


def test_extra_addresses_are_connected_too(loopback_net: LoopbackNet) -> None:
    m = run(loopback_net.url("ok.test"), config(loopback_net),
            extra_addresses=(loopback_net.closed_ip,))
    tcp = {t.ip: t.failure for t in m.hops[0].tcp}
    assert tcp == {loopback_net.web_ip: None, loopback_net.closed_ip: "connection_refused"}


def test_addresses_are_capped(loopback_net: LoopbackNet) -> None:
    m = run(loopback_net.url("multi.test"), config(loopback_net, max_addresses=1),
            extra_addresses=(loopback_net.closed_ip,))
    first_answer = next(d for d in m.hops[0].dns if d.qtype == "A").addresses[0]
    assert [t.ip for t in m.hops[0].tcp] == [first_answer]


def test_ipv6_resolver_and_addresses(loopback_net: LoopbackNet) -> None:
    if loopback_net.dns6 is None:
        pytest.skip("no IPv6 on loopback")
    cfg = config(loopback_net, resolvers=(loopback_net.dns6.address,))
    m = run(loopback_net.url("dual.test", tls=True), cfg)
    hop = m.hops[0]
    aaaa = next(d for d in hop.dns if d.qtype == "AAAA")
    assert aaaa.resolver == f"udp://{loopback_net.dns6.address}"
    assert aaaa.addresses == ("::1",)
    assert [t.ip for t in hop.tcp] == [loopback_net.web_ip, "::1"]  # A first, then AAAA
    assert all(t.failure is None and t.cert_valid for t in hop.tls)
    assert hop.http is not None and hop.http.status == 200


def test_ipv6_literal_url(loopback_net: LoopbackNet) -> None:
    if loopback_net.web6 is None:
        pytest.skip("no IPv6 on loopback")
    before = len(loopback_net.web6.requests)
    m = run(f"https://[::1]:{loopback_net.https_port}/", config(loopback_net))
    hop = m.hops[0]
    assert hop.dns == () and hop.tls[0].cert_valid is True
    assert hop.http is not None and hop.http.status == 200
    host_header = dict((k.lower(), v) for k, v in loopback_net.web6.requests[before][2])["host"]
    assert host_header == f"[::1]:{loopback_net.https_port}"


def test_tls_to_a_plain_http_port_is_a_failed_handshake(loopback_net: LoopbackNet) -> None:
    from servers import ReplyServer

    server = ReplyServer(loopback_net.loop, "127.0.0.8", (0,))
    server.reply = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n"
    try:
        m = run(f"https://127.0.0.8:{server.ports[0]}/", config(loopback_net))
    finally:
        server.close()
    (tls,) = m.hops[0].tls
    assert tls.failure == "ssl_failed_handshake"
    assert tls.cert_valid is None
