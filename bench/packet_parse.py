"""scapy against the hand-written parsers of probe's packet code, on the same packets, one run.

    .venv/bin/python -m bench.packet_parse [--n 20000] [--repeat 3]

Three jobs, each timed for both ways on the same bytes, alternating (hand, scapy, hand, ...)
so that a change in the machine's load does not favour one side; the median of the repeats:

* **capture hot path** (probe/measure/capture.py ``parse_packet``): every packet the kernel
  passes up to the capture thread (a mix as one HTTPS fetch brings: SYN-ACK, ACKs, data
  segments cut at the snap length, FIN, RST, DNS replies) becomes a ``Packet`` record. scapy
  way: ``IP(data)`` and the same fields read from its layers.
* **pcap record** (probe/measure/pcap.py ``sanitize``, by hand with slices): per *kept*
  packet, headers only, addresses rewritten, checksums fixed. scapy way: dissect, set the
  fields, rebuild; the same bytes out. (scapy writes the file either way.)
* **ICMP quote** (probe/measure/trace.py ``parse_time_exceeded``, scapy), against a struct
  parse of the same time-exceeded messages: a trace reads a few dozen of them.

Offline: no packet is sent. Prints a table and one JSON line; see docs/bench.md.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import socket
import statistics
import struct
import time
from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["main"]

LOCAL, SERVER, RESOLVER = "10.66.1.2", "10.66.2.20", "10.66.2.53"


def _mix() -> list[bytes]:
    """What the capture thread reads for one HTTPS fetch with its two DNS queries."""
    from scapy.layers.inet import IP, TCP, UDP

    def tcp(flags: str, payload: int = 0, seq: int = 1) -> bytes:
        pkt = (IP(src=SERVER, dst=LOCAL, ttl=60, flags="DF")
               / TCP(sport=443, dport=40312, flags=flags, seq=seq, ack=518, window=501,
                     options=[("NOP", None), ("NOP", None), ("Timestamp", (1, 2))])
               / (b"\x17" * payload))  # fmt: skip
        return bytes(pkt)[:120]  # the capture's TCP snap length

    def dns_reply(qtype: int, answer: bytes) -> bytes:
        body = (struct.pack("!HHHHHH", 4711, 0x8180, 1, 1, 0, 0) + b"\x04news\x07example\x03com\x00"
                + struct.pack("!HH", qtype, 1) + b"\xc0\x0c" + struct.pack("!HHIH", qtype, 1, 60, len(answer))
                + answer)  # fmt: skip
        return bytes(IP(src=RESOLVER, dst=LOCAL, ttl=61) / UDP(sport=53, dport=5353) / body)

    return [
        dns_reply(1, socket.inet_aton(SERVER)), dns_reply(28, bytes(16)),
        tcp("SA"), *[tcp("A", 1400, 1 + i * 1400) for i in range(8)], tcp("PA", 600),
        tcp("A"), tcp("A"), tcp("FA"), tcp("R"),
    ]


def _scapy_record(data: bytes, mine: set[str]) -> bytes:
    """A pcap record (headers only, addresses rewritten, checksums fixed) the scapy way:
    dissect, set the fields, let scapy rebuild the header checksum; probe's sanitize does it by
    hand. The TCP/UDP checksum is updated as sanitize does (RFC 1624): neither can recompute
    it over a payload the record drops."""
    from scapy.layers.inet import IP, TCP, UDP

    from probe.measure.pcap import PLACEHOLDER, _adjust

    pkt = IP(data)
    l4 = pkt.getlayer(TCP) or pkt.getlayer(UDP)
    old = data[12:20]
    if pkt.src in mine or pkt.src == pkt.dst:
        pkt.src = PLACEHOLDER
    pkt.dst = PLACEHOLDER
    del pkt.chksum
    l4.remove_payload()
    new = ipaddress.IPv4Address(pkt.src).packed + ipaddress.IPv4Address(PLACEHOLDER).packed
    l4.chksum = _adjust(int(l4.chksum), old, new)
    return bytes(pkt)


def _hand_icmp(data: bytes) -> tuple[str, int, str, int] | None:
    """The struct parse of an ICMP time exceeded that trace.py used before scapy."""
    ihl = (data[0] & 0x0F) * 4
    if len(data) < ihl + 8 + 20 + 4 or data[ihl] != 11:
        return None
    inner = data[ihl + 8 :]
    iihl = (inner[0] & 0x0F) * 4
    if inner[9] != socket.IPPROTO_TCP or len(inner) < iihl + 4:
        return None
    sport, dport = struct.unpack_from("!HH", inner, iihl)
    return socket.inet_ntoa(data[12:16]), sport, socket.inet_ntoa(inner[16:20]), dport


def _scapy_parse(data: bytes, t: float) -> Any:
    """The capture's record built from scapy's dissection (what parse_packet returns)."""
    from scapy.layers.inet import IP, TCP, UDP

    from probe.core.model import Packet, packet_digest

    pkt = IP(data)
    df = bool(pkt.flags.DF)
    if pkt.haslayer(TCP):
        tcp = pkt[TCP]
        payload = max(0, pkt.len - pkt.ihl * 4 - tcp.dataofs * 4)
        return Packet(t, "tcp", pkt.src, tcp.sport, tcp.dport, pkt.ttl, pkt.id, df, str(tcp.flags),
                      tcp.window, tcp.seq, tcp.ack, payload=payload)  # fmt: skip
    udp = pkt[UDP]
    body = bytes(udp.payload)
    return Packet(t, "udp", pkt.src, udp.sport, udp.dport, pkt.ttl, pkt.id, df,
                  payload=max(0, udp.len - 8), digest=packet_digest(body))  # fmt: skip


def _per_item(fn: Callable[[bytes], object], items: Sequence[bytes], n: int) -> float:
    """Microseconds per call of ``fn`` over ``n`` calls cycling through ``items``."""
    k = len(items)
    t0 = time.perf_counter()
    for i in range(n):
        fn(items[i % k])
    return (time.perf_counter() - t0) / n * 1e6


def _pair(hand: Callable[[bytes], object], lib: Callable[[bytes], object], items: Sequence[bytes],
          n: int, repeat: int) -> tuple[float, float]:  # fmt: skip
    """Median microseconds per item, (hand, scapy), timed alternately in one run."""
    hs, ss = [], []
    for _ in range(repeat):
        hs.append(_per_item(hand, items, n))
        ss.append(_per_item(lib, items, max(1, n // 20)))  # scapy is slow: fewer calls, same mix
    return statistics.median(hs), statistics.median(ss)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.packet_parse", description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=20_000, help="hand-written calls per timing")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args(argv)

    from scapy.layers.inet import ICMP, IP, TCP

    from probe.measure.capture import parse_packet
    from probe.measure.pcap import sanitize
    from probe.measure.trace import parse_time_exceeded

    mix = _mix()
    # Both ways must give the same record: the comparison is of equal work.
    for data in mix:
        parsed = parse_packet(data, 1.0)
        assert parsed is not None and parsed[1] == _scapy_parse(data, 1.0), data
    kept = [mix[0], mix[2], mix[3], mix[-2], mix[-1]]  # DNS, SYN-ACK, first data, FIN, RST
    quoted = bytes(IP(src=LOCAL, dst=SERVER, ttl=1) / TCP(sport=40312, dport=443, flags="PA")
                   / (b"\x16" * 200))  # fmt: skip
    icmp = [bytes(IP(src=f"10.66.{i}.1", dst=LOCAL) / ICMP(type=11) / quoted) for i in range(1, 6)]
    for data in icmp:
        q = parse_time_exceeded(data)
        assert q is not None and (q.router, q.sport, q.dst, q.dport) == _hand_icmp(data)

    hot = _pair(lambda d: parse_packet(d, 1.0), lambda d: _scapy_parse(d, 1.0), mix, args.n,
                args.repeat)
    for data in kept:  # headers only both ways (the DNS payload aside): the same bytes out
        assert _scapy_record(data, {LOCAL}) == (sanitize(data, {LOCAL}, dns=False) or (b"",))[0], data
    record = _pair(lambda d: sanitize(d, {LOCAL}, dns=False), lambda d: _scapy_record(d, {LOCAL}),
                   kept, args.n, args.repeat)
    quote = _pair(_hand_icmp, parse_time_exceeded, icmp, args.n, args.repeat)
    rows = {"capture hot path (per packet seen)": hot, "pcap record (per packet kept)": record,
            "ICMP quote (per time exceeded)": quote}
    print(f"{'job':<38} {'hand us':>9} {'scapy us':>9} {'ratio':>7} {'scapy pkts/s':>13}")
    out: dict[str, Any] = {"n": args.n, "repeat": args.repeat, "mix": len(mix)}
    for name, (hand, lib) in rows.items():
        print(f"{name:<38} {hand:>9.2f} {lib:>9.1f} {lib / hand:>6.0f}x {1e6 / lib:>13,.0f}")
        out[name] = {"hand_us": round(hand, 3), "scapy_us": round(lib, 1), "ratio": round(lib / hand, 1)}
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
