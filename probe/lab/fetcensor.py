"""The lab's fully-encrypted-traffic censor: the GFW's published rule (Wu et al., USENIX Security
2023; :func:`probe.measure.fet.exemptions`) applied to live TCP flows with NFQUEUE.

Run in the censor namespace behind an iptables rule that queues client-to-server TCP packets::

    iptables -A LAB-FWD -p tcp -d IP --dport PORTS -j NFQUEUE --queue-num 42 --queue-bypass
    ip netns exec CENSOR python -m probe.lab.fetcensor --queue 42 --residual 60

Like the GFW it watches the first data packet of each connection and lets that packet through
(it is on the path, not in it); when no exemption covers it, every later packet of the connection
is dropped, and so is every packet from that client to that server address and port for
``--residual`` seconds (residual censorship; the GFW's lasted 180 s). ``--probability`` blocks
only that share of the matching connections (the GFW blocked about a quarter); the lab uses 1,
so that its scenarios are deterministic. With ``--queue-bypass`` packets flow uncensored
whenever the program is not running.
"""

from __future__ import annotations

import argparse
import random
import signal
import struct
import sys
import time
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

from probe.lab.safety import require_lab_namespace
from probe.measure.fet import exemptions

__all__ = ["FETRule", "main"]

#: The queue the lab's scenarios use (the latency knob uses 0 and 1).
QUEUE = 42
_MAX_FLOWS = 65536


class FETRule:
    """Per-flow state of the rule: which connections were judged, blocked, and the residual
    blocks of (client, server, port)."""

    def __init__(self, residual: float, probability: float = 1.0, seed: int | None = None) -> None:
        self.residual = residual
        self.probability = probability
        self.random = random.Random(seed)
        self.flows: OrderedDict[tuple[str, int, str, int], bool] = OrderedDict()  # -> blocked
        self.blocked_until: dict[tuple[str, str, int], float] = {}
        self.counts = {"judged": 0, "blocked": 0, "dropped": 0}

    def verdict(self, src: str, sport: int, dst: str, dport: int, payload: bytes, now: float) -> bool:
        """True to let the packet through, False to drop it."""
        until = self.blocked_until.get((src, dst, dport))
        if until is not None and now < until:
            self.counts["dropped"] += 1
            return False
        flow = (src, sport, dst, dport)
        state = self.flows.get(flow)
        if state is True:
            self.counts["dropped"] += 1
            return False
        if state is None and payload:
            self.counts["judged"] += 1
            block = not exemptions(payload) and self.random.random() < self.probability
            self.flows[flow] = block
            if len(self.flows) > _MAX_FLOWS:
                self.flows.popitem(last=False)
            if block:
                self.counts["blocked"] += 1
                self.blocked_until[(src, dst, dport)] = now + self.residual
            return True  # the trigger itself passes: the censor sees it on its way
        return True


def _parse(packet: bytes) -> tuple[str, int, str, int, bytes] | None:
    """(src, sport, dst, dport, payload) of an IPv4 TCP packet, or None."""
    if len(packet) < 20 or packet[0] >> 4 != 4 or packet[9] != 6:
        return None
    ihl = (packet[0] & 0x0F) * 4
    total = struct.unpack_from("!H", packet, 2)[0]
    if len(packet) < ihl + 20:
        return None
    sport, dport = struct.unpack_from("!HH", packet, ihl)
    offset = ihl + (packet[ihl + 12] >> 4) * 4
    src = ".".join(map(str, packet[12:16]))
    dst = ".".join(map(str, packet[16:20]))
    return src, sport, dst, dport, packet[offset:total]


def main(argv: Sequence[str] | None = None) -> int:
    """Serve the queue until SIGTERM; print ``ready`` once bound."""
    ap = argparse.ArgumentParser(prog="python -m probe.lab.fetcensor")
    ap.add_argument("--queue", type=int, default=QUEUE)
    ap.add_argument("--residual", type=float, default=180.0)
    ap.add_argument("--probability", type=float, default=1.0)
    args = ap.parse_args(argv)
    from netfilterqueue import NetfilterQueue  # the `lab` extra

    require_lab_namespace()
    rule = FETRule(args.residual, args.probability)

    def on_packet(pkt: Any) -> None:
        parsed = _parse(pkt.get_payload())
        if parsed is None or rule.verdict(*parsed, time.monotonic()):
            pkt.accept()
        else:
            pkt.drop()

    nfq = NetfilterQueue()
    nfq.bind(args.queue, on_packet)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print("ready", flush=True)
    try:
        nfq.run()
    finally:
        nfq.unbind()
        print(rule.counts, file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
