"""HTTP observations: one GET with httpx over a connection the engine already established.

httpx never resolves, connects or handshakes here: :class:`ConnTransport` is an
``httpx.AsyncBaseTransport`` that drives ``httpcore.AsyncHTTP11Connection`` over
:class:`ConnStream`, a thin ``httpcore.AsyncNetworkStream`` around the engine's asyncio
stream (plain or already TLS). So the HTTP exchange happens on exactly the address (and TLS
session) whose DNS/TCP/TLS were recorded, and a failure here is an HTTP-stage failure.

The recorded body is the *decoded* body (gzip/deflate removed, as a browser would render it and
as block-page fingerprints are written), capped at ``body_cap`` bytes; the download stops at the
cap (``body_truncated``), so memory per URL stays bounded. Decoding is ours
(:mod:`probe.measure.decoding`): every layer of ``Content-Encoding: gzip, gzip`` is bounded,
and the raw bytes read are bounded too (``body_cap`` plus a little), so a decompression bomb
is a truncated body, not gigabytes of memory.
"""

from __future__ import annotations

import asyncio
import hashlib
import html
import re
import socket
import struct
import time
import urllib.parse
from typing import Any

from probe.host import httpstack

httpstack.load()  # before httpx and httpcore: without the parts probe never runs

import httpcore
import httpx
from httpcore._synchronization import AsyncLock

from probe.core.failures import Failure, failure_string
from probe.core.model import HTTPObservation
from probe.core.net import authority, is_valid_host
from probe.measure.decoding import BodyDecoder
from probe.measure.tcp import Conn

__all__ = [
    "BROWSER_HEADERS",
    "REDIRECT_STATUSES",
    "ConnStream",
    "ConnTransport",
    "extract_title",
    "http_get",
]

REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})

#: Sent with every request after Host and User-Agent, like a desktop browser would.
BROWSER_HEADERS: tuple[tuple[str, str], ...] = (
    ("Accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"),
    ("Accept-Language", "en-US,en;q=0.9"),
    ("Accept-Encoding", "gzip, deflate"),  # what httpx decodes without optional packages
)

_BROWSER_HEADERS_RAW = tuple((k.encode("ascii"), v.encode("ascii")) for k, v in BROWSER_HEADERS)
_TITLE_WINDOW = 64 * 1024
_RAW_SLACK = 64 * 1024  # raw bytes read beyond body_cap (headers of compressed data, gzip trailers)
_TITLE_RE = re.compile(rb"<title\b[^>]*>(.*?)</title\s*>", re.IGNORECASE | re.DOTALL)
_CHARSET_RE = re.compile(r"charset\s*=\s*[\"']?([A-Za-z0-9._:-]+)", re.IGNORECASE)
_META_CHARSET_RE = re.compile(rb"<meta[^>]+charset\s*=\s*[\"']?([A-Za-z0-9._:-]+)", re.IGNORECASE)


class ConnStream(httpcore.AsyncNetworkStream):
    """An httpcore network stream over an established asyncio connection."""

    def __init__(self, conn: Conn) -> None:
        self._conn = conn

    # No timeout per read or write: httpcore passes the GET's own timeout, and http_get, the
    # only user of this stream, bounds the whole exchange by that same timeout, started before
    # any read; a per-read one would always expire later, and cost a timer per call.

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return await self._conn.reader.read(max_bytes)

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        if not buffer:
            return
        self._conn.writer.write(buffer)
        await self._conn.writer.drain()

    async def aclose(self) -> None:
        self._conn.close()

    async def start_tls(self, *args: Any, **kwargs: Any) -> httpcore.AsyncNetworkStream:
        return self  # TLS, when wanted, was done (and recorded) by the TLS step

    def get_extra_info(self, info: str) -> Any:
        if info == "ssl_object":
            return self._conn.writer.get_extra_info("ssl_object")
        if info == "server_addr":
            return (self._conn.ip, self._conn.port)
        if info == "client_addr":
            return self._conn.writer.get_extra_info("sockname")
        if info == "is_readable":
            return self._conn.reader.at_eof() or bool(getattr(self._conn.reader, "_buffer", b""))
        return None


