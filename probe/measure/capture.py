"""Packet capture of the probe's own flows (``probe run --capture``), off the event loop.

One ``AF_PACKET`` socket (IPv4, cooked: frames start at the IP header) is read by one thread.
A classic BPF program attached to it (``SO_ATTACH_FILTER``) lets the kernel pass only
*incoming* TCP and UDP packets whose destination port is a local port of a flow the probe is
measuring right now; everything else is dropped in the kernel and never reaches Python. The
program is rebuilt whenever the set of ports changes (a few microseconds per flow). In the
thread, a packet is kept only when its whole 4-tuple belongs to a registered flow, so a packet
of another process's flow can never be recorded even if it shared a port number.

To know the local port before the first packet, a TCP socket is bound before it connects and a
UDP query's socket is registered before the query is sent (:func:`watch`). The measurement that
owns a flow is the one whose task registered it: :func:`begin` puts a sink in a context
variable, which the tasks a measurement starts inherit.

What is kept per flow: the SYN-ACK, every RST and FIN, the first :data:`DATA_PACKETS` packets
carrying data, and every UDP datagram that answers the flow's DNS query (its id, QR set, its one
question: what :func:`probe.measure.dns` accepts as a reply; anything else the resolver's
address sends is junk and never kept, so it can never pose as a reply or as injection
evidence, nor crowd the genuine reply out of the flow's cap); at most :data:`FLOW_CAP` packets per flow
and :data:`SINK_CAP` per measurement, so memory stays bounded whatever a peer sends. With
``pcap`` the same packets are also written to a pcap file (:mod:`probe.measure.pcap`: headers
and DNS payloads only, the probe's addresses rewritten).

Capture needs root or CAP_NET_RAW; :meth:`Capture.open` raises :class:`CaptureUnavailable`
otherwise. IPv6 flows are measured but not captured.
"""

from __future__ import annotations

import asyncio
import contextvars
import ctypes
import os
import select
import socket
import struct
import threading
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from probe.core.errors import ProbeError
from probe.core.model import Packet, packet_digest

if TYPE_CHECKING:
    from probe.measure.pcap import PcapFile  # imports scapy: only when a pcap is written

__all__ = [
    "Capture",
    "CaptureUnavailable",
    "Sink",
    "active",
    "answers_query",
    "begin",
    "bpf_program",
    "current",
    "finish",
    "parse_packet",
    "set_active",
    "watch",
]

#: Data-carrying packets kept per TCP flow (the response's first packets give the server's
#: TTL and IP ID pattern; the rest of a body adds nothing).
DATA_PACKETS = 4
#: Packets kept per flow and per measurement, whatever the peer sends.
FLOW_CAP = 32
SINK_CAP = 256
#: Bytes the kernel copies per packet: headers for TCP, whole datagrams (DNS) for UDP.
TCP_SNAP = 120
UDP_SNAP = 4096
#: The kernel accepts BPF programs of at most 4096 instructions: two per port, plus a header.
MAX_PORTS = 2000

_ETH_P_IP = 0x0800
_SO_ATTACH_FILTER = 26
_SO_TIMESTAMPNS = 35
_PACKET_OUTGOING = 4
_SKF_AD_PKTTYPE = 0xFFFFF000 + 4  # SKF_AD_OFF + SKF_AD_PKTTYPE, as an unsigned 32-bit k

# cBPF opcodes (linux/filter.h).
_LD_W_ABS, _LD_H_ABS, _LD_B_ABS, _LD_H_IND = 0x20, 0x28, 0x30, 0x48
_LDX_B_MSH, _JA, _JEQ, _JSET, _RET = 0xB1, 0x05, 0x15, 0x45, 0x06

_TCP_FLAGS = "FSRPAUEC"


class CaptureUnavailable(ProbeError, RuntimeError):
    """Capture cannot run here (no root or CAP_NET_RAW, no AF_PACKET)."""


def _ins(code: int, jt: int = 0, jf: int = 0, k: int = 0) -> tuple[int, int, int, int]:
    return (code, jt, jf, k)


