"""The pre-flight check: does the network work at all before a run measures anything?"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

from probe.core.errors import ProbeError
from probe.measure.netcheck import dns_server_reachable, health_url, http_reachable, resolver_addresses

__all__ = ["NoControlError", "NoNetworkError", "preflight"]


class NoNetworkError(ProbeError):
    """The pre-flight check found no working network; nothing was measured."""


class NoControlError(ProbeError):
    """No configured control answered the pre-flight check and the run was not allowed to
    measure without one (``RunSettings.allow_no_control``); nothing was measured."""


async def preflight(
    cfg: Any, controls: Iterable[str], timeout: float = 3.0, reachable: list[str] | None = None
) -> list[str]:
    """Check that the network works at all: some resolver answers or some control is reachable.

    Returns the list of things that failed; raises :class:`NoNetworkError` when nothing works.
    Any DNS reply (even NXDOMAIN or REFUSED) proves that a resolver is reachable. The controls
    that answered are appended to ``reachable`` when given.
    """
    failed: list[str] = []
    resolvers = resolver_addresses(cfg)
    controls = list(controls)

    async def check_resolver(server: str) -> bool:
        ok = await dns_server_reachable(server, timeout)
        if not ok:
            failed.append(f"resolver {server} did not answer")
        return ok

    async def check_control(url: str) -> bool:
        # The run's verifying context for an https helper; a plain-http one needs none (and
        # importing the engine to build it would delay the check's first packet).
        verify = None
        if url.lower().startswith("https:"):
            from probe.measure.runtime import runtime  # only now: see above

            verify = runtime(cfg).tls.verifying
        ok = await http_reachable(health_url(url), timeout, verify)
        if not ok:
            failed.append(f"control {url} is unreachable")
        elif reachable is not None:
            reachable.append(url)
        return ok

    checks = [check_resolver(r) for r in resolvers] + [check_control(c) for c in controls]
    if not checks:
        raise NoNetworkError("no resolver is configured (empty /etc/resolv.conf?) and no control")
    results = await asyncio.gather(*checks)
    if not any(results):
        raise NoNetworkError("; ".join(failed))
    return failed
