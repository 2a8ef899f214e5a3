"""Typed records: targets, observations, control observations and verdicts.

Every record is a frozen dataclass. Measurement code produces them, the classifier reads them,
the store serialises them as JSON (:mod:`probe.core.codec`: ``to_data``/``from_data``) so that
old measurements can be re-judged by newer classifiers. Times are Unix epoch seconds (``started``) and seconds
(``duration``, ``t``). A ``failure`` is ``None`` on success, otherwise one of the strings of
:mod:`probe.core.failures`.
"""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass

__all__ = [
    "INTERFERENCE_VERDICTS",
    "STAGES",
    "VERDICTS",
    "ControlECH",
    "ControlObservation",
    "ControlTCP",
    "ControlTLS",
    "DNSObservation",
    "DNSReply",
    "EchoTrial",
    "EndpointObservation",
    "HTTPObservation",
    "Hop",
    "Measurement",
    "NameQuery",
    "Packet",
    "ProtocolVerdict",
    "QUICObservation",
    "TCPObservation",
    "TLSHelloObservation",
    "TLSObservation",
    "Target",
    "Verdict",
    "packet_digest",
]

#: The fixed verdict vocabulary, most to least specific is not implied.
VERDICTS: tuple[str, ...] = ("ok", "blocked", "reset", "hijacked", "throttled", "down", "inconclusive")
#: Verdicts that say someone interfered: what the `blocked` view holds and what
#: `probe results --verdict interference` means.
INTERFERENCE_VERDICTS: tuple[str, ...] = ("hijacked", "reset", "blocked", "throttled")
#: Measurement stages in the order they run.
STAGES: tuple[str, ...] = ("dns", "tcp", "tls", "http")


@dataclass(frozen=True)
class Target:
    """One URL to measure.

    ``url`` is what is measured (host in punycode, brackets around IPv6 literals);
    ``original_url`` is the URL as written in the list, kept for the record.
    """

    url: str
    original_url: str
    scheme: str  # "http" or "https"
    host: str  # ASCII (punycode) host name or IP literal, without brackets
    port: int
    path: str = "/"  # path + query, as sent in the request line
    category_code: str = ""
    source: str = ""  # "FILE:LINE" of the list row, or "cli" for --url


@dataclass(frozen=True)
class DNSReply:
    """One DNS reply as received, with its raw bytes (injection evidence)."""

    t: float  # seconds after the query was sent
    source: str  # "IP:PORT" the datagram came from
    rcode: str  # "NOERROR", "NXDOMAIN", "SERVFAIL", "REFUSED", ... or "MALFORMED"
    answers: tuple[str, ...] = ()  # A/AAAA addresses in the answer section, in order
    cnames: tuple[str, ...] = ()
    ttl: int | None = None  # smallest TTL of the answer RRsets
    flags: tuple[str, ...] = ()  # dnspython flag names, e.g. ("QR", "AA", "RD", "RA")
    raw: bytes = b""


@dataclass(frozen=True)
class DNSObservation:
    """One query (one name, one type) to one resolver, with every reply seen."""

    hostname: str
    qtype: str  # "A" or "AAAA"
    resolver: str  # "udp://IP:PORT", "tcp://IP:PORT", "doh:URL", "system"
    transport: str  # "udp", "tcp", "doh"
    started: float
    duration: float  # until the first usable reply, or the failure
    failure: str | None = None
    addresses: tuple[str, ...] = ()  # from the first reply (what a normal stub would use)
    replies: tuple[DNSReply, ...] = ()  # every reply received within the late-reply window


@dataclass(frozen=True)
class TCPObservation:
    ip: str
    port: int
    started: float
    duration: float
    failure: str | None = None


@dataclass(frozen=True)
class TLSObservation:
    ip: str
    port: int
    sni: str
    started: float
    duration: float
    failure: str | None = None  # handshake failure, or the certificate failure
    version: str | None = None  # "TLSv1.3"
    cipher: str | None = None
    alpn: str | None = None
    cert_chain: tuple[bytes, ...] = ()  # peer chain, DER, leaf first
    cert_valid: bool | None = None  # validates for sni against the trust store (+ --cafile)


