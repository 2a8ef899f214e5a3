"""The --pcap record of one packet (probe/measure/pcap.py): headers and DNS only, our addresses
rewritten, checksums fixed, lengths as on the wire."""

from __future__ import annotations

from pathlib import Path

import dns.message
import dns.rrset
import pytest
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.utils import RawPcapReader

from probe.measure.pcap import PLACEHOLDER, PcapFile, new_pcap_path, sanitize

ME = "10.1.2.3"  # the probe's local address (every kept packet's destination)
PUBLIC = "203.0.113.9"  # its public address, as the run's scrubber knows it
SERVER = "198.51.100.20"


def _tcp(payload: bytes = b"", flags: str = "PA", src: str = SERVER) -> bytes:
    return bytes(IP(src=src, dst=ME, ttl=60, id=4711, flags="DF")
                 / TCP(sport=443, dport=40312, flags=flags, seq=1000, ack=2000, window=501,
                       options=[("NOP", None), ("NOP", None), ("Timestamp", (1, 2))])
                 / payload)  # fmt: skip


def _valid(raw: bytes) -> bool:
    """Both checksums of a whole packet are right (scapy recomputes them to compare)."""
    pkt = IP(raw)
    l4 = pkt.getlayer(TCP) or pkt.getlayer(UDP)
    fresh = IP(raw)
    del fresh.chksum
    del (fresh.getlayer(TCP) or fresh.getlayer(UDP)).chksum
    again = IP(bytes(fresh))
    again_l4 = again.getlayer(TCP) or again.getlayer(UDP)
    return bool(again.chksum == pkt.chksum and again_l4.chksum == l4.chksum)


def test_tcp_keeps_headers_only_with_our_address_rewritten() -> None:
    echo = b"HTTP/1.1 200 OK\r\nX-Client-IP: 203.0.113.9\r\n\r\n" + b"x" * 900
    original = _tcp(echo)
    record = sanitize(original[:120], {PUBLIC}, dns=False)  # capture keeps 120 bytes of TCP
    assert record is not None
    out, wire = record
    pkt = IP(out)
    assert (pkt.src, pkt.dst) == (SERVER, PLACEHOLDER)
    assert len(out) == 20 + 32 and wire == len(original) == pkt.len  # headers; the wire length
    assert b"X-Client" not in out and b"\x0a\x01\x02\x03" not in out
    # Everything else is as it arrived: TTL, IP ID, DF, ports, sequence numbers, window, options.
    assert (pkt.ttl, pkt.id, str(pkt.flags)) == (60, 4711, "DF")
    t = pkt[TCP]
    assert (t.sport, t.dport, t.seq, t.ack, t.window, str(t.flags)) == (443, 40312, 1000, 2000, 501, "PA")
    # The TCP checksum still holds for the packet as it travelled: put the payload back.
    assert _valid(out + echo)


def test_a_segment_without_payload_is_whole_and_valid() -> None:
    out, wire = sanitize(_tcp(flags="R"), set(), dns=False) or (b"", 0)
    assert wire == len(out) and IP(out).dst == PLACEHOLDER and _valid(out)


def test_our_public_address_as_a_source_is_rewritten_too() -> None:
    out, _ = sanitize(_tcp(src=PUBLIC, flags="SA"), {PUBLIC}, dns=False) or (b"", 0)
    assert (IP(out).src, IP(out).dst) == (PLACEHOLDER, PLACEHOLDER) and _valid(out)


def _dns_reply(*answers: tuple[str, str]) -> bytes:
    q = dns.message.make_query("whoami.example", "A")
    r = dns.message.make_response(q)
    for rdtype, value in answers:
        r.answer.append(dns.rrset.from_text("whoami.example.", 60, "IN", rdtype, value))
    return r.to_wire()


def _udp(body: bytes, chksum: int | None = None) -> bytes:
    u = UDP(sport=53, dport=5353) if chksum is None else UDP(sport=53, dport=5353, chksum=chksum)
    return bytes(IP(src="192.0.2.53", dst=ME, ttl=61) / u / body)


def test_a_dns_reply_keeps_its_payload_with_packed_addresses_rewritten() -> None:
    body = _dns_reply(("A", PUBLIC), ("A", SERVER))
    out, wire = sanitize(_udp(body), {PUBLIC}, dns=True) or (b"", 0)
    assert wire == len(out)
    kept = dns.message.from_wire(out[28:])
    assert sorted(rd.address for rr in kept.answer for rd in rr) == sorted([PLACEHOLDER, SERVER])
    assert _valid(out)


def test_a_dns_reply_holding_our_address_as_text_keeps_headers_only() -> None:
    body = _dns_reply(("TXT", f'"{PUBLIC}"'))
    original = _udp(body)
    out, wire = sanitize(original, {PUBLIC}, dns=True) or (b"", 0)
    assert len(out) == 28 and wire == len(original) and PUBLIC.encode() not in out
    assert _valid(out + body)  # the checksum holds for the datagram as it travelled


def test_udp_without_checksum_stays_without() -> None:
    out, _ = sanitize(_udp(_dns_reply(("A", SERVER)), chksum=0), set(), dns=True) or (b"", 0)
    assert IP(out)[UDP].chksum == 0


def test_udp_that_is_not_dns_keeps_no_payload() -> None:
    out, _ = sanitize(_udp(b"secret"), set(), dns=False) or (b"", 0)
    assert len(out) == 28 and b"secret" not in out


def test_link_layer_padding_is_not_payload() -> None:
    body = _dns_reply(("A", SERVER))
    out, wire = sanitize(_udp(body) + b"\0" * 6, set(), dns=True) or (b"", 0)
    assert wire == len(out) == 28 + len(body) and _valid(out)


@pytest.mark.parametrize("data", [
    b"", b"\x45\x00", bytes(IP(src=SERVER, dst=ME) / ICMP()),
    _tcp()[:30],  # cut inside the TCP header
    bytes(IP(src=SERVER, dst=ME) / ICMP(type=11) / IP(src=ME, dst=SERVER) / TCP()),
])
def test_anything_else_is_not_written(data: bytes) -> None:
    assert sanitize(data, set(), dns=False) is None


def test_the_file_is_scapy_readable_and_never_overwrites(tmp_path: Path) -> None:
    (tmp_path / "run-3.pcap").write_bytes(b"another database's run 3")
    path, f = new_pcap_path(tmp_path, 3)
    assert path == tmp_path / "run-3.1.pcap"
    writer = PcapFile(f, lambda: {PUBLIC})
    echo = b"HTTP/1.1 200 OK\r\n" + b"x" * 1000
    writer.write(_tcp(echo)[:120], 1700000000.123456789)
    writer.write(b"junk", 1700000000.2)
    writer.close()
    assert (tmp_path / "run-3.pcap").read_bytes() == b"another database's run 3"
    records = list(RawPcapReader(str(path)))
    assert len(records) == 1 and writer.written == 1 and writer.skipped == 1
    raw, meta = records[0]
    assert IP(raw).dst == PLACEHOLDER and meta.wirelen == len(_tcp(echo)) and meta.caplen == 52
    assert meta.sec == 1700000000 and abs(meta.usec - 123456789) < 1000  # nanoseconds


def test_an_empty_run_leaves_a_valid_empty_file(tmp_path: Path) -> None:
    path, f = new_pcap_path(tmp_path, 1)
    PcapFile(f).close()
    assert list(RawPcapReader(str(path))) == []
