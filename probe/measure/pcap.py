"""The ``--pcap`` file: the packets capture kept, headers only, with the probe's addresses rewritten.

What a file holds, packet by packet (docs/identity.md says it for the user):

* the IP header and the TCP or UDP header, as they arrived, except that the probe's own
  addresses (the destination of every packet here, since capture keeps only what came back to
  the probe, and any source address that is one of the run's own, local or public, as the run's
  scrubber knows them) are replaced by :data:`PLACEHOLDER`;
* no TCP payload at all: an echoed ``X-Client-IP``, a page, a certificate never reach the file;
* the payload of a DNS reply (what capture keeps of UDP), with every packed copy of the probe's
  addresses replaced by the placeholder's; a reply that holds one of them as text (a whoami TXT
  answer) keeps its headers only.

Lengths stay those on the wire: the IP total length is the packet's, and each record's original
length says so (as a capture with a short snap length does), so a tool shows how long each
segment was. Checksums are fixed for the rewritten addresses: the IP header's is recomputed; the
TCP or UDP one is updated for the changed pseudo-header (RFC 1624), so it still holds for the
packet as it travelled (with its payload), or recomputed over a whole DNS datagram whose
payload was rewritten.

scapy writes the file (``RawPcapWriter``: nanosecond pcap, LINKTYPE_RAW) and computes the
checksums; the rewrite of each kept packet's headers is done by hand with slices, in capture's
reader thread, because dissecting and rebuilding each packet with scapy cost 39x more and
took ``probe run --pcap`` from 0.85 to 0.59 of plain throughput (bench/packet_parse.py,
bench/capture.py --pcap, docs/bench.md); the tests check the records with scapy's dissection.
A file is never overwritten: when ``run-N.pcap`` exists already (another database's run N),
the next free ``run-N.K.pcap`` is taken.
"""

from __future__ import annotations

import ipaddress
import socket
import struct
import threading
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any

__all__ = ["LINKTYPE_RAW", "PLACEHOLDER", "PcapFile", "new_pcap_path", "sanitize"]

#: What every address of the probe becomes: TEST-NET-1 (RFC 5737), never routed.
PLACEHOLDER = "192.0.2.1"
_PLACEHOLDER_PACKED = ipaddress.IPv4Address(PLACEHOLDER).packed
LINKTYPE_RAW = 101
#: The largest record written (a DNS reply over UDP; TCP records are headers only).
SNAPLEN = 4096
#: ``run-N.pcap``, then ``run-N.1.pcap`` ...: tries before giving up.
_NAME_TRIES = 1000


def new_pcap_path(directory: Path, run_id: int) -> tuple[Path, Any]:
    """A new file in ``directory`` for run ``run_id``, created exclusively, and its open file."""
    for k in range(_NAME_TRIES):
        path = directory / (f"run-{run_id}.pcap" if k == 0 else f"run-{run_id}.{k}.pcap")
        try:
            return path, open(path, "xb")  # the caller closes it
        except FileExistsError:
            continue
    raise FileExistsError(f"{directory}: run-{run_id}.pcap and {_NAME_TRIES - 1} others exist")


def _fold(total: int) -> int:
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return total


def _adjust(checksum: int, old: bytes, new: bytes) -> int:
    """``checksum`` after the 16-bit words ``old`` were replaced by ``new`` (RFC 1624, eqn. 3)."""
    total = ~checksum & 0xFFFF
    for i in range(0, len(old), 2):
        total += (~int.from_bytes(old[i : i + 2], "big") & 0xFFFF) + int.from_bytes(new[i : i + 2], "big")
    return ~_fold(total) & 0xFFFF


def _packed(addresses: Collection[str]) -> list[bytes]:
    out = []
    for a in addresses:
        try:
            ip = ipaddress.ip_address(a)
        except ValueError:
            continue
        if ip.version == 4:
            out.append(ip.packed)
    return out


def _scrub_dns(body: bytes, addresses: Collection[str]) -> bytes | None:
    """The DNS payload with packed copies of ``addresses`` replaced; None if one is there as text."""
    for a in addresses:
        if a.encode() in body:
            return None  # as text its length differs from the placeholder's: keep no payload
    for packed in _packed(addresses):
        body = body.replace(packed, _PLACEHOLDER_PACKED)
    return body


def _header_checksum(header: bytes) -> int:
    """The IPv4 header checksum of ``header`` (its checksum field zeroed by the caller)."""
    from scapy.utils import checksum

    return int(checksum(header))


def _udp_checksum(src: bytes, dst: bytes, datagram: bytes) -> int:
    """The UDP checksum of a whole datagram (its checksum field zeroed) between src and dst."""
    from scapy.utils import checksum

    pseudo = src + dst + struct.pack("!BBH", 0, socket.IPPROTO_UDP, len(datagram))
    value = int(checksum(pseudo + datagram))
    return value or 0xFFFF  # 0 means "no checksum" in UDP: an all-ones sum is sent as 0xFFFF


