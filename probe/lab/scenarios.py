"""The lab's scenarios, as data: one frozen record per censorship technique or benign case.

Each :class:`Scenario` names the censor's configuration (:class:`Censor`) and what the probe must
observe and conclude: per target URL of `probe run` (:class:`Expect`), per endpoint of `probe
circumvention` (:class:`EndpointExpect`), for one `probe trace` (:class:`TraceExpect`) or for the
outage rules over a whole run (:class:`OutageExpect`). Every scenario belongs to a technique
group (``web``, ``packets``, ``trace``, ``throttling``, ``circumvention``, ``quic-ech``,
``outages``: probe/lab/catalogue.py) and every censorship scenario names its benign ``twin``, a
scenario that looks alike and must not be flagged. Nothing here runs anything:
:mod:`probe.lab.censor` applies a ``Censor``, :mod:`probe.lab.checks` compares what the probe
stored with the expectations, :mod:`probe.lab.lab` runs the whole thing.

Hops count from 0 (the URL of the list); the "second hop" of a redirect chain is hop 1.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from probe.core.failures import Failure
from probe.core.net import format_endpoint
from probe.lab.blockpage import BLOCKPAGE_FINGERPRINT
from probe.lab.messaging import DC_IP, SERVICES, is_messaging
from probe.lab.sites import ABROAD, BLOCKPAGE_IP, FORGED_IP, SITES, site
from probe.lab.topology import AUTH_DNS, CHAIN, CLIENT, NODNS_IP
from probe.lab.tunnels import (
    BLOCKED_RELAY,
    DOWN_IP,
    OPEN_RELAY,
    REFLECTOR_IP,
    REFLECTOR_TCP,
    REFLECTOR_WIREGUARD,
    RESOLVER_IP,
    RESOLVER_NAME,
    TRUSTED_LIAR,
    UNTRUSTED_LIAR,
    VPN,
)

__all__ = [
    "BOGON",
    "SCENARIOS",
    "Censor",
    "EndpointExpect",
    "Expect",
    "OutageExpect",
    "Scenario",
    "TraceExpect",
    "by_name",
    "host_hex",
    "sni_hex",
]

#: The bogon a lying resolver answers (as Iranian resolvers do with 10.10.34.34-36).
BOGON = "10.10.34.34"


def sni_hex(name: str) -> str:
    """iptables ``--hex-string`` matching a ClientHello's server_name entry for exactly ``name``.

    The entry is type 0 (host_name), a 2-byte length, then the name: matching the length too
    keeps ``notblocked.example`` from matching a rule for ``blocked.example``.
    """
    return f"|00{len(name):04x}|{name}"


def host_hex(name: str) -> str:
    """iptables ``--hex-string`` matching an HTTP ``Host: name`` header line exactly."""
    return f"Host:|20|{name}|0d0a|"


@dataclass(frozen=True)
class Censor:
    """What the censor does during one scenario. The empty record is a censor that does nothing.

    * ``resolver``: ISP resolver overrides, ``(name, action, addresses, delay)`` with action
      ``nxdomain``, ``servfail``, ``drop``, ``answer`` (lie with ``addresses``) or ``delay``;
    * ``forward``: iptables rules (filter table, the censor's ``LAB-FWD`` chain, jumped to from
      FORWARD), written as the arguments after ``-A LAB-FWD``;
    * ``nat``: rules for the nat table's ``LAB-PRE`` chain (jumped to from PREROUTING);
    * ``proxy_block``: Host names the transparent proxy answers with the block page;
    * ``proxy_redirect``: ``(host, location)``: the proxy answers that Host with a forged 302;
    * ``inject_dns``: ``(name, addresses)`` the injector forges A replies with;
    * ``inject_tcp``: ``(port, hex bytes, flags)``: a segment whose payload holds the bytes gets
      a spoofed segment with those flags back;
    * ``inject_tcp_copy_ttl``: same, from an injector that copies the server's TTL (and draws
      random IP IDs) to evade a TTL check;
    * ``server_input``: iptables rules in the *server's* INPUT chain (``LAB-IN``): the site
      itself refusing this client (its kernel sends the RST, with the server's TTL and IP ID);
      rules without ``-s`` apply to the control helper too (a site that is so for everyone);
    * ``quic_sni``: names whose QUIC Initial makes the censor block the flow
      (:mod:`probe.lab.quiccensor`: the GFW's rule, decrypting the Initial to read the SNI);
    * ``quic_drop_data``: server addresses whose QUIC handshakes pass and whose application
      data (1-RTT packets from the client: the HTTP/3 request) is dropped;
    * ``programs``: censor programs to run while the scenario lasts: ``fet`` is the fully
      encrypted traffic rule (probe/lab/fetcensor.py) serving the NFQUEUE its ``forward`` rules
      feed;
    * ``censor_input``: iptables rules in the censor's own INPUT chain (``LAB-LOCAL``): what
      reaches its ISP resolver and its proxy (a shutdown silences the resolver there);
    * ``helper_input``: iptables rules in the uncensored namespace's INPUT chain (``LAB-IN``):
      the client's link to the control helper, which bypasses the censor by design; only a
      shutdown, which cuts the country off from everything abroad, touches it.
    """

    resolver: tuple[tuple[str, str, tuple[str, ...], float], ...] = ()
    forward: tuple[str, ...] = ()
    nat: tuple[str, ...] = ()
    proxy_block: tuple[str, ...] = ()
    inject_dns: tuple[tuple[str, tuple[str, ...]], ...] = ()
    inject_tcp: tuple[tuple[int, str, str], ...] = ()
    proxy_redirect: tuple[tuple[str, str], ...] = ()
    inject_tcp_copy_ttl: tuple[tuple[int, str, str], ...] = ()
    server_input: tuple[str, ...] = ()
    quic_sni: tuple[str, ...] = ()
    quic_drop_data: tuple[str, ...] = ()
    programs: tuple[str, ...] = ()
    censor_input: tuple[str, ...] = ()
    helper_input: tuple[str, ...] = ()


@dataclass(frozen=True)
class Expect:
    """One target URL of a scenario: what the probe must observe, and the verdict expected.

    Observation checks (``None`` or ``""`` means "not checked"):

    * ``step``/``failure``/``step_hop``: the first step of hop ``step_hop`` where every attempt
      failed, and its failure string; ``step="none"`` means every step of every hop succeeded;
    * ``dns_replies``: at least this many replies to the system resolver's A query (hop 0);
    * ``dns_addresses``: the addresses of its first reply;
    * ``dns_reply_addresses``: the addresses of each of its replies, in order of arrival;
    * ``blockpage``: the last HTTP response carries the block page;
    * ``status``: the last HTTP status; ``truncated``: the body was cut at the cap;
    * ``hops``: the number of hops (redirects + 1).

    * ``captured``: the measurement was made with packet capture and holds packets.

    Verdict checks: ``verdict`` always; ``stage`` and ``hop`` when not ``None``; ``reason``, when
    set, must be a substring of one of the verdict's reasons (e.g. the block page's fingerprint);
    so must each of ``evidence`` (packet-level evidence, decoys). ``protocols``: for each
    ``(suite, verdict, reason)``, the opt-in protocol test ``suite`` (``quic``, ``ech``) got
    ``verdict``, with ``reason`` (when not empty) a substring of one of its reasons.
    """

    url: str
    verdict: str
    stage: str | None = None
    hop: int | None = None
    step: str = ""
    failure: str | None = None
    step_hop: int = 0
    dns_replies: int | None = None
    dns_addresses: tuple[str, ...] | None = None
    dns_reply_addresses: tuple[tuple[str, ...], ...] | None = None
    blockpage: bool | None = None
    status: int | None = None
    truncated: bool | None = None
    hops: int | None = None
    reason: str | None = None
    captured: bool | None = None
    evidence: tuple[str, ...] = ()
    protocols: tuple[tuple[str, str, str], ...] = ()


@dataclass(frozen=True)
class EndpointExpect:
    """One endpoint of a ``probe circumvention`` scenario and the verdict it must get.

    Endpoints with an ``address`` are written to the scenario's endpoint list; the others
    (``reflector-fet``, ``reflector-wireguard``) are found through the lab reflector's
    ``/health``. ``observed``, when set, must be a substring of the summary of what was
    observed (probe.lab.checks.observed_endpoint); ``reason`` of one of the verdict's reasons.
    """

    name: str
    kind: str
    verdict: str
    stage: str | None = None
    reason: str | None = None
    observed: str = ""
    address: str = ""
    port: int = 0
    sni: str = ""
    hop: int | None = None  # (endpoints have no hops; kept for the shared report code)

    @property
    def url(self) -> str:
        """How the report names it."""
        where = f" {format_endpoint(self.address, self.port)}" if self.address else ""
        return f"{self.kind} {self.name}{where}"


def trace_summary(censor_hop: int | None, placement: str | None, technique: str | None) -> str:
    """Where a trace put the censor, in a few words: ``censor@4 in-path drop`` or ``no censor``."""
    if censor_hop is None:
        return "no censor" + (f" ({technique})" if technique else "")
    return " ".join(x for x in (f"censor@{censor_hop}", placement or "", technique or "") if x)


@dataclass(frozen=True)
class TraceExpect:
    """One `probe trace` (after CenTrace) of ``url`` at ``ip``, and where it must put the censor.

    Verdict checks, the trace's conclusion: ``censor_hop``, ``placement`` (``on-path``,
    ``in-path``), ``technique`` (``rst``, ``fin``, ``response``, ``drop``) and ``link`` (the
    near hop, its router, the far hop, its router), each exactly; None everywhere means "no
    censor named". Observation checks: ``server_hop``; the routers that reported the trigger's
    and the control's packets expiring, in TTL order (``trigger_routers``/``control_routers``,
    None: not checked), or some that must (``trigger_reaches``) or must not (``trigger_misses``)
    be among the trigger's; at most ``max_packets`` sent (0: not checked); the words the text
    report must hold (``says``) and must not (``never_says``), in lines of 80 columns at most.
    """

    url: str
    ip: str
    censor_hop: int | None
    placement: str | None
    technique: str | None
    link: tuple[int, str, int, str] | None
    server_hop: int | None
    control_name: str = "clean.lab.example"
    trigger_routers: tuple[str, ...] | None = None
    trigger_reaches: tuple[str, ...] = ()
    trigger_misses: tuple[str, ...] = ()
    control_routers: tuple[str, ...] | None = None
    max_packets: int = 0
    says: tuple[str, ...] = ()
    never_says: tuple[str, ...] = ()

    @property
    def verdict(self) -> str:
        """The conclusion expected, in a few words (the report's "expected" column)."""
        return trace_summary(self.censor_hop, self.placement, self.technique)


@dataclass(frozen=True)
class OutageExpect:
    """`probe run` over ``urls``, then the outage rules (`probe outages --country COUNTRY`,
    with the lab's IP-to-country table, probe.lab.sites.GEO) on what it stored.

    ``states``: the outage states found, oldest first (empty: no outage); ``evidence``, when
    set, must be a substring of the first one's evidence; ``offline``: the run must find no
    network before measuring (exit 1, the run recorded ``offline``).
    """

    urls: tuple[str, ...]
    states: tuple[str, ...]
    evidence: str = ""
    country: str = "RU"
    offline: bool = False

    @property
    def url(self) -> str:
        """How the report names what was measured."""
        return f"{len(self.urls)} sites at home and abroad, from {self.country}"

    @property
    def verdict(self) -> str:
        """The outage states expected (the report's "expected" column)."""
        return "outage:" + (",".join(self.states) or "none")


#: Every kind of expectation a scenario can hold.
Expectation = Expect | EndpointExpect | TraceExpect | OutageExpect


@dataclass(frozen=True)
class Scenario:
    """One lab scenario: a technique (or a benign case) and its expected outcome.

    A web scenario has ``targets`` (URLs, measured by `probe run`); a circumvention scenario
    has ``endpoints`` (measured by `probe circumvention`, probe/lab/tunnels.py); a trace
    scenario a ``trace`` (`probe trace`); an outage scenario ``outages`` (`probe run` over many
    sites, then the outage rules).

    ``group`` is the technique group (probe/lab/catalogue.py's ``GROUPS``); left empty, it
    follows from what the scenario measures (``trace``, ``outages``, ``circumvention`` for
    endpoints (``messaging`` for the messaging apps'), ``quic-ech`` when a target expects a
    QUIC or ECH verdict, else ``web``).
    ``twin``, for a censorship scenario, names the benign scenario that looks like it and must
    not be flagged (tests/lab/test_lab_data.py checks that every censorship scenario has one).
    ``latency_ms`` and ``bandwidth`` set the lab's knobs while the scenario runs.
    """

    name: str
    number: int  # the row of issue 5's table
    technique: str
    kind: str  # "censorship" or "benign"
    targets: tuple[Expect, ...]
    censor: Censor = field(default_factory=Censor)
    control: str = "helper"  # "helper", or "unreachable" (a control URL nothing answers)
    notes: str = ""
    probe_args: tuple[str, ...] = ()  # extra `probe run` options (--capture, decoys, ...)
    endpoints: tuple[EndpointExpect, ...] = ()
    latency_ms: float = 0.0  # the censor delays every forwarded packet this much each way
    group: str = ""
    twin: str = ""
    trace: TraceExpect | None = None
    outages: OutageExpect | None = None
    bandwidth: str = ""  # the censor's forwarding capped to this rate (tbf), e.g. "4mbit"

    def __post_init__(self) -> None:
        if not self.group:
            object.__setattr__(self, "group", self._measured_group())

    def _measured_group(self) -> str:
        if self.trace is not None:
            return "trace"
        if self.outages is not None:
            return "outages"
        if self.endpoints:
            return "messaging" if is_messaging(self) else "circumvention"
        if any(e.protocols for e in self.targets):
            return "quic-ech"
        return "web"

    @property
    def expectations(self) -> tuple[Expectation, ...]:
        """The URLs, endpoints, trace and outage expectations of the scenario, in order."""
        extra = tuple(x for x in (self.trace, self.outages) if x is not None)
        return (*self.targets, *self.endpoints, *extra)


def _u(label: str, scheme: str = "http", path: str = "/") -> str:
    return f"{scheme}://{label}.lab.example{path}"


def _ip(label: str) -> str:
    ip = site(f"{label}.lab.example").ip
    assert ip is not None
    return ip


def _name(label: str) -> str:
    return f"{label}.lab.example"


_RST = "-j REJECT --reject-with tcp-reset"
#: The ECH extension's type code point as iptables --hex-string (probe.measure.ech.ECH_EXTENSION).
ECH_HEX = "|fe0d|"
#: The outer SNI of the lab's ECH scenarios (an ECH provider's public name, as Cloudflare's
#: cloudflare-ech.com): the web test's hellos carry the site's own name and never match.
ECH_OUTER = "public.ech.lab.example"


def _resolvers(verdict: str, stage: str | None = None, reason: str | None = None,
               observed: str = "") -> tuple[EndpointExpect, ...]:  # fmt: skip
    """The lab's DoH and DoT resolver (one address, one name), both expected the same way."""
    return tuple(EndpointExpect(f"lab-{kind}", kind, verdict, stage, reason, observed, RESOLVER_IP, port,
                                RESOLVER_NAME) for kind, port in (("doh", 443), ("dot", 853)))  # fmt: skip


def _fet(verdict: str, stage: str | None = None, reason: str | None = None,
         observed: str = "") -> EndpointExpect:  # fmt: skip
    return EndpointExpect("reflector-fet", "fet", verdict, stage, reason, observed)


def _wg(verdict: str, stage: str | None = None, reason: str | None = None,
        observed: str = "") -> EndpointExpect:  # fmt: skip
    return EndpointExpect("reflector-wireguard", "wireguard", verdict, stage, reason, observed)


_ECHO_PORTS = ",".join(map(str, REFLECTOR_TCP))

# --- throttling: a site's large object, fetched beside the run's other sites ---------------------
#: Sites whose large objects load at full speed next to the throttled one (the rule compares a
#: site with the run's others).
_THROTTLE_REFERENCES = ("clean", "tls-rst", "tls-drop", "http-rst", "http-drop")
_THROTTLED = "tls-fin"
#: Throttled and trickled transfers take seconds: longer HTTP steps than the lab's.
_THROTTLE_ARGS = ("--http-timeout", "50", "--deadline", "60")


def _throttle_targets(throttled: Expect, trickle_reason: str | None) -> tuple[Expect, ...]:
    """The references at full speed, the object ``throttled`` expects, and a site slow for
    everyone (the server itself sends 16 KB/s: the control sees it slow too), whose reason,
    when set, must be ``trickle_reason``."""
    return (*(Expect(_u(r, "https", "/large/80"), "ok", step="none", status=200, reason="http/match")
              for r in _THROTTLE_REFERENCES),
            throttled,
            Expect(_u("trickle", "https"), "ok", step="none", status=200, reason=trickle_reason))  # fmt: skip


# --- trace: the censor at hop 3 of the chain client -> 1 -> 2 -> 3 (censor) -> 4 -> server -------
#: The routers as the client sees them: each one's client-facing address, hop 1 to hop 4.
ROUTERS: tuple[str, ...] = tuple(r.inside[1].split("/")[0] for r in CHAIN)
_TRACED = "tls-fin"
_TRACE_SNI = f"-p tcp --dport 443 -m string --algo bm --hex-string {sni_hex(_name(_TRACED))}"


def _trace(**kw: object) -> TraceExpect:
    return TraceExpect(_u(_TRACED, "https"), _ip(_TRACED), **kw)  # type: ignore[arg-type]


# --- outages: every site that answers within the lab's timeouts, at home and abroad ---------------
_OUTAGE_SITES = tuple(s for s in SITES if s.ip and s.kind not in ("slow", "trickle"))
_OUTAGE_URLS = tuple(f"https://{s.name}/" for s in _OUTAGE_SITES)


def _abroad(ip: str) -> bool:
    last = int(ip.rsplit(".", 1)[1])
    return int(ABROAD[0].rsplit(".", 1)[1]) <= last <= int(ABROAD[1].rsplit(".", 1)[1])


_N_ABROAD = sum(1 for s in _OUTAGE_SITES if s.ip and s.ip.startswith("10.66.2.") and _abroad(s.ip))


def _relay(name: str, verdict: str, stage: str | None = None, reason: str | None = None,
           address: str = OPEN_RELAY, port: int = 9001) -> EndpointExpect:  # fmt: skip
    return EndpointExpect(name, "tor", verdict, stage, reason, address=address, port=port)


def _vpn(kind: str, verdict: str, reason: str | None = None) -> EndpointExpect:
    transport = kind.rsplit("-", 1)[1]
    return EndpointExpect(f"vpn-{transport}", kind, verdict, None, reason, address=VPN, port=1194)


def _dc(verdict: str, stage: str | None = None, reason: str | None = None, *, port: int = 443,
        address: str = DC_IP, name: str = "") -> EndpointExpect:  # fmt: skip
    """A Telegram data centre of the lab (probe/lab/messaging.py)."""
    return EndpointExpect(name or f"dc-{port}", "telegram-dc", verdict, stage, reason, "", address, port)


def _svc(kind: str, verdict: str, stage: str | None = None, reason: str | None = None) -> EndpointExpect:
    """A messaging service reached by name (a lab site standing in for the app's)."""
    name, host, port = SERVICES[kind]
    return EndpointExpect(name, kind, verdict, stage, reason, "", host, port)

SCENARIOS: tuple[Scenario, ...] = (
    # --- censorship -----------------------------------------------------------------------------
    Scenario(
        "dns-nxdomain", 1, "ISP resolver answers NXDOMAIN", "censorship",
        (Expect(_u("dns-nx"), "hijacked", "dns", step="dns", failure=Failure.DNS_NXDOMAIN_ERROR,
                reason="dns/nxdomain"),),
        Censor(resolver=((_name("dns-nx"), "nxdomain", (), 0.0),)),
        twin="nxdomain-everywhere",
    ),
    Scenario(
        "dns-bogon", 2, "ISP resolver answers a bogon (10.10.34.34)", "censorship",
        (Expect(_u("dns-bogon"), "hijacked", "dns", dns_addresses=(BOGON,),
                reason=f"dns/inconsistent:{BOGON}"),),
        Censor(resolver=((_name("dns-bogon"), "answer", (BOGON,), 0.0),)),
        twin="tls-authenticated-private",
    ),
    Scenario(
        "dns-blockpage", 3, "ISP resolver answers the block-page server's address", "censorship",
        (Expect(_u("dns-blockpage"), "hijacked", "dns", dns_addresses=(BLOCKPAGE_IP,),
                blockpage=True, status=200, reason=f"http/blockpage:{BLOCKPAGE_FINGERPRINT}",
                evidence=(f"dns/inconsistent:{BLOCKPAGE_IP}",)),),
        Censor(resolver=((_name("dns-blockpage"), "answer", (BLOCKPAGE_IP,), 0.0),)),
        twin="cdn",
    ),
    Scenario(
        "dns-injection", 4, "on-path DNS injection racing the genuine answer", "censorship",
        (Expect(_u("dns-inject"), "hijacked", "dns", dns_replies=2, dns_addresses=(FORGED_IP,),
                dns_reply_addresses=((FORGED_IP,), (_ip("dns-inject"),)), reason="dns/injection:2-replies",
                evidence=(f"dns/inconsistent:{FORGED_IP}",)),),
        Censor(
            resolver=((_name("dns-inject"), "delay", (), 0.2),),
            inject_dns=((_name("dns-inject"), (FORGED_IP,)),),
        ),
        notes="the ISP resolver holds the genuine answer back 200 ms (inside the probe's 0.5 s "
        "late-reply window) so that the forged one wins",
        twin="cdn",
    ),
    Scenario(
        "dns-drop", 5, "queries to the resolver dropped (the control resolves)", "censorship",
        (Expect(_u("dns-drop"), "blocked", "dns", step="dns", failure=Failure.GENERIC_TIMEOUT_ERROR,
                reason="dns/timeout"),),
        Censor(resolver=((_name("dns-drop"), "drop", (), 0.0),)),
        twin="nxdomain-everywhere",
    ),
    Scenario(
        "dns-servfail", 78, "ISP resolver fails (SERVFAIL) for the site's name only", "censorship",
        (Expect(_u("dns-servfail"), "hijacked", "dns", step="dns", failure=Failure.DNS_SERVFAIL_ERROR,
                reason="dns/servfail"),),
        Censor(resolver=((_name("dns-servfail"), "servfail", (), 0.0),)),
        notes="resolvers that answer SERVFAIL for listed names, not NXDOMAIN; the control resolves it",
        twin="nxdomain-everywhere",
    ),
    Scenario(
        "tcp-blackhole", 6, "SYNs to the site's address dropped", "censorship",
        (Expect(_u("tcp-blackhole"), "blocked", "tcp", step="tcp",
                failure=Failure.GENERIC_TIMEOUT_ERROR, reason=f"tcp/timeout:{_ip('tcp-blackhole')}"),),
        Censor(forward=(f"-d {_ip('tcp-blackhole')} -p tcp --syn -j DROP",)),
        twin="down-everywhere",
    ),
    Scenario(
        "tcp-reset", 7, "SYN answered with RST", "censorship",
        (Expect(_u("tcp-reset"), "reset", "tcp", step="tcp", failure=Failure.CONNECTION_REFUSED,
                reason=f"tcp/refused:{_ip('tcp-reset')}"),),
        Censor(forward=(f"-d {_ip('tcp-reset')} -p tcp --syn {_RST}",)),
        twin="refusing",
    ),
    Scenario(
        "tls-sni-rst", 8, "RST on a ClientHello with the site's SNI", "censorship",
        (Expect(_u("tls-rst", "https"), "reset", "tls", step="tls", failure=Failure.CONNECTION_RESET,
                reason=f"tls/reset:{_ip('tls-rst')}"),),
        Censor(forward=(
            f"-p tcp --dport 443 -m string --algo bm --hex-string {sni_hex(_name('tls-rst'))} {_RST}",
        )),
        twin="down-everywhere",
    ),
    Scenario(
        "tls-sni-drop", 9, "flow dropped after a ClientHello with the site's SNI", "censorship",
        (Expect(_u("tls-drop", "https"), "blocked", "tls", step="tls",
                failure=Failure.GENERIC_TIMEOUT_ERROR, reason=f"tls/timeout:{_ip('tls-drop')}"),),
        Censor(forward=(
            f"-p tcp --dport 443 -m string --algo bm --hex-string {sni_hex(_name('tls-drop'))} -j DROP",
        )),
        twin="down-everywhere",
    ),
    Scenario(
        "tls-sni-fin", 10, "FIN injected after a ClientHello with the site's SNI", "censorship",
        (Expect(_u("tls-fin", "https"), "reset", "tls", step="tls", failure=Failure.EOF_ERROR,
                reason=f"tls/eof:{_ip('tls-fin')}"),),
        Censor(
            forward=(
                f"-p tcp --dport 443 -m string --algo bm --hex-string {sni_hex(_name('tls-fin'))} "
                "-j DROP",
            ),
            inject_tcp=((443, _name("tls-fin").encode().hex(), "FA"),),
        ),
        notes="in-path: the ClientHello is dropped and the injector answers it with FIN/ACK",
        twin="down-everywhere",
    ),
    Scenario(
        "tls-interception", 11, "TLS interception with an untrusted CA", "censorship",
        (Expect(_u("tls-mitm", "https"), "hijacked", "tls", step="tls",
                failure=Failure.SSL_UNKNOWN_AUTHORITY,
                reason=f"tls/cert-invalid:{Failure.SSL_UNKNOWN_AUTHORITY}"),),
        Censor(nat=(f"-i r0 -p tcp -d {_ip('tls-mitm')} --dport 443 -j REDIRECT --to-ports 3443",)),
        twin="bad-certificate",
    ),
    Scenario(
        "http-host-rst", 12, "RST when the HTTP Host header names the site", "censorship",
        (Expect(_u("http-rst"), "reset", "http", step="http", failure=Failure.CONNECTION_RESET,
                reason="http/reset"),),
        Censor(forward=(
            f"-p tcp --dport 80 -m string --algo bm --hex-string {host_hex(_name('http-rst'))} {_RST}",
        )),
        twin="down-everywhere",
    ),
    Scenario(
        "http-blockpage", 13, "block page for that Host (transparent proxy)", "censorship",
        (Expect(_u("http-blockpage"), "blocked", "http", step="none", blockpage=True,
                status=200, reason=f"http/blockpage:{BLOCKPAGE_FINGERPRINT}"),),
        Censor(nat=("-i r0 -p tcp --dport 80 -j REDIRECT --to-ports 3129",),
               proxy_block=(_name("http-blockpage"),)),
        notes="every port-80 flow goes through the proxy; only this Host gets the page",
        twin="forbidden",
    ),
    Scenario(
        "http-host-drop", 14, "flow dropped after the Host header is seen", "censorship",
        (Expect(_u("http-drop"), "blocked", "http", step="http",
                failure=Failure.GENERIC_TIMEOUT_ERROR, reason="http/timeout"),),
        Censor(forward=(
            f"-p tcp --dport 80 -m string --algo bm --hex-string {host_hex(_name('http-drop'))} -j DROP",
        )),
        twin="slow",
    ),
    Scenario(
        "redirect-to-censored", 15, "redirect from an open site to one reset on SNI", "censorship",
        (Expect(_u("redirect-open"), "reset", "tls", hop=1, step="tls", step_hop=1,
                failure=Failure.CONNECTION_RESET, hops=2,
                reason=f"tls/reset:{_ip('redirect-censored')}"),),
        Censor(forward=(
            "-p tcp --dport 443 -m string --algo bm --hex-string "
            f"{sni_hex(_name('redirect-censored'))} {_RST}",
        )),
        twin="redirect-chain",
    ),
    Scenario(
        "redirect-target-first-url-control", 41,
        "the redirect target blackholed, judged with an OONI-style first-URL control",
        "censorship",
        (Expect(_u("redirect-open"), "blocked", "tcp", hop=1, step="tcp", step_hop=1,
                failure=Failure.GENERIC_TIMEOUT_ERROR, hops=2,
                reason="control/reached-by-redirect",
                evidence=(f"tcp/timeout:{_ip('redirect-censored')}",)),),
        Censor(forward=(f"-d {_ip('redirect-censored')} -p tcp --dport 443 --syn -j DROP",)),
        notes="the probe asks the control about the first URL only (--control-first-url), as "
        "OONI Probe asks OONI's helper, which follows the redirects itself: its fetch of the "
        "final page went through the hop the probe could not reach",
        probe_args=("--control-first-url",),
        twin="redirect-chain",
    ),
    # --- packet-level evidence (issue 14): the same techniques, judged from the packets -------
    Scenario(
        "packets-injected", 33, "RST and FIN from the censor at hop 3, with --capture", "censorship",
        (Expect(_u("tls-rst", "https"), "reset", "tls", step="tls", failure=Failure.CONNECTION_RESET,
                captured=True, reason=f"tls/reset:{_ip('tls-rst')}",
                evidence=(f"tcp/injected-rst:ttl-delta=2@{_ip('tls-rst')}",)),
         Expect(_u("tls-fin", "https"), "reset", "tls", step="tls", failure=Failure.EOF_ERROR,
                captured=True, reason=f"tls/eof:{_ip('tls-fin')}",
                evidence=(f"tcp/injected-fin:ttl-delta=2@{_ip('tls-fin')}",))),
        Censor(
            forward=(
                f"-p tcp --dport 443 -m string --algo bm --hex-string {sni_hex(_name('tls-rst'))} {_RST}",
                f"-p tcp --dport 443 -m string --algo bm --hex-string {sni_hex(_name('tls-fin'))} "
                "-j DROP",
            ),
            inject_tcp=((443, _name("tls-fin").encode().hex(), "FA"),),
        ),
        notes="the server's packets arrive with TTL 60 (4 routers), the censor's with 62",
        probe_args=("--capture",),
        twin="server-rst", group="packets",
    ),
    Scenario(
        "packets-ttl-copy", 34, "injector copying the server's TTL (in-path RST)", "censorship",
        (Expect(_u("tls-copy", "https"), "reset", "tls", step="tls", failure=Failure.CONNECTION_RESET,
                captured=True, reason=f"tls/reset:{_ip('tls-copy')}", evidence=("tcp/injected-rst:ip-id",)),),
        Censor(
            forward=(
                f"-p tcp --dport 443 -m string --algo bm --hex-string {sni_hex(_name('tls-copy'))} "
                "-j DROP",
            ),
            inject_tcp_copy_ttl=((443, _name("tls-copy").encode().hex(), "R"),),
        ),
        notes="TTL equal to the server's: caught by DF and IP ID, not by TTL",
        probe_args=("--capture",),
        twin="server-rst", group="packets",
    ),
    Scenario(
        "packets-dns-ttl", 36, "DNS injection racing a resolver 4 hops away, with --capture",
        "censorship",
        (Expect(_u("dns-ttl"), "hijacked", "dns", dns_replies=2, captured=True,
                reason="dns/injection:2-replies", evidence=("dns/injected:ttl-delta=2",)),),
        Censor(inject_dns=((_name("dns-ttl"), (FORGED_IP,)),)),
        notes=f"the probe asks the authoritative server ({AUTH_DNS}) directly",
        probe_args=("--capture", "--resolver", AUTH_DNS),
        twin="dns-interception", group="packets",
    ),
    Scenario(
        "dns-no-resolver", 37, "DNS answer from an address that runs no DNS server", "censorship",
        (Expect(_u("dns-probe"), "hijacked", "dns", reason=f"dns/injected:no-resolver@{NODNS_IP}",
                evidence=("dns/injection:2-replies",)),),
        Censor(inject_dns=((_name("dns-probe"), (FORGED_IP,)),)),
        notes=f"{NODNS_IP} (server side, past the censor) has no DNS server: only the "
        "censor answers",
        probe_args=("--dns-probe", NODNS_IP),
        twin="dns-interception", group="packets",
    ),
    Scenario(
        "dns-interception", 61, "all DNS redirected to an honest resolver, --dns-probe", "benign",
        (Expect(_u("dns-probe"), "ok", step="none", status=200,
                reason=f"dns/intercepted:no-resolver@{NODNS_IP}", evidence=("http/match",)),),
        Censor(nat=(f"-p udp -d {NODNS_IP} --dport 53 -j DNAT --to-destination {AUTH_DNS}:53",)),
        notes=f"the ISP sends every DNS query, {NODNS_IP}'s too, to a resolver that tells the "
        "truth: interception, not censorship",
        probe_args=("--dns-probe", NODNS_IP),
        group="packets",
    ),
    Scenario(
        "decoy-sni", 38, "RST on SNI; the same address answers a harmless SNI", "censorship",
        (Expect(_u("decoy-sni", "https"), "reset", "tls", step="tls", failure=Failure.CONNECTION_RESET,
                reason=f"tls/reset:{_ip('decoy-sni')}",
                evidence=("tls/sni-filtered:decoy=clean.lab.example",)),),
        Censor(forward=(
            f"-p tcp --dport 443 -m string --algo bm --hex-string {sni_hex(_name('decoy-sni'))} {_RST}",
        )),
        probe_args=("--decoy-sni", "clean.lab.example"),
        twin="down-everywhere",
    ),
    Scenario(
        "decoy-ip", 39, "every handshake to the address dropped, whatever the SNI", "censorship",
        (Expect(_u("decoy-ip", "https"), "blocked", "tls", step="tls",
                failure=Failure.GENERIC_TIMEOUT_ERROR, reason=f"tls/timeout:{_ip('decoy-ip')}",
                evidence=(f"tls/address-blocked:decoy-failed:{Failure.GENERIC_TIMEOUT_ERROR}",
                          "http/not-attempted")),),
        Censor(forward=(f"-d {_ip('decoy-ip')} -p tcp --dport 443 -m length --length 120:65535 "
                        "-j DROP",)),
        notes="segments of 120 bytes and more (a ClientHello) are dropped, bare ACKs pass",
        probe_args=("--decoy-sni", "clean.lab.example"),
        twin="down-everywhere",
    ),
    Scenario(
        "decoy-host", 40, "RST on the Host header; the same address serves a harmless Host",
        "censorship",
        (Expect(_u("decoy-host"), "reset", "http", step="http", failure=Failure.CONNECTION_RESET,
                reason="http/reset", evidence=("http/host-filtered:decoy=clean.lab.example",)),),
        Censor(forward=(
            f"-p tcp --dport 80 -m string --algo bm --hex-string {host_hex(_name('decoy-host'))} {_RST}",
        )),
        probe_args=("--decoy-host", "clean.lab.example"),
        twin="down-everywhere",
    ),
    # --- benign ---------------------------------------------------------------------------------
    Scenario(
        "clean", 16, "clean site over http and https", "benign",
        (Expect(_u("clean"), "ok", step="none", status=200, reason="http/match"),
         Expect(_u("clean", "https"), "ok", step="none", status=200, reason="http/match")),
    ),
    Scenario(
        "nxdomain-everywhere", 17, "name that exists nowhere", "benign",
        (Expect(_u("does-not-exist"), "down", "dns", step="dns", failure=Failure.DNS_NXDOMAIN_ERROR,
                reason="dns/nxdomain", evidence=("control/dns-nxdomain",)),),
    ),
    Scenario(
        "refusing", 18, "site refusing connections for everyone", "benign",
        (Expect(_u("refusing"), "down", "tcp", step="tcp", failure=Failure.CONNECTION_REFUSED,
                reason=f"tcp/refused:{_ip('refusing')}", evidence=("control/tcp-refused",)),),
    ),
    Scenario(
        "bad-certificate", 19, "expired and wrong-name certificates, for everyone", "benign",
        (Expect(_u("expired", "https"), "down", "tls", step="tls",
                failure=Failure.SSL_INVALID_CERTIFICATE,
                reason=f"tls/cert-invalid:{Failure.SSL_INVALID_CERTIFICATE}",
                evidence=("control/tls-cert-invalid", "http/unverified")),
         Expect(_u("wrong-name", "https"), "down", "tls", step="tls",
                failure=Failure.SSL_INVALID_HOSTNAME,
                reason=f"tls/cert-invalid:{Failure.SSL_INVALID_HOSTNAME}",
                evidence=("control/tls-cert-invalid",))),
    ),
    Scenario(
        "cdn", 20, "resolver and control get different addresses, both valid", "benign",
        (Expect(_u("cdn", "https"), "ok", step="none", status=200,
                dns_addresses=(site(_name("cdn")).alt_ip or "",), reason="dns/consistent:tls"),),
        Censor(resolver=((_name("cdn"), "answer", (site(_name("cdn")).alt_ip or "",), 0.0),)),
        notes="the ISP resolver answers the CDN node near the client; not censorship",
    ),
    Scenario(
        "forbidden", 21, "site answering 403 to everyone", "benign",
        (Expect(_u("forbidden"), "ok", step="none", status=403, reason="http/match"),),
    ),
    Scenario(
        "dynamic", 22, "body changes on every fetch", "benign",
        (Expect(_u("dynamic"), "ok", step="none", status=200, reason="http/match"),),
    ),
    Scenario(
        "redirect-chain", 23, "redirect chain ending on https", "benign",
        (Expect(_u("chain"), "ok", step="none", status=200, hops=3, reason="http/match"),),
    ),
    Scenario(
        "slow", 24, "site answering after 3 s", "benign",
        (Expect(_u("slow"), "ok", step="none", status=200, reason="http/match"),),
    ),
    Scenario(
        "control-unreachable", 25, "control helper unreachable", "benign",
        (Expect(_u("clean"), "inconclusive", step="none", status=200, reason="control/unavailable",
                evidence=("http/unverified", "dns/no-answer")),
         Expect(_u("clean", "https"), "ok", step="none", status=200, reason="http/authenticated",
                evidence=("control/unavailable", "dns/consistent:tls"))),
        control="unreachable",
        notes="http: nothing to compare with; https: validated end to end",
    ),
    Scenario(
        "idn", 26, "internationalised domain name", "benign",
        (Expect("http://bücher.lab.example/", "ok", step="none", status=200, reason="http/match"),),
    ),
    # --- issue 12: false positives met on real data, and the censor's answers to them --------
    Scenario(
        "loopback-everywhere", 28, "name resolving to 127.0.0.1 for everyone", "benign",
        (Expect(_u("loopback"), "down", "tcp", step="tcp", failure=Failure.CONNECTION_REFUSED,
                reason="tcp/local:loopback", evidence=("dns/loopback-everywhere:127.0.0.1",)),),
        notes="a loopback connect never leaves the machine: never reset, down when the control "
        "resolves the same address",
    ),
    Scenario(
        "tls-authenticated-private", 29, "public name on a private address, valid certificate, "
        "control unreachable", "benign",
        (Expect("https://private-news.probe-lab.net/", "ok", step="none", status=200,
                reason="dns/consistent:tls", evidence=("http/authenticated",)),),
        control="unreachable",
        notes="TLS authentication outranks the bogon and no-control rules",
    ),
    Scenario(
        "cdn-aaaa-differs", 30, "CDN AAAA differs from the control's, no IPv6 route, no ASN data",
        "benign",
        (Expect(_u("cdn6"), "ok", status=200, reason="dns/consistent:other-family",
                evidence=("dns/unverified:fd66:2::45",)),),
        Censor(resolver=((_name("cdn6"), "answer", (_ip("cdn6"), "fd66:2::45"), 0.0),)),
        notes="the ISP resolver answers another IPv6 node; IPv4 is consistent and the page loads",
    ),
    Scenario(
        "forged-redirect", 31, "ISP box answers with a forged 302 to its warning page", "censorship",
        (Expect(_u("redirect-forged"), "blocked", "http", hop=0, hops=2, step="none",
                reason="http/redirect-unseen-by-control"),),
        Censor(nat=("-i r0 -p tcp --dport 80 -j REDIRECT --to-ports 3129",),
               proxy_redirect=((_name("redirect-forged"), _u("warning", path="/?from=forged")),)),
        notes="the control, asked about the warning page, gets it too: the first hop where probe "
        "and control diverge decides",
        twin="redirect-chain",
    ),
    Scenario(
        "broken-location", 32, "ISP box answers with a 302 whose Location has no host", "censorship",
        (Expect(_u("redirect-broken"), "blocked", "http", hop=0, step="http",
                failure=Failure.HTTP_INVALID_REDIRECT_LOCATION_HOST,
                reason="http/redirect-unseen-by-control",
                evidence=(f"http/failure:{Failure.HTTP_INVALID_REDIRECT_LOCATION_HOST}",)),),
        Censor(nat=("-i r0 -p tcp --dport 80 -j REDIRECT --to-ports 3129",),
               proxy_redirect=((_name("redirect-broken"), "http://"),)),
        notes="the control follows the site's own redirects and gets the page",
        twin="redirect-chain",
    ),
    Scenario(
        "server-rst", 35, "the site itself resets this client (not the network), --capture",
        "benign",
        (Expect(_u("server-rst", "https"), "inconclusive", step="tls", failure=Failure.CONNECTION_RESET,
                captured=True, reason=f"tls/reset:{_ip('server-rst')}",
                evidence=("tcp/server-rst:ttl=60",)),),
        Censor(server_input=(
            f"-s {CLIENT} -d {_ip('server-rst')} -p tcp --dport 443 -m string --algo bm "
            f"--hex-string {sni_hex(_name('server-rst'))} {_RST}",
        )),
        notes="the server's kernel resets the client (TTL 60, like its SYN-ACK); the control "
        "connects fine. Without capture this reads as a reset by a censor",
        probe_args=("--capture",),
        group="packets",
    ),
    # --- issue 26: QUIC (HTTP/3) and ECH, judged apart from the web verdict -----------------
    Scenario(
        "quic-sni", 42, "QUIC Initial decrypted and its SNI matched: flow dropped (GFW, 2024)",
        "censorship",
        (Expect(_u("quic-sni", "https"), "ok", step="none", status=200,
                protocols=(("quic", "blocked", "quic/sni-filtered:decoy=example.com"),
                           ("quic", "blocked", f"quic/timeout:{_ip('quic-sni')}"),
                           ("quic", "blocked", "quic/decoy-ok:example.com"))),),
        Censor(quic_sni=(_name("quic-sni"),)),
        notes="the censor's NFQUEUE program reads the SNI of the client's first Initial and drops "
        "the flow for 120 s, letting the trigger pass; the decoy handshake (example.com) to the "
        "same address and TCP/TLS pass, the control's QUIC handshake completes",
        probe_args=("--quic", "--quic-timeout", "2"),
        twin="quic-lossy",
    ),
    Scenario(
        "quic-udp-blocked", 43, "every UDP datagram to the site's port 443 dropped", "censorship",
        (Expect(_u("quic-udp", "https"), "ok", step="none", status=200,
                protocols=(("quic", "blocked", "quic/udp-blocked"),
                           ("quic", "blocked", "quic/decoy-timeout:example.com"))),),
        Censor(forward=(f"-d {_ip('quic-udp')} -p udp --dport 443 -j DROP",)),
        notes="UDP endpoint blocking (Iran 2021, India, Russia 2022): the decoy fails too while "
        "TCP and TLS to the address work",
        probe_args=("--quic", "--quic-timeout", "2"),
        twin="quic-unsupported",
    ),
    Scenario(
        "ech-drop", 44, "ClientHello with an ECH extension and Cloudflare's outer SNI dropped "
        "(Russia, November 2024)", "censorship",
        (Expect(_u("ech-drop", "https"), "ok", step="none", status=200,
                protocols=(("ech", "blocked", "tls/ech-blocked:timeout"),
                           ("ech", "blocked", f"ech/timeout:{_ip('ech-drop')}"))),),
        Censor(forward=(
            f"-d {_ip('ech-drop')} -p tcp --dport 443 -m string --algo bm --hex-string "
            f"{sni_hex('cloudflare-ech.com')} -m string --algo bm --hex-string {ECH_HEX} -j DROP",
        )),
        notes="the TSPU's trigger: an ECH extension and the SNI cloudflare-ech.com in one hello; "
        "the plain hello with the same SNI passes, the web test (the site's own SNI) too",
        probe_args=("--ech", "--ech-sni", "cloudflare-ech.com"),
        twin="ech-refused-everywhere",
    ),
    Scenario(
        "ech-reset", 45, "ClientHello with an ECH extension answered with a reset", "censorship",
        (Expect(_u("ech-rst", "https"), "ok", step="none", status=200,
                protocols=(("ech", "reset", "tls/ech-blocked:reset"),
                           ("ech", "reset", f"ech/reset:{_ip('ech-rst')}"))),),
        Censor(forward=(
            f"-d {_ip('ech-rst')} -p tcp --dport 443 -m string --algo bm --hex-string "
            f"{sni_hex(ECH_OUTER)} -m string --algo bm --hex-string {ECH_HEX} {_RST}",
        )),
        probe_args=("--ech", "--ech-sni", ECH_OUTER),
        twin="ech-refused-everywhere",
    ),
    Scenario(
        "quic-unsupported", 46, "no QUIC server (nothing on UDP 443), for everyone", "benign",
        (Expect(_u("clean", "https"), "ok", step="none", status=200,
                protocols=(("quic", "down", "quic/unsupported"),
                           ("quic", "down", f"quic/refused:{_ip('clean')}"))),),
        notes="the server's kernel answers ICMP port unreachable to the probe and the control "
        "alike: no HTTP/3 there, never interference",
        probe_args=("--quic", "--quic-timeout", "2"),
    ),
    Scenario(
        "quic-lossy", 47, "10 % of the datagrams to the site's UDP 443 lost, for everyone", "benign",
        (Expect(_u("quic-lossy", "https"), "ok", step="none", status=200,
                protocols=(("quic", "ok", "quic/ok"),)),),
        Censor(server_input=(
            f"-d {_ip('quic-lossy')} -p udp --dport 443 -m statistic --mode random "
            "--probability 0.1 -j DROP",
        )),
        notes="QUIC retransmits its Initial; the handshake completes, slower",
        probe_args=("--quic", "--quic-timeout", "4"),
    ),
    Scenario(
        "ech-refused-everywhere", 48, "a firewall in front of the site resets ECH hellos, for "
        "everyone", "benign",
        (Expect(_u("ech-refused", "https"), "ok", step="none", status=200,
                protocols=(("ech", "down", "ech/rejected-everywhere"),)),),
        Censor(server_input=(
            f"-d {_ip('ech-refused')} -p tcp --dport 443 -m string --algo bm --hex-string "
            f"{sni_hex(ECH_OUTER)} -m string --algo bm --hex-string {ECH_HEX} {_RST}",
        )),
        notes="the control's ECH hello is reset too: the site's side, not the network",
        probe_args=("--ech", "--ech-sni", ECH_OUTER),
    ),
    Scenario(
        "quic-clean", 49, "an HTTP/3 site and its ECH test, uncensored", "benign",
        (Expect(_u("quic", "https"), "ok", step="none", status=200,
                protocols=(("quic", "ok", "quic/ok"), ("ech", "ok", "ech/ok"))),),
        probe_args=("--quic", "--ech"),
    ),
    Scenario(
        "quic-data-drop", 50, "QUIC handshake passes, the HTTP/3 request is dropped", "censorship",
        (Expect(_u("quic-data", "https"), "ok", step="none", status=200,
                protocols=(("quic", "blocked", "quic/h3-blocked"),
                           ("quic", "blocked", f"quic/handshake-ok:{_ip('quic-data')}"),
                           ("quic", "blocked", f"quic/h3-timeout:{_ip('quic-data')}"))),),
        Censor(quic_drop_data=(_ip("quic-data"),)),
        notes="the censor drops the client's 1-RTT packets to the address: the handshake "
        "completes, the request never reaches the server; the control's request is answered",
        probe_args=("--quic", "--quic-timeout", "2"),
        twin="quic-h3-mute",
    ),
    Scenario(
        "quic-h3-mute", 51, "an HTTP/3 server that completes handshakes and answers no request, "
        "for everyone", "benign",
        (Expect(_u("quic-mute", "https"), "ok", step="none", status=200,
                protocols=(("quic", "down", "quic/h3-failed-everywhere"),)),),
        notes="the control's HTTP/3 request goes unanswered too: the site's side",
        probe_args=("--quic", "--quic-timeout", "2"),
    ),
    Scenario(
        "huge-body", 27, "body larger than the body cap", "benign",
        (Expect(_u("huge"), "ok", step="none", status=200, truncated=True, reason="http/match"),),
    ),
    # --- issue 26: encrypted DNS, fully encrypted traffic, WireGuard (`probe circumvention`) ---
    Scenario(
        "encdns-address", 52, "DoH and DoT resolver blackholed by address", "censorship", (),
        Censor(forward=(f"-d {RESOLVER_IP} -p tcp --syn -j DROP",)),
        endpoints=_resolvers("blocked", "tcp", f"tcp/timeout:{RESOLVER_IP}",
                             "tcp:generic_timeout_error"),
        twin="encdns-down",
    ),
    Scenario(
        "encdns-sni", 53, "RST on a ClientHello naming the resolver (DoH and DoT)", "censorship", (),
        Censor(forward=(f"-p tcp -m multiport --dports 443,853 -m string --algo bm --hex-string "
                        f"{sni_hex(RESOLVER_NAME)} {_RST}",)),
        notes="the decoy SNI (clean.lab.example) to the same address completes: filtered by name",
        endpoints=_resolvers("reset", "tls", "tls/sni-filtered:decoy=clean.lab.example",
                             "tls:connection_reset; decoy:ok"),
        twin="encdns-down",
    ),
    Scenario(
        "encdns-down", 54, "a resolver down for everyone next to one that answers", "benign", (),
        endpoints=(*_resolvers("ok", None, "doh/ok", "clean.lab.example=10.66.2.10")[:1],
                   EndpointExpect("down-dot", "dot", "down", "tcp", "control/tcp-refused",
                                  "tcp:connection_refused", DOWN_IP, 853, RESOLVER_NAME)),
        notes="nothing listens at the second address; the control is refused there too",
    ),
    Scenario(
        "wireguard-first-packet", 55, "UDP dropped when it starts like a WireGuard initiation "
        "(type 1, 148 bytes)", "censorship", (),
        Censor(forward=(f"-d {REFLECTOR_IP} -p udp --dport {REFLECTOR_WIREGUARD} -m length --length 176 "
                        "-m string --algo bm --hex-string |01000000| --from 28 --to 32 -j DROP",)),
        endpoints=(_wg("blocked", "wireguard", "wireguard/twin-passed-after", "initiation@51820 answer:"),
                   _fet("ok")),
        notes="the twin datagram (same size, type 0xF0) passes before and after the initiation",
        twin="reflector-silent",
    ),
    Scenario(
        "fet-entropy", 56, "the GFW's fully encrypted traffic rule (Wu et al. 2023), with "
        "residual blocking", "censorship", (),
        Censor(forward=(f"-d {REFLECTOR_IP} -p tcp -m multiport --dports {_ECHO_PORTS} -j NFQUEUE "
                        "--queue-num 42 --queue-bypass",), programs=("fet",)),
        endpoints=(_fet("blocked", "fet", f"fet/residual:port={REFLECTOR_TCP[0]}",
                        "random@8781 second:generic_timeout_error"), _wg("ok")),
        notes="the first random segment passes (the censor is on the path) and the rest of the "
        "connection is dropped; the same port stays blocked for 60 s, the other port does not",
        twin="reflector-silent",
    ),
    Scenario(
        "reflector-silent", 57, "the reflector's ports silent for everyone", "benign", (),
        Censor(server_input=(f"-d {REFLECTOR_IP} -p tcp -m multiport --dports {_ECHO_PORTS} -j DROP",
                             f"-d {REFLECTOR_IP} -p udp --dport {REFLECTOR_WIREGUARD} -j DROP")),
        endpoints=(_fet("inconclusive", "tcp", "fet/twin-failed"),
                   _wg("inconclusive", "wireguard", "wireguard/twin-failed")),
        notes="the reflector's own firewall drops everything: the twin fails, nothing is compared",
    ),
    Scenario(
        "encdns-intercepted", 58, "DoH and DoT intercepted with the censor's own (untrusted) CA",
        "censorship", (),
        Censor(nat=tuple(f"-i r0 -p tcp -d {RESOLVER_IP} --dport {port} -j REDIRECT --to-ports {to}"
                         for port, to in zip((443, 853), UNTRUSTED_LIAR, strict=True))),
        endpoints=_resolvers("hijacked", "tls", "tls/cert-invalid", "tls:ssl_unknown_authority"),
        notes="the control's handshake with the same name verifies: interception, not a broken resolver",
        twin="tunnels-slow",
    ),
    Scenario(
        "encdns-tampered", 59, "DoH and DoT intercepted with a certificate the device trusts, "
        "answering NXDOMAIN", "censorship", (),
        Censor(nat=tuple(f"-i r0 -p tcp -d {RESOLVER_IP} --dport {port} -j REDIRECT --to-ports {to}"
                         for port, to in zip((443, 853), TRUSTED_LIAR, strict=True))),
        endpoints=_resolvers("hijacked", "dns", "dns/answers-differ:clean.lab.example:nxdomain",
                             "clean.lab.example=NXDOMAIN"),
        notes="as with a state root CA installed on the device (Kazakhstan, 2019): TLS verifies, "
        "the answers lie; the control resolves the name",
        twin="tunnels-slow",
    ),
    Scenario(
        "tunnels-slow", 60, "resolvers and reflector through a slow path (300 ms RTT)", "benign", (),
        endpoints=(*_resolvers("ok"), _fet("ok"), _wg("ok", None, "wireguard/ok")),
        latency_ms=150.0,
    ),
    # --- issue 27: the lab is the catalogue ---------------------------------------------------
    Scenario(
        "down-everywhere", 62, "the sites' own firewalls drop SYNs, reset or drop ClientHellos, "
        "reset requests: for everyone", "benign",
        (Expect(_u("tcp-blackhole"), "down", "tcp", step="tcp", failure=Failure.GENERIC_TIMEOUT_ERROR,
                reason=f"tcp/timeout:{_ip('tcp-blackhole')}", evidence=("control/tcp-",)),
         Expect(_u("tls-rst", "https"), "down", "tls", step="tls", failure=Failure.CONNECTION_RESET,
                reason=f"tls/reset:{_ip('tls-rst')}", evidence=("control/tls-",)),
         Expect(_u("tls-drop", "https"), "down", "tls", step="tls", failure=Failure.GENERIC_TIMEOUT_ERROR,
                reason=f"tls/timeout:{_ip('tls-drop')}", evidence=("control/tls-",)),
         Expect(_u("http-rst"), "down", "http", step="http", failure=Failure.CONNECTION_RESET,
                reason="http/reset", evidence=("control/http-failed",))),
        Censor(server_input=(
            f"-d {_ip('tcp-blackhole')} -p tcp --syn -j DROP",
            f"-d {_ip('tls-rst')} -p tcp --dport 443 -m string --algo bm --hex-string "
            f"{sni_hex(_name('tls-rst'))} {_RST}",
            f"-d {_ip('tls-drop')} -p tcp --dport 443 -m string --algo bm --hex-string "
            f"{sni_hex(_name('tls-drop'))} -j DROP",
            f"-d {_ip('http-rst')} -p tcp --dport 80 -m string --algo bm --hex-string "
            f"{host_hex(_name('http-rst'))} {_RST}",
        )),
        notes="the censored scenarios' own sites, failing the same way for the control: down, "
        "never censorship (the rules are in the server's INPUT chain, without -s)",
    ),
    Scenario(
        "throttling-sni", 63, "one site's TLS flows policed to 8 KB/s by SNI (Russia, Twitter, "
        "March 2021)", "censorship",
        _throttle_targets(Expect(_u(_THROTTLED, "https", "/large/80"), "throttled", step="none",
                                 status=200, reason="http/throttled:",
                                 evidence=("control/http-speed:",)),
                          "control/http-speed:"),
        Censor(forward=(
            f"-p tcp --dport 443 -m string --algo bm --string {_name(_THROTTLED)} "
            "-j CONNMARK --set-mark 0x7",
            "-p tcp --sport 443 -m connmark --mark 0x7 -m hashlimit --hashlimit-above 8kb/s "
            "--hashlimit-burst 8kb --hashlimit-mode srcip,srcport,dstip,dstport "
            "--hashlimit-name labthr -j DROP",
        )),
        notes="the ClientHello marks the connection; the server's packets of marked connections "
        "above 8 KB/s are dropped (a policer, as Roskomnadzor's TSPU did to Twitter); the other "
        "sites load at full speed, the control loads it at its usual speed",
        probe_args=_THROTTLE_ARGS, group="throttling", twin="throttling-slow-network",
    ),
    Scenario(
        "throttling-slow-network", 64, "the whole network slow (4 Mbit/s) for every site", "benign",
        _throttle_targets(Expect(_u(_THROTTLED, "https", "/large/80"), "ok", step="none",
                                 status=200, reason="http/match"), None),
        notes="the censor's forwarding capped with tbf: every site is slower alike, none is throttled",
        probe_args=_THROTTLE_ARGS, group="throttling", bandwidth="4mbit",
    ),
    Scenario(
        "trace-injector", 65, "`probe trace`: an on-path injector at hop 3 answers the "
        "ClientHello with a FIN", "censorship", (),
        Censor(inject_tcp=((443, _name(_TRACED).encode().hex(), "FA"),)),
        trace=_trace(censor_hop=3, placement="on-path", technique="fin",
                     link=(2, ROUTERS[1], 3, ROUTERS[2]), server_hop=5, control_routers=ROUTERS,
                     trigger_reaches=(ROUTERS[3],), max_packets=2 * 5 * 8),
        notes="the injector taps hop 3's incoming link: it sees the trigger from TTL 3 on, and "
        "the trigger goes on past it (hop 4 still reports it expiring)",
        twin="trace-silent-hop",
    ),
    Scenario(
        "trace-rst", 66, "`probe trace`: the censor's forwarding resets a ClientHello (in-path, "
        "between hops 3 and 4)", "censorship", (),
        Censor(forward=(f"{_TRACE_SNI} {_RST}",)),
        trace=_trace(censor_hop=4, placement="in-path", technique="rst",
                     link=(3, ROUTERS[2], 4, ROUTERS[3]), server_hop=5, trigger_misses=(ROUTERS[3],),
                     says=(f"Censor between hop 3 ({ROUTERS[2]}) and hop 4 ({ROUTERS[3]}), in-path",
                           "resets the connection",
                           "inside hop 3 (after routing), on the link from hop 3 to hop 4",
                           "only with TTL N+1 does it travel past hop N")),
        notes="hop 3 answers the trigger at TTL 3 (its TTL check comes before its FORWARD "
        "chain); the reset comes from TTL 4 on: the link is hop 3 -> hop 4",
        twin="trace-silent-hop",
    ),
    Scenario(
        "trace-drop", 67, "`probe trace`: the censor silently drops the ClientHello (in-path)",
        "censorship", (),
        Censor(forward=(f"{_TRACE_SNI} -j DROP",)),
        trace=_trace(censor_hop=4, placement="in-path", technique="drop",
                     link=(3, ROUTERS[2], 4, ROUTERS[3]), server_hop=5, trigger_routers=ROUTERS[:3],
                     control_routers=ROUTERS,
                     says=(f"Censor between hop 3 ({ROUTERS[2]}) and hop 4 ({ROUTERS[3]}), in-path",
                           "silently drops the trigger")),
        notes="the most common technique of TSPU and the GFW: the trigger's quotes stop at hop 3, "
        "the control's go on to hop 4 and the server",
        twin="trace-server-mute",
    ),
    Scenario(
        "trace-silent-hop", 68, "`probe trace`: hop 4 sends no ICMP time exceeded (many routers "
        "send none)", "benign", (),
        Censor(forward=(f"-p icmp --icmp-type time-exceeded -s {ROUTERS[3]} -j DROP",)),
        trace=_trace(censor_hop=None, placement=None, technique=None, link=None, server_hop=5,
                     control_routers=ROUTERS[:3], says=("No difference",), never_says=("Censor",)),
        notes="for the trigger and the control alike: nothing differs, no censor is named",
    ),
    Scenario(
        "trace-server-mute", 69, "`probe trace`: the server accepts connections and answers no "
        "data (hung), for everyone", "benign", (),
        Censor(server_input=(f"-d {_ip(_TRACED)} -p tcp --dport 443 -m length --length 100:65535 -j DROP",)),
        trace=_trace(censor_hop=None, placement=None, technique=None, link=None, server_hop=None,
                     control_routers=ROUTERS),
        notes="the trigger and the control both go unanswered at the server: no censor",
        probe_args=("--max-ttl", "6"),
    ),
    Scenario(
        "tor-address", 70, "a Tor relay blackholed by address", "censorship", (),
        Censor(forward=(f"-d {BLOCKED_RELAY} -p tcp -j DROP",)),
        endpoints=(_relay("blocked-relay", "blocked", "tcp", f"tcp/timeout:{BLOCKED_RELAY}:9001",
                          BLOCKED_RELAY),
                   _relay("open-relay", "ok", reason=f"tls/ok:{OPEN_RELAY}:9001"),
                   _relay("down-relay", "down", "tcp", "control/tcp-refused", port=9002)),
        notes="the control connects to the blocked relay over its own link; nothing listens on "
        "the down relay's port, for the control either",
        twin="circumvention-clean",
    ),
    Scenario(
        "openvpn-first-packet", 71, "OpenVPN spotted by its first packet: reset over TCP, dropped "
        "over UDP", "censorship", (),
        Censor(forward=(
            # OpenVPN's first packet: opcode 7, key 0 (0x38), the first payload byte of a datagram...
            f"-d {VPN} -p udp --dport 1194 -m string --algo bm --hex-string |38| --from 28 --to 29 -j DROP",
            # ...or after the 2-byte length (14) over TCP: answered with a reset.
            f"-d {VPN} -p tcp --dport 1194 -m string --algo bm --hex-string |000e38| {_RST}",
        )),
        endpoints=(_vpn("openvpn-tcp", "reset", f"openvpn/reset:{VPN}:1194"),
                   _vpn("openvpn-udp", "inconclusive", "control/none:udp")),
        notes="no UDP control exists: a silent OpenVPN server over UDP is not proof of blocking",
        twin="circumvention-clean",
    ),
    Scenario(
        "circumvention-clean", 72, "Tor relays and an OpenVPN server, uncensored", "benign", (),
        endpoints=(_relay("blocked-relay", "ok", reason=f"tls/ok:{BLOCKED_RELAY}:9001",
                          address=BLOCKED_RELAY),
                   _relay("open-relay", "ok", reason=f"tls/ok:{OPEN_RELAY}:9001"),
                   _relay("down-relay", "down", "tcp", "control/tcp-refused", port=9002),
                   _vpn("openvpn-tcp", "ok", f"openvpn/ok:{VPN}:1194"),
                   _vpn("openvpn-udp", "ok", f"openvpn/ok:{VPN}:1194")),
    ),
    Scenario(
        "isolation", 73, "national isolation: everything bound abroad dropped, the sites at home "
        "reachable (Russia's sovereign RuNet drills)", "censorship", (),
        Censor(forward=(f"-m iprange --dst-range {ABROAD[0]}-{ABROAD[1]} -j DROP",)),
        outages=OutageExpect(_OUTAGE_URLS, ("isolated",), f" 0/{_N_ABROAD} abroad"),
        notes="the lab's IP-to-country table puts some sites abroad (probe.lab.sites.GEO); the "
        "control helper, reached over its own link, is abroad too and is not used",
        twin="no-outage",
    ),
    Scenario(
        "dns-outage", 74, "the ISP resolver stops answering (a DNS-only outage)", "censorship", (),
        Censor(resolver=tuple((s.name, "drop", (), 0.0) for s in _OUTAGE_SITES)),
        outages=OutageExpect(_OUTAGE_URLS, ("dns",),
                             "resolver silent for 100% of URLs while the control answered"),
        twin="no-outage",
    ),
    Scenario(
        "shutdown", 75, "a full shutdown: nothing forwarded, the resolver and the way abroad "
        "(to the control) silent", "censorship", (),
        Censor(forward=("-j DROP",), censor_input=("-p udp --dport 53 -j DROP", "-p tcp --dport 53 -j DROP"),
               helper_input=("-i u0 -j DROP",)),
        outages=OutageExpect(_OUTAGE_URLS, ("full",), "no network before measuring", offline=True),
        notes="the probe's pre-flight check finds no network: nothing is measured, the run is "
        "recorded offline (exit 1), and the outage rules call it a full outage",
        twin="no-outage",
    ),
    Scenario(
        "partial-outage", 76, "every TCP connection to the sites blackholed (DNS and the control "
        "answer)", "censorship", (),
        Censor(forward=("-d 10.66.2.0/24 -p tcp --syn -j DROP",)),
        outages=OutageExpect(_OUTAGE_URLS, ("partial",), "TCP timed out or unroutable"),
        notes="with no earlier runs to compare with, 90 % of URLs with dead connections is a "
        "partial outage",
        twin="no-outage",
    ),
    Scenario(
        "no-outage", 77, "the same sites, no censor: no outage", "benign", (),
        outages=OutageExpect(_OUTAGE_URLS, ()),
    ),
    # --- issue 27: messaging apps (`probe messaging`; lab stand-ins, never the apps' servers) ---
    Scenario(
        "telegram-dc-address", 79, "Telegram's data centres blackholed by address (80 and 443)",
        "censorship", (),
        Censor(forward=(f"-d {DC_IP} -p tcp --syn -j DROP",)),
        endpoints=(_dc("blocked", "tcp", f"tcp/timeout:{DC_IP}:443"),
                   _dc("blocked", "tcp", f"tcp/timeout:{DC_IP}:80", port=80),
                   _svc("telegram-web", "ok", None, "https/reached:200")),
        notes="as Russia in 2018: the control connects to the same addresses and the DC answers its "
        "HTTP; Telegram Web, on another address, works",
        twin="telegram-dc-down",
    ),
    Scenario(
        "whatsapp-dns", 80, "ISP resolver answers NXDOMAIN for WhatsApp's names", "censorship", (),
        Censor(resolver=tuple((SERVICES[k][1], "nxdomain", (), 0.0) for k in ("whatsapp-web", "whatsapp"))),
        endpoints=(_svc("whatsapp-web", "hijacked", "dns", "dns/"),
                   _svc("whatsapp", "hijacked", "dns", "dns/"),
                   _svc("signal", "ok", None, "https/reached:403")),
        notes="the control resolves both names: a DNS lie, judged as for the web",
        twin="messaging-slow",
    ),
    Scenario(
        "whatsapp-sni", 81, "RST on a ClientHello naming WhatsApp Web", "censorship", (),
        Censor(forward=(f"-p tcp --dport 443 -m string --algo bm --hex-string "
                        f"{sni_hex(SERVICES['whatsapp-web'][1])} {_RST}",)),
        endpoints=(_svc("whatsapp-web", "reset", "tls", "tls/sni-filtered"), _svc("whatsapp", "ok")),
        notes="the decoy SNI to the same address completes; the chat endpoint (TCP only) is reached",
        twin="messaging-slow",
    ),
    Scenario(
        "signal-sni", 82, "RST on a ClientHello naming Signal's service", "censorship", (),
        Censor(forward=(f"-p tcp --dport 443 -m string --algo bm --hex-string "
                        f"{sni_hex(SERVICES['signal'][1])} {_RST}",)),
        endpoints=(_svc("signal", "reset", "tls", "tls/sni-filtered"), _svc("telegram-web", "ok")),
        notes="as Iran and Russia filter Signal by name; the decoy SNI to the same address completes",
        twin="messaging-slow",
    ),
    Scenario(
        "telegram-dc-down", 83, "a data centre down for everyone next to one that answers", "benign", (),
        endpoints=(_dc("ok", None, f"mtproto/ok:{DC_IP}:443"),
                   _dc("down", "tcp", f"control/tcp-refused:{DOWN_IP}:443", address=DOWN_IP, name="dc-down")),
        notes="nothing listens at the second address; the control is refused there too",
    ),
    Scenario(
        "messaging-slow", 84, "every app through a slow path (300 ms RTT)", "benign", (),
        endpoints=(_dc("ok"), _svc("telegram-web", "ok"), _svc("whatsapp-web", "ok"), _svc("whatsapp", "ok"),
                   _svc("signal", "ok")),
        latency_ms=150.0,
    ),
)  # fmt: skip

_BY_NAME = {s.name: s for s in SCENARIOS}


def by_name(name: str) -> Scenario:
    """The scenario called ``name`` (KeyError with the known names otherwise)."""
    try:
        return _BY_NAME[name]
    except KeyError:
        raise KeyError(f"no scenario {name!r}; known: {', '.join(_BY_NAME)}") from None
