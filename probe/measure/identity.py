"""The network identity of a run: which network the probe measured from, and which resolver.

Two questions are answered before a run (and again at its end, to notice a network change):

- **the probe's public address**, learned by two routes at once: a STUN binding request
  (RFC 5389) to configurable servers, the way OONI does (a second set of servers, run in China
  and Russia, is asked only when none of the first answered), and the run's own test helpers,
  asked ``{"x_client_address": true}`` (probe's helper answers; OONI's do not). The address
  itself is never stored: only what it maps to in the offline IP data (ASN, AS organisation,
  country), and the scrubber (:mod:`probe.run.scrub`) uses it to remove it from everything
  stored;
- **the resolver's identity seen from outside**: "whoami" names (an authoritative server that
  answers with the address the query came from, e.g. ``whoami.akamai.net``), asked through the
  probe's resolver, give the resolver's egress address and so its ASN: many verdicts depend on
  which resolver lied.

Servers and names come from ``--stun`` / ``--whoami``, else ``$PROBE_STUN_SERVERS`` /
``$PROBE_WHOAMI_NAMES`` (comma-separated; ``none`` turns the check off), else the defaults
below. Network failures are recorded as failures, never raised: a run without identity still
measures.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import secrets
import socket
import struct
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from probe.core.codec import CodecError, decode_json, encode_json
from probe.core.failures import Failure
from probe.core.failures import failure_string as from_exception
from probe.core.net import parse_hostport
from probe.core.settings import IdentityConfig
from probe.measure import localaddrs, minihttp
from probe.measure.control.protocol.wire import ClientAddress, RequestMessage

__all__ = [
    "Identity",
    "discover",
    "helper_client_address",
    "stun_public_ip",
    "vantage_name",
    "whoami",
]

_MAGIC_COOKIE = 0x2112A442
_BINDING_REQUEST = 0x0001
_BINDING_SUCCESS = 0x0101
_ATTR_MAPPED = 0x0001
_ATTR_XOR_MAPPED = 0x0020


@dataclass(frozen=True)
class Identity:
    """What a run knows about its network. ``public_ips`` and ``local_ips`` are never stored."""

    asn: int = 0
    as_org: str = ""
    country: str = ""
    resolver_ip: str = ""  # the resolver's egress address ("" if unknown or the probe's own)
    resolver_asn: int = 0
    resolver_as_org: str = ""
    resolver_country: str = ""
    stun_server: str = ""  # which server answered
    #: The route that taught the public address ("stun HOST:PORT", "helper URL"), "" if none.
    learned_from: str = ""
    whoami_name: str = ""
    failures: tuple[str, ...] = ()
    checked_at: float = 0.0
    public_ips: frozenset[str] = field(default=frozenset(), repr=False)
    local_ips: frozenset[str] = field(default=frozenset(), repr=False)

    @property
    def known(self) -> bool:
        """True when the public address was learned (the ASN may still be unknown)."""
        return bool(self.public_ips)

    def same_network(self, other: Identity) -> bool:
        """True unless the AS, the country or every public address changed.

        Some NATs (carrier-grade ones, multi-homed routers) map flows to several addresses of
        one pool, so sharing one address is enough; a different AS is always another network.
        """
        if (self.asn, self.country) != (other.asn, other.country):
            return False
        return bool(self.public_ips & other.public_ips)

    def record(self) -> dict[str, Any]:
        """The storable part: no address of the probe's own."""
        return {
            "asn": self.asn or None,
            "as_org": self.as_org or None,
            "country": self.country or None,
            "resolver_ip": self.resolver_ip or None,
            "resolver_asn": self.resolver_asn or None,
            "resolver_as_org": self.resolver_as_org or None,
            "resolver_country": self.resolver_country or None,
            "stun_server": self.stun_server or None,
            "public_address": ("learned from " + self.learned_from) if self.known else (
                "unknown: " + self.unknown_why),
            "whoami_name": self.whoami_name or None,
            "failures": list(self.failures),
            "checked_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.checked_at))
            if self.checked_at else None,
        }

    @property
    def unknown_why(self) -> str:
        """Why the public address is unknown, in a few words ("" when it is known)."""
        if self.known:
            return ""
        if not self.failures or self.failures == ("stun: off",):
            return "identity check off"
        if any(f.startswith("helper ") for f in self.failures):
            return "no STUN server or helper answered"
        return "no STUN server answered"

    def describe(self) -> str:
        """One short line for the terminal (no addresses of the probe; ~70 columns at most)."""
        if not self.known:
            return f"network unknown ({self.unknown_why})"

        def short(org: str) -> str:
            return org if len(org) <= 20 else org[:19] + "…"

        net = f"AS{self.asn}" if self.asn else "unknown AS"
        if self.as_org:
            net += f" {short(self.as_org)}"
        if self.country:
            net += f" {self.country}"
        res = f", resolver AS{self.resolver_asn}" if self.resolver_asn else ""
        return f"network {net}{res}"


