"""Endpoint lists: the servers of circumvention tools and anchors, in a small CSV format.

Columns (header required; extra columns are ignored)::

    kind,name,address,port,sni,notes,source[,key][,path][,ca]

- ``kind``: ``tor`` (a relay's or bridge's OR port: TLS handshake), ``openvpn-udp`` and
  ``openvpn-tcp`` (an OpenVPN server without tls-auth/tls-crypt: its HARD_RESET handshake),
  ``tls`` (any TLS endpoint, e.g. a VPN provider's; ``sni`` is sent when given), ``tcp`` (a TCP
  connect only, e.g. an obfs4 bridge whose own handshake needs its secret), ``doh`` and ``dot``
  (an encrypted DNS resolver: ``sni`` is its name, its certificate is verified, and names are
  resolved through it), ``fet`` (a reflector's TCP echo port: fully encrypted traffic against
  its printable twin), ``wireguard`` (a WireGuard handshake; ``key`` is the server's public key);
  and the messaging apps' (docs/messaging.md): ``telegram-dc`` (a Telegram data centre: its
  MTProto handshake), ``telegram-web``, ``whatsapp-web`` and ``signal`` (HTTPS services, by
  name), ``whatsapp`` (a chat endpoint, by name: TCP connect);
- ``address``: an IP address (names would add DNS, which the web test already measures); for
  the kinds reached by name (:data:`BY_NAME_KINDS`), the host name the app resolves;
- ``port``: 1-65535; ``sni``: server name for ``tls``, ``doh``, ``dot`` (``tor`` sends a random
  one, as Tor does);
- ``source``: where the row comes from (kept with every result);
- ``key`` (optional column): a WireGuard public key (base64), for ``wireguard`` rows only;
- ``path`` (optional column): the path of an HTTPS service's URL (default ``/``);
- ``ca`` (optional column): a CA file the app pins, trusted besides the system's CAs (Signal's
  own CA): a file name in the list's directory, PEM.

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
from probe.core.net import authority, is_valid_host
from probe.core.settings import check_cafile
from probe.core.wgkey import decode_key
from probe.host.data import DATA_DIR, user_data_dir
from probe.host.files import read_bounded

__all__ = [
    "BY_NAME_KINDS",
    "CIRCUMVENTION_SUITE",
    "DEFAULT_LIST",
    "DNS_KINDS",
    "ENCRYPTED_DNS_LIST",
    "HTTPS_KINDS",
    "KINDS",
    "MESSAGING_APPS",
    "MESSAGING_LIST",
    "MESSAGING_SUITE",
    "TWIN_KINDS",
    "Endpoint",
    "EndpointListError",
    "endpoints_dir",
    "load_endpoints",
    "messaging_list",
    "parse_endpoints",
    "suite_of",
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
    "telegram-dc": "tcp",
    "telegram-web": "tcp",
    "whatsapp": "tcp",
    "whatsapp-web": "tcp",
    "signal": "tcp",
}
#: The messaging kinds (`probe messaging`, docs/messaging.md) and the app each belongs to.
MESSAGING_APPS: dict[str, str] = {
    "telegram-dc": "telegram",
    "telegram-web": "telegram",
    "whatsapp": "whatsapp",
    "whatsapp-web": "whatsapp",
    "signal": "signal",
}
#: The suites endpoint results are stored and shown under (`probe results --suite`).
CIRCUMVENTION_SUITE = "circumvention"
MESSAGING_SUITE = "messaging"


def suite_of(kind: str) -> str:
    """The suite an endpoint kind belongs to: ``messaging`` for the apps, else ``circumvention``."""
    return MESSAGING_SUITE if kind in MESSAGING_APPS else CIRCUMVENTION_SUITE


#: Kinds whose ``address`` is a host name, resolved where the app resolves it (the probe's
#: resolver, compared with the control's answers), then measured as the web is.
BY_NAME_KINDS = ("telegram-web", "whatsapp", "whatsapp-web", "signal")
#: By-name kinds that are HTTPS services (TLS verified, one GET); the others are reached by TCP.
HTTPS_KINDS = ("telegram-web", "whatsapp-web", "signal")
#: Kinds whose peer must be a reflector (`probe helper serve --reflector`) or a VPN server, with
#: no OONI control: their own twin exchange is the control.
TWIN_KINDS = ("fet", "wireguard")
#: Encrypted DNS kinds (their ``sni`` is the resolver's name; it is required).
DNS_KINDS = ("doh", "dot")
#: The packaged list (Tor directory and bridge authorities; see probe/data/NOTICE-circumvention.md).
DEFAULT_LIST = DATA_DIR / "circumvention.csv"
#: The packaged encrypted DNS resolvers (see probe/data/NOTICE-circumvention.md).
ENCRYPTED_DNS_LIST = DATA_DIR / "encrypted-dns.csv"
#: The packaged messaging endpoints (see probe/data/NOTICE-messaging.md).
MESSAGING_LIST = DATA_DIR / "messaging.csv"


def endpoints_dir() -> Path:
    """Where ``probe testlists update`` installs the endpoint lists it fetches (``endpoints`` in
    probe's data directory, beside the updated test lists)."""
    return user_data_dir() / "endpoints"


def messaging_list() -> Path:
    """The messaging endpoints measured by default: the list ``probe testlists update``
    installed, else the packaged one."""
    updated = endpoints_dir() / MESSAGING_LIST.name
    return updated if updated.is_file() else MESSAGING_LIST


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
    path: str = "/"  # https services reached by name: the URL's path
    ca: str = ""  # a CA file the app pins (absolute path), trusted besides the system's

    @property
    def by_name(self) -> bool:
        """True when ``address`` is a host name the app resolves (:data:`BY_NAME_KINDS`)."""
        return self.kind in BY_NAME_KINDS

    @property
    def url(self) -> str:
        """The URL measured for an endpoint reached by name: https for HTTPS services, http for
        a TCP service (its control asks the helper about the same name and port)."""
        scheme = "https" if self.kind in HTTPS_KINDS else "http"
        return f"{scheme}://{authority(self.address, self.port, scheme)}{self.path}"

    @property
    def transport(self) -> str:
        """``tcp`` or ``udp``."""
        return KINDS[self.kind]


def _address(kind: str, text: str, where: str) -> str:
    """The row's address: an IP literal, or a host name for the kinds reached by name."""
    try:
        return ipaddress.ip_address(text).compressed
    except ValueError:
        pass
    if kind in BY_NAME_KINDS:
        name = text.lower().rstrip(".")
        if name.isascii() and is_valid_host(name):
            return name
        raise EndpointListError(f"{where}: {text!r} is not a host name or an IP address")
    raise EndpointListError(f"{where}: {text!r} is not an IP address")


def _ca_file(name: str, kind: str, where: str, directory: Path | None) -> str:
    """The absolute path of the CA file a row names (next to its list), checked."""
    if kind not in HTTPS_KINDS:
        raise EndpointListError(f"{where}: only https services ({', '.join(HTTPS_KINDS)}) take a ca")
    if "/" in name or "\\" in name or name.startswith("."):
        raise EndpointListError(f"{where}: ca {name!r} must be a file name next to the list")
    if directory is None:
        raise EndpointListError(f"{where}: ca {name!r} needs the list to be a file")
    path = directory / name
    try:
        check_cafile(str(path))
    except ValueError as exc:
        raise EndpointListError(f"{where}: {exc}") from None
    return str(path)


def parse_endpoints(text: str, origin: str, directory: Path | None = None) -> list[Endpoint]:
    """Validate the CSV ``text`` (named ``origin`` in messages) into endpoints; ``directory``
    is where the list is (the CA files its rows name are read from there)."""
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
        address = _address(kind, cells.get("address", ""), where)
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
        path = cells.get("path", "") or "/"
        if not path.startswith("/") or any(c.isspace() or ord(c) < 32 for c in path):
            raise EndpointListError(f"{where}: path {path!r} must start with / (no spaces)")
        if path != "/" and kind not in HTTPS_KINDS:
            raise EndpointListError(f"{where}: only https services ({', '.join(HTTPS_KINDS)}) take a path")
        ca = _ca_file(cells["ca"], kind, where, directory) if cells.get("ca") else ""
        out.append(Endpoint(kind, name, address, int(port_text), sni, cells.get("source", ""),
                            where, key, path=path, ca=ca))  # fmt: skip
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
        for ep in parse_endpoints(text, name, path.parent):
            seen.setdefault((ep.kind, ep.address, ep.port), ep)
    return list(seen.values())
