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

scapy dissects each packet, rewrites it and writes the file (nanosecond pcap, LINKTYPE_RAW);
it runs only for the few packets per measurement capture keeps (the capture's hot path, which
looks at every packet the kernel passes up, is hand-written: bench/packet_parse.py,
docs/bench.md). A file is never overwritten: ``run-N.pcap`` exists already (another
database's run N), the next free ``run-N.K.pcap`` is taken.
"""

from __future__ import annotations

import ipaddress
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


def sanitize(data: bytes, mine: Collection[str], *, dns: bool) -> tuple[bytes, int] | None:
    """The record to write for one kept packet, and its length on the wire (None: not IPv4
    TCP/UDP, or a header scapy would not rebuild byte for byte).

    ``data`` starts at the IP header (as capture reads it); ``mine`` are the probe's own
    addresses besides the packet's destination; ``dns``: the UDP payload is a DNS reply
    and may be kept (see the module docstring).
    """
    from scapy.layers.inet import IP, TCP, UDP
    from scapy.packet import Raw

    try:
        pkt = IP(data)
    except Exception:  # scapy raises what malformed bytes make it raise
        return None
    l4 = pkt.getlayer(TCP) or pkt.getlayer(UDP)
    if pkt.version != 4 or l4 is None or l4.underlayer is not pkt:
        return None
    ihl = pkt.ihl * 4
    head = ihl + (l4.dataofs * 4 if isinstance(l4, TCP) else 8)
    wire = int(pkt.len)  # what follows it in ``data`` is link-layer padding
    if len(data) < head or wire < head:
        return None
    body = data[head:wire]
    old = data[12:20]  # source and destination, packed
    ours = set(mine) | {str(pkt.dst)}
    pkt.dst = PLACEHOLDER
    if str(pkt.src) in ours:
        pkt.src = PLACEHOLDER
    new = bytes(ipaddress.IPv4Address(pkt.src).packed + _PLACEHOLDER_PACKED)
    del pkt.chksum  # recomputed when built
    l4.remove_payload()
    clean = _scrub_dns(body, ours) if dns and isinstance(l4, UDP) else None
    if clean is not None and len(body) == wire - head:  # the whole datagram was captured
        l4.add_payload(Raw(clean))
        if l4.chksum:  # 0: the sender computed none
            del l4.chksum  # recomputed over the whole (rewritten) datagram
    elif l4.chksum or isinstance(l4, TCP):
        l4.chksum = _adjust(int(l4.chksum), old, new)
    out = bytes(pkt)
    # scapy rebuilds the headers from its fields: anything but the rewritten addresses and
    # checksums that came out different (an odd TCP option) is not written as if it were.
    if not _same_headers(data[:head], out[:head], ihl, isinstance(l4, TCP)):
        return None
    return out, wire


def _same_headers(before: bytes, after: bytes, ihl: int, tcp: bool) -> bool:
    if len(before) != len(after):
        return False
    masked = [(10, 20), (ihl + (16 if tcp else 6), ihl + (18 if tcp else 8))]
    for a, b in masked:
        before = before[:a] + bytes(b - a) + before[b:]
        after = after[:a] + bytes(b - a) + after[b:]
    return before == after


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
        self.skipped = 0  # packets scapy could not rebuild faithfully (not written)
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