@dataclass(frozen=True)
class HTTPObservation:
    url: str
    ip: str
    port: int
    started: float
    duration: float
    failure: str | None = None
    status: int | None = None
    headers: tuple[tuple[str, str], ...] = ()  # as received, in order, names lower-cased
    body_length: int | None = None  # bytes received (capped)
    body_sha256: str | None = None
    body_truncated: bool = False
    title: str | None = None
    body: bytes = b""  # the (capped) body; stored once per distinct sha256
    location: str | None = None  # absolute redirect target, if the response redirects
    ttfb: float | None = None  # seconds from sending the request to the response headers
    wire_bytes: int | None = None  # body bytes read from the connection (before decoding)
    path_rtt: float | None = None  # the kernel's minimum round trip on the connection (s)


@dataclass(frozen=True)
class QUICObservation:
    """One QUIC handshake (RFC 9000, TLS 1.3 inside, ALPN ``h3``) with one address over UDP
    (``probe run --quic``, docs/protocols.md).

    ``failure`` is None when the handshake completed; ``datagrams`` counts the UDP datagrams
    that came back (0 with a timeout: nothing answered, not even the server's Initial).
    ``attempt`` numbers the tries with this SNI on this address (a failed one is tried again
    after the decoy handshake). After a handshake with the site's name, one HTTP/3 GET of the
    hop's path: ``h3_status`` is the response's status, ``h3_failure`` why there was none (None
    both when no request was made: the decoy, a failed handshake).
    """

    ip: str
    port: int
    sni: str
    started: float
    duration: float
    failure: str | None = None
    alpn: str | None = None
    datagrams: int = 0
    attempt: int = 0
    h3_status: int | None = None
    h3_failure: str | None = None


@dataclass(frozen=True)
class TLSHelloObservation:
    """One hand-made TLS ClientHello sent on a fresh TCP connection, and what came back first
    (``probe run --ech``, docs/protocols.md).

    The ECH test sends two hellos that differ only in a GREASE Encrypted Client Hello
    extension (``ech``). ``answer`` is ``server_hello``, ``hello_retry_request``,
    ``alert:<description>`` or ``not_tls`` (the first bytes were no TLS record); ``failure``
    is None when a ServerHello (or HelloRetryRequest) came back, else the OONI failure of the
    connect or of the read (``connected`` says which step failed).
    """

    ip: str
    port: int
    sni: str
    ech: bool
    started: float
    duration: float
    failure: str | None = None
    connected: bool = False
    answer: str | None = None
    attempt: int = 0


@dataclass(frozen=True)
class ControlTCP:
    ip: str
    port: int
    ok: bool
    failure: str | None = None


@dataclass(frozen=True)
class ControlTLS:
    ip: str
    port: int
    server_name: str
    ok: bool
    failure: str | None = None


@dataclass(frozen=True)
class ControlECH:
    """The control's ECH test of one address (probe's helper only: ``x_ech``)."""

    ip: str
    port: int
    server_name: str
    plain_ok: bool
    ech_ok: bool
    plain_failure: str | None = None
    ech_failure: str | None = None


@dataclass(frozen=True)
class ControlObservation:
    """What an uncensored vantage point saw for one URL (one hop).

    Mirrors the response of OONI's Web Connectivity test helper; ``source`` names the helper
    (its URL) or "doh:URL" for a DNS-only control. ``failure`` is set when the control itself
    could not be obtained (helper unreachable), and then nothing else is meaningful.
    """

    source: str
    url: str
    started: float
    duration: float
    failure: str | None = None
    dns_failure: str | None = None
    dns_addrs: tuple[str, ...] = ()
    tcp: tuple[ControlTCP, ...] = ()
    tls: tuple[ControlTLS, ...] = ()
    http_failure: str | None = None
    http_status: int | None = None
    http_body_length: int | None = None
    http_headers: tuple[tuple[str, str], ...] = ()
    http_title: str | None = None
    http_body_sha256: str | None = None
    ip_info: tuple[tuple[str, int, str], ...] = ()  # (ip, asn, flags), when the helper sends it
    # How fast the helper's own fetch of the final URL went (probe's helper only: x_http_timing):
    # seconds to the headers, seconds of body transfer, body bytes on the wire, TCP connect time.
    http_ttfb: float | None = None
    http_transfer: float | None = None
    http_wire_bytes: int | None = None
    http_rtt: float | None = None
    #: QUIC handshakes with the URL's name (``quic_handshake``, asked for with
    #: ``x_quic_enabled``) and the HTTP/3 request after them (``http3_request``: its status, or
    #: its failure); ECH tests (``x_ech``, probe's helper only).
    quic: tuple[ControlTLS, ...] = ()
    http3_status: int | None = None
    http3_failure: str | None = None
    ech: tuple[ControlECH, ...] = ()