def vantage_name(identity: Identity) -> str:
    """The default vantage name for a network, e.g. ``AS12389-RU`` (``unknown`` when unknown)."""
    if not identity.asn:
        return "unknown" if not identity.country else f"unknown-{identity.country}"
    return f"AS{identity.asn}-{identity.country}" if identity.country else f"AS{identity.asn}"


def _parse_stun(data: bytes, txid: bytes) -> str | None:
    """The mapped address of a STUN binding success response with our transaction id."""
    if len(data) < 20:
        return None
    mtype, length, cookie = struct.unpack_from("!HHI", data)
    if mtype != _BINDING_SUCCESS or cookie != _MAGIC_COOKIE or data[8:20] != txid:
        return None
    pos, end = 20, min(len(data), 20 + length)
    mapped: str | None = None
    while pos + 4 <= end:
        atype, alen = struct.unpack_from("!HH", data, pos)
        value = data[pos + 4 : pos + 4 + alen]
        pos += 4 + alen + (-alen % 4)
        if atype not in (_ATTR_XOR_MAPPED, _ATTR_MAPPED) or len(value) < 8:
            continue
        family = value[1]
        port_bytes, addr = value[2:4], value[4:]
        del port_bytes
        if atype == _ATTR_XOR_MAPPED:
            key = struct.pack("!I", _MAGIC_COOKIE) + txid
            addr = bytes(a ^ k for a, k in zip(addr, key, strict=False))
        if family == 0x01 and len(addr) >= 4:
            ip = str(ipaddress.IPv4Address(addr[:4]))
        elif family == 0x02 and len(addr) >= 16:
            ip = str(ipaddress.IPv6Address(addr[:16]))
        else:
            continue
        if atype == _ATTR_XOR_MAPPED:
            return ip  # preferred: NATs that rewrite addresses in payloads cannot mangle it
        mapped = mapped or ip
    return mapped


async def stun_public_ip(server: str, timeout: float = 3.0) -> tuple[str | None, str | None, str]:
    """Ask one STUN server for our public address: ``(ip, local_ip, failure)``.

    ``failure`` is "" on success, else an OONI-style failure string. Replies that are not a
    well-formed binding success for our transaction id are ignored (a spoofed or junk datagram
    cannot set the identity).
    """
    try:
        host, port = parse_hostport(server, 3478)
    except ValueError:
        return None, None, "invalid server address"
    loop = asyncio.get_running_loop()
    try:
        infos = await asyncio.wait_for(
            loop.getaddrinfo(host, port, type=socket.SOCK_DGRAM), timeout
        )
    except (OSError, TimeoutError) as exc:
        return None, None, f"cannot resolve the server: {from_exception(exc)}"
    if not infos:
        return None, None, "cannot resolve the server"
    family, _, _, _, addr = infos[0]
    txid = secrets.token_bytes(12)
    request = struct.pack("!HHI", _BINDING_REQUEST, 0, _MAGIC_COOKIE) + txid
    sock = socket.socket(family, socket.SOCK_DGRAM)
    sock.setblocking(False)
    try:
        await loop.sock_connect(sock, addr)
        local = sock.getsockname()[0]
        localaddrs.note(local)
        deadline = loop.time() + timeout
        await loop.sock_sendall(sock, request)
        resent = False
        while True:
            left = deadline - loop.time()
            if left <= 0:
                return None, local, Failure.GENERIC_TIMEOUT_ERROR
            try:
                # One retransmission half-way: STUN runs over UDP, and one loss must not fail it.
                wait = left if resent else min(left, timeout / 2)
                data = await asyncio.wait_for(loop.sock_recv(sock, 2048), wait)
            except TimeoutError:
                if not resent:
                    resent = True
                    await loop.sock_sendall(sock, request)
                    continue
                return None, local, Failure.GENERIC_TIMEOUT_ERROR
            ip = _parse_stun(data, txid)
            if ip is not None:
                return ip, local, ""
    except OSError as exc:
        return None, None, from_exception(exc)
    finally:
        with contextlib.suppress(OSError):
            sock.close()


