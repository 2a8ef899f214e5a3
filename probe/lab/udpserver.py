"""The UDP serve loop of the lab's datagram services (the DNS servers, the STUN server).

Each service says how to answer one datagram; this module owns the rest: one task per datagram
(so that a slow answer, a forwarded query or a held-back reply, holds no other back), the
lab-namespace check, the ``ready`` line the lab waits for, and closing the socket on the way out.
"""

from __future__ import annotations

import asyncio
import ipaddress
import sys
from collections.abc import Awaitable, Callable
from typing import cast

from probe.lab.safety import require_lab_namespace

__all__ = ["Answer", "DatagramServer", "serve_udp"]

#: ``(datagram, sender) -> reply`` (None: no reply).
Answer = Callable[[bytes, tuple[str, int]], Awaitable[bytes | None]]


class DatagramServer(asyncio.DatagramProtocol):
    """Sends each sender what ``answer`` returns for its datagram."""

    def __init__(self, answer: Answer, name: str = "udpserver") -> None:
        self.answer = answer
        self.name = name
        self.transport: asyncio.DatagramTransport | None = None
        self.tasks: set[asyncio.Task[None]] = set()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)  # a datagram endpoint's

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        task = asyncio.ensure_future(self._reply(data, (str(addr[0]), int(addr[1]))))
        self.tasks.add(task)  # keep a reference until it is done
        task.add_done_callback(self.tasks.discard)

    async def _reply(self, data: bytes, addr: tuple[str, int]) -> None:
        try:
            reply = await self.answer(data, addr)
        except Exception as exc:  # a lab server must keep serving whatever one datagram does
            print(f"{self.name}: {type(exc).__name__}: {exc}", file=sys.stderr)
            return
        if reply is not None and self.transport is not None:
            self.transport.sendto(reply, addr)


async def serve_udp(
    listen: tuple[str, int],
    protocol: Callable[[], asyncio.DatagramProtocol],
    *,
    what: str,
    loopback_ok: bool = False,
) -> None:
    """Serve ``protocol`` on ``listen`` until cancelled; ``what`` names the service.

    Outside a lab namespace the service refuses to start (on a loopback address too, unless
    ``loopback_ok``: the STUN server of loopback tests). Prints ``ready`` once listening.
    """
    if not (loopback_ok and ipaddress.ip_address(listen[0]).is_loopback):
        require_lab_namespace(what)
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(protocol, local_addr=listen)
    print("ready", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        transport.close()
