"""The one boundary where exceptions become OONI-style failure strings.

Measurement code catches every exception from the network and calls :func:`failure_string`;
nothing else in the probe invents failure strings. The names follow OONI's
``netxlite`` error names (ooni/spec ``data-formats/df-007-errors``) so that our data can be
compared with OONI's.
"""

from __future__ import annotations

import errno
import socket
from enum import StrEnum
from typing import TYPE_CHECKING

from probe.core.errors import ProbeError

if TYPE_CHECKING:
    import ssl

# asyncio and ssl are imported where exceptions are mapped, not here: read-only commands
# (probe show, probe results) import Failure and must not load TLS.

__all__ = [
    "CERTIFICATE_FAILURES",
    "FAILURES",
    "UNKNOWN_PREFIX",
    "AddressRefused",
    "Failure",
    "QUICClosed",
    "failure_string",
    "is_failure",
]


class Failure(StrEnum):
    """Every failure string the probe can record. An unknown failure is recorded with its
    message when there is one (:data:`UNKNOWN_PREFIX`: ``unknown_failure: <message>``).

    The values are OONI's; a member *is* its string (``Failure.EOF_ERROR == 'eof_error'``), so
    records, JSON and SQL hold plain strings. Nothing outside this module spells one out
    (``tests/unit/test_failures.py`` scans probe/ for literals).
    """

    # generic
    GENERIC_TIMEOUT_ERROR = "generic_timeout_error"
    EOF_ERROR = "eof_error"
    CONNECTION_REFUSED = "connection_refused"
    CONNECTION_RESET = "connection_reset"
    CONNECTION_ABORTED = "connection_aborted"
    HOST_UNREACHABLE = "host_unreachable"
    NETWORK_UNREACHABLE = "network_unreachable"
    NETWORK_DOWN = "network_down"
    ADDRESS_NOT_AVAILABLE = "address_not_available"
    OPERATION_CANCELED = "operation_canceled"
    INTERRUPTED = "interrupted"
    # dns
    DNS_NXDOMAIN_ERROR = "dns_nxdomain_error"
    DNS_NO_ANSWER = "dns_no_answer"
    DNS_SERVFAIL_ERROR = "dns_servfail_error"
    DNS_REFUSED_ERROR = "dns_refused_error"
    DNS_SERVER_MISBEHAVING = "dns_server_misbehaving"
    DNS_REPLY_WITH_WRONG_QUERY_ERROR = "dns_reply_with_wrong_query_error"
    DNS_NON_RECOVERABLE_FAILURE = "dns_non_recoverable_failure"
    DNS_TIMEOUT_ERROR = "dns_timeout_error"  # not used for recorded queries (they use generic_timeout_error)
    # tls
    SSL_INVALID_HOSTNAME = "ssl_invalid_hostname"
    SSL_UNKNOWN_AUTHORITY = "ssl_unknown_authority"
    SSL_INVALID_CERTIFICATE = "ssl_invalid_certificate"
    SSL_FAILED_HANDSHAKE = "ssl_failed_handshake"
    # http
    HTTP_REQUEST_FAILED = "http_request_failed"
    HTTP_INVALID_REDIRECT_LOCATION_HOST = "http_invalid_redirect_location_host"
    HTTP_UNEXPECTED_REDIRECT_URL = "http_unexpected_redirect_url"
    HTTP_TOO_MANY_REDIRECTS = "http_too_many_redirects"
    HTTP_RESPONSE_MALFORMED = "http_response_malformed"
    # circumvention: an OpenVPN endpoint answered, but not with its handshake
    OPENVPN_UNEXPECTED_REPLY = "openvpn_unexpected_reply"
    # a Telegram data centre's address answered, but not with MTProto's answer to our req_pq
    MTPROTO_UNEXPECTED_REPLY = "mtproto_unexpected_reply"
    # a WireGuard endpoint answered, but not with a response to our initiation
    WIREGUARD_UNEXPECTED_REPLY = "wireguard_unexpected_reply"
    # a reflector's echo came back different from what was sent
    ECHO_MISMATCH = "echo_mismatch"
    # the per-URL deadline fired before the step finished
    DEADLINE_EXCEEDED = "deadline_exceeded"
    # a connect policy (the test helper's: public addresses only) refused the address;
    # nothing was sent to it
    ADDRESS_REFUSED_BY_POLICY = "address_refused_by_policy"
    # every test helper answered 503 (busy) for longer than the client waits (Retry-After)
    TEST_HELPER_BUSY = "test_helper_busy"
    # none of the above; as ``unknown_failure: <message>`` when the message is known
    UNKNOWN = "unknown_failure"


