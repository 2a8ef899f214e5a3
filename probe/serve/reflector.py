"""The helper's reflector (``probe helper serve --reflector``): an uncensored peer for the tests
that need one: a TCP echo for fully encrypted traffic, a UDP echo, and a WireGuard responder.

It only answers, never connects anywhere, so it cannot be a way into the network it runs in.
It is bounded like the rest of the helper:

- **TCP echo** (two ports, so that a probe can tell a port blocked for minutes after a
  detection from a broken path): at most ``tcp_bytes`` echoed per connection, then closed; a
  connection idle for ``idle_timeout`` is closed; at most ``max_connections`` open, and
  ``per_client`` per client address; new connections per client address are rate-limited.
- **UDP** (echo, and the WireGuard port): an answer is never larger than the datagram it
  answers and goes only to its sender (no amplification); datagrams above ``max_datagram`` are
  dropped; each client address gets ``rate`` datagrams per second (a burst of ``burst``) and the
  whole reflector ``global_rate``, so a forged source address cannot turn it into a flood
  aimed at someone else: at worst ``rate`` datagrams per second, each no larger than the
  attacker's own.
- The WireGuard port answers a valid handshake initiation to its key with a valid response (92
  bytes to 148), at most ``wireguard_rate`` per second in all (each costs two X25519
  operations), and echoes the probes' twin datagrams (type 0xF0); everything else is dropped.

Client addresses are kept in memory for the rate limits only (a bounded table), never logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
import typing
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from probe.core.wgkey import encode_key
from probe.measure import wireguard
from probe.serve.connections import ClientLimiter

__all__ = ["RateLimiter", "Reflector", "ReflectorConfig"]


@dataclass(frozen=True)
class ReflectorConfig:
    """Ports and bounds of the reflector (ports 0: any free port, for tests)."""

    tcp_echo: tuple[int, ...] = (8781, 8782)
    udp_echo: int | None = 8781  # None: not opened
    wireguard: int | None = 51820
    private_key: bytes | None = None  # the WireGuard responder's; None: a fresh one per start
    tcp_bytes: int = 4096  # echoed per connection, then it is closed
    idle_timeout: float = 10.0  # seconds a connection may stay silent
    max_connections: int = 512
    per_client: int = 16  # open connections per client address
    rate: float = 20.0  # new connections or datagrams per second per client address
    burst: int = 40
    global_rate: float = 2000.0  # datagrams per second for everyone together
    # WireGuard responses per second for everyone together: each costs ~0.6 ms of CPU (two
    # X25519 operations), so this keeps the responder under about an eighth of a core.
    wireguard_rate: float = 200.0
    max_datagram: int = 1500
    max_clients: int = 4096  # client addresses the rate limits remember


class RateLimiter:
    """Token buckets per key (a client address), in a table of bounded size.

    When the table is full the least recently seen key is forgotten: a forgotten key starts again
    with a full bucket, which costs at most ``burst`` more packets, never memory.
    """

    def __init__(self, rate: float, burst: int, max_keys: int) -> None:
        self.rate = rate
        self.burst = float(burst)
        self.max_keys = max_keys
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def allow(self, key: str, now: float | None = None) -> bool:
        """Take a token for ``key``; False when its bucket is empty."""
        t = time.monotonic() if now is None else now
        tokens, last = self._buckets.pop(key, (self.burst, t))
        tokens = min(self.burst, tokens + (t - last) * self.rate)
        ok = tokens >= 1.0
        self._buckets[key] = (tokens - 1.0 if ok else tokens, t)
        if len(self._buckets) > self.max_keys:
            self._buckets.popitem(last=False)
        return ok

    def __len__(self) -> int:
        return len(self._buckets)


class _Echo(asyncio.Protocol):
    """One TCP echo connection: bounded bytes, an idle deadline."""

    def __init__(self, owner: Reflector) -> None:
        self.owner = owner
        self.transport: asyncio.Transport | None = None
        self.client = ""
        self.left = owner.config.tcp_bytes
        self.timer: asyncio.TimerHandle | None = None

    def connection_made(self, base: asyncio.BaseTransport) -> None:
        # uvloop's transports (the helper runs on uvloop when installed) do not derive from
        # asyncio.Transport: no isinstance check here.
        transport = typing.cast(asyncio.Transport, base)
        peer = transport.get_extra_info("peername")
        self.client = str(peer[0]) if isinstance(peer, tuple) and peer else ""
        if not self.owner._admit(self.client):
            transport.abort()
            return
        self.transport = transport
        self.owner._conns.add(self)
        self._arm()

    def _arm(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
        loop = asyncio.get_running_loop()
        self.timer = loop.call_later(self.owner.config.idle_timeout, self._idle)

    def _idle(self) -> None:
        if self.transport is not None:
            self.owner.stats["idle_closed"] += 1
            self.transport.abort()

    def data_received(self, data: bytes) -> None:
        if self.transport is None:
            return
        echo = data[: self.left]
        self.left -= len(echo)
        self.owner.stats["tcp_bytes"] += len(echo)
        self.transport.write(echo)
        if self.left <= 0:
            self.transport.close()  # the budget is spent: what was echoed is flushed, then closed
        else:
            self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.timer is not None:
            self.timer.cancel()
        if self.transport is not None:
            self.transport = None
            self.owner._conns.discard(self)
            self.owner._release(self.client)


class _Datagrams(asyncio.DatagramProtocol):
    """A UDP port: echo, or the WireGuard responder (which also echoes the probes' twins)."""

    def __init__(self, owner: Reflector, wireguard_port: bool) -> None:
        self.owner = owner
        self.wireguard = wireguard_port
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # asyncio's selector datagram transport does not derive from DatagramTransport.
        self.transport = typing.cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        owner = self.owner
        answer = owner._answer(data, str(addr[0]), self.wireguard)
        if answer is not None and self.transport is not None:
            # Only to the sender, never larger than what it sent.
            assert len(answer) <= len(data)
            self.transport.sendto(answer, addr)


class Reflector:
    """The reflector's servers and counters; :meth:`start` opens them, :meth:`close` ends them."""

    def __init__(self, config: ReflectorConfig | None = None) -> None:
        self.config = config or ReflectorConfig()
        c = self.config
        self.keys = (wireguard.KeyPair.from_private(c.private_key) if c.private_key
                     else wireguard.KeyPair.generate())  # fmt: skip
        self.per_client = RateLimiter(c.rate, c.burst, c.max_clients)
        self.everyone = RateLimiter(c.global_rate, max(c.burst, int(c.global_rate)), 1)
        self.handshakes = RateLimiter(c.wireguard_rate, max(1, int(c.wireguard_rate)), 1)
        self.connections = ClientLimiter(c.per_client)  # the helper's own per-address cap
        self.stats: dict[str, int] = dict.fromkeys(
            ("connections", "refused_connections", "idle_closed", "tcp_bytes", "datagrams", "answered",
             "dropped_datagrams", "wireguard_responses"), 0)  # fmt: skip
        self.ports: dict[str, Any] = {}
        self._servers: list[asyncio.AbstractServer] = []
        self._transports: list[asyncio.BaseTransport] = []
        self._conns: set[_Echo] = set()

    # --- admission ------------------------------------------------------------------------------

    def _admit(self, client: str) -> bool:
        # The total cap and the rate limit first: a refused connection takes no slot.
        if (self.connections.open >= self.config.max_connections or not self.per_client.allow(client)
                or not self.connections.acquire(client)):  # fmt: skip
            self.stats["refused_connections"] += 1
            return False
        self.stats["connections"] += 1
        return True

    def _release(self, client: str) -> None:
        self.connections.release(client)

    def _answer(self, data: bytes, client: str, wireguard_port: bool) -> bytes | None:
        """What to send back for a datagram from ``client`` (None: nothing)."""
        self.stats["datagrams"] += 1
        if (len(data) > self.config.max_datagram or not data or not self.everyone.allow("*")
                or not self.per_client.allow(client)):  # fmt: skip
            self.stats["dropped_datagrams"] += 1
            return None
        if not wireguard_port:
            answer: bytes | None = data
        elif data[0] == wireguard.TWIN_TYPE:
            answer = data
        elif self.handshakes.allow("*"):
            answer = wireguard.respond(self.keys, data).answer
            if answer is not None:
                self.stats["wireguard_responses"] += 1
        else:
            answer = None
        if answer is None:
            self.stats["dropped_datagrams"] += 1
        else:
            self.stats["answered"] += 1
        return answer

    # --- life cycle -----------------------------------------------------------------------------

    async def start(self, host: str | None) -> None:
        """Open every port on ``host`` (None or "": every address)."""
        loop = asyncio.get_running_loop()
        bind = host or None
        c = self.config
        tcp = []
        for port in c.tcp_echo:
            server = await loop.create_server(lambda: _Echo(self), bind, port, reuse_address=True)
            self._servers.append(server)
            tcp.append(int(server.sockets[0].getsockname()[1]))
        self.ports["tcp_echo"] = tcp
        for name, udp_port, wg in (("udp_echo", c.udp_echo, False), ("wireguard", c.wireguard, True)):
            if udp_port is None:
                continue
            transport, _ = await loop.create_datagram_endpoint(
                functools.partial(_Datagrams, self, wg), local_addr=(bind or "0.0.0.0", udp_port)
            )
            self._transports.append(transport)
            self.ports[name] = int(transport.get_extra_info("sockname")[1])

    def advertise(self) -> dict[str, Any]:
        """What ``GET /health`` says about the reflector (probe.measure.reflector reads it)."""
        return {
            "tcp_echo": list(self.ports.get("tcp_echo", [])),
            "udp_echo": self.ports.get("udp_echo", 0),
            "wireguard": {"port": self.ports.get("wireguard", 0), "public_key": encode_key(self.keys.public)},
            "limits": {"tcp_bytes": self.config.tcp_bytes, "rate": self.config.rate,
                       "max_datagram": self.config.max_datagram},
            "counters": dict(self.stats),
        }

    async def close(self) -> None:
        """Stop listening and drop every connection."""
        for server in self._servers:
            server.close()
        for transport in self._transports:
            transport.close()
        for conn in list(self._conns):
            if conn.transport is not None:
                conn.transport.abort()
        for server in self._servers:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(server.wait_closed(), 1.0)
        self._servers.clear()
        self._transports.clear()