class _NoLock:
    """Stands in for httpcore's connection-state lock on a connection that only ever has one
    request in flight: entering and leaving cost nothing.

    With the lock, each GET cost two more event-loop iterations and two anyio cancel scopes
    (bench/instructions.py: 11.59 -> 11.45 M instructions per URL without them; docs/bench.md).
    """

    async def __aenter__(self) -> None:
        return None

    async def __aexit__(self, *exc: object) -> None:
        return None


_NO_LOCK = _NoLock()


class ConnTransport:
    """Sends requests over one httpcore HTTP/1.1 connection on an established stream.

    httpcore directly, without httpx's Request and Response models around it: building an
    ``httpx.Request`` (its headers normalized, its stream, the conversion to httpcore's) and
    wrapping the answer in an ``httpx.Response`` cost 1.6 % of the probe's instructions per URL
    (bench/instructions.py: 11.78 -> 11.59 M; docs/bench.md, issue 28) for objects nothing else
    reads. The bytes sent are the same: httpx's URL gives the request target, and the headers
    are encoded as httpx encodes them (ASCII).
    """

    __slots__ = ("conn", "http")

    def __init__(self, conn: Conn, origin: httpcore.Origin) -> None:
        self.conn = conn
        self.http = httpcore.AsyncHTTP11Connection(origin, ConnStream(conn))
        if isinstance(getattr(self.http, "_state_lock", None), AsyncLock):
            # httpcore guards the connection's state with an anyio lock whose every acquire
            # yields to the event loop (a shielded sleep(0)) and asks sniffio which library
            # runs: twice per request, for requests that here never overlap (the engine sends
            # one at a time on its own connection). See _NoLock.
            setattr(self.http, "_state_lock", _NO_LOCK)  # noqa: B010  (a private attribute)

    def reusable(self) -> bool:
        """True when the connection is idle and open (keep-alive) for another request."""
        return (
            self.http.is_idle()
            and not self.http.has_expired()  # the server closed it, or sent unexpected bytes
            and not self.conn.writer.transport.is_closing()
        )

    async def get(
        self, url: httpx.URL, headers: list[tuple[bytes, bytes]], extensions: dict[str, Any]
    ) -> httpcore.Response:
        """Send ``GET url`` with exactly ``headers``; the response with its body unread."""
        req = httpcore.Request(
            method=b"GET",
            url=httpcore.URL(scheme=url.raw_scheme, host=url.raw_host, port=url.port,
                             target=url.raw_path),
            headers=headers,
            extensions=extensions,
        )  # fmt: skip
        return await self.http.handle_async_request(req)

    async def aclose(self) -> None:
        await self.http.aclose()


def _charset(content_type: str, head: bytes) -> str:
    m = _CHARSET_RE.search(content_type)
    if m is None:
        m2 = _META_CHARSET_RE.search(head[:4096])
        return m2.group(1).decode("ascii", "replace") if m2 else "utf-8"
    return m.group(1)


def extract_title(body: bytes, content_type: str = "") -> str | None:
    """The page's ``<title>``: first 64 KiB, html-unescaped, whitespace collapsed; None if absent."""
    head = body[:_TITLE_WINDOW]
    m = _TITLE_RE.search(head)
    if m is None:
        return None
    raw = m.group(1)
    try:
        text = raw.decode(_charset(content_type, head), "replace")
    except LookupError:
        text = raw.decode("utf-8", "replace")
    return " ".join(html.unescape(text).split())[:1024]


def absolute_location(url: str, location: str) -> str | None:
    """``location`` resolved against ``url``; None when it is not a usable http(s) URL.

    Stricter than httpx's lenient join (which would percent-encode ``http://[bad`` into a
    host): an absolute or scheme-relative Location must name a valid host and port.
    """
    loc = location.strip()
    if not loc:
        return None
    try:
        parts = urllib.parse.urlsplit(loc)
        if parts.scheme and parts.scheme.lower() not in ("http", "https"):
            return None
        if parts.scheme or loc.startswith("//"):
            _ = parts.port  # ValueError on a bad port
            if not parts.hostname or not is_valid_host(parts.hostname):
                return None
        target = httpx.URL(url).join(loc)
    except Exception:
        return None
    if target.scheme not in ("http", "https") or not target.host:
        return None
    return str(target)


_TCP_INFO_MIN_RTT = 148  # offset of tcpi_min_rtt (microseconds) in Linux's struct tcp_info


