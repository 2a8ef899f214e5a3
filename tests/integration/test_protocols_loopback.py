"""The opt-in protocol tests (--quic, --ech) against loopback servers: what is recorded, what
the helper answers, and how the two are judged together.

An aioquic server listens on the web server's address and HTTPS port (UDP); every other
address has nothing on UDP (the kernel answers ICMP port unreachable).
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable, Iterator

import pytest
from observe_helpers import config, run, target
from servers import LoopbackNet, ServerLoop

from probe.core.failures import Failure
from probe.core.model import ControlObservation, Measurement
from probe.judge.classify import classify
from probe.measure.control.protocol import build_response, parse_request, parse_response
from probe.measure.engine import MeasureConfig, measure
from probe.serve.config import engine_measure


@pytest.fixture(scope="module")
def quic_server(loopback_net: LoopbackNet, tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    from probe.lab.certs import CertAuthority
    from probe.lab.quicserver import serve_quic

    directory = tmp_path_factory.mktemp("quic")
    cert, key = CertAuthority("quic test CA").leaf_files(directory, "ok", "ok.test")
    loop = ServerLoop()
    server = loop.run(serve_quic(loopback_net.web_ip, loopback_net.https_port, cert, key))
    yield
    loop.loop.call_soon_threadsafe(server.close)
    loop.close()


def _quic_cfg(net: LoopbackNet, **kw: object) -> MeasureConfig:
    return config(net, quic=True, quic_timeout=1.0, quic_decoy="decoy.test", **kw)


def test_quic_handshake_with_the_sites_name_is_recorded(loopback_net: LoopbackNet, quic_server: None) -> None:
    m = run(loopback_net.url("ok.test", tls=True), _quic_cfg(loopback_net))
    assert m.protocols == ("quic",)
    (q,) = m.hops[0].quic
    assert (q.ip, q.port, q.sni, q.failure, q.alpn) == (loopback_net.web_ip, loopback_net.https_port,
                                                        "ok.test", None, "h3")
    assert q.datagrams >= 1
    assert (q.h3_status, q.h3_failure) == (200, None)  # the HTTP/3 GET of the page, over it
    assert m.hops[0].decoy_quic == ()  # no decoy after a success
    assert m.hops[0].http is not None and m.hops[0].http.status == 200


def test_no_quic_server_is_refused_and_the_decoy_is_tried(
    loopback_net: LoopbackNet, quic_server: None
) -> None:
    m = run(loopback_net.url("blackhole.test", tls=True), _quic_cfg(loopback_net, tls_timeout=0.5))
    hop = m.hops[0]
    assert [q.failure for q in hop.quic] == [Failure.CONNECTION_REFUSED]
    assert [(d.sni, d.failure) for d in hop.decoy_quic] == [("decoy.test", Failure.CONNECTION_REFUSED)]
    # No control: the QUIC verdict cannot blame anyone.
    (pv,) = classify(m).protocols
    assert pv.suite == "quic" and pv.verdict == "inconclusive"
    assert "control/unavailable" in pv.reasons


def test_http_urls_get_no_quic_test_but_a_verdict_saying_so(loopback_net: LoopbackNet) -> None:
    m = run(loopback_net.url("ok.test"), _quic_cfg(loopback_net))
    assert m.hops[0].quic == ()
    (pv,) = classify(m).protocols
    assert (pv.verdict, pv.reasons) == ("inconclusive", ("quic/not-measured:no-https",))


def test_web_verdict_is_the_same_with_and_without_the_protocol_tests(
    loopback_net: LoopbackNet, quic_server: None
) -> None:
    url = loopback_net.url("ok.test", tls=True)
    plain = classify(run(url, config(loopback_net)))
    with_tests = classify(run(url, _quic_cfg(loopback_net, ech=True)))
    assert (with_tests.verdict, with_tests.stage, with_tests.reasons) == (plain.verdict, plain.stage,
                                                                          plain.reasons)
    assert plain.protocols == ()
    assert [p.suite for p in with_tests.protocols] == ["quic", "ech"]


def test_ech_pair_is_answered_by_a_server_that_ignores_the_extension(loopback_net: LoopbackNet) -> None:
    m = run(loopback_net.url("ok.test", tls=True), config(loopback_net, ech=True))
    hellos = m.hops[0].ech
    assert [(h.ech, h.failure, h.answer) for h in hellos] == [(False, None, "server_hello"),
                                                              (True, None, "server_hello")]


def test_ech_pair_against_a_resetting_server_stops_after_the_plain_hello(loopback_net: LoopbackNet) -> None:
    m = run(loopback_net.url("reset.test", tls=True), config(loopback_net, ech=True))
    hellos = m.hops[0].ech
    assert [(h.ech, h.failure) for h in hellos] == [(False, Failure.CONNECTION_RESET)]
    (pv,) = classify(m).protocols
    assert pv.verdict == "inconclusive" and f"ech/plain-reset:{loopback_net.reset_ip}" in pv.reasons


def _helper_answer(net: LoopbackNet, url: str, *, quic: bool, ech: bool,
                   policy: Callable[[str], bool] | None = None, http: bool = True) -> ControlObservation:
    """What probe's helper (its engine, with ``policy``: none by default) answers for ``url``."""
    from probe.core.codec import encode_json
    from probe.measure.control.protocol import build_request

    body = encode_json(build_request(url, [], 443, quic_enabled=quic, ech_enabled=ech, http=http))
    req = parse_request(body)
    cfg = dataclasses.replace(config(net), quic_timeout=1.0)
    m: Measurement = asyncio.run(engine_measure(cfg, policy=policy)(req))
    resp = build_response(req, m, version="test")
    return parse_response(encode_json(resp), source="helper", url=url)


