"""Realistic Measurements with every observation type, built by hand (store tests and bench)."""

from __future__ import annotations

import datetime
import hashlib
from functools import lru_cache

from probe.core.model import (
    ControlObservation,
    ControlTCP,
    ControlTLS,
    DNSObservation,
    DNSReply,
    Hop,
    HTTPObservation,
    Measurement,
    Target,
    TCPObservation,
    TLSObservation,
    Verdict,
)

__all__ = ["certificate", "sample_measurement", "sample_verdict"]

BLOCKPAGE = b"<html><head><title>Access denied</title></head><body>blocked by order</body></html>"


@lru_cache(maxsize=4)
def certificate(cn: str = "www.example.org") -> bytes:
    """A self-signed DER certificate for ``cn`` (made once per name)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    start = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(start)
        .not_valid_after(start + datetime.timedelta(days=365))
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.DER)


def sample_measurement(
    n: int = 0, *, started: float = 1_790_000_000.0, attempt: int = 0, body: bytes | None = None
) -> Measurement:
    """A two-hop measurement (http -> https redirect) using every observation type.

    Hop 0: DNS with an injected reply (two distinct replies), a DoH control query, TCP to two
    addresses (one reset), HTTP 302. Hop 1: TLS with a chain, HTTP 200 with a body, control.
    """
    host = f"site{n}.example.org"
    body = BLOCKPAGE + str(n).encode() if body is None else body
    leaf = certificate()
    target = Target(
        url=f"http://{host}/", original_url=f"http://{host}", scheme="http", host=host,
        port=80, path="/", category_code="NEWS", source=f"list.csv:{n + 2}",
    )
    raw1 = b"\x12\x34\x81\x80" + bytes(20)
    raw2 = b"\x12\x34\x85\x80" + bytes(24)
    dns = (
        DNSObservation(
            hostname=host, qtype="A", resolver="udp://127.0.0.53:53", transport="udp",
            started=started, duration=0.012, addresses=("10.10.34.34",),
            replies=(
                DNSReply(t=0.012, source="127.0.0.53:53", rcode="NOERROR",
                         answers=("10.10.34.34",), ttl=300, flags=("QR", "RD", "RA"), raw=raw1),
                DNSReply(t=0.031, source="127.0.0.53:53", rcode="NOERROR",
                         answers=("192.0.2.10", "192.0.2.11"), cnames=(f"cdn.{host}",),
                         ttl=60, flags=("QR", "AA", "RD", "RA"), raw=raw2),
            ),
        ),
        DNSObservation(
            hostname=host, qtype="AAAA", resolver="udp://127.0.0.53:53", transport="udp",
            started=started, duration=0.010, failure="dns_no_answer",
            replies=(DNSReply(t=0.010, source="127.0.0.53:53", rcode="NOERROR", raw=raw1),),
        ),
    )
    doh = (
        DNSObservation(
            hostname=host, qtype="A", resolver="doh:https://127.0.0.1:8443/dns-query",
            transport="doh", started=started, duration=0.05, addresses=("192.0.2.10",),
            replies=(DNSReply(t=0.05, source="127.0.0.1:8443", rcode="NOERROR",
                              answers=("192.0.2.10",), ttl=60),),
        ),
    )
    control0 = ControlObservation(
        source="https://127.0.0.1:9443/", url=target.url, started=started, duration=0.2,
        dns_addrs=("192.0.2.10", "192.0.2.11"),
        tcp=(ControlTCP("10.10.34.34", 80, True),
             ControlTCP("192.0.2.10", 80, True)),
        tls=(ControlTLS("192.0.2.10", 443, host, True),),
        http_status=200, http_body_length=5120, http_headers=(("content-type", "text/html"),),
        http_title="Example", http_body_sha256="ab" * 32,
        ip_info=(("192.0.2.10", 64496, "ok"), ("10.10.34.34", 0, "bogon")),
    )
    hop0 = Hop(
        index=0, url=target.url, host=host, port=80, scheme="http", dns=dns,
        tcp=(TCPObservation("10.10.34.34", 80, started + 0.02, 0.001, "connection_reset"),
             TCPObservation("192.0.2.10", 80, started + 0.02, 0.03)),
        http=HTTPObservation(
            url=target.url, ip="192.0.2.10", port=80, started=started + 0.05, duration=0.04,
            status=302, headers=(("location", f"https://{host}/"), ("server", "nginx")),
            body_length=0, location=f"https://{host}/",
        ),
        control=control0, dns_control=doh,
    )
    hop1 = Hop(
        index=1, url=f"https://{host}/", host=host, port=443, scheme="https",
        tcp=(TCPObservation("192.0.2.10", 443, started + 0.1, 0.03),),
        tls=(
            TLSObservation("192.0.2.10", 443, host, started + 0.13, 0.05, version="TLSv1.3",
                           cipher="TLS_AES_128_GCM_SHA256", alpn="h2",
                           cert_chain=(leaf, leaf[:50]), cert_valid=False,
                           failure="ssl_invalid_hostname"),
            TLSObservation("192.0.2.11", 443, host, started + 0.13, 10.0,
                           failure="generic_timeout_error"),
        ),
        http=HTTPObservation(
            url=f"https://{host}/", ip="192.0.2.10", port=443, started=started + 0.2,
            duration=0.08, status=200, headers=(("content-type", "text/html"),),
            body_length=len(body), body_sha256=hashlib.sha256(body).hexdigest(),
            title="Access denied", body=body,
        ),
        control=ControlObservation(source="https://127.0.0.1:9443/", url=f"https://{host}/",
                                   started=started, duration=0.1, failure="connection_refused"),
    )
    return Measurement(target=target, started=started, runtime=0.31, attempt=attempt,
                       hops=(hop0, hop1))


def sample_verdict(verdict: str = "blocked", version: str = "test-1") -> Verdict:
    """A verdict with a stage, hop and two reasons (``ok``: none of them)."""
    if verdict == "ok":
        return Verdict("ok", None, None, (), version)
    return Verdict(verdict, "http", 1, ("http/blockpage:test_1", "dns/bogon:10.10.34.34"), version)
