"""Several scenarios' censors at once (`probe lab censor A B`), and why two cannot be combined.

Switching several techniques on makes one :class:`Censor` of all their parts (:func:`combine`).
That works only when no two of them act on the same traffic: iptables takes the first rule
that matches, a redirected flow never reaches the FORWARD chain, the resolver has one answer
per name and the injector one per trigger, and an NFQUEUE queue is served by one program. Had
both run, one of the two would silently never act (what combining two scenarios by hand used
to do). :func:`conflicts` finds those pairs before anything is changed.

Each part of a censor (an iptables rule, a resolver override, an injector trigger, a proxy
Host, a QUIC censor entry) is read as an :class:`Effect` on a :class:`Flow`: the flows from
the client (or the helper) to a server it can act on, by protocol, server address, server port
and the names the flow carries (an SNI, a Host, a DNS query name). Two effects of two
scenarios conflict when their flows can meet and the effects differ; the very same rule in
both is kept once and is no conflict. The reading is conservative: a part it cannot narrow
(an unknown option, a name that is not the lab's) acts on more traffic, never less, so a
combination is refused rather than silently broken. Besides, the censor's knobs (delay and
bandwidth) take one value, and one queue one program.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, fields

from probe.lab.fetcensor import QUEUE as FET_QUEUE
from probe.lab.quiccensor import QUEUE as QUIC_QUEUE
from probe.lab.scenarios import Censor, Scenario
from probe.lab.sites import SITES
from probe.lab.topology import CENSOR_IN, HELPER
from probe.lab.tunnels import RESOLVER_IP, RESOLVER_NAME

__all__ = ["Conflict", "Effect", "Flow", "combine", "conflicts", "effects"]

#: The transparent proxy's port: a NAT rule redirecting there routes flows through the proxy,
#: which acts only on the Hosts it is given and relays every other flow untouched.
PROXY_PORT = 3129
#: The queues of the latency knob's delay programs (probe/lab/lab.py: one per direction).
DELAY_QUEUES = (0, 1)
#: Programs serving the queues of scenarios' NFQUEUE rules (``Censor.programs``).
PROGRAM_QUEUES = {"fet": FET_QUEUE}

_Range = tuple[int, int]
_NAME = re.compile(rb"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)+")


def _addresses_of_names() -> dict[str, tuple[str, ...]]:
    out: dict[str, tuple[str, ...]] = {RESOLVER_NAME: (RESOLVER_IP,)}
    for s in SITES:
        out[s.name] = tuple(a for a in (s.ip, s.alt_ip) if a)
    return out


_ADDRESSES = _addresses_of_names()


@dataclass(frozen=True)
class Flow:
    """Traffic from a client to a server that one part of a censor can act on.

    ``None`` means any: any protocol, any server address, any server port, whatever names the
    flow carries. ``addresses`` are inclusive ranges of IPv4 addresses as integers.
    """

    proto: str | None = None
    addresses: tuple[_Range, ...] | None = None
    ports: frozenset[int] | None = None
    names: frozenset[str] | None = None

    def meets(self, other: Flow) -> bool:
        """Whether some flow is both this one and ``other``."""
        if self.proto is not None and other.proto is not None and self.proto != other.proto:
            return False
        if self.addresses is not None and other.addresses is not None and not any(
            a_lo <= b_hi and b_lo <= a_hi for a_lo, a_hi in self.addresses for b_lo, b_hi in other.addresses
        ):
            return False
        if self.ports is not None and other.ports is not None and not self.ports & other.ports:
            return False
        return self.names is None or other.names is None or bool(self.names & other.names)

    def describe(self) -> str:
        """In words: ``TCP to 10.66.2.20 port 443 naming tls-fin.lab.example``."""
        parts = [self.proto.upper() if self.proto else "all traffic"]
        if self.addresses is not None:
            shown = [str(ipaddress.IPv4Address(lo)) + ("" if lo == hi else f"-{ipaddress.IPv4Address(hi)}")
                     for lo, hi in self.addresses[:3]]  # fmt: skip
            parts.append("to " + ", ".join(shown) + (" ..." if len(self.addresses) > 3 else ""))
        if self.ports is not None:
            parts.append("port " + ",".join(map(str, sorted(self.ports))))
        if self.names is not None:
            parts.append("naming " + ", ".join(sorted(self.names)))
        return " ".join(parts)


@dataclass(frozen=True)
class Effect:
    """One part of a scenario's censor and the traffic it acts on.

    ``what`` is the part itself (an iptables rule with its chain, an override): two scenarios
    with the same ``what`` share it. ``role`` sets parts apart that coexist by design:
    ``proxy-route`` (every port-80 flow through the proxy) and ``proxy-host`` (one Host the
    proxy acts on) work together.
    """

    scenario: str
    what: str
    flow: Flow
    role: str = "rule"


@dataclass(frozen=True)
class Conflict:
    """Two scenarios that cannot both work in one lab, and why, in words."""

    first: str
    second: str
    why: str


def _range(text: str) -> tuple[_Range, ...] | None:
    try:
        if "-" in text:
            lo, hi = text.split("-", 1)
            return ((int(ipaddress.IPv4Address(lo)), int(ipaddress.IPv4Address(hi))),)
        net = ipaddress.IPv4Network(text, strict=False)
        return ((int(net.network_address), int(net.broadcast_address)),)
    except ValueError:
        return None  # not an address iptables could mean by the lab: any


def _ports(text: str) -> frozenset[int] | None:
    out: set[int] = set()
    for part in text.split(","):
        lo, _, hi = part.partition(":")
        if not lo.isdigit() or (hi and not hi.isdigit()):
            return None
        out.update(range(int(lo), int(hi or lo) + 1))
    return frozenset(out)


def _hex_string(text: str) -> bytes:
    """iptables ``--hex-string`` text (``Host:|20|name|0d0a|``) as the bytes it matches."""
    out = b""
    for i, part in enumerate(text.split("|")):
        out += bytes.fromhex(part) if i % 2 else part.encode()
    return out


def _names(data: bytes) -> set[str]:
    """Domain names in bytes a string match looks for (an SNI entry, a Host line)."""
    return {m.group().decode() for m in _NAME.finditer(data.lower())}


def _of_names(names: Iterable[str]) -> tuple[_Range, ...] | None:
    """The lab addresses of ``names``; None (any) when one is not a lab name."""
    out: list[_Range] = []
    for name in names:
        if name not in _ADDRESSES:
            return None
        out += [(int(ipaddress.IPv4Address(a)),) * 2 for a in _ADDRESSES[name] if not a.startswith("127.")]
    return tuple(out)


def _rule_flow(rule: str, marks: dict[str, Flow]) -> tuple[Flow, str, str]:
    """The flow an iptables rule acts on, the connection mark it sets ("" none) and the queue
    it feeds ("" none). ``marks``: flows of the marks set by earlier rules of the scenario."""
    tokens = rule.split()
    proto: str | None = None
    dst = src = None
    dports = sports = None
    names: set[str] = set()
    mark = sets_mark = queue = ""
    for i, tok in enumerate(tokens):
        arg = tokens[i + 1] if i + 1 < len(tokens) else ""
        if tok == "-p":
            proto = arg if arg in ("tcp", "udp", "icmp") else None
        elif tok == "-d" or tok == "--dst-range":
            dst = _range(arg)
        elif tok == "-s":
            src = _range(arg)
        elif tok in ("--dport", "--dports"):
            dports = _ports(arg)
        elif tok in ("--sport", "--sports"):
            sports = _ports(arg)
        elif tok == "--string":
            names |= _names(arg.encode())
        elif tok == "--hex-string":
            names |= _names(_hex_string(arg))
        elif tok == "--mark" and tokens[i - 1] != "--set-mark":
            mark = arg
        elif tok == "--set-mark":
            sets_mark = arg
        elif tok == "--queue-num":
            queue = arg
    if mark and mark in marks:
        return marks[mark], sets_mark, queue  # only the connections that rule marked
    # A rule on the server's side of the flow (its port is the source) names the server as -s.
    server_side = sports is not None and dports is None
    ports = sports if server_side else dports
    addresses = src if server_side else dst
    if names and addresses is None:
        addresses = _of_names(names)
    return Flow(proto, addresses, ports, frozenset(names) or None), sets_mark, queue


def _one(address: str) -> tuple[_Range, ...]:
    ip = int(ipaddress.IPv4Address(address))
    return ((ip, ip),)


def effects(s: Scenario) -> list[Effect]:
    """Every part of ``s``'s censor with the traffic it acts on."""
    c = s.censor
    out: list[Effect] = []
    marks: dict[str, Flow] = {}
    for chain, rules in (("forward", c.forward), ("nat", c.nat), ("server", c.server_input),
                         ("censor-input", c.censor_input), ("helper-input", c.helper_input)):  # fmt: skip
        for rule in rules:
            flow, sets_mark, _ = _rule_flow(rule, marks)
            if sets_mark:
                marks[sets_mark] = flow
            if chain == "helper-input":  # the client's link to the helper: nothing else uses it
                flow = Flow(None, _one(HELPER))
            role = "proxy-route" if chain == "nat" and f"--to-ports {PROXY_PORT}" in rule else "rule"
            out.append(Effect(s.name, f"{chain}: {rule}", flow, role))
    for name, action, addrs, delay in c.resolver:
        out.append(Effect(s.name, f"resolver: {name} {action} {','.join(addrs)} {delay:g}",
                          Flow("udp", _one(CENSOR_IN), frozenset({53}), frozenset({name.lower()}))))
    for name, addrs in c.inject_dns:
        out.append(Effect(s.name, f"injector: DNS {name} {','.join(addrs)}",
                          Flow("udp", None, frozenset({53}), frozenset({name.lower()}))))
    for copy, triggers in (("", c.inject_tcp), (" (copying the TTL)", c.inject_tcp_copy_ttl)):
        for port, hx, flags in triggers:
            found = _names(bytes.fromhex(hx))
            trigger = bytes.fromhex(hx).decode("ascii", "replace")
            out.append(Effect(s.name, f"injector{copy}: {flags} after a port-{port} segment with {trigger!r}",
                              Flow("tcp", _of_names(found) if found else None, frozenset({port}),
                                   frozenset(found) or None)))  # fmt: skip
    for host in c.proxy_block:
        out.append(Effect(s.name, f"proxy: block page for {host}", _host_flow(host), "proxy-host"))
    for host, location in c.proxy_redirect:
        out.append(Effect(s.name, f"proxy: {host} redirected to {location}", _host_flow(host), "proxy-host"))
    for name in c.quic_sni:
        out.append(Effect(s.name, f"QUIC censor: SNI {name}",
                          Flow("udp", _of_names([name.lower()]), frozenset({443}),
                               frozenset({name.lower()}))))
    for ip in c.quic_drop_data:
        out.append(Effect(s.name, f"QUIC censor: data to {ip}", Flow("udp", _one(ip), frozenset({443}))))
    return out


