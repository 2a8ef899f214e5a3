"""DNS step: UDP queries with the late-reply window, failures, resolv.conf, DoH."""

from __future__ import annotations

import dns.message
import dns.rdatatype
import pytest
from observe_helpers import config, run
from servers import LIE_ADDRESS, DNSServer, LoopbackNet, injecting_handler, zone_handler

from probe.core.codec import from_data, to_data
from probe.measure.engine import MeasureConfig


def _dns(m, qtype="A", hop=0):  # type: ignore[no-untyped-def]
    return next(d for d in m.hops[hop].dns if d.qtype == qtype and d.transport == "udp")


def test_answer_is_recorded_with_raw_reply_and_decides_addresses(loopback_net: LoopbackNet) -> None:
    m = run(loopback_net.url("ok.test"), config(loopback_net))
    a = _dns(m)
    assert a.failure is None
    assert a.addresses == (loopback_net.web_ip,)
    assert a.resolver == f"udp://{loopback_net.resolver}"
    assert a.hostname == "ok.test"
    (reply,) = a.replies
    assert reply.rcode == "NOERROR"
    assert reply.answers == (loopback_net.web_ip,)
    assert reply.ttl == 60
    assert "QR" in reply.flags
    assert reply.source == loopback_net.resolver
    assert dns.message.from_wire(reply.raw).answer[0][0].address == loopback_net.web_ip
    assert m.hops[0].tcp[0].ip == loopback_net.web_ip


def test_empty_aaaa_is_recorded_per_query_and_does_not_stop_the_fetch(loopback_net: LoopbackNet) -> None:
    m = run(loopback_net.url("ok.test"), config(loopback_net))
    assert _dns(m, "AAAA").failure == "dns_no_answer"
    assert m.hops[0].http is not None and m.hops[0].http.status == 200


@pytest.mark.parametrize(
    ("name", "failure"),
    [
        ("nothing-here.test", "dns_nxdomain_error"),
        ("servfail.test", "dns_servfail_error"),
        ("refused-dns.test", "dns_refused_error"),
        ("noaddr.test", "dns_no_answer"),
    ],
)
def test_resolver_errors_become_failure_strings(loopback_net: LoopbackNet, name: str, failure: str) -> None:
    m = run(loopback_net.url(name), config(loopback_net))
    assert _dns(m).failure == failure
    assert m.hops[0].tcp == ()
    assert m.hops[0].http is None


def test_silent_resolver_times_out(loopback_net: LoopbackNet) -> None:
    cfg = config(loopback_net, resolvers=(loopback_net.silent_resolver,), dns_timeout=0.3)
    m = run(loopback_net.url("ok.test"), cfg)
    a = _dns(m)
    assert a.failure == "generic_timeout_error"
    assert a.replies == ()


def test_closed_resolver_port_is_connection_refused(loopback_net: LoopbackNet) -> None:
    cfg = config(loopback_net, resolvers=(f"{loopback_net.closed_ip}:53",), dns_timeout=0.5)
    m = run(loopback_net.url("ok.test"), cfg)
    assert _dns(m).failure == "connection_refused"


def test_lying_resolver_addresses_are_used_as_a_stub_would(loopback_net: LoopbackNet) -> None:
    cfg = config(loopback_net, resolvers=(loopback_net.lying_resolver,), tcp_timeout=0.3)
    m = run(loopback_net.url("ok.test"), cfg)
    assert _dns(m).addresses == (LIE_ADDRESS,)
    # The guard forbids reaching 10.10.34.34: the connect fails locally, and that is recorded.
    assert [t.ip for t in m.hops[0].tcp] == [LIE_ADDRESS]
    assert m.hops[0].tcp[0].failure is not None


def test_late_window_keeps_both_replies_and_first_one_decides(loopback_net: LoopbackNet) -> None:
    cfg = config(loopback_net, resolvers=(loopback_net.injecting_resolver,), late_window=0.5,
                 tcp_timeout=0.3)
    m = run(loopback_net.url("ok.test"), cfg)
    a = _dns(m)
    assert a.addresses == (LIE_ADDRESS,)
    assert [r.answers for r in a.replies] == [(LIE_ADDRESS,), (loopback_net.web_ip,)]
    assert a.replies[0].raw != a.replies[1].raw
    assert a.replies[0].t <= a.replies[1].t


