"""Reasons in plain words: the one table from reason codes to sentences.

Every command that explains a verdict (the end of `probe run`, `probe show`, `probe report`,
the Datasette metadata) calls :func:`explain` and :func:`decisive`, so a reason is worded the
same everywhere. Reason codes are ``stage/outcome[:detail]`` (docs/classification.md); the
table is keyed by ``stage/outcome`` and formats the detail.

Import-light on purpose (no network, no plotting library): `probe show` and `probe results`
use it. Fingerprint names are looked up in the packaged fingerprint files only when a reason
names one, to say which country a block page belongs to.
"""

from __future__ import annotations

import csv
import functools
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from probe.core.failures import Failure
from probe.host.data import DATA_DIR

__all__ = ["REASONS", "country_name", "decisive", "explain", "fingerprint_countries"]

_DATA_DIR = DATA_DIR

# OONI failure strings in words, for details that carry one.
_FAILURES = {
    Failure.GENERIC_TIMEOUT_ERROR: "timed out",
    Failure.DNS_TIMEOUT_ERROR: "timed out",
    Failure.DEADLINE_EXCEEDED: "ran out of time",
    Failure.CONNECTION_RESET: "connection reset",
    Failure.CONNECTION_ABORTED: "connection aborted",
    Failure.CONNECTION_REFUSED: "connection refused",
    Failure.EOF_ERROR: "connection closed early",
    Failure.DNS_NXDOMAIN_ERROR: "name does not exist",
    "dns_name_error": "name does not exist",
    Failure.DNS_NO_ANSWER: "no address",
    Failure.DNS_SERVFAIL_ERROR: "resolver failure (SERVFAIL)",
    Failure.DNS_REFUSED_ERROR: "resolver refused",
    Failure.NETWORK_UNREACHABLE: "network unreachable",
    Failure.HOST_UNREACHABLE: "host unreachable",
    Failure.NETWORK_DOWN: "network down",
    Failure.ADDRESS_NOT_AVAILABLE: "no local address",
    Failure.SSL_INVALID_HOSTNAME: "certificate for another name",
    Failure.SSL_UNKNOWN_AUTHORITY: "certificate from an unknown authority",
    Failure.SSL_INVALID_CERTIFICATE: "invalid certificate",
    Failure.SSL_FAILED_HANDSHAKE: "TLS handshake failed",
    Failure.HTTP_TOO_MANY_REDIRECTS: "too many redirects",
    "untrusted": "certificate not trusted",
}

_DIFF_PARTS = {
    "status": "status code",
    "body-length": "body length",
    "title": "title",
    "headers": "headers",
}

_CONSISTENT = {
    "asn": "they are in the same network (ASN) as the control's",
    "tls": "a TLS handshake to them returned a valid certificate for the site",
    "control-tls": "the control's TLS handshake to them returned a valid certificate",
    "http": "they served the control's page",
    "false-positive": "they served a known bot challenge of the site's CDN",
    "other-family": "the other address family's answer is consistent and the page loaded (a CDN)",
}


def _failure(code: str) -> str:
    return _FAILURES.get(code, code.replace("_", " ") if code else "unknown failure")


@functools.cache
def _country_names() -> dict[str, str]:
    # ISO 3166 names as listed by the Citizen Lab test lists' legend (probe/data/NOTICE).
    try:
        with open(_DATA_DIR / "country_codes.csv", encoding="utf-8", newline="") as f:
            return {r["CountryCode"]: r["CountryName"] for r in csv.DictReader(f)}
    except OSError:
        return {}


def country_name(code: str) -> str:
    """The country's name for an ISO 3166 alpha-2 code (the code itself if unknown)."""
    return _country_names().get(code.upper(), code)


@functools.cache
def _fingerprint_countries() -> dict[str, tuple[str, ...]]:
    out: dict[str, tuple[str, ...]] = {}
    for name in ("fingerprints_dns.csv", "fingerprints_http.csv", "fingerprints_extra.csv"):
        try:
            with open(_DATA_DIR / name, encoding="utf-8", newline="") as f:
                for r in csv.DictReader(f):
                    codes = tuple(c.strip() for c in (r.get("expected_countries") or "").split(","))
                    out[r["name"]] = tuple(c for c in codes if c and c != "ZZ")
        except OSError:
            continue
    return out


