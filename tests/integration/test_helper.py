"""The test helper on loopback: OONI-style requests, limits, health, and the client's failover."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp import web
from helper_util import ooni_request, running_helper

from probe.core.model import Hop, HTTPObservation, Measurement, TCPObservation
from probe.core.net import format_endpoint
from probe.measure.control.client import ControlClient
from probe.measure.control.protocol import THRequest, response_problems
from probe.serve.app import Helper
from probe.serve.config import HelperConfig
from probe.serve.server import serve

pytestmark = pytest.mark.integration

PAGE = b"<html><head><title>Loopback page</title></head><body>" + b"x" * 1000 + b"</body></html>"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.asynccontextmanager
async def web_server(app: web.Application) -> AsyncIterator[int]:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield int(runner.addresses[0][1])
    finally:
        await runner.cleanup()


def page_app() -> web.Application:
    async def page(request: web.Request) -> web.Response:
        return web.Response(body=PAGE, content_type="text/html", headers={"X-Lab": "1"})

    async def redirect(request: web.Request) -> web.Response:
        raise web.HTTPFound("/page")

    app = web.Application()
    app.router.add_get("/page", page)
    app.router.add_get("/redirect", redirect)
    return app


def config(**kw: Any) -> HelperConfig:
    return HelperConfig(host="127.0.0.1", port=0, **kw)


def fake_measure(
    gate: asyncio.Event | None = None, entered: Callable[[], None] | None = None
) -> Callable[[THRequest], Awaitable[Measurement]]:
    """A MeasureFn that 'sees' a 200 page on every address the probe sent."""

    async def measure(req: THRequest) -> Measurement:
        if entered is not None:
            entered()
        if gate is not None:
            await gate.wait()
        t = req.target
        tcp = tuple(TCPObservation(ip=ip, port=t.port, started=0.0, duration=0.001) for ip in req.addresses)
        http = HTTPObservation(url=t.url, ip="192.0.2.1", port=t.port, started=0.0, duration=0.001,
                               status=200, body_length=len(PAGE), title="Fake", body_sha256="00" * 32)
        hop = Hop(index=0, url=t.url, host=t.host, port=t.port, scheme=t.scheme, tcp=tcp, http=http)
        return Measurement(target=t, started=time.time(), runtime=0.001, hops=(hop,))

    return measure


def engine_config() -> Any:
    from probe.measure.engine import MeasureConfig
    # No DNS is needed for IP-literal URLs; the resolver is a dead loopback port, never the system's.
    return MeasureConfig(resolvers=("127.0.0.1:9",), system_resolver=False, deadline=10.0,
                         tcp_timeout=3.0, tls_timeout=3.0, http_timeout=5.0, late_window=0.0)


# --- the helper with the probe's engine ----------------------------------------------------


def test_ooni_request_is_answered_with_what_the_engine_saw() -> None:
    async def main() -> None:
        async with web_server(page_app()) as port:
            helper = Helper.with_engine(engine_config(), config(allow_private=True))
            async with running_helper(helper) as base, httpx.AsyncClient(trust_env=False) as http:
                url = f"http://127.0.0.1:{port}/page"
                # 127.0.0.2 is loopback too, but nothing listens there: refused.
                eps = [format_endpoint("127.0.0.1", port), format_endpoint("127.0.0.2", port)]
                resp = await http.post(base, json=ooni_request(url, eps), timeout=30)
        assert resp.status_code == 200
        data = resp.json()
        assert response_problems(data) == []
        assert data["dns"] == {"failure": None, "addrs": ["127.0.0.1"]}
        assert data["tcp_connect"][eps[0]] == {"status": True, "failure": None}
        assert data["tcp_connect"][eps[1]] == {"status": False, "failure": "connection_refused"}
        http_req = data["http_request"]
        assert http_req["status_code"] == 200 and http_req["failure"] is None
        assert http_req["title"] == "Loopback page"
        assert http_req["body_length"] == len(PAGE)
        assert http_req["x_body_sha256"] == hashlib.sha256(PAGE).hexdigest()
        assert http_req["headers"]["X-Lab"] == "1"
        assert data["tls_handshake"] == {}

    asyncio.run(main())


def test_redirects_are_followed_to_the_final_response() -> None:
    async def main() -> None:
        async with web_server(page_app()) as port:
            helper = Helper.with_engine(engine_config(), config(allow_private=True))
            async with running_helper(helper) as base, ControlClient([base]) as control:
                obs = await control(f"http://127.0.0.1:{port}/redirect", ["127.0.0.1"], port)
        assert obs.failure is None and obs.source == base
        assert obs.http_status == 200 and obs.http_title == "Loopback page"
        assert obs.http_body_sha256 == hashlib.sha256(PAGE).hexdigest()
        assert [(t.ip, t.ok) for t in obs.tcp] == [("127.0.0.1", True)]

    asyncio.run(main())


# --- server policy -------------------------------------------------------------------------


def test_requests_over_the_in_flight_limit_get_503_with_retry_after() -> None:
    async def main() -> None:
        gate = asyncio.Event()
        entered = asyncio.Event()
        helper = Helper(fake_measure(gate, entered.set), config(max_in_flight=1, retry_after=7))
        async with running_helper(helper) as base, httpx.AsyncClient(trust_env=False) as http:
            body = ooni_request("http://example.org/", ["192.0.2.1:80"])
            first = asyncio.create_task(http.post(base, json=body, timeout=30))
            await asyncio.wait_for(entered.wait(), 10)
            second = await http.post(base, json=body, timeout=30)
            health = (await http.get(base + "health")).json()
            gate.set()
            first_resp = await first
        assert second.status_code == 503
        assert second.headers["Retry-After"] == "7"
        assert health["in_flight"] == 1
        assert first_resp.status_code == 200

    asyncio.run(main())


def test_health_reports_status_version_and_load() -> None:
    from probe import __version__
    async def main() -> dict[str, Any]:
        async with running_helper(Helper(fake_measure(), config())) as base, \
                httpx.AsyncClient(trust_env=False) as http:
            await http.post(base, json=ooni_request("http://example.org/", []))
            resp = await http.get(base + "health")
            assert resp.status_code == 200
            return resp.json()

    health = asyncio.run(main())
    assert health["status"] == "ok" and health["version"] == __version__
    assert health["in_flight"] == 0 and health["served"] == 1


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        (b"not json", 400, "JSON"),
        (b'{"http_request": "gopher://example.org/"}', 400, "http_request"),
        (b'{"http_request": "http://example.org/", "tcp_connect": ["nope"]}', 400, "tcp_connect[0]"),
        (b'{"http_request": "http://example.org/", "x": "' + b"a" * 70000 + b'"}', 413, "too large"),
        # Nesting deep enough to exhaust the decoder's recursion (a 500 with a traceback before).
        (b'{"http_request": "http://example.org/", "http_request_headers": {"x": '
         + b"[" * 30000 + b"]" * 30000 + b"}}", 400, "http_request_headers"),
        (b"[" * 30000 + b"]" * 30000, 400, "JSON object"),
    ],
)
def test_bad_requests_get_a_clear_error(body: bytes, status: int, field: str) -> None:
    async def main() -> httpx.Response:
        async with running_helper(Helper(fake_measure(), config())) as base, \
                httpx.AsyncClient(trust_env=False) as http:
            return await http.post(base, content=body, headers={"Content-Type": "application/json"})

    resp = asyncio.run(main())
    assert resp.status_code == status
    assert field in resp.json()["error"]


def test_private_addresses_are_refused_unless_allowed() -> None:
    seen: list[THRequest] = []
    inner = fake_measure()

    async def measure(req: THRequest) -> Measurement:
        seen.append(req)
        return await inner(req)

    async def main() -> tuple[httpx.Response, httpx.Response]:
        async with running_helper(Helper(measure, config())) as base, \
                httpx.AsyncClient(trust_env=False) as http:
            literal = await http.post(base, json=ooni_request("http://127.0.0.1/", []))
            mixed = await http.post(
                base, json=ooni_request("http://example.org/", ["10.1.2.3:80", "93.184.216.34:80"])
            )
            return literal, mixed

    literal, mixed = asyncio.run(main())
    assert literal.status_code == 403
    assert mixed.status_code == 200
    assert seen[0].addresses == ("93.184.216.34",)
    assert mixed.json()["x_skipped_endpoints"] == ["10.1.2.3:80"]


def test_log_has_one_line_per_request_without_client_address(caplog: pytest.LogCaptureFixture) -> None:
    async def main() -> None:
        async with running_helper(Helper(fake_measure(), config())) as base, \
                httpx.AsyncClient(trust_env=False) as http:
            await http.post(base, json=ooni_request("http://example.org/", []))
            await http.get(base + "health")

    with caplog.at_level(logging.INFO, logger="probe.helper"):
        asyncio.run(main())
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith(("POST", "GET"))]
    assert len(lines) == 2
    assert lines[0].startswith("POST / 200 ") and "url=http://example.org/" in lines[0]
    assert lines[1].startswith("GET /health 200 ")
    assert not any("client=" in line or "127.0.0.1" in line for line in lines)


def test_the_helper_tells_a_client_its_own_address_and_logs_nothing_of_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    seen: list[THRequest] = []

    async def measure(req: THRequest) -> Measurement:
        seen.append(req)
        raise AssertionError("a client-address question measures nothing")

    async def main() -> tuple[httpx.Response, httpx.Response]:
        async with running_helper(Helper(measure, config())) as base, \
                httpx.AsyncClient(trust_env=False) as http:
            asked = await http.post(base, json={"x_client_address": True})
            bare = await http.post(base, json={"x_client_address": False})
            return asked, bare

    with caplog.at_level(logging.INFO, logger="probe.helper"):
        asked, bare = asyncio.run(main())
    assert asked.status_code == 200 and asked.json() == {"x_client_address": "127.0.0.1"}
    assert bare.status_code == 400 and "http_request" in bare.json()["error"]
    assert seen == []
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("POST")]
    assert [line.split()[:3] for line in lines] == [["POST", "/", "200"], ["POST", "/", "400"]]
    assert not any("127.0.0.1" in line or "client=" in line for line in lines)


async def _until_refused(host: str, port: int, timeout: float) -> None:
    """Return once ``host:port`` refuses connections (polled; AssertionError after ``timeout``)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            _, writer = await asyncio.open_connection(host, port)
        except ConnectionRefusedError:
            return
        except ConnectionResetError:
            pass  # accepted into a backlog the closing listener then dropped: ask again
        else:
            writer.close()
            await writer.wait_closed()
        await asyncio.sleep(0.01)  # the poll interval, not a wait for the condition
    raise AssertionError(f"{host}:{port} still accepts connections after {timeout} s")


