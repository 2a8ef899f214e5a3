"""The lab as the catalogue of what probe detects: scenarios grouped by technique, chosen by
scenario or group name, and, for every verdict, reason, trace conclusion and outage state the
judges can name, the scenarios that reproduce it or the reason none can.

The vocabulary is the judges' own: the verdicts (``probe.core.model.VERDICTS``), the reasons of
``probe.judge.explain.REASONS`` (the one table of reason codes), what a trace can conclude a
censor does (``probe.measure.trace.TECHNIQUES``) and the outage states (``OUTAGE_STATES`` of
``probe.research.outages``, and ``missed``). A scenario reproduces a term when its expectations
check it: a verdict it expects, a reason code an expectation names, a trace technique, an
outage state. Some terms need conditions the lab cannot make (the Internet's own addresses,
history, a broken control); :data:`NOT_IN_LAB` says why for each, and
tests/lab/test_lab_data.py fails on a term with neither a scenario nor a reason, and on a
reason given for a term some scenario reproduces.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from probe.core.model import VERDICTS
from probe.judge.explain import REASONS
from probe.lab.scenarios import SCENARIOS, EndpointExpect, Expect, OutageExpect, Scenario, TraceExpect
from probe.measure.trace import TECHNIQUES
from probe.research.outages import OUTAGE_STATES

__all__ = ["GROUPS", "NOT_IN_LAB", "Term", "by_group", "codes", "select", "terms"]

#: The technique groups, in the catalogue's order: name -> what its scenarios show.
GROUPS: dict[str, str] = {
    "web": "DNS, TCP, TLS and HTTP techniques against web sites (decoys telling a name "
    "filtered from an address blocked), and what looks like them",
    "packets": "who sent that reset, FIN or DNS answer: packet-level evidence (--capture) and "
    "DNS probes of an address with no resolver (--dns-probe)",
    "trace": "`probe trace`: the censor located at a hop of the path",
    "throttling": "a site slowed down, next to a network slow for everyone",
    "circumvention": "Tor, OpenVPN, encrypted DNS, fully encrypted traffic and WireGuard "
    "(`probe circumvention`)",
    "quic-ech": "HTTP/3 (QUIC) and Encrypted Client Hello (`probe run --quic --ech`)",
    "outages": "national isolation, DNS-only, partial and full shutdowns (`probe outages`)",
    "messaging": "Telegram's data centres and web, WhatsApp and Signal (`probe messaging`)",
}

#: Terms of the judges' vocabulary no lab scenario reproduces, and why: ``kind:code`` -> why.
NOT_IN_LAB: dict[str, str] = {
    "reason:dns/bogon": "the lab's sites live on private addresses, and a private answer the "
    "control sees too is never a bogon; a public address would have to be routed inside the "
    "lab (dns-bogon reproduces the lie, judged dns/inconsistent)",
    "reason:dns/blockpage": "the DNS fingerprints are real ISPs' public block-page addresses, "
    "which the lab does not route (dns-blockpage answers the lab's own block-page server: "
    "dns/inconsistent, then http/blockpage)",
    "reason:dns/refused": "a resolver refusing the query for one name: the lab's resolver "
    "cannot say REFUSED (dns-servfail reproduces its sibling)",
    "reason:dns/answer-for-nxdomain": "needs a name the control finds nowhere while the "
    "resolver answers it (a wildcard ISP resolver); not built",
    "reason:dns/failure": "a DNS failure other than those named (a malformed reply): the lab's "
    "servers answer well-formed messages",
    "reason:tls/local": "this machine's own network failing during a handshake: the lab's "
    "client always has its route",
    "reason:http/local": "as tls/local, during the HTTP exchange",
    "reason:tcp/reset": "a connection reset after it was established, before TLS or HTTP: no "
    "real censor is known to do it, and the lab's rules reset handshakes and requests",
    "reason:tcp/failure": "a TCP failure other than timeout, refusal or reset (ICMP "
    "unreachable from a router): not built",
    "reason:tls/handshake-failed": "a TLS alert instead of a reset while the control completes: "
    "not built",
    "reason:tls/failure": "a TLS failure other than those named: not built",
    "reason:http/eof": "a connection closed after the request named the site: the lab's "
    "injector closes TLS handshakes (tls/eof), not HTTP requests",
    "reason:http/authenticated-redirect": "a site's own redirect over a valid certificate that "
    "the control does not see: not built",
    "reason:http/false-positive": "the false-positive fingerprints are real CDNs' bot "
    "challenges; the lab serves none of them",
    "reason:http/false-positive-wins": "as http/false-positive",
    "reason:http/diff": "pages that differ from the control's without a block page: the lab's "
    "sites serve one body to everyone (dynamic changes it on every fetch and stays ok)",
    "reason:http/slow": "throttling without a control's speed to compare with: the throttling "
    "scenarios always have one (http/throttled, control/http-speed)",
    "reason:control/failed": "the helper answering with an error: the lab's helper always "
    "answers (control-unreachable makes it unreachable: control/unavailable)",
    "reason:measurement/deadline_exceeded": "a URL's whole deadline running out: the lab's "
    "steps time out first, by design",
    "reason:measurement/no-hops": "nothing measured for a URL: only when the measurement "
    "itself breaks",
    "reason:quic/handshake-failed": "a QUIC handshake closed with a TLS alert: not built",
    "reason:quic/other": "a QUIC failure other than those named: not built",
    "reason:quic/address-blocked": "QUIC and TCP to the address both failing while the "
    "control's QUIC works: not built (tcp-blackhole's site has no QUIC server)",
    "reason:control/no-http3": "a control without an HTTP/3 result: the lab's helper is probe's "
    "own, which always makes one",
    "reason:quic/no-decoy": "QUIC failing without a decoy handshake: the probe always makes one",
    "reason:quic/deadline": "a QUIC handshake cut by the URL's deadline: the lab's QUIC "
    "timeouts end first",
    "reason:ech/deadline": "as quic/deadline, for ECH",
    "reason:quic/local-only": "this machine's own network failing: the lab's client always has "
    "its route",
    "reason:quic/not-measured": "a URL with no https hop or no address under --quic: not built",
    "reason:control/no-quic": "a control helper without QUIC (OONI's): the lab's helper is probe's own",
    "reason:ech/plain": "the plain ClientHello failing too: then the web test fails, which the "
    "web scenarios cover",
    "reason:ech/eof": "an ECH hello answered by closing the connection: not built (ech-reset "
    "resets it)",
    "reason:ech/alert": "an ECH hello answered with a TLS alert: not built",
    "reason:ech/not_tls": "an ECH hello answered with something that is not TLS: not built",
    "reason:ech/residual": "an address blocked for a while after an ECH hello: the lab's ECH "
    "censor drops the hello only",
    "reason:ech/not-sent": "no ECH hello sent: only when the hello cannot be built",
    "reason:ech/not-measured": "a URL with no https hop or no address under --ech: not built",
    "reason:ech/local-only": "this machine's own network failing: the lab's client always has "
    "its route",
    "reason:control/no-ech": "a control helper without the ECH test (OONI's): the lab's helper "
    "is probe's own",
    "trace:response": "an answer injected before the server (a block page) to the trace's "
    "TTL-limited trigger: not built",
    "outage:missed": "needs the history of a scheduled probe with runs missing; a scenario is "
    "one run",
}


@dataclass(frozen=True)
class Term:
    """One term of the judges' vocabulary: its kind (``verdict``, ``reason``, ``trace``,
    ``outage``), its code, the scenarios that reproduce it and, when none can, why."""

    kind: str
    code: str
    scenarios: tuple[str, ...]
    why_not: str

    @property
    def key(self) -> str:
        """``kind:code``, as :data:`NOT_IN_LAB` names it."""
        return f"{self.kind}:{self.code}"


def by_group(group: str) -> tuple[Scenario, ...]:
    """The scenarios of one technique group, in the catalogue's order."""
    return tuple(s for s in SCENARIOS if s.group == group)


