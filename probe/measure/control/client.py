"""Client for Web Connectivity test helpers (ours, or any OONI-compatible one).

One :class:`ControlClient` serves a whole run: it keeps one aiohttp session with a pool of
keep-alive connections open, runs many requests at once, and tries the helpers in turn when one
fails. A helper that failed at the transport level is tried last for a short while, so that a
dead helper does not cost every URL a timeout.

Why aiohttp and not httpx here: the control is one small JSON POST per URL and hop, on the
probe's hot path; profiling the throughput benchmark showed httpx + httpcore + anyio spending
more CPU per control request than the whole measurement of the URL. aiohttp (already our
helper's server stack) does the same POST over keep-alive with its C HTTP parser. The
measurement itself still uses httpx over connections the engine established step by step.
"""

from __future__ import annotations

import asyncio
import email.utils
import ssl
import time
from collections.abc import Mapping, Sequence

import aiohttp
from yarl import URL

from probe.core.codec import encode_json
from probe.core.failures import UNKNOWN_PREFIX, Failure, failure_string
from probe.core.model import ControlObservation
from probe.measure import localaddrs
from probe.measure.control.protocol import RequestMessage, THResponseError, build_request, parse_response
from probe.measure.tls import verifying_context

__all__ = ["DEFAULT_HEADERS", "ControlClient"]

#: Headers sent in ``http_request_headers`` (the helper fetches the page with them).
DEFAULT_HEADERS: Mapping[str, str] = {
    "Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
    "Accept-Language": "en-US,en;q=0.9",
}

_COOLDOWN = 30.0  # seconds a helper that failed at the transport level is tried last
_RETRY_AFTER_MAX = 30.0  # the longest single wait a helper's Retry-After may ask for
_MAX_RESPONSE = 4 << 20  # bytes of a helper's answer read at most (a hostile helper: no bomb)
_JSON = {"Content-Type": "application/json", "Accept": "application/json"}


def _failure(exc: BaseException) -> str:
    try:
        return failure_string(exc)
    except Exception:  # the translation boundary must never turn a failure into a crash
        return UNKNOWN_PREFIX + type(exc).__name__


def _unreachable(exc: BaseException) -> bool:
    connect_timeout = getattr(aiohttp, "ConnectionTimeoutError", ())
    return isinstance(exc, aiohttp.ClientConnectorError | connect_timeout)


def _retry_after(value: str | None) -> float | None:
    """Seconds a ``Retry-After`` header asks to wait (delta-seconds or HTTP-date), capped."""
    if value is None:
        return None
    value = value.strip()
    seconds: float
    if value.isdigit():
        seconds = float(value)
    else:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        seconds = when.timestamp() - time.time()
    return min(max(seconds, 0.0), _RETRY_AFTER_MAX)


