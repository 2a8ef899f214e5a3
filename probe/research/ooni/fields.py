"""OONI's values read defensively: times, failures, bodies, headers, addresses, DNS queries.

A field of the wrong type is treated as missing (a default), so the measurement it belongs to
is still mapped with what it does carry; only a missing or malformed start time is an
:class:`OONIFormatError` (nothing can be placed in time without it).
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from probe.core.failures import CERTIFICATE_FAILURES, Failure
from probe.core.model import (
    DNSObservation,
    DNSReply,
    TCPObservation,
    TLSObservation,
)
from probe.core.net import parse_hostport
from probe.measure.control.protocol import target_from_url
from probe.research.ooni.record import OONIFormatError

#: Bodies are kept up to this size, as probe's own engine caps them.
BODY_CAP = 1 << 20
_TITLE = re.compile(rb"<title[^>]*>(.*?)</title>", re.I | re.S)
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
# Failure strings of older engines, mapped to the ones probe's classifier knows.
_FAILURES: dict[str, str] = {
    "connection_refused_error": Failure.CONNECTION_REFUSED,
    "connection_reset_error": Failure.CONNECTION_RESET,
    "ssl_error": Failure.SSL_FAILED_HANDSHAKE,
}


def _epoch(text: object) -> float:
    if not isinstance(text, str):
        raise OONIFormatError("measurement_start_time missing")
    try:
        return datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC).timestamp()
    except ValueError:
        raise OONIFormatError(f"bad measurement_start_time {text!r}") from None


def _failure(value: object) -> str | None:
    if value is None or value is False:
        return None
    if not isinstance(value, str):
        return Failure.UNKNOWN
    f = value.strip()
    if f.startswith("ssl_error") and "certificate verify failed" in f:
        return Failure.SSL_INVALID_CERTIFICATE  # Measurement Kit's OpenSSL message
    if "stopped after" in f and "redirects" in f:
        return Failure.HTTP_TOO_MANY_REDIRECTS  # Go's net/http, as OONI's engine reports it
    if f.startswith(Failure.UNKNOWN):
        return Failure.UNKNOWN
    return _FAILURES.get(f, f)


def _num(value: object, default: float = 0.0) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else default


def _list(value: object) -> list[Mapping[str, Any]]:
    return [x for x in value if isinstance(x, Mapping)] if isinstance(value, list) else []


def _str(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _obj(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _body(value: object) -> bytes:
    if isinstance(value, str):
        return value.encode("utf-8", "surrogatepass")[:BODY_CAP]
    if isinstance(value, Mapping) and value.get("format") == "base64":
        try:
            return base64.b64decode(str(value.get("data", "")), validate=False)[:BODY_CAP]
        except (binascii.Error, ValueError):
            return b""
    return b""


def _headers(value: object) -> tuple[tuple[str, str], ...]:
    """OONI's headers: a ``{name: value}`` map, or (0.4+) ``headers_list`` pairs."""
    out: list[tuple[str, str]] = []
    if isinstance(value, Mapping):
        for k, v in value.items():
            if isinstance(v, list):
                v = v[0] if v else ""
            if isinstance(v, Mapping) and v.get("format") == "base64":
                v = _body(v).decode("latin-1")
            if isinstance(v, str):
                out.append((str(k).lower(), v))
    elif isinstance(value, list):
        for pair in value:
            if isinstance(pair, list) and len(pair) == 2 and isinstance(pair[1], str):
                out.append((str(pair[0]).lower(), pair[1]))
    return tuple(out)


def _host_port(url: str) -> tuple[str, str, int]:
    t = target_from_url(url)
    return t.scheme, t.host, t.port


def _split_address(addr: object) -> tuple[str, int] | None:
    """OONI's ``IP:PORT`` / ``[IPv6]:PORT`` (Go's JoinHostPort), or None."""
    if not isinstance(addr, str) or not addr:
        return None
    try:
        return parse_hostport(addr)
    except ValueError:
        return None


