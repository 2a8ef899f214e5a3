"""HTTP stage: failures, block-page and false-positive fingerprints, and the diff with the control.

The diff starts from OONI Web Connectivity's rules (status code, body length proportion > 0.7,
uncommon header names, title words) and corrects three known misfires:

- a response over https whose certificate validated for the host is *authenticated*: it came
  from the site, so a difference is the site's own doing (A/B tests, geo content) and never
  "blocked";
- a control status of 5xx, or a control that fetched nothing, gives no basis for a diff;
- the same status and the same title accept a dynamic body even when its length differs
  (OONI accepts that too); identical SHA-256 short-cuts everything;
- headers "match" only when the control sent some uncommon header and the probe's response
  shares one: two responses with only common headers say nothing (OONI calls that a match,
  which lets a block page from a stock server pass as the site).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from probe.core.failures import Failure
from probe.core.model import ControlObservation, Hop, HTTPObservation
from probe.core.net.addresses import canon_ip, related_hosts
from probe.judge.classify.core import INTERFERENCE, Context, Finding, HopControl, failure_kind, is_loopback

__all__ = ["BODY_PROPORTION", "COMMON_HEADERS", "authenticated", "diff", "judge_http", "response_ok"]

#: Minimum ratio of the shorter body to the longer one for lengths to "match" (OONI: 0.7).
BODY_PROPORTION = 0.7
#: Header names every server sends in some form; only the others say something about the server
#: software (after OONI's list, plus a few CDN and security headers that vary per edge).
COMMON_HEADERS = frozenset(
    {
        "date", "content-type", "server", "cache-control", "vary", "set-cookie", "location",
        "expires", "x-powered-by", "content-encoding", "last-modified", "accept-ranges", "pragma",
        "x-frame-options", "etag", "x-content-type-options", "age", "via", "p3p",
        "x-xss-protection", "content-language", "cf-ray", "strict-transport-security", "link",
        "x-varnish", "content-length", "connection", "transfer-encoding", "keep-alive",
        "alt-svc", "report-to", "nel", "content-security-policy", "referrer-policy",
        "permissions-policy", "x-cache", "x-served-by", "x-timer", "cf-cache-status",
    }
)  # fmt: skip
_WORD = re.compile(r"\w+", re.UNICODE)
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_UNCLASSIFIED = frozenset({"unknown_error", Failure.UNKNOWN})  # unknown_error: OONI's helper
# Failure kinds a censor produces: never matched against an unclassified control failure.
_SIGNATURES = frozenset({"reset", "eof", "timeout", "cert-invalid"})


def _title_words(title: str | None) -> list[str]:
    return [w for w in _WORD.findall((title or "").casefold()) if len(w) >= 5]


def title_match(probe: str | None, control: str | None) -> bool | None:
    """Every word of 5+ characters of the control's title appears in the probe's (None: no words)."""
    words = _title_words(control)
    if not words:
        return None
    mine = set(_WORD.findall((probe or "").casefold()))
    return all(w in mine for w in words)


def headers_match(probe: Sequence[tuple[str, str]], control: Sequence[tuple[str, str]]) -> bool | None:
    """The uncommon header names of both sides intersect.

    None when the control sent no uncommon header: OONI counts two sets of common-only headers
    as a match, which accepts any block page served by a stock web server.
    """
    if not control:
        return None
    mine = {n.lower() for n, _ in probe} - COMMON_HEADERS
    theirs = {n.lower() for n, _ in control} - COMMON_HEADERS
    if not theirs:
        return None
    return bool(mine & theirs)


def body_length_match(h: HTTPObservation, c: ControlObservation) -> bool | None:
    if h.body_length is None or c.http_body_length is None or c.http_body_length < 0:
        return None
    a, b = h.body_length, c.http_body_length
    if h.body_truncated and a <= b:
        return True  # a capped body is a prefix: its length says nothing more
    if max(a, b) == 0:
        return True
    return min(a, b) / max(a, b) > BODY_PROPORTION


def diff(h: HTTPObservation, c: ControlObservation) -> list[str]:
    """Features in which the probe's final response differs from the control's ([] = same page)."""
    if h.body_sha256 and c.http_body_sha256 and h.body_sha256 == c.http_body_sha256:
        return []
    status = h.status == c.http_status
    body = body_length_match(h, c)
    title = title_match(h.title, c.http_title)
    headers = headers_match(h.headers, c.http_headers)
    # OONI: same status and (body length or headers or title) -> accessible.
    if status and (body or headers or title):
        return []
    out = []
    if not status:
        out.append("status")
    if body is False:
        out.append("body-length")
    if title is False:
        out.append("title")
    if headers is False:
        out.append("headers")
    return out or ["body"]


def authenticated(hop: Hop, h: HTTPObservation) -> bool:
    """The response came over https on a connection whose certificate validated for the host."""
    if hop.scheme != "https":
        return False
    ip = canon_ip(h.ip)
    return any(
        t.failure is None and t.cert_valid is True and canon_ip(t.ip) == ip and t.port == h.port
        for t in hop.tls
    )


def _control_comparable(ctl: HopControl) -> bool:
    th = ctl.th
    return ctl.http_ok and th is not None and th.http_status is not None and th.http_status < 500


def response_ok(ctx: Context, hop: Hop, ctl: HopControl) -> bool:
    """The hop's response is the page the control saw (or is authenticated)."""
    h = hop.http
    if h is None or h.failure is not None or h.status is None:
        return False
    if authenticated(hop, h):
        return True
    return _control_comparable(ctl) and ctl.th is not None and not diff(h, ctl.th)