def kernel_min_rtt(conn: Conn) -> float | None:
    """The kernel's minimum round-trip time of the connection (seconds), or None.

    The kernel times ACKs as they arrive, so this is the path's round trip, free of the event
    loop's scheduling delays that inflate a connect time measured in Python under load.
    Linux only (``TCP_INFO``); None elsewhere or when the kernel has no sample yet.
    """
    sock = conn.writer.get_extra_info("socket")
    opt = getattr(socket, "TCP_INFO", None)
    if sock is None or opt is None:
        return None
    try:
        info = sock.getsockopt(socket.IPPROTO_TCP, opt, _TCP_INFO_MIN_RTT + 4)
    except OSError:
        return None
    if len(info) < _TCP_INFO_MIN_RTT + 4:
        return None
    (micros,) = struct.unpack_from("=I", info, _TCP_INFO_MIN_RTT)
    return micros / 1e6 if 0 < micros < 0xFFFFFFFF else None


async def http_get(
    transport: ConnTransport,
    url: str,
    host: str,
    port: int,
    scheme: str,
    user_agent: str,
    body_cap: int,
    timeout: float,
) -> HTTPObservation:
    """GET ``url`` over ``transport``'s connection; never raises for network failures."""
    conn = transport.conn
    started = time.time()
    t0 = time.monotonic()
    status: int | None = None
    headers: tuple[tuple[str, str], ...] = ()
    chunks: list[bytes] = []
    truncated = False
    failure: str | None = None
    # Encoded as httpx would (ASCII; a value that is not raises here, before any I/O).
    request_headers = [(b"Host", authority(host, port, scheme).encode("ascii")),
                       (b"User-Agent", user_agent.encode("ascii")), *_BROWSER_HEADERS_RAW]  # fmt: skip
    target = httpx.URL(url)
    t_out = {"connect": timeout, "read": timeout, "write": timeout, "pool": timeout}
    response: httpcore.Response | None = None
    ttfb: float | None = None
    path_rtt: float | None = None
    raw_size = 0
    try:
        async with asyncio.timeout(timeout):
            response = await transport.get(target, request_headers, {"timeout": t_out})
            ttfb = time.monotonic() - t0  # throttling shows in the transfer after this
            status = response.status
            headers = tuple((k.decode("latin-1").lower(), v.decode("latin-1"))
                            for k, v in response.headers)  # fmt: skip
            # Decoded here, not by httpx: every layer's output is bounded (decompression
            # bombs), and so are the raw bytes read (an incompressible body of any length).
            encoding = ",".join(v for k, v in headers if k == "content-encoding")
            decoder = BodyDecoder(encoding, body_cap)
            async for part in response.aiter_stream():
                if not part:
                    continue  # as httpx's aiter_raw: empty chunks are not data
                raw_size += len(part)
                chunks.extend(decoder.feed(part))
                if decoder.truncated or raw_size > body_cap + _RAW_SLACK:
                    truncated = True
                    break
            path_rtt = kernel_min_rtt(conn)
    except asyncio.CancelledError:
        conn.close()
        raise
    except Exception as exc:
        failure = failure_string(exc)
    finally:
        if response is not None and (truncated or failure):
            conn.close()  # the rest of the body is unread: the connection cannot be reused
        if response is not None:
            try:
                await response.aclose()
            except Exception:
                conn.close()
    body = b"".join(chunks)
    size = len(body)
    duration = time.monotonic() - t0
    if status is None:
        return HTTPObservation(url, conn.ip, port, started, duration, failure or Failure.HTTP_REQUEST_FAILED)
    content_type = next((v for k, v in headers if k == "content-type"), "")
    location = None
    if status in REDIRECT_STATUSES:
        raw_location = next((v for k, v in headers if k == "location"), None)
        if raw_location is not None:
            location = absolute_location(url, raw_location) or raw_location
    return HTTPObservation(
        url=url,
        ip=conn.ip,
        port=port,
        started=started,
        duration=duration,
        failure=failure,
        status=status,
        headers=headers,
        body_length=size,
        body_sha256=hashlib.sha256(body).hexdigest(),
        body_truncated=truncated,
        title=extract_title(body, content_type),
        body=body,
        location=location,
        ttfb=ttfb,
        wire_bytes=raw_size,
        path_rtt=path_rtt,
    )
