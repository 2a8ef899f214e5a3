"""The lab's HTTP and HTTPS servers (aiohttp), one process for every site and the block page.

Run inside the server namespace::

    python -m probe.lab.web --config WEB.json

The configuration (see :func:`probe.lab.sites.web_config`) lists listeners (address, port, and
for HTTPS a certificate) and per-name behaviours chosen by the Host header. asyncio wraps each
accepted socket in TLS, so a ClientHello a censor drops stalls one connection, never the server.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import secrets
import ssl
import sys
import time
from typing import Any

from aiohttp import web

from probe.core.net import host_of
from probe.lab.blockpage import BLOCKPAGE_HTML
from probe.lab.safety import require_lab_namespace

__all__ = ["main", "make_app"]

_PAGE = (
    "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{title}</title></head>\n"
    "<body><h1>{title}</h1>\n<p>{text}</p>\n</body></html>\n"
)
_LOREM = (
    "This page is served by the probe's censorship lab. It stands for an ordinary web site "
    "with a few paragraphs of text, so that a body-length comparison has something to compare. "
)


def _page(title: str, text: str) -> str:
    return _PAGE.format(title=title, text=text)


_LARGE = re.compile(r"/large/(\d{1,5})")


async def _send_object(request: Any, size: int, rate: float) -> web.StreamResponse:
    """``size`` bytes of octet-stream, at ``rate`` bytes per second (0: as fast as it goes)."""
    stream = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
    stream.content_length = size
    await stream.prepare(request)
    chunk = bytes(range(256)) * 64  # 16 KiB, incompressible enough for a rate
    sent = 0
    while sent < size:
        n = min(len(chunk), size - sent)
        await stream.write(chunk[:n])
        sent += n
        if rate:
            await asyncio.sleep(n / rate)
    await stream.write_eof()
    return stream


def make_app(sites: dict[str, dict[str, Any]], blockpage_ports: set[tuple[str, int]]) -> Any:
    """The aiohttp application serving ``sites`` (by Host) and the block page (by listener)."""
    async def handle(request: web.Request) -> web.StreamResponse:
        sockname = request.transport.get_extra_info("sockname") if request.transport else None
        if sockname and (sockname[0], sockname[1]) in blockpage_ports:
            return web.Response(body=BLOCKPAGE_HTML, content_type="text/html", charset="utf-8")
        host = host_of(request.host or "")
        spec = sites.get(host)
        if spec is None:
            return web.Response(status=404, text=_page("Not found", f"no site {host}"),
                                content_type="text/html")  # fmt: skip
        kind, title = spec.get("kind", "page"), spec.get("title", host)
        if kind == "redirect":
            raise web.HTTPFound(spec["location"])
        if kind == "forbidden":
            return web.Response(status=403, text=_page("403 Forbidden", "Access denied to everyone."),
                                content_type="text/html")  # fmt: skip
        if kind == "slow":
            await asyncio.sleep(float(spec.get("delay", 3.0)))
        if kind == "dynamic":
            text = _LOREM * 8 + f"Generated at {time.time():.6f}, token {secrets.token_hex(16)}."
            resp = web.Response(text=_page(title, text), content_type="text/html")
            resp.headers["Cache-Control"] = "no-store"
            resp.set_cookie("session", secrets.token_hex(8))
            return resp
        if kind == "echo":
            # What sites that show "your IP address" do: the privacy scrubber must remove it.
            ip = request.remote or ""
            if request.path == "/redirect":
                raise web.HTTPFound(f"/seen?client={ip}", headers={"X-Client-IP": ip})
            resp = web.Response(text=_page(f"Your address is {ip}", f"You connect from {ip}."),
                                content_type="text/html")  # fmt: skip
            resp.headers["X-Client-IP"] = ip
            return resp
        large = _LARGE.fullmatch(request.path)
        if kind == "trickle" or (large and kind == "page"):
            # A large object (throttling needs bytes to measure a rate): at full speed on any
            # page site, or trickled out by the server itself ("slow for everyone").
            size = min(int(large.group(1)) << 10, 4 << 20) if large else int(spec.get("size", 256 << 10))
            rate = float(spec.get("rate", 0)) if kind == "trickle" else 0.0
            return await _send_object(request, size, rate)
        if kind == "huge":
            size = int(spec.get("size", 2 << 20))
            stream = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
            stream.content_length = size
            await stream.prepare(request)
            chunk = (b"0123456789abcdef" * 4096)[:65536]
            sent = 0
            while sent < size:
                n = min(len(chunk), size - sent)
                await stream.write(chunk[:n])
                sent += n
            await stream.write_eof()
            return stream
        return web.Response(text=_page(title, _LOREM * 8), content_type="text/html")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    return app


def _tls_context(cert: str, key: str) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


async def serve(config: dict[str, Any]) -> None:
    """Start every listener of ``config`` and serve until cancelled."""
    require_lab_namespace("the lab's web servers")
    listeners = config["listeners"]
    blockpage = {(lst["ip"], int(lst["port"])) for lst in listeners if lst.get("blockpage")}
    app = make_app(config["sites"], blockpage)
    runner = web.AppRunner(app, access_log=None, handler_cancellation=True)
    await runner.setup()
    contexts: dict[tuple[str, str], ssl.SSLContext] = {}
    for lst in listeners:
        ctx = None
        if lst.get("cert"):
            pair = (lst["cert"], lst["key"])
            ctx = contexts.get(pair) or contexts.setdefault(pair, _tls_context(*pair))
        site = web.TCPSite(runner, lst["ip"], int(lst["port"]), ssl_context=ctx, backlog=256,
                           reuse_address=True)  # fmt: skip
        await site.start()
    print("ready", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point (see the module docstring)."""
    ap = argparse.ArgumentParser(prog="python -m probe.lab.web")
    ap.add_argument("--config", required=True, help="web configuration JSON")
    args = ap.parse_args(argv)
    with open(args.config) as f:
        config = json.load(f)
    try:
        asyncio.run(serve(config))
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
