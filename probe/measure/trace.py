"""``probe trace``: where on the path does the censor sit? (TTL-limited triggers, after CenTrace)

For each TTL from 1 up, two fresh TCP connections are opened to the same address (normal TTL
for the handshake, by the kernel: a stateful censor only looks at flows that began with a real
handshake); then the IP TTL of each socket is lowered to ``ttl`` and one packet is sent on
each: the *trigger* (an HTTP request with the tested Host, or a TLS ClientHello with the tested
SNI) and the *control* (the same with a harmless name). A router where the TTL runs out answers
with ICMP time exceeded, which quotes the expired packet's headers: scapy parses it and the
quoted source port, destination address and port tie it to one probe. A censor that sees the
trigger may react (RST, FIN) or silently drop it; the server answers once the TTL reaches it.

:func:`locate` (pure) compares the two probes TTL by TTL and finds the *link* where the
trigger's fate parts from the control's:

* **reaction**: the first TTL at which the trigger draws a RST or FIN the control does not, or
  an answer (a block page) from before the hop where the control reaches the server;
* **silent drop**: the hop after which the trigger's ICMP quotes stop while the control's go
  on (routers behind it, or the server, answer only the control).

A packet sent with TTL N expires at hop N, which answers and discards it; only with TTL N+1
does it pass hop N. So a device first met at TTL N+1 acts after hop N passed the packet on and
before hop N+1 checks its TTL: inside hop N (after routing), on the link from hop N to hop N+1,
or at hop N+1's entrance. The result names that link, "between hop N and hop N+1", rather than
one hop. **On-path** (a tap that injects): past the link the trigger still draws answers (ICMP
from the routers behind, or the server's): the original went on. **In-path** (a box that
drops, or resets instead of forwarding): past the link the trigger draws nothing the control
does.

No censor is named when the link starts at this machine (no router answered the trigger
first: a local firewall cannot be told from a censor) or ends at the server (the server
itself may treat the name differently); the link is still reported.

Footprint (documented in docs/packets.md): per TTL and probe, one handshake (SYN, ACK), one
trigger segment and its retransmissions while we wait (at most ``wait`` seconds), one RST to end
it; the trace stops once the control reaches the server or at ``max_ttl``. ``packets_sent``
counts them (retransmissions from TCP_INFO).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import struct
import time
from collections.abc import Sequence
from dataclasses import dataclass

from probe.core.errors import ProbeError

__all__ = [
    "TECHNIQUES",
    "Location",
    "Quote",
    "Trace",
    "TraceLink",
    "TraceProbe",
    "TraceUnavailable",
    "client_hello",
    "http_request",
    "locate",
    "parse_time_exceeded",
    "trace",
]

_TCP_INFO_TOTAL_RETRANS = 100  # offset of tcpi_total_retrans in struct tcp_info (Linux)
_ICMP_TIME_EXCEEDED = 11
_READ_BATCH = 64


class TraceUnavailable(ProbeError, RuntimeError):
    """Tracing needs root or CAP_NET_RAW (a raw ICMP socket)."""

    exit_code = 2  # what the user can change, as a usage error (docs/packets.md)


@dataclass(frozen=True)
class TraceProbe:
    """One TTL-limited send: the router that reported the expiry, and any reaction."""

    ttl: int
    probe: str  # "trigger" or "control"
    router: str | None  # source of the ICMP time exceeded, if any
    outcome: str  # "rst", "fin", "response", "silent", "connect-failed"
    rtt: float | None  # seconds until the first ICMP or reaction
    sent: int  # packets this probe sent (handshake, trigger, retransmissions, RST)


@dataclass(frozen=True)
class TraceLink:
    """Where the trigger's fate parts from the control's: after hop ``near``, by hop ``far``.

    ``near`` is the last TTL at which a router still answered the trigger as it answered the
    control (0: none did, the link starts at this machine); ``far`` the first TTL at which the
    trigger fared differently. Routers are what answered there (None: no ICMP came);
    ``far_is_server`` when the control reached the server at ``far``.
    """

    near: int
    near_router: str | None
    far: int
    far_router: str | None
    far_is_server: bool


#: What a censor can do to the trigger, as a trace names it (``Location.technique``).
TECHNIQUES = ("rst", "fin", "response", "drop")


@dataclass(frozen=True)
class Location:
    """What :func:`locate` concludes from the probes of a trace."""

    technique: str | None  # "rst", "fin", "response" (injected) or "drop"; None: fared alike
    link: TraceLink | None
    censor_hop: int | None  # link.far when a censor is named (not this machine, not the server)
    placement: str | None  # "on-path", "in-path", or None (no censor named, or cannot tell)
    server_hop: int | None  # the TTL at which the control reached the server


@dataclass(frozen=True)
class Trace:
    """The result of ``probe trace``."""

    url: str
    trigger: str  # the tested name (Host or SNI)
    control_name: str
    kind: str  # "http" or "tls"
    ip: str
    port: int
    started: float
    duration: float
    probes: tuple[TraceProbe, ...]
    censor_hop: int | None  # the first TTL at which a censor treated the trigger differently
    placement: str | None  # "on-path", "in-path", or None
    server_hop: int | None  # the TTL at which the control reached the server
    packets_sent: int
    technique: str | None = None  # "rst", "fin", "response", "drop" (see Location)
    link: TraceLink | None = None  # the link where trigger and control part (see TraceLink)


def http_request(host: str) -> bytes:
    """The trigger for HTTP: a GET with the tested Host."""
    return f"GET / HTTP/1.1\r\nHost: {host}\r\nUser-Agent: probe-trace\r\nAccept: */*\r\n\r\n".encode()


def client_hello(sni: str) -> bytes:
    """The trigger for TLS: a real ClientHello (Python's ssl) carrying ``sni``."""
    ctx = ssl.create_default_context()
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(incoming, outgoing, server_hostname=sni)
    with contextlib.suppress(ssl.SSLWantReadError):
        obj.do_handshake()
    return outgoing.read()


def _icmp_socket() -> socket.socket:
    try:
        s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    except PermissionError as exc:
        raise TraceUnavailable(f"probe trace needs root or CAP_NET_RAW ({exc})") from None
    s.setblocking(False)
    return s


@dataclass(frozen=True)
class Quote:
    """An ICMP time exceeded: the router that sent it and the TCP flow of the packet it quotes."""

    router: str
    sport: int  # the probe's local port
    dst: str  # the traced address
    dport: int


def parse_time_exceeded(data: bytes) -> Quote | None:
    """The :class:`Quote` of an ICMP time exceeded for a TCP packet (IPv4), or None.

    ``data`` is what a raw ICMP socket reads: the IP header, then ICMP. scapy dissects the
    quoted IP and TCP headers (``IPerror``/``TCPerror``), also when a router quotes only the
    8 bytes RFC 792 requires (ports and sequence number); anything shorter, or not a TCP
    quote, is None.
    """
    from scapy.layers.inet import ICMP, IP, IPerror, TCPerror

    try:
        pkt = IP(data)
    except Exception:  # scapy raises what the malformed bytes make it raise
        return None
    icmp, inner, tcp = pkt.getlayer(ICMP), pkt.getlayer(IPerror), pkt.getlayer(TCPerror)
    if icmp is None or icmp.type != _ICMP_TIME_EXCEEDED or inner is None or tcp is None:
        return None
    quoted = len(data) - pkt.ihl * 4 - 8  # the bytes of the expired packet the router sent back
    if inner.proto != socket.IPPROTO_TCP or quoted < inner.ihl * 4 + 4:
        return None  # a quote cut before the ports ends names no flow
    return Quote(str(pkt.src), int(tcp.sport), str(inner.dst), int(tcp.dport))


class _IcmpListener:
    """Routes ICMP time exceeded messages to the probe whose flow they quote."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        # (local port, traced address, port) -> the router's address, once it answered
        self.waiters: dict[tuple[int, str, int], asyncio.Future[str]] = {}
        asyncio.get_running_loop().add_reader(sock.fileno(), self._read)

    def _read(self) -> None:
        # A raw ICMP socket reads every ICMP message the host gets: a bounded batch per call,
        # so that a flood of them cannot hold the event loop (the loop calls again).
        for _ in range(_READ_BATCH):
            try:
                data = self.sock.recv(2048)
            except OSError:  # nothing more to read now (BlockingIOError), or the socket is gone
                return
            quote = parse_time_exceeded(data)
            if quote is None:
                continue
            fut = self.waiters.get((quote.sport, quote.dst, quote.dport))
            if fut is not None and not fut.done():
                fut.set_result(quote.router)

    def close(self) -> None:
        asyncio.get_running_loop().remove_reader(self.sock.fileno())


async def _probe(ip: str, port: int, ttl: int, payload: bytes, name: str, wait: float, grace: float,
                 icmp: _IcmpListener, timeout: float) -> TraceProbe:  # fmt: skip
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setblocking(False)
    sent = 1  # the SYN
    try:
        try:
            await asyncio.wait_for(loop.sock_connect(sock, (ip, port)), timeout)
        except (OSError, TimeoutError):
            return TraceProbe(ttl, name, None, "connect-failed", None, sent)
        sent += 1  # the ACK
        key = (sock.getsockname()[1], ip, port)
        router_fut: asyncio.Future[str] = loop.create_future()
        icmp.waiters[key] = router_fut
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, ttl)
        t0 = time.monotonic()
        await loop.sock_sendall(sock, payload)
        sent += 1
        reaction = loop.create_task(_reaction(loop, sock))
        done, _ = await asyncio.wait({reaction, router_fut}, timeout=wait,
                                     return_when=asyncio.FIRST_COMPLETED)  # fmt: skip
        rtt = time.monotonic() - t0 if done else None
        if router_fut.done() and not reaction.done():
            # The router answered; a censor's reaction may still be on its way.
            await asyncio.wait({reaction}, timeout=grace)
        elif reaction.done() and not router_fut.done():
            await asyncio.wait({router_fut}, timeout=grace)
        outcome = reaction.result() if reaction.done() else "silent"
        reaction.cancel()
        icmp.waiters.pop(key, None)
        router = router_fut.result() if router_fut.done() else None
        sent += _retransmissions(sock)
        return TraceProbe(ttl, name, router, outcome, rtt, sent + 1)  # + our RST
    finally:
        # RST at once (linger 0): no half-open state left at the server or the censor.
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()


async def _reaction(loop: asyncio.AbstractEventLoop, sock: socket.socket) -> str:
    try:
        data = await loop.sock_recv(sock, 4096)
    except OSError:  # ConnectionResetError, or any other error ending the connection
        return "rst"
    return "response" if data else "fin"


def _retransmissions(sock: socket.socket) -> int:
    try:
        info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 104)
        return int(struct.unpack_from("I", info, _TCP_INFO_TOTAL_RETRANS)[0])
    except (OSError, struct.error):
        return 0


_REACTIONS = ("rst", "fin")
#: TTLs at or past the link at which the control must be answered (while the trigger is not)
#: before a silent drop is concluded, when the server was not reached: one lost ICMP (routers
#: rate-limit them) must not look like a censor.
DROP_EVIDENCE = 2


def _answered(p: TraceProbe) -> bool:
    """The probe drew an answer from the path: a router's ICMP or the server's response."""
    return p.router is not None or p.outcome == "response"


def locate(probes: Sequence[TraceProbe]) -> Location:
    """Where the trigger's fate parts from the control's (pure; see the module docstring).

    Reaction: the first TTL at which the trigger draws a RST/FIN the control does not, or a
    response before the control's server hop (an injected answer). Silent
    drop: past the last TTL at which anything answered the trigger, the first TTL at which the
    control is answered; concluded only when every trigger from there on drew nothing at all,
    and the control reached the server past the link or was answered at
    :data:`DROP_EVIDENCE` TTLs there.
    """
    by = {(p.ttl, p.probe): p for p in probes}
    ttls = sorted(t for t in {p.ttl for p in probes} if (t, "trigger") in by and (t, "control") in by)
    server_hop = next((t for t in ttls if by[(t, "control")].outcome == "response"), None)

    def trig(t: int) -> TraceProbe:
        return by[(t, "trigger")]

    def ctl(t: int) -> TraceProbe:
        return by[(t, "control")]

    technique: str | None = None
    far: int | None = None
    for t in ttls:
        if trig(t).outcome in _REACTIONS and ctl(t).outcome not in _REACTIONS:
            technique, far = trig(t).outcome, t
            break
        if trig(t).outcome == "response" and server_hop is not None and t < server_hop:
            technique, far = "response", t  # answered before the server: injected (a block page)
            break
    if far is None:
        # Anything but plain silence (an ICMP, a response, a reset, a failed connect) is a sign
        # the trigger got that far, or that this TTL says nothing: the drop lies past it.
        alive = [t for t in ttls if trig(t).router is not None or trig(t).outcome != "silent"]
        last = max(alive, default=0)
        far = next((t for t in ttls if t > last and _answered(ctl(t))), None)
        if far is None:
            return Location(None, None, None, None, server_hop)
        evidence = [t for t in ttls if t >= far and _answered(ctl(t))]
        reached = server_hop is not None and server_hop >= far
        if not reached and len(evidence) < DROP_EVIDENCE:
            return Location(None, None, None, None, server_hop)
        technique = "drop"
    near = max((t for t in ttls if t < far and trig(t).router is not None), default=0)
    far_is_server = server_hop is not None and far >= server_hop
    # At the server, nothing quotes: the far end is the traced address itself.
    far_router = ctl(far).router or trig(far).router
    link = TraceLink(near, trig(near).router if near else None, far, far_router, far_is_server)
    if near == 0 or far_is_server:
        return Location(technique, link, None, None, server_hop)
    if technique == "drop":
        return Location(technique, link, far, "in-path", server_hop)
    # Past the link (and at it), did the trigger still draw what the control drew?
    beyond = [t for t in ttls if t >= far and _answered(ctl(t))]
    if not beyond:
        return Location(technique, link, far, None, server_hop)
    if technique == "response":  # the injected answers themselves say nothing of the original
        on = any(trig(t).router is not None for t in beyond)
    else:
        on = any(_answered(trig(t)) for t in beyond)
    return Location(technique, link, far, "on-path" if on else "in-path", server_hop)


async def trace(url: str, host: str, ip: str, port: int, kind: str, control_name: str, *,
                max_ttl: int = 16, wait: float = 1.0, grace: float = 0.2,
                connect_timeout: float = 3.0) -> Trace:  # fmt: skip
    """Trace ``host`` (HTTP Host or TLS SNI, by ``kind``) to ``ip:port`` (see the module doc)."""
    from scapy.layers import inet  # noqa: F401  # imported before the first ICMP arrives

    icmp_sock = _icmp_socket()
    listener = _IcmpListener(icmp_sock)
    make = http_request if kind == "http" else client_hello
    trigger, control = make(host), make(control_name)
    started, t0 = time.time(), time.monotonic()
    probes: list[TraceProbe] = []
    try:
        for ttl in range(1, max_ttl + 1):
            pair = await asyncio.gather(
                _probe(ip, port, ttl, trigger, "trigger", wait, grace, listener, connect_timeout),
                _probe(ip, port, ttl, control, "control", wait, grace, listener, connect_timeout),
            )
            probes.extend(pair)
            if pair[1].outcome in ("response", "connect-failed"):
                break  # the control reached the server (or nothing can be measured)
            if pair[1].outcome in _REACTIONS and len(probes) >= 4 and probes[-3].outcome in _REACTIONS:
                break  # the control itself is cut at two TTLs running: more TTLs tell nothing
    finally:
        listener.close()
        icmp_sock.close()
    where = locate(probes)
    return Trace(url, host, control_name, kind, ip, port, started, time.monotonic() - t0,
                 tuple(probes), where.censor_hop, where.placement, where.server_hop,
                 sum(p.sent for p in probes), where.technique, where.link)  # fmt: skip
