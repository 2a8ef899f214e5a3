"""HTTP rules of the classifier: failures, fingerprints, the diff and authenticated responses."""

from __future__ import annotations

from dataclasses import replace

import pytest
from classify_helpers import (
    HOST,
    PAGE,
    SITE,
    SURL,
    URL,
    ctl,
    dns,
    has,
    hop,
    http,
    judge,
    measurement,
    page,
    plain,
    sctl,
    secure,
    tcp,
    tls,
)

from probe.inputs.fingerprints import default_fingerprints
from probe.judge.classify.http import body_length_match, diff, headers_match, title_match

BLOCKPAGE = (
    "<html><body>"
    + next(f.pattern for f in default_fingerprints().all if f.name == "ooni.ru_1")
    + "</body></html>"
).encode()
CAPTCHA = page("Just a moment...", 5000)


@pytest.mark.parametrize(
    ("failure", "verdict", "reason"),
    [
        ("connection_reset", "reset", "http/reset"),
        ("eof_error", "reset", "http/eof"),
        ("generic_timeout_error", "blocked", "http/timeout"),
    ],
)
def test_exchange_failure_while_the_control_fetches(failure: str, verdict: str, reason: str) -> None:
    v = judge(measurement(plain(ctl=ctl(), http_=http(URL, SITE, failure=failure))))
    assert (v.verdict, v.stage, v.hop) == (verdict, "http", 0)
    assert reason in v.reasons


def test_same_failure_at_the_control_is_down() -> None:
    c = ctl(body=None, http_failure="http_too_many_redirects")
    v = judge(measurement(plain(ctl=c, http_=http(URL, SITE, failure="http_too_many_redirects"))))
    assert (v.verdict, v.stage) == ("down", "http")


def test_block_page_fingerprint_is_blocked_and_named() -> None:
    v = judge(measurement(plain(ctl=ctl(), http_=http(URL, SITE, body=BLOCKPAGE))))
    assert (v.verdict, v.stage) == ("blocked", "http")
    assert "http/blockpage:ooni.ru_1" in v.reasons


def test_block_page_in_a_redirect_location_header_blames_that_hop() -> None:
    first = plain(ctl=ctl(), http_=http(URL, SITE, status=302, location="http://www.warning.or.kr"))
    second = hop(
        "http://www.warning.or.kr/",
        index=1,
        dns_=[dns("www.warning.or.kr", ["203.0.113.5"])],
        tcp_=[tcp("203.0.113.5")],
        http_=http("http://www.warning.or.kr/", "203.0.113.5", body=page("Warning", 900)),
    )
    v = judge(measurement(first, second))
    assert (v.verdict, v.stage, v.hop) == ("blocked", "http", 0)
    assert "http/blockpage:ooni.kr_2" in v.reasons


def test_false_positive_is_checked_first_and_beats_a_block_page_pattern() -> None:
    both = BLOCKPAGE.replace(b"<body>", b"<title>Just a moment...</title><body>")
    v = judge(measurement(plain(ctl=ctl(), http_=http(URL, SITE, body=both))))
    assert v.verdict == "inconclusive"
    assert has(v, "http/false-positive:probe.fp_cloudflare_just_a_moment") and has(
        v, "http/blockpage:ooni.ru_1"
    )


def test_false_positive_over_a_valid_certificate_is_ok() -> None:
    v = judge(measurement(secure(ctl=sctl(), http_=http(SURL, SITE, status=403, body=CAPTCHA))))
    assert v.verdict == "ok" and has(v, "http/false-positive:probe.fp_cloudflare_just_a_moment")


def test_false_positive_over_plain_http_is_inconclusive() -> None:
    v = judge(measurement(plain(ctl=ctl(), http_=http(URL, SITE, status=403, body=CAPTCHA))))
    assert (v.verdict, v.stage) == ("inconclusive", "http")


def test_false_positive_pattern_on_the_controls_own_page_changes_nothing() -> None:
    body = page("Example", 3000, "<p>The document has moved <a href=x>here</a>.</p>")
    v = judge(measurement(plain(ctl=ctl(body=body), http_=http(URL, SITE, body=body))))
    assert v.verdict == "ok"


