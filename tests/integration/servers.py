"""Reusable loopback servers for integration tests: DNS, HTTP, HTTPS and misbehaving peers.

Everything listens on 127.0.0.x only and runs in ONE background thread with its own asyncio
loop, so tests can drive the probe synchronously (``asyncio.run(measure(...))``) or run
``probe run`` as a subprocess against the same servers.

Quick use (pytest fixtures, registered by tests/integration/conftest.py)::

    def test_something(loopback_net):
        net = loopback_net
        cfg = MeasureConfig(resolvers=(net.resolver,), cafile=net.ca_path, late_window=0.1)
        m = asyncio.run(measure(parse_url(net.url("ok.test", tls=True)), cfg))

``loopback_net`` (session scope) is a :class:`LoopbackNet` with:

- ``resolver``        "127.0.0.53:PORT": a DNS server answering from :data:`ZONE` (below)
- ``lying_resolver``  "127.0.0.54:PORT": answers every A query with ``LIE_ADDRESS`` (10.10.34.34)
- ``injecting_resolver`` "127.0.0.55:PORT": answers with the lie at once, then ~50 ms later
  with the genuine zone answer (two different replies to every query: injection)
- ``silent_resolver`` "127.0.0.56:PORT": receives and never answers
- ``ca_path``         PEM file of the trustme CA that signed the web server's certificates
- ``http_port`` / ``https_port``: the ports every web-ish server listens on (same on all IPs)
- ``url(name, path="/", tls=False)`` -> "http(s)://name:PORT/path"
- ``ip`` of each server: ``web_ip`` (127.0.0.2), ``reset_ip`` (.3), ``blackhole_ip`` (.4),
  ``closed_ip`` (.5, nothing listens: connection_refused)
- ``zone``: the name -> addresses mapping served by ``resolver``
- ``web6`` / ``dns6``: the web sites and the zone resolver on ::1 (None without IPv6);
  ``dns6.address`` is "[::1]:PORT"
- ``doh_url``         "https://127.0.0.2:PORT/dns-query": DoH answering from the same zone

Names served (:data:`ZONE`; ``.test`` is reserved, RFC 2606):

=================  ===========================================================================
ok.test            web: "/" is an HTML page titled "OK page"; also www.ok.test
redirect.test      web: "/" 302 -> https://ok.test/; "/same" 302 -> "/final" (same origin);
                   "/loop" 302 -> "/loop" (too many); "/bad" Location "http://[bad";
                   "/rel" 301 -> "../ok" (relative, resolved)
huge.test          web: "/" is a 4 MiB body (body cap)
wronghost.test     web, but HTTPS presents a certificate for other.test (ssl_invalid_hostname)
untrusted.test     web, HTTPS certificate from a CA not in ca_path (ssl_unknown_authority)
expired.test       web, HTTPS certificate expired in 2020 (ssl_invalid_certificate)
reset.test         reset server: reads the first bytes (request or ClientHello), then RST
blackhole.test     accepts, reads, never answers (timeouts)
refused.test       127.0.0.5: nothing listens (connection_refused)
multi.test         [reset, web]: two A records, one resets, one works
dual.test          web on 127.0.0.2 (A) and on ::1 (AAAA; ``web6``, when IPv6 works)
noaddr.test        NOERROR without A/AAAA (dns_no_answer)
servfail.test      SERVFAIL;  refused-dns.test: REFUSED;  anything else: NXDOMAIN
=================  ===========================================================================

Lower-level pieces (for tests that need their own behaviour): :class:`ServerLoop`,
:class:`DNSServer` with a handler ``(query Message) -> [(delay_s, Message | bytes), ...]``,
:func:`zone_handler`, :func:`lying_handler`, :func:`injecting_handler`, :class:`WebServer`
(sites: ``{host: {path: Page}}``), :class:`ResetServer`, :class:`BlackholeServer`, :class:`ReplyServer`, and
:class:`TLSFiles` (trustme CA + per-name server contexts).
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import struct
import tempfile
import threading
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset

__all__ = [
    "LIE_ADDRESS",
    "ZONE",
    "BlackholeServer",
    "DNSServer",
    "LoopbackNet",
    "Page",
    "ReplyServer",
    "ResetServer",
    "ServerLoop",
    "TLSFiles",
    "WebServer",
    "doh_page",
    "injecting_handler",
    "lying_handler",
    "start_loopback_net",
    "zone_handler",
]

WEB_IP = "127.0.0.2"
RESET_IP = "127.0.0.3"
BLACKHOLE_IP = "127.0.0.4"
CLOSED_IP = "127.0.0.5"
LIE_ADDRESS = "10.10.34.34"

#: The zone of the ``resolver`` fixture: name -> addresses, or an rcode name.
ZONE: dict[str, list[str] | str] = {
    "ok.test": [WEB_IP],
    "www.ok.test": [WEB_IP],
    "redirect.test": [WEB_IP],
    "huge.test": [WEB_IP],
    "wronghost.test": [WEB_IP],
    "untrusted.test": [WEB_IP],
    "expired.test": [WEB_IP],
    "reset.test": [RESET_IP],
    "blackhole.test": [BLACKHOLE_IP],
    "refused.test": [CLOSED_IP],
    "multi.test": [RESET_IP, WEB_IP],
    "dual.test": [WEB_IP, "::1"],
    "noaddr.test": [],
    "servfail.test": "SERVFAIL",
    "refused-dns.test": "REFUSED",
}

HUGE_SIZE = 4 << 20

Handler = Callable[[dns.message.Message], list[tuple[float, Any]]]


# --- the loop thread -----------------------------------------------------------------------
class ServerLoop:
    """An asyncio loop in a daemon thread; ``run(coro)`` executes a coroutine there."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="test-servers", daemon=True)
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, Any], timeout: float = 10.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        async def cancel_all() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        try:
            self.run(cancel_all(), timeout=5)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(5)


