"""TCP rules of the classifier."""

from __future__ import annotations

import pytest
from classify_helpers import SITE, SITE2, URL, ctl, has, http, judge, measurement, plain, tcp

from probe.judge.classify import needs_retry


@pytest.mark.parametrize(
    ("failure", "verdict", "reason"),
    [
        ("generic_timeout_error", "blocked", "tcp/timeout:192.0.2.10"),
        ("connection_refused", "reset", "tcp/refused:192.0.2.10"),
        ("connection_reset", "reset", "tcp/reset:192.0.2.10"),
    ],
)
def test_connect_failure_while_the_control_connects(failure: str, verdict: str, reason: str) -> None:
    v = judge(measurement(plain(ctl=ctl(), tcp_=[tcp(SITE, 80, failure)], http_=None)))
    assert (v.verdict, v.stage, v.hop) == (verdict, "tcp", 0)
    assert reason in v.reasons


def test_refused_for_everyone_is_down() -> None:
    c = ctl(body=None, http_failure="connection_refused", tcp_=[(SITE, 80, "connection_refused")])
    v = judge(measurement(plain(ctl=c, tcp_=[tcp(SITE, 80, "connection_refused")], http_=None)))
    assert (v.verdict, v.stage) == ("down", "tcp")
    assert has(v, "control/tcp-refused:192.0.2.10")


def test_different_failures_at_probe_and_control_are_inconclusive() -> None:
    c = ctl(body=None, http_failure="generic_timeout_error", tcp_=[(SITE, 80, "generic_timeout_error")])
    v = judge(measurement(plain(ctl=c, tcp_=[tcp(SITE, 80, "connection_refused")], http_=None)))
    assert (v.verdict, v.stage) == ("inconclusive", "tcp")


def test_one_blocked_address_among_working_ones_is_evidence_not_a_verdict() -> None:
    m = measurement(
        plain(
            (SITE, SITE2),
            ctl((SITE, SITE2)),
            tcp_=[tcp(SITE, 80, "generic_timeout_error"), tcp(SITE2)],
            http_=http(URL, SITE2, body=b""),
        )
    )
    v = judge(m)
    assert v.stage != "tcp"
    assert has(v, "tcp/timeout:192.0.2.10")


def test_no_ipv6_route_on_the_probe_is_not_interference() -> None:
    m = measurement(
        plain(
            (SITE, "2001:db8::10"),
            ctl((SITE, "2001:db8::10")),
            tcp_=[tcp(SITE), tcp("2001:db8::10", 80, "network_unreachable")],
        )
    )
    v = judge(m)
    assert v.verdict == "ok" and has(v, "tcp/local:network_unreachable")
    assert not needs_retry(m)


def test_failure_without_control_is_inconclusive_and_not_retried() -> None:
    m = measurement(plain(ctl=None, tcp_=[tcp(SITE, 80, "generic_timeout_error")], http_=None))
    v = judge(m)
    assert (v.verdict, v.stage) == ("inconclusive", "tcp")
    assert not needs_retry(m)


def test_deciding_timeout_is_retried() -> None:
    m = measurement(plain(ctl=ctl(), tcp_=[tcp(SITE, 80, "generic_timeout_error")], http_=None))
    assert needs_retry(m)
    judge(m)  # the cached verdict of the same object gives the same answer
    assert needs_retry(m)


def test_retry_decision_travels_with_the_verdict() -> None:
    """classify is pure: the retry decision is on the verdict, not in module state."""
    import dataclasses

    from probe.judge.classify import classify

    timeout = measurement(plain(ctl=ctl(), tcp_=[tcp(SITE, 80, "generic_timeout_error")], http_=None))
    fine = measurement(plain(ctl=ctl()))
    assert classify(timeout).retryable and not classify(fine).retryable
    # An equal copy judged after another measurement gets the same answer.
    assert classify(dataclasses.replace(timeout)).retryable
