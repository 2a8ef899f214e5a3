"""The test-helper protocol's messages as typed records: the one wire format of both sides.

The helper builds a :class:`THResponse` and msgspec encodes it; the probe decodes the bytes it
receives straight into the same classes (:func:`probe.core.codec.decode_json`). The types say what
each side may rely on, and they are lenient where OONI's own helpers differ from ours (their
Go structs become ``null`` for empty maps and slices, old helpers send no ``tls_handshake`` or
``ip_info``, ``headers`` may be ``{name: [values]}``): every spec field is optional or nullable,
and a header value is ``str | list[str]``. A value of the wrong type is not tolerated: the
decoder refuses the whole answer, which the probe records as a failed control.

Encoding keeps the JSON the helper always sent:

- the spec's fields are always written, ``null`` included (``"failure": null``,
  ``"http3_request": null``, ``"quic_handshake": {}``), because OONI clients expect them.
  That is why no class here uses ``omit_defaults``: it would drop them;
- our ``x_`` extensions that appear only sometimes default to :data:`msgspec.UNSET`, which the
  encoder leaves out and the decoder gives when the key is absent (an OONI helper's answer).

Every message is a frozen, keyword-only Struct; unknown keys are ignored on decode. Field
order is the order on the wire.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from msgspec import UNSET, Struct, UnsetType

from probe.core.codec import decode_json, from_data

T = TypeVar("T")

__all__ = [
    "UNSET",
    "ClientAddress",
    "DNSQuery",
    "DNSResult",
    "ECHResult",
    "HTTPRequestResult",
    "HTTPTiming",
    "IPInfo",
    "InsecureResponse",
    "RequestMessage",
    "TCPConnectResult",
    "THResponse",
    "TLSDetails",
    "TLSHandshakeResult",
    "decode_message",
    "header_values",
]


def decode_message(data: bytes | str | Mapping[str, Any], cls: type[T]) -> T:
    """A message of type ``cls`` from JSON, or from JSON already decoded, with strict types.

    Raises :class:`probe.core.codec.CodecError` naming the field that does not fit.
    """
    if isinstance(data, Mapping):
        return from_data(cls, data, strict=True)
    return decode_json(data, cls, strict=True)


# --- the request ---------------------------------------------------------------------------


class RequestMessage(Struct, frozen=True, kw_only=True):
    """The request as sent (the spec's, plus ``x_quic_enabled``; probe's own ``x_ech_enabled``,
    ``x_ech_sni``, ``x_skip_http`` and ``x_client_address`` are written only when set).

    ``http_request`` is required by the helper unless ``x_client_address`` is all that is
    asked (:class:`ClientAddress`).
    """

    http_request: str = ""
    # {name: [values]}; a single string instead of the list is tolerated.
    http_request_headers: dict[str, list[str] | str] | None = None
    tcp_connect: list[str] | None = None  # "IP:PORT" / "[IPv6]:PORT"
    x_quic_enabled: bool = False
    x_ech_enabled: bool | UnsetType = UNSET
    x_ech_sni: str | UnsetType = UNSET  # the SNI of the ECH test's hellos, when not the URL's host
    #: True: stop after DNS, the connects and the handshakes (probe's helper; OONI's ignores
    #: it and fetches): the control of an endpoint that speaks no HTTP (DoT, Tor, OpenVPN,
    #: a messaging service) would otherwise hold the answer until the helper's HTTP timeout.
    x_skip_http: bool | UnsetType = UNSET
    #: Alone (no ``http_request``): "which address did this request come from?"; probe's
    #: helper answers a :class:`ClientAddress`, OONI's answer 400.
    x_client_address: bool | UnsetType = UNSET


class ClientAddress(Struct, frozen=True, kw_only=True):
    """The answer to ``{"x_client_address": true}``: the address the request came from.

    Only that client is told its own address, and the helper never logs it; the probe learns
    it only to scrub it from what it stores (docs/identity.md).
    """

    x_client_address: str


def header_values(values: str | list[str]) -> list[str]:
    """A header's values, whether the peer sent one string or a list of them."""
    return [values] if isinstance(values, str) else values


# --- the response --------------------------------------------------------------------------


class TCPConnectResult(Struct, frozen=True, kw_only=True):
    """One ``tcp_connect`` entry. A missing ``status`` is read from ``failure``."""

    status: bool | None = None
    failure: str | None = None


