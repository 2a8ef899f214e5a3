"""failure_string: one case per mapping, from exception to OONI failure string."""

from __future__ import annotations

import asyncio
import errno
import socket
import ssl
from collections.abc import Callable

import aiohttp
import dns.exception
import dns.message
import dns.query
import dns.resolver
import httpcore
import httpx
import pytest
from source_ast import parse

from probe.core.failures import FAILURES, failure_string, is_failure


def _verify_error(code: int, message: str) -> ssl.SSLCertVerificationError:
    exc = ssl.SSLCertVerificationError(1, f"[SSL: CERTIFICATE_VERIFY_FAILED] {message}")
    exc.verify_code = code
    exc.verify_message = message
    return exc


def _caused(outer: BaseException, inner: BaseException) -> BaseException:
    outer.__cause__ = inner
    return outer


def _context(outer: BaseException, inner: BaseException) -> BaseException:
    outer.__context__ = inner
    return outer


def _no_nameservers(rcode: str) -> dns.resolver.NoNameservers:
    q = dns.message.make_query("example.test", "A")
    return dns.resolver.NoNameservers(request=q, errors=[("127.0.0.1", False, 53, rcode, None)])


CASES: list[tuple[str, BaseException, str]] = [
    # generic socket errors
    ("refused", ConnectionRefusedError(errno.ECONNREFUSED, "refused"), "connection_refused"),
    ("reset", ConnectionResetError(errno.ECONNRESET, "reset"), "connection_reset"),
    ("asyncio ssl: FIN during handshake", ConnectionResetError(), "eof_error"),
    ("aiohttp: server disconnected", aiohttp.ServerDisconnectedError(), "eof_error"),
    ("aiohttp: bad URL", aiohttp.InvalidURL("x"), "http_request_failed"),
    ("aiohttp: connect timeout", aiohttp.ServerTimeoutError("t"), "generic_timeout_error"),
    ("asyncio: connection lost", ConnectionResetError("Connection lost"), "connection_reset"),
    ("aborted", ConnectionAbortedError(errno.ECONNABORTED, "aborted"), "connection_aborted"),
    ("broken pipe", BrokenPipeError(errno.EPIPE, "pipe"), "eof_error"),
    ("timeout", TimeoutError(), "generic_timeout_error"),
    ("incomplete read", asyncio.IncompleteReadError(b"ab", 10), "eof_error"),
    ("eof", EOFError(), "eof_error"),
    ("ehostunreach", OSError(errno.EHOSTUNREACH, "no route"), "host_unreachable"),
    ("ehostdown", OSError(errno.EHOSTDOWN, "host down"), "host_unreachable"),
    ("enetunreach", OSError(errno.ENETUNREACH, "net unreachable"), "network_unreachable"),
    ("enetdown", OSError(errno.ENETDOWN, "net down"), "network_down"),
    ("eaddrnotavail", OSError(errno.EADDRNOTAVAIL, "no addr"), "address_not_available"),
    ("econnaborted errno", OSError(errno.ECONNABORTED, "x"), "connection_aborted"),
    ("econnrefused errno", OSError(errno.ECONNREFUSED, "x"), "connection_refused"),
    ("econnreset errno", OSError(errno.ECONNRESET, "x"), "connection_reset"),
    ("etimedout", OSError(errno.ETIMEDOUT, "timed out"), "generic_timeout_error"),
    ("ecanceled", OSError(errno.ECANCELED, "canceled"), "operation_canceled"),
    ("eintr", OSError(errno.EINTR, "interrupted"), "interrupted"),
    ("cancelled", asyncio.CancelledError(), "interrupted"),
    # getaddrinfo
    ("gai noname", socket.gaierror(socket.EAI_NONAME, "unknown"), "dns_nxdomain_error"),
    ("gai fail", socket.gaierror(socket.EAI_FAIL, "fail"), "dns_non_recoverable_failure"),
    ("gai again", socket.gaierror(socket.EAI_AGAIN, "again"), "dns_server_misbehaving"),
    # TLS
    ("hostname mismatch", _verify_error(62, "Hostname mismatch"), "ssl_invalid_hostname"),
    ("ip mismatch", _verify_error(64, "IP address mismatch"), "ssl_invalid_hostname"),
    ("local issuer", _verify_error(20, "unable to get local issuer certificate"),
     "ssl_unknown_authority"),
    ("self-signed leaf", _verify_error(18, "self-signed certificate"), "ssl_unknown_authority"),
    ("self-signed in chain", _verify_error(19, "self-signed certificate in certificate chain"),
     "ssl_unknown_authority"),
    ("issuer cert", _verify_error(2, "unable to get issuer certificate"), "ssl_unknown_authority"),
    ("leaf signature", _verify_error(21, "unable to verify the first certificate"),
     "ssl_unknown_authority"),
    ("expired", _verify_error(10, "certificate has expired"), "ssl_invalid_certificate"),
    ("not yet valid", _verify_error(9, "certificate is not yet valid"), "ssl_invalid_certificate"),
    ("revoked", _verify_error(23, "certificate revoked"), "ssl_invalid_certificate"),
    ("verify without code, hostname",
     ssl.SSLCertVerificationError(1, "Hostname mismatch, certificate is not valid for 'x'"),
     "ssl_invalid_hostname"),
    ("verify without code, self signed",
     ssl.SSLCertVerificationError(1, "certificate verify failed: self-signed certificate"),
     "ssl_unknown_authority"),
    ("ssl eof", ssl.SSLEOFError(8, "EOF occurred in violation of protocol"), "eof_error"),
    ("ssl zero return", ssl.SSLZeroReturnError(6, "TLS/SSL connection has been closed"), "eof_error"),
    ("ssl alert", ssl.SSLError(1, "[SSL: TLSV1_ALERT_PROTOCOL_VERSION] alert"), "ssl_failed_handshake"),
    # dnspython
    ("nxdomain", dns.resolver.NXDOMAIN(), "dns_nxdomain_error"),
    ("no answer", dns.resolver.NoAnswer(), "dns_no_answer"),
    ("dns timeout", dns.exception.Timeout(timeout=1.0), "generic_timeout_error"),
    ("lifetime timeout", dns.resolver.LifetimeTimeout(timeout=1.0, errors=[]), "generic_timeout_error"),
    ("bad response", dns.query.BadResponse(), "dns_reply_with_wrong_query_error"),
    ("unexpected source", dns.query.UnexpectedSource(), "dns_reply_with_wrong_query_error"),
    ("all servfail", _no_nameservers("SERVFAIL"), "dns_servfail_error"),
    ("all refused", _no_nameservers("REFUSED"), "dns_refused_error"),
    ("mixed nameserver errors", _no_nameservers("NOTIMP"), "dns_server_misbehaving"),
    ("form error", dns.exception.FormError(), "dns_server_misbehaving"),
    ("dns other", dns.exception.TooBig(), "dns_server_misbehaving"),
    # httpx / httpcore
    ("httpx connect timeout", httpx.ConnectTimeout("t"), "generic_timeout_error"),
    ("httpx read timeout", httpx.ReadTimeout("t"), "generic_timeout_error"),
    ("httpx write timeout", httpx.WriteTimeout("t"), "generic_timeout_error"),
    ("httpx pool timeout", httpx.PoolTimeout("t"), "generic_timeout_error"),
    ("httpcore read timeout", httpcore.ReadTimeout("t"), "generic_timeout_error"),
    ("server disconnected",
     httpx.RemoteProtocolError("Server disconnected without sending a response."), "eof_error"),
    ("httpcore server disconnected",
     httpcore.RemoteProtocolError("Server disconnected without sending a response."), "eof_error"),
    ("peer closed mid-body",
     httpx.RemoteProtocolError("peer closed connection without sending complete message body"),
     "eof_error"),
    ("malformed response", httpcore.RemoteProtocolError("illegal status line"),
     "http_response_malformed"),
    ("decoding error", httpx.DecodingError("bad gzip"), "http_response_malformed"),
    ("too many redirects", httpx.TooManyRedirects("too many"), "http_too_many_redirects"),
    ("httpx connect error, no cause", httpx.ConnectError("boom"), "http_request_failed"),
    ("httpcore read error, empty", httpcore.ReadError(""), "eof_error"),
    ("httpx local protocol error", httpx.LocalProtocolError("bad header"), "http_request_failed"),
    # chains: the deepest precise cause wins
    ("httpx wraps reset", _caused(httpx.ReadError("x"), ConnectionResetError(104, "reset")),
     "connection_reset"),
    ("httpx wraps verify",
     _caused(httpx.ConnectError("x"), _verify_error(20, "unable to get local issuer certificate")),
     "ssl_unknown_authority"),
    ("context chain", _context(RuntimeError("while handling"), ConnectionRefusedError(111, "x")),
     "connection_refused"),
    ("timeout chained on cancel", _context(TimeoutError(), asyncio.CancelledError()),
     "generic_timeout_error"),
    # everything else
    ("unknown", ValueError("something odd"), "unknown_failure: something odd"),
    ("unknown, empty message", KeyError(), "unknown_failure: KeyError"),
    ("unknown errno", OSError(errno.EPERM, "Operation not permitted"),
     "unknown_failure: EPERM: Operation not permitted"),
]


