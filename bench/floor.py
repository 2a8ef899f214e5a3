"""The floors: the least work a Python client does per URL.

Two of them, with at most C in flight (asyncio), no retries, no redirects, no storage, no
control: the probe's figures are judged as ratios against them.

- the **httpx floor** (issue 4, the default): one dnspython UDP query (A), one TCP connect to the
  first address, one TLS handshake (SNI, certificate validated against ``--cafile``), one httpx
  GET over that connection (HTTP/1.1 via httpcore), body read;
- the **lean floor** (``--lean``, issue 28's definition, which the targets are judged against):
  one A query with ``dns.asyncquery.udp``, ``asyncio.open_connection(ip, port, ssl=ctx,
  server_hostname=host)`` (TLS 1.3 only, certificate verified), ``GET / HTTP/1.1`` with
  ``Connection: close`` written by hand, read to EOF, no parsing.

Both run on asyncio's own loop (``asyncio.run``) unless ``--loop uvloop`` is given.

    ip netns exec CLIENT .venv/bin/python -m bench.floor --list urls.csv --resolver 10.77.2.3 \\
        --cafile ca.pem --concurrency 64 [--lean]

Prints one JSON line: urls, ok, failures by kind, elapsed seconds (first URL to last).
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import ssl
import statistics
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from typing import Any
from urllib.parse import urlsplit

import dns.asyncquery
import dns.message
import dns.rdatatype
import httpcore
import httpx

__all__ = ["iter_urls", "main", "run_floor", "run_lean_floor"]


def iter_urls(paths: Sequence[str]) -> Iterator[str]:
    """Stream the ``url`` column of Citizen Lab style CSV files."""
    for path in paths:
        with open(path, newline="") as f:
            for row in csv.DictReader(f):
                yield row["url"]


class _Stream(httpcore.AsyncNetworkStream):
    """httpcore's view of an asyncio stream that is already connected (and TLS-wrapped)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._r, self._w = reader, writer

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return await self._r.read(max_bytes)

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._w.write(buffer)
        await self._w.drain()

    async def aclose(self) -> None:
        self._w.close()

    def get_extra_info(self, info: str) -> Any:
        return self._w.get_extra_info(info)


class _Body(httpx.AsyncByteStream):
    def __init__(self, stream: Any) -> None:
        self._stream = stream

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for part in self._stream:
            yield part

    async def aclose(self) -> None:
        await self._stream.aclose()


class _OneConnection(httpx.AsyncBaseTransport):
    """Sends each request over the httpcore connection named in its extensions."""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        conn: httpcore.AsyncHTTP11Connection = request.extensions["floor_conn"]
        req = httpcore.Request(
            method=request.method,
            url=httpcore.URL(
                scheme=request.url.raw_scheme,
                host=request.url.raw_host,
                port=request.url.port,
                target=request.url.raw_path,
            ),
            headers=request.headers.raw,
            content=request.stream,
            extensions={},
        )
        resp = await conn.handle_async_request(req)
        return httpx.Response(
            status_code=resp.status, headers=resp.headers, stream=_Body(resp.stream),
            extensions=resp.extensions,
        )  # fmt: skip


def _target(url: str) -> tuple[str, bool, int, str]:
    """(host, https?, port, path) of a list URL."""
    parts = urlsplit(url)
    tls = parts.scheme == "https"
    return parts.hostname or "", tls, parts.port or (443 if tls else 80), parts.path or "/"


async def _resolve_a(host: str, resolver: str, timeout: float) -> list[str]:
    """The A addresses of ``host``: one query with ``dns.asyncquery.udp`` (both floors)."""
    q = dns.message.make_query(host, dns.rdatatype.A)
    r = await dns.asyncquery.udp(q, resolver, timeout=timeout)
    return [rd.address for rrs in r.answer if rrs.rdtype == dns.rdatatype.A for rd in rrs]


async def _outcome(fetch: Awaitable[str], timeout: float) -> str:
    """``ok`` or what went wrong with one URL, within its deadline."""
    try:
        async with asyncio.timeout(timeout):
            return await fetch
    except TimeoutError:
        return "timeout"
    except Exception as exc:
        return type(exc).__name__


def _note_steps(steps: list[list[float]] | None, t: list[float]) -> None:
    """Append each step's duration (between consecutive clock readings ``t``) to ``steps``."""
    if steps is not None:
        t.append(time.monotonic())
        for i, xs in enumerate(steps):
            xs.append(t[i + 1] - t[i])


async def _one(
    url: str, resolver: str, ctx: ssl.SSLContext, client: httpx.AsyncClient, timeout: float,
    steps: list[list[float]] | None = None,
) -> str:  # fmt: skip
    """The httpx floor for one URL: A query, TCP, TLS, an httpx GET, body read."""
    clock = time.monotonic
    t = [clock()]
    host, tls, port, _ = _target(url)
    addrs = await _resolve_a(host, resolver, timeout)
    if not addrs:
        return "dns"
    t.append(clock())
    reader, writer = await asyncio.open_connection(addrs[0], port)
    t.append(clock())
    try:
        if tls:
            await writer.start_tls(ctx, server_hostname=host)
        t.append(clock())
        conn = httpcore.AsyncHTTP11Connection(
            httpcore.Origin(b"https" if tls else b"http", host.encode(), port),
            _Stream(reader, writer),
        )
        resp = await client.get(url, extensions={"floor_conn": conn})
        await resp.aclose()
        _note_steps(steps, t)
        return "ok" if resp.status_code < 500 else "http"
    finally:
        writer.close()