class ControlClient:
    """Query test helpers for what an uncensored network sees; never raises.

    ``helpers`` are base URLs (``https://th.example.org`` or ``http://127.0.0.1:8080/``); the
    request is POSTed to each URL as given. ``timeout`` bounds each helper request; it must
    exceed the helper's own measurement deadline (25 s for ``probe helper serve``), so that a
    slow site comes back as the helper's observation rather than a control failure. ``cafile``
    adds trusted CAs for helpers with private certificates; ``ssl_context`` (optional) is the
    run's verifying context (:func:`probe.measure.tls.verifying_context`) to share instead.

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
        busy_wait: float = 20.0,
        ssl_context: ssl.SSLContext | None = None,
        quic: bool = False,
        ech: bool = False,
        ech_sni: str = "",
    ) -> None:
        self.helpers: tuple[str, ...] = tuple(helpers)
        self.timeout = timeout
        self.cafile = cafile
        self._ssl_context = ssl_context
        self._headers = dict(DEFAULT_HEADERS)
        if user_agent:
            self._headers["User-Agent"] = user_agent
        self._max_connections = max(1, max_connections)
        self._session: aiohttp.ClientSession | None = None
        self._lock = asyncio.Lock()
        self._down_until: dict[str, float] = {}
        self._urls: dict[str, URL] = {}
        self.busy_wait = max(0.0, busy_wait)  # seconds per URL spent waiting for busy helpers
        self.quic = quic  # ask for the helper's QUIC handshakes (x_quic_enabled)
        self.ech = ech  # ask for its ECH test (x_ech_enabled: probe's helper only)
        self.ech_sni = ech_sni

    async def __aenter__(self) -> ControlClient:
        await self._ensure_session()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the pooled connections."""
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    async def _ensure_session(self) -> aiohttp.ClientSession:
        if self._session is not None:  # every request after the first: no lock to take
            return self._session
        async with self._lock:
            if self._session is None:
                verify = self._ssl_context or verifying_context(self.cafile)
                connector = aiohttp.TCPConnector(
                    limit=self._max_connections, ssl=verify, enable_cleanup_closed=True
                )
                self._session = aiohttp.ClientSession(
                    connector=connector,
                    timeout=aiohttp.ClientTimeout(
                        total=self.timeout, sock_connect=min(self.timeout, 10.0)
                    ),
                    trust_env=False,  # never route the control through an environment proxy
                    # A helper's cookies are never sent back: they would let it link a probe's
                    # requests together (and the jar's filtering costs CPU on every request).
                    cookie_jar=aiohttp.DummyCookieJar(),
                    skip_auto_headers=("User-Agent",),
                )
            return self._session

    async def _post(self, url: str, body: RequestMessage) -> tuple[int, bytes, float | None]:
        """POST ``body``; the status, the answer (bounded) and a 503's Retry-After in seconds."""
        session = await self._ensure_session()
        data = encode_json(body)
        target = self._urls.get(url)
        if target is None:  # parsed once per helper, not on every request
            target = self._urls[url] = URL(url)
        async with session.post(target, data=data, headers=_JSON, allow_redirects=False) as resp:
            if resp.connection is not None:  # the address the helper (and any echo) sees
                localaddrs.note_stream(resp.connection.transport)
            parts: list[bytes] = []
            size = 0
            async for chunk in resp.content.iter_any():
                size += len(chunk)
                if size > _MAX_RESPONSE:
                    raise ValueError(f"test helper answer longer than {_MAX_RESPONSE} bytes")
                parts.append(chunk)
            content = b"".join(parts)
            retry = _retry_after(resp.headers.get("Retry-After")) if resp.status == 503 else None
            return resp.status, content, retry

    def _order(self) -> list[str]:
        now = time.monotonic()
        up = [h for h in self.helpers if self._down_until.get(h, 0.0) <= now]
        down = [h for h in self.helpers if h not in up]
        return up + down

    async def __call__(
        self, url: str, addrs: Sequence[str], port: int, *, http: bool = True
    ) -> ControlObservation:
        """Ask the helpers, in turn, what they see for ``url`` and ``addrs`` on ``port``.

        ``http=False`` asks probe's helper to stop after the handshakes (``x_skip_http``), for
        endpoints that speak no HTTP; OONI's helper ignores it and fetches as usual.

        Returns the first usable answer with ``source`` set to the helper that gave it, or
        a ControlObservation whose ``failure`` says why no helper answered.
        """
        started = time.time()
        t0 = time.perf_counter()
        if not self.helpers:
            return ControlObservation(
                source="", url=url, started=started, duration=0.0,
                failure=UNKNOWN_PREFIX + "no test helper configured",
            )  # fmt: skip
        failure = UNKNOWN_PREFIX + "no test helper answered"
        source = self.helpers[0]
        give_up = time.monotonic() + self.busy_wait
        try:
            body = build_request(url, addrs, port, headers=self._headers, quic_enabled=self.quic,
                                 ech_enabled=self.ech, ech_sni=self.ech_sni, http=http)
            helpers = self._order()
            while helpers:
                busy: list[tuple[float, str]] = []  # (Retry-After, helper) of the 503s
                for helper in helpers:
                    source = helper
                    try:
                        status, content, retry = await self._post(helper, body)
                    except Exception as exc:
                        failure = _failure(exc)
                        if _unreachable(exc):  # a slow answer is the site's fault, not the helper's
                            self._down_until[helper] = time.monotonic() + _COOLDOWN
                        continue
                    if status == 503 and retry is not None:
                        # Busy, and it says when to come back: worth waiting for (below).
                        busy.append((retry, helper))
                        failure = Failure.TEST_HELPER_BUSY
                        continue
                    if status != 200:
                        # 5xx, 4xx, a 503 without Retry-After: this helper cannot answer now.
                        failure = Failure.HTTP_REQUEST_FAILED
                        continue
                    try:
                        obs = parse_response(
                            content,
                            source=helper,
                            url=url,
                            started=started,
                            duration=time.perf_counter() - t0,
                        )
                    except THResponseError:
                        failure = UNKNOWN_PREFIX + "not a test-helper response"
                        continue
                    self._down_until.pop(helper, None)
                    return obs
                if not busy:
                    break
                # Every other helper failed and some are busy: wait as the soonest one asked,
                # within this URL's budget, then ask the busy ones again. Past the budget the
                # control is missing and says why (test_helper_busy): the URL is inconclusive.
                wait, _ = min(busy)
                if time.monotonic() + wait > give_up:
                    break
                await asyncio.sleep(wait)  # the server's own back-off, not synchronisation
                helpers = [h for _, h in sorted(busy)]
        except Exception as exc:  # never raise: the control is data, even when it failed
            failure = _failure(exc)
        return ControlObservation(
            source=source,
            url=url,
            started=started,
            duration=time.perf_counter() - t0,
            failure=failure,
        )
