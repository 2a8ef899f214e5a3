"""One OONI Web Connectivity measurement -> probe's records (see :mod:`probe.research.ooni`)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any
from urllib.parse import urljoin, urlsplit

from probe.core.failures import Failure
from probe.core.model import (
    ControlObservation,
    Hop,
    HTTPObservation,
    Measurement,
    TCPObservation,
)
from probe.measure.control.protocol import THRequestError, THResponseError, parse_response, target_from_url
from probe.research.ooni.fields import (
    _REDIRECTS,
    _body,
    _dns,
    _epoch,
    _failure,
    _headers,
    _host_port,
    _list,
    _num,
    _obj,
    _split_address,
    _title,
    tcp_observations,
    tls_observations,
)
from probe.research.ooni.record import OONIFormatError, OONIRecord, ooni_verdict

__all__ = ["http_observation", "measurement_meta", "parse_measurement", "software_engine"]


def parse_measurement(raw: object) -> OONIRecord:
    """Map one OONI measurement (a parsed JSON object). Raises :class:`OONIFormatError`."""
    if not isinstance(raw, Mapping):
        raise OONIFormatError("not a JSON object")
    if raw.get("test_name") != "web_connectivity":
        raise OONIFormatError(f"not a web_connectivity measurement ({raw.get('test_name')!r})")
    tk = raw.get("test_keys")
    if not isinstance(tk, Mapping):
        raise OONIFormatError("test_keys missing")
    url = raw.get("input")
    if not isinstance(url, str) or not url:
        raise OONIFormatError("input (the URL) missing")
    try:
        target = target_from_url(url)
    except THRequestError as exc:
        raise OONIFormatError(str(exc)) from None
    t0 = _epoch(raw.get("measurement_start_time"))
    inferred: set[str] = set()
    software, engine = software_engine(raw)
    resolver_ip = raw.get("resolver_ip") if isinstance(raw.get("resolver_ip"), str) else ""
    client_resolver = tk.get("client_resolver")
    if not resolver_ip and isinstance(client_resolver, str):
        resolver_ip = client_resolver

    # The redirect chain: OONI lists requests newest first.
    chain: list[Mapping[str, Any]] = []
    for r in reversed(_list(tk.get("requests"))):
        req = _obj(r.get("request"))
        if isinstance(req.get("url"), str):
            chain.append(r)
    urls = [str(_obj(r.get("request")).get("url")) for r in chain] or [target.url]
    hops_spec: list[tuple[str, str, str, int]] = []
    for u in urls:
        try:
            scheme, host, port = _host_port(u)
        except THRequestError:
            continue
        hops_spec.append((u, scheme, host, port))
    if not hops_spec:
        hops_spec = [(target.url, target.scheme, target.host, target.port)]
    # Engine 0.5 records no request for the hop a redirect led to when that hop failed before
    # HTTP (DNS, TCP, TLS): the failure is only in http_experiment_failure. Rebuild that hop.
    tail_failure = _failure(tk.get("http_experiment_failure"))
    if chain and len(chain) == len(hops_spec):
        last = _obj(chain[-1].get("response"))
        code = last.get("code")
        loc = next(
            (v for k, v in _headers(last.get("headers_list") or last.get("headers")) if k == "location"), None
        )
        nxt = _absolute(hops_spec[-1][0], loc) if code in _REDIRECTS else None
        if nxt is not None and chain[-1].get("failure") is None:
            try:
                scheme, host, port = _host_port(nxt)
            except THRequestError:
                pass
            else:
                hops_spec.append((nxt, scheme, host, port))
                inferred.add("redirect-hop")

    queries = [q for q in (_dns(q, t0, str(resolver_ip)) for q in _list(tk.get("queries"))) if q]
    if queries:
        inferred.add("dns-replies")
    host_addrs: dict[str, set[str]] = {}
    for q in queries:
        host_addrs.setdefault(q.hostname, set()).update(q.addresses)

    tcp_all = tcp_observations(tk.get("tcp_connect"), t0)
    tls_all = tls_observations(tk.get("tls_handshakes"), t0)
    if any(t.failure is None for t in tls_all):
        inferred.add("tls-cert-valid")

    control: ControlObservation | None = None
    th_url = ""
    helpers = _obj(raw.get("test_helpers"))
    backend = helpers.get("backend")
    if isinstance(backend, Mapping):
        th_url = str(backend.get("address") or "")
    elif isinstance(backend, str):
        th_url = backend
    source = f"ooni:{th_url}" if th_url else "ooni"
    cf = _failure(tk.get("control_failure"))
    if cf is not None:
        control = ControlObservation(source, target.url, t0, 0.0, cf)
    elif isinstance(tk.get("control"), Mapping) and tk.get("control"):
        try:
            control = parse_response(tk["control"], source=source, url=target.url, started=t0)
        except THResponseError:
            control = None
        if control is not None:
            hs = _obj(_obj(tk["control"]).get("http_request"))
            control = _fix_control(control, hs)

    hops: list[Hop] = []
    used_tcp: set[int] = set()
    n = len(hops_spec)
    for i, (u, scheme, host, port) in enumerate(hops_spec):
        addrs = host_addrs.get(host, set())
        if i == 0 and not addrs and n == 1:
            addrs = {t.ip for t in tcp_all}
        h_tcp = []
        for k, t in enumerate(tcp_all):
            if k in used_tcp:
                continue
            if t.ip in addrs or (host == t.ip):
                h_tcp.append(t)
                used_tcp.add(k)
        if h_tcp and i > 0:
            inferred.add("hop-of-tcp")
        h_tls = [t for t in tls_all if t.sni.lower() == host.lower() and (t.ip in addrs or not addrs)]
        http = http_observation(chain[i] if i < len(chain) else None, u, host, port, h_tcp, t0, inferred)
        if http is None and i == len(chain) and i > 0 and tail_failure is not None:
            ok = [t.ip for t in h_tcp if t.failure is None and t.port == port]
            if ok and (scheme == "http" or any(t.failure is None for t in h_tls)):
                # Connected (and TLS went through): the failure was the HTTP exchange's.
                http = HTTPObservation(u, ok[0], port, t0, 0.0, tail_failure)
        hops.append(Hop(
            index=i, url=u, host=host, port=port, scheme=scheme,
            dns=tuple(q for q in queries if q.hostname == host.lower()),
            tcp=tuple(h_tcp), tls=tuple(h_tls), http=http,
            control=control if i == 0 else None,
        ))  # fmt: skip
    # Connects we could not attribute stay on hop 0 (they were made for the input URL).
    rest = [t for k, t in enumerate(tcp_all) if k not in used_tcp]
    if rest and hops:
        inferred.add("hop-of-tcp")
        h0 = hops[0]
        hops[0] = Hop(h0.index, h0.url, h0.host, h0.port, h0.scheme, h0.dns, h0.tcp + tuple(rest), h0.tls,
                      h0.http, h0.control, h0.dns_control)  # fmt: skip
    m = Measurement(
        target=target, started=t0, runtime=_num(raw.get("test_runtime")), attempt=0, hops=tuple(hops),
    )  # fmt: skip
    blocking = tk.get("blocking")
    accessible = tk.get("accessible")
    meta = measurement_meta(raw, software, engine)
    return OONIRecord(
        measurement=m,
        meta=meta,
        blocking=blocking if isinstance(blocking, str) else ("false" if blocking is False else None),
        accessible=accessible if isinstance(accessible, bool) else None,
        ooni_verdict=ooni_verdict(blocking, accessible),
        inferred=tuple(sorted(inferred)),
    )


def software_engine(raw: Mapping[str, Any]) -> tuple[str, str]:
    """``software_name/software_version`` and the engine that made the measurement."""
    software = f"{_text(raw, 'software_name') or ''}/{_text(raw, 'software_version') or ''}"
    engine = str(_obj(raw.get("annotations")).get("engine_name") or "")
    if not engine and "measurement_kit" in software:
        engine = "libmeasurement_kit"
    return software, engine


def measurement_meta(raw: Mapping[str, Any], software: str, engine: str) -> dict[str, Any]:
    """OONI's identifiers of a measurement, its network and its software (``OONIRecord.meta``)."""
    return {
        "report_id": _text(raw, "report_id"),
        "measurement_uid": _uid(raw),
        "probe_asn": _text(raw, "probe_asn"),
        "probe_cc": _text(raw, "probe_cc"),
        "probe_network_name": _text(raw, "probe_network_name"),
        "resolver_asn": _text(raw, "resolver_asn"),
        "measurement_start_time": raw.get("measurement_start_time"),
        "software": software,
        "engine": engine,
        "test_version": _text(raw, "test_version"),
    }


