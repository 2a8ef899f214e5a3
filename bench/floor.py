"""The floor: the least work a Python client does per URL with the probe's libraries.

For each URL, with at most C in flight (asyncio): one dnspython UDP query (A), one TCP connect
to the first address, one TLS handshake (SNI, certificate validated against ``--cafile``), one
httpx GET over that connection (HTTP/1.1 via httpcore), body read. No retries, no redirects, no
storage, no control: the probe's figures are judged as ratios against this.

    ip netns exec CLIENT .venv/bin/python -m bench.floor --list urls.csv --resolver 10.77.2.3 \\
        --cafile ca.pem --concurrency 64

Prints one JSON line: urls, ok, failures by kind, elapsed seconds (first URL to last).
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import ssl
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any
from urllib.parse import urlsplit

import dns.asyncquery
import dns.message
import dns.rdatatype
import httpcore
import httpx

__all__ = ["iter_urls", "main", "run_floor"]


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


async def _one(
    url: str,
    resolver: str,
    ctx: ssl.SSLContext,
    client: httpx.AsyncClient,
    timeout: float,
    steps: list[list[float]] | None = None,
) -> str:
    clock = time.monotonic
    t = [clock()]
    parts = urlsplit(url)
    host = parts.hostname or ""
    tls = parts.scheme == "https"
    port = parts.port or (443 if tls else 80)
    try:
        async with asyncio.timeout(timeout):
            q = dns.message.make_query(host, dns.rdatatype.A)
            r = await dns.asyncquery.udp(q, resolver, timeout=timeout)
            addrs = [rd.address for rrs in r.answer if rrs.rdtype == dns.rdatatype.A for rd in rrs]
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
                    httpcore.Origin(parts.scheme.encode(), host.encode(), port),
                    _Stream(reader, writer),
                )
                resp = await client.get(url, extensions={"floor_conn": conn})
                await resp.aclose()
                if steps is not None:
                    t.append(clock())
                    for i in range(4):
                        steps[i].append(t[i + 1] - t[i])
                return "ok" if resp.status_code < 500 else "http"
            finally:
                writer.close()
    except TimeoutError:
        return "timeout"
    except Exception as exc:
        return type(exc).__name__


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
    outcomes: Counter[str] = Counter()
    async with httpx.AsyncClient(transport=_OneConnection(), trust_env=False) as client:

        async def worker() -> None:
            for url in urls:  # one shared iterator: the list is streamed, never loaded
                outcomes[await _one(url, resolver, ctx, client, timeout, steps)] += 1

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
        import statistics

        result["step_median_ms"] = {
            name: round(statistics.median(xs) * 1000, 1) if xs else None
            for name, xs in zip(("dns", "tcp", "tls", "http"), steps, strict=True)
        }
    return result


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.floor", description=__doc__.split("\n")[0])
    ap.add_argument("--list", action="append", required=True, help="CSV test list (repeatable)")
    ap.add_argument("--resolver", required=True, help="DNS server IP (UDP 53)")
    ap.add_argument("--cafile", help="CA bundle to trust")
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--timeout", type=float, default=15.0, help="per-URL deadline, seconds")
    ap.add_argument("--timings", action="store_true", help="also report median step durations")
    args = ap.parse_args(argv)
    result = asyncio.run(
        run_floor(iter_urls(args.list), args.resolver, args.cafile, args.concurrency, args.timeout,
                  args.timings)
    )
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
