"""OONI's Web Connectivity test-helper (TH) protocol, as pure functions.

The protocol is described in ooni/spec ``nettests/ts-017-web-connectivity.md``. A probe POSTs::

    {"http_request": URL, "http_request_headers": {name: [value, ...]},
     "tcp_connect": ["IP:PORT", "[IPv6]:PORT", ...], "x_quic_enabled": false}

and the helper answers with what it saw from an uncensored network::

    {"tcp_connect": {"IP:PORT": {"status": bool, "failure": str|null}},
     "tls_handshake": {"IP:PORT": {"server_name": str, "status": bool, "failure": str|null}},
     "quic_handshake": {}, "http3_request": null,
     "http_request": {"body_length": int, "discovered_h3_endpoint": str, "failure": str|null,
                      "title": str, "headers": {name: value}, "status_code": int},
     "dns": {"failure": str|null, "addrs": [IP, ...]},
     "ip_info": {IP: {"asn": int, "flags": int}}}

``body_length`` and ``status_code`` are -1 when the fetch failed. Our own additions are
``x_``-prefixed keys, which OONI clients ignore: ``x_version``, ``x_body_sha256``,
``x_body_truncated``, ``x_headers`` (every header, in order), ``x_final_url``, ``x_redirects``,
``x_tls`` (per-endpoint TLS details), ``x_dns`` (per-query details) and ``x_skipped_endpoints``.

Nothing here does I/O: the helper server and the client call these functions.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from probe.failures import Failure
from probe.model import (
    ControlObservation,
    ControlTCP,
    ControlTLS,
    Hop,
    HTTPObservation,
    Measurement,
    Target,
)
from probe.net import (
    InvalidURL,
    bracket,
    format_endpoint,
    is_ip_literal,
    parse_endpoint,
    parse_url,
)
from probe.netpolicy import is_public_address

__all__ = [
    "IP_FLAG_BOGON",
    "IP_FLAG_RESOLVED_BY_PROBE",
    "IP_FLAG_RESOLVED_BY_TH",
    "IP_FLAG_VALID_FOR_DOMAIN",
    "MAX_ENDPOINTS",
    "MAX_URL_LENGTH",
    "THRequest",
    "THRequestError",
    "THResponseError",
    "build_request",
    "build_response",
    "flags_names",
    "parse_request",
    "parse_response",
    "response_problems",
    "target_from_url",
]

# ip_info flags, as OONI's helper sets them (the spec's example shows 11 = probe|th|valid).
IP_FLAG_RESOLVED_BY_PROBE = 1
IP_FLAG_RESOLVED_BY_TH = 2
IP_FLAG_BOGON = 4
IP_FLAG_VALID_FOR_DOMAIN = 8
_FLAG_NAMES = (
    (IP_FLAG_RESOLVED_BY_PROBE, "resolved_by_probe"),
    (IP_FLAG_RESOLVED_BY_TH, "resolved_by_th"),
    (IP_FLAG_BOGON, "bogon"),
    (IP_FLAG_VALID_FOR_DOMAIN, "valid_for_domain"),
)

#: A request naming more endpoints than this is refused (400): the helper connects to each.
MAX_ENDPOINTS = 64
MAX_URL_LENGTH = 8192
_MAX_HEADERS = 64
_MAX_HEADER_LENGTH = 4096


class THRequestError(ValueError):
    """A test-helper request that cannot be served; the message says which field and why."""


class THResponseError(ValueError):
    """A body that is not a Web Connectivity test-helper response at all."""


@dataclass(frozen=True)
class THRequest:
    """A validated test-helper request."""

    url: str  # as the probe sent it
    target: Target  # the URL normalised for measuring
    headers: tuple[tuple[str, str], ...] = ()  # (name, value) in the order sent
    endpoints: tuple[tuple[str, int], ...] = ()  # (ip, port) from tcp_connect, de-duplicated
    quic_enabled: bool = False

    @property
    def addresses(self) -> tuple[str, ...]:
        """The probe's addresses for the URL's port (other ports are ignored, as OONI's TH does)."""
        return tuple(ip for ip, port in self.endpoints if port == self.target.port)

    def header(self, name: str) -> str | None:
        """First value of a request header (case-insensitive), or None."""
        lname = name.lower()
        for k, v in self.headers:
            if k.lower() == lname:
                return v
        return None


# --- targets ------------------------------------------------------------------------------


def target_from_url(url: str) -> Target:
    """Normalise an http(s) URL into the :class:`Target` the engine measures.

    Raises :class:`THRequestError` naming what is wrong.
    """
    if len(url) > MAX_URL_LENGTH:
        raise THRequestError(f"http_request: URL longer than {MAX_URL_LENGTH} characters")
    try:
        return parse_url(url, source="control")
    except InvalidURL as exc:
        raise THRequestError(f"http_request: {exc}") from None


# --- requests -----------------------------------------------------------------------------


def build_request(
    url: str,
    addrs: Sequence[str],
    port: int,
    headers: Mapping[str, str] | None = None,
    quic_enabled: bool = False,
) -> dict[str, Any]:
    """The JSON request a probe sends for ``url`` and the addresses it resolved."""
    seen: dict[str, None] = {}
    for a in addrs:
        seen.setdefault(format_endpoint(a, port), None)
    return {
        "http_request": url,
        "http_request_headers": {k: [v] for k, v in (headers or {}).items()},
        "tcp_connect": list(seen),
        "x_quic_enabled": quic_enabled,
    }


def parse_request(data: bytes | str | Mapping[str, Any]) -> THRequest:
    """Validate a test-helper request (JSON text or decoded object).

    Raises :class:`THRequestError` with a message naming the field; the helper answers 400
    with it.
    """
    if isinstance(data, bytes | str):
        try:
            data = json.loads(data)
        except (ValueError, UnicodeDecodeError) as exc:
            raise THRequestError(f"request body is not JSON: {exc}") from None
    if not isinstance(data, Mapping):
        raise THRequestError("request must be a JSON object")
    url = data.get("http_request")
    if not isinstance(url, str) or not url:
        raise THRequestError("http_request: required, a URL string")
    target = target_from_url(url)

    raw_headers = data.get("http_request_headers")
    if raw_headers is None:
        raw_headers = {}
    if not isinstance(raw_headers, Mapping):
        raise THRequestError("http_request_headers: must be an object {name: [values]}")
    if len(raw_headers) > _MAX_HEADERS:
        raise THRequestError(f"http_request_headers: more than {_MAX_HEADERS} headers")
    headers: list[tuple[str, str]] = []
    for name, values in raw_headers.items():
        if isinstance(values, str):  # tolerated: a single value instead of a list
            values = [values]
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise THRequestError(f"http_request_headers.{name}: must be a list of strings")
        for v in values:
            if len(v) > _MAX_HEADER_LENGTH or "\n" in v or "\r" in v:
                raise THRequestError(f"http_request_headers.{name}: invalid value")
            headers.append((str(name), v))

    raw_eps = data.get("tcp_connect")
    if raw_eps is None:
        raw_eps = []
    if not isinstance(raw_eps, list):
        raise THRequestError('tcp_connect: must be a list of "IP:PORT" strings')
    if len(raw_eps) > MAX_ENDPOINTS:
        raise THRequestError(f"tcp_connect: more than {MAX_ENDPOINTS} endpoints")
    endpoints: dict[tuple[str, int], None] = {}
    for i, ep in enumerate(raw_eps):
        try:
            endpoints.setdefault(parse_endpoint(ep), None)
        except ValueError as exc:
            raise THRequestError(f"tcp_connect[{i}]: {ep!r} is not IP:PORT ({exc})") from None

    quic = data.get("x_quic_enabled", False)
    if not isinstance(quic, bool):
        raise THRequestError("x_quic_enabled: must be true or false")
    return THRequest(
        url=url,
        target=target,
        headers=tuple(headers),
        endpoints=tuple(endpoints),
        quic_enabled=quic,
    )


# --- responses: helper side ---------------------------------------------------------------


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


def _timing(hop: Hop, h: HTTPObservation) -> dict[str, float | int] | None:
    """How fast the helper's fetch went (for the throttling rule): probe's helper's extension."""
    if h.ttfb is None or h.wire_bytes is None:
        return None
    rtt = h.path_rtt or next((t.duration for t in hop.tcp if t.failure is None and t.ip == h.ip), None)
    if rtt is None:
        return None
    return {"ttfb": round(h.ttfb, 6), "transfer": round(max(h.duration - h.ttfb, 0.0), 6),
            "wire_bytes": h.wire_bytes, "rtt": round(rtt, 6)}  # fmt: skip


def build_response(
    req: THRequest,
    m: Measurement,
    *,
    version: str = "",
    asn: Callable[[str], int | None] | None = None,
    skipped: Sequence[tuple[str, int]] = (),
) -> dict[str, Any]:
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
        th_addrs, dns_failure = [], m.failure or "unknown_failure: not measured"

    # tcp / tls, for the original URL (as OONI's helper does)
    tcp_connect: dict[str, Any] = {}
    tls_handshake: dict[str, Any] = {}
    x_tls: dict[str, Any] = {}
    valid_ips: set[str] = set()
    refused: list[tuple[str, int]] = []
    if hop0 is not None:
        for t in hop0.tcp:
            if t.failure == Failure.ADDRESS_REFUSED_BY_POLICY:
                refused.append((t.ip, t.port))  # never connected to: not a TCP result
                continue
            tcp_connect[format_endpoint(t.ip, t.port)] = {
                "status": t.failure is None,
                "failure": t.failure,
            }
        for s in hop0.tls:
            ep = format_endpoint(s.ip, s.port)
            ok = s.failure is None and s.cert_valid is not False
            failure = s.failure if s.failure or ok else Failure.SSL_INVALID_CERTIFICATE
            tls_handshake[ep] = {"server_name": s.sni, "status": ok, "failure": failure}
            if ok:
                valid_ips.add(s.ip)
            x_tls[ep] = {
                "version": s.version,
                "cipher": s.cipher,
                "alpn": s.alpn,
                "cert_valid": s.cert_valid,
                "leaf_sha256": hashlib.sha256(s.cert_chain[0]).hexdigest() if s.cert_chain else None,
                "chain_length": len(s.cert_chain),
            }

    # http: the final response after redirects
    http: dict[str, Any]
    h = last.http if last is not None else None
    insecure = _insecure_failure(last, h) if last is not None and h is not None else None
    if last is not None and h is not None and h.failure is None and insecure is None:
        canon: dict[str, str] = {}
        for name, value in h.headers:
            canon.setdefault(_canonical_header(name), value)  # first value, like Go's Get
        http = {
            "body_length": h.body_length if h.body_length is not None else -1,
            "discovered_h3_endpoint": _h3_endpoint(last.host, h.headers) if last.scheme == "https" else "",
            "failure": None,
            "title": h.title or "",
            "headers": canon,
            "status_code": h.status if h.status is not None else -1,
            "x_body_sha256": h.body_sha256,
            "x_body_truncated": h.body_truncated,
            "x_headers": [[k, v] for k, v in h.headers],
        }
        timing = _timing(last, h)
        if timing is not None:
            http["x_http_timing"] = timing
    else:
        if insecure is not None and h is not None:
            # A browser (and OONI's helper) would stop at the certificate; the page the
            # engine fetched anyway is kept aside for analysis.
            failure = insecure
            x_insecure = {"status_code": h.status, "body_length": h.body_length, "title": h.title,
                          "x_body_sha256": h.body_sha256}
        elif h is not None:
            failure = h.failure
        elif last is not None:
            failure = _hop_failure(last) or m.failure or "unknown_failure: no HTTP exchange"
        else:
            failure = m.failure or "unknown_failure: not measured"
        http = {
            "body_length": -1,
            "discovered_h3_endpoint": "",
            "failure": failure,
            "title": "",
            "headers": {},
            "status_code": -1,
        }
        if insecure is not None and h is not None:
            http["x_insecure_response"] = x_insecure
    http["x_final_url"] = last.url if last is not None else req.target.url
    http["x_redirects"] = [hop.url for hop in m.hops[1:]]

    # ip_info
    probe_ips = set(req.addresses) | {ip for ip, _ in skipped}
    skipped = [*skipped, *(ep for ep in refused if ep not in skipped)]
    all_ips: dict[str, None] = dict.fromkeys(req.addresses)
    all_ips.update(dict.fromkeys(th_addrs))
    if hop0 is not None:
        all_ips.update(dict.fromkeys(t.ip for t in hop0.tcp))
    ip_info: dict[str, Any] = {}
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
        ip_info[ip] = {"asn": (asn(ip) if asn else None) or 0, "flags": flags}

    resp: dict[str, Any] = {
        "tcp_connect": tcp_connect,
        "tls_handshake": tls_handshake,
        "quic_handshake": {},
        "http_request": http,
        "http3_request": None,
        "dns": {"failure": dns_failure, "addrs": th_addrs},
        "ip_info": ip_info,
        "x_version": version,
        "x_tls": x_tls,
        "x_dns": [
            {
                "qtype": o.qtype,
                "resolver": o.resolver,
                "failure": o.failure,
                "addrs": list(o.addresses),
                "replies": len(o.replies),
            }
            for o in (hop0.dns if hop0 is not None else ())
        ],
        "x_runtime": round(m.runtime, 6),
    }
    if skipped:
        resp["x_skipped_endpoints"] = [format_endpoint(ip, port) for ip, port in skipped]
    if m.failure:
        resp["x_failure"] = m.failure
    return resp


# --- responses: client side ---------------------------------------------------------------

# key -> (allowed JSON types, whether null is allowed); the shape of the spec's example.
_SHAPE_TOP: dict[str, tuple[type, bool]] = {
    "tcp_connect": (dict, False),
    "tls_handshake": (dict, False),
    "quic_handshake": (dict, False),
    "http_request": (dict, False),
    "http3_request": (dict, True),
    "dns": (dict, False),
    "ip_info": (dict, False),
}
_SHAPE_HTTP: dict[str, tuple[type, bool]] = {
    "body_length": (int, False),
    "discovered_h3_endpoint": (str, False),
    "failure": (str, True),
    "title": (str, False),
    "headers": (dict, False),
    "status_code": (int, False),
}


def _type_ok(value: Any, tp: type, nullable: bool) -> bool:
    if value is None:
        return nullable
    if tp is int and isinstance(value, bool):
        return False
    return isinstance(value, tp)


def response_problems(data: Any) -> list[str]:
    """Differences between ``data`` and the shape of the spec's current TH response.

    An empty list means an OONI client can read every field it expects.
    """
    if not isinstance(data, dict):
        return ["response is not a JSON object"]
    problems: list[str] = []
    for key, (tp, nullable) in _SHAPE_TOP.items():
        if key not in data:
            problems.append(f"missing {key}")
        elif not _type_ok(data[key], tp, nullable):
            problems.append(f"{key}: expected {tp.__name__}")
    for ep, entry in (data.get("tcp_connect") or {}).items():
        try:
            parse_endpoint(ep)
        except ValueError:
            problems.append(f"tcp_connect: bad key {ep!r}")
        if not isinstance(entry, dict) or not isinstance(entry.get("status"), bool):
            problems.append(f"tcp_connect.{ep}.status: expected bool")
        elif not _type_ok(entry.get("failure", 0), str, True):
            problems.append(f"tcp_connect.{ep}.failure: expected string or null")
    for ep, entry in (data.get("tls_handshake") or {}).items():
        if not isinstance(entry, dict):
            problems.append(f"tls_handshake.{ep}: expected object")
            continue
        tls_fields: tuple[tuple[str, type, bool], ...] = (
            ("server_name", str, False), ("status", bool, False), ("failure", str, True)
        )
        for k, want, nullable in tls_fields:
            if k not in entry or not _type_ok(entry[k], want, nullable):
                problems.append(f"tls_handshake.{ep}.{k}: expected {want.__name__}")
    http = data.get("http_request")
    if isinstance(http, dict):
        for key, (tp, nullable) in _SHAPE_HTTP.items():
            if key not in http or not _type_ok(http[key], tp, nullable):
                problems.append(f"http_request.{key}: expected {tp.__name__}")
        if isinstance(http.get("headers"), dict) and not all(
            isinstance(v, str) for v in http["headers"].values()
        ):
            problems.append("http_request.headers: values must be strings")
    dns = data.get("dns")
    if isinstance(dns, dict):
        if not _type_ok(dns.get("failure", 0), str, True):
            problems.append("dns.failure: expected string or null")
        addrs = dns.get("addrs")
        if not isinstance(addrs, list) or not all(isinstance(a, str) for a in addrs):
            problems.append("dns.addrs: expected list of strings")
    for ip, entry in (data.get("ip_info") or {}).items():
        if not isinstance(entry, dict) or not _type_ok(entry.get("asn"), int, False):
            problems.append(f"ip_info.{ip}.asn: expected int")
        elif not _type_ok(entry.get("flags"), int, False):
            problems.append(f"ip_info.{ip}.flags: expected int")
    return problems


def flags_names(flags: int) -> str:
    """ip_info flags as comma-separated names, e.g. ``"resolved_by_probe,valid_for_domain"``."""
    names = [name for bit, name in _FLAG_NAMES if flags & bit]
    rest = flags & ~sum(bit for bit, _ in _FLAG_NAMES)
    if rest:
        names.append(hex(rest))
    return ",".join(names)


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _int_or_none(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        return None  # -1 is the helper's "no value"
    return value


def _status(entry: Mapping[str, Any]) -> tuple[bool, str | None]:
    failure = _str_or_none(entry.get("failure"))
    status = entry.get("status")
    ok = status if isinstance(status, bool) else failure is None
    return ok, failure


def _parse_timing(value: Any) -> dict[str, Any]:
    """ControlObservation fields from ``x_http_timing`` (absent or malformed: none)."""
    if not isinstance(value, dict):
        return {}
    try:
        out = {
            "http_ttfb": float(value["ttfb"]),
            "http_transfer": float(value["transfer"]),
            "http_wire_bytes": int(value["wire_bytes"]),
            "http_rtt": float(value["rtt"]),
        }
    except (KeyError, TypeError, ValueError):
        return {}
    if not all(math.isfinite(v) and v >= 0 for v in out.values()):
        return {}
    return out


def parse_response(
    data: bytes | str | Mapping[str, Any],
    *,
    source: str,
    url: str,
    started: float = 0.0,
    duration: float = 0.0,
) -> ControlObservation:
    """A TH response -> :class:`ControlObservation`, tolerant of missing or null fields.

    Header names are lower-cased (as in :class:`probe.model.HTTPObservation`); -1 body length
    or status code become None. Raises :class:`THResponseError` when ``data`` is not a JSON
    object with at least one of the protocol's keys.
    """
    if isinstance(data, bytes | str):
        try:
            data = json.loads(data)
        except (ValueError, UnicodeDecodeError) as exc:
            raise THResponseError(f"response is not JSON: {exc}") from None
    if not isinstance(data, Mapping):
        raise THResponseError("response is not a JSON object")
    if not any(k in data for k in ("tcp_connect", "http_request", "dns")):
        raise THResponseError("response has none of tcp_connect, http_request, dns")

    def obj(value: Any) -> Mapping[str, Any]:
        return value if isinstance(value, Mapping) else {}

    tcp: list[ControlTCP] = []
    for ep, entry in obj(data.get("tcp_connect")).items():
        try:
            ip, port = parse_endpoint(ep)
        except ValueError:
            continue
        ok, failure = _status(obj(entry))
        tcp.append(ControlTCP(ip=ip, port=port, ok=ok, failure=failure))

    tls: list[ControlTLS] = []
    for ep, entry in obj(data.get("tls_handshake")).items():
        try:
            ip, port = parse_endpoint(ep)
        except ValueError:
            continue
        e = obj(entry)
        ok, failure = _status(e)
        sni = e.get("server_name")
        sni = sni if isinstance(sni, str) else ""
        tls.append(ControlTLS(ip=ip, port=port, server_name=sni, ok=ok, failure=failure))

    http = obj(data.get("http_request"))
    headers: list[tuple[str, str]] = []
    for name, value in obj(http.get("headers")).items():
        if isinstance(value, list):  # tolerate {name: [values]}
            value = value[0] if value else ""
        if isinstance(value, str):
            headers.append((str(name).lower(), value))

    dns = obj(data.get("dns"))
    addrs = dns.get("addrs")
    dns_addrs = tuple(a for a in addrs if isinstance(a, str)) if isinstance(addrs, list) else ()

    ip_info: list[tuple[str, int, str]] = []
    for ip, entry in obj(data.get("ip_info")).items():
        e = obj(entry)
        asn = e.get("asn")
        flags = e.get("flags")
        ip_info.append(
            (
                str(ip),
                asn if isinstance(asn, int) and not isinstance(asn, bool) else 0,
                flags_names(flags) if isinstance(flags, int) and not isinstance(flags, bool) else "",
            )
        )

    sha = http.get("x_body_sha256")
    return ControlObservation(
        source=source,
        url=url,
        started=started,
        duration=duration,
        failure=None,
        dns_failure=_str_or_none(dns.get("failure")),
        dns_addrs=dns_addrs,
        tcp=tuple(tcp),
        tls=tuple(tls),
        http_failure=_str_or_none(http.get("failure")),
        http_status=_int_or_none(http.get("status_code")),
        http_body_length=_int_or_none(http.get("body_length")),
        http_headers=tuple(headers),
        http_title=_str_or_none(http.get("title")),
        http_body_sha256=sha if isinstance(sha, str) and sha else None,
        ip_info=tuple(ip_info),
        **_parse_timing(http.get("x_http_timing")),
    )
