"""The packets a measurement captured (``--capture``), for `probe show`: one line per packet.

What the classifier's packet evidence is decided on (docs/packets.md): who sent each packet
(address and port), its TTL, IP ID and DF bit, TCP flags, window, sequence and acknowledgement
relative to the flow, and payload length, in arrival order with the time since the first.
The records are the decoded metadata capture stored (``Packet``); no payload byte is kept, so
there is nothing more to decode.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from probe.core.model import Packet

__all__ = ["packet_rows", "render_packets"]


def packet_rows(packets: Iterable[Packet]) -> list[dict[str, Any]]:
    """The packets as plain data (the evidence's ``packets``), times relative to the first."""
    packets = list(packets)
    t0 = packets[0].t if packets else 0.0
    return [{"t": round(p.t - t0, 6), "proto": p.proto, "src": p.src, "sport": p.sport,
             "dport": p.dport, "ttl": p.ttl, "ip_id": p.ip_id, "df": p.df, "flags": p.flags,
             "window": p.window, "seq_rel": p.seq_rel, "ack_rel": p.ack_rel,
             "payload": p.payload} for p in packets]  # fmt: skip


def _line(p: dict[str, Any]) -> str:
    src = f"[{p['src']}]:{p['sport']}" if ":" in p["src"] else f"{p['src']}:{p['sport']}"
    parts = [f"+{p['t'] * 1000:.0f} ms", p["proto"], src, f"ttl {p['ttl']}", f"id {p['ip_id']}",
             "DF" if p["df"] else "no-DF"]  # fmt: skip
    if p["proto"] == "tcp":
        parts.append(p["flags"] or "-")
        if p["window"] is not None:
            parts.append(f"win {p['window']}")
        if p["seq_rel"] is not None:
            parts.append(f"seq {p['seq_rel']:+d}")
        if p["ack_rel"] is not None:
            parts.append(f"ack {p['ack_rel']:+d}")
    parts.append(f"{p['payload']} B")
    return " ".join(parts)


def render_packets(rows: list[dict[str, Any]], width: int = 80) -> Iterator[str]:
    """Text lines for the evidence's ``packets``, each at most ``width`` columns."""
    head = f"packets captured ({len(rows)}): time, sender, TTL, IP ID, DF, flags, window, seq/ack"
    for line in (head, *("    " + _line(p) for p in rows)):
        yield line if len(line) <= width else line[: width - 1] + "…"
