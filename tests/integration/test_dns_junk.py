"""Junk datagrams are not DNS injection, and a flood of them is bounded.

A hostile "resolver" on loopback answers each query genuinely, then floods the query's socket
with 20,000 datagrams: garbage, replies with another id, replies to another question. Only
well-formed replies matching the query (id, question, resolver address and port) are replies;
the rest is junk, of which a few are kept as evidence. The verdict must not be ``hijacked``.
"""

from __future__ import annotations

import asyncio
import random
import socket
from typing import Any

import dns.message
import dns.rrset
import pytest
from observe_helpers import config, run
from servers import DNSServer, LoopbackNet, zone_handler

from probe.core.model import DNSObservation, DNSReply
from probe.judge.classify import classify
from probe.judge.classify.dns import injection
from probe.measure.dns import MAX_JUNK, MAX_REPLIES

pytestmark = pytest.mark.integration

FLOOD = 20_000


def _lie(query: dns.message.Message, qid: int | None = None, name: str | None = None) -> bytes:
    """A reply with the lie 10.10.34.34, for another id or another question when asked."""
    q = dns.message.make_query(name, "A") if name else query
    reply = dns.message.make_response(q)
    reply.id = qid if qid is not None else query.id
    reply.answer.append(dns.rrset.from_text(q.question[0].name, 60, "IN", "A", "10.10.34.34"))
    return reply.to_wire()


def flood_handler(zone: dict[str, list[str] | str], *, genuine_first: bool = True) -> Any:
    genuine = zone_handler(zone)
    rng = random.Random(10)
    garbage = [rng.randbytes(rng.randrange(1, 300)) for _ in range(64)]
    tails = [rng.randbytes(40) for _ in range(64)]

    def handle(query: dns.message.Message) -> list[tuple[float, Any]]:
        if query.question[0].rdtype != dns.rdatatype.A:
            return genuine(query)
        qid = query.id.to_bytes(2, "big")
        other_id = _lie(query, qid=(query.id + 1) & 0xFFFF)  # another id
        other_question = _lie(query, name="other.test")  # our id, another question
        junk: list[tuple[float, Any]] = []
        for i in range(FLOOD):
            kind = i % 4
            if kind == 0:
                junk.append((0.0, garbage[i % 64]))
            elif kind == 1:
                junk.append((0.0, other_id))
            elif kind == 2:
                junk.append((0.0, qid + other_question[2:]))
            else:
                junk.append((0.0, qid + tails[i % 64]))  # our id, then junk
        answer = genuine(query)
        return [*answer, *junk] if genuine_first else [*junk[:50], *answer, *junk[50:]]

    return handle


@pytest.mark.parametrize("genuine_first", [True, False])
def test_a_junk_flood_is_bounded_and_not_injection(loopback_net: LoopbackNet, genuine_first: bool) -> None:
    server = DNSServer(loopback_net.loop, "127.0.0.60", flood_handler(loopback_net.zone,
                                                                       genuine_first=genuine_first))
    try:
        m = run(loopback_net.url("ok.test"),
                config(loopback_net, resolvers=(server.address,), late_window=1.0, dns_timeout=3.0))
    finally:
        server.close()
    a = next(q for q in m.hops[0].dns if q.qtype == "A")
    assert a.failure is None and a.addresses == (loopback_net.web_ip,)
    assert len(a.replies) <= MAX_REPLIES + MAX_JUNK  # out of up to 20,000 datagrams
    good = [r for r in a.replies if r.rcode != "MALFORMED"]
    assert [r.answers for r in good] == [(loopback_net.web_ip,)]
    assert injection(a) == 1
    verdict = classify(m)
    assert verdict.verdict != "hijacked", verdict
    assert not any("injection" in r for r in verdict.reasons)


class _SpoofingResolver(asyncio.DatagramProtocol):
    """Answers genuinely, and sends a lie with the right id and question from another port."""

    def __init__(self, zone: dict[str, list[str] | str], spoof: socket.socket) -> None:
        self.genuine = zone_handler(zone)
        self.spoof = spoof
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: Any) -> None:
        query = dns.message.from_wire(data)
        assert self.transport is not None
        self.spoof.sendto(_lie(query), addr)  # first, so it would decide if it were accepted
        for _, reply in self.genuine(query):
            self.transport.sendto(reply.to_wire(), addr)


def test_a_reply_from_another_port_is_not_a_reply(loopback_net: LoopbackNet) -> None:
    # The lie comes from the resolver's address but another port (an off-path spoofer that
    # guessed the id): never a reply, never evidence of injection.
    spoof = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    spoof.bind(("127.0.0.61", 0))

    async def start() -> asyncio.DatagramTransport:
        transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(
            lambda: _SpoofingResolver(loopback_net.zone, spoof), local_addr=("127.0.0.61", 0))
        return transport

    transport = loopback_net.loop.run(start())
    port = transport.get_extra_info("sockname")[1]
    try:
        m = run(loopback_net.url("ok.test"),
                config(loopback_net, resolvers=(f"127.0.0.61:{port}",), late_window=0.3))
    finally:
        loopback_net.loop.loop.call_soon_threadsafe(transport.close)
        spoof.close()
    a = next(q for q in m.hops[0].dns if q.qtype == "A")
    assert a.addresses == (loopback_net.web_ip,)
    assert [r.answers for r in a.replies if r.rcode != "MALFORMED"] == [(loopback_net.web_ip,)]
    assert injection(a) == 1


def _reply(rcode: str, answers: tuple[str, ...] = ()) -> DNSReply:
    return DNSReply(t=0.01, source="127.0.0.1:53", rcode=rcode, answers=answers)


def test_stored_junk_never_counts_as_injection_when_rejudged() -> None:
    # Old databases hold MALFORMED replies next to the genuine one: reclassify must not call
    # that injection either.
    q = DNSObservation("ok.test", "A", "udp://127.0.0.1:53", "udp", 0.0, 0.01, None,
                       ("192.0.2.1",), (_reply("NOERROR", ("192.0.2.1",)), _reply("MALFORMED"),
                                        _reply("MALFORMED", ("10.10.34.34",))))
    assert injection(q) == 1
    two = DNSObservation("ok.test", "A", "udp://127.0.0.1:53", "udp", 0.0, 0.01, None,
                         ("10.10.34.34",), (_reply("NOERROR", ("10.10.34.34",)),
                                            _reply("NOERROR", ("192.0.2.1",))))
    assert injection(two) == 2  # real injection still counts
