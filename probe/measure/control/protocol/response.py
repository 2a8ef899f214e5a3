"""The test-helper response, built by the helper from what it measured.

The shape is the spec's (module :mod:`probe.measure.control.protocol` shows it), plus our ``x_`` keys,
as the typed records of :mod:`probe.measure.control.protocol.wire`, which the helper encodes with the
one codec (:func:`probe.core.codec.encode_json`).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from msgspec import UnsetType

from probe.core.failures import UNKNOWN_PREFIX, Failure
from probe.core.model import Hop, HTTPObservation, Measurement
from probe.core.net import bracket, format_endpoint, is_ip_literal
from probe.core.net.policy import is_public_address
from probe.measure.control.protocol.request import THRequest
from probe.measure.control.protocol.wire import (
    UNSET,
    DNSQuery,
    DNSResult,
    ECHResult,
    HTTPRequestResult,
    HTTPTiming,
    InsecureResponse,
    IPInfo,
    TCPConnectResult,
    THResponse,
    TLSDetails,
    TLSHandshakeResult,
)

__all__ = [
    "FLAG_NAMES",
    "IP_FLAG_BOGON",
    "IP_FLAG_RESOLVED_BY_PROBE",
    "IP_FLAG_RESOLVED_BY_TH",
    "IP_FLAG_VALID_FOR_DOMAIN",
    "build_response",
]

# ip_info flags, as OONI's helper sets them (the spec's example shows 11 = probe|th|valid).
IP_FLAG_RESOLVED_BY_PROBE = 1
IP_FLAG_RESOLVED_BY_TH = 2
IP_FLAG_BOGON = 4
IP_FLAG_VALID_FOR_DOMAIN = 8
FLAG_NAMES = (
    (IP_FLAG_RESOLVED_BY_PROBE, "resolved_by_probe"),
    (IP_FLAG_RESOLVED_BY_TH, "resolved_by_th"),
    (IP_FLAG_BOGON, "bogon"),
    (IP_FLAG_VALID_FOR_DOMAIN, "valid_for_domain"),
)


def _canonical_header(name: str) -> str:
    # Go's canonical MIME header form, which OONI's helper emits ("Content-Type", "Etag").
    return "-".join(p[:1].upper() + p[1:].lower() for p in name.split("-"))


_H3_RE = re.compile(r'(?:^|[\s,])h3="([^"]*)"')


def _h3_endpoint(host: str, headers: Iterable[tuple[str, str]]) -> str:
    for name, value in headers:
        if name.lower() == "alt-svc":
            m = _H3_RE.search(value)
            if m:
                auth = m.group(1)
                if auth.startswith(":"):
                    return bracket(host) + auth
                return auth
    return ""


def _dns_addresses(hop: Hop) -> list[str]:
    if is_ip_literal(hop.host):
        return [hop.host]
    addrs: dict[str, None] = {}
    for qtype in ("A", "AAAA"):
        for obs in hop.dns:
            if obs.qtype == qtype:
                for a in obs.addresses:
                    addrs.setdefault(a, None)
    for obs in hop.dns:  # any other query type the engine may add
        if obs.qtype not in ("A", "AAAA"):
            for a in obs.addresses:
                addrs.setdefault(a, None)
    return list(addrs)


def _dns_failure(hop: Hop, addrs: Sequence[str]) -> str | None:
    if addrs:
        return None
    failures = [o.failure for o in hop.dns if o.failure]
    if Failure.DNS_NXDOMAIN_ERROR in failures:  # authoritative: prefer it over AAAA's no-answer
        return Failure.DNS_NXDOMAIN_ERROR
    if failures:
        return failures[0]
    return Failure.DNS_NO_ANSWER


def _hop_failure(hop: Hop) -> str | None:
    """Why a hop produced no HTTP exchange: the first stage that failed everywhere."""
    addrs = _dns_addresses(hop)
    if not addrs:
        return _dns_failure(hop, addrs)
    if hop.tcp and all(t.failure for t in hop.tcp):
        return hop.tcp[0].failure
    if hop.tls and all(t.failure for t in hop.tls):
        return hop.tls[0].failure
    return None


def _insecure_failure(hop: Hop, http: HTTPObservation) -> str | None:
    """The certificate failure of the TLS connection an https response came over, if any."""
    if hop.scheme != "https" or http.failure is not None:
        return None
    for t in hop.tls:
        if t.ip == http.ip and t.port == http.port:
            if t.failure:
                return t.failure
            if t.cert_valid is False:
                return Failure.SSL_INVALID_CERTIFICATE
            return None
    return None


def _timing(hop: Hop, h: HTTPObservation) -> HTTPTiming | None:
    """How fast the helper's fetch went (for the throttling rule): probe's helper's extension."""
    if h.ttfb is None or h.wire_bytes is None:
        return None
    rtt = h.path_rtt or next((t.duration for t in hop.tcp if t.failure is None and t.ip == h.ip), None)
    if rtt is None:
        return None
    return HTTPTiming(ttfb=round(h.ttfb, 6), transfer=round(max(h.duration - h.ttfb, 0.0), 6),
                      wire_bytes=h.wire_bytes, rtt=round(rtt, 6))  # fmt: skip


