"""Resolvers: ``--resolver`` specifications, their recorded names, resolv.conf, and which
resolvers a run asks.

resolv.conf is read here and nowhere else, and :func:`run_resolvers` is the one rule for which
resolvers a configuration means: the engine, the pre-flight check, the identity check and the
test helper all ask the same resolvers for the same configuration.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from probe.core.net.hostport import _port, bracket, format_endpoint, split_hostport

__all__ = [
    "DEFAULT_RESOLV_CONF",
    "RunResolvers",
    "format_resolver",
    "parse_resolver",
    "read_resolv_conf",
    "run_resolvers",
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


@dataclass(frozen=True)
class RunResolvers:
    """The resolvers a run asks, and what the rule left out."""

    addresses: tuple[tuple[str, int], ...]  # (IP, port), in order
    ignored: tuple[str, ...] = ()  # resolv.conf nameservers that are not IP addresses
    missing: str | None = None  # why there is none ("no nameserver in /etc/resolv.conf")

    def endpoints(self) -> list[str]:
        """The addresses as ``IP:PORT`` (``[IPv6]:PORT``) text."""
        return [format_endpoint(ip, port) for ip, port in self.addresses]


def run_resolvers(resolvers: Sequence[str], system_resolver: bool = True,
                  resolv_conf: str | Path = DEFAULT_RESOLV_CONF) -> RunResolvers:
    """Which resolvers a run asks: the ``--resolver`` specifications when there are any (a bad
    one raises ValueError); else, unless the system resolver is off, the nameservers of
    ``resolv_conf`` that are IP addresses (the others are ``ignored``); else none, and why."""
    if resolvers:
        return RunResolvers(tuple(parse_resolver(r) for r in resolvers))
    if not system_resolver:
        return RunResolvers((), missing="no resolver configured")
    addresses: list[tuple[str, int]] = []
    ignored: list[str] = []
    for ns in system_nameservers(resolv_conf):
        try:
            addresses.append(parse_resolver(ns))
        except ValueError:
            ignored.append(ns)
    missing = None if addresses else f"no nameserver in {resolv_conf}"
    return RunResolvers(tuple(addresses), tuple(ignored), missing)
