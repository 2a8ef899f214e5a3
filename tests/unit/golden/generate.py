"""Write the hand-made golden cases (one per classifier rule) from Python builders.

    python tests/unit/golden/generate.py          # rewrites the cases defined here

The JSON files are the source of truth and are committed; re-run this only after changing a
case below, and review the diff. Cases recorded in the lab are separate directories that this
script never touches. Addresses: RFC 5737 documentation addresses stand in for public servers
(192.0.2.x a site, 198.51.100.x a CDN, 203.0.113.x a censor), 10.66.x.x are lab addresses; the
geo fixture (tests/fixtures/geo/ip2asn-fixture.tsv) gives them ASNs.
"""

# ruff: noqa: E501  (a table of cases reads better one case per line)
from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from builders import control, dns, hop, http, measurement, page, tcp, tls, write_case

from probe.inputs.fingerprints import default_fingerprints

SITE = "192.0.2.10"
SITE2 = "192.0.2.11"
CENSOR = "203.0.113.66"
HOST = "news.example.com"
URL = f"http://{HOST}/"
SURL = f"https://{HOST}/"
PAGE = page("Example News - Front page", 20000, "today")
# The body pattern of OONI fingerprint ooni.ru_1 (Russian ISPs' Roskomnadzor block page),
# credit OONI blocking-fingerprints.
RU_MARKER = next(fp.pattern for fp in default_fingerprints().all if fp.name == "ooni.ru_1")
BLOCKPAGE = (
    "<html><head><meta charset='utf-8'><title>Resource unavailable</title></head><body><p>"
    + RU_MARKER
    + "</p></body></html>"
).encode()
CAPTCHA = page("Just a moment...", 6000)


def ok_http(ip: str = SITE, url: str = URL, body: bytes = PAGE) -> list:
    return [tcp(ip, 443 if url.startswith("https") else 80), http(url, ip, body=body)]


def ctl(url: str = URL, addrs=(SITE,), port: int = 80, body: bytes | None = PAGE, **kw):
    tcp_ = kw.pop("tcp_", [(a, port, None) for a in addrs])
    return control(url, addrs, tcp_=tcp_, body=body, **kw)


DEFAULT = object()  # "build the usual one"; None means "no such step"
NO_DNS = "203.0.113.53"  # an address that runs no DNS server (--dns-probe)


def with_dns_probe(h, answers):
    """The hop with a resolver-less probe query (--dns-probe NO_DNS) answered ``answers``."""
    return replace(h, dns_probe=(dns(HOST, answers, resolver=f"udp://{NO_DNS}:53"),))


def plain(dns_addrs=(SITE,), control_=None, *, tcp_=None, http_=DEFAULT, dns_=None, url=URL):
    ip = dns_addrs[0] if dns_addrs else SITE
    return hop(
        url,
        dns_=dns_ if dns_ is not None else [dns(HOST, dns_addrs)],
        tcp_=tcp_ if tcp_ is not None else [tcp(ip)],
        http_=http(url, ip, body=PAGE) if http_ is DEFAULT else http_,
        control=control_,
    )


def secure(addrs=(SITE,), control_=None, *, tls_=None, http_=DEFAULT, tcp_=None, body: bytes = PAGE):
    ip = addrs[0]
    return hop(
        SURL,
        dns_=[dns(HOST, addrs)],
        tcp_=tcp_ if tcp_ is not None else [tcp(a, 443) for a in addrs],
        tls_=tls_ if tls_ is not None else [tls(a, HOST) for a in addrs],
        http_=http(SURL, ip, body=body) if http_ is DEFAULT else http_,
        control=control_,
    )


def sctl(addrs=(SITE,), body: bytes | None = PAGE, tls_fail: str | None = None, **kw):
    return control(SURL, addrs, tcp_=[(a, 443, None) for a in addrs],
                   tls_=[(a, 443, tls_fail) for a in addrs], body=body, **kw)


def expect(verdict: str, stage: str | None = None, hop_: int | None = None, *reasons: str, rule: str = "") -> dict:
    return {"rule": rule, "verdict": verdict, "stage": stage, "hop": hop_, "reasons_include": list(reasons)}