class TLSHandshakeResult(Struct, frozen=True, kw_only=True):
    """One ``tls_handshake`` (or ``quic_handshake``) entry."""

    server_name: str | None = None
    status: bool | None = None
    failure: str | None = None


class HTTPTiming(Struct, frozen=True, kw_only=True):
    """``x_http_timing``: how fast the helper's own fetch of the final URL went (seconds)."""

    ttfb: float
    transfer: float
    wire_bytes: int
    rtt: float  # TCP connect time of the connection the response came over


class InsecureResponse(Struct, frozen=True, kw_only=True):
    """``x_insecure_response``: the page fetched over a certificate a browser would refuse."""

    status_code: int | None = None
    body_length: int | None = None
    title: str | None = None
    x_body_sha256: str | None = None


class HTTPRequestResult(Struct, frozen=True, kw_only=True):
    """``http_request`` (and ``http3_request``): the final response after redirects.

    ``body_length`` and ``status_code`` are -1 when the fetch failed.
    """

    body_length: int | None = None
    discovered_h3_endpoint: str | None = None
    failure: str | None = None
    title: str | None = None
    headers: dict[str, str | list[str]] | None = None  # canonical name -> first value
    status_code: int | None = None
    x_body_sha256: str | UnsetType | None = UNSET
    x_body_truncated: bool | UnsetType | None = UNSET
    x_headers: list[tuple[str, str]] | UnsetType | None = UNSET  # every header, in order
    x_http_timing: HTTPTiming | UnsetType | None = UNSET
    x_insecure_response: InsecureResponse | UnsetType | None = UNSET
    x_final_url: str | UnsetType | None = UNSET
    x_redirects: list[str] | UnsetType | None = UNSET


class DNSResult(Struct, frozen=True, kw_only=True):
    """``dns``: the helper's own lookup (``addrs`` may hold CNAMEs from old helpers)."""

    failure: str | None = None
    addrs: list[str] | None = None


class IPInfo(Struct, frozen=True, kw_only=True):
    """One ``ip_info`` entry: AS number (0: unknown) and the ``IP_FLAG_*`` bits."""

    asn: int | None = None
    flags: int | None = None


class TLSDetails(Struct, frozen=True, kw_only=True):
    """One ``x_tls`` entry: what the helper's TLS handshake with an endpoint negotiated."""

    version: str | None = None
    cipher: str | None = None
    alpn: str | None = None
    cert_valid: bool | None = None
    leaf_sha256: str | None = None
    chain_length: int = 0


class DNSQuery(Struct, frozen=True, kw_only=True):
    """One ``x_dns`` entry: one of the helper's DNS queries."""

    qtype: str = ""
    resolver: str = ""
    failure: str | None = None
    addrs: list[str] = []
    replies: int = 0


class ECHResult(Struct, frozen=True, kw_only=True):
    """One ``x_ech`` entry: the helper's plain and GREASE-ECH ClientHellos to one endpoint
    (``status``: a ServerHello came back; ``failure``: else why not)."""

    server_name: str | None = None
    plain_status: bool | None = None
    plain_failure: str | None = None
    ech_status: bool | None = None
    ech_failure: str | None = None


class THResponse(Struct, frozen=True, kw_only=True):
    """The Web Connectivity test-helper response (ooni/spec ts-017), plus our ``x_`` keys."""

    tcp_connect: dict[str, TCPConnectResult] | None = None
    tls_handshake: dict[str, TLSHandshakeResult] | None = None
    quic_handshake: dict[str, TLSHandshakeResult] | None = None
    http_request: HTTPRequestResult | None = None
    http3_request: HTTPRequestResult | None = None
    dns: DNSResult | None = None
    ip_info: dict[str, IPInfo | None] | None = None  # OONI's Go helper may send null entries
    x_version: str | UnsetType = UNSET
    x_tls: dict[str, TLSDetails] | UnsetType | None = UNSET
    x_dns: list[DNSQuery] | UnsetType | None = UNSET
    x_runtime: float | UnsetType | None = UNSET
    x_skipped_endpoints: list[str] | UnsetType | None = UNSET
    x_failure: str | UnsetType | None = UNSET
    x_ech: dict[str, ECHResult] | UnsetType | None = UNSET
