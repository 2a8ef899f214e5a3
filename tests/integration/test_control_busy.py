"""The control client and a busy or hostile test helper: Retry-After is honoured, bounded.

A helper at its --max-in-flight answers 503 with Retry-After. The client used to give up at
once (every URL inconclusive while the helper was merely busy); now it waits as asked, within
a per-URL budget, and only then reports ``test_helper_busy``.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from test_helper import web_server

from probe.measure.control.client import ControlClient, _retry_after

pytestmark = pytest.mark.integration

RESPONSE = (Path(__file__).resolve().parent.parent / "fixtures" / "ooni_th" / "response.json").read_bytes()


@contextlib.asynccontextmanager
async def busy_helper(busy_for: int, retry_after: str | None = "1") -> AsyncIterator[tuple[str, list[float]]]:
    """A helper that answers 503 (+ Retry-After) to its first ``busy_for`` requests."""
    seen: list[float] = []

    async def handle(request: web.Request) -> web.Response:
        await request.read()
        seen.append(time.monotonic())
        if len(seen) <= busy_for:
            headers = {"Retry-After": retry_after} if retry_after is not None else {}
            return web.json_response({"error": "busy"}, status=503, headers=headers)
        return web.Response(body=RESPONSE, content_type="application/json")

    app = web.Application()
    app.router.add_post("/", handle)
    async with web_server(app) as port:
        yield f"http://127.0.0.1:{port}/", seen


@pytest.mark.slow  # times between retries
def test_a_busy_helper_is_waited_for_as_it_asks() -> None:
    async def main() -> tuple[object, list[float]]:
        async with busy_helper(busy_for=2) as (url, seen), ControlClient([url], busy_wait=10) as control:
            return await control("http://example.org/", ["93.184.216.34"], 80), seen

    obs, seen = asyncio.run(main())
    assert obs.failure is None and obs.http_status == 200  # type: ignore[attr-defined]
    assert len(seen) == 3
    # It waited (about) the Retry-After second between attempts, not zero.
    assert all(b - a >= 0.9 for a, b in itertools.pairwise(seen))


@pytest.mark.slow  # a time budget
def test_waiting_is_bounded_then_the_control_says_busy() -> None:
    async def main() -> tuple[object, list[float]]:
        async with busy_helper(busy_for=1000) as (url, seen), \
                ControlClient([url], busy_wait=2.5) as control:
            return await control("http://example.org/", [], 80), seen

    obs, seen = asyncio.run(main())
    assert obs.failure == "test_helper_busy"  # type: ignore[attr-defined]
    assert 2 <= len(seen) <= 4  # 1 s apart, within 2.5 s


def test_a_503_without_retry_after_is_not_waited_for() -> None:
    async def main() -> tuple[object, list[float]]:
        async with busy_helper(busy_for=1000, retry_after=None) as (url, seen), \
                ControlClient([url], busy_wait=10) as control:
            return await control("http://example.org/", [], 80), seen

    obs, seen = asyncio.run(main())
    assert obs.failure == "http_request_failed" and len(seen) == 1  # type: ignore[attr-defined]


def test_another_helper_is_asked_before_waiting() -> None:
    async def main() -> tuple[object, list[float], str]:
        async with busy_helper(busy_for=1000) as (busy_url, seen), \
                busy_helper(busy_for=0) as (free_url, _), \
                ControlClient([busy_url, free_url], busy_wait=10) as control:
            return await control("http://example.org/", [], 80), seen, free_url

    obs, seen, free_url = asyncio.run(main())
    assert obs.failure is None and obs.source == free_url  # type: ignore[attr-defined]
    assert len(seen) == 1


def test_an_oversized_helper_answer_is_a_failure_not_a_memory_bomb() -> None:
    async def main() -> object:
        async def handle(request: web.Request) -> web.StreamResponse:
            resp = web.StreamResponse(headers={"Content-Type": "application/json"})
            await resp.prepare(request)
            chunk = b" " * (1 << 20)
            for _ in range(64):  # 64 MiB of whitespace, never a complete answer
                await resp.write(chunk)
            return resp

        app = web.Application()
        app.router.add_post("/", handle)
        async with web_server(app) as port, ControlClient([f"http://localhost:{port}/"]) as control:
            return await control("http://example.org/", [], 80)

    obs = asyncio.run(main())
    assert obs.failure is not None and "longer than" in obs.failure  # type: ignore[attr-defined]


@pytest.mark.parametrize(("value", "expected"), [("1", 1.0), ("0", 0.0), ("120", 30.0), ("x", None),
                                                 (None, None), ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0)])
def test_retry_after_values(value: str | None, expected: float | None) -> None:
    assert _retry_after(value) == expected


def test_a_helper_cookie_is_never_sent_back() -> None:
    # A helper that sets a cookie could link one probe's requests together; the client keeps
    # no cookies, so every request reaches the helper without one. Named by a host name: a
    # cookie jar drops cookies from IP-literal hosts by itself, so an IP would prove nothing.
    cookies: list[str | None] = []

    async def handle(request: web.Request) -> web.Response:
        await request.read()
        cookies.append(request.headers.get("Cookie"))
        resp = web.Response(body=RESPONSE, content_type="application/json")
        resp.set_cookie("probe_id", "tracking-1234")
        return resp

    async def main() -> list[object]:
        app = web.Application()
        app.router.add_post("/", handle)
        async with web_server(app) as port, ControlClient([f"http://localhost:{port}/"]) as control:
            return [await control("http://example.org/", [], 80) for _ in range(3)]

    answers = asyncio.run(main())
    assert all(a.failure is None for a in answers)  # type: ignore[attr-defined]
    assert cookies == [None, None, None]