@dataclass(frozen=True)
class Packet:
    """Metadata of one packet that came back to the probe on one of its own flows (``--capture``).

    Recorded for SYN-ACKs, RSTs, FINs, the first response packets carrying data, and every DNS
    reply datagram: the tells that separate a middlebox's forged packet from the server's own
    (see docs/packets.md). ``seq_rel``/``ack_rel`` relate the segment to the flow: its sequence
    number minus the server's initial one (from the SYN-ACK), and how many of the probe's bytes
    it acknowledges; None when the SYN-ACK was not seen.
    """

    t: float  # arrival (kernel timestamp), Unix time
    proto: str  # "tcp" or "udp"
    src: str  # the remote address the packet claims to come from
    sport: int  # its source port (the server's port)
    dport: int  # the probe's local port
    ttl: int
    ip_id: int
    df: bool
    flags: str = ""  # TCP flags in tcpdump letters: "SA", "R", "RA", "FA", "PA", ...
    window: int | None = None
    seq: int | None = None
    ack: int | None = None
    seq_rel: int | None = None
    ack_rel: int | None = None
    payload: int = 0  # payload bytes (TCP segment data, UDP datagram)
    digest: str = ""  # UDP: the first 16 hex digits of the payload's sha256 (-> DNSReply.raw)


def packet_digest(payload: bytes) -> str:
    """The ``Packet.digest`` of a UDP payload (ties a DNS reply packet to ``DNSReply.raw``)."""
    return hashlib.sha256(payload).hexdigest()[:16]


@dataclass(frozen=True)
class NameQuery:
    """One name resolved through an encrypted resolver (``doh``, ``dot`` endpoints)."""

    name: str
    qtype: str  # "A"
    duration: float
    failure: str | None = None  # None: the resolver answered (any rcode)
    rcode: str = ""  # "NOERROR", "NXDOMAIN", ...
    addresses: tuple[str, ...] = ()


@dataclass(frozen=True)
class EchoTrial:
    """One exchange with a reflector or a VPN server (``fet``, ``wireguard`` endpoints).

    ``role`` says what was sent: ``twin`` (the control: printable bytes, or a datagram of the
    same size that is not WireGuard), ``random`` (bytes no exemption of the fully encrypted
    traffic rule covers), ``initiation`` (a WireGuard handshake initiation), ``followup`` (the
    twin again after a failure), ``other-port`` (the twin to the reflector's second port).
    ``failure`` is None when the peer answered as expected; ``step`` says where it failed
    (``connect``, ``first``, ``second``, ``answer``).
    """

    role: str
    port: int
    started: float
    duration: float
    sent: int = 0
    received: int = 0
    failure: str | None = None
    step: str = ""
    exempt: tuple[str, ...] = ()  # the rule's exemptions covering the first bytes sent (fet)
    detail: str = ""  # what the answer was: "ok", "cookie", "unverifiable", "mac1", ...


@dataclass(frozen=True)
class EndpointObservation:
    """What happened when the probe tried one endpoint.

    ``tcp_failure`` is None when TCP connected (always None for UDP); ``handshake`` is the
    protocol tried on top (``tls``, ``openvpn``, ``mtproto`` or ``""`` for a TCP-only
    endpoint) and ``handshake_failure`` its OONI failure string (None: the server answered as
    it should). For services reached by name these summarise the first hop's steps (the
    first connect and handshake that worked, else the first failure); ``hops`` holds them all.
    """

    kind: str
    name: str
    address: str
    port: int
    transport: str
    started: float
    runtime: float
    tcp_failure: str | None = None
    tcp_duration: float | None = None
    handshake: str = ""
    handshake_failure: str | None = None
    handshake_duration: float | None = None
    sni: str = ""
    tls_version: str | None = None
    leaf_sha256: str | None = None
    other_datagrams: int = 0  # UDP datagrams that were not the server's answer
    source: str = ""
    attempt: int = 0  # 0 for the first try, 1.. for a retry after a failure the control did not see
    # doh, dot: after a failed handshake, the same address with a harmless SNI (None: it passed)
    decoy_sni: str = ""
    decoy_failure: str | None = None
    queries: tuple[NameQuery, ...] = ()  # doh, dot: the names resolved through the endpoint
    # doh, dot: what the control resolved for each name, asked during this measurement (kept
    # with the observation so that the verdict can be judged again from what is stored)
    name_controls: tuple[ControlObservation, ...] = ()
    trials: tuple[EchoTrial, ...] = ()  # fet, wireguard: the exchanges, in order
    key: str = ""  # wireguard: the responder's public key the initiation was made for
    # telegram-dc: what the data centre answered to req_pq_multi ("res_pq", "error:-404", ...)
    answer: str = ""
    # Services reached by name (docs/messaging.md): the web steps, hop by hop, each with the
    # control's view of it (DNS through the probe's resolvers, TCP, TLS, HTTP); ``address`` is
    # then the host name. ``measure_failure`` is why the steps stopped early (the deadline).
    hops: tuple[Hop, ...] = ()
    measure_failure: str | None = None
    # The subjects (RFC 4514) of the CA the app pins, trusted besides the system's (Signal's)
    pinned: tuple[str, ...] = ()

    @property
    def reached(self) -> bool:
        """True when the endpoint answered as its tool expects."""
        return self.tcp_failure is None and self.handshake_failure is None