# --- DNS -----------------------------------------------------------------------------------
def _answer(query: dns.message.Message, addresses: list[str] | str) -> dns.message.Message:
    reply = dns.message.make_response(query)
    if isinstance(addresses, str):
        reply.set_rcode(dns.rcode.from_text(addresses))
        return reply
    q = query.question[0]
    want = [a for a in addresses if (":" in a) == (q.rdtype == dns.rdatatype.AAAA)]
    if want and q.rdtype in (dns.rdatatype.A, dns.rdatatype.AAAA):
        reply.answer.append(
            dns.rrset.from_text_list(q.name, 60, "IN", dns.rdatatype.to_text(q.rdtype), want)
        )
    return reply


def zone_handler(zone: dict[str, list[str] | str]) -> Handler:
    """Answer from ``zone``; unknown names get NXDOMAIN."""

    def handle(query: dns.message.Message) -> list[tuple[float, Any]]:
        name = query.question[0].name.to_text(omit_final_dot=True).lower()
        return [(0.0, _answer(query, zone.get(name, "NXDOMAIN")))]

    return handle


def lying_handler(address: str = LIE_ADDRESS) -> Handler:
    """Answer every A query with ``address`` (and AAAA with nothing), as a censoring resolver."""

    def handle(query: dns.message.Message) -> list[tuple[float, Any]]:
        return [(0.0, _answer(query, [address]))]

    return handle


def injecting_handler(
    zone: dict[str, list[str] | str], lie: str = LIE_ADDRESS, delay: float = 0.05
) -> Handler:
    """Two replies per query: the lie at once, the zone's genuine answer ``delay`` s later."""
    genuine = zone_handler(zone)

    def handle(query: dns.message.Message) -> list[tuple[float, Any]]:
        return [(0.0, _answer(query, [lie])), (delay, genuine(query)[0][1])]

    return handle


def silent_handler(query: dns.message.Message) -> list[tuple[float, Any]]:
    """Never answer."""
    return []


class _DNSProtocol(asyncio.DatagramProtocol):
    def __init__(self, server: DNSServer) -> None:
        self.server = server
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.server.queries.append(data)
        try:
            query = dns.message.from_wire(data)
        except Exception:
            return
        loop = asyncio.get_running_loop()
        for delay, reply in self.server.handler(query):
            wire = reply if isinstance(reply, bytes) else reply.to_wire()
            if delay <= 0:
                self._send(wire, addr)
            else:
                loop.call_later(delay, self._send, wire, addr)

    def _send(self, wire: bytes, addr: Any) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.sendto(wire, addr)


