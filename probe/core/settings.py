"""The run configuration: one definition of every setting of a run, with its default.

A run is configured by a :class:`RunRequest`, composed of

- :class:`ListSelection`: what to measure (lists, ad-hoc URLs, categories, strictness);
- :class:`RunSettings`: how the run is driven (database, vantage point, control, concurrency,
  retries, fingerprints, geo data);
- :class:`MeasureConfig`: how each URL is measured (resolvers, DoH, CA file, timeouts, caps).

The command line builds these once, from shared option decorators (:mod:`probe.cli.options`)
whose defaults are read from the fields below; the Python API builds them directly. This module
imports nothing heavy: ``probe --help`` reads the defaults from it.
"""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from probe.core.net import is_valid_host
from probe.core.net.resolvers import DEFAULT_RESOLV_CONF, parse_resolver

if TYPE_CHECKING:
    from probe.core.net.policy import ConnectPolicy

__all__ = [
    "DEFAULT_CONCURRENCY",
    "DEFAULT_CONTROLS",
    "DEFAULT_DB",
    "DEFAULT_DECOY_SNI",
    "DEFAULT_ENCRYPTED_DNS_NAMES",
    "DEFAULT_GEO_URL",
    "DEFAULT_STUN_FALLBACK",
    "DEFAULT_STUN_SERVERS",
    "DEFAULT_TESTLISTS_SOURCE",
    "DEFAULT_USER_AGENT",
    "DEFAULT_WHOAMI_NAMES",
    "OPERATORS",
    "IdentityConfig",
    "ListSelection",
    "MeasureConfig",
    "RunRequest",
    "RunSettings",
    "server_host",
]

#: The results database every command uses when given none (``--db``, ``$PROBE_DB``, config).
DEFAULT_DB = Path("results/probe.db")

#: Chosen from bench/ (docs/bench.md): on 2 cores at 100 ms RTT the probe keeps 0.89 x the
#: floor's throughput at C = 64 (0.81 x the ideal), while at C = 128 it turns CPU-bound
#: (0.72 x the floor). 64 is the most the smallest machines we target keep network-bound.
DEFAULT_CONCURRENCY = 64

# OONI's public Web Connectivity test helpers speak the protocol our helper speaks; they are the
# default control, as in OONI Probe. Self-hosters pass --control with their own helper.
DEFAULT_CONTROLS = (
    "https://0.th.ooni.org/",
    "https://1.th.ooni.org/",
    "https://2.th.ooni.org/",
    "https://3.th.ooni.org/",
)

#: Names `probe circumvention` resolves through each encrypted DNS resolver (``doh``, ``dot``)
#: and asks the control about: a neutral one, and one on Citizen Lab's global list (ANON) that
#: censors block (``--dns-name`` replaces them).
DEFAULT_ENCRYPTED_DNS_NAMES = ("example.com", "www.torproject.org")
#: The harmless name of a decoy handshake: a name no censor has a reason to block (RFC 2606
#: reserves it for documentation). The decoy QUIC handshake of ``probe run --quic`` and the
#: handshake `probe circumvention` tries at a resolver's address after its own name's failed;
#: each command's ``--decoy-sni`` replaces it.
DEFAULT_DECOY_SNI = "example.com"

#: A current desktop browser: some servers and middleboxes treat unknown clients differently.
DEFAULT_USER_AGENT = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)


def _check_positive_finite(name: str, value: float) -> None:
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number of seconds >= 0, not {value!r}")


# The network identity (probe/measure/identity.py learns it; docs/identity.md says who runs
# each server). The consent text names every one of them (probe/host/consent.py reads these).
#: Public STUN servers, as OONI Probe uses them (any one answering is enough).
DEFAULT_STUN_SERVERS = ("stun.l.google.com:19302", "stun.cloudflare.com:3478", "stun.nextcloud.com:443")
#: Asked only when none of those answered (Google's is blocked in China): servers run in China
#: (Xiaomi, Bilibili) and in Russia (SIPNET), where the first ones may be unreachable.
DEFAULT_STUN_FALLBACK = ("stun.miwifi.com:3478", "stun.chat.bilibili.com:3478", "stun.sipnet.ru:3478")
#: Names whose authoritative server answers with the address of the resolver that asked.
DEFAULT_WHOAMI_NAMES = ("whoami.akamai.net",)