def test_helper_answers_quic_handshake_and_x_ech_when_asked(
    loopback_net: LoopbackNet, quic_server: None
) -> None:
    url = loopback_net.url("ok.test", tls=True)
    ctl = _helper_answer(loopback_net, url, quic=True, ech=True)
    assert [(c.ip, c.ok, c.server_name) for c in ctl.quic] == [(loopback_net.web_ip, True, "ok.test")]
    assert (ctl.http3_status, ctl.http3_failure) == (200, None)
    assert [(c.ip, c.plain_ok, c.ech_ok) for c in ctl.ech] == [(loopback_net.web_ip, True, True)]
    quiet = _helper_answer(loopback_net, url, quic=False, ech=False)
    assert quiet.quic == () and quiet.ech == ()


def test_helper_stops_after_the_handshakes_when_asked_to_skip_http(loopback_net: LoopbackNet) -> None:
    # The control of a DoT resolver, a Tor bridge or a messaging server: an HTTP request there
    # would wait out the helper's HTTP timeout (15 s) for an answer nobody needs.
    url = loopback_net.url("ok.test", tls=True)
    full = _helper_answer(loopback_net, url, quic=False, ech=False)
    assert full.http_status == 200
    bare = _helper_answer(loopback_net, url, quic=False, ech=False, http=False)
    assert [(t.ip, t.ok) for t in bare.tls] == [(loopback_net.web_ip, True)]
    assert [(t.ip, t.ok) for t in bare.tcp] == [(loopback_net.web_ip, True)]
    assert bare.http_status is None
    assert bare.http_failure == "unknown_failure: not requested (x_skip_http)"


def test_helper_never_sends_quic_or_hellos_where_its_policy_refuses(
    loopback_net: LoopbackNet, quic_server: None
) -> None:
    url = loopback_net.url("ok.test", tls=True)
    ctl = _helper_answer(loopback_net, url, quic=True, ech=True, policy=lambda ip: False)
    assert ctl.quic == () and ctl.ech == ()


def test_probe_and_helper_together_judge_quic_ok(loopback_net: LoopbackNet, quic_server: None) -> None:
    url = loopback_net.url("ok.test", tls=True)
    ctl = _helper_answer(loopback_net, url, quic=True, ech=True)

    async def control(u: str, addrs: object, port: int) -> ControlObservation:
        return ctl

    m = asyncio.run(measure(target(url), _quic_cfg(loopback_net, ech=True), control))
    v = classify(m)
    assert v.verdict == "ok"
    assert {p.suite: p.verdict for p in v.protocols} == {"quic": "ok", "ech": "ok"}