class DNSServer:
    """A UDP DNS server on ``ip`` driven by ``handler``; ``address`` is "IP:PORT"."""

    def __init__(self, loop: ServerLoop, ip: str, handler: Handler, port: int = 0) -> None:
        self.handler = handler
        self.queries: list[bytes] = []
        self.ip = ip

        async def start() -> tuple[asyncio.DatagramTransport, Any]:
            return await loop.loop.create_datagram_endpoint(
                lambda: _DNSProtocol(self), local_addr=(ip, port)
            )

        self._loop = loop
        self._transport, _ = loop.run(start())
        self.port: int = self._transport.get_extra_info("sockname")[1]

    @property
    def address(self) -> str:
        return f"[{self.ip}]:{self.port}" if ":" in self.ip else f"{self.ip}:{self.port}"

    def close(self) -> None:
        self._loop.loop.call_soon_threadsafe(self._transport.close)


# --- TLS material --------------------------------------------------------------------------
class TLSFiles:
    """A trustme CA (written to ``ca_path``) and server contexts with per-name certificates."""

    def __init__(self, names: list[str], directory: Path | None = None) -> None:
        from probe.lab.certs import CertAuthority

        self.dir = Path(directory or tempfile.mkdtemp(prefix="probe-tls-"))
        self.ca = CertAuthority("probe test CA")
        self.ca_path = self.ca.write(self.dir / "ca.pem")
        self.names = names
        self.default = self.ca.server_context(*names)
        self.by_name: dict[str, ssl.SSLContext] = {}

    def add(self, name: str, *, cert_for: str | None = None, rogue: bool = False,
            expired: bool = False) -> None:
        """Serve ``name`` with a special certificate: for another name, another CA, or expired."""
        from probe.lab.certs import CertAuthority

        ca = CertAuthority("rogue CA") if rogue else self.ca
        self.by_name[name] = ca.server_context(cert_for or name, expired=expired)

    def server_context(self) -> ssl.SSLContext:
        """The context to listen with: picks the per-name certificate from the SNI."""
        def pick(sslobj: Any, server_name: str | None, _ctx: ssl.SSLContext) -> None:
            special = self.by_name.get((server_name or "").lower())
            if special is not None:
                sslobj.context = special

        self.default.sni_callback = pick
        return self.default


# --- HTTP ----------------------------------------------------------------------------------
@dataclass
class Page:
    """A canned response; ``size`` streams that many bytes of filler instead of ``body``."""

    status: int = 200
    body: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)
    size: int | None = None
    respond: Callable[[bytes], Page] | None = None  # dynamic: called with the request body


def _reason(status: int) -> str:
    return {200: "OK", 301: "Moved Permanently", 302: "Found", 404: "Not Found"}.get(status, "X")


class WebServer:
    """HTTP and HTTPS servers on one IP serving ``sites`` = {host: {path: Page}}, keep-alive."""

    def __init__(
        self,
        loop: ServerLoop,
        ip: str,
        sites: dict[str, dict[str, Page]],
        tls: ssl.SSLContext | None,
        http_port: int = 0,
        https_port: int = 0,
    ) -> None:
        self.ip = ip
        self.sites = sites
        self.requests: list[tuple[str, str, list[tuple[str, str]]]] = []
        self._loop = loop

        async def start() -> list[asyncio.AbstractServer]:
            servers = [await asyncio.start_server(self._serve, ip, http_port)]
            if tls is not None:
                servers.append(await asyncio.start_server(self._serve, ip, https_port, ssl=tls))
            return servers

        self._servers = loop.run(start())
        self.http_port: int = self._servers[0].sockets[0].getsockname()[1]
        self.https_port: int = self._servers[1].sockets[0].getsockname()[1] if tls else 0

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
                    return
                lines = head.decode("latin-1").split("\r\n")
                _method, target, _ = ([*lines[0].split(" "), "", ""])[:3]
                headers = [tuple(x.strip() for x in ln.split(":", 1)) for ln in lines[1:] if ":" in ln]
                host = next((v for k, v in headers if k.lower() == "host"), "")
                host = host.rsplit(":", 1)[0] if not host.endswith("]") else host
                self.requests.append((host, target, headers))  # type: ignore[arg-type]
                site = self.sites.get(host.lower(), {})
                # The query string never selects the page: lists of many distinct URLs reuse one.
                page = site.get(target) or site.get(target.split("?", 1)[0]) or Page(404, b"not found")
                if page.respond is not None:
                    length = int(next((v for k, v in headers if k.lower() == "content-length"), 0))
                    page = page.respond(await reader.readexactly(length) if length else b"")
                await self._write(writer, page)
                if any(k.lower() == "connection" and v.lower() == "close" for k, v in headers):
                    return
        except (ConnectionError, ssl.SSLError):
            return
        finally:
            writer.close()

    async def _write(self, writer: asyncio.StreamWriter, page: Page) -> None:
        size = page.size if page.size is not None else len(page.body)
        head = [f"HTTP/1.1 {page.status} {_reason(page.status)}", f"Content-Length: {size}"]
        if not any(k.lower() == "content-type" for k, _ in page.headers):
            head.append("Content-Type: text/html; charset=utf-8")
        head.extend(f"{k}: {v}" for k, v in page.headers)
        writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1"))
        if page.size is None:
            writer.write(page.body)
        else:
            chunk = b"x" * 65536
            left = page.size
            while left > 0:
                writer.write(chunk[: min(left, len(chunk))])
                left -= len(chunk)
                await writer.drain()
        await writer.drain()

    def close(self) -> None:
        for s in self._servers:
            self._loop.loop.call_soon_threadsafe(s.close)


