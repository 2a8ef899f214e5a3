"""The test-helper request: built by the probe, validated by the helper.

A request is a typed message (:class:`RequestMessage`) decoded by the one codec
(:mod:`probe.core.codec`), which checks every field's type and names the one that is wrong; the
checks that types cannot say (a URL the engine can measure, endpoints that are IP:PORT, bounds
on headers and endpoints) follow. Any problem is a :class:`THRequestError` naming the field,
which the helper answers with 400.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import msgspec

from probe.core.codec import CodecError
from probe.core.errors import ProbeError
from probe.core.model import Target
from probe.core.net import InvalidURL, format_endpoint, is_valid_host, parse_endpoint, parse_url
from probe.measure.control.protocol.wire import RequestMessage, decode_message, header_values

__all__ = [
    "MAX_ENDPOINTS",
    "MAX_URL_LENGTH",
    "RequestMessage",
    "THRequest",
    "THRequestError",
    "build_request",
    "parse_request",
    "read_request",
    "target_from_url",
]

#: A request naming more endpoints than this is refused (400): the helper connects to each.
MAX_ENDPOINTS = 64
MAX_URL_LENGTH = 8192
_MAX_HEADERS = 64
_MAX_HEADER_LENGTH = 4096


class THRequestError(ProbeError, ValueError):
    """A test-helper request that cannot be served; the message says which field and why."""


@dataclass(frozen=True)
class THRequest:
    """A validated test-helper request."""

    url: str  # as the probe sent it
    target: Target  # the URL normalised for measuring
    headers: tuple[tuple[str, str], ...] = ()  # (name, value) in the order sent
    endpoints: tuple[tuple[str, int], ...] = ()  # (ip, port) from tcp_connect, de-duplicated
    quic_enabled: bool = False
    ech_enabled: bool = False  # probe's x_ech_enabled
    ech_sni: str = ""  # probe's x_ech_sni ("": the URL's host)
    http: bool = True  # False: probe's x_skip_http (no HTTP request after the handshakes)

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
    ech_enabled: bool = False,
    ech_sni: str = "",
    http: bool = True,
) -> RequestMessage:
    """The request a probe sends for ``url`` and the addresses it resolved (encode it with
    :func:`probe.core.codec.encode_json`)."""
    seen: dict[str, None] = {}
    for a in addrs:
        seen.setdefault(format_endpoint(a, port), None)
    return RequestMessage(
        http_request=url,
        http_request_headers={k: [v] for k, v in (headers or {}).items()},
        tcp_connect=list(seen),
        x_quic_enabled=quic_enabled,
        x_ech_enabled=True if ech_enabled else msgspec.UNSET,
        x_ech_sni=ech_sni if ech_enabled and ech_sni else msgspec.UNSET,
        x_skip_http=msgspec.UNSET if http else True,
    )


class _HeadersOnly(msgspec.Struct, frozen=True):
    """The request's headers, any values: to name the header a malformed request got wrong."""

    http_request_headers: dict[str, Any]


def _bad_header(data: bytes | str | Mapping[str, Any]) -> str:
    """The name of the first header whose value is neither a string nor a list of strings."""
    try:
        raw = decode_message(data, _HeadersOnly).http_request_headers
    except CodecError:
        return ""
    for name, values in raw.items():
        try:
            msgspec.convert({name: values}, _HEADERS_TYPE, strict=True)
        except msgspec.ValidationError:
            return name
    return ""


# The declared type of http_request_headers, checked one header at a time.
_HEADERS_TYPE = next(f.type for f in msgspec.structs.fields(RequestMessage)
                     if f.name == "http_request_headers")


def _message(data: bytes | str | Mapping[str, Any]) -> RequestMessage:
    """The request decoded by the codec; a :class:`THRequestError` names what does not fit."""
    try:
        return decode_message(data, RequestMessage)
    except CodecError as exc:
        if not exc.path:
            if exc.reason.startswith("not JSON"):
                raise THRequestError(f"request body is {exc.reason}") from None
            raise THRequestError(f"request must be a JSON object ({exc.reason})") from None
        if exc.path.startswith("http_request_headers["):
            # The codec cannot name a mapping's key: find the header whose values are wrong.
            name = _bad_header(data)
            where = f"http_request_headers.{name}" if name else "http_request_headers"
            raise THRequestError(f"{where}: must be a list of strings") from None
        raise THRequestError(str(exc)) from None


def read_request(data: bytes | str | Mapping[str, Any]) -> THRequest | None:
    """The request in ``data``, validated; None when it only asks the client's own address
    (``{"x_client_address": true}`` alone). Raises :class:`THRequestError` naming the field."""
    msg = _message(data)
    if msg.x_client_address and not msg.http_request:
        return None
    return _validated(msg)


def parse_request(data: bytes | str | Mapping[str, Any]) -> THRequest:
    """Validate a test-helper request (JSON text or decoded object).

    Raises :class:`THRequestError` with a message naming the field; the helper answers 400
    with it.
    """
    return _validated(_message(data))


def _validated(msg: RequestMessage) -> THRequest:
    url = msg.http_request
    if not url:
        raise THRequestError("http_request: required, a URL string")
    target = target_from_url(url)

    raw_headers = msg.http_request_headers or {}
    if len(raw_headers) > _MAX_HEADERS:
        raise THRequestError(f"http_request_headers: more than {_MAX_HEADERS} headers")
    headers: list[tuple[str, str]] = []
    for name, values in raw_headers.items():
        for v in header_values(values):
            if len(v) > _MAX_HEADER_LENGTH or "\n" in v or "\r" in v:
                raise THRequestError(f"http_request_headers.{name}: invalid value")
            headers.append((name, v))

    raw_eps = msg.tcp_connect or []
    if len(raw_eps) > MAX_ENDPOINTS:
        raise THRequestError(f"tcp_connect: more than {MAX_ENDPOINTS} endpoints")
    endpoints: dict[tuple[str, int], None] = {}
    for i, ep in enumerate(raw_eps):
        try:
            endpoints.setdefault(parse_endpoint(ep), None)
        except ValueError as exc:
            raise THRequestError(f"tcp_connect[{i}]: {ep!r} is not IP:PORT ({exc})") from None
    ech_sni = msg.x_ech_sni if isinstance(msg.x_ech_sni, str) else ""
    if ech_sni and not is_valid_host(ech_sni):
        raise THRequestError("x_ech_sni: not a host name")
    return THRequest(
        url=url,
        target=target,
        headers=tuple(headers),
        endpoints=tuple(endpoints),
        quic_enabled=msg.x_quic_enabled,
        ech_enabled=msg.x_ech_enabled is True,
        ech_sni=ech_sni,
        http=msg.x_skip_http is not True,
    )
