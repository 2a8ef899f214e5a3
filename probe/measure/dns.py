"""DNS observations: UDP queries with a late-reply window, DoH queries, resolv.conf.

A UDP query is sent over a socket this module owns (an asyncio datagram endpoint, connected to
the resolver so that the kernel drops datagrams from other sources, like any stub resolver).
The first reply that matches the query (id and question) *decides* the query: its addresses or
its failure are available at once through :attr:`UDPQuery.decided`, so the engine can go on
with TCP/TLS/HTTP. The socket then stays open ``late_window`` seconds and keeps every further
datagram: an on-path injector answers first, the genuine resolver answers later, and both
replies are evidence. :meth:`UDPQuery.observation` builds the record once the window closed.

Every datagram is parsed at most once. Only a well-formed reply from the resolver's address and
port, with our id, QR set and our question, is a *reply*: it may decide the query, and a second
different one is injection evidence. Anything else (garbage, another id, another question,
another source) is *junk*: the first :data:`MAX_JUNK` are kept with ``rcode="MALFORMED"`` (raw
bytes intact, answers filled in when it parsed) and never decide the query or count as replies;
the rest are only counted (:attr:`UDPQuery.junk`). At most :data:`MAX_REPLIES` replies are
kept per query. A datagram whose first two bytes are not our id is junk without parsing, so a
flood costs little CPU and bounded memory.
"""

from __future__ import annotations

import asyncio
import functools
import os
import socket
import struct
import time
from collections.abc import Callable, Sequence
from typing import Any, cast

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype

from probe.core.failures import Failure, failure_string
from probe.core.model import DNSObservation, DNSReply
from probe.core.net import canon_ip, format_endpoint, format_resolver
from probe.measure import capture, localaddrs

__all__ = [
    "MAX_JUNK",
    "MAX_REPLIES",
    "UDPQuery",
    "doh_query",
    "reply_from_message",
    "union_addresses",
]

_RCODE_FAILURES = {
    "NXDOMAIN": Failure.DNS_NXDOMAIN_ERROR,
    "SERVFAIL": Failure.DNS_SERVFAIL_ERROR,
    "REFUSED": Failure.DNS_REFUSED_ERROR,
}


def _reply_failure(reply: DNSReply, addresses: Sequence[str]) -> str | None:
    """The failure string a reply decides (None: it answered with addresses)."""
    if reply.rcode == "NOERROR":
        return None if addresses else Failure.DNS_NO_ANSWER
    return _RCODE_FAILURES.get(reply.rcode, Failure.DNS_SERVER_MISBEHAVING)


def reply_from_message(
    msg: dns.message.Message, raw: bytes, t: float, source: str, qtype: int, rcode: str | None = None
) -> tuple[DNSReply, tuple[str, ...]]:
    """A DNSReply for a parsed message, and the addresses of type ``qtype`` it carries."""
    answers: list[str] = []
    wanted: list[str] = []
    cnames: list[str] = []
    ttl: int | None = None
    for rrset in msg.answer:
        ttl = rrset.ttl if ttl is None else min(ttl, rrset.ttl)
        if rrset.rdtype in (dns.rdatatype.A, dns.rdatatype.AAAA):
            for rd in rrset:
                answers.append(rd.address)
                if rrset.rdtype == qtype:
                    wanted.append(rd.address)
        elif rrset.rdtype == dns.rdatatype.CNAME:
            cnames.extend(rd.target.to_text(omit_final_dot=True) for rd in rrset)
    reply = DNSReply(
        t=t,
        source=source,
        rcode=rcode or dns.rcode.to_text(msg.rcode()),
        answers=tuple(answers),
        cnames=tuple(cnames),
        ttl=ttl,
        flags=_flag_names(msg.flags),
        raw=raw,
    )
    return reply, tuple(wanted)


@functools.lru_cache(maxsize=64)
def _flag_names(flags: int) -> tuple[str, ...]:
    """A reply's header flags by name (``("QR", "RD", "RA")``); few combinations occur."""
    return tuple(dns.flags.to_text(flags).split())


# Query ids come from the system's CSPRNG, 256 at a time: one getrandom() call per query cost
# more than building the query.
_ids: list[int] = []


def _random_id() -> int:
    if not _ids:
        _ids.extend(struct.unpack("!256H", os.urandom(512)))
    return _ids.pop()


