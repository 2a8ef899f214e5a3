"""Resolvers: ``--resolver`` specifications, their recorded names, and resolv.conf.

resolv.conf is read here and nowhere else: the engine, the pre-flight check and the test helper
all see the same nameservers for the same file.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path

from probe.core.net.hostport import _port, bracket, split_hostport

__all__ = [
    "DEFAULT_RESOLV_CONF",
    "format_resolver",
    "parse_resolver",
    "read_resolv_conf",
    "system_nameservers",
]

#: The system resolver configuration.
DEFAULT_RESOLV_CONF = "/etc/resolv.conf"


def parse_resolver(text: str, default_port: int = 53) -> tuple[str, int]:
    """Parse ``"IP"``, ``"IP:PORT"``, ``"[IPv6]:PORT"`` or a bare IPv6 address.

    Raises ValueError with a readable message for anything else (resolvers are IP addresses:
    resolving the resolver's name would need a resolver). The address is kept as written.
    """
    try:
        host, port_s = split_hostport(text.strip())
    except ValueError as exc:
        raise ValueError(f"invalid resolver {text!r}: {exc}") from None
    port = default_port
    if port_s is not None:
        if not port_s.isdigit():
            raise ValueError(f"invalid resolver {text!r}: bad port")
        port = int(port_s)
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(f"invalid resolver {text!r}: not an IP address") from None
    if _port(str(port)) is None:
        raise ValueError(f"invalid resolver {text!r}: port out of range")
    return host, port


def format_resolver(ip: str, port: int, transport: str = "udp") -> str:
    """``udp://IP:PORT`` (IPv6 in brackets), the recorded name of a resolver."""
    return f"{transport}://{bracket(ip)}:{port}"


def read_resolv_conf(path: str | Path = DEFAULT_RESOLV_CONF) -> tuple[str, ...]:
    """The ``nameserver`` entries of a resolv.conf file, in order.

    Raises OSError when the file cannot be read and ValueError (naming ``file:line``) for a
    ``nameserver`` line without an address or a file with no nameserver at all.
    """
    servers = []
    for n, line in enumerate(Path(path).read_text().splitlines(), 1):
        fields = line.split("#", 1)[0].split(";", 1)[0].split()
        if len(fields) >= 2 and fields[0] == "nameserver":
            servers.append(fields[1])
        elif len(fields) == 1 and fields[0] == "nameserver":
            raise ValueError(f"{path}:{n}: nameserver without an address")
    if not servers:
        raise ValueError(f"{path}: no nameserver line")
    return tuple(servers)


def system_nameservers(path: str | Path = DEFAULT_RESOLV_CONF) -> list[str]:
    """The nameservers of a resolv.conf file, or [] when it is missing, unreadable or names
    none (the caller then says there is no resolver)."""
    try:
        return list(read_resolv_conf(path))
    except (OSError, ValueError):  # UnicodeDecodeError is a ValueError
        return []