def fingerprint_countries(name: str) -> tuple[str, ...]:
    """Countries a packaged fingerprint is known from (empty for user fingerprints)."""
    return _fingerprint_countries().get(name, ())


def _where(fp_name: str) -> str:
    countries = fingerprint_countries(fp_name)
    if not countries:
        return ""
    names = [country_name(c) for c in countries[:3]]
    more = f" and {len(countries) - 3} more" if len(countries) > 3 else ""
    return " in " + ", ".join(names) + more


def _blockpage_dns(detail: str) -> str:
    name, _, addr = detail.partition("@")
    return f"DNS answer {addr or '?'} is a known block-page address{_where(name)} ({name})"


def _injection(detail: str) -> str:
    n = detail.split("-", 1)[0]
    return (f"{n} different DNS replies to one query: a forged answer was injected on the path")


def _no_resolver(detail: str, lie: bool) -> str:
    where = detail.split("@", 1)[1] if "@" in detail else "?"
    if lie:
        if not detail.startswith("no-resolver@"):
            return f"of several DNS replies to one query, one was forged on the path ({detail})"
        return (f"{where}, an address that runs no DNS server, answered the query, and its answer "
                "disagrees with the control: forged on the path")
    return (f"{where}, an address that runs no DNS server, answered the query: DNS is intercepted "
            "on the path (the answer agrees with the control)")


def _diff(detail: str) -> str:
    parts = [_DIFF_PARTS.get(p, p) for p in detail.split(",") if p]
    return "the page differs from the control's" + (f" ({', '.join(parts)})" if parts else "")


def _control(outcome: str, detail: str) -> str:
    step, _, kind = outcome.partition("-")
    what = {"dns": "DNS", "tcp": "TCP", "tls": "TLS", "http": "HTTP"}.get(step, step)
    if outcome == "http-status":
        return f"the control got HTTP status {detail}"
    if outcome == "http-failed":
        return f"the control's HTTP fetch failed too ({_failure(detail)})"
    at = f" to {detail}" if detail else ""
    return f"the control's {what}{at} failed too ({kind.replace('-', ' ') or 'failure'})"


@dataclass(frozen=True)
class _Entry:
    words: Callable[[str], str]
    carries: frozenset[str]  # verdicts this reason can decide


def _local(detail: str) -> str:
    if detail.startswith("loopback:"):
        ip = detail.split(":", 2)[1]
        return f"{ip} is this machine (loopback): no censor can act on it"
    return f"this machine's own network could not reach the address ({_failure(detail)}): not censorship"


def _e(words: Callable[[str], str], *carries: str) -> _Entry:
    return _Entry(words, frozenset(carries))