_JSON_TYPES = {dict: "an object", list: "an array", bool: "a boolean", int: "a number",
               float: "a number"}


def _text(raw: Mapping[str, Any], key: str) -> str | None:
    """A metadata field that must be a string when present (it names the measurement, its
    network or its vantage point): anything else makes the line unusable, said by name."""
    value = raw.get(key)
    if value is None or isinstance(value, str):
        return value
    raise OONIFormatError(f"{key}: expected a string, got {_JSON_TYPES.get(type(value), 'a value')}")


def _uid(raw: Mapping[str, Any]) -> str:
    """OONI's measurement_uid (or the older ``id``); for a measurement with neither and no
    report id (QA fixtures), a digest of its content, so that distinct ones stay distinct."""
    for key in ("measurement_uid", "id"):
        v = raw.get(key)
        if isinstance(v, str) and v:
            return v
    if raw.get("report_id"):
        return ""
    digest = hashlib.sha256(json.dumps(raw, sort_keys=True, default=str).encode()).hexdigest()
    return f"sha256:{digest[:32]}"


def _fix_control(c: ControlObservation, hs: Mapping[str, Any]) -> ControlObservation:
    """Older helpers send ``status_code``/``body_length`` as -1 on failure without a failure."""
    if c.http_failure is None and (c.http_status is None or c.http_status < 0) and hs:
        return replace(c, http_failure=Failure.UNKNOWN, http_status=None, http_body_length=None)
    if c.http_body_length is not None and c.http_body_length < 0:
        return replace(c, http_body_length=None)
    return c