async def whoami(resolver: str, name: str, timeout: float = 3.0) -> tuple[list[str], str]:
    """Ask ``resolver`` ("IP:PORT") for the A/AAAA records of a whoami ``name``.

    Returns ``(addresses, failure)``: the addresses the authoritative server saw the query come
    from, and "" or an OONI-style failure string. Both queries go out at once, through the
    engine's UDP query (no DoH stack to import: this runs before the first URL of a run).
    """
    # dnspython (~0.1 s) is imported once the STUN requests are out: their round trips run
    # during the import (a run's first packets should not wait for it).
    from probe.measure.dns import UDPQuery

    try:
        host, port = parse_hostport(resolver, 53)
    except ValueError:
        return [], "invalid resolver address"
    queries = [UDPQuery(name, qtype, host, port, timeout, 0.0).start() for qtype in ("A", "AAAA")]
    await asyncio.gather(*(q.task for q in queries if q.task is not None))
    found: list[str] = []
    failure = ""
    for q in queries:
        replies = [r for r in q.replies if r.rcode != "MALFORMED"]
        if replies:  # every A and AAAA record of the answer, whichever the query's type
            found.extend(replies[0].answers)
        if q.failure and q.failure != Failure.DNS_NO_ANSWER:
            failure = failure or q.failure
    return found, "" if found else (failure or Failure.DNS_NO_ANSWER)


async def helper_client_address(helper: str, timeout: float = 3.0,
                                 ssl_context: Any = None) -> tuple[str | None, str]:
    """Ask a test helper which address our request came from: ``(ip, failure)``.

    POSTs ``{"x_client_address": true}`` to the helper's URL (probe's helper answers
    ``{"x_client_address": IP}``; OONI's answer 400). ``failure`` is "" on success; "no
    answer" when nothing came back over HTTP (try another helper), else why the answer is
    not an address.
    """
    body = encode_json(RequestMessage(x_client_address=True))
    answer = await minihttp.exchange(helper, method="POST", body=body,
                                     content_type="application/json", timeout=timeout,
                                     ssl_context=ssl_context, body_max=4096)  # fmt: skip
    if answer is None:
        return None, "no answer"
    status, data = answer
    if status != 200:
        return None, f"HTTP {status} (not a probe helper)"
    try:
        addr = ipaddress.ip_address(
            decode_json(data, ClientAddress, strict=True).x_client_address.split("%", 1)[0])
    except (CodecError, ValueError):
        return None, "not an address"
    if addr.is_loopback or addr.is_unspecified:
        return None, "a helper on this machine"  # it saw us on loopback: nothing to learn
    return str(addr), ""


async def _ask_helpers(helpers: Iterable[str], timeout: float,
                       tls: Callable[[], Any] | None) -> tuple[str, str, list[str]]:
    """The first helper that answers over HTTP decides: ``(ip, helper, failures)``."""
    failures: list[str] = []
    for helper in helpers:
        https = helper.lower().startswith("https:")
        ctx = tls() if https and tls is not None else None
        ip, failure = await helper_client_address(helper, timeout, ctx)
        if ip:
            return ip, helper, failures
        failures.append(f"helper {helper}: {failure}")
        if failure != "no answer":
            break  # it answered, and will not say: its siblings run the same software
    return "", "", failures