class _RawServer:
    """Listens on ip:port (plain TCP; TLS clients see the same behaviour during the handshake)."""

    def __init__(self, loop: ServerLoop, ip: str, ports: tuple[int, ...]) -> None:
        self.ip = ip
        self._loop = loop
        self._writers: list[asyncio.StreamWriter] = []

        async def start() -> list[asyncio.AbstractServer]:
            return [await asyncio.start_server(self._serve, ip, p) for p in ports]

        self._servers = loop.run(start())
        self.ports = [s.sockets[0].getsockname()[1] for s in self._servers]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        raise NotImplementedError

    def close(self) -> None:
        def stop() -> None:
            for s in self._servers:
                s.close()
            for w in self._writers:
                w.transport.abort()

        self._loop.loop.call_soon_threadsafe(stop)


class ResetServer(_RawServer):
    """Reads the first bytes a client sends (HTTP request, TLS ClientHello), then sends a RST."""

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await asyncio.wait_for(reader.read(1), 5)
        except (TimeoutError, ConnectionError):
            pass
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()


class BlackholeServer(_RawServer):
    """Accepts, reads whatever comes, never answers (until the server closes)."""

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.append(writer)
        try:
            while await reader.read(65536):
                pass
        except ConnectionError:
            pass


class ReplyServer(_RawServer):
    """Reads the first bytes, answers with fixed raw bytes, then closes (malformed responses)."""

    reply: bytes = b"NOT HTTP AT ALL\r\n\r\n"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await asyncio.wait_for(reader.read(65536), 5)
            writer.write(self.reply)
            await writer.drain()
        except (TimeoutError, ConnectionError):
            pass
        writer.close()


# --- the whole loopback network ----------------------------------------------------------
@dataclass
class LoopbackNet:
    """All servers of the standard loopback network (see the module docstring)."""

    loop: ServerLoop
    tls: TLSFiles
    web: WebServer
    reset: ResetServer
    blackhole: BlackholeServer
    dns: DNSServer
    lying_dns: DNSServer
    injecting_dns: DNSServer
    silent_dns: DNSServer
    zone: dict[str, list[str] | str]
    web_ip: str = WEB_IP
    reset_ip: str = RESET_IP
    blackhole_ip: str = BLACKHOLE_IP
    closed_ip: str = CLOSED_IP
    web6: WebServer | None = None  # the same sites on [::1] (same ports), when IPv6 works
    dns6: DNSServer | None = None  # the zone resolver on [::1]

    @property
    def ca_path(self) -> str:
        return self.tls.ca_path

    @property
    def http_port(self) -> int:
        return self.web.http_port

    @property
    def https_port(self) -> int:
        return self.web.https_port

    @property
    def resolver(self) -> str:
        return self.dns.address

    @property
    def lying_resolver(self) -> str:
        return self.lying_dns.address

    @property
    def injecting_resolver(self) -> str:
        return self.injecting_dns.address

    @property
    def silent_resolver(self) -> str:
        return self.silent_dns.address

    @property
    def doh_url(self) -> str:
        return f"https://{self.web_ip}:{self.https_port}/dns-query"

    def url(self, name: str, path: str = "/", tls: bool = False) -> str:
        scheme, port = ("https", self.https_port) if tls else ("http", self.http_port)
        return f"{scheme}://{name}:{port}{path}"

    def close(self) -> None:
        for s in (self.web, self.reset, self.blackhole, self.dns, self.lying_dns,
                  self.injecting_dns, self.silent_dns, self.web6, self.dns6):
            if s is not None:
                s.close()
        self.loop.close()