CASES = {
    # --- DNS -------------------------------------------------------------------------------
    "dns-ok-overlap": (
        measurement(plain(control_=ctl())),
        expect("ok", None, None, "http/match", rule="consistent answers, same page: ok"),
    ),
    "dns-bogon-public-name": (
        measurement(plain(("10.10.34.34",), ctl(), tcp_=[tcp("10.10.34.34", 80, "generic_timeout_error")],
                          http_=None)),
        expect("hijacked", "dns", 0, "dns/bogon:10.10.34.34", rule="private answer for a public name"),
    ),
    "dns-bogon-no-control": (
        measurement(plain(("127.0.0.1",), None, tcp_=[tcp("127.0.0.1", 80, "connection_refused")], http_=None)),
        expect("hijacked", "dns", 0, "dns/bogon:127.0.0.1", "control/unavailable",
               rule="local proof: loopback answer for a public name, no control"),
    ),
    "dns-private-lab-name-consistent": (
        measurement(hop("http://clean.lab.example/", dns_=[dns("clean.lab.example", ["10.66.2.10"])],
                        tcp_=[tcp("10.66.2.10")], http_=http("http://clean.lab.example/", "10.66.2.10", body=PAGE),
                        control=control("http://clean.lab.example/", ["10.66.2.10"],
                                        tcp_=[("10.66.2.10", 80, None)], body=PAGE))),
        expect("ok", None, None, rule="private answer the control also sees: consistency wins"),
    ),
    "dns-private-lab-name-no-control": (
        measurement(hop("http://clean.lab.example/", dns_=[dns("clean.lab.example", ["10.66.2.10"])],
                        tcp_=[tcp("10.66.2.10")], http_=http("http://clean.lab.example/", "10.66.2.10", body=PAGE))),
        expect("inconclusive", "http", 0, "control/unavailable", "http/unverified",
               rule="private answer for a special-use name proves nothing without control"),
    ),
    "dns-blockpage-ip": (
        measurement(plain(("8.7.198.45",), ctl(), tcp_=[tcp("8.7.198.45", 80, "generic_timeout_error")],
                          http_=None)),
        expect("hijacked", "dns", 0, "dns/blockpage:ooni.cn_0@8.7.198.45", rule="known block-page DNS IP"),
    ),
    "dns-nxdomain": (
        measurement(plain((), ctl(), dns_=[dns(HOST, failure="dns_nxdomain_error")], tcp_=[], http_=None)),
        expect("hijacked", "dns", 0, "dns/nxdomain", rule="NXDOMAIN while the control resolves"),
    ),
    "dns-servfail": (
        measurement(plain((), ctl(), dns_=[dns(HOST, failure="dns_servfail_error")], tcp_=[], http_=None)),
        expect("hijacked", "dns", 0, "dns/servfail", rule="SERVFAIL while the control resolves"),
    ),
    "dns-refused": (
        measurement(plain((), ctl(), dns_=[dns(HOST, failure="dns_refused_error")], tcp_=[], http_=None)),
        expect("hijacked", "dns", 0, "dns/refused", rule="REFUSED while the control resolves"),
    ),
    "dns-no-answer": (
        measurement(plain((), ctl(), dns_=[dns(HOST, failure="dns_no_answer")], tcp_=[], http_=None)),
        expect("hijacked", "dns", 0, "dns/no-answer", rule="no answer while the control resolves"),
    ),
    "dns-aaaa-no-answer-v4-only-site": (
        measurement(plain(control_=ctl(), dns_=[dns(HOST, [SITE]), dns(HOST, qtype="AAAA", failure="dns_no_answer")])),
        expect("ok", None, None, rule="no AAAA for a site the control knows only by IPv4 is normal"),
    ),
    "dns-answer-for-nxdomain": (
        measurement(plain((CENSOR,), ctl(addrs=(), dns_failure="dns_nxdomain_error", body=None,
                                         http_failure="dns_nxdomain_error"),
                          http_=http(URL, CENSOR, body=page("Landing", 900)))),
        expect("hijacked", "dns", 0, "dns/answer-for-nxdomain:203.0.113.66",
               rule="addresses while the control gets NXDOMAIN"),
    ),
    "dns-injection": (
        measurement(plain(dns_=[dns(HOST, replies=[("NOERROR", [CENSOR]), ("NOERROR", [SITE])])],
                          control_=ctl(), tcp_=[tcp(CENSOR, 80, "generic_timeout_error")], http_=None)),
        expect("hijacked", "dns", 0, "dns/injection:2-replies",
               rule="two different replies to one query, the later one genuine"),
    ),
    "dns-injection-no-control": (
        measurement(plain(dns_=[dns(HOST, replies=[("NOERROR", [CENSOR]), ("NOERROR", [SITE])])],
                          tcp_=[tcp(CENSOR, 80, "generic_timeout_error")], http_=None)),
        expect("hijacked", "dns", 0, "dns/injection:2-replies", rule="local proof: injection without control"),
    ),
    "dns-timeout": (
        measurement(plain((), ctl(), dns_=[dns(HOST, failure="generic_timeout_error")], tcp_=[], http_=None)),
        expect("blocked", "dns", 0, "dns/timeout", rule="query times out while the control resolves"),
    ),
    "dns-inconsistent": (
        measurement(plain((CENSOR,), ctl(), http_=http(URL, CENSOR, body=page("Access restricted", 700)))),
        expect("hijacked", "dns", 0, "dns/inconsistent:203.0.113.66", "http/diff",
               rule="answers inconsistent with the control"),
    ),
    "dns-consistent-asn": (
        measurement(plain(("198.51.100.7",), ctl(addrs=("198.51.100.99",)),
                          http_=http(URL, "198.51.100.7", body=page("Example News - Front page", 21000, "now")))),
        expect("ok", None, None, "dns/consistent:asn", rule="different CDN node, same ASN"),
    ),
    "dns-consistent-tls": (
        measurement(secure(("203.0.113.99",), sctl())),
        expect("ok", None, None, "dns/consistent:tls", rule="different address with a valid certificate"),
    ),
    "dns-nxdomain-everywhere": (
        measurement(plain((), ctl(addrs=(), dns_failure="dns_nxdomain_error", body=None,
                                  http_failure="dns_nxdomain_error"),
                          dns_=[dns(HOST, failure="dns_nxdomain_error")], tcp_=[], http_=None)),
        expect("down", "dns", 0, "dns/nxdomain", "control/dns-nxdomain", rule="NXDOMAIN for everyone: down"),
    ),
    # --- TCP -------------------------------------------------------------------------------
    "tcp-timeout": (
        measurement(plain(control_=ctl(), tcp_=[tcp(SITE, 80, "generic_timeout_error")], http_=None)),
        expect("blocked", "tcp", 0, "tcp/timeout:192.0.2.10", rule="connect timeout while the control connects"),
    ),
    "tcp-refused": (
        measurement(plain(control_=ctl(), tcp_=[tcp(SITE, 80, "connection_refused")], http_=None)),
        expect("reset", "tcp", 0, "tcp/refused:192.0.2.10", rule="refused (RST to SYN) while the control connects"),
    ),
    "tcp-reset": (
        measurement(plain(control_=ctl(), tcp_=[tcp(SITE, 80, "connection_reset")], http_=None)),
        expect("reset", "tcp", 0, "tcp/reset:192.0.2.10", rule="reset while the control connects"),
    ),
    "tcp-refused-everywhere": (
        measurement(plain(control_=ctl(body=None, http_failure="connection_refused",
                                       tcp_=[(SITE, 80, "connection_refused")]),
                          tcp_=[tcp(SITE, 80, "connection_refused")], http_=None)),
        expect("down", "tcp", 0, "tcp/refused:192.0.2.10", "control/tcp-refused", rule="refused for everyone: down"),
    ),
    "tcp-one-address-blocked-other-works": (
        measurement(plain((SITE, SITE2), ctl(addrs=(SITE, SITE2)),
                          tcp_=[tcp(SITE, 80, "generic_timeout_error"), tcp(SITE2)],
                          http_=http(URL, SITE2, body=PAGE))),
        expect("ok", None, None, "tcp/timeout:192.0.2.10", rule="per-address failure kept as evidence, site reached"),
    ),
    "tcp-ipv6-unreachable-locally": (
        measurement(plain((SITE, "2001:db8::10"), ctl(addrs=(SITE, "2001:db8::10")),
                          tcp_=[tcp(SITE), tcp("2001:db8::10", 80, "network_unreachable")])),
        expect("ok", None, None, "tcp/local:network_unreachable", rule="no IPv6 route on the probe is not censorship"),
    ),
    # --- TLS -------------------------------------------------------------------------------
    "tls-reset": (
        measurement(secure(control_=sctl(), tls_=[tls(SITE, HOST, "connection_reset")], http_=None)),
        expect("reset", "tls", 0, "tls/reset:192.0.2.10", rule="reset during the handshake"),
    ),
    "tls-eof": (
        measurement(secure(control_=sctl(), tls_=[tls(SITE, HOST, "eof_error")], http_=None)),
        expect("reset", "tls", 0, "tls/eof:192.0.2.10", rule="EOF during the handshake"),
    ),
    "tls-timeout": (
        measurement(secure(control_=sctl(), tls_=[tls(SITE, HOST, "generic_timeout_error")], http_=None)),
        expect("blocked", "tls", 0, "tls/timeout:192.0.2.10", rule="handshake timeout"),
    ),
    "tls-interception": (
        measurement(secure(control_=sctl(), tls_=[tls(SITE, HOST, "ssl_unknown_authority")], http_=None)),
        expect("hijacked", "tls", 0, "tls/cert-invalid:ssl_unknown_authority",
               rule="invalid certificate while the control's is valid"),
    ),
    "tls-bad-cert-everywhere": (
        measurement(secure(control_=sctl(body=None, http_failure="ssl_invalid_hostname",
                                         tls_fail="ssl_invalid_hostname"),
                           tls_=[tls(SITE, HOST, "ssl_invalid_hostname")], http_=None)),
        expect("down", "tls", 0, "tls/cert-invalid:ssl_invalid_hostname", "control/tls-cert-invalid",
               rule="bad certificate for everyone: down"),
    ),
    # --- HTTP ------------------------------------------------------------------------------
    "http-reset": (
        measurement(plain(control_=ctl(), http_=http(URL, SITE, failure="connection_reset"))),
        expect("reset", "http", 0, "http/reset", rule="reset during the HTTP exchange"),
    ),
    "http-eof": (
        measurement(plain(control_=ctl(), http_=http(URL, SITE, failure="eof_error"))),
        expect("reset", "http", 0, "http/eof", rule="EOF during the HTTP exchange"),
    ),
    "http-timeout": (
        measurement(plain(control_=ctl(), http_=http(URL, SITE, failure="generic_timeout_error"))),
        expect("blocked", "http", 0, "http/timeout", rule="HTTP timeout"),
    ),
    "http-blockpage": (
        measurement(plain(control_=ctl(), http_=http(URL, SITE, body=BLOCKPAGE))),
        expect("blocked", "http", 0, "http/blockpage:ooni.ru_1", rule="block-page fingerprint"),
    ),
    "http-blockpage-no-control": (
        measurement(plain(http_=http(URL, SITE, body=BLOCKPAGE))),
        expect("blocked", "http", 0, "http/blockpage:ooni.ru_1", "control/unavailable",
               rule="local proof: block-page fingerprint without control"),
    ),
    "http-blockpage-redirect-location": (
        measurement(
            plain(control_=ctl(), http_=http(URL, SITE, status=302, location="http://www.warning.or.kr")),
            hop("http://www.warning.or.kr/", index=1, dns_=[dns("www.warning.or.kr", [CENSOR])],
                tcp_=[tcp(CENSOR)], http_=http("http://www.warning.or.kr/", CENSOR, body=page("Warning", 3000))),
        ),
        expect("blocked", "http", 0, "http/blockpage:ooni.kr_2", rule="redirect to a known block page (header)"),
    ),
    "http-diff-status": (
        measurement(plain(control_=ctl(), http_=http(URL, SITE, status=403, body=page("Forbidden", 300)))),
        expect("blocked", "http", 0, "http/diff:status", rule="response differs from the control's"),
    ),
    "http-dynamic-same-title": (
        measurement(plain(control_=ctl(), http_=http(URL, SITE, body=page("Example News - Front page", 5000, "x")))),
        expect("ok", None, None, rule="dynamic body with the same status and title is not a diff"),
    ),
    "http-control-5xx-no-diff": (
        measurement(plain(control_=ctl(body=page("Bad gateway", 200), status=502),
                          http_=http(URL, SITE, body=PAGE))),
        expect("inconclusive", "http", 0, "control/http-status:502", rule="a 5xx control gives no basis for a diff"),
    ),
    "https-diff-authenticated": (
        measurement(secure(control_=sctl(), body=page("Nachrichten - Titelseite", 4000))),
        expect("ok", None, None, "http/diff", "http/authenticated",
               rule="an authenticated https response is never blocked by a diff"),
    ),
    "http-false-positive-captcha": (
        measurement(plain(control_=ctl(), http_=http(URL, SITE, status=403, body=CAPTCHA))),
        expect("inconclusive", "http", 0, "http/false-positive:probe.fp_cloudflare_just_a_moment",
               rule="false positive over plain http: inconclusive, never blocked"),
    ),
    "https-false-positive-captcha": (
        measurement(secure(control_=sctl(), http_=http(SURL, SITE, status=403, body=CAPTCHA))),
        expect("ok", None, None, "http/false-positive:probe.fp_cloudflare_just_a_moment",
               rule="false positive over a valid certificate: ok"),
    ),
    "http-too-many-redirects-everywhere": (
        measurement(plain(control_=ctl(body=None, http_failure="http_too_many_redirects"),
                          http_=http(URL, SITE, failure="http_too_many_redirects"))),
        expect("down", "http", 0, "http/failure:http_too_many_redirects", rule="too many redirects for everyone"),
    ),
    "redirect-cdn-then-match": (
        measurement(
            plain(("198.51.100.7",), ctl(addrs=(SITE,)),
                  http_=http(URL, "198.51.100.7", status=301, location=SURL)),
            hop(SURL, index=1, dns_=[dns(HOST, [SITE])], tcp_=[tcp(SITE, 443)], tls_=[tls(SITE, HOST)],
                http_=http(SURL, SITE, body=PAGE), control=sctl()),
        ),
        expect("ok", None, None, "dns/consistent:http",
               rule="unknown address that redirects to the control's page is consistent"),
    ),
    "redirect-then-tls-reset": (
        measurement(
            plain(control_=ctl(), http_=http(URL, SITE, status=302, location="https://cdn.example.net/a")),
            hop("https://cdn.example.net/a", index=1, dns_=[dns("cdn.example.net", ["198.51.100.20"])],
                tcp_=[tcp("198.51.100.20", 443)], tls_=[tls("198.51.100.20", "cdn.example.net", "connection_reset")],
                control=control("https://cdn.example.net/a", ["198.51.100.20"], tcp_=[("198.51.100.20", 443, None)],
                                tls_=[("198.51.100.20", 443, None)], body=PAGE)),
        ),
        expect("reset", "tls", 1, "tls/reset:198.51.100.20", rule="interference on a redirect hop names that hop"),
    ),
    "tls-interception-serving-blockpage": (
        measurement(secure(control_=sctl(), tls_=[tls(SITE, HOST, None, valid=False)],
                           http_=http(SURL, SITE, body=BLOCKPAGE))),
        expect("hijacked", "tls", 0, "tls/cert-invalid:untrusted", "http/blockpage:ooni.ru_1",
               rule="interception decides before the block page it serves; both are kept"),
    ),
    # --- resolver-less DNS probes (--dns-probe): interception is evidence, injection a lie --
    "dns-probe-interception-honest-resolver": (
        measurement(with_dns_probe(plain(control_=ctl()), [SITE])),
        expect("ok", None, None, f"dns/intercepted:no-resolver@{NO_DNS}", "http/match",
               rule="an ISP that redirects all DNS to an honest resolver: the answer from an "
                    "address without a DNS server equals the control's, the page matches") | {
            "reasons_exclude": ["dns/injected"]},
    ),
    "dns-probe-injection-disagrees-with-control": (
        measurement(with_dns_probe(plain(control_=ctl()), [CENSOR])),
        expect("hijacked", "dns", 0, f"dns/injected:no-resolver@{NO_DNS}",
               rule="an answer from an address without a DNS server that the control contradicts "
                    "is injected"),
    ),
    "dns-probe-interception-no-control": (
        measurement(with_dns_probe(plain(), [SITE])),
        expect("inconclusive", "http", 0, f"dns/intercepted:no-resolver@{NO_DNS}",
               rule="without a control an answer from an address without a DNS server proves "
                    "interception, not a lie") | {"reasons_exclude": ["dns/injected"]},
    ),
    "dns-probe-bogon-no-control": (
        measurement(with_dns_probe(plain(), ["10.10.34.34"])),
        expect("hijacked", "dns", 0, f"dns/injected:no-resolver@{NO_DNS}",
               rule="a bogon for a public name is a lie even without a control"),
    ),
    "dns-doh-control-only": (
        measurement(hop(URL, dns_=[dns(HOST, [CENSOR])], tcp_=[tcp(CENSOR)],
                        http_=http(URL, CENSOR, body=page("Access restricted", 700)),
                        dns_control=[dns(HOST, [SITE], resolver="doh:https://127.0.0.1:8053/dns-query")])),
        expect("hijacked", "dns", 0, "dns/inconsistent:203.0.113.66",
               rule="DoH answers are a DNS control on their own"),
    ),
    "dns-lab-bogon-private-control": (
        measurement(hop("http://dns-bogon.lab.example/", dns_=[dns("dns-bogon.lab.example", ["10.10.34.34"])],
                        tcp_=[tcp("10.10.34.34", 80, "network_unreachable")],
                        control=control("http://dns-bogon.lab.example/", ["10.66.2.12"],
                                        tcp_=[("10.10.34.34", 80, "network_unreachable"), ("10.66.2.12", 80, None)],
                                        body=PAGE))),
        expect("hijacked", "dns", 0, "dns/inconsistent:10.10.34.34",
               rule="inside a private network, a private answer is judged by consistency, not as a bogon")
        | {"reasons_exclude": ["dns/bogon"]},
    ),
    "http-huge-truncated": (
        measurement(plain(control_=ctl(body=b"y" * 2_000_000),
                          http_=replace(http(URL, SITE, body=b"x" * 1024), body_length=1 << 20, body_truncated=True,
                                        body_sha256="0" * 64))),
        expect("ok", None, None, rule="a body cut at the cap is compared as a prefix"),
    ),
    # --- no control ------------------------------------------------------------------------
    "no-control-plain-http": (
        measurement(plain()),
        expect("inconclusive", "http", 0, "control/unavailable", "http/unverified",
               rule="no control and nothing provable: inconclusive"),
    ),
    "no-control-helper-failed": (
        measurement(plain(control_=control(URL, failure="connection_refused"))),
        expect("inconclusive", "http", 0, "control/failed:connection_refused", rule="helper unreachable"),
    ),
    "no-control-https-validated": (
        measurement(secure()),
        expect("ok", None, None, "http/authenticated", rule="local proof: https validated end to end"),
    ),
    "no-control-tcp-timeout": (
        measurement(plain(tcp_=[tcp(SITE, 80, "generic_timeout_error")], http_=None)),
        expect("inconclusive", "tcp", 0, "tcp/timeout", rule="a failure with no control is not a verdict"),
    ),
}