def test_stop_lets_requests_in_flight_finish() -> None:
    async def main() -> httpx.Response:
        gate = asyncio.Event()
        entered = asyncio.Event()
        helper = Helper(fake_measure(gate, entered.set), config())
        stop = asyncio.Event()
        bound: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        server = asyncio.create_task(serve(helper, stop=stop, ready=bound.set_result))
        host, port = (await bound)[0]
        async with httpx.AsyncClient(trust_env=False) as http:
            req = asyncio.create_task(
                http.post(f"http://{host}:{port}/", json=ooni_request("http://example.org/", []), timeout=30)
            )
            await asyncio.wait_for(entered.wait(), 10)
            stop.set()
            await _until_refused(host, port, 10)  # the listener is closed: shutdown has begun
            gate.set()
            resp = await req
        await server
        return resp

    assert asyncio.run(main()).status_code == 200


def test_cli_serves_and_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    port = free_port()
    resolv = tmp_path / "resolv.conf"
    resolv.write_text("nameserver 127.0.0.1\n")
    proc = subprocess.Popen(
        [sys.executable, "-m", "probe", "helper", "serve", "--listen", f"127.0.0.1:{port}",
         "--resolv-conf", str(resolv), "--allow-private"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=os.environ.copy(),
    )
    try:
        health = None
        for _ in range(100):
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/health", timeout=1, trust_env=False)
                break
            except httpx.TransportError:
                if proc.poll() is not None:
                    break
                time.sleep(0.1)
        assert health is not None and health.status_code == 200, proc.stderr.read() if proc.stderr else ""
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert "listening on http://127.0.0.1" in err
    assert "stopped after" in err


# --- the client ----------------------------------------------------------------------------


def _dead_url() -> str:
    return f"http://127.0.0.1:{free_port()}/"  # nothing listens there


def test_client_fails_over_from_a_dead_helper_to_a_live_one() -> None:
    async def main() -> None:
        dead = _dead_url()
        async with running_helper(Helper(fake_measure(), config())) as live, \
                ControlClient([dead, live], timeout=5) as control:
            first = await control("http://example.org/", ["93.184.216.34"], 80)
            second = await control("http://example.org/", ["93.184.216.34"], 80)
        assert first.failure is None and first.source == live
        assert first.http_status == 200 and first.http_title == "Fake"
        assert [(t.ip, t.port, t.ok) for t in first.tcp] == [("93.184.216.34", 80, True)]
        assert second.failure is None and second.source == live

    asyncio.run(main())


def test_slow_helper_is_skipped_per_url_but_not_set_aside() -> None:
    calls = 0

    def entered() -> None:
        nonlocal calls
        calls += 1

    async def main() -> list[Any]:
        gate = asyncio.Event()  # never set while the client waits: the slow helper times out
        slow = Helper(fake_measure(gate, entered), config(shutdown_timeout=1.0))
        try:
            async with running_helper(slow) as slow_url, \
                    running_helper(Helper(fake_measure(), config())) as fast_url, \
                    ControlClient([slow_url, fast_url], timeout=0.5) as control:
                results = [await control("http://example.org/", [], 80) for _ in range(2)]
                gate.set()
                return [(r.source == fast_url, r.failure) for r in results]
        finally:
            gate.set()

    assert asyncio.run(main()) == [(True, None), (True, None)]
    assert calls == 2  # the second URL asked the slow helper first again


def test_client_runs_requests_concurrently() -> None:
    n = 8

    async def main() -> list[Any]:
        all_in = asyncio.Event()
        count = 0

        def entered() -> None:
            nonlocal count
            count += 1
            if count == n:
                all_in.set()

        # Each measurement waits until all n are in flight: serialised calls would never finish.
        helper = Helper(fake_measure(all_in, entered), config(max_in_flight=n))
        async with running_helper(helper) as base, ControlClient([base], timeout=20) as control:
            return await asyncio.gather(*(control(f"http://example.org/{i}", [], 80) for i in range(n)))

    results = asyncio.run(main())
    assert [r.failure for r in results] == [None] * n


def test_client_never_raises() -> None:
    async def broken(req: THRequest) -> Measurement:
        raise RuntimeError("bug in measure")

    async def not_a_helper(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def main() -> list[Any]:
        other = web.Application()
        other.router.add_post("/", not_a_helper)
        async with web_server(other) as port, running_helper(Helper(broken, config())) as failing:
            results = []
            async with ControlClient([_dead_url(), _dead_url()], timeout=5) as c:
                results.append(await c("http://example.org/", ["192.0.2.1"], 80))
            async with ControlClient([failing], timeout=5) as c:
                results.append(await c("http://example.org/", [], 80))
            async with ControlClient([f"http://127.0.0.1:{port}/"], timeout=5) as c:
                results.append(await c("http://example.org/", [], 80))
            async with ControlClient([], timeout=5) as c:
                results.append(await c("http://example.org/", [], 80))
            async with ControlClient(["not a url"], timeout=5) as c:
                results.append(await c("http://example.org/", [], 80))
            return results

    dead, error, junk, none, bad_url = asyncio.run(main())
    assert dead.failure == "connection_refused"
    assert error.failure == "http_request_failed"
    assert junk.failure is not None and junk.failure.startswith("unknown_failure")
    assert none.failure is not None and bad_url.failure is not None


def test_client_reads_an_ooni_style_answer_and_fails_over_from_a_hostile_one() -> None:
    """A Go helper's answer (nulls, list header values, no x_ keys) is a control; an answer with a
    wrong type deep inside is a failed control for that helper, and the next helper is asked."""
    ooni = {
        "tcp_connect": {"192.0.2.1:80": {"status": True, "failure": None}},
        "tls_handshake": None, "quic_handshake": None, "http3_request": None, "ip_info": None,
        "http_request": {"body_length": 5, "discovered_h3_endpoint": "", "failure": None, "title": "Hi",
                         "headers": {"Server": ["go"], "Vary": "Accept"}, "status_code": 200},
        "dns": {"failure": None, "addrs": None},
    }
    hostile = {**ooni, "http_request": {**ooni["http_request"], "headers": {"Server": [["go"]]}}}

    def answering(data: dict[str, Any]) -> web.Application:
        async def answer(request: web.Request) -> web.Response:
            return web.json_response(data)

        app = web.Application()
        app.router.add_post("/", answer)
        return app

    async def main() -> tuple[Any, Any, str]:
        async with web_server(answering(ooni)) as good, web_server(answering(hostile)) as bad:
            good_url, bad_url = f"http://127.0.0.1:{good}/", f"http://127.0.0.1:{bad}/"
            async with ControlClient([bad_url], timeout=5) as c:
                alone = await c("http://example.org/", ["192.0.2.1"], 80)
            async with ControlClient([bad_url, good_url], timeout=5) as c:
                failover = await c("http://example.org/", ["192.0.2.1"], 80)
            return alone, failover, good_url

    alone, failover, good_url = asyncio.run(main())
    assert alone.failure == "unknown_failure: not a test-helper response"
    assert failover.failure is None and failover.source == good_url
    assert failover.http_headers == (("server", "go"), ("vary", "Accept"))
    assert failover.http_status == 200 and failover.tls == () and failover.dns_addrs == ()
    assert [(t.ip, t.ok) for t in failover.tcp] == [("192.0.2.1", True)]


# --- the whole chain on the loopback network: client -> helper -> engine -> DNS/web servers ---


def _net_helper(net: Any) -> Helper:
    from probe.measure.engine import MeasureConfig
    cfg = MeasureConfig(resolvers=(net.resolver,), system_resolver=False, cafile=net.ca_path,
                        late_window=0.0, deadline=10.0, tcp_timeout=3.0, tls_timeout=3.0,
                        http_timeout=5.0)
    return Helper.with_engine(cfg, config(allow_private=True))


def _ask(net: Any, url: str, addrs: list[str], port: int) -> tuple[Any, dict[str, Any]]:
    """The ControlObservation our client makes, and the raw JSON an OONI client would get."""

    async def main() -> tuple[Any, dict[str, Any]]:
        async with running_helper(_net_helper(net)) as base, ControlClient([base]) as control, \
                httpx.AsyncClient(trust_env=False) as http:
            obs = await control(url, addrs, port)
            eps = [format_endpoint(a, port) for a in addrs]
            raw = (await http.post(base, json=ooni_request(url, eps), timeout=30)).json()
            return obs, raw

    return asyncio.run(main())


def test_https_site_by_name_through_client_and_helper(loopback_net: Any) -> None:
    net = loopback_net
    url = net.url("ok.test", tls=True)
    obs, raw = _ask(net, url, [net.web_ip], net.https_port)
    assert response_problems(raw) == []
    assert obs.failure is None and obs.dns_failure is None
    assert net.web_ip in obs.dns_addrs
    assert [(t.ip, t.ok) for t in obs.tcp] == [(net.web_ip, True)]
    assert [(t.ip, t.server_name, t.ok) for t in obs.tls] == [(net.web_ip, "ok.test", True)]
    assert obs.http_status == 200 and obs.http_title is not None and "OK page" in obs.http_title
    ep = format_endpoint(net.web_ip, net.https_port)
    assert raw["x_tls"][ep]["cert_valid"] is True
    flags = raw["ip_info"][net.web_ip]["flags"]
    assert flags & 1 and flags & 2 and flags & 8  # probe, helper, valid certificate


def test_nxdomain_name_is_reported_as_dns_failure(loopback_net: Any) -> None:
    net = loopback_net
    obs, raw = _ask(net, net.url("no-such-name.test"), [], net.http_port)
    assert response_problems(raw) == []
    assert obs.failure is None
    assert obs.dns_failure == "dns_nxdomain_error" and obs.dns_addrs == ()
    assert obs.http_failure == "dns_nxdomain_error" and obs.http_status is None
    assert raw["http_request"]["status_code"] == -1 and raw["http_request"]["body_length"] == -1


def test_wrong_certificate_fails_the_tls_handshake_entry(loopback_net: Any) -> None:
    net = loopback_net
    obs, raw = _ask(net, net.url("wronghost.test", tls=True), [net.web_ip], net.https_port)
    assert obs.failure is None
    assert [(t.ok, t.failure) for t in obs.tls] == [(False, "ssl_invalid_hostname")]
    # Like a browser (and OONI's helper), the fetch fails at the certificate; the page is aside.
    assert obs.http_failure == "ssl_invalid_hostname" and obs.http_status is None
    assert raw["http_request"]["x_insecure_response"]["status_code"] == 200


def test_helper_serves_tls_and_client_trusts_it_with_cafile(tmp_path: Path) -> None:
    pytest.importorskip("trustme")
    from probe.lab.certs import CertAuthority
    from probe.measure.tls import verifying_context

    ca = CertAuthority("probe test CA")
    cert_path, key_path = ca.leaf_files(tmp_path, "cert", "127.0.0.1")
    ca_path = ca.write(tmp_path / "ca.pem")

    async def main() -> tuple[Any, Any]:
        helper = Helper(fake_measure(), config(tls_cert=str(cert_path), tls_key=str(key_path)))
        async with running_helper(helper) as base:
            url = base.replace("http://", "https://")
            async with ControlClient([url], cafile=str(ca_path)) as trusted:
                ok = await trusted("http://example.org/", [], 80)
            async with ControlClient([url]) as untrusted:
                bad = await untrusted("http://example.org/", [], 80)
            # A run passes the engine's verifying context (--cafile included): built once.
            async with ControlClient([url], ssl_context=verifying_context(str(ca_path))) as shared:
                assert (await shared("http://example.org/", [], 80)).failure is None
            return ok, bad

    ok, bad = asyncio.run(main())
    assert ok.failure is None and ok.source.startswith("https://") and ok.http_status == 200
    assert bad.failure == "ssl_unknown_authority"


@pytest.mark.parametrize(
    ("text", "expected"),
    [("127.0.0.1:8080", ("127.0.0.1", 8080)), ("[::1]:443", ("::1", 443)), (":8080", ("", 8080))],
)
def test_listen_address_is_parsed(text: str, expected: tuple[str, int]) -> None:
    from probe.core.net import parse_listen

    assert parse_listen(text) == expected
