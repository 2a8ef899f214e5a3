"""The local addresses of the probe's own sockets, noted where each socket is opened.

Without a NAT (IPv6, a server, a phone's tethering with a public address) the local address of
a socket *is* the address every site sees, and echoes: a run must scrub it whether or not a
STUN server answered. Every socket the probe opens to measure or to check the network (TCP for
HTTP and TLS, UDP for DNS, DoH, the control helper's connections, STUN, the pre-flight checks)
notes its local address here; the run's scrubber (:class:`probe.run.watch.NetworkWatch`) reads
the set before each measurement is stored, so a measurement is scrubbed of every address its
own sockets used.

One set per process: the addresses are the machine's, whichever run or loop noted them. It
holds a handful of addresses (one per family and interface used), never one per socket.
"""

from __future__ import annotations

import ipaddress
from typing import Any

__all__ = ["generation", "note", "note_stream", "seen"]

_seen: set[str] = set()
_generation = 0


def _address(sockname: Any) -> str | None:
    """The canonical IP of a socket name (``(ip, port, ...)`` or an IP), None for no address.

    Scope ids (``fe80::1%eth0``) are dropped and IPv4-mapped IPv6 addresses become IPv4, so
    the scrubber matches the forms sites write.
    """
    host = sockname[0] if isinstance(sockname, tuple | list) and sockname else sockname
    if not isinstance(host, str) or not host:
        return None
    try:
        addr = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    if addr.is_loopback or addr.is_unspecified:
        return None  # identifies nobody: the scrubber leaves these alone anyway
    return str(addr)


def note(sockname: Any) -> None:
    """Remember the local address of a socket (``sock.getsockname()``); cheap when known."""
    ip = _address(sockname)
    if ip is not None and ip not in _seen:
        global _generation
        _seen.add(ip)
        _generation += 1


def note_stream(stream: Any) -> None:
    """Remember the local address of an asyncio transport or an httpcore network stream."""
    if stream is None:
        return
    get = getattr(stream, "get_extra_info", None)
    if get is None:
        return
    for key in ("sockname", "client_addr"):
        try:
            value = get(key)
        except Exception:  # a stream that does not know the key, or is closed
            value = None
        if value:
            note(value)
            return


def seen() -> frozenset[str]:
    """Every local address noted so far."""
    return frozenset(_seen)


def generation() -> int:
    """A number that grows whenever a new address is noted (cheap to compare)."""
    return _generation