@dataclass(frozen=True)
class Hop:
    """One step of a redirect chain: a URL measured DNS -> TCP -> TLS -> HTTP."""

    index: int  # 0 for the URL of the list, 1.. for redirects
    url: str
    host: str
    port: int
    scheme: str
    dns: tuple[DNSObservation, ...] = ()
    tcp: tuple[TCPObservation, ...] = ()
    tls: tuple[TLSObservation, ...] = ()
    http: HTTPObservation | None = None
    control: ControlObservation | None = None
    dns_control: tuple[DNSObservation, ...] = ()  # DoH control queries, when --doh is the DNS control
    # Queries for the host to an address that runs no DNS server (--dns-probe): any reply is
    # injected on the path (GFWatch's technique).
    dns_probe: tuple[DNSObservation, ...] = ()
    # After a failed handshake or request: the same address again with a harmless SNI / Host
    # (--decoy-sni, --decoy-host). Success there means the name was filtered, not the address.
    decoy_tls: tuple[TLSObservation, ...] = ()
    decoy_http: tuple[HTTPObservation, ...] = ()
    # Opt-in protocol tests of an https hop (--quic, --ech; docs/protocols.md): QUIC handshakes
    # with the site's SNI and, after a failure, with a harmless one; pairs of ClientHellos
    # without and with a GREASE ECH extension.
    quic: tuple[QUICObservation, ...] = ()
    decoy_quic: tuple[QUICObservation, ...] = ()
    ech: tuple[TLSHelloObservation, ...] = ()


@dataclass(frozen=True)
class Measurement:
    """Everything observed for one target on one attempt."""

    target: Target
    started: float
    runtime: float
    attempt: int = 0  # 0 for the first try, 1.. for retries
    hops: tuple[Hop, ...] = ()
    failure: str | None = None  # set only when the measurement could not run at all (deadline)
    captured: bool = False  # measured with --capture: ``packets`` is what came back
    packets: tuple[Packet, ...] = ()
    #: The opt-in protocol tests this measurement was made with ("quic", "ech"): each gets a
    #: verdict of its own (:class:`ProtocolVerdict`), even when no hop could run it.
    protocols: tuple[str, ...] = ()


@dataclass(frozen=True)
class ProtocolVerdict:
    """The verdict of one opt-in protocol test of a URL (``quic``, ``ech``), beside the web one.

    Same vocabulary as :class:`Verdict`; it never changes the URL's web verdict (a site that
    works over TCP but not over QUIC is still reachable): docs/protocols.md.
    """

    suite: str  # "quic" or "ech"
    verdict: str
    stage: str | None = None  # "quic" or "tls"
    hop: int | None = None
    reasons: tuple[str, ...] = ()
    classifier_version: str = ""


@dataclass(frozen=True)
class Verdict:
    verdict: str  # one of VERDICTS
    stage: str | None = None  # one of STAGES, where interference (or the failure) was seen
    hop: int | None = None
    reasons: tuple[str, ...] = ()
    classifier_version: str = ""
    #: The deciding evidence may be transient (a failure of a step the control completed): the
    #: runner measures again before believing it. Not stored: it is about this attempt only.
    retryable: bool = dataclasses.field(default=False, compare=False)
    #: Verdicts of the opt-in protocol tests (QUIC, ECH), stored beside this one.
    protocols: tuple[ProtocolVerdict, ...] = ()