#: The failure strings as a set (members compare and hash as their strings).
FAILURES: frozenset[str] = frozenset(Failure)
#: A TLS handshake that completed but whose certificate did not validate.
CERTIFICATE_FAILURES: frozenset[str] = frozenset(
    {Failure.SSL_UNKNOWN_AUTHORITY, Failure.SSL_INVALID_HOSTNAME, Failure.SSL_INVALID_CERTIFICATE}
)


class AddressRefused(ProbeError, OSError):
    """A connect policy refused the address (see :mod:`probe.core.net.policy`); nothing was sent."""


class QUICClosed(ProbeError):
    """A QUIC connection closed before its handshake completed (a CONNECTION_CLOSE frame).

    ``error_code`` is the frame's: 0x100-0x1ff carry a TLS alert (RFC 9001 section 4.8), the
    rest are transport errors (RFC 9000 section 20). Anyone on the path can forge one before
    the handshake ends: Initial packets are protected with keys derived from public values.
    """

    def __init__(self, error_code: int, reason: str = "") -> None:
        super().__init__(f"QUIC connection closed: error 0x{error_code:x} {reason}".strip())
        self.error_code = error_code
        self.reason = reason


#: An unknown failure with its message: ``unknown_failure: <message>``.
UNKNOWN_PREFIX = f"{Failure.UNKNOWN.value}: "


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
    errno.ECONNREFUSED: Failure.CONNECTION_REFUSED,
    errno.ECONNRESET: Failure.CONNECTION_RESET,
    errno.ECONNABORTED: Failure.CONNECTION_ABORTED,
    errno.EHOSTUNREACH: Failure.HOST_UNREACHABLE,
    errno.EHOSTDOWN: Failure.HOST_UNREACHABLE,
    errno.ENETUNREACH: Failure.NETWORK_UNREACHABLE,
    errno.ENETDOWN: Failure.NETWORK_DOWN,
    errno.EADDRNOTAVAIL: Failure.ADDRESS_NOT_AVAILABLE,
    errno.ETIMEDOUT: Failure.GENERIC_TIMEOUT_ERROR,
    errno.EPIPE: Failure.EOF_ERROR,
    errno.ECANCELED: Failure.OPERATION_CANCELED,
    errno.EINTR: Failure.INTERRUPTED,
}

_GAI: dict[int, str] = {
    socket.EAI_NONAME: Failure.DNS_NXDOMAIN_ERROR,
    socket.EAI_FAIL: Failure.DNS_NON_RECOVERABLE_FAILURE,
    socket.EAI_AGAIN: Failure.DNS_SERVER_MISBEHAVING,
}
if hasattr(socket, "EAI_NODATA"):
    _GAI[socket.EAI_NODATA] = Failure.DNS_NO_ANSWER

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
        return Failure.SSL_INVALID_HOSTNAME
    if code in _AUTHORITY_CODES:
        return Failure.SSL_UNKNOWN_AUTHORITY
    message = str(getattr(exc, "verify_message", "") or exc).lower()
    if "hostname mismatch" in message or "ip address mismatch" in message:
        return Failure.SSL_INVALID_HOSTNAME
    if "local issuer" in message or "self-signed" in message or "self signed" in message:
        return Failure.SSL_UNKNOWN_AUTHORITY
    return Failure.SSL_INVALID_CERTIFICATE


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
        return Failure.DNS_NXDOMAIN_ERROR
    if isinstance(exc, dns.resolver.NoAnswer):
        return Failure.DNS_NO_ANSWER
    if isinstance(exc, dns.exception.Timeout):  # includes LifetimeTimeout
        return Failure.GENERIC_TIMEOUT_ERROR
    if isinstance(exc, dns.query.BadResponse | dns.query.UnexpectedSource):
        return Failure.DNS_REPLY_WITH_WRONG_QUERY_ERROR
    if isinstance(exc, dns.resolver.NoNameservers):
        rcodes = {str(err[3]) for err in (exc.kwargs.get("errors") or ()) if len(err) > 3}
        if rcodes == {"SERVFAIL"}:
            return Failure.DNS_SERVFAIL_ERROR
        if rcodes == {"REFUSED"}:
            return Failure.DNS_REFUSED_ERROR
        return Failure.DNS_SERVER_MISBEHAVING
    if isinstance(exc, dns.exception.FormError | dns.message.UnknownHeaderField):
        return Failure.DNS_SERVER_MISBEHAVING
    if isinstance(exc, dns.exception.DNSException):
        return Failure.DNS_SERVER_MISBEHAVING
    return None


