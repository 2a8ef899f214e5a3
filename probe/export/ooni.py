"""probe measurements in OONI's Web Connectivity data format (ooni/spec).

One measurement per line, as OONI Probe submits them: the base data format (df-000-base) with
``test_name`` ``web_connectivity`` and ``test_keys`` as nettests/ts-017-web-connectivity.md
specifies, built from the data formats df-002-dnst (``queries``), df-005-tcpconnect
(``tcp_connect``), df-006-tlshandshake (``tls_handshakes``) and df-001-httpt (``requests``,
newest first), plus the control in the test helper's response format.

What probe does not observe is written as OONI writes an unknown: ``network_events`` is empty
(probe records operations, not socket reads and writes); ``client_resolver`` and
``resolver_ip`` are null/empty; ASNs of DNS answers are 0. The public IP is never stored, so
``probe_ip`` is ``127.0.0.1``, OONI's value for "not shared". The comparison keys
(``status_code_match``, ``body_length_match``, ...) are computed from the last hop against the
control the way OONI defines them; ``accessible`` and ``blocking`` are probe's verdict mapped
to OONI's vocabulary, and probe's own verdict is kept under ``x_probe_verdict``.
"""

from __future__ import annotations

import base64
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from probe.export import Record
    from probe.model import (
        ControlObservation,
        DNSObservation,
        Hop,
        HTTPObservation,
        Measurement,
        TLSObservation,
    )

__all__ = ["TEST_VERSION", "to_ooni"]

#: The Web Connectivity test keys written follow this version of the test (ts-017).
TEST_VERSION = "0.4.3"
DATA_FORMAT_VERSION = "0.2.0"


def _ooni_time(t: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(t))


def _iso_to_ooni(iso: str) -> str:
    return iso[:19].replace("T", " ")


def _endpoint(ip: str, port: int) -> str:
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


def _tags(hop: int) -> list[str]:
    return ["classic", f"depth={hop}"]


def _resolver_address(q: DNSObservation) -> str:
    r = q.resolver
    for prefix in ("udp://", "tcp://"):
        if r.startswith(prefix):
            return r[len(prefix):]
    if r.startswith("doh:"):
        return r[4:]
    return ""


_ENGINES = {"udp": "udp", "tcp": "tcp", "doh": "doh"}


def _query(q: DNSObservation, t0: float, hop: int, tid: int) -> dict[str, Any]:
    answers: list[dict[str, Any]] = []
    first = q.replies[0] if q.replies else None
    ttl = first.ttl if first is not None else None
    for name in first.cnames if first is not None else ():
        answers.append({"asn": 0, "as_org_name": "", "answer_type": "CNAME", "hostname": name,
                        "ttl": ttl})
    for addr in q.addresses:
        six = ":" in addr
        answers.append({"asn": 0, "as_org_name": "", "answer_type": "AAAA" if six else "A",
                        "ipv6" if six else "ipv4": addr, "ttl": ttl})
    raw = first.raw if first is not None else b""
    return {
        "answers": answers or None,
        "engine": "getaddrinfo" if q.resolver == "system" else _ENGINES.get(q.transport, q.transport),
        "failure": q.failure,
        "hostname": q.hostname,
        "query_type": q.qtype,
        "raw_response": base64.b64encode(raw).decode("ascii") if raw else None,
        "resolver_hostname": None,
        "resolver_port": None,
        "resolver_address": _resolver_address(q),
        "t0": round(q.started - t0, 6),
        "t": round(q.started - t0 + q.duration, 6),
        "tags": [f"depth={hop}"] if q.resolver != "system" else _tags(hop),
        "transaction_id": tid,
    }


def _tls(t: TLSObservation, t0: float, hop: int, tid: int) -> dict[str, Any]:
    return {
        "network": "tcp",
        "address": _endpoint(t.ip, t.port),
        "cipher_suite": t.cipher or "",
        "failure": t.failure,
        "negotiated_protocol": t.alpn or "",
        "no_tls_verify": False,
        "peer_certificates": [{"data": base64.b64encode(der).decode("ascii"), "format": "base64"}
                              for der in t.cert_chain] or None,
        "server_name": t.sni,
        "t0": round(t.started - t0, 6),
        "t": round(t.started - t0 + t.duration, 6),
        "tags": _tags(hop),
        "tls_version": t.version or "",
        "transaction_id": tid,
    }


def _body(body: bytes) -> str | dict[str, str]:
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:  # df-001: non-UTF-8 bodies are base64 objects
        return {"format": "base64", "data": base64.b64encode(body).decode("ascii")}