# What other commands download by default (only when they are run).
#: `probe testlists update`: the upstream Citizen Lab repository's files, as GitHub serves them raw.
DEFAULT_TESTLISTS_SOURCE = "https://raw.githubusercontent.com/citizenlab/test-lists/master/"
#: `probe geo update`: iptoasn.com's combined IPv4 + IPv6 table (public domain, PDDL 1.0).
DEFAULT_GEO_URL = "https://iptoasn.com/data/ip2asn-combined.tsv.gz"

#: Who runs each server probe contacts by default, by host name (docs/identity.md). The
#: consent text (probe/host/consent.py) names each default server with its operator from here.
OPERATORS = {
    "0.th.ooni.org": "OONI", "1.th.ooni.org": "OONI", "2.th.ooni.org": "OONI",
    "3.th.ooni.org": "OONI",
    "stun.l.google.com": "Google", "stun.cloudflare.com": "Cloudflare",
    "stun.nextcloud.com": "Nextcloud", "stun.miwifi.com": "Xiaomi, China",
    "stun.chat.bilibili.com": "Bilibili, China", "stun.sipnet.ru": "SIPNET, Russia",
    "whoami.akamai.net": "Akamai",
    "raw.githubusercontent.com": "GitHub", "iptoasn.com": "iptoasn.com",
}


def server_host(server: str) -> str:
    """The host name of a default server: a URL's host, or HOST of ``HOST:PORT``, or a name."""
    if "//" in server:
        return urlsplit(server).hostname or server
    return server.rsplit(":", 1)[0] if server.count(":") == 1 else server


def _env_list(name: str) -> tuple[str, ...] | None:
    value = os.environ.get(name)
    if value is None:
        return None
    if value.strip().lower() in ("", "none", "off"):
        return ()
    return tuple(v.strip() for v in value.split(",") if v.strip())


@dataclass(frozen=True)
class IdentityConfig:
    """Where to learn the network identity from; empty tuples turn a check off."""

    stun_servers: tuple[str, ...] = DEFAULT_STUN_SERVERS
    #: Asked only when no server of ``stun_servers`` answered; () when the servers were given.
    stun_fallback: tuple[str, ...] = DEFAULT_STUN_FALLBACK
    whoami_names: tuple[str, ...] = DEFAULT_WHOAMI_NAMES
    #: Ask the run's test helpers which address they see (``{"x_client_address": true}``).
    ask_helpers: bool = True
    timeout: float = 3.0
    #: Seconds between re-checks during a run (0: only at the start and the end).
    recheck_interval: float = 300.0

    @classmethod
    def from_options(
        cls, stun: Iterable[str] = (), whoami: Iterable[str] = (), *, enabled: bool = True,
        timeout: float = 3.0,
    ) -> IdentityConfig:
        """Flags first, then ``$PROBE_STUN_SERVERS`` / ``$PROBE_WHOAMI_NAMES``, then defaults.

        STUN servers given (flag or environment) replace both default sets.
        """
        if not enabled:
            return cls(stun_servers=(), stun_fallback=(), whoami_names=(), ask_helpers=False,
                       timeout=timeout)
        stun, whoami = tuple(stun), tuple(whoami)
        env_stun, env_whoami = _env_list("PROBE_STUN_SERVERS"), _env_list("PROBE_WHOAMI_NAMES")
        given = stun or env_stun
        return cls(
            stun_servers=given if given is not None else DEFAULT_STUN_SERVERS,
            stun_fallback=() if given is not None else DEFAULT_STUN_FALLBACK,
            whoami_names=whoami or (env_whoami if env_whoami is not None else DEFAULT_WHOAMI_NAMES),
            timeout=timeout,
        )


