"""Endpoint lists: the servers of circumvention tools and anchors, in a small CSV format.

Columns (header required; extra columns are ignored)::

    kind,name,address,port,sni,notes,source[,key]

- ``kind``: ``tor`` (a relay's or bridge's OR port: TLS handshake), ``openvpn-udp`` and
  ``openvpn-tcp`` (an OpenVPN server without tls-auth/tls-crypt: its HARD_RESET handshake),
  ``tls`` (any TLS endpoint, e.g. a VPN provider's; ``sni`` is sent when given), ``tcp`` (a TCP
  connect only, e.g. an obfs4 bridge whose own handshake needs its secret), ``doh`` and ``dot``
  (an encrypted DNS resolver: ``sni`` is its name, its certificate is verified, and names are
  resolved through it), ``fet`` (a reflector's TCP echo port: fully encrypted traffic against
  its printable twin), ``wireguard`` (a WireGuard handshake; ``key`` is the server's public key);
- ``address``: an IP address (names would add DNS, which the web test already measures);
- ``port``: 1-65535; ``sni``: server name for ``tls``, ``doh``, ``dot`` (``tor`` sends a random
  one, as Tor does);
- ``source``: where the row comes from (kept with every result);
- ``key`` (optional column): a WireGuard public key (base64), for ``wireguard`` rows only.

Bad rows raise :class:`EndpointListError` naming ``file:line``.
"""

from __future__ import annotations

import csv
import io
import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from probe.core.errors import ProbeUsageError
from probe.core.wgkey import decode_key
from probe.host.data import DATA_DIR
from probe.host.files import read_bounded

__all__ = [
    "DEFAULT_LIST",
    "DNS_KINDS",
    "ENCRYPTED_DNS_LIST",
    "KINDS",
    "TWIN_KINDS",
    "Endpoint",
    "EndpointListError",
    "load_endpoints",
    "parse_endpoints",
]

#: Endpoint kinds and the transport each uses.
KINDS: dict[str, str] = {
    "tor": "tcp",
    "tls": "tcp",
    "tcp": "tcp",
    "openvpn-tcp": "tcp",
    "openvpn-udp": "udp",
    "doh": "tcp",
    "dot": "tcp",
    "fet": "tcp",
    "wireguard": "udp",
}
#: Kinds whose peer must be a reflector (`probe helper serve --reflector`) or a VPN server, with
#: no OONI control: their own twin exchange is the control.
TWIN_KINDS = ("fet", "wireguard")
#: Encrypted DNS kinds (their ``sni`` is the resolver's name; it is required).
DNS_KINDS = ("doh", "dot")
#: The packaged list (Tor directory and bridge authorities; see probe/data/NOTICE-circumvention.md).
DEFAULT_LIST = DATA_DIR / "circumvention.csv"
#: The packaged encrypted DNS resolvers (see probe/data/NOTICE-circumvention.md).
ENCRYPTED_DNS_LIST = DATA_DIR / "encrypted-dns.csv"
_REQUIRED = ("kind", "name", "address", "port")
_MAX_BYTES = 4 << 20  # an endpoint list is a few KB; refuse to read a runaway file


class EndpointListError(ProbeUsageError, ValueError):
    """A bad endpoint list; the message names ``file:line``."""


@dataclass(frozen=True)
class Endpoint:
    """One server to try."""

    kind: str
    name: str
    address: str
    port: int
    sni: str = ""
    source: str = ""
    origin: str = ""  # "list-name:line" it was read from
    key: str = ""  # wireguard: the server's public key (base64)
    alt_port: int = 0  # fet: the reflector's second echo port (0: none known)

    @property
    def transport(self) -> str:
        """``tcp`` or ``udp``."""
        return KINDS[self.kind]


def parse_endpoints(text: str, origin: str) -> list[Endpoint]:
    """Validate the CSV ``text`` (named ``origin`` in messages) into endpoints."""
    reader = csv.DictReader(io.StringIO(text))
    header = [h.strip() for h in reader.fieldnames or []]
    missing = [c for c in _REQUIRED if c not in header]
    if missing:
        raise EndpointListError(f"{origin}:1: missing column(s) {', '.join(missing)}")
    out: list[Endpoint] = []
    for row in reader:
        where = f"{origin}:{reader.line_num}"
        cells = {k.strip(): (v or "").strip() for k, v in row.items() if k is not None}
        if not any(cells.values()):
            continue
        kind = cells.get("kind", "").lower()
        if kind not in KINDS:
            raise EndpointListError(f"{where}: unknown kind {kind!r} (one of {', '.join(KINDS)})")
        try:
            address = ipaddress.ip_address(cells.get("address", "")).compressed
        except ValueError:
            raise EndpointListError(f"{where}: {cells.get('address')!r} is not an IP address") from None
        port_text = cells.get("port", "")
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise EndpointListError(f"{where}: port {port_text!r} is not 1-65535")
        name = cells.get("name", "") or f"{address}:{port_text}"
        sni, key = cells.get("sni", ""), cells.get("key", "")
        if kind in DNS_KINDS and not sni:
            raise EndpointListError(f"{where}: a {kind} resolver needs its name in the sni column")
        if key and kind != "wireguard":
            raise EndpointListError(f"{where}: only wireguard rows take a key")
        if key:
            try:
                decode_key(key)
            except ValueError as exc:
                raise EndpointListError(f"{where}: {exc}") from None
        out.append(Endpoint(kind, name, address, int(port_text), sni, cells.get("source", ""),
                            where, key))  # fmt: skip
    return out


def load_endpoints(paths: Iterable[Path]) -> list[Endpoint]:
    """Endpoints of the lists at ``paths`` (the packaged lists when none), duplicates dropped."""
    chosen = list(paths) or [DEFAULT_LIST, ENCRYPTED_DNS_LIST]
    seen: dict[tuple[str, str, int], Endpoint] = {}
    for path in chosen:
        name = path.name  # the list's name, never the user's directories
        data = read_bounded(path, _MAX_BYTES, what="an endpoint list", error=EndpointListError)
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise EndpointListError(f"{path}: not UTF-8 ({exc.reason} at byte {exc.start})") from None
        for ep in parse_endpoints(text, name):
            seen.setdefault((ep.kind, ep.address, ep.port), ep)
    return list(seen.values())
