"""The helper's aiohttp application: the handlers, their counters and the request log."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import logging
import os
import time
from collections.abc import Callable
from typing import Any

from aiohttp import web

from probe import __version__
from probe.core.codec import encode_json
from probe.core.net import is_ip_literal
from probe.measure.control.protocol import (
    ClientAddress,
    THRequest,
    THRequestError,
    build_response,
    read_request,
)
from probe.serve.config import HelperConfig, MeasureFn, engine_measure
from probe.serve.connections import ClientLimiter
from probe.serve.reflector import Reflector

log = logging.getLogger("probe.helper")

__all__ = ["Helper"]


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
        self.reflector: Reflector | None = None  # set by serve() while the reflector runs

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
        return web.Response(
            body=encode_json(data),  # msgspec: the typed response, or a small dict
            status=status,
            content_type="application/json",
            headers=headers,
        )

    async def handle_health(self, request: web.Request) -> web.Response:
        """GET /health: liveness and load, for monitoring and load balancers; the reflector's
        ports and WireGuard key when it runs (probes find it there)."""
        extra = {"reflector": self.reflector.advertise()} if self.reflector is not None else {}
        return self._json(
            extra | {
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
            req = read_request(body)
        except THRequestError as exc:
            return self._json({"error": str(exc)}, status=400)
        except Exception as exc:  # whatever the body did to the parser, it is the body's fault
            # Any request the parser cannot handle is a bad request, never a 500 with a
            # traceback: one line in the log, without the body.
            log.warning("unparsable request: %s", type(exc).__name__)
            return self._json({"error": "request cannot be parsed"}, status=400)
        if req is None:
            # {"x_client_address": true}: the address this request came from, to this client
            # only (a probe scrubs it from what it stores). The log line says nothing of it.
            return self._json(ClientAddress(x_client_address=request.remote or ""))
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