@dataclass(frozen=True)
class MeasureConfig:
    """How to measure; one instance is shared by every URL of a run (it is hashable).

    Validated on construction: a bad resolver, DoH URL, CA file or timeout raises ``ValueError``
    naming it, before anything is measured.
    """

    resolvers: tuple[str, ...] = ()  # "IP" or "IP:PORT" (UDP); empty -> system resolver
    system_resolver: bool = True  # read resolv_conf (dnspython) when no resolvers are given
    doh: tuple[str, ...] = ()  # DoH URLs: the DNS control (stored in Hop.dns_control)
    dns_timeout: float = 4.0
    tcp_timeout: float = 10.0
    tls_timeout: float = 10.0
    http_timeout: float = 15.0
    deadline: float = 60.0  # per URL, all hops included
    late_window: float = 0.5  # keep UDP sockets open this long after the first reply
    body_cap: int = 1 << 20
    max_redirects: int = 10
    cafile: str | None = None
    #: A CA file trusted besides the system's and ``cafile``: a service's own CA that its app
    #: pins (Signal's), named by the endpoint list (probe/inputs/endpointlists.py).
    extra_ca: str | None = None
    user_agent: str = DEFAULT_USER_AGENT
    max_addresses: int = 8  # addresses connected to per hop
    resolv_conf: str = DEFAULT_RESOLV_CONF
    #: Addresses that may be connected to (probe.core.net.policy); None: any. The test helper sets
    #: it, since it connects on its clients' behalf: checked after DNS and every redirect.
    connect_policy: ConnectPolicy | None = None
    # After a failed TLS handshake / HTTP exchange, retry the same address with this harmless
    # SNI / Host header ("" = off): tells name-based filtering from a blocked address.
    decoy_sni: str = ""
    decoy_host: str = ""
    # Addresses that run no DNS server: each name is queried there too; any reply is injected.
    dns_probe: tuple[str, ...] = ()
    # Ask the control about the URL of the list only, as OONI Probe asks OONI's helper (which
    # follows the redirects itself and describes the first URL): one helper request per URL.
    # Hops after a redirect are then judged by the first URL's control (classify/core.py).
    control_first_url: bool = False
    # Opt-in protocol tests of every https hop (docs/protocols.md): QUIC handshakes with the
    # site's SNI (and, after a failure, with ``quic_decoy``: "" = none), and pairs of hand-made
    # ClientHellos without and with a GREASE ECH extension.
    quic: bool = False
    quic_timeout: float = 5.0
    quic_decoy: str = DEFAULT_DECOY_SNI
    ech: bool = False
    #: The SNI of both ECH-test hellos ("": the site's name). Russia's 2024 rule dropped only
    #: hellos with an ECH extension *and* the SNI ``cloudflare-ech.com`` (docs/protocols.md).
    ech_sni: str = ""
    #: False: no HTTP request after the handshakes (the helper, when a probe asks for the
    #: control of an endpoint that speaks no HTTP: ``x_skip_http``).
    http: bool = True

    def __post_init__(self) -> None:
        for r in (*self.resolvers, *self.dns_probe):
            parse_resolver(r)  # ValueError naming the bad resolver, before any measuring
        for u in self.doh:
            check_doh_url(u)
        for name in ("dns_timeout", "tcp_timeout", "tls_timeout", "http_timeout", "deadline",
                     "late_window", "quic_timeout"):
            _check_positive_finite(name, getattr(self, name))
        for path in (self.cafile, self.extra_ca):
            if path:
                check_cafile(path)
        for name in ("ech_sni", "quic_decoy"):
            value = getattr(self, name)
            if value and not _is_host(value):
                raise ValueError(f"{name}: {value!r} is not a host name")


def _is_host(name: str) -> bool:
    return name.isascii() and is_valid_host(name)