def _quic(hop: Hop) -> dict[str, TLSHandshakeResult]:
    """``quic_handshake``: per endpoint, the helper's handshakes with the URL's name (any that
    completed counts)."""
    out: dict[str, TLSHandshakeResult] = {}
    for q in hop.quic:
        if q.failure == Failure.ADDRESS_REFUSED_BY_POLICY:
            continue  # never sent to: not a QUIC result (x_skipped_endpoints names it)
        ep = format_endpoint(q.ip, q.port)
        if ep in out and out[ep].status:
            continue
        out[ep] = TLSHandshakeResult(server_name=q.sni, status=q.failure is None, failure=q.failure)
    return out


def _http3(hop: Hop) -> HTTPRequestResult | None:
    """``http3_request``: the helper's HTTP/3 GET after its QUIC handshake (the first that got
    an answer, else the last tried); only its status or its failure (no body, no redirects)."""
    tried = [q for q in hop.quic if q.failure is None and (q.h3_status is not None or q.h3_failure)]
    if not tried:
        return None
    q = next((q for q in tried if q.h3_status is not None), tried[-1])
    return HTTPRequestResult(body_length=-1, discovered_h3_endpoint="", failure=q.h3_failure,
                             title="", headers={},
                             status_code=q.h3_status if q.h3_status is not None else -1)  # fmt: skip


def _ech(hop: Hop) -> dict[str, ECHResult]:
    """``x_ech``: per endpoint, whether the plain and the GREASE-ECH hellos were answered."""
    out: dict[str, ECHResult] = {}
    for ip in dict.fromkeys(h.ip for h in hop.ech if h.failure != Failure.ADDRESS_REFUSED_BY_POLICY):
        tries = [h for h in hop.ech if h.ip == ip]
        plain = [h for h in tries if not h.ech]
        ech = [h for h in tries if h.ech]
        port = tries[0].port

        def result(hs: list[Any]) -> tuple[bool | None, str | None]:
            if not hs:
                return None, None
            ok = any(h.failure is None for h in hs)
            return ok, None if ok else hs[-1].failure

        p_ok, p_fail = result(plain)
        e_ok, e_fail = result(ech)
        out[format_endpoint(ip, port)] = ECHResult(server_name=tries[0].sni, plain_status=p_ok,
                                                   plain_failure=p_fail, ech_status=e_ok,
                                                   ech_failure=e_fail)  # fmt: skip
    return out