def chain_authenticated(ctx: Context) -> bool:
    """Local proof for https: the final hop validated, and every plain-http hop before it stayed
    on the same site (so a censor could not have redirected us to its own valid site)."""
    hops = ctx.m.hops
    if not hops:
        return False
    final = hops[-1]
    if final.http is None or not authenticated(final, final.http):
        return False
    first = hops[0].host
    for hop in hops[:-1]:
        if hop.http is not None and authenticated(hop, hop.http):
            continue
        if not related_hosts(first, final.host):
            return False
    return True


def final_control(ctx: Context) -> HopControl | None:
    """The control to compare the final response with: the helper follows redirects, so any
    hop's control describes the final page; prefer the last hop that has one."""
    for ctl in reversed(ctx.controls):
        if ctl.th is not None:
            return ctl
    return None


def _failure(hop: Hop, h: HTTPObservation, ctl: HopControl | None) -> list[Finding]:
    kind = failure_kind(h.failure)
    i = hop.index
    detail = {"reset": "reset", "eof": "eof", "timeout": "timeout"}.get(kind or "", kind or "")
    reason = f"http/{detail}" if kind in ("reset", "eof", "timeout") else f"http/failure:{h.failure}"
    if ctl is not None and ctl.http_failure_kind is not None:
        same = ctl.http_failure_kind == kind
        if (
            ctl.th is not None
            and ctl.th.http_failure in _UNCLASSIFIED
            and kind not in _SIGNATURES
        ):
            # OONI's helper reports what it cannot classify as unknown_error. A failure of ours
            # that is no censor's signature (a redirect loop, a broken Location) with the
            # control failing too: the site is broken for everyone.
            same = True
        out = [Finding("http", i, f"control/http-failed:{ctl.th.http_failure if ctl.th else ''}")]
        return [Finding("http", i, reason, "down" if same else None), *out]
    if ctl is not None and ctl.http_ok:
        verdict = {"reset": "reset", "eof": "reset", "timeout": "blocked"}.get(kind or "")
        if kind == "invalid-redirect" and h.status in _REDIRECTS:
            # The control follows the site's redirects and got a page: the site does not send
            # this broken Location. Over an authenticated connection the site itself sent it to
            # us (a per-region bug): that proves nothing either way.
            if authenticated(hop, h):
                return [Finding("http", i, reason), Finding("http", i, "http/authenticated-redirect")]
            unseen = Finding("http", i, "http/redirect-unseen-by-control")
            return [Finding("http", i, reason, "blocked"), unseen]
        return [Finding("http", i, reason, verdict)]
    return [Finding("http", i, reason)]


def _different_ends(a: ControlObservation, b: ControlObservation) -> bool:
    """Two control fetches ended on different pages: another status, other title words, or
    body lengths far apart. Stricter than ``diff`` (which accepts any same-status page of a
    similar length): both sides are the control's own fetches, so any of these is a sign."""
    if a.http_body_sha256 and a.http_body_sha256 == b.http_body_sha256:
        return False
    if a.http_status != b.http_status:
        return True
    if title_match(a.http_title, b.http_title) is False or title_match(b.http_title, a.http_title) is False:
        return True
    la, lb = a.http_body_length, b.http_body_length
    if la is not None and lb is not None and la >= 0 and lb >= 0 and max(la, lb) > 0:
        return min(la, lb) / max(la, lb) <= BODY_PROPORTION
    return False


def _redirect_unseen(ctx: Context, hop: Hop, h: HTTPObservation, ctl: HopControl) -> list[Finding]:
    """A redirect the control did not get: the first hop where probe and control diverge.

    The control of this hop followed the site's redirects and ended on a page; the control of
    the next hop (the URL we were sent to) ended on the page we got. When those two control
    pages differ, this hop's redirect is not what the site sends: a forged redirect (an ISP box answering
    with a 302 to its warning page). A redirect over an authenticated connection is the site's.
    """
    hops = ctx.m.hops
    k = hop.index
    if h.status not in _REDIRECTS or authenticated(hop, h) or k + 1 >= len(hops):
        return []
    final = hops[-1].http
    if final is None or final.failure is not None or final.status is None:
        return []
    nctl = ctx.controls[k + 1]
    mine, nxt = ctl.th, nctl.th
    if mine is None or nxt is None or not (_control_comparable(ctl) and _control_comparable(nctl)):
        return []
    if not diff(final, nxt) and _different_ends(mine, nxt):
        return [
            Finding("http", k, f"http/redirect-unseen-by-control:{h.location or ''}", "blocked"),
            Finding("http", k, f"control/http-status:{mine.http_status}"),
        ]
    return []


