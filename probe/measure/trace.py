"""``probe trace``: where on the path does the censor sit? (TTL-limited triggers, after CenTrace)

For each TTL from 1 up, two fresh TCP connections are opened to the same address (normal TTL
for the handshake); then the IP TTL of each socket is lowered to ``ttl`` and one packet is
sent on each: the *trigger* (an HTTP request with the tested Host, or a TLS ClientHello with the
tested SNI) and the *control* (the same with a harmless name). A router where the TTL runs out
answers with ICMP time exceeded (read from a raw ICMP socket and matched to the flow by the
quoted headers); a censor that sees the trigger reacts (RST, FIN, a block page); the server
answers once the TTL reaches it.

* The **censor hop** is the first TTL at which the trigger gets a reaction the control does not.
  A device acting inside router N's forwarding path reacts from TTL N + 1 (at TTL N the router
  drops the packet before forwarding it); a tap on the link into router N reacts from TTL N.
* **On-path** (a tap that injects): beyond the censor hop, the trigger still draws ICMP time
  exceeded from the routers behind the censor, or the server's answer: the original went on.
  **In-path** (a box that drops): beyond the censor hop the trigger draws nothing from them,
  while the control does.

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
from dataclasses import dataclass

from probe.core.errors import ProbeError

__all__ = ["Trace", "TraceProbe", "TraceUnavailable", "client_hello", "http_request", "trace"]

_TCP_INFO_TOTAL_RETRANS = 100  # offset of tcpi_total_retrans in struct tcp_info (Linux)


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
    censor_hop: int | None
    placement: str | None  # "on-path", "in-path", or None
    server_hop: int | None  # the TTL at which the control reached the server
    packets_sent: int


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


def _parse_time_exceeded(data: bytes) -> tuple[str, int, str, int] | None:
    """(router, quoted source port, quoted destination, quoted destination port) or None."""
    if len(data) < 20:
        return None
    ihl = (data[0] & 0x0F) * 4
    if len(data) < ihl + 8 + 20 + 4 or data[ihl] != 11:  # ICMP type 11: time exceeded
        return None
    router = socket.inet_ntoa(data[12:16])
    inner = data[ihl + 8 :]
    iihl = (inner[0] & 0x0F) * 4
    if inner[9] != socket.IPPROTO_TCP or len(inner) < iihl + 4:
        return None
    sport, dport = struct.unpack_from("!HH", inner, iihl)
    return router, sport, socket.inet_ntoa(inner[16:20]), dport


class _IcmpListener:
    """Routes ICMP time exceeded messages to the probe whose flow they quote."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.waiters: dict[int, asyncio.Future[str]] = {}
        asyncio.get_running_loop().add_reader(sock.fileno(), self._read)

    def _read(self) -> None:
        while True:
            try:
                data = self.sock.recv(2048)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            parsed = _parse_time_exceeded(data)
            if parsed is None:
                continue
            fut = self.waiters.get(parsed[1])
            if fut is not None and not fut.done():
                fut.set_result(parsed[0])

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
        local_port = sock.getsockname()[1]
        router_fut: asyncio.Future[str] = loop.create_future()
        icmp.waiters[local_port] = router_fut
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
        icmp.waiters.pop(local_port, None)
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
    except ConnectionResetError:
        return "rst"
    except OSError:
        return "rst"
    return "response" if data else "fin"


def _retransmissions(sock: socket.socket) -> int:
    try:
        info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 104)
        return int(struct.unpack_from("I", info, _TCP_INFO_TOTAL_RETRANS)[0])
    except (OSError, struct.error):
        return 0


def _locate(probes: list[TraceProbe]) -> tuple[int | None, str | None, int | None]:
    by = {(p.ttl, p.probe): p for p in probes}
    ttls = sorted({p.ttl for p in probes})
    server_hop = next((t for t in ttls if by[(t, "control")].outcome == "response"), None)
    censor = None
    for t in ttls:
        trig, ctl = by[(t, "trigger")], by[(t, "control")]
        if trig.outcome in ("rst", "fin") and ctl.outcome not in ("rst", "fin"):
            censor = t
            break
        if server_hop is not None and t >= server_hop and trig.outcome != "response":
            censor = t  # a silent drop: the first TTL where the trigger misses what the control gets
            break
    if censor is None:
        return None, None, server_hop
    beyond = [t for t in ttls if t > censor and by[(t, "control")].router is not None]
    if beyond:
        on = any(by[(t, "trigger")].router is not None for t in beyond)
    else:
        on = any(by[(t, "trigger")].outcome == "response" for t in ttls if t >= censor)
    return censor, "on-path" if on else "in-path", server_hop


async def trace(url: str, host: str, ip: str, port: int, kind: str, control_name: str, *,
                max_ttl: int = 16, wait: float = 1.0, grace: float = 0.2,
                connect_timeout: float = 3.0) -> Trace:  # fmt: skip
    """Trace ``host`` (HTTP Host or TLS SNI, by ``kind``) to ``ip:port`` (see the module doc)."""
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
    finally:
        listener.close()
        icmp_sock.close()
    censor, placement, server_hop = _locate(probes)
    return Trace(url, host, control_name, kind, ip, port, started, time.monotonic() - t0,
                 tuple(probes), censor, placement, server_hop, sum(p.sent for p in probes))  # fmt: skip