@functools.lru_cache(maxsize=256)
def _qname(hostname: str) -> tuple[dns.name.Name, bytes]:
    """The query name of ``hostname`` and its wire form.

    Parsed once for the A and AAAA queries of a hop to every resolver (a quarter of the cost
    of starting a query); the cache is small and fixed, so memory does not grow with the list.
    """
    qname = dns.name.from_text(hostname)
    return qname, cast(bytes, qname.to_wire())  # without a file argument it returns the bytes


def _query_wire(name_wire: bytes, rdtype: int) -> tuple[int, bytes]:
    """A random id and the wire form of a recursive query, as a stub sends it (no EDNS).

    Built by hand: dnspython's make_query + to_wire cost ~20x more, on every query.
    """
    qid = _random_id()
    header = struct.pack("!HHHHHH", qid, dns.flags.RD, 1, 0, 0, 0)
    return qid, header + name_wire + struct.pack("!HH", rdtype, dns.rdataclass.IN)


def _matches(msg: dns.message.Message, qid: int, qname: dns.name.Name, rdtype: int) -> bool:
    """True when ``msg`` answers our query: QR set, same id, same single question."""
    if msg.id != qid or not msg.flags & dns.flags.QR or len(msg.question) != 1:
        return False
    q = msg.question[0]
    return q.rdtype == rdtype and q.rdclass == dns.rdataclass.IN and q.name == qname


#: Matching replies kept per query: a genuine answer and an injected one need two; a few more
#: show a repeated injection. Further matching replies are counted, not kept.
MAX_REPLIES = 8
#: Junk datagrams (not a reply to this query) kept per query as evidence of what was received.
MAX_JUNK = 2


def _same_source(addr: Any, ip: str, port: int) -> bool:
    """True when a datagram came from the resolver's address and port."""
    try:
        return int(addr[1]) == port and canon_ip(str(addr[0]).split("%", 1)[0]) == canon_ip(ip)
    except (IndexError, TypeError, ValueError):
        return False


