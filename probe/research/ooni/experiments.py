"""OONI's other experiments -> probe's endpoint records, OONI's own verdict kept beside.

Web Connectivity measures a URL against a control (:mod:`probe.research.ooni.measurement`). OONI's
other experiments measure the endpoints of a tool or an app, without a control:

========================  =====================================================================
test_name (ooni/spec)     endpoints (one :class:`OONIEndpoint` each)
========================  =====================================================================
tor (ts-023)              each target: directory authorities' OR and dir ports, obfs4 bridges
vanilla_tor (ts-016)      Tor's bootstrap over the public network
torsf (ts-030)            Tor's bootstrap over Snowflake
openvpn (ts-040)          the OpenVPN server of the input (vpn://provider/?addr=IP:PORT&...)
riseupvpn (ts-026)        RiseupVPN's API hosts and the gateways it reached or failed
psiphon (ts-015)          Psiphon's bootstrap
telegram (ts-020)         each data centre address:port (``telegram-dc``); web.telegram.org (``telegram-web``)
whatsapp (ts-018)         each eN.whatsapp.net:port (``whatsapp``); v.whatsapp.net (registration) and
                          web.whatsapp.com (``whatsapp-web``)
signal (ts-029)           each Signal host (``signal``; TLS with Signal's own CA)
dnscheck (ts-028)         each address of the resolver of the input (DoT, DoH, UDP)
echcheck (ts-039)         the TLS server of the input, with ECH (GREASE)
urlgetter (ts-027)        the URL of the input
========================  =====================================================================

Each endpoint is an :class:`~probe.core.model.EndpointObservation` (what ``probe circumvention``
records: TCP, then the tool's handshake) plus, where OONI recorded DNS answers or an HTTP
response, the same evidence as a one-hop :class:`~probe.core.model.Measurement`, so that probe's
content rules (bogon and block-page answers, block pages) apply to it. OONI's verdict of the
endpoint (:attr:`OONIEndpoint.ooni_verdict`) is OONI's own word that covers it: a per-endpoint
field where OONI has one (a tor target's ``failure``, ``whatsapp_endpoints_blocked``), else the
status of the service it belongs to (``telegram_tcp_blocking``, ``signal_backend_status``, ...),
where a service OONI calls blocked counts as blocked at the endpoints whose steps failed.
In probe's words: ``ok``, ``blocked`` (OONI says blocked), ``anomaly`` (OONI records a failure
and makes no claim) or ``inconclusive`` (OONI says nothing).

The messaging experiments' endpoints take the kinds and names of ``probe messaging``'s own
endpoint list (docs/messaging.md): ``telegram-dc`` named ``DC1``..``DC5`` (Telegram Desktop's
built-in table, :data:`TELEGRAM_DCS`), ``telegram-web`` and ``whatsapp-web`` named ``web``,
``whatsapp-web`` named ``registration``, ``whatsapp`` named ``eN``, ``signal`` named by the host's
first label (``storage``, ``sfu``, ...); the experiment's name stays in ``ooni_endpoints.test_name``.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

from probe.core.failures import Failure
from probe.core.model import (
    DNSObservation,
    EndpointObservation,
    Hop,
    Measurement,
    TCPObservation,
    TLSObservation,
)
from probe.measure.control.protocol import THRequestError, target_from_url
from probe.research.ooni.fields import (
    _dns,
    _epoch,
    _failure,
    _list,
    _num,
    _obj,
    _split_address,
    _str,
    tcp_observations,
    tls_observations,
)
from probe.research.ooni.measurement import http_observation, measurement_meta, software_engine
from probe.research.ooni.record import OONIFormatError

__all__ = ["EXPERIMENTS", "TELEGRAM_DCS", "OONIEndpoint", "OONIExperiment", "parse_experiment"]

#: OONI's verdicts of an endpoint, in probe's words.
OONI_VERDICTS = ("ok", "blocked", "anomaly", "inconclusive")
#: Most endpoints kept of one measurement (a tor measurement has ~40 targets; a hostile line
#: could name millions).
MAX_ENDPOINTS = 512
#: Telegram's data centres by address, named as ``probe messaging``'s list names them (Telegram
#: Desktop's built-in table, ``kBuiltInDcs``; ooni/spec ts-020 measures the same addresses). An
#: address not in it is named ``DC``.
TELEGRAM_DCS: dict[str, str] = {
    "149.154.175.50": "DC1", "149.154.167.51": "DC2", "95.161.76.100": "DC2", "149.154.175.100": "DC3",
    "149.154.167.91": "DC4", "149.154.171.5": "DC5",
}  # fmt: skip


@dataclass(frozen=True)
class OONIEndpoint:
    """One endpoint of an OONI measurement: what was observed, and what OONI said of it."""

    target: str  # the endpoint as OONI names it in the measurement (unique within it)
    observation: EndpointObservation
    evidence: Measurement | None  # DNS answers and HTTP responses, for probe's content rules
    ooni_status: str  # OONI's own field(s) behind ``ooni_verdict``, as "name=value"
    ooni_verdict: str  # one of OONI_VERDICTS


@dataclass(frozen=True)
class OONIExperiment:
    """One OONI measurement of an experiment other than Web Connectivity, mapped."""

    test_name: str
    suite: str  # "circumvention" or "messaging": where probe's own results of the kind sit
    input: str
    meta: Mapping[str, Any]  # as OONIRecord.meta
    ooni_keys: Mapping[str, Any]  # OONI's blocking flags and status fields of the measurement
    endpoints: tuple[OONIEndpoint, ...]


@dataclass
class _Ctx:
    """What one measurement recorded, parsed once, for the endpoint builders."""

    tk: Mapping[str, Any]
    t0: float
    resolver_ip: str
    queries: list[DNSObservation]
    tcp: list[TCPObservation]
    tls: list[TLSObservation]
    requests: list[Mapping[str, Any]]

    @classmethod
    def of(cls, tk: Mapping[str, Any], t0: float, resolver_ip: str) -> _Ctx:
        queries = [q for q in (_dns(q, t0, resolver_ip) for q in _list(tk.get("queries"))) if q]
        tls = tls_observations(tk.get("tls_handshakes"), t0, _fail)
        # Older engines recorded handshakes without the address: kept by server name.
        for h in _list(tk.get("tls_handshakes")):
            if _split_address(h.get("address")) is None and isinstance(h.get("server_name"), str):
                tls.append(TLSObservation(ip="", port=0, sni=h["server_name"], started=t0, duration=0.0,
                                          failure=_fail(h.get("failure"))))  # fmt: skip
        return cls(tk, t0, resolver_ip, queries, tcp_observations(tk.get("tcp_connect"), t0, _fail), tls,
                   _list(tk.get("requests")))  # fmt: skip


_KNOWN_FAILURES = frozenset(str(f) for f in Failure)


def _fail(value: object) -> str | None:
    """OONI's failure string. Go's ``unknown_failure: ... no route to host`` is a local one; a
    wrapped one (``Get http://...: eof_error``, older tor targets) is the failure it wraps."""
    f = _failure(value)
    if isinstance(value, str) and f == value and ": " in value:
        tail = value.rsplit(": ", 1)[1]
        if tail in _KNOWN_FAILURES:
            return tail
    if f == Failure.UNKNOWN and isinstance(value, str):
        if "no route to host" in value:
            return Failure.HOST_UNREACHABLE
        if "network is unreachable" in value:
            return Failure.NETWORK_UNREACHABLE
    return f


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _request_url(r: Mapping[str, Any]) -> str | None:
    url = _obj(r.get("request")).get("url")
    return url if isinstance(url, str) and url else None


def _url_host_port(url: str) -> tuple[str, str, int] | None:
    try:
        t = target_from_url(url)
    except THRequestError:
        return None
    return t.scheme, t.host, t.port


def _first_failure(failures: Iterable[str | None]) -> tuple[bool, str | None]:
    """(tried, failure): None when one of them worked, else the first failure."""
    seen = list(failures)
    if not seen:
        return False, None
    return True, (None if any(f is None for f in seen) else seen[0])


_Observed = tuple[EndpointObservation, Measurement | None]


def _endpoint(ctx: _Ctx, kind: str, name: str, host: str, port: int, scheme: str,
              url: str | None = None, *, tcp_only: bool = False) -> _Observed | None:
    """The observation of ``host:port`` from the measurement's DNS, TCP, TLS and HTTP records
    (None when it recorded nothing of it). ``tcp_only``: the tool speaks its own protocol on
    top (a Telegram data centre): TCP decides, HTTP is kept as evidence only."""
    host = host.lower()
    dns = [q for q in ctx.queries if q.hostname == host] if not _is_ip(host) else []
    addrs = {a for q in dns for a in q.addresses} | ({host} if _is_ip(host) else set())
    tcp = [t for t in ctx.tcp if t.port == port and t.ip in addrs]
    tls = [t for t in ctx.tls if (t.sni.lower() == host and (not t.ip or t.port == port))
           or (not t.sni and t.ip in addrs and t.port == port)]  # fmt: skip
    req = next((r for r in ctx.requests
                if (u := _request_url(r)) and (hp := _url_host_port(u)) and hp[1:] == (host, port)), None)
    http = None
    if req is not None:
        rurl = _request_url(req) or ""
        http = http_observation(req, rurl, host, port, tcp, ctx.t0, set())
    if not (dns or tcp or tls or http):
        return None
    tcp_tried, tcp_failure = _first_failure(t.failure for t in tcp)
    handshake, hs_failure = "", None
    if not tcp_tried and dns and not addrs:
        handshake, hs_failure = "dns", next((q.failure for q in dns if q.failure), Failure.DNS_NO_ANSWER)
    elif tcp_failure is None:
        tls_tried, tls_failure = _first_failure(t.failure for t in tls)
        if tls_tried and tls_failure is not None:
            handshake, hs_failure = "tls", tls_failure
        elif http is not None and not tcp_only:
            handshake, hs_failure = "http", http.failure
        elif tls_tried:
            handshake = "tls"
    ok_tls = next((t for t in tls if t.failure is None), None)
    obs = EndpointObservation(
        kind=kind, name=name, address=host, port=port, transport="tcp", started=ctx.t0, runtime=0.0,
        tcp_failure=tcp_failure, handshake=handshake, handshake_failure=hs_failure,
        sni=host if tls and not _is_ip(host) else "", tls_version=ok_tls.version if ok_tls else None,
        source="ooni",
    )  # fmt: skip
    evidence = None
    if dns or http is not None:
        u = url or (_request_url(req) if req is not None else None) or f"{scheme}://{host}:{port}/"
        try:
            target = target_from_url(u)
        except THRequestError:
            return obs, None
        hop = Hop(index=0, url=target.url, host=host, port=port, scheme=scheme, dns=tuple(dns),
                  tcp=tuple(tcp), tls=tuple(t for t in tls if t.ip), http=http, control=None)  # fmt: skip
        evidence = Measurement(target=target, started=ctx.t0, runtime=0.0, attempt=0, hops=(hop,))
    return obs, evidence


def _bootstrap(ctx: _Ctx, kind: str, name: str, failure: object, ok: bool) -> EndpointObservation:
    """A tool's bootstrap as one endpoint (Tor, Snowflake, Psiphon: no address to name)."""
    return EndpointObservation(kind=kind, name=name, address=name, port=0, transport="tcp", started=ctx.t0,
                               runtime=_num(ctx.tk.get("bootstrap_time")), handshake=kind,
                               handshake_failure=None if ok else (_fail(failure) or Failure.UNKNOWN),
                               source="ooni")  # fmt: skip


def _status(value: object) -> str:
    """OONI's ``*_status`` / ``*_blocking`` in probe's words."""
    if value in ("ok", False):
        return "ok"
    if value in ("blocked", True):
        return "blocked"
    return "inconclusive"


def _service(verdict: str, obs: EndpointObservation) -> str:
    """OONI's verdict of a service, at one of its endpoints: a blocked service is blocked where
    the endpoint's steps failed; where they worked, OONI's measurement says the endpoint worked."""
    return "ok" if verdict == "blocked" and obs.reached else verdict


def _strings(value: object) -> list[str]:
    return [x for x in value if isinstance(x, str)] if isinstance(value, list) else []


def _flag(tk: Mapping[str, Any], *names: str) -> str:
    return ", ".join(f"{n}={tk.get(n)}" for n in names if n in tk)


Built = list[OONIEndpoint]


_TOR_HANDSHAKES = {"or_port": "tls", "or_port_dirauth": "tls", "obfs4": "obfs4", "dir_port": "http"}


def _tor(ctx: _Ctx, raw: Mapping[str, Any]) -> Built:
    out: Built = []
    targets = ctx.tk.get("targets")
    items: Iterable[tuple[str, Any]] = (
        targets.items() if isinstance(targets, Mapping)
        else ((str(i), t) for i, t in enumerate(targets)) if isinstance(targets, list) else ()
    )  # fmt: skip
    for key, t in items:
        if not isinstance(t, Mapping):
            continue
        address = str(t.get("target_address") or "")
        proto = str(t.get("target_protocol") or "")
        ap = _split_address(address)
        ip, port = ap if ap is not None else (address, 0)
        failure = _fail(t.get("failure"))
        summary = _obj(t.get("summary"))
        tcp_fail = [c.failure for c in tcp_observations(t.get("tcp_connect"), ctx.t0, _fail)]
        tcp_tried, tcp_failure = _first_failure(tcp_fail)
        if not tcp_tried and "connect" in summary:
            tcp_failure = _fail(_obj(summary.get("connect")).get("failure"))
        handshake = _TOR_HANDSHAKES.get(proto, "")
        hs_failure = None if tcp_failure is not None else failure
        if tcp_failure is None and failure is not None and not handshake:
            tcp_failure, hs_failure = failure, None
        name = str(t.get("target_name") or ("obfs4 bridge" if proto == "obfs4" else proto or "tor"))
        obs = EndpointObservation(kind="tor", name=name, address=ip, port=port, transport="tcp",
                                  started=ctx.t0, runtime=0.0, tcp_failure=tcp_failure, handshake=handshake,
                                  handshake_failure=hs_failure, source="ooni")  # fmt: skip
        out.append(OONIEndpoint(key, obs, None, f"failure={t.get('failure')}",
                                "ok" if failure is None else "anomaly"))
    return out


def _tor_bootstrap(ctx: _Ctx, raw: Mapping[str, Any]) -> Built:
    tk = ctx.tk
    name = str(tk.get("transport_name") or ("snowflake" if raw.get("test_name") == "torsf" else "vanilla"))
    ok = tk.get("failure") is None and tk.get("success") is not False
    obs = _bootstrap(ctx, str(raw.get("test_name")), name, tk.get("failure"), ok)
    return [OONIEndpoint(name, obs, None, _flag(tk, "success", "failure", "tor_progress_summary"),
                         "ok" if ok else "anomaly")]


def _psiphon(ctx: _Ctx, raw: Mapping[str, Any]) -> Built:
    ok = ctx.tk.get("failure") is None
    obs = _bootstrap(ctx, "psiphon", "psiphon", ctx.tk.get("failure"), ok)
    return [OONIEndpoint("psiphon", obs, None, _flag(ctx.tk, "failure"), "ok" if ok else "anomaly")]


def _openvpn(ctx: _Ctx, raw: Mapping[str, Any]) -> Built:
    tk = ctx.tk
    query = parse_qs(urlsplit(str(raw.get("input") or "")).query)
    remote = str(tk.get("remote") or (query.get("addr") or query.get("address") or [""])[0])
    ap = _split_address(remote)
    if ap is None:
        return []
    transport = str(tk.get("transport") or (query.get("transport") or ["tcp"])[0])
    connects = tk.get("tcp_connect")
    tcp = tcp_observations([connects] if isinstance(connects, Mapping) else connects, ctx.t0, _fail)
    _, tcp_failure = _first_failure(c.failure for c in tcp)
    ok = tk.get("success") is True or (tk.get("failure") is None and tk.get("success_handshake") is True)
    hs_failure = None if ok or tcp_failure is not None else (_fail(tk.get("failure")) or Failure.UNKNOWN)
    provider = str(tk.get("provider") or urlsplit(str(raw.get("input") or "")).hostname or "openvpn")
    obs = EndpointObservation(kind="openvpn", name=provider, address=ap[0], port=ap[1],
                              transport="udp" if transport == "udp" else "tcp", started=ctx.t0,
                              runtime=_num(tk.get("bootstrap_time")), tcp_failure=tcp_failure,
                              handshake="openvpn", handshake_failure=hs_failure, source="ooni")  # fmt: skip
    status = _flag(tk, "success", "success_handshake", "failure")
    return [OONIEndpoint(remote, obs, None, status, "ok" if ok else "anomaly")]


def _hosts(ctx: _Ctx, keep: Callable[[str], bool]) -> list[tuple[str, int, str]]:
    """(host, port, scheme) of every request and DNS query whose host passes ``keep``, in order."""
    seen: dict[tuple[str, int], str] = {}
    for r in ctx.requests:
        u = _request_url(r)
        hp = _url_host_port(u) if u else None
        if hp is not None and keep(hp[1]):
            seen.setdefault((hp[1], hp[2]), hp[0])
    for q in ctx.queries:
        if keep(q.hostname) and not any(h == q.hostname for h, _ in seen):
            seen.setdefault((q.hostname, 443), "https")
    return [(h, p, s) for (h, p), s in seen.items()]


def _web(ctx: _Ctx, kind: str, name: str, hosts: Iterable[tuple[str, int, str]], status: str,
         verdict: str, *, shared: bool = False) -> Built:
    """Endpoints of a service measured by name (``name``: default, the host's first label, as
    ``probe messaging`` names Signal's); ``shared``: OONI's status covers several hosts (Signal's
    backend), so a blocked service is blocked at the hosts whose steps failed."""
    out: Built = []
    for host, port, scheme in hosts:
        got = _endpoint(ctx, kind, name or host.split(".", 1)[0], host, port, scheme)
        if got is not None:
            obs, ev = got
            out.append(OONIEndpoint(f"{host}:{port}", obs, ev, status,
                                    _service(verdict, obs) if shared else verdict))
    return out


def _addresses(ctx: _Ctx, names: Iterable[str]) -> set[str]:
    wanted = set(names)
    return {a for q in ctx.queries if q.hostname in wanted for a in q.addresses}


def _telegram(ctx: _Ctx, raw: Mapping[str, Any]) -> Built:
    tk = ctx.tk
    web = "web.telegram.org"
    web_ips = _addresses(ctx, [web])
    out: Built = []
    dc_verdict = _status(tk.get("telegram_tcp_blocking"))
    for ip, port in dict.fromkeys((t.ip, t.port) for t in ctx.tcp if t.ip not in web_ips):
        got = _endpoint(ctx, "telegram-dc", TELEGRAM_DCS.get(ip, "DC"), ip, port, "http", tcp_only=True)
        if got is not None:
            obs, ev = got
            out.append(OONIEndpoint(f"{ip}:{port}", obs, ev, _flag(tk, "telegram_tcp_blocking"),
                                    _service(dc_verdict, obs)))
    web_verdict = _status(tk.get("telegram_web_status"))
    out += _web(ctx, "telegram-web", "web", _hosts(ctx, lambda h: h == web),
                _flag(tk, "telegram_web_status", "telegram_web_failure"), web_verdict)
    return out


def _whatsapp(ctx: _Ctx, raw: Mapping[str, Any]) -> Built:
    tk = ctx.tk
    out: Built = []
    blocked = {x for x in _strings(tk.get("whatsapp_endpoints_blocked"))}
    inconsistent = {x for x in _strings(tk.get("whatsapp_endpoints_dns_inconsistent"))}
    service = _status(tk.get("whatsapp_endpoints_status"))
    for host in dict.fromkeys(q.hostname for q in ctx.queries if q.hostname.endswith(".whatsapp.net")
                              and q.hostname not in ("v.whatsapp.net",)):  # fmt: skip
        addrs = _addresses(ctx, [host])
        ports = sorted({t.port for t in ctx.tcp if t.ip in addrs}) or [443]
        for port in ports:
            got = _endpoint(ctx, "whatsapp", host.split(".", 1)[0], host, port, "https", tcp_only=True)
            if got is None:
                continue
            obs, ev = got
            key = f"{host}:{port}"
            named = key in blocked or host in blocked or host in inconsistent or key in inconsistent
            verdict = "blocked" if named else _service(service, obs) if service != "blocked" else "ok"
            listed = "blocked" if key in blocked or host in blocked else "dns_inconsistent"
            status = _flag(tk, "whatsapp_endpoints_status") + (
                f", listed in whatsapp_endpoints_{listed}" if named else "")
            out.append(OONIEndpoint(key, obs, ev, status, verdict))
    out += _web(ctx, "whatsapp-web", "registration", _hosts(ctx, lambda h: h == "v.whatsapp.net"),
                _flag(tk, "registration_server_status", "registration_server_failure"),
                _status(tk.get("registration_server_status")))
    out += _web(ctx, "whatsapp-web", "web", _hosts(ctx, lambda h: h == "web.whatsapp.com"),
                _flag(tk, "whatsapp_web_status", "whatsapp_web_failure"),
                _status(tk.get("whatsapp_web_status")))
    return out


def _signal(ctx: _Ctx, raw: Mapping[str, Any]) -> Built:
    tk = ctx.tk
    return _web(ctx, "signal", "", _hosts(ctx, lambda h: h != "uptime.signal.org"),
                _flag(tk, "signal_backend_status", "signal_backend_failure"),
                _status(tk.get("signal_backend_status")), shared=True)


def _riseupvpn(ctx: _Ctx, raw: Mapping[str, Any]) -> Built:
    tk = ctx.tk
    api_hosts = _hosts(ctx, lambda h: True)
    out = _web(ctx, "riseupvpn", "API", api_hosts, _flag(tk, "api_status", "api_failure", "ca_cert_status"),
               _status(tk.get("api_status")), shared=True)
    api_ips = _addresses(ctx, [h for h, _, _ in api_hosts])
    failing = {(str(g.get("ip")), g.get("port")) for g in _list(tk.get("failing_gateways"))}
    gateways = dict.fromkeys([(t.ip, t.port) for t in ctx.tcp if t.ip not in api_ips]
                             + [(ip, p) for ip, p in failing if isinstance(p, int)])  # fmt: skip
    for ip, port in gateways:
        got = _endpoint(ctx, "riseupvpn", "gateway", ip, port, "tcp", tcp_only=True)
        obs = got[0] if got is not None else EndpointObservation(
            kind="riseupvpn", name="gateway", address=ip, port=port, transport="tcp", started=ctx.t0,
            runtime=0.0, handshake="openvpn", handshake_failure=Failure.UNKNOWN, source="ooni")  # fmt: skip
        out.append(OONIEndpoint(f"{ip}:{port}", obs, None, _flag(tk, "transport_status"),
                                "anomaly" if (ip, port) in failing else "ok"))
    return out


_UNREACHABLE = (Failure.HOST_UNREACHABLE, Failure.NETWORK_UNREACHABLE)


def _dnscheck(ctx: _Ctx, raw: Mapping[str, Any]) -> Built:
    out: Built = []
    resolver = str(raw.get("input") or "")
    for key, lookup in _obj(ctx.tk.get("lookups")).items():
        if not isinstance(lookup, Mapping):
            continue
        u = urlsplit(str(key))
        ap = _split_address(u.netloc)
        if ap is None:
            continue
        proto = {"https": "doh", "dot": "dot", "udp": "udp", "tcp": "tcp"}.get(u.scheme, u.scheme)
        tcp = tcp_observations(lookup.get("tcp_connect"), ctx.t0, _fail)
        _, tcp_failure = _first_failure(c.failure for c in tcp)
        failure = _fail(lookup.get("failure"))
        if tcp_failure is None and not tcp and failure in _UNREACHABLE:
            tcp_failure, failure = failure, None
        obs = EndpointObservation(kind="dnscheck", name=resolver, address=ap[0], port=ap[1],
                                  transport="udp" if proto == "udp" else "tcp", started=ctx.t0, runtime=0.0,
                                  tcp_failure=tcp_failure, handshake=proto,
                                  handshake_failure=None if tcp_failure else failure,
                                  source="ooni")  # fmt: skip
        out.append(OONIEndpoint(str(key), obs, None, f"failure={lookup.get('failure')}",
                                "ok" if lookup.get("failure") is None else "anomaly"))
    if not out and ctx.tk.get("bootstrap_failure") is not None:
        host = urlsplit(resolver).hostname or resolver
        obs = EndpointObservation(kind="dnscheck", name=resolver, address=host, port=0, transport="tcp",
                                  started=ctx.t0, runtime=0.0, handshake="dns",
                                  handshake_failure=_fail(ctx.tk.get("bootstrap_failure")), source="ooni")
        out.append(OONIEndpoint(resolver, obs, None, _flag(ctx.tk, "bootstrap_failure"), "anomaly"))
    return out


def _echcheck(ctx: _Ctx, raw: Mapping[str, Any]) -> Built:
    out: Built = []
    url = str(raw.get("input") or "")
    hp = _url_host_port(url)
    for h in _list(ctx.tk.get("tls_handshakes")):
        if not h.get("echconfig"):
            continue  # the handshake without ECH: the same path, for comparison by people
        ap = _split_address(h.get("address"))
        if ap is None:
            continue
        failure = _fail(h.get("failure"))
        outer = str(h.get("outer_server_name") or "")
        obs = EndpointObservation(kind="echcheck", name=hp[1] if hp else url, address=ap[0], port=ap[1],
                                  transport="tcp", started=ctx.t0, runtime=0.0, handshake="tls-ech",
                                  handshake_failure=failure, sni=outer,
                                  tls_version=_str(h.get("tls_version")), source="ooni")  # fmt: skip
        out.append(OONIEndpoint(f"{ap[0]}:{ap[1]} outer={outer}", obs, None,
                                f"echconfig={h.get('echconfig')}, failure={h.get('failure')}",
                                "ok" if failure is None else "anomaly"))
    return out


def _urlgetter(ctx: _Ctx, raw: Mapping[str, Any]) -> Built:
    url = str(raw.get("input") or "")
    hp = _url_host_port(url)
    if hp is None:
        return []
    got = _endpoint(ctx, "urlgetter", url, hp[1], hp[2], hp[0], url)
    if got is None:
        return []
    obs, ev = got
    failure = ctx.tk.get("failure")
    return [OONIEndpoint(url, obs, ev, _flag(ctx.tk, "failure", "failed_operation"),
                         "ok" if failure is None else "anomaly")]


#: test_name -> (suite, the function that finds its endpoints).
EXPERIMENTS: dict[str, tuple[str, Callable[[_Ctx, Mapping[str, Any]], Built]]] = {
    "tor": ("circumvention", _tor),
    "vanilla_tor": ("circumvention", _tor_bootstrap),
    "torsf": ("circumvention", _tor_bootstrap),
    "openvpn": ("circumvention", _openvpn),
    "riseupvpn": ("circumvention", _riseupvpn),
    "psiphon": ("circumvention", _psiphon),
    "dnscheck": ("circumvention", _dnscheck),
    "echcheck": ("circumvention", _echcheck),
    "urlgetter": ("circumvention", _urlgetter),
    "telegram": ("messaging", _telegram),
    "whatsapp": ("messaging", _whatsapp),
    "signal": ("messaging", _signal),
}
# OONI's verdict fields of each experiment, kept as OONI published them (``ooni_keys``).
_KEYS = ("failure", "success", "bootstrap_time", "dir_port_total", "dir_port_accessible", "obfs4_total",
         "obfs4_accessible", "or_port_dirauth_total", "or_port_dirauth_accessible", "or_port_total",
         "or_port_accessible", "tor_progress", "tor_progress_summary", "success_handshake",
         "api_status", "api_failure", "ca_cert_status", "transport_status", "telegram_tcp_blocking",
         "telegram_http_blocking", "telegram_web_status", "telegram_web_failure",
         "registration_server_status", "registration_server_failure", "whatsapp_endpoints_status",
         "whatsapp_endpoints_blocked", "whatsapp_endpoints_dns_inconsistent", "whatsapp_web_status",
         "whatsapp_web_failure", "signal_backend_status", "signal_backend_failure", "bootstrap_failure",
         "failed_operation")  # fmt: skip


def _scalar_keys(tk: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k in _KEYS:
        v = tk.get(k)
        if isinstance(v, str | bool | int | float) or v is None:
            if k in tk:
                out[k] = v[:200] if isinstance(v, str) else v
        elif isinstance(v, list):
            out[k] = [str(x)[:200] for x in v[:64]]
    return out


def parse_experiment(raw: Mapping[str, Any]) -> OONIExperiment:
    """Map one measurement of an experiment of :data:`EXPERIMENTS`. Raises :class:`OONIFormatError`
    when it cannot be placed (no start time, test_keys missing) or names no endpoint."""
    test_name = str(raw.get("test_name"))
    suite, build = EXPERIMENTS[test_name]
    tk = raw.get("test_keys")
    if not isinstance(tk, Mapping):
        raise OONIFormatError("test_keys missing")
    t0 = _epoch(raw.get("measurement_start_time"))
    software, engine = software_engine(raw)
    meta = measurement_meta(raw, software, engine)
    resolver_ip = raw.get("resolver_ip") if isinstance(raw.get("resolver_ip"), str) else ""
    ctx = _Ctx.of(tk, t0, str(resolver_ip))
    endpoints = build(ctx, raw)[:MAX_ENDPOINTS]
    if not endpoints:
        raise OONIFormatError(f"{test_name}: no endpoint recorded (nothing to judge)")
    # Endpoint keys are unique within a measurement (they name the stored row).
    unique = list({e.target: e for e in endpoints}.values())
    runtime = _num(raw.get("test_runtime"))
    unique = [dataclasses.replace(e, observation=dataclasses.replace(e.observation, runtime=runtime))
              if not e.observation.runtime else e for e in unique]  # fmt: skip
    inp = raw.get("input")
    return OONIExperiment(test_name, suite, inp if isinstance(inp, str) else "", meta, _scalar_keys(tk),
                          tuple(unique))
