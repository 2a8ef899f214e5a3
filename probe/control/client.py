"""Client for Web Connectivity test helpers (ours, or any OONI-compatible one).

One :class:`ControlClient` serves a whole run: it keeps its httpx connection pools open
(keep-alive, HTTP/2 when the helper offers it over TLS), runs many requests at once, and tries
the helpers in turn when one fails. A helper that failed at the transport level is tried last for a short
while, so that a dead helper does not cost every URL a timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from probe.control.protocol import THResponseError, build_request, parse_response
from probe.model import ControlObservation

if TYPE_CHECKING:
    import httpx

__all__ = ["DEFAULT_HEADERS", "ControlClient"]

#: Headers sent in ``http_request_headers`` (the helper fetches the page with them).
DEFAULT_HEADERS: Mapping[str, str] = {
    "Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
    "Accept-Language": "en-US,en;q=0.9",
}

_COOLDOWN = 30.0  # seconds a helper that failed at the transport level is tried last
# httpcore's pool does O(connections^2) bookkeeping on every request; several small pools
# (each its own httpx client) keep that cheap at high concurrency.
_SHARD_SIZE = 8


class _Shard:
    """One httpx client with a few connections, and the callers it can take now."""

    def __init__(self, client: httpx.AsyncClient, size: int) -> None:
        self.client = client
        self.free = size


def _failure(exc: BaseException) -> str:
    from probe.failures import failure_string

    try:
        return failure_string(exc)
    except Exception:  # the translation boundary must never turn a failure into a crash
        return f"unknown_failure: {type(exc).__name__}"


def _unreachable(exc: BaseException) -> bool:
    import httpx

    return isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout)


class ControlClient:
    """Query test helpers for what an uncensored network sees; never raises.

    ``helpers`` are base URLs (``https://th.example.org`` or ``http://127.0.0.1:8080/``); the
    request is POSTed to each URL as given. ``timeout`` bounds each helper request; it must
    exceed the helper's own measurement deadline (25 s for ``probe helper serve``), so that a
    slow site comes back as the helper's observation rather than a control failure. ``cafile``
    adds trusted CAs for helpers with private certificates.

    Use as ``async with ControlClient([...]) as control: obs = await control(url, addrs, port)``.
    """

    def __init__(
        self,
        helpers: Sequence[str],
        timeout: float = 30.0,
        cafile: str | None = None,
        *,
        user_agent: str | None = None,
        max_connections: int = 64,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.helpers: tuple[str, ...] = tuple(helpers)
        self.timeout = timeout
        self.cafile = cafile
        self._headers = dict(DEFAULT_HEADERS)
        if user_agent:
            self._headers["User-Agent"] = user_agent
        self._max_connections = max(1, max_connections)
        self._transport = transport
        self._shards: list[_Shard] = []
        self._slots = asyncio.Semaphore(self._max_connections)
        self._lock = asyncio.Lock()
        self._down_until: dict[str, float] = {}

    async def __aenter__(self) -> ControlClient:
        await self._ensure_shards()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the pooled connections."""
        shards, self._shards = self._shards, []
        for shard in shards:
            await shard.client.aclose()

    async def _ensure_shards(self) -> list[_Shard]:
        async with self._lock:
            if not self._shards:
                import httpx

                # One SSL context for every shard: loading the trust store is the slow part.
                verify = ssl.create_default_context()
                if not verify.cert_store_stats().get("x509_ca"):
                    with contextlib.suppress(ImportError, OSError):
                        import certifi  # httpx's own default, for systems without a CA store

                        verify.load_verify_locations(cafile=certifi.where())
                if self.cafile:
                    verify.load_verify_locations(cafile=self.cafile)
                try:
                    import h2  # noqa: F401

                    http2 = True
                except ImportError:
                    http2 = False
                n = -(-self._max_connections // _SHARD_SIZE)
                sizes = [self._max_connections // n + (i < self._max_connections % n) for i in range(n)]
                for size in sizes:
                    client = httpx.AsyncClient(
                        http2=http2,
                        verify=verify,
                        timeout=httpx.Timeout(self.timeout, connect=min(self.timeout, 10.0)),
                        limits=httpx.Limits(max_connections=size, max_keepalive_connections=size),
                        trust_env=False,  # never route the control through an environment proxy
                        follow_redirects=False,
                        transport=self._transport,
                    )
                    self._shards.append(_Shard(client, size))
            return self._shards

    async def _post(self, url: str, body: dict[str, Any]) -> httpx.Response:
        shards = await self._ensure_shards()
        # Callers beyond the total pool size wait here, not in httpcore's queue; once past,
        # some shard has a free connection slot.
        async with self._slots:
            shard = max(shards, key=lambda s: s.free)
            shard.free -= 1
            try:
                return await shard.client.post(url, json=body)
            finally:
                shard.free += 1

    def _order(self) -> list[str]:
        now = time.monotonic()
        up = [h for h in self.helpers if self._down_until.get(h, 0.0) <= now]
        down = [h for h in self.helpers if h not in up]
        return up + down

    async def __call__(self, url: str, addrs: Sequence[str], port: int) -> ControlObservation:
        """Ask the helpers, in turn, what they see for ``url`` and ``addrs`` on ``port``.

        Returns the first usable answer with ``source`` set to the helper that gave it, or
        a ControlObservation whose ``failure`` says why no helper answered.
        """
        started = time.time()
        t0 = time.perf_counter()
        if not self.helpers:
            return ControlObservation(
                source="", url=url, started=started, duration=0.0,
                failure="unknown_failure: no test helper configured",
            )  # fmt: skip
        failure = "unknown_failure: no test helper answered"
        source = self.helpers[0]
        try:
            body = build_request(url, addrs, port, headers=self._headers)
            for helper in self._order():
                source = helper
                try:
                    resp = await self._post(helper, body)
                except Exception as exc:
                    failure = _failure(exc)
                    if _unreachable(exc):  # a slow answer is the site's fault, not the helper's
                        self._down_until[helper] = time.monotonic() + _COOLDOWN
                    continue
                if resp.status_code != 200:
                    # 503 (busy), 5xx, 4xx: this helper cannot answer now; try the next one.
                    failure = "http_request_failed"
                    continue
                try:
                    obs = parse_response(
                        resp.content,
                        source=helper,
                        url=url,
                        started=started,
                        duration=time.perf_counter() - t0,
                    )
                except THResponseError:
                    failure = "unknown_failure: not a test-helper response"
                    continue
                self._down_until.pop(helper, None)
                return obs
        except Exception as exc:  # never raise: the control is data, even when it failed
            failure = _failure(exc)
        return ControlObservation(
            source=source,
            url=url,
            started=started,
            duration=time.perf_counter() - t0,
            failure=failure,
        )