def _request(h: HTTPObservation, hop: Hop, t0: float, tid: int) -> dict[str, Any]:
    alpn = next((t.alpn for t in hop.tls if t.ip == h.ip and t.port == h.port and t.alpn), "")
    host = hop.host if hop.port in (80, 443) else f"{hop.host}:{hop.port}"
    req_headers = [["Host", host]]
    headers: dict[str, str] = {}
    for name, value in h.headers:
        headers.setdefault(name, value)  # df-001: the first value of each header
    response: dict[str, Any] = {
        "body": _body(h.body) if h.failure is None else "",
        "body_is_truncated": h.body_truncated,
        "code": h.status if h.status is not None else 0,
        "headers_list": [[n, v] for n, v in h.headers],
        "headers": headers,
    }
    return {
        "network": "tcp",
        "address": _endpoint(h.ip, h.port),
        "alpn": alpn or "",
        "failure": h.failure,
        "request": {
            "body": "",
            "body_is_truncated": False,
            "headers_list": req_headers,
            "headers": {"Host": host},
            "method": "GET",
            "tor": {"exit_ip": None, "exit_name": None, "is_tor": False},
            "x_transport": "tcp",
            "url": h.url,
        },
        "response": response,
        "t0": round(h.started - t0, 6),
        "t": round(h.started - t0 + h.duration, 6),
        "tags": _tags(hop.index),
        "transaction_id": tid,
    }


def _control(c: ControlObservation) -> dict[str, Any]:
    return {
        "tcp_connect": {_endpoint(x.ip, x.port): {"status": x.ok, "failure": x.failure}
                        for x in c.tcp},
        "tls_handshake": {_endpoint(x.ip, x.port): {"server_name": x.server_name, "status": x.ok,
                                                     "failure": x.failure} for x in c.tls},
        "http_request": {
            "body_length": c.http_body_length if c.http_body_length is not None else -1,
            "discovered_h3_endpoint": "",
            "failure": c.http_failure,
            "title": c.http_title or "",
            "headers": {n: v for n, v in c.http_headers},
            "status_code": c.http_status if c.http_status is not None else -1,
        },
        "dns": {"failure": c.dns_failure, "addrs": list(c.dns_addrs)},
        "ip_info": {ip: {"asn": asn, "flags": int(flags) if str(flags).isdigit() else 0}
                    for ip, asn, flags in c.ip_info},
    }


def _blocking(verdict: str, stage: str | None) -> tuple[bool | None, str | bool | None]:
    """probe's verdict as OONI's (accessible, blocking)."""
    if verdict == "ok":
        return True, False
    if verdict == "down":
        return False, False
    if verdict == "throttled":  # OONI has no word for it: the page loads (accessible)
        return True, False
    if verdict in ("blocked", "reset", "hijacked"):
        if stage == "dns":
            return False, "dns"
        if stage == "tcp":
            return False, "tcp_ip"
        if stage == "http" and verdict == "blocked":
            return False, "http-diff"
        return False, "http-failure"
    return None, None


def _comparisons(last: HTTPObservation | None, control: ControlObservation | None,
                 ) -> dict[str, Any]:
    keys: dict[str, Any] = {"body_length_match": None, "body_proportion": 0,
                            "headers_match": None, "status_code_match": None, "title_match": None}
    if last is None or control is None or last.failure or control.http_failure:
        return keys
    if last.status is not None and control.http_status is not None:
        keys["status_code_match"] = last.status == control.http_status
    a, b = last.body_length, control.http_body_length
    if a is not None and b is not None and max(a, b) > 0:
        proportion = min(a, b) / max(a, b)
        keys["body_proportion"] = round(proportion, 6)
        keys["body_length_match"] = proportion > 0.7  # ts-017's threshold
    if last.title is not None and control.http_title is not None:
        # ts-017: the first word of the title of at least five characters must match.
        def word(t: str) -> str:
            return next((w for w in t.split() if len(w) >= 5), "")

        keys["title_match"] = word(last.title).lower() == word(control.http_title).lower()
    if control.http_headers:
        ours = {n.lower() for n, _ in last.headers}
        theirs = {n.lower() for n, _ in control.http_headers}
        keys["headers_match"] = bool(ours & theirs) if ours and theirs else None
    return keys