# --- issue 12: false positives found on real data -----------------------------------------
LOOP = "127.0.0.1"
V6_PROBE = "2a03:2880:f12f:83:face:b00c:0:25de"  # outside the geo fixture: "no ASN data"
V6_CONTROL = "2a03:2880:f10c:283:face:b00c:0:25de"
WARN_URL = "http://warning.isp-filter.net/?site=news.example.com"
WARNING = page("Access restricted", 3000, "This resource is restricted in your network")
CDN_URL = "http://cdn.example.net/front"
CDN = "198.51.100.20"


def _with_status(h, status: int, location: str):  # an exchange that got a response, then failed
    return replace(h, status=status, headers=(("location", location),), location=location)


def _aaaa_cdn(page_loads: bool):
    return measurement(hop(
        URL,
        dns_=[dns(HOST, [SITE]), dns(HOST, [V6_PROBE], qtype="AAAA")],
        tcp_=[tcp(V6_PROBE, 80, "network_unreachable"), tcp(SITE, 80, None if page_loads else "generic_timeout_error")],
        http_=http(URL, SITE, body=PAGE) if page_loads else None,
        control=control(URL, [SITE, V6_CONTROL], tcp_=[(SITE, 80, None), (V6_CONTROL, 80, None)], body=PAGE),
    ))