def judge_http(ctx: Context, hop: Hop, ctl: HopControl) -> list[Finding]:
    """Findings for one hop's HTTP exchange. The final hop is also compared with the control."""
    h = hop.http
    i = hop.index
    is_final = ctx.final_hop is hop
    if h is None:
        # Worth saying only when a connection was there to use; otherwise earlier stages explain.
        connected = any(t.failure is None for t in hop.tcp)
        return [Finding("http", i, "http/not-attempted")] if is_final and connected else []
    if is_loopback(h.ip):
        # Whatever answered on a loopback address is this machine, not a censor: its failures
        # are local and its content is never interference. A certificate valid for the host
        # still authenticates it (a local copy of the site, a test server).
        ip = canon_ip(h.ip)
        found = [
            Finding(f.stage, f.hop, f.reason) if f.verdict in INTERFERENCE else f
            for f in _judge_http(ctx, hop, ctl, h)
        ]
        # The control resolves the name to this loopback address too: nobody reaches the site.
        everyone = ip in ctl.addrs and not any(f.verdict == "ok" for f in found)
        reason = f"http/local:loopback:{ip}:{h.failure or h.status}"
        return [Finding("http", i, reason, "down" if everyone else None), *found]
    return _judge_http(ctx, hop, ctl, h)


def _judge_http(ctx: Context, hop: Hop, ctl: HopControl, h: HTTPObservation) -> list[Finding]:
    i = hop.index
    is_final = ctx.final_hop is hop
    fctl = final_control(ctx) if is_final else ctl
    if h.failure is not None:
        failed = _failure(hop, h, fctl if fctl is not None else ctl)
        # A response that still failed (a redirect loop, a bad Location) can name a block page.
        if h.status is not None:
            fps, bps = ctx.fingerprints.match_response(h.body, h.headers)
            if bps and not fps:
                return [Finding("http", i, f"http/blockpage:{bps[0].name}", "blocked"), *failed]
        return failed

    out: list[Finding] = []
    auth = authenticated(hop, h)
    th = fctl.th if fctl is not None else None
    comparable = bool(is_final and fctl is not None and th is not None and _control_comparable(fctl))
    features = diff(h, th) if comparable and th is not None else []
    if comparable and not features:
        # The control's page (or close enough): patterns in it are the site's own content, and
        # skipping the scan keeps the common case cheap (~1,300 body patterns).
        return [Finding("http", i, "http/match", "ok")]
    fps, bps = ctx.fingerprints.match_response(h.body, h.headers)
    for fp in fps:
        out.append(Finding("http", i, f"http/false-positive:{fp.name}"))
    # False positives are checked first: a CAPTCHA or geo-restriction page is never "blocked".
    fp_verdict = "ok" if auth else "inconclusive"
    if bps:
        names = [f"http/blockpage:{fp.name}" for fp in bps]
        if fps:
            out.extend(Finding("http", i, r) for r in names)
            out.append(Finding("http", i, "http/false-positive-wins", fp_verdict))
            return out
        out.append(Finding("http", i, names[0], "blocked"))
        out.extend(Finding("http", i, r) for r in names[1:])
        return out
    if not is_final:
        return out + _redirect_unseen(ctx, hop, h, ctl)

    if comparable:
        out.append(Finding("http", i, f"http/diff:{','.join(features)}"))
        if fps:
            out.append(Finding("http", i, "http/false-positive-wins", fp_verdict))
        elif auth:
            out.append(Finding("http", i, "http/authenticated", "ok"))
        else:
            out[-1] = Finding("http", i, out[-1].reason, "blocked")
        return out

    # No usable control response: only local proofs.
    if fctl is not None and fctl.th is not None and fctl.th.http_failure:
        out.append(Finding("http", i, f"control/http-failed:{fctl.th.http_failure}"))
    elif fctl is not None and fctl.th is not None and fctl.th.http_status and fctl.th.http_status >= 500:
        out.append(Finding("http", i, f"control/http-status:{fctl.th.http_status}"))
    if fps:
        out.append(Finding("http", i, "http/false-positive-wins", fp_verdict))
    elif chain_authenticated(ctx) and h.status is not None and 200 <= h.status < 400:
        out.append(Finding("http", i, "http/authenticated", "ok"))
    else:
        out.append(Finding("http", i, "http/unverified", "inconclusive"))
    return out