def _port_block(ports: Iterable[int], snap: int) -> list[tuple[int, int, int, int]]:
    block = [
        _ins(_LD_H_ABS, k=6),
        _ins(_JSET, 0, 1, 0x1FFF),  # a later fragment carries no transport header
        _ins(_RET, k=0),
        _ins(_LDX_B_MSH, k=0),  # X = IP header length
        _ins(_LD_H_IND, k=2),  # the destination port: the probe's local port
    ]
    for p in sorted(ports):
        block += [_ins(_JEQ, 0, 1, p), _ins(_RET, k=snap)]
    block.append(_ins(_RET, k=0))
    return block


def bpf_program(tcp_ports: Iterable[int], udp_ports: Iterable[int]) -> list[tuple[int, int, int, int]]:
    """The classic BPF program passing incoming IPv4 TCP/UDP packets to the given local ports.

    Frames start at the IP header (a cooked ``AF_PACKET`` socket). Each port costs two
    instructions (``jeq``, ``ret``), so every jump is short; the program rejects by default.
    """
    tcp = _port_block(tcp_ports, TCP_SNAP)
    udp = _port_block(udp_ports, UDP_SNAP)
    head = [
        _ins(_LD_W_ABS, k=_SKF_AD_PKTTYPE),
        _ins(_JEQ, 0, 1, _PACKET_OUTGOING),
        _ins(_RET, k=0),  # our own outgoing packets
        _ins(_LD_B_ABS, k=9),  # IP protocol
        _ins(_JEQ, 0, 1, socket.IPPROTO_TCP),
        _ins(_JA, k=3),  # -> tcp block
        _ins(_JEQ, 0, 1, socket.IPPROTO_UDP),
        _ins(_JA, k=1 + len(tcp)),  # -> udp block
        _ins(_RET, k=0),
    ]
    return head + tcp + udp


def _flags(bits: int) -> str:
    return "".join(c for i, c in enumerate(_TCP_FLAGS) if bits & (1 << i))


def parse_packet(data: bytes, t: float) -> tuple[tuple[str, int, str, int], Packet, bytes] | None:
    """Parse an IPv4 TCP/UDP packet: (flow key, metadata, UDP payload), or None when it is not one.

    The key is (proto, local port, remote address, remote port); ``seq_rel``/``ack_rel`` are
    left to the flow (they need its SYN-ACK). Pure: the unit tests feed it recorded packets.
    """
    # Hand-written with struct, not scapy: this runs for every packet the kernel passes up
    # (every segment of every body, and any flood aimed at a query's port), and scapy builds
    # the same record 32-40x slower (bench/packet_parse.py, docs/bench.md: ~3,800 packets/s
    # on one loaded core, where a 20,000 packets/s junk flood must not stall the thread).
    # scapy does the rest of probe's packet work: the pcap file (measure/pcap.py) and trace's
    # ICMP quotes (measure/trace.py), a few packets per measurement or per trace.
    if len(data) < 20 or data[0] >> 4 != 4:
        return None
    ihl = (data[0] & 0x0F) * 4
    ip_id, frag = struct.unpack_from("!HH", data, 4)
    ttl, proto = data[8], data[9]
    src = socket.inet_ntoa(data[12:16])
    df = bool(frag & 0x4000)
    total = struct.unpack_from("!H", data, 2)[0]
    if proto == socket.IPPROTO_TCP and len(data) >= ihl + 20:
        sport, dport, seq, ack, off_flags, window = struct.unpack_from("!HHIIHH", data, ihl)
        doff = (off_flags >> 12) * 4
        payload = max(0, total - ihl - doff)
        pkt = Packet(t, "tcp", src, sport, dport, ttl, ip_id, df, _flags(off_flags & 0xFF), window,
                     seq, ack, payload=payload)  # fmt: skip
        return ("tcp", dport, src, sport), pkt, b""
    if proto == socket.IPPROTO_UDP and len(data) >= ihl + 8:
        sport, dport, length = struct.unpack_from("!HHH", data, ihl)
        body = data[ihl + 8 : ihl + length] if length >= 8 else b""
        digest = packet_digest(body)
        pkt = Packet(t, "udp", src, sport, dport, ttl, ip_id, df, payload=max(0, length - 8),
                     digest=digest)  # fmt: skip
        return ("udp", dport, src, sport), pkt, body
    return None


