"""The one boundary where exceptions become OONI-style failure strings.

Measurement code catches every exception from the network and calls :func:`failure_string`;
nothing else in the probe invents failure strings. The names follow OONI's
``netxlite`` error names (ooni/spec ``data-formats/df-007-errors``) so that our data can be
compared with OONI's.
"""

from __future__ import annotations

import asyncio
import errno
import socket
import ssl

__all__ = ["FAILURES", "AddressRefused", "failure_string", "is_failure"]

#: Every failure string the probe can record, besides ``unknown_failure: <message>``.
FAILURES: frozenset[str] = frozenset(
    {
        # generic
        "generic_timeout_error",
        "eof_error",
        "connection_refused",
        "connection_reset",
        "connection_aborted",
        "host_unreachable",
        "network_unreachable",
        "network_down",
        "address_not_available",
        "operation_canceled",
        "interrupted",
        # dns
        "dns_nxdomain_error",
        "dns_no_answer",
        "dns_servfail_error",
        "dns_refused_error",
        "dns_server_misbehaving",
        "dns_reply_with_wrong_query_error",
        "dns_non_recoverable_failure",
        "dns_timeout_error",  # not used for recorded queries (they use generic_timeout_error)
        # tls
        "ssl_invalid_hostname",
        "ssl_unknown_authority",
        "ssl_invalid_certificate",
        "ssl_failed_handshake",
        # http
        "http_request_failed",
        "http_invalid_redirect_location_host",
        "http_unexpected_redirect_url",
        "http_too_many_redirects",
        "http_response_malformed",
        # circumvention: an OpenVPN endpoint answered, but not with its handshake
        "openvpn_unexpected_reply",
        # the per-URL deadline fired before the step finished
        "deadline_exceeded",
        # a connect policy (the test helper's: public addresses only) refused the address;
        # nothing was sent to it
        "address_refused_by_policy",
    }
)


class AddressRefused(OSError):
    """A connect policy refused the address (see :mod:`probe.netpolicy`); nothing was sent."""

UNKNOWN_PREFIX = "unknown_failure: "


def is_failure(value: str) -> bool:
    """True when ``value`` is a failure string this module can produce."""
    return value in FAILURES or value.startswith(UNKNOWN_PREFIX)


# OpenSSL X509_V_ERR_* codes (stable across OpenSSL versions).
_HOSTNAME_CODES = frozenset({62, 63, 64})  # HOSTNAME_MISMATCH, EMAIL_MISMATCH, IP_ADDRESS_MISMATCH
_AUTHORITY_CODES = frozenset(
    {
        2,  # UNABLE_TO_GET_ISSUER_CERT
        18,  # DEPTH_ZERO_SELF_SIGNED_CERT
        19,  # SELF_SIGNED_CERT_IN_CHAIN
        20,  # UNABLE_TO_GET_ISSUER_CERT_LOCALLY
        21,  # UNABLE_TO_VERIFY_LEAF_SIGNATURE
        27,  # CERT_UNTRUSTED
    }
)

_ERRNO: dict[int, str] = {
    errno.ECONNREFUSED: "connection_refused",
    errno.ECONNRESET: "connection_reset",
    errno.ECONNABORTED: "connection_aborted",
    errno.EHOSTUNREACH: "host_unreachable",
    errno.EHOSTDOWN: "host_unreachable",
    errno.ENETUNREACH: "network_unreachable",
    errno.ENETDOWN: "network_down",
    errno.EADDRNOTAVAIL: "address_not_available",
    errno.ETIMEDOUT: "generic_timeout_error",
    errno.EPIPE: "eof_error",
    errno.ECANCELED: "operation_canceled",
    errno.EINTR: "interrupted",
}

_GAI: dict[int, str] = {
    socket.EAI_NONAME: "dns_nxdomain_error",
    socket.EAI_FAIL: "dns_non_recoverable_failure",
    socket.EAI_AGAIN: "dns_server_misbehaving",
}
if hasattr(socket, "EAI_NODATA"):
    _GAI[socket.EAI_NODATA] = "dns_no_answer"

_MAX_MESSAGE = 200


def _chain(exc: BaseException) -> list[BaseException]:
    """The exception and its causes, outermost first, without cycles."""
    seen: list[BaseException] = []
    cur: BaseException | None = exc
    while cur is not None and not any(cur is s for s in seen):
        seen.append(cur)
        cur = cur.__cause__ if cur.__cause__ is not None else cur.__context__
    return seen


def _ssl_verify(exc: ssl.SSLCertVerificationError) -> str:
    code = getattr(exc, "verify_code", None)
    if code in _HOSTNAME_CODES:
        return "ssl_invalid_hostname"
    if code in _AUTHORITY_CODES:
        return "ssl_unknown_authority"
    message = str(getattr(exc, "verify_message", "") or exc).lower()
    if "hostname mismatch" in message or "ip address mismatch" in message:
        return "ssl_invalid_hostname"
    if "local issuer" in message or "self-signed" in message or "self signed" in message:
        return "ssl_unknown_authority"
    return "ssl_invalid_certificate"


