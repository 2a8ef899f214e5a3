"""``host:port`` text: one splitter, the parsers built on it, one formatter.

Forms accepted by the splitter: ``HOST``, ``HOST:PORT``, ``[IPv6]``, ``[IPv6]:PORT`` and a bare
IPv6 address (more than one colon, so no port). Formatting always brackets IPv6 addresses, the
form the OONI test-helper protocol uses for its ``tcp_connect`` keys.

The parsers, one per kind of text: :func:`parse_endpoint` (an IP address and a port: helper
keys, ``probe show ADDRESS:PORT``, the lab's services), :func:`parse_hostport` (a host name or
address, the port optional: STUN servers, OONI's addresses, the lab's DNS servers),
:func:`parse_listen` (where a server listens: ``:PORT`` for every address), :func:`host_of`
(the site a ``Host`` header names: the lab's web server and proxy) and
:func:`split_port` (text we did not write, such as a log line, where an IPv6 address may stand
unbracketed before its port). Resolvers (:mod:`probe.core.net.resolvers`) build on the splitter.
No other module splits ``host:port`` text.
"""

from __future__ import annotations

import ipaddress
import socket
from typing import NamedTuple

__all__ = [
    "Endpoint",
    "authority",
    "bracket",
    "format_endpoint",
    "host_of",
    "parse_endpoint",
    "parse_hostport",
    "parse_listen",
    "split_hostport",
    "split_port",
]


class Endpoint(NamedTuple):
    """An IP address and a port (a tuple, so ``(ip, port)`` pairs compare equal to it)."""

    ip: str
    port: int

    def __str__(self) -> str:
        return format_endpoint(self.ip, self.port)


def bracket(host: str) -> str:
    """``host`` as it stands in a URL or an endpoint: IPv6 addresses in brackets."""
    return f"[{host}]" if ":" in host else host


def format_endpoint(ip: str, port: int) -> str:
    """``IP:PORT``, with brackets around IPv6 addresses."""
    return f"{bracket(ip)}:{port}"


def authority(host: str, port: int, scheme: str) -> str:
    """The URL authority and Host header: brackets for IPv6, the port only when not the
    scheme's default (80 for http, 443 for https)."""
    default = 443 if scheme == "https" else 80
    return bracket(host) if port == default else format_endpoint(host, port)


def split_hostport(text: str) -> tuple[str, str | None]:
    """Split ``text`` into (host, port text or None), without judging either.

    Raises ValueError (``"missing ']'"``, ``"bad port"``) when brackets are broken.
    """
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep:
            raise ValueError("missing ']'")
        if not rest:
            return host, None
        if not rest.startswith(":"):
            raise ValueError("bad port")
        return host, rest[1:]
    if text.count(":") == 1:
        host, _, port = text.partition(":")
        return host, port
    return text, None


def _port(text: str | None, lowest: int = 1) -> int | None:
    """The port number of ``text``, or None when it is not a number from ``lowest`` to 65535."""
    if text is None or not text.isdigit():
        return None
    port = int(text)
    return port if lowest <= port < 65536 else None


def parse_endpoint(text: str) -> Endpoint:
    """``"1.2.3.4:443"`` or ``"[::1]:443"`` -> Endpoint(ip, port), the address in its compressed
    form (an IPv6 zone dropped); raises ValueError."""
    if not isinstance(text, str):
        raise ValueError("not a string")
    try:
        host, port_s = split_hostport(text)
    except ValueError:
        raise ValueError("expected [IPv6]:PORT") from None
    if port_s is None:
        raise ValueError("expected [IPv6]:PORT" if text.startswith("[") else "expected IP:PORT")
    ip = _compressed(host.split("%", 1)[0])  # raises ValueError
    port = _port(port_s)
    if port is None:
        raise ValueError(f"invalid port {port_s!r}")
    return Endpoint(ip, port)


def parse_hostport(text: str, default_port: int | None = None) -> tuple[str, int]:
    """``HOST``, ``HOST:PORT``, ``[IPv6]``, ``[IPv6]:PORT`` or a bare IPv6 address -> (host,
    port), the port ``default_port`` when the text has none (None: a port is required).

    The host is kept as written (a name or an address, brackets removed). Raises ValueError
    naming the text when the host is empty or the port is missing or not from 1 to 65535.
    """
    host, port_text = split_hostport(text.strip())
    if not host:
        raise ValueError(f"no host in {text!r}")
    if port_text is None:
        if default_port is None:
            raise ValueError(f"no port in {text!r}")
        return host, default_port
    port = _port(port_text)
    if port is None:
        raise ValueError(f"bad port in {text!r}")
    return host, port


def host_of(authority: str) -> str:
    """The host a ``Host`` header (or URL authority) names, as sites are looked up: lower-case,
    without its port, brackets or trailing dot; text that is not ``host[:port]`` as it is."""
    try:
        host = split_hostport(authority.strip())[0]
    except ValueError:
        host = authority.strip()
    return host.lower().rstrip(".")


def split_port(text: str) -> tuple[str, int] | None:
    """``ANYTHING:PORT`` -> (ANYTHING, port), split at the last colon; None when ``text`` does
    not end with ``:`` and a port number.

    For text we did not write (a log line, where an IPv6 address may stand unbracketed before
    its port): the part before the port is not checked, and brackets around it are kept.
    """
    host, sep, port_text = text.rpartition(":")
    if not sep or not port_text.isdigit():
        return None
    return host, int(port_text)


def _compressed(text: str) -> str:
    """The compressed form of the address ``text``; raises ValueError.

    A canonical dotted quad (what helpers send) is checked by the C library and is its own
    compressed form: ipaddress's parse in Python is skipped on every control answer. Anything
    else goes through ipaddress, which decides.
    """
    try:
        if socket.inet_ntop(socket.AF_INET, socket.inet_pton(socket.AF_INET, text)) == text:
            return text
    except OSError:
        pass
    return ipaddress.ip_address(text).compressed


def parse_listen(text: str) -> tuple[str, int]:
    """``HOST:PORT``, ``[IPv6]:PORT`` or ``:PORT`` -> (host, port); raises ValueError.

    ``:PORT`` gives host ``""``: every address, IPv4 and IPv6 (``[::]`` is IPv6 only). Port 0
    asks the kernel for a free port.
    """
    try:
        host, port_s = split_hostport(text)
    except ValueError:
        port_s = None
    port = _port(port_s, lowest=0)
    if port is None:
        raise ValueError(f"expected HOST:PORT, got {text!r}")
    return host, port
