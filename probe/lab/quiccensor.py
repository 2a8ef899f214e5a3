"""The censor's QUIC SNI filter: the GFW's published rule for QUIC, as an NFQUEUE program.

::

    python -m probe.lab.quiccensor --queue 7 --config QUIC.json

``QUIC.json`` is re-read whenever it changes:
``{"block": ["name", ...], "residual": 120, "drop_data": ["server address", ...]}``.
The censor's rules (:mod:`probe.lab.censor`, when a scenario names QUIC SNIs) queue every
forwarded UDP datagram to or from port 443 here.

What it does, after Zohaib et al., *Exposing and Circumventing SNI-based QUIC Censorship of the
Great Firewall of China* (USENIX Security 2025): a client's QUIC version 1 Initial packet is
protected with keys anyone can derive from its Destination Connection ID (RFC 9001 section
5.2), so the censor removes the header protection, decrypts the packet, reassembles the CRYPTO
frames and reads the ClientHello's SNI. When the name is on its list, the flow (client address
and port, server address and port) is blocked for ``residual`` seconds, both ways; like the GFW,
the triggering datagram itself passes, and everything after it (the server's answer first) is
dropped. Only the first datagram of a flow is inspected, as the GFW does; a ClientHello split
over several Initials, or not decryptable, passes.

``drop_data`` is another technique: the handshake passes and what follows does not. Client
datagrams to those addresses that carry a short-header (1-RTT) packet, the application data
(the HTTP/3 request), are dropped, also when it is coalesced behind the handshake's last
long-header packet (the client then sends that one again alone, and the handshake ends).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from typing import Any

from probe.lab.dnsserver import ConfigFile
from probe.lab.safety import require_lab_namespace

__all__ = ["QUEUE", "carries_data", "initial_sni", "main"]

#: The NFQUEUE number the censor's rules feed (the latency knob uses 0 and 1).
QUEUE = 7
_QUIC_V1 = 0x00000001


def _varint(data: bytes, i: int) -> tuple[int, int]:
    """A QUIC variable-length integer at ``data[i:]``: (value, next index)."""
    first = data[i]
    size = 1 << (first >> 6)
    value = first & 0x3F
    for b in data[i + 1:i + size]:
        value = (value << 8) | b
    if i + size > len(data):
        raise ValueError("truncated varint")
    return value, i + size


def _crypto_data(payload: bytes) -> bytes:
    """The contiguous CRYPTO stream from offset 0 in a decrypted Initial payload."""
    chunks: dict[int, bytes] = {}
    i = 0
    while i < len(payload):
        kind, i = _varint(payload, i)
        if kind in (0x00, 0x01):  # PADDING, PING
            continue
        if kind != 0x06:  # anything but CRYPTO: a client's first Initial has nothing else
            break
        offset, i = _varint(payload, i)
        length, i = _varint(payload, i)
        chunks[offset] = payload[i:i + length]
        i += length
    out = b""
    while len(out) in chunks:
        out += chunks[len(out)]
    return out


def initial_sni(datagram: bytes) -> str | None:
    """The SNI of the ClientHello in a client's QUIC v1 Initial, or None when there is none."""
    # aioquic: the `lab` extra (and the `test` one: unit tests call this without a lab)
    from aioquic._buffer import Buffer  # aioquic.buffer re-exports it without __all__
    from aioquic.quic.crypto import CryptoPair
    from aioquic.quic.packet import QuicPacketType, pull_quic_header
    from aioquic.tls import pull_client_hello

    try:
        if not datagram or datagram[0] & 0xC0 != 0xC0:  # not a long-header packet
            return None
        buf = Buffer(data=datagram)
        header = pull_quic_header(buf, host_cid_length=8)
        if header.version != _QUIC_V1 or header.packet_type != QuicPacketType.INITIAL:
            return None
        crypto = CryptoPair()
        crypto.setup_initial(cid=header.destination_cid, is_client=False, version=_QUIC_V1)
        end = buf.tell()  # the packet number starts here
        packet = datagram[:header.packet_length]
        _, payload, _ = crypto.decrypt_packet(packet, end, 0)
        stream = _crypto_data(payload)
        if len(stream) < 4 or len(stream) < 4 + int.from_bytes(stream[1:4], "big"):
            return None  # the ClientHello goes on in another packet: the GFW lets it pass
        hello = pull_client_hello(Buffer(data=stream))
        return hello.server_name.lower() if hello.server_name else None
    except Exception:  # not QUIC, not decryptable, not a ClientHello: not the censor's business
        return None