def test_late_window_is_not_on_the_critical_path(loopback_net: LoopbackNet) -> None:
    # The genuine reply comes 1 s after the lie; HTTP must be done before it arrives.
    zone = dict(loopback_net.zone)
    slow = DNSServer(loopback_net.loop, "127.0.0.57",
                     injecting_handler(zone, lie=loopback_net.web_ip, delay=1.0))
    try:
        cfg = config(loopback_net, resolvers=(slow.address,), late_window=1.5)
        m = run(loopback_net.url("ok.test"), cfg)
    finally:
        slow.close()
    a = _dns(m)
    assert len(a.replies) == 2
    http = m.hops[0].http
    assert http is not None and http.status == 200
    assert http.started + http.duration < a.started + a.replies[1].t


def test_malformed_and_mismatched_replies_are_kept_but_never_decide(loopback_net: LoopbackNet) -> None:
    genuine = zone_handler(loopback_net.zone)

    def handler(query: dns.message.Message):  # type: ignore[no-untyped-def]
        wrong = dns.message.make_query("other.test", "A")
        wrong_reply = dns.message.make_response(wrong)
        return [(0.0, b"\x00garbage"), (0.01, wrong_reply), (0.03, genuine(query)[0][1])]

    server = DNSServer(loopback_net.loop, "127.0.0.58", handler)
    try:
        m = run(loopback_net.url("ok.test"), config(loopback_net, resolvers=(server.address,),
                                                     late_window=0.2))
    finally:
        server.close()
    a = _dns(m)
    assert a.failure is None
    assert a.addresses == (loopback_net.web_ip,)
    assert [r.rcode for r in a.replies] == ["MALFORMED", "MALFORMED", "NOERROR"]
    assert a.replies[0].raw == b"\x00garbage"


def test_only_mismatched_replies_is_wrong_query_error(loopback_net: LoopbackNet) -> None:
    def handler(query: dns.message.Message):  # type: ignore[no-untyped-def]
        return [(0.0, dns.message.make_response(dns.message.make_query("other.test", "A")))]

    server = DNSServer(loopback_net.loop, "127.0.0.59", handler)
    try:
        m = run(loopback_net.url("ok.test"),
                config(loopback_net, resolvers=(server.address,), dns_timeout=0.3))
    finally:
        server.close()
    assert _dns(m).failure == "dns_reply_with_wrong_query_error"


def test_addresses_are_the_union_of_all_resolvers(loopback_net: LoopbackNet) -> None:
    cfg = config(loopback_net, resolvers=(loopback_net.resolver, loopback_net.lying_resolver),
                 tcp_timeout=0.3)
    m = run(loopback_net.url("ok.test"), cfg)
    assert [d.resolver for d in m.hops[0].dns if d.qtype == "A"] == [
        f"udp://{loopback_net.resolver}", f"udp://{loopback_net.lying_resolver}"]
    assert sorted(t.ip for t in m.hops[0].tcp) == sorted([loopback_net.web_ip, LIE_ADDRESS])
    http = m.hops[0].http
    assert http is not None and http.ip == loopback_net.web_ip and http.status == 200


def test_system_resolver_is_read_from_resolv_conf(loopback_net: LoopbackNet, tmp_path) -> None:  # type: ignore[no-untyped-def]
    # resolv.conf has no port syntax: run a zone server on port 53 of a loopback address if we can.
    try:
        server = DNSServer(loopback_net.loop, "127.0.0.60", zone_handler(loopback_net.zone), port=53)
    except Exception as exc:  # not root, or port taken
        pytest.skip(f"cannot bind 127.0.0.60:53: {exc}")
    conf = tmp_path / "resolv.conf"
    conf.write_text("# test\nnameserver 127.0.0.60\noptions edns0\n")
    try:
        m = run(loopback_net.url("ok.test"), config(loopback_net, resolvers=(), resolv_conf=str(conf)))
    finally:
        server.close()
    a = _dns(m)
    assert a.resolver == "udp://127.0.0.60:53"
    assert a.addresses == (loopback_net.web_ip,)


def test_missing_nameserver_is_recorded_not_raised(loopback_net: LoopbackNet, tmp_path) -> None:  # type: ignore[no-untyped-def]
    conf = tmp_path / "resolv.conf"
    conf.write_text("search example\n")
    m = run(loopback_net.url("ok.test"), config(loopback_net, resolvers=(), resolv_conf=str(conf)))
    (d,) = m.hops[0].dns
    assert d.resolver == "system"
    assert d.failure is not None and d.failure.startswith("unknown_failure: no nameserver")


