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
import re
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
    # Slow or stalled clients (slowloris): a connection must deliver a request's headers
    # within header_timeout of connecting or of the previous response (aiohttp's keep-alive
    # timer closes it otherwise), and its body within body_timeout (408).
    header_timeout: float = 10.0
    body_timeout: float = 10.0
    max_connections_per_client: int = 256  # open connections per client address; more: closed
    backlog: int = 1024

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
        self.timed_out = 0  # requests whose body did not arrive in time (408)
        self.abandoned = 0  # measurements cancelled because the client went away
        self.limiter = ClientLimiter(self.config.max_connections_per_client)
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
            return self._client_id_of(remote)
        return None

    def _client_id_of(self, address: str) -> str:
        """What the log may say instead of a client address (``--log-clients``)."""
        if self.config.log_clients == "hashed":
            return "client-" + hashlib.sha256(self._salt + address.encode()).hexdigest()[:12]
        if self.config.log_clients == "full":
            return address
        return "<client>"

    @property
    def _log_middleware(self) -> Any:
        from aiohttp import web

        @web.middleware
        async def log_request(request: web.Request, handler: Any) -> web.StreamResponse:
            t0 = time.perf_counter()
            status = 500
            try:
                resp: web.StreamResponse = await handler(request)
                status = resp.status
                return resp
            except web.HTTPException as exc:
                status = exc.status
                raise
            except asyncio.CancelledError:
                # The client disconnected (aiohttp cancels the handler: handler_cancellation):
                # its measurement was abandoned, not failed. 499, as nginx logs it.
                status = 499
                self.abandoned += 1
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
                "timed_out": self.timed_out,
                "abandoned": self.abandoned,
                "connections": self.limiter.open,
                "refused_connections": self.limiter.refused,
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
        """POST / : one Web Connectivity test-helper request.

        The body is read (within ``body_timeout``) and validated *before* the request counts
        as in flight: a client that sends its body slowly, or never, holds no measurement
        slot, so it cannot make the helper answer 503 to everyone else.
        """
        from aiohttp import web

        try:
            async with asyncio.timeout(self.config.body_timeout):
                body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return self._json({"error": "request body too large"}, status=413)
        except TimeoutError:
            self.timed_out += 1
            return self._json(
                {"error": f"request body not received within {self.config.body_timeout:g} s"},
                status=408,
                headers={"Connection": "close"},
            )
        try:
            req = parse_request(body)
        except THRequestError as exc:
            return self._json({"error": str(exc)}, status=400)
        if self.in_flight >= self.config.max_in_flight:
            return self._json(
                {"error": "too many requests in flight, retry later"},
                status=503,
                headers={"Retry-After": str(self.config.retry_after)},
            )
        self.in_flight += 1
        try:
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


class ClientLimiter:
    """Open connections per client address, capped: one address cannot take every socket.

    Without it, one client holding a thousand idle or half-sent connections exhausts the
    helper's file descriptors and nobody else can connect.
    """

    def __init__(self, per_client: int) -> None:
        self.per_client = per_client
        self.by_client: dict[str, int] = {}
        self.open = 0
        self.refused = 0

    def acquire(self, client: str) -> bool:
        """Count a new connection from ``client``; False (refuse it) when over the cap."""
        n = self.by_client.get(client, 0)
        if n >= self.per_client:
            self.refused += 1
            return False
        self.by_client[client] = n + 1
        self.open += 1
        return True

    def release(self, client: str) -> None:
        """A connection from ``client`` closed."""
        n = self.by_client.get(client, 0) - 1
        if n > 0:
            self.by_client[client] = n
        else:
            self.by_client.pop(client, None)
        self.open -= 1