def select(names: Iterable[str]) -> tuple[Scenario, ...]:
    """The scenarios called ``names``, a group name standing for its scenarios (none: every
    scenario, group by group); each once. KeyError names what is known."""
    names = list(names)
    if not names:
        names = list(GROUPS)
    by_name = {s.name: s for s in SCENARIOS}
    chosen: dict[str, Scenario] = {}
    for name in names:
        if name in GROUPS:
            chosen.update((s.name, s) for s in by_group(name))
        elif name in by_name:
            chosen.setdefault(name, by_name[name])
        else:
            raise KeyError(f"no scenario or group {name!r}; groups: {', '.join(GROUPS)}; "
                           f"scenarios: {', '.join(by_name)}")  # fmt: skip
    return tuple(chosen.values())


def _code(reason: str) -> str:
    """The ``stage/outcome`` code of a reason (``tls/reset:10.66.2.18`` -> ``tls/reset``), as
    explain's table keys it (``quic/decoy-ok`` reads as ``quic/decoy``)."""
    code = reason.partition(":")[0]
    stage, _, outcome = code.partition("/")
    if code not in REASONS and stage in ("quic", "ech"):
        short = f"{stage}/{outcome.partition('-')[0]}"
        if short in REASONS:
            return short
    return code


def codes(s: Scenario) -> Iterator[tuple[str, str]]:
    """``(kind, code)`` of every term ``s``'s expectations check."""
    for e in s.expectations:
        if isinstance(e, Expect):
            yield "verdict", e.verdict
            for reason in (e.reason, *e.evidence):
                if reason and "/" in reason:
                    yield "reason", _code(reason)
            for _, verdict, reason in e.protocols:
                yield "verdict", verdict
                if reason:
                    yield "reason", _code(reason)
        elif isinstance(e, EndpointExpect):
            yield "verdict", e.verdict
            if e.reason:
                yield "reason", _code(e.reason)
        elif isinstance(e, TraceExpect):
            if e.technique:
                yield "trace", e.technique
        elif isinstance(e, OutageExpect):
            yield from (("outage", state) for state in e.states)


def _vocabulary() -> Iterator[tuple[str, str]]:
    yield from (("verdict", v) for v in VERDICTS)
    yield from (("reason", r) for r in REASONS)
    yield from (("trace", t) for t in TECHNIQUES)
    yield from (("outage", o) for o in (*OUTAGE_STATES, "missed"))


def terms(scenarios: Iterable[Scenario] = SCENARIOS) -> list[Term]:
    """Every term of the judges' vocabulary with the scenarios that reproduce it (in the order of
    ``scenarios``) and, when none does, the reason from :data:`NOT_IN_LAB` ("" if none is given)."""
    found: dict[tuple[str, str], list[str]] = {}
    for s in scenarios:
        for key in dict.fromkeys(codes(s)):
            found.setdefault(key, []).append(s.name)
    return [Term(kind, code, tuple(found.get((kind, code), ())), NOT_IN_LAB.get(f"{kind}:{code}", ""))
            for kind, code in _vocabulary()]  # fmt: skip