class Sink:
    """The packets of one measurement's flows."""

    __slots__ = ("dropped", "flows", "packets")

    def __init__(self) -> None:
        self.packets: list[Packet] = []
        self.flows: dict[tuple[str, int, str, int], _Flow] = {}
        self.dropped = 0  # flows not captured (port table full, IPv6)


def answers_query(body: bytes, query: bytes) -> bool:
    """True when the UDP payload ``body`` is a DNS reply to ``query`` (a query's wire form).

    The header and question test :mod:`probe.measure.dns` applies before a datagram may count
    as a reply: our id, QR set, exactly one question, and that question (the name compared
    case-insensitively, the type and class exactly). On raw bytes, without parsing the
    answers: a flood costs little.
    """
    end = len(query)
    name = end - 4  # the question's name, then its type and class
    if len(body) < end or body[:2] != query[:2] or not body[2] & 0x80 or body[4:6] != b"\0\1":
        return False
    return body[12:name].lower() == query[12:name].lower() and body[name:end] == query[name:]


class _Flow:
    __slots__ = ("data", "kept", "query", "server_isn", "sink", "syn_ack")

    def __init__(self, sink: Sink, query: bytes | None = None) -> None:
        self.sink = sink
        self.kept = 0
        self.data = 0
        self.query = query  # UDP: the DNS query sent on this flow (only its replies are kept)
        self.server_isn: int | None = None
        self.syn_ack: int | None = None  # the ack of the SYN-ACK: our ISN + 1

    def keep(self, pkt: Packet, body: bytes = b"") -> Packet | None:
        """The packet as stored (with its flow-relative seq/ack), or None when not kept.

        A datagram on a DNS flow is kept only when it answers the flow's query (see
        :func:`answers_query`); the others are junk (the query's own record keeps a few).
        """
        if pkt.proto == "udp" and self.query is not None and not answers_query(body, self.query):
            return None
        if pkt.proto == "tcp":
            if "S" in pkt.flags and "A" in pkt.flags and pkt.seq is not None:
                self.server_isn, self.syn_ack = pkt.seq, pkt.ack
            interesting = any(f in pkt.flags for f in "SRF")
            if not interesting:
                if pkt.payload == 0 or self.data >= DATA_PACKETS:
                    return None
                self.data += 1
            if self.server_isn is not None and pkt.seq is not None and pkt.ack is not None:
                seq_rel = (pkt.seq - self.server_isn) & 0xFFFFFFFF
                ack_rel = ((pkt.ack - (self.syn_ack or 0)) & 0xFFFFFFFF) if "A" in pkt.flags else None
                pkt = Packet(pkt.t, pkt.proto, pkt.src, pkt.sport, pkt.dport, pkt.ttl, pkt.ip_id,
                             pkt.df, pkt.flags, pkt.window, pkt.seq, pkt.ack, _signed(seq_rel),
                             None if ack_rel is None else _signed(ack_rel), pkt.payload)  # fmt: skip
        if self.kept >= FLOW_CAP or len(self.sink.packets) >= SINK_CAP:
            return None
        self.kept += 1
        self.sink.packets.append(pkt)
        return pkt


def _signed(v: int) -> int:
    """A 32-bit sequence difference as a signed number (a forged RST may sit before the ISN)."""
    return v - (1 << 32) if v >= 1 << 31 else v


_SINK: contextvars.ContextVar[Sink | None] = contextvars.ContextVar("probe_capture_sink", default=None)
_ACTIVE: Capture | None = None


def set_active(cap: Capture | None) -> None:
    """Make ``cap`` the capture every measurement of this process uses (None: no capture)."""
    global _ACTIVE
    _ACTIVE = cap


def active() -> Capture | None:
    """The running capture, or None."""
    return _ACTIVE