class _Guarded(asyncio.Protocol):
    """aiohttp's protocol behind the per-client connection cap (every call is forwarded)."""

    __slots__ = ("_client", "_inner", "_limiter")

    def __init__(self, inner: asyncio.Protocol, limiter: ClientLimiter) -> None:
        self._inner: asyncio.Protocol | None = inner
        self._limiter = limiter
        self._client = ""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        peer = transport.get_extra_info("peername")
        self._client = str(peer[0]) if isinstance(peer, tuple) and peer else ""
        if self._inner is None or not self._limiter.acquire(self._client):
            self._inner = None
            # Nothing read, nothing logged: the client is over its cap.
            if isinstance(transport, asyncio.Transport):
                transport.abort()
            else:
                transport.close()
            return
        self._inner.connection_made(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._inner is not None:
            self._limiter.release(self._client)
            inner, self._inner = self._inner, None
            inner.connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._inner is not None:
            self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self._inner.eof_received() if self._inner is not None else None

    def pause_writing(self) -> None:
        if self._inner is not None:
            self._inner.pause_writing()

    def resume_writing(self) -> None:
        if self._inner is not None:
            self._inner.resume_writing()


def _guarded_site_class() -> type[Any]:
    from aiohttp import web

    class GuardedSite(web.TCPSite):
        """aiohttp's TCPSite whose connections go through a :class:`ClientLimiter`."""

        __slots__ = ("_limiter",)

        def __init__(self, *args: Any, limiter: ClientLimiter, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._limiter = limiter

        async def start(self) -> None:
            await web.BaseSite.start(self)  # registers the site with the runner
            server = self._runner.server
            assert server is not None
            limiter = self._limiter
            self._server = await asyncio.get_running_loop().create_server(
                lambda: _Guarded(server(), limiter), self._host, self._port,
                ssl=self._ssl_context, backlog=self._backlog, reuse_address=self._reuse_address,
                reuse_port=self._reuse_port,
            )  # fmt: skip
            sockets = self._server.sockets
            self._bound_port = sockets[0].getsockname()[1] if sockets else self._port

    return GuardedSite


def _guarded_site(*args: Any, **kwargs: Any) -> Any:
    """A GuardedSite (the class is built on first use: aiohttp is imported lazily)."""
    return _guarded_site_class()(*args, **kwargs)


# Candidates for an IP address (IPv4, IPv6, IPv4-mapped, with a zone or a :port), checked
# with ipaddress before anything is replaced.
_ADDRESS_RE = re.compile(r"(?<![\w.:])[0-9A-Fa-f.:]*[.:][0-9A-Fa-f.:]*(?:%[\w.-]+)?(?![\w.:])")
#: Loggers of the libraries under the helper that may name a client (aiohttp's "Error
#: handling request from ADDRESS", asyncio's accept errors with the socket's raddr).
_LIBRARY_LOGGERS = ("aiohttp.access", "aiohttp.client", "aiohttp.internal", "aiohttp.server",
                    "aiohttp.web", "aiohttp.websocket", "asyncio")


class ClientScrubber(logging.Filter):
    """Rewrites library log records so that no client address reaches the log.

    ``--log-clients none`` must hold for every line, not only ours: aiohttp logs "Error
    handling request from 203.0.113.5" and asyncio logs sockets with their peer. Every IP
    address in the message, its arguments and its traceback becomes what ``replace`` says
    (``<client>``, or a salted hash with ``--log-clients hashed``).
    """

    def __init__(self, replace: Callable[[str], str]) -> None:
        super().__init__()
        self._replace = replace

    def _scrub(self, text: str) -> str:
        def sub(m: re.Match[str]) -> str:
            found = m.group(0)
            if is_ip_literal(found.split("%", 1)[0]):
                return self._replace(found)
            host, sep, port = found.rpartition(":")
            if sep and port.isdigit() and is_ip_literal(host):
                return f"{self._replace(host)}:{port}"  # 192.0.2.1:5555
            return found  # a time, a version, a hex string: not an address

        return _ADDRESS_RE.sub(sub, text)

    def filter(self, record: logging.LogRecord) -> bool:
        """Scrub ``record`` in place; always keep it."""
        try:
            message = record.getMessage()
        except Exception:
            message = str(record.msg)
        record.msg, record.args = self._scrub(message), None
        if record.exc_info:
            record.exc_text = self._scrub(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        if record.stack_info:
            record.stack_info = self._scrub(record.stack_info)
        return True

    def install(self) -> None:
        """Attach to the library loggers."""
        for name in _LIBRARY_LOGGERS:
            logging.getLogger(name).addFilter(self)

    def uninstall(self) -> None:
        """Detach from the library loggers."""
        for name in _LIBRARY_LOGGERS:
            logging.getLogger(name).removeFilter(self)


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
    # keepalive_timeout: aiohttp closes a connection that has not delivered a complete request
    # within it, from the connection's start or the previous response: the header deadline.
    # handler_cancellation: a client that disconnects cancels its measurement.
    runner = web.AppRunner(
        helper.app(), access_log=None, handle_signals=False,
        shutdown_timeout=config.shutdown_timeout, keepalive_timeout=config.header_timeout,
        handler_cancellation=True,
    )  # fmt: skip
    await runner.setup()
    site = _guarded_site(runner, config.host or None, config.port, ssl_context=_ssl_context(config),
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
        if scrubber is not None:
            scrubber.uninstall()


def _raise_open_files_limit(wanted: int = 65536) -> None:
    """Raise the soft RLIMIT_NOFILE toward the hard limit: a server's sockets are its capacity.

    The usual soft limit (1024) would let a thousand stalled connections take every file
    descriptor; the per-client cap and the deadlines bound them, this leaves room for the rest.
    """
    import resource

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
    asyncio.run(serve(helper))
