"""The run's network identity: learned at the start, checked again during and at the end.

It owns the scrubber that removes the probe's own addresses from every stored record: the
public addresses the identity checks learned, and the local address of every socket the probe
opened (:mod:`probe.measure.localaddrs`), whether or not the public address is known. An
address learned or used later is scrubbed from then on.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from probe.core.errors import ProbeError
from probe.measure import identity, localaddrs
from probe.run.scrub import Scrubber
from probe.run.summary import Reporter

if TYPE_CHECKING:
    from probe.core.settings import IdentityConfig
    from probe.measure.identity import Identity

__all__ = ["IdentityUnknownError", "NetworkWatch"]


class IdentityUnknownError(ProbeError):
    """The public address stayed unknown and the run was told to measure only when it is
    known (``RunSettings.require_identity``); nothing was measured."""


class NetworkWatch:
    """Who the run is on the network (``start``) and whether that changed (``changed``)."""

    def __init__(self, start: Identity, config: IdentityConfig | None, resolvers: Sequence[str],
                 geo: Any, reporter: Reporter, *, helpers: Sequence[str] = (),
                 tls: Callable[[], Any] | None = None) -> None:
        self.start = start
        self.config = config
        self.resolvers = list(resolvers)
        self.helpers = tuple(helpers)
        self.tls = tls
        self.geo = geo
        self.reporter = reporter
        self._learned: frozenset[str] = start.public_ips | start.local_ips
        self._generation = -1  # of localaddrs, when the scrubber was last built
        self._scrubber = Scrubber(())
        self.record: dict[str, Any] = {"start": self.scrubber.record(start.record()), "checks": []}
        self.changed = False
        self._end: asyncio.Task[None] | None = None

    @property
    def scrubber(self) -> Scrubber:
        """The scrubber of every address known now: learned, and used by the probe's sockets.

        Read right before a measurement is stored, when its own sockets have noted their local
        addresses; rebuilt only when an address is new (a few times per run).
        """
        generation = localaddrs.generation()
        if generation != self._generation:
            self._generation = generation
            self._scrubber = Scrubber(self._learned | localaddrs.seen())
        return self._scrubber

    async def check(self, when: str) -> None:
        """Learn the identity again; note a change; scrub any new address from now on."""
        if self.config is None:
            return
        now = await identity.discover(self.resolvers, self.config, self.geo,
                                      helpers=self.helpers, tls=self.tls)
        new = (now.public_ips | now.local_ips) - self._learned
        if new:
            self._learned |= new
            self._generation = -1  # rebuilt on next use
        # Both checks must have learned the address: a failed STUN request is not a new network.
        changed = now.known and self.start.known and not now.same_network(self.start)
        self.changed = self.changed or changed
        self.record["checks"].append(
            {"when": when, "changed": changed, **self.scrubber.record(now.record())}
        )
        if changed:
            self.reporter.problem(f"warning: the network changed during the run ({now.describe()})")

    def start_end_check(self) -> None:
        """Start the end-of-run check now: the last URL is out, its answers are yet to come.

        Its round trips then overlap the last measurements instead of following them.
        """
        if self.config is not None and self._end is None:
            self._end = asyncio.ensure_future(self.check("end"))

    async def end_check(self) -> None:
        """Finish the end-of-run check (started now unless :meth:`start_end_check` did)."""
        self.start_end_check()
        if self._end is not None:
            await self._end

    async def drop_end_check(self) -> None:
        """Stop an end-of-run check still running (the run did not complete)."""
        task, self._end = self._end, None
        if task is not None and not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def periodically(self, interval: float) -> None:
        """Check every ``interval`` seconds until cancelled."""
        while True:
            await asyncio.sleep(interval)  # a timer between checks, not a synchronisation
            await self.check("periodic")
