"""The QUIC and ECH judges: each rule of docs/protocols.md, on hand-made observations."""

from __future__ import annotations

import dataclasses

import pytest

from probe.core.failures import Failure
from probe.core.model import (
    ControlECH,
    ControlObservation,
    ControlTLS,
    Hop,
    Measurement,
    QUICObservation,
    Target,
    TCPObservation,
    TLSHelloObservation,
    TLSObservation,
)
from probe.judge.classify import classify
from probe.judge.ech import judge_ech
from probe.judge.quic import judge_quic

IP = "198.51.100.7"
TIMEOUT = Failure.GENERIC_TIMEOUT_ERROR
URL = "https://site.example/"


def _q(failure: str | None = None, sni: str = "site.example", attempt: int = 0) -> QUICObservation:
    return QUICObservation(IP, 443, sni, 0.0, 0.1, failure, "h3" if failure is None else None,
                           0 if failure else 1, attempt)  # fmt: skip


def _ctl(quic: bool | None = None, ech: tuple[bool, bool] | None = None) -> ControlObservation:
    return ControlObservation(
        "helper", URL, 0.0, 0.1,
        quic=() if quic is None else (ControlTLS(IP, 443, "site.example", quic, None if quic else TIMEOUT),),
        ech=() if ech is None else (ControlECH(IP, 443, "site.example", ech[0], ech[1]),),
    )  # fmt: skip


def _m(*, quic: tuple[QUICObservation, ...] = (), decoy: tuple[QUICObservation, ...] = (),
       ech: tuple[TLSHelloObservation, ...] = (), control: ControlObservation | None = None,
       tcp_ok: bool = True, tls_ok: bool = True, scheme: str = "https",
       protocols: tuple[str, ...] = ("quic", "ech")) -> Measurement:
    hop = Hop(
        0, URL, "site.example", 443, scheme,
        tcp=(TCPObservation(IP, 443, 0.0, 0.1, None if tcp_ok else TIMEOUT),),
        tls=(TLSObservation(IP, 443, "site.example", 0.0, 0.1, None if tls_ok else Failure.CONNECTION_RESET),)
        if tcp_ok else (),
        control=control, quic=quic, decoy_quic=decoy, ech=ech,
    )  # fmt: skip
    target = Target(URL, URL, scheme, "site.example", 443)
    return Measurement(target, 0.0, 1.0, hops=(hop,), protocols=protocols)


@pytest.mark.parametrize(
    ("quic", "decoy", "control", "tcp_ok", "verdict", "reason"),
    [
        ((_q(),), (), _ctl(True), True, "ok", f"quic/ok:{IP}"),
        ((_q(TIMEOUT), _q(None, attempt=1)), (_q(None, "example.com"),), _ctl(True), True, "ok",
         f"quic/ok:{IP}"),
        ((_q(TIMEOUT), _q(TIMEOUT, attempt=1)), (_q(None, "example.com"),), _ctl(True), True,
         "blocked", "quic/sni-filtered:decoy=example.com"),
        ((_q(TIMEOUT),), (_q(TIMEOUT, "example.com"),), _ctl(True), True, "blocked", "quic/udp-blocked"),
        ((_q(TIMEOUT),), (_q(TIMEOUT, "example.com"),), _ctl(True), False, "blocked",
         "quic/address-blocked"),
        ((_q(Failure.CONNECTION_REFUSED),), (_q(Failure.CONNECTION_REFUSED, "example.com"),),
         _ctl(False), True, "down", "quic/unsupported:control-timeout"),
        ((_q(TIMEOUT),), (_q(None, "example.com"),), _ctl(None), True, "inconclusive", "control/no-quic"),
        ((_q(TIMEOUT),), (_q(None, "example.com"),), None, True, "inconclusive", "control/unavailable"),
        ((_q(TIMEOUT),), (), _ctl(True), True, "inconclusive", "quic/no-decoy:control-ok"),
        ((_q(TIMEOUT),), (_q(Failure.DEADLINE_EXCEEDED, "example.com"),), _ctl(True), True,
         "inconclusive", "quic/decoy-deadline:example.com"),
    ],
    ids=["ok", "retry-ok", "sni-filtered", "udp-blocked", "address-blocked", "unsupported",
         "no-quic-control", "no-control", "no-decoy", "decoy-cut-by-deadline"],
)
def test_quic_rules(quic: tuple[QUICObservation, ...], decoy: tuple[QUICObservation, ...],
                    control: ControlObservation | None, tcp_ok: bool, verdict: str, reason: str) -> None:
    pv = judge_quic(_m(quic=quic, decoy=decoy, control=control, tcp_ok=tcp_ok))
    assert (pv.suite, pv.verdict) == ("quic", verdict)
    assert reason in pv.reasons
    assert pv.stage == (None if verdict == "ok" else "quic")


