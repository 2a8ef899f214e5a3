"""Packet capture of the probe's own flows, on loopback (needs root or CAP_NET_RAW)."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import dns.message
import dns.rdatatype
import dns.rrset
import pytest
from observe_helpers import config, target
from servers import LoopbackNet, zone_handler

from probe.core.model import Measurement, packet_digest
from probe.judge.classify import classify
from probe.measure import capture
from probe.measure.engine import measure
from probe.measure.pcap import PLACEHOLDER, PcapFile, new_pcap_path


@pytest.fixture
def cap(tmp_path: Path) -> Iterator[capture.Capture]:
    path, f = new_pcap_path(tmp_path, 1)
    assert path == tmp_path / "run-1.pcap"
    try:
        c = capture.Capture.open(PcapFile(f))
    except capture.CaptureUnavailable as exc:
        pytest.skip(str(exc))
    capture.set_active(c)
    try:
        yield c
    finally:
        capture.set_active(None)
        c.close()


def _measure(url: str, net: LoopbackNet) -> Measurement:
    return asyncio.run(measure(target(url), config(net)))


def test_capture_records_syn_ack_data_and_dns_replies(loopback_net: LoopbackNet,
                                                      cap: capture.Capture) -> None:
    m = _measure(loopback_net.url("ok.test"), loopback_net)
    assert m.captured
    tcp = [p for p in m.packets if p.proto == "tcp"]
    syn_ack = next(p for p in tcp if p.flags == "SA")
    assert syn_ack.src == loopback_net.web_ip and syn_ack.ttl == 64 and syn_ack.df
    assert syn_ack.seq_rel == 0 and syn_ack.ack_rel == 0
    data = [p for p in tcp if p.payload > 0]
    assert data and all(p.seq_rel is not None and p.seq_rel >= 1 for p in data)
    # The ack of the first response packet covers the whole request the probe sent.
    assert data[0].ack_rel is not None and data[0].ack_rel > 0
    # Every DNS reply datagram is there, and its digest ties it to the stored raw reply.
    raws = {packet_digest(r.raw) for q in m.hops[0].dns for r in q.replies}
    udp = [p for p in m.packets if p.proto == "udp"]
    assert raws and raws <= {p.digest for p in udp}
    assert cap.packets_kept >= len(m.packets)


def test_capture_records_the_rst_of_a_reset_flow(loopback_net: LoopbackNet,
                                                 cap: capture.Capture) -> None:
    m = _measure(loopback_net.url("refused.test"), loopback_net)
    rst = [p for p in m.packets if "R" in p.flags]
    assert rst and rst[0].sport == loopback_net.http_port


def test_capture_ignores_flows_that_are_not_the_probes(loopback_net: LoopbackNet,
                                                       cap: capture.Capture) -> None:
    # A connection of "someone else" (not registered) to the same server, during a measurement.
    async def both() -> Measurement:
        other = socket.create_connection((loopback_net.web_ip, loopback_net.http_port))
        other.sendall(b"GET / HTTP/1.0\r\nHost: ok.test\r\n\r\n")
        m = await measure(target(loopback_net.url("ok.test")), config(loopback_net))
        other_port = other.getsockname()[1]
        other.recv(65536)
        other.close()
        assert all(p.dport != other_port for p in m.packets)
        return m

    m = asyncio.run(both())
    assert m.packets


def test_without_capture_nothing_is_recorded(loopback_net: LoopbackNet) -> None:
    m = _measure(loopback_net.url("ok.test"), loopback_net)
    assert not m.captured and m.packets == ()


def test_pcap_file_keeps_headers_and_dns_only_with_the_probes_address_rewritten(
        loopback_net: LoopbackNet, cap: capture.Capture, tmp_path: Path) -> None:  # fmt: skip
    from scapy.layers.inet import IP, TCP, UDP
    from scapy.utils import RawPcapReader

    m = _measure(loopback_net.url("ok.test"), loopback_net)
    kept = cap.packets_kept
    cap.close()
    data = (tmp_path / "run-1.pcap").read_bytes()
    assert data[:4] == bytes.fromhex("4d3cb2a1")  # nanosecond pcap, little endian, LINKTYPE_RAW
    assert int.from_bytes(data[20:24], "little") == 101
    # Before, every TCP record kept the head of its payload: the start of the HTTP response
    # (where a site echoes X-Client-IP), and the probe's address in every IP header.
    assert b"HTTP/1.1" not in data and b"ok.test" not in data.replace(b"\x02ok\x04test", b"")
    records = list(RawPcapReader(str(tmp_path / "run-1.pcap")))
    assert kept > 0 and len(records) == kept
    raws = {r.raw for q in m.hops[0].dns for r in q.replies}
    local = {socket.inet_aton("127.0.0.1")}
    for raw, meta in records:
        pkt = IP(raw)
        assert pkt.dst == PLACEHOLDER and pkt.src != PLACEHOLDER
        assert not any(a in raw[:20] for a in local)
        assert meta.wirelen == pkt.len >= meta.caplen == len(raw)
        ip_ok = IP(raw)
        del ip_ok.chksum
        assert IP(bytes(ip_ok)).chksum == pkt.chksum  # the IP checksum fits the new address
        if pkt.haslayer(TCP):
            assert len(raw) == pkt.ihl * 4 + pkt[TCP].dataofs * 4  # headers, no payload
        else:
            body = raw[pkt.ihl * 4 + 8 :]
            assert body in raws  # the DNS reply, whole (nothing of ours in it to rewrite)
            udp = IP(raw)
            del udp[UDP].chksum
            assert IP(bytes(udp))[UDP].chksum == pkt[UDP].chksum  # valid for the new address


def test_bpf_program_is_short_jumps_and_rejects_by_default() -> None:
    prog = capture.bpf_program([40000, 40001], [50000])
    assert prog[-1] == (0x06, 0, 0, 0)
    assert all(jt <= 1 and jf <= 1 for _, jt, jf, _ in prog)
    assert sum(1 for code, _, _, k in prog if code == 0x15 and k in (40000, 40001, 50000)) == 3


class _FarJunkResolver(threading.Thread):
    """A resolver on loopback that answers each A query genuinely (TTL 64) and sends, from its
    own address and port but with IP TTL 50, a flood of junk: garbage, a lie with another id,
    a lie with our id for another question, our id followed by garbage. ``junk_first`` puts
    50 of them before the genuine reply."""

    FLOOD = 2_000

    def __init__(self, zone: dict[str, list[str] | str], junk_first: bool) -> None:
        super().__init__(daemon=True)
        self.genuine = zone_handler(zone)
        self.junk_first = junk_first
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.62", 0))
        self.sock.settimeout(0.2)
        self.address = f"127.0.0.62:{self.sock.getsockname()[1]}"
        self.stop = False

    def _junk(self, query: dns.message.Message) -> list[bytes]:
        other = dns.message.make_query("other.test", "A")
        lies = []
        for q, qid in ((query, (query.id + 1) & 0xFFFF), (other, query.id)):
            r = dns.message.make_response(q)
            r.id = qid
            r.answer.append(dns.rrset.from_text(q.question[0].name, 60, "IN", "A", "10.10.34.34"))
            lies.append(r.to_wire())
        kinds = [b"\x13\x37garbage" * 3, lies[0], lies[1], query.id.to_bytes(2, "big") + b"\0" * 40]
        return [kinds[i % 4] for i in range(self.FLOOD)]

    def _send(self, wires: list[bytes], addr: tuple[str, int], ttl: int) -> None:
        self.sock.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, ttl)
        for w in wires:
            try:
                self.sock.sendto(w, addr)
            except OSError:  # the probe's socket buffer is full: a dropped datagram
                pass

    def run(self) -> None:
        while not self.stop:
            try:
                data, addr = self.sock.recvfrom(2048)
            except TimeoutError:
                continue
            except OSError:
                return
            query = dns.message.from_wire(data)
            genuine = [r.to_wire() for _, r in self.genuine(query)]
            if query.question[0].rdtype != dns.rdatatype.A:
                self._send(genuine, addr, 64)
                continue
            junk = self._junk(query)
            if self.junk_first:
                self._send(junk[:50], addr, 50)
                junk = junk[50:]
            self._send(genuine, addr, 64)
            self._send(junk, addr, 50)

    def close(self) -> None:
        self.stop = True
        self.join(timeout=5)
        self.sock.close()


@pytest.mark.parametrize("junk_first", [False, True])
def test_junk_from_the_resolver_is_never_kept_as_a_reply(loopback_net: LoopbackNet,
                                                         cap: capture.Capture,
                                                         junk_first: bool) -> None:
    # Junk from the resolver's own address and port, sent from another distance (TTL 50 where
    # the genuine reply has 64): before, it was captured like a reply and its TTL made the
    # clean site "hijacked" (dns/injected:ttl-delta=14); with junk first, the flow's cap filled
    # with junk and the genuine reply's packet was never kept.
    server = _FarJunkResolver(loopback_net.zone, junk_first)
    server.start()
    try:
        m = asyncio.run(measure(target(loopback_net.url("ok.test")),
                                config(loopback_net, resolvers=(server.address,), late_window=0.5,
                                       dns_timeout=3.0)))  # fmt: skip
    finally:
        server.close()
    a = next(q for q in m.hops[0].dns if q.qtype == "A")
    assert a.addresses == (loopback_net.web_ip,)
    replies = {packet_digest(r.raw) for q in m.hops[0].dns for r in q.replies
               if r.rcode != "MALFORMED"}  # fmt: skip
    udp = [p for p in m.packets if p.proto == "udp"]
    assert replies and {p.digest for p in udp} == replies  # every reply kept, nothing else
    assert all(p.ttl == 64 for p in udp)
    verdict = classify(m)
    assert verdict.verdict != "hijacked", verdict  # (no control here: inconclusive at best)
    assert not any(r.startswith("dns/inject") for r in verdict.reasons), verdict


def test_capture_leaves_the_ech_tests_flows_out(loopback_net: LoopbackNet, cap: capture.Capture) -> None:
    # The packet rules judge the web steps' flows; the ECH hellos' connections are not theirs.
    url = loopback_net.url("ok.test", tls=True)
    m = asyncio.run(measure(target(url), config(loopback_net, ech=True)))
    assert len(m.hops[0].ech) == 2 and len(m.hops[0].tcp) == 1
    flows = {p.dport for p in m.packets if p.proto == "tcp"}
    assert len(flows) == 1  # the web test's one connection
