"""Serving a helper until it is stopped (SIGTERM/SIGINT or an event), and the CLI's entry."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import resource
import signal
import ssl
from collections.abc import Callable, Sequence
from typing import Any

from aiohttp import web

from probe import __version__
from probe.core.net import format_endpoint
from probe.host import eventloop
from probe.host.heap import steady_heap
from probe.serve.app import Helper
from probe.serve.config import HelperConfig
from probe.serve.connections import guarded_site
from probe.serve.privacy import ClientScrubber
from probe.serve.reflector import Reflector

log = logging.getLogger("probe.helper")

__all__ = ["run", "serve"]


def _ssl_context(config: HelperConfig) -> ssl.SSLContext | None:
    if not config.tls_cert:
        return None
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(config.tls_cert, config.tls_key)
    return ctx


async def serve(
    helper: Helper,
    *,
    stop: asyncio.Event | None = None,
    ready: Callable[[Sequence[tuple[str, int]]], None] | None = None,
) -> None:
    """Run ``helper`` until ``stop`` is set (or SIGTERM/SIGINT when ``stop`` is None).

    ``ready`` is called with the bound (host, port) pairs once the server listens (port 0
    picks a free port). On stop, the listener closes and in-flight requests get up to
    ``shutdown_timeout`` seconds to finish.
    """
    config = helper.config
    # access_log=None: the per-request line comes from our middleware, without client IPs.
    # keepalive_timeout: aiohttp closes a connection that has not delivered a complete request
    # within it, from the connection's start or the previous response: the header deadline.
    # handler_cancellation: a client that disconnects cancels its measurement.
    runner = web.AppRunner(
        helper.app(), access_log=None, handle_signals=False,
        shutdown_timeout=config.shutdown_timeout, keepalive_timeout=config.header_timeout,
        handler_cancellation=True,
    )  # fmt: skip
    await runner.setup()
    site = guarded_site(runner, config.host or None, config.port, ssl_context=_ssl_context(config),
                         backlog=config.backlog, limiter=helper.limiter)
    loop = asyncio.get_running_loop()
    own_signals = stop is None
    stop = stop or asyncio.Event()
    if own_signals:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
    scrubber = ClientScrubber(helper._client_id_of) if config.log_clients != "full" else None
    if scrubber is not None:
        scrubber.install()
    reflector = Reflector(config.reflector) if config.reflector is not None else None
    try:
        await site.start()
        if reflector is not None:
            await reflector.start(config.host or None)
            helper.reflector = reflector
            log.info("reflector: tcp echo %s, udp echo %s, wireguard %s (key %s)",
                     ",".join(map(str, reflector.ports["tcp_echo"])), reflector.ports.get("udp_echo", "-"),
                     reflector.ports.get("wireguard", "-"), reflector.advertise()["wireguard"]["public_key"])
        bound = [(str(a[0]), int(a[1])) for a in runner.addresses]
        scheme = "https" if config.tls_cert else "http"
        for host, port in bound:
            log.info("listening on %s://%s (probe %s)", scheme, format_endpoint(host, port), __version__)
        if ready is not None:
            ready(bound)
        with steady_heap():  # what serving allocates is collected; the libraries are left alone
            await stop.wait()
        log.info("stopping: finishing %d request(s) in flight", helper.in_flight)
    finally:
        if own_signals:
            for sig in (signal.SIGTERM, signal.SIGINT):
                with contextlib.suppress(Exception):
                    loop.remove_signal_handler(sig)
        if reflector is not None:
            helper.reflector = None
            await reflector.close()
        await runner.cleanup()
        log.info("stopped after %d measurement(s)", helper.served)
        if scrubber is not None:
            scrubber.uninstall()


def _raise_open_files_limit(wanted: int = 65536) -> None:
    """Raise the soft RLIMIT_NOFILE toward the hard limit: a server's sockets are its capacity.

    The usual soft limit (1024) would let a thousand stalled connections take every file
    descriptor; the per-client cap and the deadlines bound them, this leaves room for the rest.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


def run(
    config: HelperConfig,
    measure_config: Any = None,
    *,
    asn: Callable[[str], int | None] | None = None,
) -> None:
    """Serve until SIGTERM/SIGINT with the probe's engine (the CLI's entry point)."""
    _raise_open_files_limit()
    helper = Helper.with_engine(measure_config, config, asn=asn)
    eventloop.run(serve(helper))  # uvloop where installed (a dependency where it installs)