def test_ip_literal_skips_dns(loopback_net: LoopbackNet) -> None:
    m = run(f"http://{loopback_net.web_ip}:{loopback_net.http_port}/", config(loopback_net))
    assert m.hops[0].dns == ()
    assert m.hops[0].tcp[0].ip == loopback_net.web_ip


def test_doh_queries_are_the_dns_control(loopback_net: LoopbackNet) -> None:
    cfg = config(loopback_net, doh=(loopback_net.doh_url,))
    m = run(loopback_net.url("ok.test"), cfg)
    ctl = {d.qtype: d for d in m.hops[0].dns_control}
    assert ctl["A"].transport == "doh"
    assert ctl["A"].resolver == f"doh:{loopback_net.doh_url}"
    assert ctl["A"].failure is None
    assert ctl["A"].addresses == (loopback_net.web_ip,)
    assert ctl["AAAA"].failure == "dns_no_answer"
    assert all(d.transport == "udp" for d in m.hops[0].dns)


def test_bad_resolver_is_a_config_error() -> None:
    with pytest.raises(ValueError, match="not-an-ip"):
        MeasureConfig(resolvers=("not-an-ip",))


def test_measurement_round_trips_through_json(loopback_net: LoopbackNet) -> None:
    from probe.core.model import Measurement

    m = run(loopback_net.url("redirect.test", tls=True),
            config(loopback_net, resolvers=(loopback_net.injecting_resolver, loopback_net.resolver),
                   tcp_timeout=0.3))
    assert from_data(Measurement, to_data(m)) == m


def test_on_ready_fires_once_before_the_late_window_closes(loopback_net: LoopbackNet) -> None:
    import time

    slow = DNSServer(loopback_net.loop, "127.0.0.61",
                     injecting_handler(dict(loopback_net.zone), lie=loopback_net.web_ip, delay=1.0))
    ready: list[float] = []
    try:
        cfg = config(loopback_net, resolvers=(slow.address,), late_window=1.5)
        m = run(loopback_net.url("ok.test"), cfg, on_ready=lambda: ready.append(time.time()))
    finally:
        slow.close()
    a = _dns(m)
    assert len(ready) == 1
    assert len(a.replies) == 2, "the measurement still waited for the late reply"
    assert ready[0] < a.started + a.replies[1].t


def test_dropped_aaaa_queries_do_not_hold_up_the_connection(loopback_net: LoopbackNet) -> None:
    # A resolver (or middlebox) that drops AAAA: after the A answer, AAAA gets only RFC 8305's
    # short resolution delay; the fetch goes ahead and the AAAA timeout is still recorded.
    answer = zone_handler(loopback_net.zone)

    def drop_aaaa(query: dns.message.Message):  # type: ignore[no-untyped-def]
        return [] if query.question[0].rdtype == dns.rdatatype.AAAA else answer(query)

    server = DNSServer(loopback_net.loop, "127.0.0.62", drop_aaaa)
    try:
        cfg = config(loopback_net, resolvers=(server.address,), dns_timeout=3.0)
        m = run(loopback_net.url("ok.test"), cfg)
    finally:
        server.close()
    hop = m.hops[0]
    aaaa = next(q for q in hop.dns if q.qtype == "AAAA")
    assert aaaa.failure == "generic_timeout_error"
    assert hop.http is not None and hop.http.status == 200
    assert hop.tcp[0].started < aaaa.started + cfg.dns_timeout
    assert hop.http.started + hop.http.duration < aaaa.started + aaaa.duration


def test_on_ready_waits_for_a_slow_control(loopback_net: LoopbackNet) -> None:
    # A helper slower than the measurement: the slot is released only once its answer came, so
    # the measurements (and requests) waiting for a slow helper stay bounded by the concurrency.
    import asyncio
    import time

    from probe.core.model import ControlObservation

    events: list[str] = []
    answered: list[float] = []

    async def slow_control(url: str, addrs: object, port: int) -> ControlObservation:
        started = time.time()
        gate = asyncio.Event()
        asyncio.get_running_loop().call_later(0.5, gate.set)  # the helper's slowness
        await gate.wait()
        events.append("control answered")
        answered.append(time.time())
        return ControlObservation(source="slow", url=url, started=started, duration=0.5)

    m = run(loopback_net.url("ok.test"), config(loopback_net), control=slow_control,
            on_ready=lambda: events.append("ready"))  # fmt: skip
    http = m.hops[0].http
    assert http is not None and http.failure is None
    assert http.started + http.duration < answered[0], "the fetch was over before the answer"
    assert events == ["control answered", "ready"]