def _dns(exc: BaseException) -> str | None:
    """dnspython exceptions, imported lazily so this module stays cheap to import."""
    mod = type(exc).__module__
    if not mod.startswith("dns."):
        return None
    import dns.exception
    import dns.message
    import dns.query
    import dns.resolver

    if isinstance(exc, dns.resolver.NXDOMAIN):
        return "dns_nxdomain_error"
    if isinstance(exc, dns.resolver.NoAnswer):
        return "dns_no_answer"
    if isinstance(exc, dns.exception.Timeout):  # includes LifetimeTimeout
        return "generic_timeout_error"
    if isinstance(exc, dns.query.BadResponse | dns.query.UnexpectedSource):
        return "dns_reply_with_wrong_query_error"
    if isinstance(exc, dns.resolver.NoNameservers):
        rcodes = {str(err[3]) for err in (exc.kwargs.get("errors") or ()) if len(err) > 3}
        if rcodes == {"SERVFAIL"}:
            return "dns_servfail_error"
        if rcodes == {"REFUSED"}:
            return "dns_refused_error"
        return "dns_server_misbehaving"
    if isinstance(exc, dns.exception.FormError | dns.message.UnknownHeaderField):
        return "dns_server_misbehaving"
    if isinstance(exc, dns.exception.DNSException):
        return "dns_server_misbehaving"
    return None


def _specific(exc: BaseException) -> str | None:
    """A precise failure for one exception of the chain, or None when it says nothing precise."""
    if isinstance(exc, asyncio.CancelledError):
        return "interrupted"
    if isinstance(exc, AddressRefused):
        return "address_refused_by_policy"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return _ssl_verify(exc)
    if isinstance(exc, ssl.SSLZeroReturnError | ssl.SSLEOFError):
        return "eof_error"
    if isinstance(exc, ssl.SSLError):
        return "ssl_failed_handshake"
    if isinstance(exc, socket.gaierror):
        return _GAI.get(exc.errno or 0, "dns_server_misbehaving")
    if isinstance(exc, ConnectionRefusedError):
        return "connection_refused"
    if isinstance(exc, ConnectionResetError):
        # asyncio's SSL protocol reports a FIN during the handshake as a bare
        # ConnectionResetError() (sslproto.eof_received); a real RST carries errno ECONNRESET.
        if exc.errno is None and not exc.args:
            return "eof_error"
        return "connection_reset"
    if isinstance(exc, ConnectionAbortedError):
        return "connection_aborted"
    if isinstance(exc, BrokenPipeError):
        return "eof_error"
    if isinstance(exc, TimeoutError):  # asyncio.TimeoutError and socket.timeout are aliases
        return "generic_timeout_error"
    if isinstance(exc, asyncio.IncompleteReadError | EOFError):
        return "eof_error"
    if isinstance(exc, OSError) and exc.errno in _ERRNO:
        return _ERRNO[exc.errno]
    dns_failure = _dns(exc)
    if dns_failure is not None:
        return dns_failure
    return _http_specific(exc)


def _http_specific(exc: BaseException) -> str | None:
    mod = type(exc).__module__
    if mod.startswith("aiohttp"):  # the control client's stack
        name = type(exc).__name__
        if name in ("ServerDisconnectedError", "ClientPayloadError"):
            return "eof_error"
        if name in ("ClientResponseError", "ContentTypeError", "InvalidURL", "InvalidUrlClientError"):
            return "http_request_failed"
        return None
    if not mod.startswith(("httpx", "httpcore", "h11")):
        return None
    name = type(exc).__name__
    message = str(exc)
    if name.endswith("Timeout") or name == "TimeoutException":
        return "generic_timeout_error"
    if name == "TooManyRedirects":
        return "http_too_many_redirects"
    if name == "RemoteProtocolError":
        # h11 raises this when the peer closes before or during the response.
        lowered = message.lower()
        if "disconnected" in lowered or "incomplete" in lowered or "peer closed" in lowered:
            return "eof_error"
        return "http_response_malformed"
    if name == "DecodingError":
        return "http_response_malformed"
    if name == "ReadError" and not message:
        return "eof_error"
    return None


def _generic(exc: BaseException) -> str | None:
    """A coarse failure for library exceptions that carry no precise cause."""
    mod = type(exc).__module__
    if mod.startswith(("httpx", "httpcore", "h11")):
        return "http_request_failed"
    if isinstance(exc, OSError) and exc.errno is not None:
        return f"{UNKNOWN_PREFIX}{errno.errorcode.get(exc.errno, exc.errno)}: {exc.strerror or exc}"
    return None


def _message(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:_MAX_MESSAGE]


def failure_string(exc: BaseException) -> str:
    """Map an exception (walking ``__cause__``/``__context__``) to a failure string.

    The deepest exception of the chain with a precise meaning wins: ``httpx.ConnectError`` caused
    by ``ssl.SSLCertVerificationError`` is ``ssl_unknown_authority``, not a generic request
    failure. Library wrappers without a precise cause map to a coarse string of their stage; all
    else becomes ``unknown_failure: <message>``. Never raises.
    """
    try:
        chain = _chain(exc)
        for item in reversed(chain):
            if isinstance(item, asyncio.CancelledError) and item is not exc:
                continue  # asyncio.timeout() chains TimeoutError onto the cancellation
            found = _specific(item)
            if found is not None:
                return found
        for item in chain:
            found = _generic(item)
            if found is not None:
                return found
        return UNKNOWN_PREFIX + _message(exc)
    except Exception as bug:  # the boundary itself must never throw
        return UNKNOWN_PREFIX + _message(bug)