def build_response(
    req: THRequest,
    m: Measurement,
    *,
    version: str = "",
    asn: Callable[[str], int | None] | None = None,
    skipped: Sequence[tuple[str, int]] = (),
) -> THResponse:
    """The TH response for ``req`` from what the helper measured (``m``).

    ``m.hops[0]`` holds DNS for the helper's own lookup and TCP/TLS to its addresses plus the
    probe's; the last hop holds the final HTTP exchange after redirects. ``asn`` maps an IP to
    its AS number (0 when unknown); ``skipped`` are the probe's endpoints the helper's policy
    refused to connect to.
    """
    hop0 = m.hops[0] if m.hops else None
    last = m.hops[-1] if m.hops else None

    # dns
    if hop0 is not None:
        th_addrs = _dns_addresses(hop0)
        dns_failure = _dns_failure(hop0, th_addrs)
    elif is_ip_literal(req.target.host):
        th_addrs, dns_failure = [req.target.host], None
    else:
        th_addrs, dns_failure = [], m.failure or UNKNOWN_PREFIX + "not measured"

    # tcp / tls, for the original URL (as OONI's helper does)
    tcp_connect: dict[str, TCPConnectResult] = {}
    tls_handshake: dict[str, TLSHandshakeResult] = {}
    x_tls: dict[str, TLSDetails] = {}
    valid_ips: set[str] = set()
    refused: list[tuple[str, int]] = []
    if hop0 is not None:
        for t in hop0.tcp:
            if t.failure == Failure.ADDRESS_REFUSED_BY_POLICY:
                refused.append((t.ip, t.port))  # never connected to: not a TCP result
                continue
            tcp_connect[format_endpoint(t.ip, t.port)] = TCPConnectResult(
                status=t.failure is None, failure=t.failure
            )
        for s in hop0.tls:
            ep = format_endpoint(s.ip, s.port)
            ok = s.failure is None and s.cert_valid is not False
            failure = s.failure if s.failure or ok else Failure.SSL_INVALID_CERTIFICATE
            tls_handshake[ep] = TLSHandshakeResult(server_name=s.sni, status=ok, failure=failure)
            if ok:
                valid_ips.add(s.ip)
            x_tls[ep] = TLSDetails(
                version=s.version,
                cipher=s.cipher,
                alpn=s.alpn,
                cert_valid=s.cert_valid,
                leaf_sha256=hashlib.sha256(s.cert_chain[0]).hexdigest() if s.cert_chain else None,
                chain_length=len(s.cert_chain),
            )

    http = _http_result(req, m, last)

    # ip_info
    probe_ips = set(req.addresses) | {ip for ip, _ in skipped}
    skipped = [*skipped, *(ep for ep in refused if ep not in skipped)]
    all_ips: dict[str, None] = dict.fromkeys(req.addresses)
    all_ips.update(dict.fromkeys(th_addrs))
    if hop0 is not None:
        all_ips.update(dict.fromkeys(t.ip for t in hop0.tcp))
    ip_info: dict[str, IPInfo | None] = {}
    for ip in all_ips:
        flags = 0
        if ip in probe_ips:
            flags |= IP_FLAG_RESOLVED_BY_PROBE
        if ip in th_addrs:
            flags |= IP_FLAG_RESOLVED_BY_TH
        if not is_public_address(ip):
            flags |= IP_FLAG_BOGON
        if ip in valid_ips:
            flags |= IP_FLAG_VALID_FOR_DOMAIN
        ip_info[ip] = IPInfo(asn=(asn(ip) if asn else None) or 0, flags=flags)

    return THResponse(
        tcp_connect=tcp_connect,
        tls_handshake=tls_handshake,
        quic_handshake=_quic(hop0) if hop0 is not None and req.quic_enabled else {},
        http_request=http,
        http3_request=_http3(hop0) if hop0 is not None and req.quic_enabled else None,
        dns=DNSResult(failure=dns_failure, addrs=th_addrs),
        ip_info=ip_info,
        x_version=version,
        x_tls=x_tls,
        x_dns=[
            DNSQuery(qtype=o.qtype, resolver=o.resolver, failure=o.failure,
                     addrs=list(o.addresses), replies=len(o.replies))
            for o in (hop0.dns if hop0 is not None else ())
        ],
        x_runtime=round(m.runtime, 6),
        x_skipped_endpoints=[format_endpoint(ip, port) for ip, port in skipped] if skipped else UNSET,
        x_failure=m.failure or UNSET,
        x_ech=_ech(hop0) if hop0 is not None and req.ech_enabled else UNSET,
    )


def _http_result(req: THRequest, m: Measurement, last: Hop | None) -> HTTPRequestResult:
    """``http_request``: the final response after redirects, or why there is none."""
    final_url = last.url if last is not None else req.target.url
    redirects = [hop.url for hop in m.hops[1:]]
    h = last.http if last is not None else None
    insecure = _insecure_failure(last, h) if last is not None and h is not None else None
    if last is not None and h is not None and h.failure is None and insecure is None:
        canon: dict[str, str | list[str]] = {}
        for name, value in h.headers:
            canon.setdefault(_canonical_header(name), value)  # first value, like Go's Get
        return HTTPRequestResult(
            body_length=h.body_length if h.body_length is not None else -1,
            discovered_h3_endpoint=_h3_endpoint(last.host, h.headers) if last.scheme == "https" else "",
            failure=None,
            title=h.title or "",
            headers=canon,
            status_code=h.status if h.status is not None else -1,
            x_body_sha256=h.body_sha256,
            x_body_truncated=h.body_truncated,
            x_headers=list(h.headers),
            x_http_timing=_timing(last, h) or UNSET,
            x_final_url=final_url,
            x_redirects=redirects,
        )
    x_insecure: InsecureResponse | UnsetType = UNSET
    if insecure is not None and h is not None:
        # A browser (and OONI's helper) would stop at the certificate; the page the
        # engine fetched anyway is kept aside for analysis.
        failure: str | None = insecure
        x_insecure = InsecureResponse(status_code=h.status, body_length=h.body_length, title=h.title,
                                      x_body_sha256=h.body_sha256)  # fmt: skip
    elif h is not None:
        failure = h.failure
    elif last is not None and not req.http:
        failure = _hop_failure(last) or m.failure or UNKNOWN_PREFIX + "not requested (x_skip_http)"
    elif last is not None:
        failure = _hop_failure(last) or m.failure or UNKNOWN_PREFIX + "no HTTP exchange"
    else:
        failure = m.failure or UNKNOWN_PREFIX + "not measured"
    return HTTPRequestResult(
        body_length=-1,
        discovered_h3_endpoint="",
        failure=failure,
        title="",
        headers={},
        status_code=-1,
        x_insecure_response=x_insecure,
        x_final_url=final_url,
        x_redirects=redirects,
    )
