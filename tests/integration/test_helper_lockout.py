"""Stalled and abusive clients cannot lock legitimate clients out of the test helper.

Reproduces the issue's attacks on loopback: 64 connections that send one byte of their body
(which used to hold every measurement slot, so everyone got 503), 1,100 connections that
never finish their headers (which used to take every file descriptor of a helper with the
usual 1024 limit), and a client that disconnects while its measurement runs. Every attack
ends by itself: the helper's deadlines close the stalled connections.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from helper_util import ooni_request, running_helper
from hostile import HelperProcess, closed_by_peer, hold_connections, raise_open_files_limit
from servers import Page, ServerLoop, WebServer
from test_helper import fake_measure

from probe.core.model import Measurement
from probe.measure.control.protocol import THRequest
from probe.serve.app import Helper
from probe.serve.config import HelperConfig

pytestmark = pytest.mark.integration

ATTACKER = "127.0.0.2"  # the attackers' source address; legitimate clients use 127.0.0.1


def config(**kw: Any) -> HelperConfig:
    return HelperConfig(host="127.0.0.1", port=0, **kw)


def post_head(length: int) -> bytes:
    return (f"POST / HTTP/1.1\r\nHost: helper\r\nContent-Type: application/json\r\n"
            f"Content-Length: {length}\r\n\r\n").encode()


@pytest.mark.slow  # 64 stalled bodies held to the helper's deadline
def test_slow_request_bodies_hold_no_measurement_slot() -> None:
    async def main() -> tuple[int, list[bytes], Helper]:
        helper = Helper(fake_measure(), config(body_timeout=2.0))  # 64 slots, the default
        async with running_helper(helper) as base:
            port = int(base.rsplit(":", 1)[1].strip("/"))
            async with hold_connections("127.0.0.1", port, 64, post_head(200) + b"{",
                                        source=ATTACKER) as socks:
                async with httpx.AsyncClient(trust_env=False) as http:
                    resp = await http.post(base, json=ooni_request("http://example.org/", []),
                                           timeout=10)
                # The helper ends each stalled upload by itself: 408, then close.
                async with asyncio.timeout(30):
                    answers = await asyncio.gather(*(closed_by_peer(s) for s in socks))
        return resp.status_code, answers, helper

    status, answers, helper = asyncio.run(main())
    assert status == 200
    assert len(answers) == 64
    assert all(a.startswith(b"HTTP/1.1 408 ") for a in answers), answers[:3]
    assert helper.timed_out == 64 and helper.in_flight == 0


@pytest.fixture(scope="module")
def page_server() -> Iterator[int]:
    loop = ServerLoop()
    web = WebServer(loop, "127.0.0.1", {"127.0.0.1": {"/": Page(200, b"<title>Up</title>")}}, None)
    yield web.http_port
    web.close()
    loop.close()


@pytest.mark.slow  # 1,100 connections: the helper's file descriptors
def test_a_thousand_stalled_connections_do_not_lock_out_legitimate_clients(page_server: int) -> None:
    raise_open_files_limit()
    stalled = 1100
    url = f"http://127.0.0.1:{page_server}/"
    body = json.dumps(ooni_request(url, []))

    async def main(helper: HelperProcess) -> tuple[list[int], list[bytes], dict[str, Any]]:
        async with hold_connections("127.0.0.1", helper.port, stalled,
                                    b"POST / HTTP/1.1\r\nHost: helper\r\n", source=ATTACKER) as socks:
            async with httpx.AsyncClient(trust_env=False) as http:
                statuses = []
                for _ in range(3):
                    r = await http.post(helper.base, content=body, timeout=10,
                                        headers={"Content-Type": "application/json"})
                    statuses.append(r.status_code)
                health = (await http.get(helper.base + "health", timeout=10)).json()
            # Over the per-client cap: closed at once; under it: closed at the header deadline.
            async with asyncio.timeout(60):
                answers = await asyncio.gather(*(closed_by_peer(s) for s in socks))
        return statuses, answers, health

    # The usual file-descriptor limit of a service: 1024.
    with HelperProcess("--allow-private", "--resolver", "127.0.0.1:9", "--header-timeout", "2",
                       open_files=1024) as helper:
        statuses, answers, health = asyncio.run(main(helper))
    assert statuses == [200, 200, 200]
    assert len(answers) == stalled  # every stalled connection was closed by the helper
    assert health["refused_connections"] > 0  # the per-client cap was reached
    assert health["connections"] <= 256 + 1
    assert not any("Too many open files" in line for line in helper.log)


def test_a_client_that_disconnects_cancels_its_measurement() -> None:
    async def main() -> Helper:
        entered = asyncio.Event()
        cancelled = asyncio.Event()

        async def measure(req: THRequest) -> Measurement:
            entered.set()
            try:
                await asyncio.Event().wait()  # a measurement that would run on and on
            except asyncio.CancelledError:
                cancelled.set()
                raise
            raise AssertionError("unreachable")

        helper = Helper(measure, config())
        async with running_helper(helper) as base:
            port = int(base.rsplit(":", 1)[1].strip("/"))
            body = json.dumps(ooni_request("http://example.org/", [])).encode()
            _reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(post_head(len(body)) + body)
            await writer.drain()
            async with asyncio.timeout(10):
                await entered.wait()
            writer.transport.abort()  # the probe was killed
            async with asyncio.timeout(10):
                await cancelled.wait()
        return helper

    helper = asyncio.run(main())
    assert helper.abandoned == 1 and helper.in_flight == 0 and helper.served == 0


# --- logs ------------------------------------------------------------------------------------

CLIENT = "127.0.0.77"  # a source address that appears nowhere else


def _broken_measure() -> Any:
    inner = fake_measure()

    async def measure(req: THRequest) -> Measurement:
        m = await inner(req)
        return m.__class__(target=m.target, started=m.started, runtime=m.runtime,
                           hops=("not a hop",))  # type: ignore[arg-type]  # build_response fails

    return measure


async def _provoke_library_logs(port: int) -> None:
    """Make aiohttp log errors about this client: a handler exception, garbage, a reset."""
    body = json.dumps(ooni_request("http://example.org/", [])).encode()
    for payload in (post_head(len(body)) + body, b"\x16\x03\x01 not http\r\n\r\n",
                    b"GET / HTTP/1.1\r\nHost: x\r\nBad Header Line\r\n\r\n"):
        s = socket.socket()
        s.bind((CLIENT, 0))
        s.setblocking(False)
        loop = asyncio.get_running_loop()
        await loop.sock_connect(s, ("127.0.0.1", port))
        await loop.sock_sendall(s, payload)
        async with asyncio.timeout(10):
            await closed_by_peer(s) if payload[:4] != b"POST" else await loop.sock_recv(s, 65536)
        s.close()


@pytest.mark.parametrize("mode", ["none", "hashed"])
def test_library_logs_never_name_the_client(caplog: pytest.LogCaptureFixture, mode: str) -> None:
    async def main() -> None:
        helper = Helper(_broken_measure(), config(log_clients=mode))
        async with running_helper(helper) as base:
            await _provoke_library_logs(int(base.rsplit(":", 1)[1].strip("/")))

    with caplog.at_level(logging.DEBUG):
        asyncio.run(main())
    texts = [f"{r.name} {r.getMessage()} {r.exc_text or ''}" for r in caplog.records]
    assert any("Error handling request from" in t for t in texts), texts  # the path was taken
    assert not any(CLIENT in t for t in texts), [t for t in texts if CLIENT in t]
    marker = "<client>" if mode == "none" else "client-"
    assert any(f"Error handling request from {marker}" in t for t in texts)


def test_full_mode_keeps_the_address_for_debugging(caplog: pytest.LogCaptureFixture) -> None:
    async def main() -> None:
        helper = Helper(_broken_measure(), config(log_clients="full"))
        async with running_helper(helper) as base:
            await _provoke_library_logs(int(base.rsplit(":", 1)[1].strip("/")))

    with caplog.at_level(logging.DEBUG):
        asyncio.run(main())
    assert any(CLIENT in r.getMessage() for r in caplog.records)
