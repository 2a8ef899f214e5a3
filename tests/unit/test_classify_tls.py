"""TLS rules of the classifier."""

from __future__ import annotations

import pytest
from classify_helpers import HOST, SITE, URL, ctl, has, judge, measurement, plain, sctl, secure, tls

from probe.judge.classify import needs_retry


@pytest.mark.parametrize(
    ("failure", "verdict", "reason"),
    [
        ("connection_reset", "reset", "tls/reset:192.0.2.10"),
        ("eof_error", "reset", "tls/eof:192.0.2.10"),
        ("generic_timeout_error", "blocked", "tls/timeout:192.0.2.10"),
        ("ssl_failed_handshake", "blocked", "tls/handshake-failed:192.0.2.10"),
        ("ssl_unknown_authority", "hijacked", "tls/cert-invalid:ssl_unknown_authority"),
        ("ssl_invalid_hostname", "hijacked", "tls/cert-invalid:ssl_invalid_hostname"),
    ],
)
def test_handshake_failure_while_the_control_completes_it(failure: str, verdict: str, reason: str) -> None:
    v = judge(measurement(secure(ctl=sctl(), tls_=[tls(SITE, HOST, failure)], http_=None)))
    assert (v.verdict, v.stage, v.hop) == (verdict, "tls", 0)
    assert reason in v.reasons


def test_completed_handshake_with_an_untrusted_chain_is_interception() -> None:
    v = judge(measurement(secure(ctl=sctl(), tls_=[tls(SITE, HOST, None, valid=False)], http_=None)))
    assert (v.verdict, v.stage) == ("hijacked", "tls")
    assert has(v, "tls/cert-invalid:untrusted")


def test_control_success_is_inferred_from_its_https_fetch_when_it_lists_no_handshake() -> None:
    c = sctl()
    from dataclasses import replace

    c = replace(c, tls=())
    v = judge(measurement(secure(ctl=c, tls_=[tls(SITE, HOST, "connection_reset")], http_=None)))
    assert (v.verdict, v.stage) == ("reset", "tls")


def test_bad_certificate_for_everyone_is_down() -> None:
    c = sctl(body=None, http_failure="ssl_invalid_certificate", tls_fail="ssl_invalid_certificate")
    v = judge(measurement(secure(ctl=c, tls_=[tls(SITE, HOST, "ssl_invalid_certificate")], http_=None)))
    assert (v.verdict, v.stage) == ("down", "tls")


def test_cert_failure_is_not_retried_but_a_reset_is() -> None:
    mitm = measurement(secure(ctl=sctl(), tls_=[tls(SITE, HOST, "ssl_unknown_authority")], http_=None))
    rst = measurement(secure(ctl=sctl(), tls_=[tls(SITE, HOST, "connection_reset")], http_=None))
    assert not needs_retry(mitm)
    assert needs_retry(rst)


def test_handshakes_that_only_validate_addresses_of_an_http_url_decide_nothing() -> None:
    h = plain(ctl=ctl())
    from dataclasses import replace

    h = replace(h, tls=(tls(SITE, HOST, "connection_reset"),))
    v = judge(measurement(h))
    assert v.verdict == "ok" and has(v, "tls/reset:192.0.2.10")
    assert URL.startswith("http:")