def test_quic_failure_of_the_probes_own_network_is_left_out() -> None:
    pv = judge_quic(_m(quic=(_q(Failure.NETWORK_UNREACHABLE),), control=_ctl(True)))
    assert (pv.verdict, pv.reasons) == ("inconclusive", ("quic/local-only",))


def test_quic_timeout_reason_names_the_address() -> None:
    pv = judge_quic(_m(quic=(_q(TIMEOUT),), decoy=(_q(None, "example.com"),), control=_ctl(True)))
    assert pv.reasons[:2] == (f"quic/timeout:{IP}", "quic/decoy-ok:example.com")


def _h(ech: bool, failure: str | None = None, answer: str | None = None, attempt: int = 0,
       connected: bool = True) -> TLSHelloObservation:
    if failure is None and answer is None:
        answer = "server_hello"
    return TLSHelloObservation(IP, 443, "site.example", ech, 0.0, 0.1, failure, connected, answer, attempt)


RESET = Failure.CONNECTION_RESET
ALERT = Failure.SSL_FAILED_HANDSHAKE


@pytest.mark.parametrize(
    ("hellos", "control", "verdict", "reason"),
    [
        ((_h(False), _h(True)), _ctl(ech=(True, True)), "ok", f"ech/ok:{IP}"),
        ((_h(False), _h(True, RESET), _h(False, attempt=1), _h(True, RESET, attempt=1)),
         _ctl(ech=(True, True)), "reset", "tls/ech-blocked:reset"),
        ((_h(False), _h(True, TIMEOUT), _h(False, attempt=1), _h(True, TIMEOUT, attempt=1)),
         _ctl(ech=(True, True)), "blocked", "tls/ech-blocked:timeout"),
        ((_h(False), _h(True, TIMEOUT), _h(False, TIMEOUT, attempt=1), _h(True, TIMEOUT, attempt=1)),
         _ctl(ech=(True, True)), "blocked", f"ech/residual:{IP}"),
        ((_h(False), _h(True, RESET), _h(False, attempt=1), _h(True, RESET, attempt=1)),
         _ctl(ech=(True, False)), "down", "ech/rejected-everywhere:control-failed"),
        ((_h(False), _h(True, ALERT, "alert:handshake_failure")), _ctl(ech=(True, False)), "down",
         f"ech/alert:handshake_failure:{IP}"),
        ((_h(False), _h(True, RESET), _h(False, attempt=1), _h(True, RESET, attempt=1)), _ctl(),
         "inconclusive", "control/no-ech"),
        ((_h(False, RESET, connected=True),), _ctl(ech=(True, True)), "inconclusive",
         f"ech/plain-reset:{IP}"),
        ((_h(False), _h(True, Failure.DEADLINE_EXCEEDED, connected=False)), _ctl(ech=(True, True)),
         "inconclusive", f"ech/deadline:{IP}"),
    ],
    ids=["ok", "reset", "dropped", "residual", "rejected-everywhere", "alert-everywhere",
         "no-control", "plain-fails", "cut-by-deadline"],
)
def test_ech_rules(hellos: tuple[TLSHelloObservation, ...], control: ControlObservation,
                   verdict: str, reason: str) -> None:
    pv = judge_ech(_m(ech=hellos, control=control))
    assert (pv.suite, pv.verdict) == ("ech", verdict)
    assert reason in pv.reasons


