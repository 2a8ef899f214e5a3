"""Which addresses may be connected to on someone else's behalf: the test helper's SSRF guard.

The test helper connects wherever its clients ask. Without a policy it would be a way into
the network it runs in: a URL whose name resolves to ``10.0.0.5``, a redirect to
``http://169.254.169.254/`` (cloud metadata), an IPv4-mapped ``[::ffff:127.0.0.1]``. So the
policy is checked on the *address actually connected to*, after DNS and after every redirect,
by the engine's TCP step (:func:`probe.measure.tcp.tcp_connect`), not on the URL's text.

A policy is a function ``(canonical IP text) -> bool`` (True: may connect). The helper uses
:func:`is_public_address`; tests inject their own to make a loopback address "public".
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Callable

__all__ = ["ConnectPolicy", "canonical_address", "embedded_ipv4", "is_public_address"]

#: ``(canonical IP text) -> may connect``; None in a MeasureConfig means "anywhere".
ConnectPolicy = Callable[[str], bool]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_NAT64 = ipaddress.ip_network("64:ff9b::/96")  # RFC 6052 well-known prefix: the IPv4 is the tail
_COMPAT = ipaddress.ip_network("::/96")  # deprecated IPv4-compatible addresses (::a.b.c.d)


def canonical_address(text: str) -> IPAddress | None:
    """The address ``text`` names when it is a strict IPv4/IPv6 literal, else None.

    Strict on purpose: ``0177.0.0.1``, ``0x7f.1``, ``2130706433`` and ``127.1`` are not
    addresses here, though ``inet_aton``/``getaddrinfo`` would read them as 127.0.0.1. The
    engine connects only to what this returns, in its canonical form, so no resolver library
    can reinterpret the text.
    """
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def embedded_ipv4(addr: IPAddress) -> list[ipaddress.IPv4Address]:
    """IPv4 addresses an IPv6 address carries (mapped, compatible, NAT64, 6to4, Teredo).

    Traffic to such an IPv6 address may end up at the IPv4 one (a NAT64 gateway, a 6to4
    relay, the kernel for ``::ffff:a.b.c.d``), so each must pass the policy too.
    """
    if isinstance(addr, ipaddress.IPv4Address):
        return []
    found: list[ipaddress.IPv4Address] = []
    if addr.ipv4_mapped is not None:
        found.append(addr.ipv4_mapped)
    if addr.sixtofour is not None:
        found.append(addr.sixtofour)
    if addr.teredo is not None:
        found.extend(addr.teredo)
    if addr in _NAT64 or (addr in _COMPAT and int(addr) > 1):
        found.append(ipaddress.IPv4Address(int(addr) & 0xFFFFFFFF))
    return found


# Cached: the helper asks it for every address of every request it answers, the same CDN and
# hosting addresses over and over, and ipaddress's is_global walks a list of networks each time.
# A pure function of the text; the cache is bounded, so memory does not grow with the load.
@functools.lru_cache(maxsize=4096)
def is_public_address(ip: str) -> bool:
    """True for a globally routable unicast address, every address it embeds included.

    False for loopback, private (RFC 1918, ULA), carrier-grade NAT, link-local (cloud
    metadata), multicast, reserved, documentation and unspecified addresses, for anything
    that is not a strict IP literal, and for IPv6 forms carrying such an IPv4 address.
    """
    addr = canonical_address(ip.split("%", 1)[0] if ":" in ip else ip)
    if addr is None:
        return False
    return all(a.is_global and not a.is_multicast for a in (addr, *embedded_ipv4(addr)))
