"""The pre-flight check: does the network work at all before a run measures anything?"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

from probe.core.errors import ProbeError
from probe.measure.netcheck import dns_server_reachable, health_url, http_reachable, resolver_addresses

__all__ = ["NoControlError", "NoNetworkError", "offline_error", "preflight"]


class NoNetworkError(ProbeError):
    """The pre-flight check found no working network; nothing was measured."""


class NoControlError(ProbeError):
    """No configured control answered the pre-flight check and the run was not allowed to
    measure without one (``RunSettings.allow_no_control``); nothing was measured."""


def offline_error(reason: str, run_id: int) -> NoNetworkError:
    """What every measuring command says when the pre-flight check found no network; the run
    ``run_id`` is recorded as offline (``probe outages`` counts it)."""
    return NoNetworkError(f"no network: {reason}. Nothing was measured; run {run_id} is "
                          "recorded as offline.")


async def preflight(
    cfg: Any, controls: Iterable[str], timeout: float = 3.0, reachable: list[str] | None = None
) -> list[str]:
    """Check that the network works at all: some resolver answers or some control is reachable.

    Returns the list of things that failed; raises :class:`NoNetworkError` when nothing works.
    Any DNS reply (even NXDOMAIN or REFUSED) proves that a resolver is reachable. The controls
    that answered are appended to ``reachable`` when given.
    """
    resolvers = resolver_addresses(cfg)
    controls = list(controls)

    async def check_resolver(server: str) -> str | None:
        ok = await dns_server_reachable(server, timeout)
        return None if ok else f"resolver {server} did not answer"

    async def check_control(url: str) -> str | None:
        # The run's verifying context for an https helper; a plain-http one needs none (and
        # importing the engine to build it would delay the check's first packet).
        verify = None
        if url.lower().startswith("https:"):
            from probe.measure.runtime import runtime  # only now: see above

            verify = runtime(cfg).tls.verifying
        if not await http_reachable(health_url(url), timeout, verify):
            return f"control {url} is unreachable"
        if reachable is not None:
            reachable.append(url)
        return None

    checks = [check_resolver(r) for r in resolvers] + [check_control(c) for c in controls]
    if not checks:
        raise NoNetworkError("no resolver is configured (empty /etc/resolv.conf?) and no control")
    # In the order of the checks, whichever answered first: the same words every time.
    failed = [f for f in await asyncio.gather(*checks) if f is not None]
    if len(failed) == len(checks):
        raise NoNetworkError("; ".join(failed))
    return failed
