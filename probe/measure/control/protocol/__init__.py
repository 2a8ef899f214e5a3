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
A body of ``{"x_client_address": true}`` alone asks the helper which address the request came
from; it answers ``{"x_client_address": IP}`` to that client only and never logs it (one of
the routes by which a probe learns the address it must scrub, docs/identity.md).

Nothing here does I/O: the helper server and the client call these functions. The messages
are typed records (msgspec Structs, :mod:`~probe.measure.control.protocol.wire`) read and written by
the one codec (:mod:`probe.core.codec`), the same types on both sides:

- :mod:`~probe.measure.control.protocol.request`: the request, built by the probe and validated by the
  helper (a malformed one is a :class:`THRequestError` naming the field: the helper answers 400);
- :mod:`~probe.measure.control.protocol.wire`: the messages' types, lenient where OONI's helpers
  differ (nulls, missing sections, ``{name: [values]}`` headers), strict on value types;
- :mod:`~probe.measure.control.protocol.response`: the :class:`THResponse` the helper builds from its
  measurement and encodes;
- :mod:`~probe.measure.control.protocol.reply`: the response as the probe reads it, decoded straight
  into :class:`THResponse` (a body that is not a test-helper response, or a value of the wrong
  type anywhere, is a :class:`THResponseError`: the control failed, the run goes on).
"""

from __future__ import annotations

from probe.measure.control.protocol.reply import (
    THResponseError,
    flags_names,
    parse_response,
    response_problems,
)
from probe.measure.control.protocol.request import (
    MAX_ENDPOINTS,
    MAX_URL_LENGTH,
    RequestMessage,
    THRequest,
    THRequestError,
    build_request,
    parse_request,
    read_request,
    target_from_url,
)
from probe.measure.control.protocol.response import (
    IP_FLAG_BOGON,
    IP_FLAG_RESOLVED_BY_PROBE,
    IP_FLAG_RESOLVED_BY_TH,
    IP_FLAG_VALID_FOR_DOMAIN,
    build_response,
)
from probe.measure.control.protocol.wire import ClientAddress, THResponse

__all__ = [
    "IP_FLAG_BOGON",
    "IP_FLAG_RESOLVED_BY_PROBE",
    "IP_FLAG_RESOLVED_BY_TH",
    "IP_FLAG_VALID_FOR_DOMAIN",
    "MAX_ENDPOINTS",
    "MAX_URL_LENGTH",
    "ClientAddress",
    "RequestMessage",
    "THRequest",
    "THRequestError",
    "THResponse",
    "THResponseError",
    "build_request",
    "build_response",
    "flags_names",
    "parse_request",
    "parse_response",
    "read_request",
    "response_problems",
    "target_from_url",
]