def _test_keys(m: Measurement, record: Record) -> dict[str, Any]:
    t0 = m.started
    queries: list[dict[str, Any]] = []
    tcp: list[dict[str, Any]] = []
    tls: list[dict[str, Any]] = []
    requests: list[dict[str, Any]] = []
    tid = 0
    control = None
    last_http = None
    dns_failure = None
    http_failure = None
    for hop in m.hops:
        for q in (*hop.dns, *hop.dns_control):
            tid += 1
            queries.append(_query(q, t0, hop.index, tid))
        if hop.index == 0 and hop.dns:
            dns_failure = hop.dns[0].failure if all(q.failure for q in hop.dns) else None
        by_endpoint: dict[str, int] = {}
        for c in hop.tcp:
            tid += 1
            by_endpoint[_endpoint(c.ip, c.port)] = tid
            tcp.append({"ip": c.ip, "port": c.port,
                        "status": {"failure": c.failure, "success": c.failure is None},
                        "t0": round(c.started - t0, 6), "t": round(c.started - t0 + c.duration, 6),
                        "tags": _tags(hop.index), "transaction_id": tid})
        for t in hop.tls:
            ep = _endpoint(t.ip, t.port)
            tls.append(_tls(t, t0, hop.index, by_endpoint.get(ep, tid)))
        if hop.http is not None:
            ep = _endpoint(hop.http.ip, hop.http.port)
            requests.append(_request(hop.http, hop, t0, by_endpoint.get(ep, tid)))
            last_http = hop.http
            http_failure = hop.http.failure
        if hop.control is not None and control is None:
            control = hop.control
    requests.reverse()  # ts-017: newest first
    v = record.verdict
    accessible, blocking = _blocking(v.verdict, v.stage)
    if v.verdict == "hijacked" and v.stage == "dns":
        consistency: str | None = "inconsistent"
    elif queries and dns_failure is None and control is not None and not control.failure:
        consistency = "consistent"
    else:
        consistency = None
    keys: dict[str, Any] = {
        "agent": "redirect",
        "client_resolver": None,
        "retries": None,
        "socksproxy": None,
        "network_events": [],
        "queries": queries,
        "tcp_connect": tcp,
        "tls_handshakes": tls,
        "requests": requests,
        "control": _control(control) if control is not None else None,
        "control_failure": control.failure if control is not None else "control_not_available",
        "dns_experiment_failure": dns_failure,
        "dns_consistency": consistency,
        "http_experiment_failure": http_failure,
        **_comparisons(last_http, control),
        "accessible": accessible,
        "blocking": blocking,
        "x_probe_verdict": {
            "verdict": v.verdict, "stage": v.stage, "hop": v.hop, "reasons": list(v.reasons),
            "classifier_version": v.classifier_version, "classified_at": record.classified_at,
        },
    }
    return keys


def to_ooni(record: Record) -> dict[str, Any]:
    """One measurement as an OONI Web Connectivity measurement (a JSON-able dict)."""
    m = record.measurement
    asn = f"AS{record.asn}" if record.asn else "AS0"
    cc = record.country or "ZZ"
    run_time = _iso_to_ooni(record.run_started_at)
    report_id = (f"{run_time.replace('-', '').replace(':', '').replace(' ', 'T')}Z_webconnectivity_"
                 f"{cc}_{asn[2:]}_n1_{record.run_uid.replace('-', '')[-16:]}")
    helper = next((h.control.source for h in m.hops if h.control is not None), None)
    from probe import __version__

    return {
        "annotations": {
            "engine_name": "probe",
            "engine_version": __version__,
            "platform": "linux",
            "probe_vantage_point": record.vantage,
            "probe_vantage_uid": record.vantage_uid,
            "probe_run_uid": record.run_uid,
        },
        "data_format_version": DATA_FORMAT_VERSION,
        "extensions": {"dnst": 0, "httpt": 0, "netevents": 0, "tcpconnect": 0, "tlshandshake": 0},
        "id": record.uid,
        "input": m.target.url,
        "measurement_start_time": _ooni_time(m.started),
        "probe_asn": asn,
        "probe_cc": cc,
        "probe_ip": "127.0.0.1",
        "probe_network_name": record.as_org or "",
        "report_id": report_id,
        "resolver_asn": "AS0",
        "resolver_ip": "",
        "resolver_network_name": "",
        "software_name": "probe",
        "software_version": record.software_version,
        "test_helpers": {"backend": {"address": helper, "type": "https"}} if helper else {},
        "test_keys": _test_keys(m, record),
        "test_name": "web_connectivity",
        "test_runtime": round(m.runtime, 6),
        "test_start_time": run_time,
        "test_version": TEST_VERSION,
    }