#: ``stage/outcome`` -> how to say it, and which verdicts it can decide. One table for every
#: command that explains (a unit test checks it covers docs/classification.md's vocabulary).
REASONS: dict[str, _Entry] = {
    "dns/injection": _e(_injection, "hijacked"),
    "dns/injected": _e(lambda d: _no_resolver(d, lie=True), "hijacked"),
    "dns/intercepted": _e(lambda d: _no_resolver(d, lie=False)),
    "dns/bogon": _e(lambda d: f"DNS answered {d}, a private or reserved address no public site "
                    "has", "hijacked"),
    "dns/blockpage": _e(_blockpage_dns, "hijacked"),
    "dns/nxdomain": _e(lambda d: "DNS said the name does not exist (NXDOMAIN) while the control "
                       "resolved it", "hijacked", "down"),
    "dns/no-answer": _e(lambda d: "DNS returned no address while the control got one",
                        "hijacked", "down"),
    "dns/servfail": _e(lambda d: "the DNS resolver failed (SERVFAIL) while the control resolved "
                       "the name", "hijacked", "down"),
    "dns/refused": _e(lambda d: "the DNS resolver refused the query while the control resolved "
                      "the name", "hijacked", "down"),
    "dns/timeout": _e(lambda d: "no DNS reply arrived while the control resolved the name",
                      "blocked", "down"),
    "dns/answer-for-nxdomain": _e(lambda d: f"DNS answered {d} for a name that does not exist "
                                  "according to the control", "hijacked"),
    "dns/inconsistent": _e(lambda d: f"DNS answered {d}: addresses the control does not see, in "
                           "another network, with no valid certificate or matching page",
                           "hijacked"),
    "dns/consistent": _e(lambda d: "DNS answers differ from the control's but are genuine: "
                         + _CONSISTENT.get(d, d)),
    "dns/unverified": _e(lambda d: f"DNS answered {d}; the control has no address of that "
                         "family to compare with"),
    "dns/failure": _e(lambda d: f"DNS failed ({_failure(d)})", "down"),
    "dns/loopback-everywhere": _e(lambda d: f"the name resolves to {d} (this machine) for the "
                                  "control too: broken for everyone", "down"),
    "tcp/timeout": _e(lambda d: f"TCP connection to {d} timed out (SYN unanswered) while the "
                      "control connected", "blocked", "down"),
    "tcp/refused": _e(lambda d: f"TCP connection to {d} refused (RST answering the SYN) while "
                      "the control connected", "reset", "down"),
    "tcp/reset": _e(lambda d: f"TCP connection to {d} reset while the control connected",
                    "reset", "down"),
    "tcp/local": _e(_local, "down"),
    "tls/local": _e(_local, "down"),
    "http/local": _e(_local, "down"),
    "tcp/failure": _e(lambda d: f"TCP connection failed ({_failure(d)})", "down"),
    "tls/reset": _e(lambda d: f"connection to {d} reset after the TLS ClientHello named the site",
                    "reset", "down"),
    "tls/eof": _e(lambda d: f"connection to {d} closed after the TLS ClientHello named the site",
                  "reset", "down"),
    "tls/timeout": _e(lambda d: f"TLS handshake with {d} stalled after the ClientHello named the "
                      "site", "blocked", "down"),
    "tls/handshake-failed": _e(lambda d: f"TLS handshake with {d} failed with an alert while the "
                               "control's completed", "blocked", "down"),
    "tls/cert-invalid": _e(lambda d: f"the TLS certificate is not valid for the site "
                           f"({_failure(d)}) while the control's is: interception",
                           "hijacked", "down"),
    "tls/failure": _e(lambda d: f"TLS failed ({_failure(d)})", "down"),
    "http/reset": _e(lambda d: "connection reset after the HTTP request named the site, while the "
                     "control fetched the page", "reset", "down"),
    "http/eof": _e(lambda d: "connection closed after the HTTP request named the site, while the "
                   "control fetched the page", "reset", "down"),
    "http/timeout": _e(lambda d: "the HTTP response never came while the control fetched the page",
                       "blocked", "down"),
    "http/failure": _e(lambda d: f"HTTP failed ({_failure(d)})", "down", "blocked"),
    "http/redirect-unseen-by-control": _e(lambda d: f"redirected{' to ' + d if d else ''}, a "
                                          "redirect the control never got", "blocked"),
    "http/authenticated-redirect": _e(lambda d: "the redirect came over a certificate valid for "
                                      "the site: the site's own doing"),
    "http/blockpage": _e(lambda d: f"the page served is a known block page{_where(d)} ({d})",
                         "blocked"),
    "http/false-positive": _e(lambda d: f"the page is a known look-alike, not censorship ({d})"),
    "http/false-positive-wins": _e(lambda d: "a known false positive outweighs the other evidence",
                                   "inconclusive", "ok"),
    "http/diff": _e(_diff, "blocked"),
    "http/match": _e(lambda d: "the page is the one the control got", "ok"),
    "http/throttled": _e(lambda d: f"the page loaded {d} slower (bytes per round trip) than the other "
                         "sites of the run, while the control fetched it at its usual speed", "throttled"),
    "http/slow": _e(lambda d: f"the page loaded {d} slower than the other sites of the run; the control "
                    "cannot confirm whether it is slow for everyone"),
    "control/http-speed": _e(lambda d: f"the control fetched it {d} slower than its other sites"),
    "http/authenticated": _e(lambda d: "the page came over a certificate valid for the site", "ok"),
    "http/unverified": _e(lambda d: "a page arrived but there was nothing to compare it with",
                          "inconclusive"),
    "http/not-attempted": _e(lambda d: "connected, but no HTTP exchange was recorded",
                             "inconclusive"),
    "control/unavailable": _e(lambda d: "no control was available to compare with",
                              "inconclusive"),
    "control/reached-by-redirect": _e(lambda d: "the control reached the final page through "
                                      "this step (it follows redirects)"),
    "control/failed": _e(lambda d: f"the control could not be obtained ({_failure(d)})",
                         "inconclusive"),
    "measurement/deadline_exceeded": _e(lambda d: "the measurement ran out of time (deadline)",
                                        "inconclusive"),
    "measurement/no-hops": _e(lambda d: "nothing was measured", "inconclusive"),
    # --quic (probe/judge/quic.py, docs/protocols.md); "quic/decoy-<kind>" reads as "quic/decoy"
    "quic/ok": _e(lambda d: f"a QUIC (HTTP/3) handshake with {d} naming the site completed", "ok"),
    "quic/timeout": _e(lambda d: f"the QUIC handshake with {d} naming the site got no answer in time"),
    "quic/refused": _e(lambda d: f"nothing answers QUIC at {d} (ICMP port unreachable)"),
    "quic/handshake-failed": _e(lambda d: f"the QUIC handshake with {d} was closed with a TLS alert"),
    "quic/other": _e(lambda d: f"the QUIC handshake with {d} failed"),
    "quic/decoy": _e(lambda d: f"QUIC naming a harmless name, {d}, at the same address"),
    "quic/unsupported": _e(lambda d: "the control could not do QUIC there either: the site has no "
                           "HTTP/3 there, not censorship", "down"),
    "quic/sni-filtered": _e(lambda d: "QUIC naming the site failed while QUIC naming a harmless name "
                            "to the same address, TCP/TLS and the control's QUIC worked: the name "
                            "is filtered", "blocked"),
    "quic/udp-blocked": _e(lambda d: "QUIC failed whatever the name while TCP/TLS to the address "
                           "and the control's QUIC worked: UDP to the address is blocked", "blocked"),
    "quic/address-blocked": _e(lambda d: "QUIC and TCP to the address failed while the control's "
                               "QUIC worked: the address is blocked", "blocked"),
    "quic/handshake-ok": _e(lambda d: f"the QUIC handshake with {d} naming the site completed"),
    "quic/h3": _e(lambda d: f"the HTTP/3 request over it to {d} got no answer"),
    "quic/h3-blocked": _e(lambda d: "the HTTP/3 request got no answer after a QUIC handshake that "
                          "completed, while the control's HTTP/3 request was answered", "blocked"),
    "quic/h3-failed-everywhere": _e(lambda d: "the control's HTTP/3 request got no answer either: "
                                    "the site's HTTP/3 does not answer, not censorship", "down"),
    "control/no-http3": _e(lambda d: "the control made no HTTP/3 request to compare with",
                           "inconclusive"),
    "quic/no-decoy": _e(lambda d: "QUIC failed while the control's worked, but no handshake with "
                        "a harmless name was made to tell the name from the address",
                        "inconclusive"),
    "quic/deadline": _e(lambda d: f"the QUIC handshake with {d} was cut by the URL's deadline",
                        "inconclusive"),
    "ech/deadline": _e(lambda d: f"the ECH hello to {d} was cut by the URL's deadline",
                       "inconclusive"),
    "quic/local-only": _e(lambda d: "only this machine's own network failed (no route)",
                          "inconclusive"),
    "quic/not-measured": _e(lambda d: "QUIC was not tried: no https hop" if d == "no-https"
                            else "QUIC was not tried: no address", "inconclusive"),
    "control/no-quic": _e(lambda d: "the control gave no QUIC result for the address (its helper "
                          "does not do QUIC)", "inconclusive"),
    # --ech (probe/judge/ech.py); "ech/plain-<kind>" reads as "ech/plain"
    "ech/ok": _e(lambda d: f"{d} answered the ClientHello with and without an ECH extension", "ok"),
    "ech/plain": _e(lambda d: f"the plain ClientHello to {d} failed: nothing to compare with",
                    "inconclusive"),
    "ech/reset": _e(lambda d: f"the ClientHello with an ECH extension to {d} was reset"),
    "ech/eof": _e(lambda d: f"the connection closed after the ClientHello with an ECH extension "
                  f"to {d}"),
    "ech/timeout": _e(lambda d: f"the ClientHello with an ECH extension to {d} got no answer"),
    "ech/alert": _e(lambda d: f"the ClientHello with an ECH extension got an alert "
                    f"({d.replace(':', ' from ', 1)})"),
    "ech/not_tls": _e(lambda d: f"the ClientHello with an ECH extension to {d} got an answer that "
                      "is not TLS"),
    "ech/residual": _e(lambda d: f"a plain ClientHello sent to {d} after the ECH one went "
                       "unanswered too: the address stayed blocked for a while"),
    "ech/rejected-everywhere": _e(lambda d: "the control's ClientHello with an ECH extension failed "
                                  "too: the site's side refuses it, not censorship", "down"),
    "ech/not-sent": _e(lambda d: f"no ECH ClientHello was sent to {d}", "inconclusive"),
    "ech/not-measured": _e(lambda d: "ECH was not tried: no https hop" if d == "no-https"
                           else "ECH was not tried: no address connected", "inconclusive"),
    "ech/local-only": _e(lambda d: "only this machine's own network failed (no route)",
                         "inconclusive"),
    "tls/ech-blocked": _e(lambda d: "only the ClientHello with an ECH extension failed "
                          f"({d.replace('_', ' ')}), twice, while the plain one and the control's "
                          "ECH hello to the same address were answered", "reset", "blocked"),
    "control/no-ech": _e(lambda d: "no control ECH test to compare with (only probe's own helper "
                         "has one)", "inconclusive"),
}