def test_different_status_is_a_diff() -> None:
    v = judge(measurement(plain(ctl=ctl(), http_=http(URL, SITE, status=403, body=page("Forbidden", 300)))))
    assert (v.verdict, v.stage) == ("blocked", "http")
    assert has(v, "http/diff:status")


def test_dynamic_body_with_same_status_and_title_is_ok() -> None:
    v = judge(
        measurement(plain(ctl=ctl(), http_=http(URL, SITE, body=page("Example News - Front page", 4000))))
    )
    assert v.verdict == "ok"


def test_authenticated_https_response_is_never_blocked_by_a_diff() -> None:
    v = judge(measurement(secure(ctl=sctl(), body=page("Anderer Titel", 900))))
    assert v.verdict == "ok"
    assert has(v, "http/diff") and has(v, "http/authenticated")


def test_control_5xx_gives_no_basis_for_a_diff() -> None:
    v = judge(measurement(plain(ctl=ctl(body=page("Bad gateway", 200), status=502))))
    assert v.verdict == "inconclusive" and has(v, "control/http-status:502")


def test_https_validated_end_to_end_is_ok_without_control() -> None:
    v = judge(measurement(secure()))
    assert v.verdict == "ok" and has(v, "control/unavailable")


def test_plain_http_redirect_to_an_unrelated_valid_site_is_not_a_local_proof() -> None:
    first = plain(ctl=None, http_=http(URL, SITE, status=302, location="https://isp-notice.example.net/"))
    notice = "https://isp-notice.example.net/"
    second = hop(
        notice,
        index=1,
        dns_=[dns("isp-notice.example.net", ["203.0.113.9"])],
        tcp_=[tcp("203.0.113.9", 443)],
        tls_=[tls("203.0.113.9", "isp-notice.example.net")],
        http_=http(notice, "203.0.113.9", body=page("Notice", 500)),
    )
    assert judge(measurement(first, second)).verdict == "inconclusive"


def test_plain_http_redirect_to_https_on_the_same_site_is_a_local_proof() -> None:
    first = plain(ctl=None, http_=http(URL, SITE, status=301, location=f"https://www.{HOST}/"))
    url2 = f"https://www.{HOST}/"
    second = hop(
        url2,
        index=1,
        dns_=[dns(f"www.{HOST}", [SITE])],
        tcp_=[tcp(SITE, 443)],
        tls_=[tls(SITE, f"www.{HOST}")],
        http_=http(url2, SITE, body=PAGE),
    )
    assert judge(measurement(first, second)).verdict == "ok"


def test_title_match_needs_every_long_control_word() -> None:
    assert title_match("Example News - Front page", "Example News - Front page") is True
    assert title_match("Example News", "Example News - Front page") is False
    assert title_match("anything", "A B") is None


def test_headers_match_only_on_shared_uncommon_headers() -> None:
    common = [("date", "x"), ("server", "nginx")]
    assert headers_match(common, common) is None
    assert headers_match([*common, ("x-site", "1")], [*common, ("x-site", "2")]) is True
    assert headers_match(common, [*common, ("x-site", "2")]) is False


def test_body_length_proportion_and_truncated_bodies() -> None:
    c = ctl(body=b"x" * 1000)
    assert body_length_match(http(URL, SITE, body=b"y" * 800), c) is True
    assert body_length_match(http(URL, SITE, body=b"y" * 500), c) is False
    truncated = replace(http(URL, SITE, body=b"y" * 500), body_truncated=True)
    assert body_length_match(truncated, c) is True


def test_identical_bodies_short_cut_the_diff() -> None:
    h = http(URL, SITE, status=200, body=PAGE)
    assert diff(h, ctl()) == []


def test_block_page_location_on_a_response_that_failed_to_redirect_is_still_blocked() -> None:
    h = replace(
        http(URL, SITE, status=302, location="http://www.warning.or.kr"),
        failure="http_invalid_redirect_location_host",
    )
    v = judge(measurement(plain(ctl=ctl(), http_=h)))
    assert (v.verdict, v.stage) == ("blocked", "http") and "http/blockpage:ooni.kr_2" in v.reasons
