"""The test-helper response as the probe reads it, and its conformance to the spec's shape.

:func:`parse_response` is tolerant, as OONI's clients are: a missing, null or malformed field
or entry is read as absent, so one odd entry does not cost the whole control. A body that is
not a test-helper response at all is a :class:`THResponseError`: the client records the
control as failed and the run goes on. :func:`response_problems` checks a response against the
spec's shape (:class:`ResponseShape`, decoded strictly by the codec).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from probe.codec import CodecError, decode_json, from_data
from probe.control.protocol.response import FLAG_NAMES
from probe.model import ControlObservation, ControlTCP, ControlTLS
from probe.net import parse_endpoint

__all__ = ["ResponseShape", "THResponseError", "flags_names", "parse_response", "response_problems"]


class THResponseError(ValueError):
    """A body that is not a Web Connectivity test-helper response at all."""


# --- the spec's shape ----------------------------------------------------------------------


@dataclass(frozen=True)
class TCPConnectShape:
    status: bool
    failure: str | None


@dataclass(frozen=True)
class TLSHandshakeShape:
    server_name: str
    status: bool
    failure: str | None


@dataclass(frozen=True)
class HTTPRequestShape:
    body_length: int
    discovered_h3_endpoint: str
    failure: str | None
    title: str
    headers: dict[str, str]
    status_code: int


@dataclass(frozen=True)
class DNSShape:
    failure: str | None
    addrs: list[str]


@dataclass(frozen=True)
class IPInfoShape:
    asn: int
    flags: int


@dataclass(frozen=True)
class ResponseShape:
    """Every field an OONI client expects in a response, with its type (the spec's example)."""

    tcp_connect: dict[str, TCPConnectShape]
    tls_handshake: dict[str, TLSHandshakeShape]
    quic_handshake: dict[str, Any]
    http_request: HTTPRequestShape
    http3_request: dict[str, Any] | None
    dns: DNSShape
    ip_info: dict[str, IPInfoShape]


def response_problems(data: Any) -> list[str]:
    """Differences between ``data`` and the shape of the spec's current TH response.

    An empty list means an OONI client can read every field it expects. The codec names the
    first field that does not fit; endpoint keys that are not IP:PORT are listed too.
    """
    if not isinstance(data, dict):
        return ["response is not a JSON object"]
    problems: list[str] = []
    try:
        from_data(ResponseShape, data, strict=True)
    except CodecError as exc:
        problems.append(str(exc))
    tcp = data.get("tcp_connect")
    for ep in tcp if isinstance(tcp, dict) else ():
        try:
            parse_endpoint(ep)
        except ValueError:
            problems.append(f"tcp_connect: bad key {ep!r}")
    return problems


# --- reading -------------------------------------------------------------------------------


def flags_names(flags: int) -> str:
    """ip_info flags as comma-separated names, e.g. ``"resolved_by_probe,valid_for_domain"``."""
    names = [name for bit, name in FLAG_NAMES if flags & bit]
    rest = flags & ~sum(bit for bit, _ in FLAG_NAMES)
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
    body: bytes | str | Mapping[str, Any],
    *,
    source: str,
    url: str,
    started: float = 0.0,
    duration: float = 0.0,
) -> ControlObservation:
    """A TH response -> :class:`ControlObservation`, tolerant of missing or null fields.

    Header names are lower-cased (as in :class:`probe.model.HTTPObservation`); -1 body length
    or status code become None. Raises :class:`THResponseError` when ``body`` is not a JSON
    object with at least one of the protocol's keys.
    """
    if isinstance(body, bytes | str):
        try:
            decoded: Any = decode_json(body, object)
        except CodecError as exc:
            raise THResponseError(f"response is {exc.reason}") from None
    else:
        decoded = body
    if not isinstance(decoded, Mapping):
        raise THResponseError("response is not a JSON object")
    if not any(k in decoded for k in ("tcp_connect", "http_request", "dns")):
        raise THResponseError("response has none of tcp_connect, http_request, dns")
    data: Mapping[str, Any] = decoded

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