def _dns(q: Mapping[str, Any], t0: float, resolver_ip: str) -> DNSObservation | None:
    host = q.get("hostname")
    qtype = q.get("query_type")
    if not isinstance(host, str) or qtype not in ("A", "AAAA", "ANY"):
        return None
    addrs: list[str] = []
    cnames: list[str] = []
    for a in _list(q.get("answers")):
        kind = a.get("answer_type")
        if kind == "A" and isinstance(a.get("ipv4"), str):
            addrs.append(a["ipv4"])
        elif kind == "AAAA" and isinstance(a.get("ipv6"), str):
            addrs.append(a["ipv6"])
        elif kind == "CNAME" and isinstance(a.get("hostname"), str):
            cnames.append(a["hostname"])
    failure = _failure(q.get("failure"))
    engine = q.get("engine") if isinstance(q.get("engine"), str) else "system"
    addr = q.get("resolver_address")
    resolver = f"udp://{addr}" if engine == "udp" and isinstance(addr, str) and addr else "system"
    if resolver == "system" and resolver_ip:
        resolver = f"system:{resolver_ip}"
    rcodes: dict[str, str] = {Failure.DNS_NXDOMAIN_ERROR: "NXDOMAIN", Failure.DNS_SERVFAIL_ERROR: "SERVFAIL",
                              Failure.DNS_REFUSED_ERROR: "REFUSED"}  # fmt: skip
    rcode = rcodes.get(failure or "", "NOERROR")
    timeout = failure in (Failure.GENERIC_TIMEOUT_ERROR, Failure.DNS_TIMEOUT_ERROR)
    reply = () if timeout else (DNSReply(t=_num(q.get("t")), source="", rcode=rcode, answers=tuple(addrs),
                                         cnames=tuple(cnames)),)  # fmt: skip
    if not addrs and failure is None and qtype != "ANY":
        failure = Failure.DNS_NO_ANSWER
    return DNSObservation(
        hostname=host.rstrip(".").lower(),
        qtype="A" if qtype == "ANY" else qtype,
        resolver=resolver,
        transport="udp" if engine == "udp" else "system",
        started=t0,
        duration=_num(q.get("t")),
        failure=failure,
        addresses=tuple(addrs) if failure is None or addrs else (),
        replies=reply,
    )


def _title(body: bytes) -> str | None:
    m = _TITLE.search(body[:65536])
    if not m:
        return None
    return re.sub(r"\s+", " ", m.group(1).decode("utf-8", "replace")).strip() or None



def tcp_observations(value: object, t0: float,
                     failure: Callable[[object], str | None] = _failure) -> list[TCPObservation]:
    """OONI's ``tcp_connect`` entries (df-005) as probe's TCP observations (``failure`` reads
    OONI's failure strings); entries without an address or port are left out."""
    out: list[TCPObservation] = []
    for c in _list(value):
        c_ip, c_port = c.get("ip"), c.get("port")
        if not isinstance(c_ip, str) or not isinstance(c_port, int) or isinstance(c_port, bool):
            continue
        st = _obj(c.get("status"))
        fail = failure(st.get("failure"))
        if fail is None and st.get("success") is False:
            fail = Failure.UNKNOWN
        out.append(TCPObservation(c_ip.strip("[]"), c_port, t0 + _num(c.get("t")), 0.0, fail))
    return out


def tls_observations(value: object, t0: float,
                     failure: Callable[[object], str | None] = _failure) -> list[TLSObservation]:
    """OONI's ``tls_handshakes`` entries (df-006) as probe's TLS observations. A handshake
    without failure validated the certificate (OONI's engine verifies chain and name); entries
    without an address are left out."""
    out: list[TLSObservation] = []
    for h in _list(value):
        ap = _split_address(h.get("address"))
        if ap is None:
            continue
        fail = failure(h.get("failure"))
        certs = [data for data in (_body(pc) for pc in _list(h.get("peer_certificates"))) if data]
        valid = True if fail is None else (False if fail in CERTIFICATE_FAILURES else None)
        out.append(TLSObservation(
            ip=ap[0], port=ap[1], sni=str(h.get("server_name") or ""), started=t0 + _num(h.get("t")),
            duration=0.0, failure=fail, version=_str(h.get("tls_version")),
            cipher=_str(h.get("cipher_suite")), alpn=_str(h.get("negotiated_protocol")),
            cert_chain=tuple(certs), cert_valid=valid,
        ))  # fmt: skip
    return out