def _redirect_then(hop1, control0=None):
    c0 = control0 if control0 is not None else ctl()
    return measurement(
        hop(URL, dns_=[dns(HOST, [SITE])], tcp_=[tcp(SITE)],
            http_=http(URL, SITE, status=302, body=b"", location=CDN_URL), control=c0),
        hop1,
    )


CASES.update({
    "dns-loopback-everywhere": (
        measurement(plain((LOOP,), control(URL, [LOOP], tcp_=[(LOOP, 80, None)], http_failure="connection_refused"),
                          tcp_=[tcp(LOOP, 80, "connection_refused")], http_=None)),
        {**expect("down", "tcp", 0, "dns/loopback-everywhere:127.0.0.1", "tcp/local:loopback:127.0.0.1",
                  rule="the control resolves the same loopback address: the site is down; a loopback connect is local"),
         "reasons_exclude": ["tcp/refused", "dns/bogon"]},
    ),
    "dns-loopback-everywhere-local-server": (
        measurement(plain((LOOP,), control(URL, [LOOP], http_failure="connection_refused"),
                          tcp_=[tcp(LOOP)], http_=http(URL, LOOP, body=page("Welcome to nginx!", 600)))),
        {**expect("down", "http", 0, "dns/loopback-everywhere", "http/local:loopback",
                  rule="whatever answers on our loopback is this machine, not the site"),
         "reasons_exclude": ["http/diff", "http/unverified"]},
    ),
    "dns-loopback-no-control-lab-name": (
        measurement(hop("http://loop.lab.example/", dns_=[dns("loop.lab.example", [LOOP])],
                        tcp_=[tcp(LOOP, 80, "connection_refused")])),
        {**expect("inconclusive", "tcp", 0, "tcp/local:loopback:127.0.0.1", "control/unavailable",
                  rule="a failed loopback connect is local: never reset, even without control"),
         "reasons_exclude": ["tcp/refused"]},
    ),
    "dns-bogon-authenticated-no-control": (
        measurement(hop(SURL, dns_=[dns(HOST, ["10.20.30.40"])], tcp_=[tcp("10.20.30.40", 443)],
                        tls_=[tls("10.20.30.40", HOST)], http_=http(SURL, "10.20.30.40", body=PAGE))),
        {**expect("ok", None, None, "dns/consistent:tls", "http/authenticated", "control/unavailable",
                  rule="TLS authentication outranks the bogon and no-control rules"),
         "reasons_exclude": ["dns/bogon"]},
    ),
    "dns-bogon-unauthenticated-no-control": (
        measurement(hop(SURL, dns_=[dns(HOST, ["10.20.30.40"])], tcp_=[tcp("10.20.30.40", 443)],
                        tls_=[tls("10.20.30.40", HOST, "ssl_unknown_authority")])),
        expect("hijacked", "dns", 0, "dns/bogon:10.20.30.40", rule="an answer that does not authenticate stays a bogon"),
    ),
    "dns-aaaa-cdn-differs-no-asn": (
        _aaaa_cdn(True),
        {**expect("ok", None, None, "dns/consistent:other-family", "http/match", "tcp/local:network_unreachable",
                  rule="CDN AAAA differs, IPv4 consistent, page loads, no ASN data: never hijacked"),
         "reasons_exclude": ["dns/inconsistent"]},
    ),
    "http-forged-redirect-unseen-by-control": (
        measurement(
            hop(URL, dns_=[dns(HOST, [SITE])], tcp_=[tcp(SITE)],
                http_=http(URL, SITE, status=302, body=b"", location=WARN_URL), control=ctl()),
            hop(WARN_URL, index=1, dns_=[dns("warning.isp-filter.net", [CENSOR])], tcp_=[tcp(CENSOR)],
                http_=http(WARN_URL, CENSOR, body=WARNING),
                control=control(WARN_URL, [CENSOR], tcp_=[(CENSOR, 80, None)], body=WARNING)),
        ),
        expect("blocked", "http", 0, "http/redirect-unseen-by-control:" + WARN_URL, "http/match",
               rule="first divergence decides: a redirect the control did not get is interference"),
    ),
    "redirect-site-own-controls-agree": (
        measurement(
            hop(URL, dns_=[dns(HOST, [SITE])], tcp_=[tcp(SITE)],
                http_=http(URL, SITE, status=302, body=b"", location=CDN_URL), control=ctl()),
            hop(CDN_URL, index=1, dns_=[dns("cdn.example.net", [CDN])], tcp_=[tcp(CDN)],
                http_=http(CDN_URL, CDN, body=PAGE), control=ctl(CDN_URL, (CDN,))),
        ),
        {**expect("ok", None, None, "http/match", rule="a redirect both controls agree with is the site's"),
         "reasons_exclude": ["redirect-unseen"]},
    ),
    "redirect-target-tcp-timeout-first-url-control": (
        _redirect_then(hop(CDN_URL, index=1, dns_=[dns("cdn.example.net", [CDN])],
                           tcp_=[tcp(CDN, 80, "generic_timeout_error")])),
        expect("blocked", "tcp", 1, "tcp/timeout:198.51.100.20", "control/reached-by-redirect",
               rule="the first-URL control reached the final page through this hop"),
    ),
    "redirect-target-nxdomain-first-url-control": (
        _redirect_then(hop(CDN_URL, index=1, dns_=[dns("cdn.example.net", failure="dns_nxdomain_error")])),
        expect("hijacked", "dns", 1, "dns/nxdomain", "control/reached-by-redirect",
               rule="the first-URL control resolved the redirect target"),
    ),
    "redirect-target-tcp-timeout-control-failed": (
        _redirect_then(hop(CDN_URL, index=1, dns_=[dns("cdn.example.net", [CDN])],
                           tcp_=[tcp(CDN, 80, "generic_timeout_error")]),
                       ctl(body=None, http_failure="generic_timeout_error")),
        expect("inconclusive", "tcp", 1, "tcp/timeout:198.51.100.20",
               rule="a first-URL control that did not reach the end vouches for nothing after the redirect"),
    ),
    "inconclusive-stage-is-the-open-step": (
        measurement(hop(URL, dns_=[dns(HOST, [SITE]), dns(HOST, qtype="AAAA", failure="dns_no_answer")],
                        tcp_=[tcp(SITE, 80, "generic_timeout_error")])),
        expect("inconclusive", "tcp", 0, "dns/no-answer", "tcp/timeout",
               rule="the stage of an inconclusive verdict is the step that left it open, not a missing AAAA"),
    ),
    "http-invalid-redirect-location-injected": (
        measurement(plain(control_=ctl(),
                          http_=_with_status(http(URL, SITE, failure="http_invalid_redirect_location_host"), 302, "http://"))),
        expect("blocked", "http", 0, "http/failure:http_invalid_redirect_location_host", "http/redirect-unseen-by-control",
               rule="a broken Location the control (following the site's redirects) never got"),
    ),
    "http-invalid-redirect-location-everywhere": (
        measurement(plain(control_=ctl(body=None, http_failure="http_invalid_redirect_location_host"),
                          http_=_with_status(http(URL, SITE, failure="http_invalid_redirect_location_host"), 302, "http://"))),
        expect("down", "http", 0, "http/failure:http_invalid_redirect_location_host",
               rule="the site sends a broken Location to everyone"),
    ),
    "https-invalid-redirect-location-authenticated": (
        measurement(secure(control_=sctl(),
                           http_=_with_status(http(SURL, SITE, failure="http_invalid_redirect_location_host"), 302, "https://"))),
        expect("inconclusive", "http", 0, "http/authenticated-redirect",
               rule="a broken Location over a valid certificate came from the site itself"),
    ),
})


def main() -> None:
    for name, (m, expected) in CASES.items():
        write_case(name, m, expected)
    print(f"wrote {len(CASES)} cases")


if __name__ == "__main__":
    main()
