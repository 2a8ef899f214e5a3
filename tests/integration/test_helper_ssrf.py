"""The test helper is not a way into private networks (SSRF), whatever the client names.

Every address the helper connects to must pass its policy: names resolving to private
addresses, redirects to cloud metadata or loopback, IPv6 forms of IPv4 addresses, and the
decimal/octal spellings ``getaddrinfo`` would accept. Nothing here leaves loopback: the
"public internet" is 127.0.0.1, made public by injecting the helper's policy; the "private
network" is a secret server on 127.0.0.6 (and ::1) that counts every connection it gets.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from helper_util import ooni_request, running_helper
from servers import DNSServer, Page, ServerLoop, WebServer, zone_handler

from probe.core.net.policy import embedded_ipv4, is_public_address
from probe.measure.engine import MeasureConfig
from probe.measure.tcp import tcp_connect
from probe.serve.app import Helper
from probe.serve.config import HelperConfig

pytestmark = pytest.mark.integration

PUBLIC_IP = "127.0.0.1"  # "public" in these tests (injected policy)
SECRET_IP = "127.0.0.6"  # stands for the helper's private network
SECRET_TITLE = "SECRET metadata token"


def lab_public(ip: str) -> bool:
    """The injected policy: 127.0.0.1 plays the public internet; the rest is the real policy."""
    return ip == PUBLIC_IP or is_public_address(ip)


class SecretServer:
    """Answers every request with a secret page and counts the connections it accepted."""

    def __init__(self, loop: ServerLoop, ip: str) -> None:
        self.connections = 0
        self._loop = loop

        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self.connections += 1
            body = f"<html><title>{SECRET_TITLE}</title></html>".encode()
            with contextlib.suppress(Exception):
                await reader.readuntil(b"\r\n\r\n")
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
                await writer.drain()
            writer.close()

        async def start() -> asyncio.AbstractServer:
            return await asyncio.start_server(serve, ip, 0)

        self._server = loop.run(start())
        self.port: int = self._server.sockets[0].getsockname()[1]

    def close(self) -> None:
        self._loop.loop.call_soon_threadsafe(self._server.close)


@dataclass
class Net:
    resolver: str
    public_port: int
    secret: SecretServer
    secret6: SecretServer | None

    @property
    def connections(self) -> int:
        return self.secret.connections + (self.secret6.connections if self.secret6 else 0)


def _has_ipv6() -> bool:
    import socket

    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.fixture(scope="module")
def net() -> Iterator[Net]:
    loop = ServerLoop()
    secret = SecretServer(loop, SECRET_IP)
    secret6 = SecretServer(loop, "::1") if _has_ipv6() else None
    sp = secret.port
    s6 = secret6.port if secret6 else sp
    decimal = int(ipaddress.IPv4Address(SECRET_IP))
    redirects = {
        "/metadata": "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
        "/metadata-name": f"http://metadata.example.com:{sp}/",
        "/private": f"http://{SECRET_IP}:{sp}/",
        "/private-name": f"http://secret.example.com:{sp}/",
        "/mapped": f"http://[::ffff:{SECRET_IP}]:{sp}/",
        "/mapped-hex": f"http://[::ffff:7f00:6]:{sp}/",
        "/nat64": f"http://[64:ff9b::7f00:6]:{sp}/",
        "/loopback6": f"http://[::1]:{s6}/",
        "/decimal": f"http://{decimal}:{sp}/",
        "/octal": f"http://0177.0.0.6:{sp}/",
        "/hex": f"http://0x7f.0.0.6:{sp}/",
        "/short": f"http://127.6:{sp}/",
    }
    pages = {path: Page(302, headers=[("Location", loc)]) for path, loc in redirects.items()}
    pages["/"] = Page(200, b"<html><title>Public page</title></html>")
    public = WebServer(loop, PUBLIC_IP, {"www.example.com": pages}, None)
    zone: dict[str, list[str] | str] = {
        "www.example.com": [PUBLIC_IP],
        "secret.example.com": [SECRET_IP],  # a public-looking name, a private address
        "metadata.example.com": ["169.254.169.254"],
        "mapped.example.com": [SECRET_IP, f"::ffff:{SECRET_IP}"],
    }
    dns = DNSServer(loop, "127.0.0.57", zone_handler(zone))
    try:
        yield Net(dns.address, public.http_port, secret, secret6)
    finally:
        for s in (public, dns, secret, *([secret6] if secret6 else [])):
            s.close()
        loop.close()


def helper_for(net: Net, *, public: Any = lab_public) -> Helper:
    mcfg = MeasureConfig(resolvers=(net.resolver,), system_resolver=False, late_window=0.0,
                         deadline=10.0, tcp_timeout=3.0, tls_timeout=3.0, http_timeout=5.0)
    return Helper.with_engine(mcfg, HelperConfig(host="127.0.0.1", port=0, public=public))


def ask(helper: Helper, url: str, endpoints: list[str] | None = None) -> httpx.Response:
    async def main() -> httpx.Response:
        async with running_helper(helper) as base, httpx.AsyncClient(trust_env=False) as http:
            return await http.post(base, json=ooni_request(url, endpoints or []), timeout=30)

    return asyncio.run(main())


def assert_refused(net: Net, resp: httpx.Response, before: int) -> dict[str, Any]:
    assert resp.status_code == 200, resp.text
    data = resp.json()
    http = data["http_request"]
    assert http["failure"] == "address_refused_by_policy", http
    assert http["title"] == "" and http["headers"] == {}
    assert SECRET_TITLE not in resp.text
    assert net.connections == before, "the helper connected to a private address"
    return data


def test_public_page_is_still_fetched(net: Net) -> None:
    resp = ask(helper_for(net), f"http://www.example.com:{net.public_port}/")
    assert resp.json()["http_request"]["title"] == "Public page"


def test_name_resolving_to_a_private_address_is_not_connected_to(net: Net) -> None:
    before = net.connections
    resp = ask(helper_for(net), f"http://secret.example.com:{net.secret.port}/")
    data = assert_refused(net, resp, before)
    assert data["dns"]["addrs"] == [SECRET_IP]  # what the helper saw is still reported
    assert data["tcp_connect"] == {}
    assert data["x_skipped_endpoints"] == [f"{SECRET_IP}:{net.secret.port}"]


def test_name_resolving_to_a_private_address_is_refused_with_the_real_policy(net: Net) -> None:
    # No injected policy at all: loopback is private, as in production.
    before = net.connections
    resp = ask(helper_for(net, public=is_public_address), f"http://secret.example.com:{net.secret.port}/")
    assert_refused(net, resp, before)


@pytest.mark.parametrize(
    "path",
    ["/metadata", "/metadata-name", "/private", "/private-name", "/mapped", "/mapped-hex",
     "/nat64", "/loopback6", "/decimal", "/octal", "/hex", "/short"],
)
def test_redirect_from_a_public_site_into_the_private_network_is_not_followed(
    net: Net, path: str
) -> None:
    before = net.connections
    resp = ask(helper_for(net), f"http://www.example.com:{net.public_port}{path}")
    assert resp.status_code == 200, resp.text
    data = resp.json()
    http = data["http_request"]
    assert SECRET_TITLE not in resp.text
    assert net.connections == before, "the helper followed a redirect into a private network"
    if path in ("/decimal", "/octal", "/hex", "/short"):
        # Not IP literals: an invalid Location, or looked up as a name (NXDOMAIN here); never
        # handed to getaddrinfo, which would read them as 127.0.0.6.
        assert http["failure"] in ("dns_nxdomain_error", "http_invalid_redirect_location_host"), http
    else:
        assert len(http["x_redirects"]) == 1
        assert http["failure"] == "address_refused_by_policy", http


@pytest.mark.parametrize(
    "host",
    [f"[::ffff:{SECRET_IP}]", "[::ffff:7f00:6]", "[::1]", "[64:ff9b::7f00:6]", "169.254.169.254",
     "[fe80::1]", "0.0.0.0"],
)
def test_private_ip_urls_are_refused_before_measuring(net: Net, host: str) -> None:
    before = net.connections
    resp = ask(helper_for(net), f"http://{host}:{net.secret.port}/")
    assert resp.status_code == 403, resp.text
    assert net.connections == before


def test_private_endpoints_from_the_client_are_skipped(net: Net) -> None:
    before = net.connections
    sp = net.secret.port
    eps = [f"{SECRET_IP}:{sp}", f"[::ffff:{SECRET_IP}]:{sp}", f"[::1]:{sp}", f"[64:ff9b::7f00:6]:{sp}"]
    resp = ask(helper_for(net), f"http://www.example.com:{sp}/", eps)
    data = resp.json()
    assert net.connections == before
    assert set(data["x_skipped_endpoints"]) >= {f"{SECRET_IP}:{sp}", f"[::1]:{sp}"}
    assert not any(ep in data["tcp_connect"] for ep in eps)


@pytest.mark.parametrize("ep", ["0177.0.0.6:{p}", f"{int(ipaddress.IPv4Address(SECRET_IP))}:{{p}}",
                                "127.6:{p}", "0x7f000006:{p}"])
def test_numeric_spellings_of_addresses_are_rejected_as_endpoints(net: Net, ep: str) -> None:
    before = net.connections
    resp = ask(helper_for(net), f"http://www.example.com:{net.public_port}/",
               [ep.format(p=net.secret.port)])
    assert resp.status_code == 400 and "tcp_connect[0]" in resp.json()["error"]
    assert net.connections == before


@pytest.mark.parametrize("text", ["0177.0.0.6", "2130706438", "127.6", "0x7f.0.0.6", "localhost"])
def test_tcp_connect_never_lets_getaddrinfo_read_an_address(net: Net, text: str) -> None:
    # Without a policy at all: the engine connects to strict IP literals only.
    before = net.connections
    obs, conn = asyncio.run(tcp_connect(text, net.secret.port, 3.0))
    assert conn is None and obs.failure == "address_refused_by_policy"
    assert net.connections == before


# --- the policy itself ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "ip",
    ["127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "100.64.0.1", "169.254.169.254",
     "0.0.0.0", "255.255.255.255", "224.0.0.1", "192.0.2.1", "::1", "::", "fe80::1", "fe80::1%eth0",
     "fd00::1", "ff02::1", "::ffff:127.0.0.1", "::ffff:169.254.169.254", "::ffff:a9fe:a9fe",
     "64:ff9b::a9fe:a9fe", "64:ff9b::7f00:1", "2002:a9fe:a9fe::1", "2002:7f00:1::", "::127.0.0.1",
     "2001:0:4136:e378:8000:63bf:3fff:fdd2", "2130706433", "0177.0.0.1", "0x7f.0.0.1", "127.1",
     "localhost", "", "[::1]"],
)
def test_non_public_addresses_and_spellings_are_refused(ip: str) -> None:
    assert not is_public_address(ip)


@pytest.mark.parametrize("ip", ["93.184.216.34", "1.1.1.1", "2606:2800:220:1:248:1893:25c8:1946",
                                "::ffff:93.184.216.34", "64:ff9b::5db8:d822", "2002:5db8:d822::1"])
def test_public_addresses_are_allowed(ip: str) -> None:
    assert is_public_address(ip)


def test_embedded_ipv4_of_each_ipv6_form() -> None:
    def emb(text: str) -> list[str]:
        return [str(a) for a in embedded_ipv4(ipaddress.ip_address(text))]

    assert emb("::ffff:10.0.0.1") == ["10.0.0.1"]
    assert emb("64:ff9b::a00:1") == ["10.0.0.1"]
    assert emb("2002:a00:1::") == ["10.0.0.1"]
    assert emb("10.0.0.1") == []
