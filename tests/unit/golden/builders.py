"""Builders for classifier test data: short calls that make typed observations and controls.

Used by the per-stage unit tests and by ``generate.py``, which writes the golden cases. The
JSON files of the golden cases are the source of truth; these builders only make them easy to
write and to review.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from probe.core.codec import to_data
from probe.core.model import (
    ControlObservation,
    ControlTCP,
    ControlTLS,
    DNSObservation,
    DNSReply,
    Hop,
    HTTPObservation,
    Measurement,
    Target,
    TCPObservation,
    TLSObservation,
)

T0 = 1_760_000_000.0
RESOLVER = "udp://10.66.1.1:53"
GOLDEN = Path(__file__).resolve().parent


def page(title: str, size: int = 2000, salt: str = "") -> bytes:
    """An HTML page with a title, padded to about ``size`` bytes."""
    head = f"<!DOCTYPE html><html><head><title>{title}</title></head><body><p>{salt}</p>"
    pad = max(0, size - len(head) - 14)
    return (head + "x" * pad + "</body></html>").encode()


def dns(
    host: str,
    addrs: Sequence[str] = (),
    *,
    qtype: str = "A",
    failure: str | None = None,
    replies: Sequence[tuple[str, Sequence[str]]] | None = None,
    cnames: Sequence[str] = (),
    resolver: str = RESOLVER,
) -> DNSObservation:
    """One query. ``replies`` lists (rcode, answers) of every reply; by default one, from ``addrs``."""
    if replies is None:
        rcode = {
            "dns_nxdomain_error": "NXDOMAIN",
            "dns_servfail_error": "SERVFAIL",
            "dns_refused_error": "REFUSED",
        }.get(failure or "", "NOERROR")
        replies = [] if failure == "generic_timeout_error" else [(rcode, tuple(addrs))]
    rs = tuple(
        DNSReply(t=0.01 * (k + 1), source=resolver.removeprefix("udp://"), rcode=rc, answers=tuple(a),
                 cnames=tuple(cnames) if k == 0 else ())
        for k, (rc, a) in enumerate(replies)
    )
    first = tuple(replies[0][1]) if replies else ()
    return DNSObservation(host, qtype, resolver, "udp", T0, 0.01, failure, first if not failure else (), rs)


def tcp(ip: str, port: int = 80, failure: str | None = None) -> TCPObservation:
    return TCPObservation(ip, port, T0 + 0.1, 0.01, failure)


def tls(
    ip: str, sni: str, failure: str | None = None, *, valid: bool | None = None, port: int = 443
) -> TLSObservation:
    if valid is None:
        valid = failure is None
    return TLSObservation(ip, port, sni, T0 + 0.2, 0.02, failure, "TLSv1.3" if failure is None else None,
                          cert_valid=valid if failure is None or failure.startswith("ssl_") else None)


def _title(body: bytes) -> str | None:
    m = re.search(rb"<title>(.*?)</title>", body, re.S | re.I)
    return m.group(1).decode("utf-8", "replace").strip() if m else None


def http(
    url: str,
    ip: str,
    *,
    port: int | None = None,
    status: int | None = 200,
    body: bytes = b"",
    headers: Sequence[tuple[str, str]] = (("content-type", "text/html; charset=utf-8"),),
    failure: str | None = None,
    location: str | None = None,
) -> HTTPObservation:
    if port is None:
        port = 443 if url.startswith("https:") else 80
    if failure is not None:
        return HTTPObservation(url, ip, port, T0 + 0.3, 0.05, failure)
    hdrs = tuple(headers) + ((("location", location),) if location else ())
    return HTTPObservation(url, ip, port, T0 + 0.3, 0.05, None, status, hdrs, len(body),
                           hashlib.sha256(body).hexdigest(), False, _title(body), body, location)


def hop(
    url: str,
    *,
    index: int = 0,
    dns_: Sequence[DNSObservation] = (),
    tcp_: Sequence[TCPObservation] = (),
    tls_: Sequence[TLSObservation] = (),
    http_: HTTPObservation | None = None,
    control: ControlObservation | None = None,
    dns_control: Sequence[DNSObservation] = (),
) -> Hop:
    scheme, rest = url.split("://", 1)
    hostport = rest.split("/", 1)[0]
    host, _, port = hostport.partition(":")
    return Hop(index, url, host, int(port) if port else (443 if scheme == "https" else 80), scheme,
               tuple(dns_), tuple(tcp_), tuple(tls_), http_, control, tuple(dns_control))


def measurement(*hops: Hop, failure: str | None = None) -> Measurement:
    url = hops[0].url
    target = Target(url, url, hops[0].scheme, hops[0].host, hops[0].port, "/", "", "test")
    return Measurement(target, T0, 1.0, 0, tuple(hops), failure)


def control(
    url: str,
    addrs: Sequence[str] = (),
    *,
    dns_failure: str | None = None,
    tcp_: Sequence[tuple[str, int, str | None]] = (),
    tls_: Sequence[tuple[str, int, str | None]] = (),
    body: bytes | None = None,
    status: int | None = 200,
    headers: Sequence[tuple[str, str]] = (("content-type", "text/html; charset=utf-8"),),
    http_failure: str | None = None,
    failure: str | None = None,
) -> ControlObservation:
    """What the helper saw. ``tcp_``/``tls_``: (ip, port, failure-or-None)."""
    host = url.split("://", 1)[1].split("/", 1)[0].split(":")[0]
    if failure is not None:
        return ControlObservation("http://127.0.0.1:9/", url, T0, 0.5, failure)
    if http_failure is not None or body is None:
        hs: dict[str, Any] = dict(http_failure=http_failure or "generic_timeout_error", http_status=None)
    else:
        hs = dict(http_status=status, http_body_length=len(body), http_headers=tuple(headers),
                  http_title=_title(body), http_body_sha256=hashlib.sha256(body).hexdigest())
    return ControlObservation(
        "http://127.0.0.1:9/", url, T0, 0.5, None, dns_failure, tuple(addrs),
        tuple(ControlTCP(ip, p, f is None, f) for ip, p, f in tcp_),
        tuple(ControlTLS(ip, p, host, f is None, f) for ip, p, f in tls_),
        **hs,
    )


def split(m: Measurement) -> tuple[Measurement, list[ControlObservation | None]]:
    """Observations without the helper's control, and the per-hop control list."""
    controls = [h.control for h in m.hops]
    return replace(m, hops=tuple(replace(h, control=None) for h in m.hops)), controls


def join(m: Measurement, controls: Sequence[ControlObservation | None]) -> Measurement:
    """Put a per-hop control list back into the hops (missing entries mean no control)."""
    hops = tuple(
        replace(h, control=controls[i] if i < len(controls) else None) for i, h in enumerate(m.hops)
    )
    return replace(m, hops=hops)


def write_case(name: str, m: Measurement, expected: dict[str, Any], root: Path = GOLDEN) -> Path:
    """Write one golden case directory: observations.json, control.json, verdict.json."""
    d = root / name
    d.mkdir(parents=True, exist_ok=True)
    obs, controls = split(m)
    (d / "observations.json").write_text(json.dumps(to_data(obs), indent=1, ensure_ascii=False) + "\n")
    (d / "control.json").write_text(json.dumps(to_data(controls), indent=1, ensure_ascii=False) + "\n")
    (d / "verdict.json").write_text(json.dumps(expected, indent=1, ensure_ascii=False) + "\n")
    return d
