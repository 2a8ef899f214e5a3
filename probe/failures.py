"""The one boundary where exceptions become OONI-style failure strings.

Measurement code catches every exception from the network and calls :func:`failure_string`;
nothing else in the probe invents failure strings. The names follow OONI's
``netxlite`` error names (ooni/spec ``data-formats/df-007-errors``) so that our data can be
compared with OONI's.
"""

from __future__ import annotations

__all__ = ["FAILURES", "failure_string", "is_failure"]

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
        # the per-URL deadline fired before the step finished
        "deadline_exceeded",
    }
)

UNKNOWN_PREFIX = "unknown_failure: "


def is_failure(value: str) -> bool:
    """True when ``value`` is a failure string this module can produce."""
    return value in FAILURES or value.startswith(UNKNOWN_PREFIX)


def failure_string(exc: BaseException) -> str:
    """Map an exception (walking ``__cause__``/``__context__``) to a failure string."""
    raise NotImplementedError  # implemented in the engine work
