"""The lab's web: every name, its address, and how its servers behave, as data.

The authoritative DNS zone, the HTTP/HTTPS servers and the certificates are all derived from
:data:`SITES`. Each site has its own address in 10.66.2.0/24, so that a censor rule aimed at one
site's address never touches another. Names live under ``lab.example`` (``.example`` is reserved
by RFC 2606 and can never resolve on the Internet).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from probe.core.net import format_endpoint
from probe.lab.topology import BLOCKPAGE_IP

__all__ = [
    "ABROAD",
    "BLOCKPAGE_IP",
    "DOMAIN",
    "FORGED_IP",
    "GEO",
    "SITES",
    "Site",
    "quic_listeners",
    "site",
    "web_config",
    "zone",
]

DOMAIN = "lab.example"
#: The address the on-path DNS injector forges (TEST-NET-3: routed nowhere, not even in the lab).
FORGED_IP = "203.0.113.7"


@dataclass(frozen=True)
class Site:
    """One name of the lab.

    ``kind`` is the behaviour of its HTTP and HTTPS servers: ``page`` (200, fixed body),
    ``forbidden`` (403 to everyone), ``dynamic`` (body changes on every fetch), ``slow`` (answers
    after ``delay`` seconds), ``huge`` (``size`` bytes), ``trickle`` (``size`` bytes sent by the
    server at ``rate`` bytes/s: slow for everyone), ``redirect`` (``location``, over http
    and https alike), ``refuse`` (nothing listens on its address), ``echo`` (echoes the
    client's address in its title, body and an ``X-Client-IP`` header, and ``/redirect``
    redirects to a URL carrying it: the privacy scrubber's test). Every ``page`` site also
    serves ``/large/<KiB>``: an object of that size at full speed (for the throttling rule).
    ``cert`` is what its HTTPS listener presents: ``valid``, ``expired``, ``wrong-name`` or
    ``none`` (no HTTPS listener).
    ``alt_ip`` is a second address serving the same site (a CDN node), not in the zone.
    ``ip6`` is an AAAA record. A site whose ``ip`` is loopback is served by nobody. ``quic``
    sites also answer QUIC on UDP 443 (``h3``: and HTTP/3 requests; ``mute``: handshakes only);
    the others have nothing there.
    """

    name: str
    ip: str | None  # None: not in the zone (NXDOMAIN everywhere)
    kind: str = "page"
    cert: str = "valid"
    location: str = ""
    delay: float = 0.0
    size: int = 0
    rate: float = 0.0
    alt_ip: str | None = None
    title: str = ""
    ip6: str | None = None  # an AAAA record (nothing serves it: the lab has no IPv6 routes)
    quic: str = ""  # "h3": a QUIC (HTTP/3) server on UDP 443 too; "mute": one that never answers a request


def _n(label: str) -> str:
    return f"{label}.{DOMAIN}"


#: The lab's "whoami" name: its A answer is the address of whoever asked the authoritative server.
WHOAMI = _n("whoami")
#: The lab's STUN server (RFC 5389), in the server namespace, behind the censor like the sites.
STUN = "10.66.2.2:3478"


SITES: tuple[Site, ...] = (
    Site(_n("clean"), "10.66.2.10", title="Clean site"),
    Site(_n("dns-nx"), "10.66.2.11"),
    Site(_n("dns-bogon"), "10.66.2.12"),
    Site(_n("dns-blockpage"), "10.66.2.13"),
    Site(_n("dns-inject"), "10.66.2.14"),
    Site(_n("dns-drop"), "10.66.2.15"),
    Site(_n("tcp-blackhole"), "10.66.2.16"),
    Site(_n("tcp-reset"), "10.66.2.17"),
    Site(_n("tls-rst"), "10.66.2.18"),
    Site(_n("tls-drop"), "10.66.2.19"),
    Site(_n("tls-fin"), "10.66.2.20"),
    Site(_n("tls-mitm"), "10.66.2.21"),
    Site(_n("http-rst"), "10.66.2.22"),
    Site(_n("http-blockpage"), "10.66.2.23"),
    Site(_n("http-drop"), "10.66.2.24"),
    Site(_n("redirect-open"), "10.66.2.25", kind="redirect",
         location=f"https://{_n('redirect-censored')}/article"),
    Site(_n("redirect-censored"), "10.66.2.26"),
    Site(_n("refusing"), "10.66.2.27", kind="refuse", cert="none"),
    Site(_n("expired"), "10.66.2.28", cert="expired"),
    Site(_n("wrong-name"), "10.66.2.29", cert="wrong-name"),
    Site(_n("cdn"), "10.66.2.30", alt_ip="10.66.2.31"),
    Site(_n("forbidden"), "10.66.2.32", kind="forbidden"),
    Site(_n("dynamic"), "10.66.2.33", kind="dynamic"),
    Site(_n("chain"), "10.66.2.34", kind="redirect", location=f"http://{_n('chain-2')}/next"),
    Site(_n("chain-2"), "10.66.2.35", kind="redirect", location=f"https://{_n('chain-final')}/end"),
    Site(_n("chain-final"), "10.66.2.36"),
    Site(_n("slow"), "10.66.2.37", kind="slow", delay=3.0),
    Site("xn--bcher-kva." + DOMAIN, "10.66.2.38", title="Bücher"),  # bücher.lab.example
    Site(_n("huge"), "10.66.2.39", kind="huge", size=(1 << 20) + (512 << 10)),
    # A large object the server itself sends at 16 KB/s: slow for everyone, not throttled.
    Site(_n("trickle"), "10.66.2.40", kind="trickle", size=128 << 10, rate=16 << 10),
    # Issue 12: cases where real data met false positives.
    Site(_n("loopback"), "127.0.0.1", kind="refuse", cert="none"),  # misconfigured for everyone
    Site(_n("warning"), "10.66.2.60", title="Access restricted"),  # an ISP's warning page
    Site(_n("redirect-forged"), "10.66.2.61", title="Forged redirect victim"),
    Site(_n("redirect-broken"), "10.66.2.62", title="Broken Location victim"),
    # A public-looking name on a private address with a valid certificate (an intranet site).
    Site("private-news.probe-lab.net", "10.66.2.63", title="Private news"),
    Site(_n("cdn6"), "10.66.2.64", ip6="fd66:2::44", title="Dual-stack CDN"),
    Site(_n("echo"), "10.66.2.41", kind="echo"),
    # Issue 14: packet-level evidence, resolver-less DNS, decoys.
    Site(_n("tls-copy"), "10.66.2.70"),
    Site(_n("server-rst"), "10.66.2.71"),
    Site(_n("dns-ttl"), "10.66.2.72"),
    Site(_n("dns-probe"), "10.66.2.73"),
    Site(_n("decoy-sni"), "10.66.2.74"),
    Site(_n("decoy-ip"), "10.66.2.75"),
    Site(_n("decoy-host"), "10.66.2.76"),
    # Issue 26: QUIC (HTTP/3) and ECH (docs/protocols.md).
    Site(_n("quic"), "10.66.2.80", quic="h3", title="HTTP/3 site"),
    Site(_n("quic-sni"), "10.66.2.81", quic="h3"),
    Site(_n("quic-udp"), "10.66.2.82", quic="h3"),
    Site(_n("quic-lossy"), "10.66.2.83", quic="h3"),
    Site(_n("quic-data"), "10.66.2.87", quic="h3"),
    Site(_n("quic-mute"), "10.66.2.88", quic="mute"),
    Site(_n("ech-drop"), "10.66.2.84"),
    Site(_n("ech-rst"), "10.66.2.85"),
    Site(_n("ech-refused"), "10.66.2.86"),
    # Issue 27: a resolver that fails for one name only.
    Site(_n("dns-servfail"), "10.66.2.89"),
    # Issue 24: a page title carrying terminal escape sequences (OSC 0 window title, OSC 52
    # clipboard write, a CSI colour): `probe show` must print them disarmed.
    Site(_n("hostile-title"), "10.66.2.77",
         title="News \x1b]0;pwned\x07\x1b]52;c;cHduZWQ=\x07\x1b[31mtoday"),
    # Issue 27: the messaging apps' services, at lab addresses (probe/lab/messaging.py): never
    # the real ones. e1.whatsapp is a chat endpoint, measured by TCP only.
    Site(_n("web.telegram"), "10.66.2.90", title="Telegram Web (lab)"),
    Site(_n("web.whatsapp"), "10.66.2.91", title="WhatsApp Web (lab)"),
    Site(_n("e1.whatsapp"), "10.66.2.92"),
    Site(_n("chat.signal"), "10.66.2.93", kind="forbidden"),  # Signal answers / with an error
    # Nonexistent everywhere: not in the zone, so the authoritative server says NXDOMAIN.
    Site(_n("does-not-exist"), None, cert="none"),
)

_BY_NAME = {s.name: s for s in SITES}

#: The sites' addresses "abroad" (first, last) in the lab's IP-to-country table :data:`GEO`.
ABROAD = ("10.66.2.26", "10.66.2.49")
#: The lab's IP-to-country table (ip2asn TSV, `--geo`): 10.66.2.10-.25 and everything from .50
#: "at home" (RU), 10.66.2.26-.49 "abroad" (DE). The resolver's upstream (10.66.2.53) stays at
#: home, as a national DNS would. The outage scenarios (national isolation) judge with it.
GEO = (
    "10.66.2.0\t10.66.2.25\t64500\tRU\tLAB-HOME\n"
    f"{ABROAD[0]}\t{ABROAD[1]}\t64501\tDE\tLAB-ABROAD\n"
    "10.66.2.50\t10.66.2.255\t64500\tRU\tLAB-HOME\n"
)


def site(name: str) -> Site:
    """The site named ``name`` (KeyError if the lab has no such name)."""
    return _BY_NAME[name]


def server_addresses() -> tuple[str, ...]:
    """Every address the server namespace carries for the sites."""
    out: list[str] = []
    for s in SITES:
        out += [a for a in (s.ip, s.alt_ip) if a and not a.startswith("127.")]
    return tuple(dict.fromkeys(out))


def quic_listeners(cert: str, key: str) -> list[str]:
    """probe.lab.quicserver's arguments: the certificate, and ``--listen IP:443`` (``--mute``
    for a ``mute`` site) for every site that speaks QUIC."""
    out = ["--cert", cert, "--key", key]
    for s in SITES:
        if s.quic and s.ip:
            out += ["--mute" if s.quic == "mute" else "--listen", format_endpoint(s.ip, 443)]
    return out


def zone() -> dict[str, dict[str, Any]]:
    """The authoritative zone: name -> {"A": [...]}. Names absent are NXDOMAIN."""
    z: dict[str, dict[str, Any]] = {
        _n("blockpage"): {"A": [BLOCKPAGE_IP]},
        DOMAIN: {"A": []},
        # The resolver's egress address, as seen by this authoritative server (probe.measure.identity).
        WHOAMI: {"whoami": True},
    }
    for s in SITES:
        if s.ip:
            z[s.name] = {"A": [s.ip]}
            if s.ip6:
                z[s.name]["AAAA"] = [s.ip6]
    return z


def web_config(certs: dict[str, tuple[str, str]]) -> dict[str, object]:
    """The web servers' configuration: listeners and per-name behaviour.

    ``certs`` maps a certificate kind (``valid``, ``expired``, ``wrong-name``) to (cert, key)
    PEM files. Every site address gets an HTTP listener on 80 and, unless ``cert`` is ``none``,
    an HTTPS one on 443; the block-page server listens on 80 only and serves its page for any
    Host.
    """
    listeners: list[dict[str, object]] = [{"ip": BLOCKPAGE_IP, "port": 80, "blockpage": True}]
    sites: dict[str, dict[str, object]] = {}
    for s in SITES:
        if not s.ip or s.kind == "refuse":
            continue
        sites[s.name] = {
            "kind": s.kind,
            "location": s.location,
            "delay": s.delay,
            "size": s.size,
            "rate": s.rate,
            "title": s.title or s.name,
        }
        for ip in (a for a in (s.ip, s.alt_ip) if a):
            listeners.append({"ip": ip, "port": 80})
            if s.cert != "none":
                cert, key = certs[s.cert]
                listeners.append({"ip": ip, "port": 443, "cert": cert, "key": key})
    return {"listeners": listeners, "sites": sites}