def _host_flow(host: str) -> Flow:
    return Flow("tcp", _of_names([host.lower()]), frozenset({80}), frozenset({host.lower()}))


def _queues(s: Scenario) -> dict[int, str]:
    """The NFQUEUE queues ``s`` needs, and the program serving each."""
    out = {q: "delay" for q in DELAY_QUEUES} if s.latency_ms else {}
    if s.censor.quic_sni or s.censor.quic_drop_data:
        out[QUIC_QUEUE] = "quic"
    for rule in s.censor.forward:
        _, _, queue = _rule_flow(rule, {})
        if queue.isdigit():
            served = [p for p in s.censor.programs if str(PROGRAM_QUEUES.get(p)) == queue]
            out[int(queue)] = served[0] if served else "nothing"
    return out


def _pair(a: Scenario, b: Scenario, ea: Sequence[Effect], eb: Sequence[Effect]) -> Iterator[str]:
    """Why ``a`` and ``b`` cannot both work (nothing: they can).

    A part both scenarios have is no conflict in itself; it still meets the other's own parts
    (one drops a ClientHello, the other drops it and injects a FIN: the first's timeout is gone).
    """
    shared = {x.what for x in ea} & {y.what for y in eb}
    for x in ea:
        for y in eb:
            if x.what in shared and y.what in shared:
                continue
            if {x.role, y.role} == {"proxy-route", "proxy-host"}:
                continue  # the proxy acts on its Hosts and relays every other flow
            if x.flow.meets(y.flow):
                yield (f"both act on {x.flow.describe() if x.flow.addresses else y.flow.describe()}: "
                       f"{a.name} by {x.what}; {b.name} by {y.what}")  # fmt: skip
                return
    for knob, va, vb in (("the censor's delay (ms each way)", a.latency_ms, b.latency_ms),
                         ("the censor's bandwidth", a.bandwidth, b.bandwidth)):  # fmt: skip
        if va and vb and va != vb:
            yield f"{knob} takes one value: {a.name} wants {va}, {b.name} {vb}"
            return
    qa, qb = _queues(a), _queues(b)
    for q in sorted(set(qa) & set(qb)):
        if qa[q] != qb[q]:
            yield f"NFQUEUE {q} is served by one program: {a.name} needs {qa[q]}, {b.name} {qb[q]}"
            return


def conflicts(scenarios: Sequence[Scenario]) -> list[Conflict]:
    """Every pair of ``scenarios`` that cannot both work in one lab (empty: they combine)."""
    found = []
    each = [(s, effects(s)) for s in scenarios]
    for i, (a, ea) in enumerate(each):
        for b, eb in each[i + 1:]:
            if a.name != b.name:
                found += [Conflict(a.name, b.name, why) for why in _pair(a, b, ea, eb)]
    return found


def combine(scenarios: Sequence[Scenario]) -> Censor:
    """One censor doing what every one of ``scenarios`` does (check :func:`conflicts` first);
    a part two scenarios share is kept once."""
    merged = {}
    for f in fields(Censor):
        items = [item for s in scenarios for item in getattr(s.censor, f.name)]
        merged[f.name] = tuple(dict.fromkeys(items))
    return Censor(**merged)