def check_doh_url(url: str) -> None:
    """ValueError unless ``url`` is an ``https://`` URL with a host (DoH is never plain HTTP)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        host = None
        parts = None
    if parts is None or parts.scheme != "https" or not host:
        raise ValueError(f"invalid DoH URL {url!r}: must be https://HOST/PATH")


@functools.lru_cache(maxsize=16)
def check_cafile(path: str) -> None:
    """ValueError naming ``path`` when it is not a usable PEM CA file (checked once per path)."""
    import ssl  # only with a CA file: `probe --help` reads this module and must not load TLS

    try:
        # A bare context: loading the system's CAs too (create_default_context) cost ~20 ms.
        ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_verify_locations(cafile=path)
    except (OSError, ssl.SSLError) as exc:
        raise ValueError(f"cannot use CA file {path}: {exc}") from None


@dataclass(frozen=True)
class ListSelection:
    """What a run measures: test lists (paths, ``-`` for stdin), ad-hoc URLs, a category filter."""

    lists: tuple[Path, ...] = ()
    urls: tuple[str, ...] = ()
    category: str | None = None
    strict: bool = False


@dataclass(frozen=True)
class RunSettings:
    """How a run is driven, besides how each URL is measured."""

    db: Path = DEFAULT_DB
    #: None: named after the network (e.g. ``AS12389-RU``), ``default`` when it is unknown.
    vantage: str | None = None
    controls: tuple[str, ...] = ()  # test-helper URLs; empty: no control (local proofs only)
    concurrency: int = DEFAULT_CONCURRENCY
    per_host: int = 4
    retries: int = 1
    retry_pause: float = 2.0
    fingerprints: tuple[str, ...] = ()
    geo: str | None = None
    preflight: bool = True
    control_timeout: float = 30.0
    #: Without a reachable control every verdict would be inconclusive: by default such a run
    #: fails (exit 1) so that cron notices; True measures anyway (local proofs only).
    allow_no_control: bool = False
    #: Seconds to wait for another run on the same database to finish (then exit 75).
    wait_lock: float = 0.0
    #: Continue this interrupted run (an id, or "latest": the newest interrupted run) instead
    #: of starting a new one; URLs it already stored are not measured again.
    resume: int | str | None = None
    #: How to learn the network identity (STUN, whoami: probe.measure.identity); None: no discovery.
    identity: IdentityConfig | None = None
    #: Refuse to measure (the run is recorded as failed) when the public address stays unknown:
    #: then it cannot be scrubbed from what sites echo.
    require_identity: bool = False
    #: What the user says about the network, over what the identity check found.
    asn: int | None = None
    country: str | None = None
    network: str | None = None
    #: Record packet metadata of the probe's own flows (root or CAP_NET_RAW; else a warning).
    capture: bool = False
    #: Directory for one pcap file per run (implies capture).
    pcap: str | None = None

    def __post_init__(self) -> None:
        if self.vantage is not None and not self.vantage.strip():
            raise ValueError("the vantage point needs a name")
        if self.country is not None and not (
            len(self.country) == 2 and self.country.isascii() and self.country.isalpha()
        ):
            raise ValueError(f"country must be a two-letter ISO 3166 code, not {self.country!r}")
        if self.asn is not None and not 0 < self.asn < 1 << 32:
            raise ValueError(f"ASN must be from 1 to 4294967295, not {self.asn}")
        if self.require_identity and (self.identity is None or not (
                self.identity.stun_servers or self.identity.ask_helpers)):
            raise ValueError("--require-identity needs the identity check (not --no-identity)")
        _check_positive_finite("retry_pause", self.retry_pause)
        _check_positive_finite("control_timeout", self.control_timeout)
        _check_positive_finite("wait_lock", self.wait_lock)


@dataclass(frozen=True)
class RunRequest:
    """One run, composed: what to measure, how to drive the run, how to measure each URL."""

    selection: ListSelection = field(default_factory=ListSelection)
    settings: RunSettings = field(default_factory=RunSettings)
    measure: MeasureConfig = field(default_factory=MeasureConfig)
