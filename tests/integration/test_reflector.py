"""The helper's reflector on loopback: what it answers, its bounds and rate limits, its
advertisement in /health, and `probe circumvention` measuring through it (with DoH and DoT
resolvers next to it)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import socket
from collections.abc import AsyncIterator, Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import pytest
from helper_util import running_helper
from servers import DNSServer, ServerLoop, zone_handler

from probe.core.failures import Failure
from probe.core.model import EchoTrial
from probe.inputs.endpointlists import Endpoint
from probe.measure import fet, wireguard
from probe.run.circumvention import SuiteConfig, measure_endpoints, reflector_endpoints
from probe.serve.app import Helper
from probe.serve.config import HelperConfig, measure_config
from probe.serve.reflector import RateLimiter, Reflector, ReflectorConfig

pytestmark = pytest.mark.integration

LOCAL = "127.0.0.1"
F = TypeVar("F", bound=Callable[..., Coroutine[Any, Any, None]])


def sync(fn: F) -> Callable[..., None]:
    """Run an ``async def`` test in a fresh event loop (the suite has no asyncio plugin)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        asyncio.run(fn(*args, **kwargs))

    return wrapper


def _config(**kw: object) -> ReflectorConfig:
    base: dict[str, object] = {"tcp_echo": (0, 0), "udp_echo": 0, "wireguard": 0}
    return ReflectorConfig(**(base | kw))  # type: ignore[arg-type]  # test configurations


async def _started(**kw: object) -> Reflector:
    r = Reflector(_config(**kw))
    await r.start(LOCAL)
    return r


def test_rate_limiter_refills_and_forgets_the_oldest_client() -> None:
    rl = RateLimiter(rate=1.0, burst=2, max_keys=2)
    assert rl.allow("a", 0.0) and rl.allow("a", 0.0) and not rl.allow("a", 0.0)
    assert rl.allow("a", 1.0)  # one token back after a second
    rl.allow("b", 1.0)
    rl.allow("c", 1.0)
    assert len(rl) == 2  # "a", the least recently seen, was forgotten: memory stays bounded


@sync
async def test_tcp_echo_returns_what_it_got_up_to_its_byte_budget() -> None:
    r = await _started(tcp_bytes=300)
    try:
        port = r.ports["tcp_echo"][0]
        reader, writer = await asyncio.open_connection(LOCAL, port)
        writer.write(b"x" * 200)
        assert await reader.readexactly(200) == b"x" * 200
        writer.write(b"y" * 200)  # 100 more bytes fit the budget; then the reflector closes
        assert await reader.read(1000) == b"y" * 100
        assert await reader.read(1000) == b""
        writer.close()
    finally:
        await r.close()
    assert r.stats["tcp_bytes"] == 300


@sync
async def test_an_idle_connection_is_closed_and_a_client_has_a_connection_cap() -> None:
    r = await _started(idle_timeout=0.3, per_client=2, rate=1000.0, burst=1000)
    try:
        port = r.ports["tcp_echo"][0]
        conns = [await asyncio.open_connection(LOCAL, port) for _ in range(3)]
        # The third connection from the same address is closed at once, before anything is read.
        assert await asyncio.wait_for(conns[2][0].read(10), 2) == b""
        # The first two are closed after their idle time, without a byte exchanged.
        assert await asyncio.wait_for(conns[0][0].read(10), 2) == b""
        for _, w in conns:
            w.close()
    finally:
        await r.close()
    assert r.stats["refused_connections"] == 1 and r.stats["idle_closed"] == 2


@sync
async def test_new_connections_are_rate_limited_per_client() -> None:
    r = await _started(rate=0.1, burst=3, per_client=100)
    try:
        port = r.ports["tcp_echo"][0]
        answered = 0
        for _ in range(6):
            reader, writer = await asyncio.open_connection(LOCAL, port)
            writer.write(b"ping")
            if await asyncio.wait_for(reader.read(10), 2) == b"ping":
                answered += 1
            writer.close()
    finally:
        await r.close()
    assert answered == 3 and r.stats["refused_connections"] == 3


