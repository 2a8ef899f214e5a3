"""Shared pieces for the test-helper tests: the OONI request fixture and a running helper."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from probe.serve.app import Helper
from probe.serve.server import serve

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "ooni_th"


def ooni_request(url: str, endpoints: list[str]) -> dict[str, Any]:
    """The spec's example request, pointed at a loopback URL."""
    data: dict[str, Any] = json.loads((FIXTURES / "request.json").read_text())
    data["http_request"] = url
    data["tcp_connect"] = endpoints
    return data


@contextlib.asynccontextmanager
async def running_helper(helper: Helper) -> AsyncIterator[str]:
    """Serve ``helper`` on a free loopback port in this loop; yields its base URL."""
    stop = asyncio.Event()
    bound: asyncio.Future[list[tuple[str, int]]] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(serve(helper, stop=stop, ready=lambda b: bound.set_result(list(b))))
    try:
        host, port = (await asyncio.wait_for(bound, 10))[0]
        yield f"http://{host}:{port}/"
    finally:
        stop.set()
        await task