@pytest.mark.parametrize(("exc", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_failure_string_maps_exception(exc: BaseException, expected: str) -> None:
    assert failure_string(exc) == expected


@pytest.mark.parametrize("exc", [c[1] for c in CASES], ids=[c[0] for c in CASES])
def test_every_mapped_string_is_in_the_vocabulary(exc: BaseException) -> None:
    assert is_failure(failure_string(exc))


def test_cause_cycle_does_not_loop_forever() -> None:
    a, b = RuntimeError("a"), RuntimeError("b")
    a.__cause__, b.__cause__ = b, a
    assert failure_string(a) == "unknown_failure: a"


def test_unknown_message_is_one_line_and_bounded() -> None:
    got = failure_string(ValueError("line one\nline two " + "x" * 1000))
    assert "\n" not in got
    assert len(got) <= len("unknown_failure: ") + 200


def test_vocabulary_contains_the_strings_of_issue_2() -> None:
    named = {
        "connection_refused", "connection_reset", "eof_error", "generic_timeout_error",
        "dns_nxdomain_error", "dns_no_answer", "dns_servfail_error", "dns_refused_error",
        "ssl_invalid_hostname", "ssl_unknown_authority", "ssl_invalid_certificate",
        "ssl_failed_handshake", "http_request_failed",
    }
    assert named <= FAILURES


def _constants_outside_failures_module(spelled: Callable[[object], bool]) -> list[str]:
    """``file:line: value`` of every constant in probe/ but core/failures.py that ``spelled``."""
    import ast
    from pathlib import Path

    import probe

    root = Path(probe.__file__).parent
    found = []
    for path in sorted(root.rglob("*.py")):
        if path == root / "core" / "failures.py":
            continue
        for node in ast.walk(parse(path)):  # source_ast.parse: no GC while parsing (3.11)
            if isinstance(node, ast.Constant) and spelled(node.value):
                found.append(f"{path.relative_to(root.parent)}:{node.lineno}: {node.value}")
    return found


def test_no_failure_string_is_spelled_outside_failures_module() -> None:
    """Every failure string in probe/ is a ``Failure`` member, so a rename cannot miss a copy."""
    from probe.core.failures import Failure

    # "interrupted" is also a run status (runs.status), a different vocabulary.
    values = {f.value for f in Failure} - {"interrupted"}
    found = _constants_outside_failures_module(lambda value: isinstance(value, str) and value in values)
    assert found == []


def test_the_unknown_failure_is_not_spelled_outside_failures_module() -> None:
    """``unknown_failure: <message>`` is built from ``UNKNOWN_PREFIX``, never spelled."""
    found = _constants_outside_failures_module(
        lambda value: isinstance(value, str) and value.startswith("unknown_failure"))
    assert found == []


def test_failure_members_are_their_strings() -> None:
    from probe.core.failures import Failure

    assert Failure.CONNECTION_RESET == "connection_reset"
    assert json_round_trip(Failure.EOF_ERROR) == "eof_error"
    assert set(FAILURES) == {f.value for f in Failure}


def json_round_trip(value: object) -> object:
    import json

    return json.loads(json.dumps(value))
