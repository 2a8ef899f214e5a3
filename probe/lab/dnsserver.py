"""The lab's DNS servers (UDP, asyncio, dnspython): the authoritative server and the ISP resolver.

Run inside a lab namespace::

    python -m probe.lab.dnsserver auth --listen 10.66.2.53:53 --zone ZONE.json
    python -m probe.lab.dnsserver resolver --listen 10.66.12.2:53 --upstream 10.66.2.53:53 \\
        --overrides OVERRIDES.json

The zone is ``{"name": {"A": [...], "AAAA": [...]}}``; names absent from it get NXDOMAIN, with the
AA flag set. A name with ``{"whoami": true}`` answers with the address the query came from, as
the "whoami" names of real authoritative servers do (the resolver's egress address).
The resolver forwards to the authoritative server and relays the answer as a
recursive resolver does (AA cleared, RA set), except for names in the overrides file, which the
scenario rewrites while the server runs (it is re-read when it changes)::

    {"name": {"action": "nxdomain" | "servfail" | "drop" | "answer" | "delay",
              "addresses": ["10.10.34.34"], "delay": 0.05}}

``answer`` lies with ``addresses``; ``drop`` never answers; ``delay`` forwards and holds the
genuine answer back (so that an on-path injector wins the race, as real ones do).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import sys
from pathlib import Path
from typing import Any, cast

import dns.exception
import dns.flags
import dns.message
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset

from probe.core.net import parse_hostport, parse_listen
from probe.lab.udpserver import Answer, DatagramServer, serve_udp

__all__ = ["ConfigFile", "main"]


class ConfigFile:
    """A JSON file re-read whenever it changes (checked on use; writers replace it atomically)."""

    def __init__(self, path: str | None, default: Any) -> None:
        self.path = Path(path) if path else None
        self.default = default
        self.value = default
        self._sig: tuple[int, int, int] | None = None

    def get(self) -> Any:
        """The current content (the default when the file is missing or unreadable)."""
        if self.path is None:
            return self.value
        try:
            st = os.stat(self.path)
        except OSError:
            self.value, self._sig = self.default, None
            return self.value
        sig = (st.st_ino, st.st_mtime_ns, st.st_size)
        if sig != self._sig:
            try:
                self.value = json.loads(self.path.read_text())
                self._sig = sig
            except (OSError, ValueError) as exc:
                print(f"dnsserver: cannot read {self.path}: {exc}", file=sys.stderr)
        return self.value


def _norm(name: Any) -> str:
    return str(name.to_text(omit_final_dot=True)).lower()


def _answer(query: Any, addresses: list[str], *, aa: bool, ttl: int = 300) -> Any:
    resp = dns.message.make_response(query)
    q = query.question[0]
    want = "A" if q.rdtype == dns.rdatatype.A else "AAAA" if q.rdtype == dns.rdatatype.AAAA else ""
    if want:
        addrs = [a for a in addresses if (":" in a) == (want == "AAAA")]
        if addrs:
            resp.answer.append(dns.rrset.from_text_list(q.name, ttl, dns.rdataclass.IN, want, addrs))
    if aa:
        resp.flags |= dns.flags.AA
    else:
        resp.flags |= dns.flags.RA
    return resp


def _rcode(query: Any, rcode: str, *, aa: bool) -> Any:
    resp = dns.message.make_response(query)
    resp.set_rcode(dns.rcode.from_text(rcode))
    resp.flags |= dns.flags.AA if aa else dns.flags.RA
    return resp


def _answerer(handler: Any) -> Answer:
    """One datagram -> its DNS reply: ``handler(query, data, addr)`` answers a parsed query
    (a message, raw bytes or None); junk gets no reply, a failing handler SERVFAIL."""

    async def answer(data: bytes, addr: tuple[str, int]) -> bytes | None:
        try:
            query = dns.message.from_wire(data)
        except dns.exception.DNSException:
            return None
        if not query.question:
            return None
        try:
            reply = await handler(query, data, addr)
        except Exception as exc:  # a lab server must keep serving whatever one query does
            print(f"dnsserver: {type(exc).__name__}: {exc}", file=sys.stderr)
            reply = _rcode(query, "SERVFAIL", aa=False)
        if reply is None:
            return None
        return reply if isinstance(reply, bytes) else cast(bytes, reply.to_wire())

    return answer


async def _forward(data: bytes, upstream: tuple[str, int], timeout: float) -> bytes | None:
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setblocking(False)
    try:
        await loop.sock_connect(sock, upstream)
        await loop.sock_sendall(sock, data)
        return await asyncio.wait_for(loop.sock_recv(sock, 65535), timeout)
    except (TimeoutError, OSError):
        return None
    finally:
        sock.close()


async def serve(mode: str, listen: tuple[str, int], *, zone: str | None = None,
                upstream: tuple[str, int] | None = None, overrides: str | None = None) -> None:
    """Serve DNS on ``listen`` until cancelled."""
    zone_file = ConfigFile(zone, {})
    over_file = ConfigFile(overrides, {})

    async def auth(query: Any, data: bytes, addr: tuple[str, int]) -> Any:
        name = _norm(query.question[0].name)
        records = {k.lower(): v for k, v in zone_file.get().items()}.get(name)
        if records is None:
            return _rcode(query, "NXDOMAIN", aa=True)
        if records.get("whoami"):
            return _answer(query, [addr[0]], aa=True, ttl=0)
        return _answer(query, list(records.get("A", [])) + list(records.get("AAAA", [])), aa=True)

    async def resolver(query: Any, data: bytes, addr: tuple[str, int]) -> Any:
        name = _norm(query.question[0].name)
        rule = over_file.get().get(name) or {}
        action = rule.get("action")
        if action == "drop":
            return None
        if action == "nxdomain":
            return _rcode(query, "NXDOMAIN", aa=False)
        if action == "servfail":
            return _rcode(query, "SERVFAIL", aa=False)
        if action == "answer":
            return _answer(query, list(rule.get("addresses", [])), aa=False)
        assert upstream is not None
        raw = await _forward(data, upstream, 2.0)
        if raw is None:
            return _rcode(query, "SERVFAIL", aa=False)
        if action == "delay":
            await asyncio.sleep(float(rule.get("delay", 0.05)))
        try:
            resp = dns.message.from_wire(raw)
        except Exception:
            return raw
        resp.flags = (resp.flags & ~dns.flags.AA) | dns.flags.RA
        return resp

    handler = auth if mode == "auth" else resolver
    await serve_udp(listen, lambda: DatagramServer(_answerer(handler), "dnsserver"),
                    what="a lab DNS server")  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point (see the module docstring)."""
    ap = argparse.ArgumentParser(prog="python -m probe.lab.dnsserver")
    ap.add_argument("mode", choices=("auth", "resolver"))
    ap.add_argument("--listen", required=True, help="IP:PORT")
    ap.add_argument("--zone", help="zone JSON (auth)")
    ap.add_argument("--upstream", help="IP:PORT of the authoritative server (resolver)")
    ap.add_argument("--overrides", help="per-name overrides JSON (resolver), re-read on change")
    args = ap.parse_args(argv)
    if args.mode == "resolver" and not args.upstream:
        ap.error("resolver needs --upstream")
    try:
        asyncio.run(
            serve(
                args.mode,
                parse_listen(args.listen),
                zone=args.zone,
                upstream=parse_hostport(args.upstream, 53) if args.upstream else None,
                overrides=args.overrides,
            )
        )
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