def current() -> Sink | None:
    """The sink of the measurement the calling task belongs to (None without capture)."""
    return _SINK.get() if _ACTIVE is not None else None


def begin() -> tuple[Sink, contextvars.Token[Sink | None]] | None:
    """Start collecting for the measurement of the calling task; None without capture."""
    if _ACTIVE is None:
        return None
    sink = Sink()
    return sink, _SINK.set(sink)


async def finish(started: tuple[Sink, contextvars.Token[Sink | None]] | None) -> tuple[Packet, ...]:
    """Every packet of the measurement's flows that arrived so far, in arrival order."""
    if started is None:
        return ()
    sink, token = started
    try:
        _SINK.reset(token)
    except ValueError:  # reset from another context: nothing to undo there
        pass
    cap = _ACTIVE
    if cap is None:
        return tuple(sink.packets)
    await cap.sync()
    cap.forget(sink)
    return tuple(sorted(sink.packets, key=lambda p: p.t))


def watch(proto: str, local: tuple[str, int], remote: tuple[str, int],
          query: bytes | None = None) -> None:  # fmt: skip
    """Register a flow of the current measurement (before its first packet is sent).

    ``query``: for a UDP flow, the DNS query about to be sent on it; only datagrams that answer
    it are kept (:func:`answers_query`).
    """
    sink = current()
    cap = _ACTIVE
    if sink is None or cap is None:
        return
    if ":" in remote[0] or ":" in local[0]:
        sink.dropped += 1  # IPv6: not captured
        return
    cap.register(sink, (proto, local[1], remote[0], remote[1]), query)


