"""Packet capture of the probe's own flows, on loopback (needs root or CAP_NET_RAW)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from observe_helpers import config, target
from servers import LoopbackNet

from probe.core.model import Measurement, packet_digest
from probe.measure import capture
from probe.measure.engine import measure


@pytest.fixture
def cap(tmp_path: Path) -> Iterator[capture.Capture]:
    try:
        c = capture.Capture.open(tmp_path / "run.pcap")
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


def test_pcap_file_holds_the_kept_packets(loopback_net: LoopbackNet, cap: capture.Capture,
                                          tmp_path: Path) -> None:
    _measure(loopback_net.url("ok.test"), loopback_net)
    kept = cap.packets_kept
    cap.close()
    data = (tmp_path / "run.pcap").read_bytes()
    assert data[:4] == bytes.fromhex("4d3cb2a1")  # nanosecond pcap, little endian
    assert kept > 0 and len(data) > 24 + kept * 16


def test_bpf_program_is_short_jumps_and_rejects_by_default() -> None:
    prog = capture.bpf_program([40000, 40001], [50000])
    assert prog[-1] == (0x06, 0, 0, 0)
    assert all(jt <= 1 and jf <= 1 for _, jt, jf, _ in prog)
    assert sum(1 for code, _, _, k in prog if code == 0x15 and k in (40000, 40001, 50000)) == 3


def test_capture_leaves_the_ech_tests_flows_out(loopback_net: LoopbackNet, cap: capture.Capture) -> None:
    # The packet rules judge the web steps' flows; the ECH hellos' connections are not theirs.
    url = loopback_net.url("ok.test", tls=True)
    m = asyncio.run(measure(target(url), config(loopback_net, ech=True)))
    assert len(m.hops[0].ech) == 2 and len(m.hops[0].tcp) == 1
    flows = {p.dport for p in m.packets if p.proto == "tcp"}
    assert len(flows) == 1  # the web test's one connection