def test_ech_server_alert_with_a_clean_control_is_blocked_on_the_path() -> None:
    pv = judge_ech(_m(ech=(_h(False), _h(True, ALERT, "alert:handshake_failure")),
                      control=_ctl(ech=(True, True))))
    assert pv.verdict == "blocked" and "tls/ech-blocked:alert:handshake_failure" in pv.reasons


def test_protocol_verdicts_never_change_the_web_verdict() -> None:
    m = _m(quic=(_q(TIMEOUT),), decoy=(_q(None, "example.com"),), control=_ctl(True, (True, True)),
           ech=(_h(False), _h(True, RESET), _h(False, attempt=1), _h(True, RESET, attempt=1)))
    bare = Measurement(m.target, m.started, m.runtime, hops=tuple(
        Hop(h.index, h.url, h.host, h.port, h.scheme, tcp=h.tcp, tls=h.tls, control=h.control)
        for h in m.hops))
    with_tests, without = classify(m), classify(bare)
    assert (with_tests.verdict, with_tests.stage, with_tests.reasons) == (
        without.verdict, without.stage, without.reasons)
    assert {p.suite: p.verdict for p in with_tests.protocols} == {"quic": "blocked", "ech": "reset"}
    assert without.protocols == ()


def test_only_the_tests_asked_for_get_a_verdict() -> None:
    v = classify(_m(quic=(_q(),), control=_ctl(True), protocols=("quic",)))
    assert [p.suite for p in v.protocols] == ["quic"]
    ech_only = classify(_m(scheme="http", protocols=("ech",)))
    assert [(p.suite, p.verdict, p.reasons) for p in ech_only.protocols] == [
        ("ech", "inconclusive", ("ech/not-measured:no-https",))]


def test_data_stored_before_the_protocol_tests_still_decodes_and_gets_no_protocol_verdict() -> None:
    from probe.core.codec import from_data

    old = {"target": {"url": URL, "original_url": URL, "scheme": "https", "host": "site.example",
                      "port": 443}, "started": 0.0, "runtime": 1.0,
           "hops": [{"index": 0, "url": URL, "host": "site.example", "port": 443, "scheme": "https",
                     "control": {"source": "helper", "url": URL, "started": 0.0, "duration": 0.1}}]}
    m = from_data(Measurement, old)
    assert (m.protocols, m.hops[0].quic, m.hops[0].ech, m.hops[0].control.quic) == ((), (), (), ())
    assert classify(m).protocols == ()


def _h3(status: int | None, failure: str | None) -> QUICObservation:
    return QUICObservation(IP, 443, "site.example", 0.0, 0.1, None, "h3", 2, 0, status, failure)


@pytest.mark.parametrize(
    ("control_h3", "verdict", "reason"),
    [
        ((200, None), "blocked", "quic/h3-blocked"),
        ((None, TIMEOUT), "down", "quic/h3-failed-everywhere:control-timeout"),
        ((None, None), "inconclusive", "control/no-http3"),
    ],
    ids=["control-answered", "control-unanswered-too", "no-control-request"],
)
def test_an_http3_request_unanswered_after_a_handshake(control_h3: tuple[int | None, str | None],
                                                      verdict: str, reason: str) -> None:
    ctl = dataclasses.replace(_ctl(True), http3_status=control_h3[0], http3_failure=control_h3[1])
    pv = judge_quic(_m(quic=(_h3(None, TIMEOUT),), control=ctl))
    assert (pv.verdict, pv.reasons[:2]) == (verdict, (f"quic/handshake-ok:{IP}", f"quic/h3-timeout:{IP}"))
    assert reason in pv.reasons


def test_an_http3_answer_of_any_status_is_ok() -> None:
    pv = judge_quic(_m(quic=(_h3(404, None),), control=_ctl(True)))
    assert (pv.verdict, pv.reasons) == ("ok", (f"quic/ok:{IP}",))