def carries_data(datagram: bytes) -> bool:
    """True when a QUIC datagram holds a short-header (1-RTT) packet: alone, or coalesced behind
    the long-header packets of the handshake (each of which says its own length)."""
    # aioquic: the `lab` extra (and the `test` one: unit tests call this without a lab)
    from aioquic._buffer import Buffer  # aioquic.buffer re-exports it without __all__
    from aioquic.quic.packet import pull_quic_header

    i = 0
    try:
        while i < len(datagram):
            if datagram[i] & 0x80 == 0:
                # A short header (fixed bit 0x40 set) runs to the end of the datagram; zero
                # bytes after the last packet are padding (aioquic pads the Initial's datagram).
                return datagram[i] & 0x40 != 0
            header = pull_quic_header(Buffer(data=datagram[i:]), host_cid_length=8)
            if header.packet_length <= 0:
                return False
            i += header.packet_length
    except Exception:  # not QUIC: not the censor's business
        return False
    return False


def _udp(packet: bytes) -> tuple[str, int, str, int, bytes] | None:
    """(src, sport, dst, dport, payload) of an IPv4 UDP packet, or None."""
    if len(packet) < 28 or packet[0] >> 4 != 4 or packet[9] != 17:
        return None
    ihl = (packet[0] & 0x0F) * 4
    src = ".".join(str(b) for b in packet[12:16])
    dst = ".".join(str(b) for b in packet[16:20])
    sport = int.from_bytes(packet[ihl:ihl + 2], "big")
    dport = int.from_bytes(packet[ihl + 2:ihl + 4], "big")
    return src, sport, dst, dport, packet[ihl + 8:]


def run(queue: int, config: str) -> None:
    """Bind NFQUEUE ``queue`` and filter until killed."""
    from netfilterqueue import NetfilterQueue  # the `lab` extra

    require_lab_namespace("the QUIC censor")
    cfg = ConfigFile(config, {})
    blocked: dict[tuple[str, int, str, int], float] = {}  # (client, port, server, port) -> until

    def on_packet(pkt: Any) -> None:
        udp = _udp(pkt.get_payload())
        if udp is None:
            pkt.accept()
            return
        src, sport, dst, dport, data = udp
        key = (src, sport, dst, dport) if dport == 443 else (dst, dport, src, sport)
        now = time.monotonic()
        until = blocked.get(key)
        if until is not None:
            if until > now:
                pkt.drop()
                return
            del blocked[key]
        rules = cfg.get() or {}
        names = {n.lower() for n in rules.get("block", ())}
        if dport == 443 and dst in set(rules.get("drop_data", ())) and carries_data(data):
            pkt.drop()
            return
        if dport == 443 and names:
            sni = initial_sni(data)
            if sni is not None and sni in names:
                blocked[key] = now + float(rules.get("residual", 120))
        pkt.accept()  # the trigger itself passes (residual-only, as the GFW's)

    nfq = NetfilterQueue()
    nfq.bind(queue, on_packet)
    print("ready", flush=True)
    try:
        nfq.run()
    finally:
        nfq.unbind()


def main(argv: Sequence[str] | None = None) -> None:
    """Run the filter until killed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queue", type=int, default=QUEUE)
    parser.add_argument("--config", required=True)
    args = parser.parse_args(argv)
    try:
        run(args.queue, args.config)
    except KeyboardInterrupt:
        sys.exit(0)


if __name__ == "__main__":
    main()