class Capture:
    """The capture socket, its filter and its reader thread (see the module docstring)."""

    def __init__(self, sock: socket.socket, pcap: PcapFile | None = None) -> None:
        self._sock = sock
        self._flows: dict[tuple[str, int, str, int], _Flow] = {}
        self._ports: dict[tuple[str, int], int] = {}
        self._prog: Any = None  # the ctypes buffer the kernel copied; kept for clarity
        self._lock = threading.Lock()
        self._pending: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = []
        self._wake_r, self._wake_w = os.pipe()
        self._stop = False
        self._thread: threading.Thread | None = None
        self._pcap = pcap
        self.packets_seen = 0  # packets the kernel passed up (ours by port)
        self.packets_kept = 0
        self.refused = 0  # flows not captured because the port table was full
        self.errors = 0  # packets whose handling raised (skipped; capture goes on)

    @classmethod
    def open(cls, pcap: PcapFile | None = None) -> Capture:
        """Open the capture socket with a reject-everything filter and start the thread.

        ``pcap``: where the packets kept are also written (sanitized, see
        :mod:`probe.measure.pcap`); closed with the capture.
        """
        try:
            sock = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(_ETH_P_IP))
        except (PermissionError, OSError, AttributeError) as exc:
            raise CaptureUnavailable(
                f"packet capture needs root or CAP_NET_RAW ({exc.__class__.__name__}: {exc})"
            ) from None
        cap = cls(sock, pcap)
        try:
            cap._attach()
            # Anything that arrived before the filter was attached is discarded unread.
            sock.setblocking(False)
            while True:
                try:
                    sock.recv(1)
                except BlockingIOError:
                    break
            sock.setsockopt(socket.SOL_SOCKET, _SO_TIMESTAMPNS, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        except OSError as exc:
            cap.close()
            raise CaptureUnavailable(f"cannot set up packet capture: {exc}") from None
        cap._thread = threading.Thread(target=cap._reader, name="probe-capture", daemon=True)
        cap._thread.start()
        return cap

    # -- the filter ------------------------------------------------------------------------
    def _attach(self) -> None:
        tcp = [p for (proto, p) in self._ports if proto == "tcp"]
        udp = [p for (proto, p) in self._ports if proto == "udp"]
        prog = bpf_program(tcp, udp)
        buf = ctypes.create_string_buffer(b"".join(struct.pack("HBBI", *i) for i in prog))
        fprog = struct.pack("@HP", len(prog), ctypes.addressof(buf))
        self._sock.setsockopt(socket.SOL_SOCKET, _SO_ATTACH_FILTER, fprog)
        self._prog = buf

    def register(self, sink: Sink, key: tuple[str, int, str, int], query: bytes | None = None) -> None:
        """Capture flow ``key`` for ``sink`` from now on (``query``: see :func:`watch`)."""
        port = (key[0], key[1])
        if port not in self._ports and len(self._ports) >= MAX_PORTS:
            self.refused += 1
            sink.dropped += 1
            return
        flow = _Flow(sink, query)
        sink.flows[key] = flow
        self._flows[key] = flow
        n = self._ports.get(port, 0)
        self._ports[port] = n + 1
        if n == 0:
            self._attach()

    def forget(self, sink: Sink) -> None:
        """Stop capturing the flows of ``sink`` (its measurement is over)."""
        changed = False
        for key in sink.flows:
            if self._flows.get(key) is sink.flows[key]:
                del self._flows[key]
            port = (key[0], key[1])
            n = self._ports.get(port, 0) - 1
            if n <= 0:
                self._ports.pop(port, None)
                changed = True
            else:
                self._ports[port] = n
        sink.flows = {}
        if changed:
            self._attach()

    # -- the thread ------------------------------------------------------------------------
    async def sync(self) -> None:
        """Return once every packet the kernel queued before this call has been processed."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()
        with self._lock:
            self._pending.append((loop, fut))
        os.write(self._wake_w, b"x")
        await fut

    def _reader(self) -> None:
        sock = self._sock
        fd = sock.fileno()
        while not self._stop:
            try:
                ready, _, _ = select.select([fd, self._wake_r], [], [], 1.0)
            except (OSError, ValueError):
                return
            woken = self._wake_r in ready
            if woken:
                try:
                    os.read(self._wake_r, 4096)
                except OSError:
                    pass
            # Drain the socket before answering sync requests: all they wait for is in it.
            while not self._stop:
                try:
                    data, anc, _, _ = sock.recvmsg(UDP_SNAP, 64)
                except BlockingIOError:
                    break
                except OSError:
                    return
                try:
                    self._handle(data, anc)
                except Exception:  # one odd packet must not end capture: sync() waits on us
                    self.errors += 1
            if woken:
                with self._lock:
                    pending, self._pending = self._pending, []
                for loop, fut in pending:
                    try:
                        loop.call_soon_threadsafe(_resolve, fut)
                    except RuntimeError:  # the loop is closed
                        pass

    def _handle(self, data: bytes, anc: list[tuple[int, int, bytes]]) -> None:
        t = None
        for level, kind, value in anc:
            if level == socket.SOL_SOCKET and kind == _SO_TIMESTAMPNS and len(value) >= 16:
                sec, nsec = struct.unpack_from("@qq", value)
                t = sec + nsec / 1e9
        if t is None:
            import time

            t = time.time()
        self.packets_seen += 1
        parsed = parse_packet(data, t)
        if parsed is None:
            return
        key, pkt, body = parsed
        flow = self._flows.get(key)
        if flow is None:
            return  # a packet to our port from someone else: not the probe's flow
        kept = flow.keep(pkt, body)
        if kept is None:
            return
        self.packets_kept += 1
        if self._pcap is not None:
            self._pcap.write(data, t, dns=flow.query is not None)

    def close(self) -> None:
        """Stop the thread, close the socket and the pcap file."""
        self._stop = True
        try:
            os.write(self._wake_w, b"x")
        except OSError:
            pass
        if self._thread is not None:
            self._thread.join(timeout=5)
        for fd in (self._wake_r, self._wake_w):
            try:
                os.close(fd)
            except OSError:
                pass
        self._sock.close()
        if self._pcap is not None:
            self._pcap.close()
        with self._lock:
            pending, self._pending = self._pending, []
        for loop, fut in pending:
            try:
                loop.call_soon_threadsafe(_resolve, fut)
            except RuntimeError:
                pass


def _resolve(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)
