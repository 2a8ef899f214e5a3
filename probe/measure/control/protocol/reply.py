"""The test-helper response as the probe reads it, and its conformance to the spec's shape.

:func:`parse_response` decodes the answer straight into the typed records of
:mod:`probe.measure.control.protocol.wire`, whose types are as lenient as OONI's clients: a missing or
null field is absent, headers may be ``{name: [values]}``, an endpoint key that is not IP:PORT
is skipped. A value of the wrong type anywhere, or a body that is not a test-helper response
at all, is a :class:`THResponseError`: the client records the control as failed and the run
goes on. :func:`response_problems` checks a response against the spec's strict shape
(:class:`ResponseShape`), which is what an OONI client needs from our helper.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from typing import Any

from msgspec import Struct

from probe.core.codec import CodecError, from_data
from probe.core.errors import ProbeError
from probe.core.model import ControlECH, ControlObservation, ControlTCP, ControlTLS
from probe.core.net import parse_endpoint
from probe.measure.control.protocol.response import FLAG_NAMES
from probe.measure.control.protocol.wire import (
    DNSResult,
    ECHResult,
    HTTPRequestResult,
    HTTPTiming,
    IPInfo,
    TCPConnectResult,
    THResponse,
    TLSHandshakeResult,
    decode_message,
    header_values,
)

__all__ = ["ResponseShape", "THResponseError", "flags_names", "parse_response", "response_problems"]


class THResponseError(ProbeError, ValueError):
    """A body that is not a Web Connectivity test-helper response at all."""


# --- the spec's shape: every field required, with the type an OONI client reads into -------


class TCPConnectShape(Struct, frozen=True, kw_only=True):
    status: bool
    failure: str | None


class TLSHandshakeShape(Struct, frozen=True, kw_only=True):
    server_name: str
    status: bool
    failure: str | None


class HTTPRequestShape(Struct, frozen=True, kw_only=True):
    body_length: int
    discovered_h3_endpoint: str
    failure: str | None
    title: str
    headers: dict[str, str]
    status_code: int


class DNSShape(Struct, frozen=True, kw_only=True):
    failure: str | None
    addrs: list[str]


class IPInfoShape(Struct, frozen=True, kw_only=True):
    asn: int
    flags: int


class ResponseShape(Struct, frozen=True, kw_only=True):
    """Every field an OONI client expects in a response, with its type (the spec's example)."""

    tcp_connect: dict[str, TCPConnectShape]
    tls_handshake: dict[str, TLSHandshakeShape]
    quic_handshake: dict[str, Any]
    http_request: HTTPRequestShape
    http3_request: dict[str, Any] | None
    dns: DNSShape
    ip_info: dict[str, IPInfoShape]


def response_problems(data: Any) -> list[str]:
    """Differences between ``data`` (decoded JSON) and the shape of the spec's current TH response.

    An empty list means an OONI client can read every field it expects. The codec names the
    first field that does not fit; then endpoint keys that are not IP:PORT are listed.
    """
    try:
        shape = from_data(ResponseShape, data, strict=True)
    except CodecError as exc:
        return [str(exc)]
    return [f"tcp_connect: bad key {ep!r}" for ep in shape.tcp_connect if _endpoint(ep) is None]


# --- reading -------------------------------------------------------------------------------


@functools.lru_cache(maxsize=64)  # a handful of combinations, read on every reply
def flags_names(flags: int) -> str:
    """ip_info flags as comma-separated names, e.g. ``"resolved_by_probe,valid_for_domain"``."""
    names = [name for bit, name in FLAG_NAMES if flags & bit]
    rest = flags & ~sum(bit for bit, _ in FLAG_NAMES)
    if rest:
        names.append(hex(rest))
    return ",".join(names)


def _endpoint(text: str) -> tuple[str, int] | None:
    try:
        return parse_endpoint(text)
    except ValueError:
        return None


def _count(value: int | None) -> int | None:
    return value if value is not None and value >= 0 else None  # -1 is the helper's "no value"


def _ok(entry: TCPConnectResult | TLSHandshakeResult) -> bool:
    return entry.status if entry.status is not None else entry.failure is None


def _tcp(entries: dict[str, TCPConnectResult] | None) -> tuple[ControlTCP, ...]:
    out = []
    for key, e in (entries or {}).items():
        ep = _endpoint(key)
        if ep is not None:
            out.append(ControlTCP(ip=ep[0], port=ep[1], ok=_ok(e), failure=e.failure or None))
    return tuple(out)


def _tls(entries: dict[str, TLSHandshakeResult] | None) -> tuple[ControlTLS, ...]:
    out = []
    for key, e in (entries or {}).items():
        ep = _endpoint(key)
        if ep is not None:
            out.append(ControlTLS(ip=ep[0], port=ep[1], server_name=e.server_name or "", ok=_ok(e),
                                  failure=e.failure or None))  # fmt: skip
    return tuple(out)


def _ech(entries: dict[str, ECHResult] | None) -> tuple[ControlECH, ...]:
    """``x_ech`` entries whose two hellos both have a status (else they say nothing)."""
    out = []
    for key, e in (entries or {}).items():
        ep = _endpoint(key)
        if ep is not None and e.plain_status is not None and e.ech_status is not None:
            out.append(ControlECH(ip=ep[0], port=ep[1], server_name=e.server_name or "",
                                  plain_ok=e.plain_status, ech_ok=e.ech_status,
                                  plain_failure=e.plain_failure, ech_failure=e.ech_failure))  # fmt: skip
    return tuple(out)


def _http3(h: HTTPRequestResult | None) -> dict[str, Any]:
    """ControlObservation fields from ``http3_request`` (null: the helper made none)."""
    if h is None or (h.failure is None and _count(h.status_code) is None):
        return {}
    return {"http3_status": _count(h.status_code), "http3_failure": h.failure or None}


def _first(values: str | list[str]) -> str:
    """A header's first value (an empty list: the empty value)."""
    return next(iter(header_values(values)), "")


def _headers(headers: dict[str, str | list[str]] | None) -> tuple[tuple[str, str], ...]:
    """Lower-cased names with their first value."""
    return tuple((name.lower(), _first(values)) for name, values in (headers or {}).items())


def _ip_info(entries: dict[str, IPInfo | None] | None) -> tuple[tuple[str, int, str], ...]:
    """(ip, asn, flag names); a null entry (OONI's Go helper) is an unknown one."""
    out = []
    for ip, entry in (entries or {}).items():
        e = entry if entry is not None else _NO_IP_INFO
        out.append((ip, e.asn or 0, flags_names(e.flags) if e.flags is not None else ""))
    return tuple(out)


def _timing(t: HTTPTiming | None) -> dict[str, Any]:
    """ControlObservation fields from ``x_http_timing`` (absent, negative or infinite: none)."""
    if t is None or not all(math.isfinite(v) and v >= 0 for v in (t.ttfb, t.transfer, t.rtt, t.wire_bytes)):
        return {}
    return {"http_ttfb": t.ttfb, "http_transfer": t.transfer, "http_wire_bytes": t.wire_bytes,
            "http_rtt": t.rtt}  # fmt: skip


def _decode(body: bytes | str | Mapping[str, Any]) -> THResponse:
    """The answer as typed records; :class:`THResponseError` says why it is not one."""
    try:
        return decode_message(body, THResponse)  # a Mapping: an OONI measurement's control
    except CodecError as exc:
        raise THResponseError(f"response is {exc.reason}" if not exc.path else f"response: {exc}") from None


def parse_response(
    body: bytes | str | Mapping[str, Any],
    *,
    source: str,
    url: str,
    started: float = 0.0,
    duration: float = 0.0,
) -> ControlObservation:
    """A TH response (JSON, or decoded JSON) -> :class:`ControlObservation`.

    Header names are lower-cased (as in :class:`probe.core.model.HTTPObservation`); -1 body length
    or status code become None. Raises :class:`THResponseError` when ``body`` is not a JSON
    object with at least one of tcp_connect, http_request and dns, or when any value has the
    wrong type.
    """
    r = _decode(body)
    if r.tcp_connect is None and r.http_request is None and r.dns is None:
        raise THResponseError("response has none of tcp_connect, http_request, dns")
    http = r.http_request or _NO_HTTP
    dns = r.dns or _NO_DNS
    timing = http.x_http_timing
    return ControlObservation(
        source=source,
        url=url,
        started=started,
        duration=duration,
        failure=None,
        dns_failure=dns.failure or None,
        dns_addrs=tuple(dns.addrs or ()),
        tcp=_tcp(r.tcp_connect),
        tls=_tls(r.tls_handshake),
        http_failure=http.failure or None,
        http_status=_count(http.status_code),
        http_body_length=_count(http.body_length),
        http_headers=_headers(http.headers),
        http_title=http.title or None,
        http_body_sha256=http.x_body_sha256 or None,
        ip_info=_ip_info(r.ip_info),
        quic=_tls(r.quic_handshake),
        **_http3(r.http3_request),
        ech=_ech(r.x_ech or None),
        **_timing(timing or None),
    )


_NO_HTTP = HTTPRequestResult()
_NO_DNS = DNSResult()
_NO_IP_INFO = IPInfo()