async def _one_lean(
    url: str, resolver: str, ctx: ssl.SSLContext, timeout: float,
    steps: list[list[float]] | None = None,
) -> str:  # fmt: skip
    """Issue 28's lean floor for one URL: A query, TCP + TLS 1.3, a hand-written GET, read to EOF."""
    clock = time.monotonic
    t = [clock()]
    host, tls, port, path = _target(url)
    request = f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode()
    addrs = await _resolve_a(host, resolver, timeout)
    if not addrs:
        return "dns"
    t.append(clock())
    reader, writer = await asyncio.open_connection(
        addrs[0], port, ssl=ctx if tls else None, server_hostname=host if tls else None
    )
    t.append(clock())
    try:
        writer.write(request)
        first = await reader.read(65536)
        while await reader.read(65536):
            pass
        _note_steps(steps, t)
        return "ok" if first.startswith(b"HTTP/1.1 2") else "http"
    finally:
        writer.close()


async def _drive(
    urls: Iterator[str], concurrency: int, fetch: Callable[[str], Awaitable[str]],
    timeout: float, steps: list[list[float]] | None, names: Sequence[str],
) -> dict[str, Any]:  # fmt: skip
    """Run ``fetch`` over every URL with at most ``concurrency`` in flight; the summary."""
    outcomes: Counter[str] = Counter()

    async def worker() -> None:
        for url in urls:  # one shared iterator: the list is streamed, never loaded
            outcomes[await _outcome(fetch(url), timeout)] += 1

    t0 = time.monotonic()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.monotonic() - t0
    result: dict[str, Any] = {
        "urls": sum(outcomes.values()),
        "ok": outcomes.get("ok", 0),
        "failures": {k: v for k, v in outcomes.items() if k != "ok"},
        "elapsed": round(elapsed, 3),
    }
    if steps is not None:
        result["step_median_ms"] = {
            name: round(statistics.median(xs) * 1000, 1) if xs else None
            for name, xs in zip(names, steps, strict=True)
        }
    return result


async def run_lean_floor(
    urls: Iterator[str],
    resolver: str,
    cafile: str | None,
    concurrency: int,
    timeout: float = 15.0,
    timings: bool = False,
) -> dict[str, Any]:
    """The lean floor over every URL with at most ``concurrency`` in flight (see the module).

    With ``timings``, also the median duration (ms) of each step (dns, tcp+tls, http).
    """
    steps: list[list[float]] | None = [[], [], []] if timings else None
    ctx = ssl.create_default_context(cafile=cafile)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    return await _drive(urls, concurrency,
                        lambda url: _one_lean(url, resolver, ctx, timeout, steps), timeout, steps,
                        ("dns", "tcp+tls", "http"))  # fmt: skip


async def run_floor(
    urls: Iterator[str],
    resolver: str,
    cafile: str | None,
    concurrency: int,
    timeout: float = 15.0,
    timings: bool = False,
) -> dict[str, Any]:
    """Fetch every URL with at most ``concurrency`` in flight; return the counts and elapsed time.

    With ``timings``, also the median duration (ms) of each step (dns, tcp, tls, http).
    """
    steps: list[list[float]] | None = [[], [], [], []] if timings else None
    ctx = ssl.create_default_context(cafile=cafile)
    ctx.set_alpn_protocols(["http/1.1"])
    async with httpx.AsyncClient(transport=_OneConnection(), trust_env=False) as client:
        return await _drive(urls, concurrency,
                            lambda url: _one(url, resolver, ctx, client, timeout, steps), timeout,
                            steps, ("dns", "tcp", "tls", "http"))  # fmt: skip


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.floor", description=__doc__.split("\n")[0])
    ap.add_argument("--list", action="append", required=True, help="CSV test list (repeatable)")
    ap.add_argument("--resolver", required=True, help="DNS server IP (UDP 53)")
    ap.add_argument("--cafile", help="CA bundle to trust")
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--timeout", type=float, default=15.0, help="per-URL deadline, seconds")
    ap.add_argument("--timings", action="store_true", help="also report median step durations")
    ap.add_argument("--lean", action="store_true",
                    help="issue 28's lean floor (no httpx: a hand-written GET read to EOF)")
    ap.add_argument("--loop", choices=("asyncio", "uvloop"), default="asyncio",
                    help="event loop (default asyncio's own, as the floors are defined)")
    args = ap.parse_args(argv)
    run = run_lean_floor if args.lean else run_floor
    factory = None
    if args.loop == "uvloop":
        import uvloop

        factory = uvloop.new_event_loop
    with asyncio.Runner(loop_factory=factory) as runner:
        result = runner.run(run(iter_urls(args.list), args.resolver, args.cafile, args.concurrency,
                                args.timeout, args.timings))  # fmt: skip
    result["loop"] = args.loop
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