def doh_page(handler: Handler) -> Page:
    """A DNS-over-HTTPS endpoint (POST, RFC 8484) answering with ``handler``'s first reply."""

    def respond(body: bytes) -> Page:
        replies = handler(dns.message.from_wire(body))
        if not replies:
            return Page(504, b"")
        wire = replies[0][1] if isinstance(replies[0][1], bytes) else replies[0][1].to_wire()
        return Page(200, wire, [("Content-Type", "application/dns-message")])

    return Page(respond=respond)


def _has_ipv6() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


def _ok_page(title: str) -> Page:
    body = f"<!doctype html><html><head><title>\n  {title} </title></head><body>{title}</body></html>"
    return Page(200, body.encode())


def start_loopback_net(directory: Path | None = None) -> LoopbackNet:
    """Start every server of the standard loopback network (the ``loopback_net`` fixture)."""
    loop = ServerLoop()
    names = ["ok.test", "www.ok.test", "redirect.test", "huge.test", "multi.test", "reset.test",
             "dual.test", WEB_IP, "::1"]
    tls = TLSFiles(names, directory)
    tls.add("wronghost.test", cert_for="other.test")
    tls.add("untrusted.test", rogue=True)
    tls.add("expired.test", expired=True)
    sites: dict[str, dict[str, Page]] = {}
    web = WebServer(loop, WEB_IP, sites, tls.server_context())
    hp, sp = web.http_port, web.https_port
    ok = {"/": _ok_page("OK page"), "/final": _ok_page("Final page"), "/ok": _ok_page("Relative")}
    sites.update(
        {
            "ok.test": ok,
            "www.ok.test": ok,
            "multi.test": ok,
            "dual.test": ok,
            "[::1]": ok,
            "wronghost.test": ok,
            "untrusted.test": ok,
            "expired.test": ok,
            "redirect.test": {
                "/": Page(302, headers=[("Location", f"https://ok.test:{sp}/")]),
                "/same": Page(302, headers=[("Location", "/final")]),
                "/final": _ok_page("Final page"),
                "/loop": Page(302, headers=[("Location", "/loop")]),
                "/bad": Page(302, headers=[("Location", "http://[bad")]),
                "/rel": Page(301, headers=[("Location", "../ok")]),
                "/cross": Page(301, headers=[("Location", f"http://www.ok.test:{hp}/")]),
            },
            "huge.test": {"/": Page(200, size=HUGE_SIZE)},
            WEB_IP: {"/dns-query": doh_page(zone_handler(ZONE))},
        }
    )
    web6 = WebServer(loop, "::1", sites, tls.server_context(), hp, sp) if _has_ipv6() else None
    reset = ResetServer(loop, RESET_IP, (hp, sp))
    blackhole = BlackholeServer(loop, BLACKHOLE_IP, (hp, sp))
    zone = dict(ZONE)
    return LoopbackNet(
        loop=loop,
        tls=tls,
        web=web,
        reset=reset,
        blackhole=blackhole,
        dns=DNSServer(loop, "127.0.0.53", zone_handler(zone)),
        lying_dns=DNSServer(loop, "127.0.0.54", lying_handler()),
        injecting_dns=DNSServer(loop, "127.0.0.55", injecting_handler(zone)),
        silent_dns=DNSServer(loop, "127.0.0.56", silent_handler),
        zone=zone,
        web6=web6,
        dns6=DNSServer(loop, "::1", zone_handler(zone)) if web6 is not None else None,
    )
