"""URL -> :class:`~probe.core.model.Target`: the one normalisation, with the one IDNA policy.

A list row, a ``--url``, the URL a probe sends its test helper and the URL the helper measures
all go through :func:`parse_url`, so the probe and its helper always agree on what is measured.

**IDNA policy.** A non-ASCII host is converted with UTS #46 processing and IDNA 2008
(non-transitional: ``ß`` stays ``ß`` and becomes ``xn--`` punycode), as browsers do; a name that
IDNA 2008 forbids but that exists in the DNS (symbols, emoji) falls back to IDNA 2003. Hosts are
then lower-cased and checked label by label; a trailing dot is kept (``example.org.`` is a
different Host header); IPv4 literals are canonical, IPv6 literals compressed and bracketed in
the URL. The default port of the scheme is dropped from the URL, the fragment too; the path and
query are percent-encoded (existing escapes kept, a lone ``%`` escaped).
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import quote, urlsplit

from probe.core.errors import ProbeUsageError
from probe.core.model import Target
from probe.core.net.hostport import authority

__all__ = ["DEFAULT_PORTS", "InvalidURL", "idna_host", "is_valid_host", "parse_url", "show_url"]

#: The schemes probe measures and their default ports.
DEFAULT_PORTS = {"http": 80, "https": 443}

_SCHEME_RE = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):")
_LABEL_RE = re.compile(r"^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?$")
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")
_SPACE_RE = re.compile(r"\s")
# RFC 3986 characters that may stand unescaped in a path / query ("%" keeps existing escapes).
_PATH_SAFE = "/%!$&'()*+,;=:@-._~"
_QUERY_SAFE = _PATH_SAFE + "?"
_LONE_PERCENT_RE = re.compile(r"%(?![0-9A-Fa-f]{2})")  # a "%" that starts no escape


class InvalidURL(ProbeUsageError, ValueError):
    """A URL that probe cannot measure; ``reason`` says why."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"{reason}: {show_url(url)}")
        self.url = url
        self.reason = reason


def show_url(text: str, limit: int = 120) -> str:
    """``repr(text)``, cut to ``limit`` characters: a URL as error messages quote it."""
    shown = repr(text)
    return shown if len(shown) <= limit else shown[: limit - 4] + "...'"


def idna_host(host: str) -> str:
    """A non-ASCII host name -> punycode, by the IDNA policy above; raises UnicodeError."""
    try:
        import idna  # lazy: big tables; installed with httpx

        return str(idna.encode(host, uts46=True, transitional=False).decode("ascii"))
    except ImportError:  # pragma: no cover - idna comes with httpx
        pass
    except UnicodeError:  # idna.IDNAError is a UnicodeError: try IDNA 2003
        pass
    return host.encode("idna").decode("ascii")


def _check_host(host: str, url: str) -> str:
    """Validate an ASCII host: IPv4 literal or DNS name. Returns it lower-cased."""
    host = host.lower()
    name = host[:-1] if host.endswith(".") else host
    labels = name.split(".")
    if all(label.isdigit() for label in labels):
        try:
            return str(ipaddress.IPv4Address(name))
        except ValueError:
            raise InvalidURL(url, "invalid IPv4 address") from None
    if len(name) > 253:
        raise InvalidURL(url, "host name longer than 253 characters")
    for label in labels:
        if not _LABEL_RE.match(label):
            raise InvalidURL(url, f"invalid host name label {label!r}")
    return host


def is_valid_host(host: str) -> bool:
    """True when ``host`` (as found in a URL, brackets removed) is an IP literal or a host name
    that :func:`parse_url` accepts."""
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        pass
    try:
        _check_host(host if host.isascii() else idna_host(host), host)
    except (InvalidURL, UnicodeError):
        return False
    return True


def parse_url(url: str, *, category_code: str = "", source: str = "") -> Target:
    """Check and normalise one URL into a :class:`Target`.

    The measured ``url`` has a lower-case scheme and host, the host in punycode (IDN) or as a
    bracketed IPv6 literal, no default port, no fragment, and a percent-encoded path; the text as
    given is kept in ``original_url``. Raises :class:`InvalidURL` (with ``reason``) for anything
    probe cannot measure: no scheme, a scheme other than http/https, no host, a bad port, a bad
    IP literal or host name, credentials, control characters.
    """
    text = url.strip()
    if not text:
        raise InvalidURL(url, "empty URL")
    if _CONTROL_RE.search(text):
        raise InvalidURL(url, "control character in URL")
    m = _SCHEME_RE.match(text)
    # "example.com:8080/" parses as scheme "example.com": a scheme has no dots in practice.
    if m is None or "." in m.group(1):
        raise InvalidURL(url, "missing scheme (expected http:// or https://)")
    scheme = m.group(1).lower()
    if scheme not in DEFAULT_PORTS:
        raise InvalidURL(url, f"unsupported scheme {scheme!r} (only http and https)")
    if not text[m.end() :].startswith("//"):
        raise InvalidURL(url, f"expected '//' after '{scheme}:'")
    try:
        parts = urlsplit(text)
        netloc = parts.netloc
        host = parts.hostname or ""
        explicit_port = parts.port
    except ValueError as exc:  # bad brackets, non-numeric or out-of-range port, NFKC tricks
        message = str(exc)
        if "port" in message.lower():
            reason = "invalid port (a number from 1 to 65535)"
        elif "IPv6" in message:
            reason = "malformed IPv6 literal (unbalanced brackets)"
        else:
            reason = f"malformed URL ({message})"
        raise InvalidURL(url, reason) from None
    if "@" in netloc:
        raise InvalidURL(url, "user name or password in URL (credentials are not supported)")
    if not host:
        raise InvalidURL(url, "missing host (no host in URL)")
    if _SPACE_RE.search(netloc):
        raise InvalidURL(url, "white space in host")

    if netloc.startswith("["):
        if "%" in host:
            raise InvalidURL(url, "IPv6 zone identifiers are not supported")
        try:
            host = str(ipaddress.IPv6Address(host))
        except ValueError:
            raise InvalidURL(url, "invalid IPv6 address") from None
    else:
        if not host.isascii():
            try:
                host = idna_host(host)
            except UnicodeError as exc:
                raise InvalidURL(url, f"invalid internationalised host name ({exc})") from None
        host = _check_host(host, url)

    if explicit_port == 0:
        raise InvalidURL(url, "port 0")
    port = explicit_port if explicit_port is not None else DEFAULT_PORTS[scheme]
    path = _LONE_PERCENT_RE.sub("%25", quote(parts.path, safe=_PATH_SAFE)) or "/"
    if parts.query:
        path += "?" + _LONE_PERCENT_RE.sub("%25", quote(parts.query, safe=_QUERY_SAFE))
    return Target(
        url=f"{scheme}://{authority(host, port, scheme)}{path}",
        original_url=text,
        scheme=scheme,
        host=host,
        port=port,
        path=path,
        category_code=category_code,
        source=source,
    )
