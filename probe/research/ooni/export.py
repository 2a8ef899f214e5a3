"""probe measurements in OONI's Web Connectivity data format (ooni/spec).

One measurement per line, as OONI Probe submits them: the base data format (df-000-base) with
``test_name`` ``web_connectivity`` and ``test_keys`` as nettests/ts-017-web-connectivity.md
specifies, built from the data formats df-002-dnst (``queries``), df-005-tcpconnect
(``tcp_connect``), df-006-tlshandshake (``tls_handshakes``) and df-001-httpt (``requests``,
newest first), plus the control in the test helper's response format.

What probe observes fills OONI's keys: ``network_events`` (df-008) holds the operations probe
timed, as OONI Probe writes them: ``connect`` per TCP connect, ``tls_handshake_start`` /
``_done`` per handshake, ``http_transaction_start`` / ``_done`` per request, and for DNS over
UDP a ``write_to`` per query and a ``read_from`` per reply received (with its size: every
reply, so an injected answer racing the real one shows); the run's network identity gives
``probe_asn``/``probe_cc``/``probe_network_name``, and its resolver seen from outside gives
``resolver_ip``/``resolver_asn``/``resolver_network_name`` and ``client_resolver``; DNS answers
get the ASN the control's helper reported for the address, else the one of probe's IP-to-ASN
data (``probe geo path``) at export time; requests list the headers probe sent (the run's
User-Agent and probe's fixed browser headers).

What probe does not observe is written as OONI writes an unknown: socket ``read``/``write``
events with their byte counts (probe times operations, not each read and write of the socket,
and ``bytes_received_cumulative`` would need the TLS and header bytes it does not count), a
resolver probe did not identify (empty ``resolver_ip``, ``AS0``), an answer address no data
knows (ASN 0). The public IP is never stored, so ``probe_ip`` is ``127.0.0.1``, OONI's value
for "not shared". The comparison keys (``status_code_match``, ``body_length_match``, ...) are
computed from the last hop against the control the way OONI defines them; ``accessible`` and
``blocking`` are probe's verdict mapped to OONI's vocabulary, and probe's own verdict is kept
under ``x_probe_verdict``.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from probe import __version__
from probe.core.net import format_endpoint
from probe.inputs.geo import open_default_geo
from probe.store.export import Filters, iter_records

if TYPE_CHECKING:
    from collections.abc import Callable

    from probe.core.model import (
        ControlObservation,
        DNSObservation,
        Hop,
        HTTPObservation,
        Measurement,
        QUICObservation,
        TLSObservation,
    )
    from probe.store import Store
    from probe.store.export import Record

__all__ = ["TEST_VERSION", "geo_asn_lookup", "ooni_lines", "to_ooni"]

#: The Web Connectivity test keys written follow this version of the test (ts-017).
TEST_VERSION = "0.4.3"
DATA_FORMAT_VERSION = "0.2.0"


def _ooni_time(t: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(t))


def _iso_to_ooni(iso: str) -> str:
    return iso[:19].replace("T", " ")


def _tags(hop: int) -> list[str]:
    # As OONI Probe tags the TCP, TLS and HTTP operations of the classic algorithm, whose
    # connections fetch the body (probe's do: it fetches on the connection it measured).
    return ["classic", "tcptls_experiment", f"depth={hop}", "fetch_body=true"]


def _no_asn(ip: str) -> tuple[int, str]:
    return 0, ""


def _resolver_address(q: DNSObservation) -> str:
    r = q.resolver
    for prefix in ("udp://", "tcp://"):
        if r.startswith(prefix):
            return r[len(prefix):]
    if r.startswith("doh:"):
        return r[4:]
    return ""


_ENGINES = {"udp": "udp", "tcp": "tcp", "doh": "doh"}


def _query(q: DNSObservation, t0: float, hop: int, tid: int,
           asn_of: Callable[[str], tuple[int, str]]) -> dict[str, Any]:
    answers: list[dict[str, Any]] = []
    first = q.replies[0] if q.replies else None
    ttl = first.ttl if first is not None else None
    for name in first.cnames if first is not None else ():
        answers.append({"asn": 0, "as_org_name": "", "answer_type": "CNAME", "hostname": name,
                        "ttl": ttl})
    for addr in q.addresses:
        six = ":" in addr
        asn, org = asn_of(addr)
        answers.append({"asn": asn, "as_org_name": org, "answer_type": "AAAA" if six else "A",
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


def _dns_events(q: DNSObservation, t0: float, hop: int, tid: int) -> list[dict[str, Any]]:
    """df-008 events of a DNS query over UDP: the query sent, then every reply received."""
    if q.transport != "udp" or q.resolver == "system":
        return []
    start = round(q.started - t0, 6)
    tags = [f"depth={hop}"]
    events: list[dict[str, Any]] = [
        {"address": _resolver_address(q), "failure": None, "operation": "write_to",
         "proto": "udp", "t0": start, "t": start, "tags": tags, "transaction_id": tid},
    ]
    waited = start
    for r in q.replies:
        at = round(q.started - t0 + r.t, 6)
        event: dict[str, Any] = {"address": r.source, "failure": None, "operation": "read_from",
                                 "proto": "udp", "t0": waited, "t": at, "tags": tags,
                                 "transaction_id": tid}
        if r.raw:
            event["num_bytes"] = len(r.raw)
        events.append(event)
        waited = at
    if q.failure is not None and not q.replies:  # the read that ended with nothing (a timeout)
        events.append({"address": _resolver_address(q), "failure": q.failure,
                       "operation": "read_from", "proto": "udp", "t0": waited,
                       "t": round(q.started - t0 + q.duration, 6), "tags": tags,
                       "transaction_id": tid})
    return events


def _span_events(op: str, address: str, started: float, duration: float, failure: str | None,
                 t0: float, hop: int, tid: int) -> list[dict[str, Any]]:
    """``op_start`` and ``op_done`` events (OONI Probe's TLS handshake and HTTP transaction)."""
    a, b = round(started - t0, 6), round(started - t0 + duration, 6)
    return [
        {"address": address, "failure": None, "operation": f"{op}_start", "proto": "tcp",
         "t0": a, "t": a, "tags": _tags(hop), "transaction_id": tid},
        {"address": address, "failure": failure, "operation": f"{op}_done", "proto": "tcp",
         "t0": b, "t": b, "tags": _tags(hop), "transaction_id": tid},
    ]


def _tls(t: TLSObservation, t0: float, hop: int, tid: int) -> dict[str, Any]:
    return {
        "network": "tcp",
        "address": format_endpoint(t.ip, t.port),
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


def _quic(q: QUICObservation, t0: float, hop: int, tid: int, decoy: bool) -> dict[str, Any]:
    """A QUIC handshake as df-006 records one: network ``udp`` (ooni/probe-cli#946)."""
    return {
        "network": "udp",
        "address": format_endpoint(q.ip, q.port),
        "cipher_suite": "",
        "failure": q.failure,
        "negotiated_protocol": q.alpn or "",
        "no_tls_verify": True,  # probe's QUIC test does not verify (docs/protocols.md)
        "peer_certificates": None,
        "server_name": q.sni,
        "t0": round(q.started - t0, 6),
        "t": round(q.started - t0 + q.duration, 6),
        "tags": [f"depth={hop}", "quic", *(["decoy"] if decoy else [])],
        "tls_version": "TLSv1.3" if q.failure is None else "",
        "transaction_id": tid,
    }


def _body(body: bytes) -> str | dict[str, str]:
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:  # df-001: non-UTF-8 bodies are base64 objects
        return {"format": "base64", "data": base64.b64encode(body).decode("ascii")}


def _sent_headers(host: str, user_agent: str | None) -> list[list[str]]:
    """The request headers probe sent (probe/measure/http.py): Host, the run's User-Agent and the
    fixed browser headers; only Host when the run did not record its User-Agent."""
    if user_agent is None:
        return [["Host", host]]
    # Imported on first use: probe.measure.http imports httpx (0.6 s here), and only the runs
    # that recorded their User-Agent need the header list.
    from probe.measure.http import BROWSER_HEADERS

    return [["Host", host], ["User-Agent", user_agent], *([n, v] for n, v in BROWSER_HEADERS)]


def _request(h: HTTPObservation, hop: Hop, t0: float, tid: int, user_agent: str | None
             ) -> dict[str, Any]:
    alpn = next((t.alpn for t in hop.tls if t.ip == h.ip and t.port == h.port and t.alpn), "")
    host = hop.host if hop.port in (80, 443) else f"{hop.host}:{hop.port}"
    req_headers = _sent_headers(host, user_agent)
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
        "address": format_endpoint(h.ip, h.port),
        "alpn": alpn or "",
        "failure": h.failure,
        "request": {
            "body": "",
            "body_is_truncated": False,
            "headers_list": req_headers,
            "headers": {n: v for n, v in req_headers},
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
    quic: dict[str, Any] = {}
    if c.quic:
        quic["quic_handshake"] = {format_endpoint(x.ip, x.port): {"server_name": x.server_name,
                                                                  "status": x.ok, "failure": x.failure}
                                  for x in c.quic}  # fmt: skip
    if c.http3_status is not None or c.http3_failure is not None:
        quic["http3_request"] = {
            "body_length": -1, "discovered_h3_endpoint": "", "failure": c.http3_failure, "title": "",
            "headers": {}, "status_code": c.http3_status if c.http3_status is not None else -1,
        }  # fmt: skip
    return {**quic,
        "tcp_connect": {format_endpoint(x.ip, x.port): {"status": x.ok, "failure": x.failure}
                        for x in c.tcp},
        "tls_handshake": {format_endpoint(x.ip, x.port): {"server_name": x.server_name, "status": x.ok,
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


def _asn_lookup(m: Measurement, geo_asn: Callable[[str], tuple[int, str]]
                ) -> Callable[[str], tuple[int, str]]:
    """ASN of an answer: the helper's (``ip_info``, measured with the control), else ``geo_asn``."""
    helper = {ip: asn for h in m.hops if h.control is not None
              for ip, asn, _ in h.control.ip_info if asn}  # fmt: skip

    def asn_of(ip: str) -> tuple[int, str]:
        found = geo_asn(ip)
        if ip in helper and helper[ip] != found[0]:
            return helper[ip], ""  # the helper's answer, whose organisation name we lack
        return found

    return asn_of


def _test_keys(m: Measurement, record: Record, geo_asn: Callable[[str], tuple[int, str]]
               ) -> dict[str, Any]:
    t0 = m.started
    queries: list[dict[str, Any]] = []
    tcp: list[dict[str, Any]] = []
    tls: list[dict[str, Any]] = []
    requests: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    asn_of = _asn_lookup(m, geo_asn)
    tid = 0
    control = None
    last_http = None
    dns_failure = None
    http_failure = None
    for hop in m.hops:
        for q in (*hop.dns, *hop.dns_control):
            tid += 1
            queries.append(_query(q, t0, hop.index, tid, asn_of))
            events.extend(_dns_events(q, t0, hop.index, tid))
        if hop.index == 0 and hop.dns:
            dns_failure = hop.dns[0].failure if all(q.failure for q in hop.dns) else None
        by_endpoint: dict[str, int] = {}
        for c in hop.tcp:
            tid += 1
            ep = format_endpoint(c.ip, c.port)
            by_endpoint[ep] = tid
            a, b = round(c.started - t0, 6), round(c.started - t0 + c.duration, 6)
            tcp.append({"ip": c.ip, "port": c.port,
                        "status": {"failure": c.failure, "success": c.failure is None},
                        "t0": a, "t": b, "tags": _tags(hop.index), "transaction_id": tid})
            events.append({"address": ep, "failure": c.failure, "operation": "connect",
                           "proto": "tcp", "t0": a, "t": b, "tags": _tags(hop.index),
                           "transaction_id": tid})
        for t in hop.tls:
            ep = format_endpoint(t.ip, t.port)
            tls.append(_tls(t, t0, hop.index, by_endpoint.get(ep, tid)))
            events.extend(_span_events("tls_handshake", ep, t.started, t.duration, t.failure,
                                       t0, hop.index, by_endpoint.get(ep, tid)))
        if hop.http is not None:
            h = hop.http
            ep = format_endpoint(h.ip, h.port)
            requests.append(_request(h, hop, t0, by_endpoint.get(ep, tid), record.user_agent))
            events.extend(_span_events("http_transaction", ep, h.started, h.duration, h.failure,
                                       t0, hop.index, by_endpoint.get(ep, tid)))
            last_http = h
            http_failure = h.failure
        if hop.control is not None and control is None:
            control = hop.control
    requests.reverse()  # ts-017: newest first
    events.sort(key=lambda e: (e["t"], e["t0"]))  # df-008: in the order they happened
    v = record.verdict
    accessible, blocking = _blocking(v.verdict, v.stage)
    if v.verdict == "hijacked" and v.stage == "dns":
        consistency: str | None = "inconsistent"
    elif queries and dns_failure is None and control is not None and not control.failure:
        consistency = "consistent"
    else:
        consistency = None
    protocols: dict[str, Any] = {}
    if m.protocols:  # probe run --quic/--ech: OONI's quic_handshakes, and probe's own verdicts
        quic = [_quic(q, t0, hop.index, 0, decoy) for hop in m.hops
                for decoy, qs in ((False, hop.quic), (True, hop.decoy_quic)) for q in qs]
        if quic:
            protocols["quic_handshakes"] = sorted(quic, key=lambda x: x["t0"])
        protocols["x_probe_protocols"] = [
            {"suite": p.suite, "verdict": p.verdict, "stage": p.stage, "hop": p.hop,
             "reasons": list(p.reasons), "classifier_version": p.classifier_version}
            for p in v.protocols]
    keys: dict[str, Any] = {
        "agent": "redirect",
        "client_resolver": record.resolver_ip,
        "retries": None,
        "socksproxy": None,
        "network_events": events,
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
        **protocols,
    }
    return keys


def to_ooni(record: Record, geo_asn: Callable[[str], tuple[int, str]] | None = None
            ) -> dict[str, Any]:
    """One measurement as an OONI Web Connectivity measurement (a JSON-able dict).

    ``geo_asn(ip)`` gives ``(asn, organisation)`` of a DNS answer the helper did not describe
    (:func:`geo_asn_lookup`); without it such answers have ASN 0, OONI's unknown.
    """
    m = record.measurement
    # The run's own identity first: the vantage point's columns are those of its latest run.
    probe_asn = record.run_asn or record.asn
    asn = f"AS{probe_asn}" if probe_asn else "AS0"
    cc = record.run_country or record.country or "ZZ"
    network_name = record.run_as_org or record.as_org or ""
    run_time = _iso_to_ooni(record.run_started_at)
    report_id = (f"{run_time.replace('-', '').replace(':', '').replace(' ', 'T')}Z_webconnectivity_"
                 f"{cc}_{asn[2:]}_n1_{record.run_uid.replace('-', '')[-16:]}")
    helper = next((h.control.source for h in m.hops if h.control is not None), None)
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
        "probe_network_name": network_name,
        "report_id": report_id,
        "resolver_asn": f"AS{record.resolver_asn}" if record.resolver_asn else "AS0",
        "resolver_ip": record.resolver_ip or "",
        "resolver_network_name": record.resolver_as_org or "",
        "software_name": "probe",
        "software_version": record.software_version,
        "test_helpers": {"backend": {"address": helper, "type": "https"}} if helper else {},
        "test_keys": _test_keys(m, record, geo_asn or _no_asn),
        "test_name": "web_connectivity",
        "test_runtime": round(m.runtime, 6),
        "test_start_time": run_time,
        "test_version": TEST_VERSION,
    }


def geo_asn_lookup(cache_size: int = 65536) -> Callable[[str], tuple[int, str]]:
    """``(asn, organisation)`` of an address from probe's IP-to-ASN data (``probe geo path``),
    ``(0, "")`` when unknown or when no data is installed.

    The table is memory-mapped (pages touched only); answers repeat across measurements, so a
    bounded cache keeps an export's memory flat and its lookups few.
    """
    geo = open_default_geo()
    cache: dict[str, tuple[int, str]] = {}

    def lookup(ip: str) -> tuple[int, str]:
        found = cache.get(ip)
        if found is None:
            info = geo.lookup(ip) if geo is not None else None
            found = (info.asn, info.org) if info is not None else (0, "")
            if len(cache) >= cache_size:
                cache.clear()
            cache[ip] = found
        return found

    return lookup


def ooni_lines(store: Store, f: Filters) -> Iterator[str]:
    """The measurements ``f`` selects as OONI measurements, one JSON line each (``probe export
    --format ooni``): streamed, so memory stays flat however many there are."""
    dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
    geo_asn = geo_asn_lookup()
    for record in iter_records(store, f):
        yield dumps(to_ooni(record, geo_asn)) + "\n"
