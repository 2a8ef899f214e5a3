"""The event loop the probe and the helper run on: uvloop when installed, asyncio's own otherwise.

uvloop (a default dependency where it installs: CPython on Linux and macOS; see pyproject.toml)
implements the same asyncio API on libuv, with transports, the TLS protocol and the loop itself
in compiled code. Profiling the throughput benchmark showed the pure-Python loop, its socket
transports and ``asyncio.sslproto`` among the largest per-URL costs after the libraries' own
work (docs/bench.md); on uvloop they cost a fraction. What is measured does not change: the
engine uses the public asyncio API only (streams, ``start_tls``, datagram endpoints,
timeouts), and the lab and golden tests run on whichever loop is installed.

``PROBE_EVENT_LOOP=asyncio`` forces asyncio's loop (to compare, or to rule uvloop out when
something looks wrong); ``uvloop`` insists on it (an error when it is missing); ``auto`` (the
default) takes uvloop when it imports.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

__all__ = ["loop_factory", "loop_name", "run"]

T = TypeVar("T")

_ENV = "PROBE_EVENT_LOOP"


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """The factory of the loop to run on (None: asyncio's default loop).

    Raises RuntimeError when ``$PROBE_EVENT_LOOP`` asks for uvloop and it is not installed, or
    names no known loop.
    """
    choice = os.environ.get(_ENV, "auto").strip().lower() or "auto"
    if choice == "asyncio":
        return None
    if choice not in ("auto", "uvloop"):
        raise RuntimeError(f"${_ENV}={choice!r}: expected auto, uvloop or asyncio")
    try:
        import uvloop  # a dependency where it installs; absent on other platforms
    except ImportError:
        if choice == "uvloop":
            raise RuntimeError(
                f"${_ENV}=uvloop but uvloop is not installed (pip install uvloop)"
            ) from None
        return None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


def loop_name(loop: asyncio.AbstractEventLoop | None = None) -> str:
    """``uvloop`` or ``asyncio``: the loop running now (or ``loop``)."""
    loop = loop or asyncio.get_running_loop()
    return "uvloop" if type(loop).__module__.startswith("uvloop") else "asyncio"


def run(main: Coroutine[Any, Any, T], *, debug: bool | None = None) -> T:
    """``asyncio.run(main)`` on the loop :func:`loop_factory` chooses."""
    with asyncio.Runner(debug=debug, loop_factory=loop_factory()) as runner:
        return runner.run(main)
