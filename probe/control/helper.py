"""The test-helper server: ``probe helper serve``.

An aiohttp application that answers OONI Web Connectivity test-helper requests (POST ``/`` or
``/web-connectivity``) by measuring the URL with the probe's own engine from this vantage
point: its own DNS lookup, TCP and TLS to its addresses and to the probe's, and the HTTP fetch
with redirects. It refuses work beyond ``max_in_flight`` with 503 + Retry-After, answers
``GET /health``, logs one line per request without the client's address unless asked, and
shuts down gracefully on SIGTERM (in-flight requests are finished).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import json
import logging
import os
import signal
import ssl
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from probe import __version__
from probe.control.protocol import (
    THRequest,
    THRequestError,
    build_response,
    parse_request,
)
from probe.model import Measurement
from probe.net import format_endpoint, is_ip_literal, read_resolv_conf
from probe.netpolicy import ConnectPolicy, is_public_address

if TYPE_CHECKING:
    from aiohttp import web

__all__ = [
    "Helper",
    "HelperConfig",
    "MeasureFn",
    "engine_measure",
    "measure_config",
    "run",
    "serve",
]

log = logging.getLogger("probe.helper")

#: What the helper calls to measure: the request -> a Measurement (never raises for network
#: failures). The default is :func:`engine_measure`; tests inject their own.
MeasureFn = Callable[[THRequest], Awaitable[Measurement]]


@dataclass(frozen=True)
class HelperConfig:
    """Server policy (the measurement settings live in the engine's MeasureConfig)."""

    host: str = "127.0.0.1"
    port: int = 8080
    max_in_flight: int = 64  # concurrent measurements; more get 503
    retry_after: int = 5  # seconds, in the 503's Retry-After
    request_max_bytes: int = 64 * 1024  # request bodies above this get 413
    measure_timeout: float = 30.0  # safety net over the engine's own deadline; 504 beyond
    allow_private: bool = False  # connect to loopback/private addresses (labs, tests)
    #: What counts as public when ``allow_private`` is off; tests inject a policy that makes
    #: one loopback address "public" (nothing may leave loopback in tests).
    public: ConnectPolicy = is_public_address
    log_clients: str = "none"  # "none", "hashed" (salted per process) or "full"
    tls_cert: str | None = None
    tls_key: str | None = None
    shutdown_timeout: float = 30.0  # seconds given to in-flight requests on SIGTERM

    def connect_policy(self) -> ConnectPolicy | None:
        """The engine's connect policy for this helper (None: connect anywhere)."""
        return None if self.allow_private else self.public


def measure_config(
    *,
    resolvers: Sequence[str] = (),
    resolv_conf: str | Path | None = None,
    cafile: str | None = None,
    body_cap: int = 1 << 20,
    deadline: float = 25.0,
) -> Any:
    """The engine's MeasureConfig for the helper (no DoH: the helper is the control).

    ``resolvers`` win; otherwise the ``nameserver`` lines of ``resolv_conf``; otherwise the
    engine's system resolver. Raises OSError/ValueError for an unreadable resolv.conf.
    """
    from probe.observe import MeasureConfig

    names = {f.name for f in dataclasses.fields(MeasureConfig)}
    servers = tuple(resolvers)
    wanted: dict[str, Any] = {}
    if resolv_conf and not servers:
        found = read_resolv_conf(resolv_conf)  # fail early, naming the file
        if "resolv_conf" in names:
            wanted["resolv_conf"] = str(resolv_conf)
        else:
            servers = found
    wanted |= {
        "resolvers": servers,
        "cafile": cafile,
        "body_cap": body_cap,
        "deadline": deadline,
        "late_window": 0.0,  # the helper reports the first answer; no need to linger
    }
    return MeasureConfig(**{k: v for k, v in wanted.items() if k in names})


def engine_measure(cfg: Any = None, *, policy: ConnectPolicy | None = is_public_address) -> MeasureFn:
    """The production MeasureFn: :func:`probe.observe.measure` with ``cfg`` (a MeasureConfig).

    The probe's User-Agent is used for the fetch, so the site serves both the same page; the
    probe's addresses (for the URL's port) are passed as ``extra_addresses``. ``policy`` is
    enforced on every address connected to (after DNS, after each redirect): public
    addresses only unless the caller passes another policy or None (``--allow-private``).
    """
    from probe.observe import MeasureConfig, measure

    base = dataclasses.replace(cfg if cfg is not None else MeasureConfig(), connect_policy=policy)
    has_ua = any(f.name == "user_agent" for f in dataclasses.fields(base))

    async def run_measure(req: THRequest) -> Measurement:
        mcfg = base
        ua = req.header("User-Agent")
        if ua and has_ua:
            mcfg = dataclasses.replace(base, user_agent=ua)
        return await measure(req.target, mcfg, control=None, extra_addresses=req.addresses)

    return run_measure


class Helper:
    """The aiohttp application and its counters. ``measure`` does the measuring."""

    def __init__(
        self,
        measure: MeasureFn,
        config: HelperConfig | None = None,
        *,
        asn: Callable[[str], int | None] | None = None,
    ) -> None:
        self.measure = measure
        self.config = config or HelperConfig()
        self.asn = asn
        self.in_flight = 0
        self.served = 0
        self.started = time.time()
        self._salt = os.urandom(16)
        self._url_key: Any = "measured_url"

    @classmethod
    def with_engine(
        cls,
        measure_config: Any = None,
        config: HelperConfig | None = None,
        *,
        asn: Callable[[str], int | None] | None = None,
    ) -> Helper:
        """A helper measuring with the probe's engine under ``config``'s connect policy."""
        config = config or HelperConfig()
        measure = engine_measure(measure_config, policy=config.connect_policy())
        return cls(measure, config, asn=asn)

    # --- the application ------------------------------------------------------------------

    def app(self) -> web.Application:
        """A new aiohttp Application serving this helper."""
        from aiohttp import web

        # A typed request key where aiohttp has them (3.12+), a plain string before.
        request_key = getattr(web, "RequestKey", None)
        self._url_key = request_key("measured_url", str) if request_key else "measured_url"
        app = web.Application(
            client_max_size=self.config.request_max_bytes,
            middlewares=[self._log_middleware],
        )
        app.router.add_post("/", self.handle_measure)
        app.router.add_post("/web-connectivity", self.handle_measure)
        app.router.add_get("/health", self.handle_health)
        return app

    def _client_id(self, request: web.Request) -> str | None:
        mode = self.config.log_clients
        remote = request.remote or ""
        if mode == "full":
            return remote
        if mode == "hashed":
            return hashlib.sha256(self._salt + remote.encode()).hexdigest()[:12]
        return None

    @property
    def _log_middleware(self) -> Any:
        from aiohttp import web

        @web.middleware
        async def log_request(request: web.Request, handler: Any) -> web.StreamResponse:
            t0 = time.perf_counter()
            status = 500
            try:
                resp = await handler(request)
                status = resp.status
                return resp
            except web.HTTPException as exc:
                status = exc.status
                raise
            finally:
                parts = [
                    request.method,
                    request.path,
                    str(status),
                    f"{time.perf_counter() - t0:.3f}s",
                ]
                url = request.get(self._url_key)
                if url:
                    parts.append(f"url={url}")
                parts.append(f"in_flight={self.in_flight}")
                client = self._client_id(request)
                if client:
                    parts.append(f"client={client}")
                log.info(" ".join(parts))

        return log_request

    @staticmethod
    def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
        from aiohttp import web

        return web.Response(
            body=json.dumps(data, separators=(",", ":")).encode(),
            status=status,
            content_type="application/json",
            headers=headers,
        )

    async def handle_health(self, request: web.Request) -> web.Response:
        """GET /health: liveness and load, for monitoring and load balancers."""
        return self._json(
            {
                "status": "ok",
                "version": __version__,
                "in_flight": self.in_flight,
                "max_in_flight": self.config.max_in_flight,
                "served": self.served,
                "uptime": round(time.time() - self.started, 3),
            }
        )

    def _policy(self, req: THRequest) -> tuple[THRequest, list[tuple[str, int]]]:
        """Drop the probe's non-public endpoints unless allowed (we are not an SSRF tool).

        This only reports them early (``x_skipped_endpoints``); the engine enforces the same
        policy on every address it connects to, resolved names and redirects included.
        """
        policy = self.config.connect_policy()
        if policy is None:
            return req, []
        keep = [ep for ep in req.endpoints if policy(ep[0])]
        skipped = [ep for ep in req.endpoints if not policy(ep[0])]
        return dataclasses.replace(req, endpoints=tuple(keep)), skipped

    async def handle_measure(self, request: web.Request) -> web.Response:
        """POST / : one Web Connectivity test-helper request."""
        from aiohttp import web

        if self.in_flight >= self.config.max_in_flight:
            return self._json(
                {"error": "too many requests in flight, retry later"},
                status=503,
                headers={"Retry-After": str(self.config.retry_after)},
            )
        self.in_flight += 1
        try:
            try:
                body = await request.read()
            except web.HTTPRequestEntityTooLarge:
                return self._json({"error": "request body too large"}, status=413)
            try:
                req = parse_request(body)
            except THRequestError as exc:
                return self._json({"error": str(exc)}, status=400)
            request[self._url_key] = req.target.url
            host = req.target.host
            policy = self.config.connect_policy()
            if policy is not None and is_ip_literal(host) and not policy(host):
                return self._json(
                    {"error": f"http_request: {host} is not a public address (helper policy)"},
                    status=403,
                )
            req, skipped = self._policy(req)
            try:
                m = await asyncio.wait_for(self.measure(req), self.config.measure_timeout)
            except TimeoutError:
                return self._json({"error": "measurement timed out"}, status=504)
            except Exception:
                log.exception("measurement of %s failed", req.target.url)
                return self._json({"error": "internal error while measuring"}, status=500)
            resp = build_response(req, m, version=__version__, asn=self.asn, skipped=skipped)
            self.served += 1
            return self._json(resp)
        finally:
            self.in_flight -= 1


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
    from aiohttp import web

    config = helper.config
    # access_log=None: the per-request line comes from our middleware, without client IPs.
    runner = web.AppRunner(
        helper.app(), access_log=None, handle_signals=False, shutdown_timeout=config.shutdown_timeout
    )
    await runner.setup()
    site = web.TCPSite(runner, config.host or None, config.port, ssl_context=_ssl_context(config))
    loop = asyncio.get_running_loop()
    own_signals = stop is None
    stop = stop or asyncio.Event()
    if own_signals:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
    try:
        await site.start()
        bound = [(str(a[0]), int(a[1])) for a in runner.addresses]
        scheme = "https" if config.tls_cert else "http"
        for host, port in bound:
            log.info("listening on %s://%s (probe %s)", scheme, format_endpoint(host, port), __version__)
        if ready is not None:
            ready(bound)
        await stop.wait()
        log.info("stopping: finishing %d request(s) in flight", helper.in_flight)
    finally:
        if own_signals:
            for sig in (signal.SIGTERM, signal.SIGINT):
                with contextlib.suppress(Exception):
                    loop.remove_signal_handler(sig)
        await runner.cleanup()
        log.info("stopped after %d measurement(s)", helper.served)


def run(
    config: HelperConfig,
    measure_config: Any = None,
    *,
    asn: Callable[[str], int | None] | None = None,
) -> None:
    """Serve until SIGTERM/SIGINT with the probe's engine (the CLI's entry point)."""
    helper = Helper.with_engine(measure_config, config, asn=asn)
    asyncio.run(serve(helper))