def _split(reason: str) -> tuple[str, str, str]:
    code, _, detail = reason.partition(":")
    stage, _, outcome = code.partition("/")
    return stage, outcome, detail


def explain(reason: str, verdict: str | None = None) -> str:
    """One reason code in plain words; an unknown code is returned as it is.

    With ``verdict="down"`` a failure is worded as what it is then: the control failed alike.
    """
    text = _words(reason)
    if verdict == "down":
        text = text.split(" while the control")[0] + "; the control failed the same way (down for everyone)"
    return text


def _words(reason: str) -> str:
    stage, outcome, detail = _split(reason)
    if stage == "control" and outcome not in ("unavailable", "failed", "reached-by-redirect",
                                              "no-quic", "no-ech", "no-http3"):
        return _control(outcome, detail)
    if stage == "measurement" and f"measurement/{outcome}" not in REASONS:
        return f"the measurement could not finish ({_failure(outcome)})"
    entry = REASONS.get(f"{stage}/{outcome}")
    if entry is None and stage in ("quic", "ech"):  # quic/decoy-timeout, ech/plain-reset, ...
        kind, _, rest = outcome.partition("-")
        entry = REASONS.get(f"{stage}/{kind}")
        if entry is not None and rest:
            return f"{entry.words(detail)} ({rest.replace('-', ' ')})"
    if entry is None:
        return reason
    try:
        return entry.words(detail)
    except Exception:  # a malformed detail must not hide the code
        return reason


def decisive(verdict: str, stage: str | None, reasons: Sequence[str] | Iterable[str]) -> str | None:
    """The reason that decided ``verdict`` at ``stage``, from a stored verdict's reasons.

    The classifier keeps every finding in order (hop, then stage); the decisive one is the first
    at the verdict's stage that can carry the verdict. None for an ok verdict.
    """
    if verdict == "ok":
        return None
    reasons = list(reasons)

    def carries(r: str) -> bool:
        s, o, _ = _split(r)
        entry = REASONS.get(f"{s}/{o}")
        return entry is not None and verdict in entry.carries

    at_stage = [r for r in reasons if stage and r.startswith(f"{stage}/")]
    for r in at_stage:
        if carries(r):
            return r
    for r in reasons:
        if carries(r):
            return r
    if at_stage:
        return at_stage[0]
    return reasons[0] if reasons else None
