"""Addresses and names: IP literals, canonical IPs, address classes, public names.

Two address policies live here, side by side because they answer different questions:

- :func:`addr_class` (the classifier's): why an address cannot be a public web server. The
  documentation prefixes count as usable, because tests and labs stand them in for public
  addresses and no censor answers with them.
- :func:`probe.core.net.policy.is_public_address` (the test helper's SSRF guard): is the address
  globally routable. Documentation prefixes are not, so the helper never connects to them on a
  probe's behalf.
"""

from __future__ import annotations

import functools
import ipaddress

__all__ = [
    "addr_class",
    "canon_ip",
    "family",
    "is_ip_literal",
    "is_public_name",
    "related_hosts",
]

# Documentation prefixes (RFC 5737, RFC 3849) are routed nowhere, but tests, examples and labs use
# them as stand-ins for public addresses. Treating them as bogons would prove nothing in the field
# (no censor answers with them) and would make every test fixture look hijacked.
_DOCUMENTATION = tuple(
    ipaddress.ip_network(n) for n in ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24", "2001:db8::/32")
)
_PRIVATE = tuple(
    ipaddress.ip_network(n)
    for n in (
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "100.64.0.0/10",  # carrier-grade NAT
        "169.254.0.0/16",
        "fc00::/7",
        "fe80::/10",
    )
)
# Special-use top-level names (RFC 2606, 6761, 6762, 8375, 9476, ICANN's .internal) and names in
# common private use. A private answer for such a name proves nothing: it is normal on a LAN, in
# the lab (*.lab.example) and in loopback tests.
_NON_PUBLIC_TLDS = frozenset(
    {
        "test",
        "example",
        "invalid",
        "localhost",
        "local",
        "internal",
        "alt",
        "onion",
        "lan",
        "home",
        "corp",
        "intranet",
        "private",
        "localdomain",
    }
)


@functools.lru_cache(maxsize=4096)
def canon_ip(ip: str) -> str:
    """The canonical text of an IP address ("" when ``ip`` is not an address)."""
    try:
        return str(ipaddress.ip_address(ip.strip().strip("[]")))
    except ValueError:
        return ""


def is_ip_literal(host: str) -> bool:
    """True when ``host`` (a Target's host, or an address) is an IPv4 or IPv6 literal.

    Such a host has no DNS step. No brackets or spaces are accepted: hosts are stored bare.
    """
    # Every IPv4 literal ends in a digit and every IPv6 literal has a colon: a host name is
    # told apart without ipaddress's two failed parses (and their exceptions), on every URL.
    if ":" not in host and not host[-1:].isdigit():
        return False
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def family(ip: str) -> int:
    """4 or 6 (0 for something that is not an address)."""
    try:
        return ipaddress.ip_address(ip).version
    except ValueError:
        return 0


@functools.lru_cache(maxsize=4096)
def addr_class(ip: str) -> str | None:
    """Why ``ip`` cannot be a public web server: ``unspecified``, ``loopback``, ``private``,
    ``reserved`` (multicast, 0/8, 240/4, benchmarking, ...), or None for a usable address."""
    try:
        a = ipaddress.ip_address(ip)
    except ValueError:
        return None
    if isinstance(a, ipaddress.IPv6Address) and a.ipv4_mapped is not None:
        a = a.ipv4_mapped
    if any(a in n for n in _DOCUMENTATION):
        return None
    if a.is_unspecified:
        return "unspecified"
    if a.is_loopback:
        return "loopback"
    if any(a in n for n in _PRIVATE):
        return "private"
    if a.is_multicast or a.is_reserved or not a.is_global:
        return "reserved"
    return None


def is_public_name(host: str) -> bool:
    """A DNS name under a public top-level domain (not an IP literal, not a special-use name)."""
    host = host.rstrip(".").lower()
    if not host or is_ip_literal(host) or "." not in host:
        return False
    if host.endswith(".home.arpa"):
        return False
    return host.rsplit(".", 1)[1] not in _NON_PUBLIC_TLDS


def related_hosts(a: str, b: str) -> bool:
    """Same host, or one a subdomain of the other, ignoring a leading ``www.``."""
    a = a.rstrip(".").lower().removeprefix("www.")
    b = b.rstrip(".").lower().removeprefix("www.")
    return a == b or a.endswith("." + b) or b.endswith("." + a)