class _Collect(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.got: asyncio.Queue[bytes] = asyncio.Queue()

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.got.put_nowait(data)


@contextlib.asynccontextmanager
async def udp_client() -> AsyncIterator[tuple[asyncio.DatagramTransport, _Collect]]:
    loop = asyncio.get_running_loop()
    transport, proto = await loop.create_datagram_endpoint(_Collect, local_addr=(LOCAL, 0))
    try:
        yield transport, proto
    finally:
        transport.close()


async def _drain(proto: _Collect, wait: float = 0.3) -> list[bytes]:
    await asyncio.sleep(wait)  # nothing to synchronise on: we count what did NOT come back
    out = []
    while not proto.got.empty():
        out.append(proto.got.get_nowait())
    return out


@sync
async def test_udp_answers_never_exceed_the_request_and_big_datagrams_are_dropped() -> None:
    r = await _started(max_datagram=512)
    async with udp_client() as (transport, proto):
        echo, wg = r.ports["udp_echo"], r.ports["wireguard"]
        transport.sendto(b"a" * 100, (LOCAL, echo))
        assert await asyncio.wait_for(proto.got.get(), 2) == b"a" * 100
        transport.sendto(b"b" * 600, (LOCAL, echo))  # above max_datagram: no answer
        transport.sendto(b"\x01\x00\x00\x00" + bytes(144), (LOCAL, wg))  # not a valid initiation
        transport.sendto(b"\x04" + bytes(50), (LOCAL, wg))  # WireGuard data: dropped
        assert await _drain(proto) == []
    await r.close()
    assert r.stats["dropped_datagrams"] == 3 and r.stats["answered"] == 1


@sync
async def test_a_flood_from_one_address_gets_at_most_its_burst_answered() -> None:
    r = await _started(rate=1.0, burst=5)
    async with udp_client() as (transport, proto):
        for _ in range(50):
            transport.sendto(b"z" * 64, (LOCAL, r.ports["udp_echo"]))
        got = await _drain(proto, 0.5)
    await r.close()
    assert 5 <= len(got) <= 6  # the burst, plus at most one token refilled meanwhile
    assert r.stats["dropped_datagrams"] == 50 - len(got)


@sync
async def test_the_wireguard_port_answers_a_handshake_and_echoes_the_twin() -> None:
    r = await _started()
    try:
        port = r.ports["wireguard"]
        twin = await wireguard.twin_trial("twin", LOCAL, port, timeout=2)
        init = await wireguard.initiation_trial(LOCAL, port, r.keys.public, timeout=2)
        other = wireguard.KeyPair.generate().public
        wrong = await wireguard.initiation_trial(LOCAL, port, other, timeout=0.6)
    finally:
        await r.close()
    assert twin.failure is None and twin.detail == "echoed" and twin.received == 148
    assert init.failure is None and init.detail == "ok" and init.received == 92
    assert wrong.failure == Failure.GENERIC_TIMEOUT_ERROR  # an initiation for another key: silence
    assert r.stats["wireguard_responses"] == 1


@sync
async def test_the_twin_and_random_exchanges_against_the_echo() -> None:
    r = await _started()
    try:
        port = r.ports["tcp_echo"][0]
        twin = await fet.twin_trial("twin", LOCAL, port, tcp_timeout=2, timeout=2)
        rnd = await fet.random_trial(LOCAL, port, tcp_timeout=2, timeout=2)
    finally:
        await r.close()
    assert twin.failure is None and twin.received == fet.FIRST_SIZE + fet.SECOND_SIZE
    assert {"ex2", "ex3", "ex4"} <= set(twin.exempt)
    assert rnd.failure is None and rnd.exempt == ()


@sync
async def test_health_advertises_the_reflector_and_the_probe_finds_it() -> None:
    cfg = HelperConfig(host=LOCAL, port=0, reflector=_config())
    helper = Helper(lambda req: asyncio.sleep(0), cfg)  # type: ignore[arg-type,return-value]  # no measuring here
    async with running_helper(helper) as base:
        import aiohttp

        async with aiohttp.ClientSession() as s, s.get(base + "health") as resp:
            health = json.loads(await resp.read())
        eps = await reflector_endpoints([base], None, 5)
    ref = health["reflector"]
    assert len(ref["tcp_echo"]) == 2 and ref["wireguard"]["public_key"]
    assert [(e.kind, e.address, e.port) for e in eps] == [
        ("fet", LOCAL, ref["tcp_echo"][0]), ("wireguard", LOCAL, ref["wireguard"]["port"])]
    assert eps[0].alt_port == ref["tcp_echo"][1] and eps[1].key == ref["wireguard"]["public_key"]


@sync
async def test_a_helper_without_a_reflector_offers_none() -> None:
    helper = Helper(lambda req: asyncio.sleep(0), HelperConfig(host=LOCAL, port=0))  # type: ignore[arg-type,return-value]
    async with running_helper(helper) as base:
        assert await reflector_endpoints([base], None, 5) == []


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((LOCAL, 0))
        return int(s.getsockname()[1])


@sync
async def test_circumvention_measures_resolvers_and_the_reflector_with_a_control(tmp_path: Path) -> None:
    pytest.importorskip("trustme")
    from probe.lab import toolservers
    from probe.lab.certs import CertAuthority

    ca = CertAuthority("resolver CA")
    ca.write(tmp_path / "ca.pem")
    ctx = ca.server_context("dns.test", alpn=())
    doh, dot, closed = _free_port(), _free_port(), _free_port()
    table = {"site.test": ["127.0.0.9"], "lie.test": ["127.0.0.9"]}
    servers = await toolservers.start(ctx=ctx, doh=[(LOCAL, doh)], dot=[(LOCAL, dot)],  # type: ignore[arg-type]
                                      resolver=toolservers.Resolver(table))  # fmt: skip
    eps = [Endpoint("doh", "doh", LOCAL, doh, "dns.test"), Endpoint("dot", "dot", LOCAL, dot, "dns.test"),
           Endpoint("dot", "closed", LOCAL, closed, "dns.test")]  # fmt: skip
    cfg = HelperConfig(host=LOCAL, port=0, allow_private=True, reflector=_config())
    dns_loop = ServerLoop()
    dns = DNSServer(dns_loop, LOCAL, zone_handler({"site.test": ["127.0.0.9"]}))
    # The helper resolves the names on loopback too (its system resolver is out of bounds).
    # A short deadline: the helper also fetches https://dns.test:PORT/, which a DoT server reads
    # as a DNS message of 18,245 bytes and waits for until the fetch gives up.
    helper = Helper.with_engine(measure_config(resolvers=(dns.address,), deadline=3.0), cfg)
    try:
        async with running_helper(helper) as base:
            extra = await reflector_endpoints([base], None, 5)
            conf = SuiteConfig(controls=(base,), cafile=str(tmp_path / "ca.pem"), tcp_timeout=2,
                               handshake_timeout=2, names=("site.test",), decoy_sni="other.test",
                               fet_tries=2)  # fmt: skip
            results = await measure_endpoints([*eps, *extra], conf)
    finally:
        for s in servers:
            s.close()  # type: ignore[attr-defined]
        dns.close()
        dns_loop.close()
    got = {obs.name: (obs, v) for obs, _, v in results}
    obs, v = got["doh"]
    assert v.verdict == "ok", v
    assert obs.queries[0].addresses == ("127.0.0.9",) and obs.tls_version
    assert got["dot"][1].verdict == "ok" and got["dot"][0].queries[0].rcode == "NOERROR"
    assert got["closed"][1].verdict == "down"
    fet_obs, fet_v = got["reflector-fet"]
    assert fet_v.verdict == "ok" and [t.role for t in fet_obs.trials] == ["twin", "random", "random"]
    wg_obs, wg_v = got["reflector-wireguard"]
    assert wg_v.verdict == "ok" and [t.detail for t in wg_obs.trials] == ["echoed", "ok"]


def test_the_reflector_answers_on_the_helper_s_event_loop() -> None:
    """The helper runs on uvloop when installed, whose transports are not asyncio's classes
    (an isinstance check there once made the reflector refuse every connection)."""
    from probe.host import eventloop

    async def exchange() -> tuple[str, EchoTrial, EchoTrial]:
        r = await _started()
        try:
            tcp = await fet.twin_trial("twin", LOCAL, r.ports["tcp_echo"][0], tcp_timeout=2, timeout=2)
            udp = await wireguard.twin_trial("twin", LOCAL, r.ports["wireguard"], timeout=2)
        finally:
            await r.close()
        return eventloop.loop_name(), tcp, udp

    name, tcp, udp = eventloop.run(exchange())
    assert tcp.failure is None and udp.failure is None, (name, tcp, udp)


@sync
async def test_wireguard_responses_have_a_global_cap() -> None:
    r = await _started(wireguard_rate=0.01, rate=1000.0, burst=1000)  # one response, then none
    try:
        port = r.ports["wireguard"]
        first = await wireguard.initiation_trial(LOCAL, port, r.keys.public, timeout=1)
        second = await wireguard.initiation_trial(LOCAL, port, r.keys.public, timeout=0.6)
    finally:
        await r.close()
    assert first.detail == "ok" and second.failure == Failure.GENERIC_TIMEOUT_ERROR
    assert r.stats["wireguard_responses"] == 1