def _connected_socket(ip: str, port: int) -> socket.socket:
    """A non-blocking UDP socket connected to ``ip``:``port`` (an IP literal).

    Made here rather than by ``create_datagram_endpoint(remote_addr=...)``, which resolves the
    literal and connects through the loop: the same socket, at a fraction of the CPU, on every
    query.
    """
    sock = socket.socket(socket.AF_INET6 if ":" in ip else socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.setblocking(False)
        sock.connect((ip, port))  # UDP: no packet, only the kernel's route and peer filter
    except BaseException:
        sock.close()
        raise
    return sock


class _Protocol(asyncio.DatagramProtocol):
    __slots__ = ("query",)

    def __init__(self, query: UDPQuery) -> None:
        self.query = query

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.query._on_datagram(data, addr)

    def error_received(self, exc: Exception) -> None:
        self.query._on_error(exc)


class UDPQuery:
    """One query (name, type) to one UDP resolver, listening for late replies.

    Start it with :meth:`start`; ``await query.decided`` resolves (never raises) as soon as
    the first matching reply, an error or the timeout decided the query; ``await query.task``
    finishes when the late-reply window closed. Then :meth:`observation` gives the record.
    """

    __slots__ = (
        "_first_t",
        "_qid",
        "_qid_bytes",
        "_qname",
        "_rdtype",
        "_t0",
        "_transport",
        "_wire",
        "addresses",
        "decided",
        "duration",
        "extra_replies",
        "failure",
        "hold_errors",
        "hostname",
        "ip",
        "junk",
        "junk_parsed",
        "late_window",
        "on_decided",
        "port",
        "qtype",
        "replies",
        "started",
        "task",
        "timeout",
    )

    def __init__(
        self, hostname: str, qtype: str, ip: str, port: int, timeout: float, late_window: float,
        *, hold_errors: bool = False,
    ) -> None:
        self.hostname = hostname
        # Resolver-less probes: the ICMP error of a host without DNS server may beat an on-path
        # injector's answer, so an error decides only after one more late window.
        self.hold_errors = hold_errors
        self.qtype = qtype
        self.ip = ip
        self.port = port
        self.timeout = timeout
        self.late_window = late_window
        self.started = time.time()
        self.duration = 0.0
        self.failure: str | None = None
        self.addresses: tuple[str, ...] = ()
        self.replies: list[DNSReply] = []
        self._qname, name_wire = _qname(hostname)
        self._rdtype = dns.rdatatype.from_text(qtype)
        self._qid, self._wire = _query_wire(name_wire, self._rdtype)
        self._qid_bytes = self._wire[:2]
        self.junk = 0  # datagrams that were not a reply to this query (kept or not)
        self.junk_parsed = False  # one of them parsed as DNS (a reply to another query)
        self.extra_replies = 0  # matching replies beyond MAX_REPLIES (counted, not kept)
        self._t0 = time.monotonic()
        self._first_t: float | None = None
        self._transport: asyncio.DatagramTransport | None = None
        loop = asyncio.get_running_loop()
        self.decided: asyncio.Future[None] = loop.create_future()
        self.on_decided: Callable[[], None] | None = None
        self.task: asyncio.Task[None] | None = None

    def start(self) -> UDPQuery:
        """Send the query now; the listening runs as a background task.

        The datagram leaves before the loop has registered the socket (a reply that comes
        first waits in the socket's buffer): sending from the task would cost the event-loop
        iterations of starting it and of ``create_datagram_endpoint``, milliseconds on a
        busy loop, on every query of every URL.
        """
        sock: socket.socket | None = None
        try:
            sock = _connected_socket(self.ip, self.port)
            local = sock.getsockname()
            localaddrs.note(local)
            capture.watch("udp", (local[0], local[1]), (self.ip, self.port), self._wire)
            self._t0 = time.monotonic()
            self.started = time.time()
            sock.send(self._wire)
        except OSError as exc:
            if sock is not None:
                sock.close()
                sock = None
            self._decide(failure_string(exc))
        self.task = asyncio.get_running_loop().create_task(self._run(sock))
        if sock is not None:
            # Closed here whenever no transport took it: a task cancelled before its first
            # step (_run never ran), or a failed create_datagram_endpoint.
            self.task.add_done_callback(functools.partial(self._unwrapped, sock))
        return self

    def _unwrapped(self, sock: socket.socket, _task: object) -> None:
        if self._transport is None:
            sock.close()

    def wait_decided(self, on_decided: Callable[[], None] | None) -> None:
        """Have ``on_decided`` called (once, synchronously) when the query is decided; None
        removes it. One waiter at a time: :func:`wait_decided` is the one that uses it."""
        self.on_decided = on_decided

    @property
    def resolver(self) -> str:
        return format_resolver(self.ip, self.port)

    def _decide(self, failure: str | None, addresses: tuple[str, ...] = ()) -> None:
        if self.decided.done():
            return
        self.duration = time.monotonic() - self._t0
        self.failure = failure
        self.addresses = addresses
        self.decided.set_result(None)
        if self.on_decided is not None:
            self.on_decided()

    def _on_datagram(self, data: bytes, addr: Any) -> None:
        t = time.monotonic() - self._t0
        if not _same_source(addr, self.ip, self.port) or data[:2] != self._qid_bytes:
            self._on_junk(data, addr, t, None)  # another source, or another id: not parsed
            return
        if len(self.replies) - min(self.junk, MAX_JUNK) >= MAX_REPLIES:  # the kept junk aside
            self.extra_replies += 1
            return
        qtype = self._rdtype
        try:
            msg = dns.message.from_wire(data)
        except Exception:
            self._on_junk(data, addr, t, None)
            return
        if not _matches(msg, self._qid, self._qname, qtype):
            self._on_junk(data, addr, t, msg)
            return
        source = format_endpoint(addr[0], addr[1])
        reply, addresses = reply_from_message(msg, data, t, source, qtype)
        self.replies.append(reply)
        if self._first_t is None:
            self._first_t = t
            failure = _reply_failure(reply, addresses)
            self._decide(failure, addresses if failure is None else ())

    def _on_junk(self, data: bytes, addr: Any, t: float, msg: dns.message.Message | None) -> None:
        """A datagram that is not a reply to this query: kept (the first few) as evidence only."""
        self.junk += 1
        if msg is None and self.junk <= MAX_JUNK:
            try:  # only the first few are parsed: a flood costs no parsing
                msg = dns.message.from_wire(data)
            except Exception:
                msg = None
        if msg is not None:
            self.junk_parsed = True
        if self.junk > MAX_JUNK:
            return
        try:
            source = format_endpoint(addr[0], addr[1])
        except (IndexError, TypeError, ValueError):
            source = str(addr)
        if msg is None:
            self.replies.append(DNSReply(t=t, source=source, rcode="MALFORMED", raw=data))
        else:
            reply, _ = reply_from_message(msg, data, t, source, self._rdtype, rcode="MALFORMED")
            self.replies.append(reply)

    def _on_error(self, exc: Exception) -> None:
        # ICMP port/host unreachable on the connected socket: no resolver listens there.
        if self.hold_errors:
            failure = failure_string(exc)
            asyncio.get_running_loop().call_later(self.late_window, self._decide, failure)
            return
        self._decide(failure_string(exc))

    async def _run(self, sock: socket.socket | None) -> None:
        if sock is None:  # the send failed: decided already
            return
        loop = asyncio.get_running_loop()
        try:
            try:
                self._transport, _ = await loop.create_datagram_endpoint(
                    lambda: _Protocol(self), sock=sock
                )
            except OSError as exc:  # the socket is closed by _unwrapped, as on any exit
                self._decide(failure_string(exc))
                return
            try:
                async with asyncio.timeout(self.timeout):
                    await asyncio.shield(self.decided)
            except TimeoutError:
                if self.junk:
                    self._decide(
                        Failure.DNS_REPLY_WITH_WRONG_QUERY_ERROR
                        if self.junk_parsed
                        else Failure.DNS_SERVER_MISBEHAVING
                    )
                else:
                    self._decide(Failure.GENERIC_TIMEOUT_ERROR)
                return
            if self._first_t is not None and self.late_window > 0:
                remaining = self._first_t + self.late_window - (time.monotonic() - self._t0)
                if remaining > 0:
                    await asyncio.sleep(remaining)
        except asyncio.CancelledError:
            self._decide(Failure.DEADLINE_EXCEEDED)
            raise
        finally:
            if self._transport is not None:
                self._transport.close()

    def observation(self) -> DNSObservation:
        """The record of this query with every reply seen so far."""
        return DNSObservation(
            hostname=self.hostname,
            qtype=self.qtype,
            resolver=self.resolver,
            transport="udp",
            started=self.started,
            duration=self.duration,
            failure=self.failure if self.decided.done() else Failure.DEADLINE_EXCEEDED,
            addresses=self.addresses,
            replies=tuple(self.replies),
        )


async def doh_query(
    hostname: str, qtype: str, url: str, client: Any, timeout: float
) -> DNSObservation:
    """One DNS-over-HTTPS query through dnspython's DoH with a shared httpx2 client.

    The DoH reply is stored re-encoded (``to_wire()``) since dnspython does not expose the
    bytes received; DoH is the DNS control, not injection evidence.
    """
    import dns.asyncquery  # DoH only: with its HTTP stack, ~1 s to import; runs without --doh skip it

    started = time.time()
    t0 = time.monotonic()
    q = dns.message.make_query(hostname, qtype)
    rdtype = dns.rdatatype.from_text(qtype)
    observation = functools.partial(
        DNSObservation, hostname=hostname, qtype=qtype, resolver=f"doh:{url}", transport="doh",
        started=started,
    )  # fmt: skip
    try:
        msg = await dns.asyncquery.https(q, url, timeout=timeout, client=client)
    except Exception as exc:
        return observation(duration=time.monotonic() - t0, failure=failure_string(exc))
    t = time.monotonic() - t0
    reply, addresses = reply_from_message(msg, msg.to_wire(), t, url, rdtype)
    return observation(duration=t, failure=_reply_failure(reply, addresses), addresses=addresses,
                       replies=(reply,))  # fmt: skip


async def wait_decided(queries: Sequence[UDPQuery]) -> None:
    """Return once every query in ``queries`` is decided (an answer, an error, its timeout).

    The task wakes one event-loop iteration after the last decision; ``asyncio.wait`` on the
    ``decided`` futures costs two (a done-callback, then the wake-up), milliseconds on a busy
    loop, on the critical path of every URL. Cancelling the wait leaves the queries running.
    """
    pending = [q for q in queries if not q.decided.done()]
    if not pending:
        return
    waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    left = len(pending)

    def one_decided() -> None:
        nonlocal left
        left -= 1
        if left == 0 and not waiter.done():
            waiter.set_result(None)

    for q in pending:
        q.wait_decided(one_decided)
    try:
        await waiter
    finally:
        for q in pending:
            q.wait_decided(None)


def union_addresses(queries: Sequence[UDPQuery]) -> list[str]:
    """Addresses of the first replies, A queries first, then AAAA, without duplicates."""
    out: dict[str, None] = {}
    for qtype in ("A", "AAAA"):
        for q in queries:
            if q.qtype == qtype:
                for a in q.addresses:
                    out.setdefault(a, None)
    return list(out)
