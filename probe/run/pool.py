"""The measurer pool: bounded concurrency, a per-host limit, classification and retries.

Each target runs as its own task holding a global slot and its host's share while its
foreground steps and its control run; both are released at ``on_ready`` (the DNS late-reply
window then runs on in the background without holding them). A verdict with ``retryable`` set
is measured again, up to ``retries`` times; every attempt goes to the writer, the last one
marked final.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from probe.core.model import Measurement, Target, Verdict
from probe.run.summary import Reporter, RunSummary
from probe.run.watch import NetworkWatch
from probe.run.writer import Writer

__all__ = ["HostLimiter", "MeasurerPool"]

MeasureFn = Callable[..., Awaitable[Measurement]]
ClassifyFn = Callable[..., Verdict]


class HostLimiter:
    """Per-host semaphores that disappear when idle, so memory does not grow with the list."""

    def __init__(self, per_host: int) -> None:
        self.per_host = per_host
        self._sems: dict[str, tuple[asyncio.Semaphore, int]] = {}

    async def acquire(self, host: str) -> None:
        sem, users = self._sems.get(host) or (asyncio.Semaphore(self.per_host), 0)
        self._sems[host] = (sem, users + 1)
        try:
            await sem.acquire()
        except BaseException:
            self._forget(host)
            raise

    def release(self, host: str) -> None:
        self._sems[host][0].release()
        self._forget(host)

    def _forget(self, host: str) -> None:
        sem, users = self._sems[host]
        if users <= 1:
            del self._sems[host]
        else:
            self._sems[host] = (sem, users - 1)


def _ignore(target: Target) -> None:
    pass


class MeasurerPool:
    """Measures targets concurrently and hands every attempt to the writer."""

    def __init__(
        self,
        *,
        concurrency: int,
        per_host: int,
        retries: int,
        retry_pause: float,
        measure: MeasureFn,
        classify: ClassifyFn,
        cfg: Any,
        control: Any,
        fingerprints: Any,
        geo: Any,
        watch: NetworkWatch,
        writer: Writer,
        reporter: Reporter,
        summary: RunSummary,
    ) -> None:
        self.slots = asyncio.Semaphore(concurrency)
        self.limiter = HostLimiter(per_host)
        self.retries = retries
        self.retry_pause = retry_pause
        self._measure = measure
        self._classify = classify
        self.cfg = cfg
        self.control = control
        self.fingerprints = fingerprints
        self.geo = geo
        self.watch = watch
        self.writer = writer
        self.reporter = reporter
        self.summary = summary
        # Reporters written before these two events existed still work.
        self._on_measuring: Callable[[Target], Any] = getattr(reporter, "measuring", _ignore)
        self._on_settled: Callable[[Target], Any] = getattr(reporter, "settled", _ignore)

    async def admit(self) -> None:
        """Wait until the writer has room and a slot is free; the slot goes to :meth:`measure`."""
        await self.writer.wait_for_room()
        await self.slots.acquire()

    async def measure(self, target: Target) -> None:
        """Measure ``target`` (holding the slot :meth:`admit` took) until its verdict is final."""
        self._on_measuring(target)
        try:
            await self._measure_one(target)
        finally:
            self._on_settled(target)

    async def _measure_one(self, target: Target) -> None:
        held = True  # admit() acquired a global slot for this target
        slots, limiter = self.slots, self.limiter

        async def attempt_once(attempt: int) -> Measurement:
            # Slots are released as soon as the foreground steps and the control are done
            # (on_ready): the DNS late-reply window then runs on without holding a slot or the
            # host's share.
            nonlocal held
            if not held:
                await slots.acquire()
                held = True
            try:
                await limiter.acquire(target.host)
            except BaseException:
                slots.release()
                held = False
                raise
            released = False

            def release() -> None:
                nonlocal released, held
                if not released:
                    released, held = True, False
                    limiter.release(target.host)
                    slots.release()

            try:
                return await self._measure(target, self.cfg, self.control, attempt=attempt,
                                           on_ready=release)
            finally:
                release()

        def judge(m: Measurement) -> Verdict:
            return self._classify(m, fingerprints=self.fingerprints, geo=self.geo)

        try:
            m = await attempt_once(0)
            v = judge(m)
            for attempt in range(1, self.retries + 1):
                if not v.retryable:
                    break
                scrub = self.watch.scrubber
                await self.writer.put((scrub.record(m), scrub.record(v), False))
                await asyncio.sleep(self.retry_pause)
                m = await attempt_once(attempt)
                v = judge(m)
            # Judged on what was seen; stored without the probe's own addresses.
            scrub = self.watch.scrubber
            m, v = scrub.record(m), scrub.record(v)
        except Exception as exc:
            # Network failures are data and never get here; this is a bug in probe. Say so
            # loudly for this URL and keep measuring the others.
            self.summary.errors += 1
            self.reporter.problem(f"error: probe failed on {target.url}: {exc!r} (please report)")
            return
        await self.writer.put((m, v, True))
        self.summary.measured += 1
        self.summary.verdicts[v.verdict] += 1
        for p in v.protocols:  # --quic, --ech: counted apart from the web verdicts
            self.summary.protocols[f"{p.suite}:{p.verdict}"] += 1
        self.reporter.result(target, v)
