"""Open connections per client address, capped (one address cannot take every socket)."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

__all__ = ["ClientLimiter", "guarded_site"]


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


def guarded_site(*args: Any, **kwargs: Any) -> Any:
    """A GuardedSite (the class is built on first use: aiohttp is imported lazily)."""
    return _guarded_site_class()(*args, **kwargs)