async def _ask_stun(servers: Iterable[str], timeout: float, public: set[str], local: set[str],
                    failures: list[str]) -> str:
    """Ask ``servers`` at once; the first that answered (its address added to ``public``)."""
    servers = list(servers)
    results = await asyncio.gather(*(stun_public_ip(s, timeout) for s in servers))
    used = ""
    for server, (ip, src, failure) in zip(servers, results, strict=True):
        if src:
            local.add(src)
        if ip:
            public.add(ip)
            used = used or server
        else:
            failures.append(f"stun {server}: {failure}")
    return used


async def discover(resolvers: Iterable[str], config: IdentityConfig, geo: Any, *,
                   helpers: Iterable[str] = (), tls: Callable[[], Any] | None = None) -> Identity:
    """Learn the network identity: STUN and the helpers for the public address, whoami for the
    resolver.

    ``resolvers`` are the probe's resolvers ("IP:PORT"); ``geo`` a :class:`probe.inputs.geo.GeoDB`
    or None; ``helpers`` the run's test helpers (asked in turn unless
    ``config.ask_helpers`` is off), ``tls`` makes the context that verifies an https one
    (called only then; None: the system's CAs). Never raises for network failures: they are
    listed in ``Identity.failures``.
    """
    resolvers = list(resolvers)
    helpers = list(helpers) if config.ask_helpers else []
    failures: list[str] = []
    public: set[str] = set()
    local: set[str] = set()  # the source addresses of the STUN exchanges

    async def ask_whoami() -> tuple[str, str, list[str]]:
        tried: list[str] = []
        if config.whoami_names and resolvers:
            for name in config.whoami_names:
                addrs, failure = await whoami(resolvers[0], name, config.timeout)
                if addrs:
                    return addrs[0], name, tried
                tried.append(f"whoami {name}: {failure}")
        return "", "", tried

    # STUN, the helpers and whoami at once: one round trip before the first URL, not three.
    whoami_task = asyncio.ensure_future(ask_whoami())
    helper_task = asyncio.ensure_future(_ask_helpers(helpers, config.timeout, tls))
    stun_used = ""
    try:
        if config.stun_servers:
            stun_used = await _ask_stun(config.stun_servers, config.timeout, public, local,
                                        failures)
            if not public and config.stun_fallback:
                # Where the first servers are blocked (Google's in China): servers run there.
                stun_used = await _ask_stun(config.stun_fallback, config.timeout, public, local,
                                            failures)
            if public:
                failures = [f for f in failures if not f.startswith("stun ")]
        else:
            failures.append("stun: off")
        helper_ip, helper_used, helper_failures = await helper_task
    except BaseException:
        whoami_task.cancel()
        helper_task.cancel()
        raise
    learned_from = f"stun {stun_used}" if stun_used else ""
    if helper_ip:
        public.add(helper_ip)
        learned_from = learned_from or f"helper {helper_used}"
    elif not public:
        failures.extend(helper_failures)

    resolver_ip, whoami_used, whoami_failures = await whoami_task
    failures.extend(whoami_failures)

    def info(ip: str) -> tuple[int, str, str]:
        found = geo.lookup(ip) if geo is not None and ip else None
        return (found.asn, found.org, found.country) if found is not None else (0, "", "")

    # Several routes may see different addresses (dual stack, multiple uplinks): the identity
    # is that of the IPv4 address when there is one, the first otherwise.
    main = sorted(public, key=lambda a: (":" in a, a))[0] if public else ""
    asn, org, cc = info(main)
    r_asn, r_org, r_cc = info(resolver_ip)
    if resolver_ip in public or resolver_ip in local or resolver_ip in localaddrs.seen():
        resolver_ip = ""  # our own address (a local recursive resolver): never stored
    return Identity(
        asn=asn, as_org=org, country=cc,
        resolver_ip=resolver_ip, resolver_asn=r_asn, resolver_as_org=r_org, resolver_country=r_cc,
        stun_server=stun_used, learned_from=learned_from, whoami_name=whoami_used,
        failures=tuple(failures), checked_at=time.time(), public_ips=frozenset(public),
        local_ips=frozenset(local),
    )