def http_observation(
    r: Mapping[str, Any] | None,
    url: str,
    host: str,
    port: int,
    tcp: Sequence[TCPObservation],
    t0: float,
    inferred: set[str],
) -> HTTPObservation | None:
    if r is None:
        return None
    resp = _obj(r.get("response"))
    fail = _failure(r.get("failure"))
    ip = ""
    ap = _split_address(r.get("address"))
    if ap is not None:
        ip, port = ap
    else:
        ok = [t.ip for t in tcp if t.failure is None and t.port == port]
        if ok:
            ip = ok[0]
            inferred.add("http-ip")
    code = resp.get("code")
    status = code if isinstance(code, int) and not isinstance(code, bool) and code > 0 else None
    body = _body(resp.get("body"))
    headers = _headers(resp.get("headers_list") or resp.get("headers"))
    location = next((v for k, v in headers if k == "location"), None) if status in _REDIRECTS else None
    if status is None and fail is None:
        fail = Failure.UNKNOWN
    return HTTPObservation(
        url=url, ip=ip, port=port, started=t0 + _num(r.get("t")), duration=0.0, failure=fail,
        status=status, headers=headers, body_length=len(body) if status is not None else None,
        body_sha256=hashlib.sha256(body).hexdigest() if status is not None else None,
        body_truncated=bool(resp.get("body_is_truncated")), title=_title(body), body=body,
        location=_absolute(url, location),
    )  # fmt: skip


def _absolute(base: str, location: str | None) -> str | None:
    if not location:
        return None
    try:
        out = urljoin(base, location)
        urlsplit(out)
    except ValueError:
        return None
    return out

