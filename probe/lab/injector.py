"""The censor's on-path injector (scapy), sniffing the client-facing interface of the censor.

::

    python -m probe.lab.injector --iface r0 --config INJECT.json

``INJECT.json`` is re-read whenever it changes::

    {"dns": {"name": ["203.0.113.7"]},
     "tcp": [{"port": 443, "hex": "00000f...", "flags": "FA"}]}

* ``dns``: for an A query naming ``name`` (to any resolver), forge a reply from the queried
  resolver's address with the given addresses, as the Great Firewall does. Whether the forged reply
  arrives first is up to the scenario: the ISP resolver holds the genuine one back.
* ``tcp``: for a client segment to ``port`` whose payload contains the bytes ``hex``, send the
  client a segment with ``flags`` ("R" for a reset, "FA" for a FIN) that fits its sequence space,
  spoofed from the server. The scenario drops the trigger segment itself with iptables (an in-path
  box), so the server never answers and the injected packet decides what the client sees.

Injected packets carry scapy's defaults (TTL 64, IP ID 1, no DF, window 0): the tells a packet-level
analysis uses to tell them from the server's own. A ``tcp`` rule with ``"ttl": "copy"`` evades a
naive TTL check the way some real injectors do: it copies the TTL of the server's SYN-ACK on the
same flow (as it leaves the censor), so its packet reaches the client with the server's TTL; it
also draws a random IP ID. It still sends without DF, as packet tools do.
"""

from __future__ import annotations

import argparse
import random
import sys
from typing import Any

from probe.lab.dnsserver import ConfigFile
from probe.lab.safety import require_lab_namespace

__all__ = ["main"]


def run(iface: str, config: str) -> None:
    """Sniff ``iface`` and inject per ``config`` until killed."""
    require_lab_namespace("injected packets")
    # scapy only after the check: importing it reads the interfaces and routes (~1 s).
    from scapy.all import DNS, DNSRR, IP, TCP, UDP, conf, sniff

    conf.ifaces.reload()
    conf.route.resync()
    cfg = ConfigFile(config, {})
    l3 = conf.L3socket()
    # TTL of the server's SYN-ACK per flow (client ip, client port, server ip, server port),
    # as it leaves the censor towards the client: what a TTL-copying injector reuses.
    ttls: dict[tuple[str, int, str, int], int] = {}

    def on_packet(pkt: Any) -> None:
        rules = cfg.get()
        if not rules or IP not in pkt:
            return
        ip = pkt[IP]
        if UDP in pkt and DNS in pkt and ip[UDP].dport == 53:
            dns = pkt[DNS]
            if dns.qr != 0 or not dns.qd:
                return
            q = dns.qd[0] if hasattr(dns.qd, "__getitem__") else dns.qd
            qname = q.qname.decode("ascii", "replace").rstrip(".").lower()
            addrs = rules.get("dns", {}).get(qname)
            if not addrs or q.qtype != 1:
                return
            answers = None
            for a in addrs:
                rr = DNSRR(rrname=q.qname, type="A", ttl=300, rdata=a)
                answers = rr if answers is None else answers / rr
            forged = (
                IP(src=ip.dst, dst=ip.src)
                / UDP(sport=53, dport=ip[UDP].sport)
                / DNS(id=dns.id, qr=1, aa=0, rd=dns.rd, ra=1, qd=dns.qd, an=answers)
            )
            l3.send(forged)
            return
        if TCP in pkt:
            seg = ip[TCP]
            if seg.sport in (80, 443) and "S" in str(seg.flags) and "A" in str(seg.flags):
                if len(ttls) > 4096:
                    ttls.clear()
                ttls[(ip.dst, seg.dport, ip.src, seg.sport)] = ip.ttl
                return
            payload = bytes(seg.payload)
            if not payload:
                return
            for rule in rules.get("tcp", []):
                if seg.dport == int(rule["port"]) and bytes.fromhex(rule["hex"]) in payload:
                    flags = rule.get("flags", "R")
                    ip_fields: dict[str, Any] = {}
                    if rule.get("ttl") == "copy":
                        ip_fields["ttl"] = ttls.get((ip.src, seg.sport, ip.dst, seg.dport), 64)
                        ip_fields["id"] = random.randrange(1, 65536)
                    reply = IP(src=ip.dst, dst=ip.src, **ip_fields) / TCP(
                        sport=seg.dport,
                        dport=seg.sport,
                        flags=flags,
                        seq=seg.ack,
                        ack=(seg.seq + len(payload)) & 0xFFFFFFFF,
                        window=0,
                    )
                    l3.send(reply)
                    return

    sniff(
        iface=iface,
        filter="udp dst port 53 or (tcp dst port 80 or tcp dst port 443) or "
        "((tcp src port 80 or tcp src port 443) and tcp[tcpflags] & tcp-syn != 0)",
        prn=on_packet,
        store=False,
        started_callback=lambda: print("ready", flush=True),
    )


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point (see the module docstring)."""
    ap = argparse.ArgumentParser(prog="python -m probe.lab.injector")
    ap.add_argument("--iface", required=True, help="interface facing the client")
    ap.add_argument("--config", required=True, help="injection rules JSON, re-read on change")
    args = ap.parse_args(argv)
    try:
        run(args.iface, args.config)
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
