"""What the engine builds once per configuration and shares: SSL contexts, resolvers, DoH clients.

Keyed by the fields a runtime depends on only: the test helper derives a config per request
(the client's User-Agent), and that must neither rebuild SSL contexts nor grow the cache.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import weakref
from typing import Any

from probe.core.net import run_resolvers
from probe.core.settings import MeasureConfig
from probe.measure import localaddrs
from probe.measure.tls import TLSContexts

__all__ = ["Runtime", "aclose", "runtime"]

log = logging.getLogger("probe.measure.engine")


class Runtime:
    """What is expensive to build, built once per configuration: SSL contexts, resolvers."""

    def __init__(self, cfg: MeasureConfig) -> None:
        self.tls = TLSContexts(cfg.cafile, cfg.extra_ca)
        self.cafile = cfg.cafile
        chosen = run_resolvers(cfg.resolvers, cfg.system_resolver, cfg.resolv_conf)
        self.resolvers = list(chosen.addresses)
        self.no_resolver = chosen.missing
        for ns in chosen.ignored:
            log.warning("ignoring nameserver %r of %s", ns, cfg.resolv_conf)
        self._doh: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Any] = (
            weakref.WeakKeyDictionary()
        )

    def doh_client(self) -> Any:
        """The shared DoH client of the running loop (an httpx2 client, as dnspython wants)."""
        loop = asyncio.get_running_loop()
        client = self._doh.get(loop)
        if client is None:
            import httpx2  # DoH only (runs with --doh)

            ctx: ssl.SSLContext | bool = True
            if self.cafile:
                ctx = ssl.create_default_context(cafile=self.cafile)
                ctx.load_default_certs()
            client = self._doh[loop] = httpx2.AsyncClient(
                http1=True, http2=True, verify=ctx,
                event_hooks={"response": [_note_local_address]})
        return client

    async def aclose(self) -> None:
        loop = asyncio.get_running_loop()
        client = self._doh.pop(loop, None)
        if client is not None:
            await client.aclose()


async def _note_local_address(response: Any) -> None:
    """The DoH connection's local address, for the run's scrubber (probe.measure.localaddrs)."""
    localaddrs.note_stream(response.extensions.get("network_stream"))


# Keyed by the fields a runtime depends on only: the test helper derives a config per request

_RUNTIMES: dict[tuple[Any, ...], Runtime] = {}


def _runtime_key(cfg: MeasureConfig) -> tuple[Any, ...]:
    return (cfg.cafile, cfg.extra_ca, cfg.resolvers, cfg.system_resolver, cfg.resolv_conf)


def runtime(cfg: MeasureConfig) -> Runtime:
    """The shared runtime of ``cfg`` (built on first use)."""
    key = _runtime_key(cfg)
    rt = _RUNTIMES.get(key)
    if rt is None:
        rt = _RUNTIMES[key] = Runtime(cfg)
    return rt


async def aclose(cfg: MeasureConfig | None = None) -> None:
    """Close the shared DoH clients of the running loop (call once at the end of a run)."""
    for key, rt in list(_RUNTIMES.items()):
        if cfg is None or key == _runtime_key(cfg):
            await rt.aclose()