def _specific(exc: BaseException) -> str | None:
    """A precise failure for one exception of the chain, or None when it says nothing precise."""
    import asyncio  # here, not at the top: see the note on imports there
    import ssl

    if isinstance(exc, asyncio.CancelledError):
        return Failure.INTERRUPTED
    if isinstance(exc, AddressRefused):
        return Failure.ADDRESS_REFUSED_BY_POLICY
    if isinstance(exc, QUICClosed):
        if 0x100 <= exc.error_code <= 0x1FF:  # a TLS alert inside QUIC's CONNECTION_CLOSE
            return Failure.SSL_FAILED_HANDSHAKE
        return f"{UNKNOWN_PREFIX}quic_error 0x{exc.error_code:x}"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return _ssl_verify(exc)
    if isinstance(exc, ssl.SSLZeroReturnError | ssl.SSLEOFError):
        return Failure.EOF_ERROR
    if isinstance(exc, ssl.SSLError):
        return Failure.SSL_FAILED_HANDSHAKE
    if isinstance(exc, socket.gaierror):
        return _GAI.get(exc.errno or 0, Failure.DNS_SERVER_MISBEHAVING)
    if isinstance(exc, ConnectionRefusedError):
        return Failure.CONNECTION_REFUSED
    if isinstance(exc, ConnectionResetError):
        # asyncio's SSL protocol reports a FIN during the handshake as a bare
        # ConnectionResetError() (sslproto.eof_received); a real RST carries errno ECONNRESET.
        if exc.errno is None and not exc.args:
            return Failure.EOF_ERROR
        return Failure.CONNECTION_RESET
    if isinstance(exc, ConnectionAbortedError):
        return Failure.CONNECTION_ABORTED
    if isinstance(exc, BrokenPipeError):
        return Failure.EOF_ERROR
    if isinstance(exc, TimeoutError):  # asyncio.TimeoutError and socket.timeout are aliases
        return Failure.GENERIC_TIMEOUT_ERROR
    if isinstance(exc, asyncio.IncompleteReadError | EOFError):
        return Failure.EOF_ERROR
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
            return Failure.EOF_ERROR
        if name in ("ClientResponseError", "ContentTypeError", "InvalidURL", "InvalidUrlClientError"):
            return Failure.HTTP_REQUEST_FAILED
        return None
    if not mod.startswith(("httpx", "httpcore", "h11")):
        return None
    name = type(exc).__name__
    message = str(exc)
    if name.endswith("Timeout") or name == "TimeoutException":
        return Failure.GENERIC_TIMEOUT_ERROR
    if name == "TooManyRedirects":
        return Failure.HTTP_TOO_MANY_REDIRECTS
    if name == "RemoteProtocolError":
        # h11 raises this when the peer closes before or during the response.
        lowered = message.lower()
        if "disconnected" in lowered or "incomplete" in lowered or "peer closed" in lowered:
            return Failure.EOF_ERROR
        return Failure.HTTP_RESPONSE_MALFORMED
    if name == "DecodingError":
        return Failure.HTTP_RESPONSE_MALFORMED
    if name == "ReadError" and not message:
        return Failure.EOF_ERROR
    return None


def _generic(exc: BaseException) -> str | None:
    """A coarse failure for library exceptions that carry no precise cause."""
    mod = type(exc).__module__
    if mod.startswith(("httpx", "httpcore", "h11")):
        return Failure.HTTP_REQUEST_FAILED
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
    import asyncio  # here, not at the top: see the note on imports there

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