def test_a_query_leaves_before_the_event_loop_runs_again() -> None:
    # Sent from start() itself: the iterations of starting a task and registering the socket
    # are not on every URL's critical path.
    import asyncio
    import socket

    from probe.measure.dns import UDPQuery

    server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    server.bind(("127.0.0.1", 0))
    server.setblocking(False)
    port = server.getsockname()[1]

    async def main() -> bytes:
        query = UDPQuery("ok.test", "A", "127.0.0.1", port, 1.0, 0.0).start()
        try:
            return server.recv(512)  # no await in between: the datagram is already here
        finally:
            assert query.task is not None
            query.task.cancel()
            await asyncio.gather(query.task, return_exceptions=True)

    try:
        wire = asyncio.run(main())
    finally:
        server.close()
    assert dns.message.from_wire(wire).question[0].name.to_text() == "ok.test."


def test_a_query_cancelled_before_its_task_ran_closes_its_socket() -> None:
    import asyncio
    import os

    from probe.measure.dns import UDPQuery

    def open_fds() -> int:
        return len(os.listdir("/proc/self/fd"))

    async def main() -> int:
        before = open_fds()
        query = UDPQuery("ok.test", "A", "127.0.0.1", 9, 1.0, 0.0).start()
        assert query.task is not None
        query.task.cancel()  # before its first step: _run never runs
        await asyncio.gather(query.task, return_exceptions=True)
        return open_fds() - before

    assert asyncio.run(main()) == 0


def test_the_engine_goes_on_one_loop_iteration_after_the_answer() -> None:
    # asyncio.wait() on the queries' futures took two iterations (a callback, then the
    # wake-up): milliseconds per URL on a loop busy with 64 measurements.
    import asyncio

    from probe.measure.dns import UDPQuery, wait_decided

    async def main() -> tuple[bool, bool]:
        a = UDPQuery("ok.test", "A", "127.0.0.1", 9, 1.0, 0.0)
        aaaa = UDPQuery("ok.test", "AAAA", "127.0.0.1", 9, 1.0, 0.0)
        waiting = asyncio.ensure_future(wait_decided([a, aaaa]))
        await asyncio.sleep(0)  # the wait is registered
        a._decide(None, ("192.0.2.1",))
        await asyncio.sleep(0)
        after_one = waiting.done()  # one of two decided: still waiting
        aaaa._decide("dns_no_answer")
        await asyncio.sleep(0)
        return after_one, waiting.done()

    assert asyncio.run(main()) == (False, True)


def test_a_cancelled_wait_leaves_the_queries_undisturbed() -> None:
    import asyncio

    from probe.measure.dns import UDPQuery, wait_decided

    async def main() -> UDPQuery:
        q = UDPQuery("ok.test", "A", "127.0.0.1", 9, 1.0, 0.0)
        waiting = asyncio.ensure_future(wait_decided([q]))
        await asyncio.sleep(0)
        waiting.cancel()
        await asyncio.gather(waiting, return_exceptions=True)
        q._decide(None, ("192.0.2.1",))  # decided later: recorded, no waiter to call
        return q

    q = asyncio.run(main())
    assert q.decided.done() and not q.decided.cancelled()
    assert q.addresses == ("192.0.2.1",) and q.on_decided is None


def test_waiting_for_controls_that_answered_already_does_not_yield_to_the_loop() -> None:
    # The control usually answers before the steps end; asyncio.wait() on done tasks still
    # cost two loop iterations while the URL held its slot.
    import asyncio

    from probe.core.model import ControlObservation, Target
    from probe.measure.engine import _Measurer
    from probe.measure.hop import HopState

    async def main() -> None:
        async def answer() -> ControlObservation:
            return ControlObservation(source="c", url="http://ok.test/", started=0.0, duration=0.0)

        done = asyncio.ensure_future(answer())
        await done
        target = Target("http://ok.test/", "http://ok.test/", "http", "ok.test", 80)
        m = _Measurer(target, MeasureConfig(resolvers=("127.0.0.1:53",)), None, ())
        hs = HopState(0, "http://ok.test/", "ok.test", 80, "http")
        hs.control = (hs.url, 0.0, done)
        m.hops.append(hs)
        waiting = m.wait_controls()
        with pytest.raises(StopIteration):
            waiting.send(None)  # finished at once, without suspending

    asyncio.run(main())