def sanitize(data: bytes, mine: Collection[str], *, dns: bool) -> tuple[bytes, int] | None:
    """The record to write for one kept packet, and its length on the wire (None: not an
    unfragmented IPv4 TCP/UDP packet with whole headers).

    ``data`` starts at the IP header (as capture reads it); ``mine`` are the probe's own
    addresses besides the packet's destination; ``dns``: the UDP payload is a DNS reply
    and may be kept (see the module docstring).
    """
    # By hand, with slices: this runs in capture's reader thread for every kept packet, and
    # dissecting and rebuilding it with scapy cost 39x more (bench/packet_parse.py) and took
    # `probe run --pcap` from 0.85 to 0.59 of plain throughput (docs/bench.md). scapy still
    # computes the checksums and writes the file.
    if len(data) < 20 or data[0] >> 4 != 4 or int.from_bytes(data[6:8], "big") & 0x1FFF:
        return None
    ihl, proto, wire = (data[0] & 0x0F) * 4, data[9], int.from_bytes(data[2:4], "big")
    if proto == socket.IPPROTO_TCP and len(data) >= ihl + 20:
        head, at = ihl + (data[ihl + 12] >> 4) * 4, ihl + 16
    elif proto == socket.IPPROTO_UDP:
        head, at = ihl + 8, ihl + 6
    else:
        return None
    if ihl < 20 or len(data) < head or wire < head:
        return None
    header = bytearray(data[:head])  # what follows ``wire`` in ``data`` is link-layer padding
    body = data[head:wire]
    ours = set(mine) | {socket.inet_ntoa(data[16:20])}
    old = bytes(header[12:20])
    header[16:20] = _PLACEHOLDER_PACKED  # the destination: always the probe
    if socket.inet_ntoa(data[12:16]) in ours:
        header[12:16] = _PLACEHOLDER_PACKED
    header[10:12] = b"\0\0"
    header[10:12] = _header_checksum(bytes(header[:ihl])).to_bytes(2, "big")
    csum = int.from_bytes(header[at : at + 2], "big")
    clean = _scrub_dns(body, ours) if dns and proto == socket.IPPROTO_UDP else None
    if clean is not None and len(body) == wire - head:  # the whole datagram was captured
        if csum:  # 0: the sender computed none
            header[at : at + 2] = b"\0\0"
            value = _udp_checksum(bytes(header[12:16]), bytes(header[16:20]), bytes(header[ihl:]) + clean)
            header[at : at + 2] = value.to_bytes(2, "big")
        return bytes(header) + clean, wire
    if csum or proto == socket.IPPROTO_TCP:
        header[at : at + 2] = _adjust(csum, old, bytes(header[12:20])).to_bytes(2, "big")
    return bytes(header), wire


class PcapFile:
    """Writes kept packets, sanitized (:func:`sanitize`), to a pcap file through scapy.

    ``addresses`` is called for each packet: the probe's own addresses as the run knows them
    then (an address learned mid-run is rewritten from then on). Thread-safe: capture's reader
    thread writes, the run closes.
    """

    def __init__(self, f: Any, addresses: Callable[[], Collection[str]] = frozenset) -> None:
        from scapy.utils import RawPcapWriter

        self._writer: Any = RawPcapWriter(f, linktype=LINKTYPE_RAW, nano=True, snaplen=SNAPLEN)
        self._writer.write_header(None)  # a run that keeps nothing still leaves a valid file
        self._addresses = addresses
        self._lock = threading.Lock()
        self.written = 0
        self.skipped = 0  # packets that are not whole IPv4 TCP/UDP headers (not written)
        self.error: str | None = None  # why writing stopped early (a full disk)

    def write(self, data: bytes, t: float, *, dns: bool = False) -> None:
        """Write one packet that arrived at ``t`` (Unix seconds)."""
        record = sanitize(data, self._addresses(), dns=dns)
        with self._lock:
            if self._writer is None:
                return
            if record is None:
                self.skipped += 1
                return
            out, wire = record
            sec = int(t)
            try:
                self._writer.write_packet(out, sec=sec, usec=int((t - sec) * 1e9),
                                          caplen=len(out), wirelen=wire)  # fmt: skip
            except OSError as exc:  # a full disk: capture goes on, the file ends here
                self.error = str(exc)
                self._close()
                return
            self.written += 1

    def close(self) -> None:
        """Flush and close the file."""
        with self._lock:
            self._close()

    def _close(self) -> None:
        if self._writer is not None:
            writer, self._writer = self._writer, None
            try:
                writer.close()
            except OSError as exc:
                self.error = self.error or str(exc)
