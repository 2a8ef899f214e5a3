"""Run a measurement campaign: stream targets, measure concurrently, classify, store.

The runner owns policy, not measurement: bounded concurrency, a per-host limit, the retry rule
(a probe-side failure while the control succeeded is measured again before it becomes a
verdict), the pre-flight network check, and one writer that batches results into the store.
Targets are pulled from the lists only when a slot is free, and results leave memory as soon as
they are written, so memory stays flat however long the list is.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

from probe.model import Measurement, Target, Verdict
from probe.settings import MeasureConfig, RunSettings

__all__ = [
    "NoControlError",
    "NoNetworkError",
    "Reporter",
    "RunSummary",
    "preflight",
    "run",
    "run_sync",
]

# Writer batching: big enough to amortise the transaction, small enough that a kill loses
# little (at most the URLs in flight plus one flush interval).
_BATCH_MAX = 256
_FLUSH_INTERVAL = 0.25
# Measured URLs waiting for the writer beyond which no new URL starts: when the disk is slower
# than the network, measuring slows down instead of memory growing with the list.
_BACKLOG_MAX = 4 * _BATCH_MAX


class NoNetworkError(Exception):
    """The pre-flight check found no working network; nothing was measured."""


class NoControlError(Exception):
    """No configured control answered the pre-flight check and the run was not allowed to
    measure without one (``RunSettings.allow_no_control``); nothing was measured."""


@dataclass
class RunSummary:
    """What a run did, for the summary table and the exit status."""

    run_id: int
    status: str  # complete | interrupted | offline | failed
    measured: int = 0
    verdicts: Counter[str] = field(default_factory=Counter)
    problems: int = 0
    errors: int = 0  # URLs lost to a bug in probe (reported as they happen)
    started: float = 0.0
    finished: float = 0.0
    vantage: str = ""
    network: str = ""  # one line describing the network identity (no addresses)
    network_changed: bool | None = None  # None: not checked at the end

    @property
    def elapsed(self) -> float:
        return max(0.0, self.finished - self.started)


class Reporter(Protocol):
    """Receives progress events; the CLI draws a bar or writes log lines from them.

    ``measuring`` and ``settled`` bracket each URL (all its attempts), so that a display can
    name the URLs still in flight when a run waits on slow ones; ``result`` comes in between
    with the final verdict when there is one. A reporter written before these two existed
    still works: the runner calls them only when they are there.
    """

    def started(self, run_id: int, total: int | None) -> None: ...
    def measuring(self, target: Target) -> None: ...
    def result(self, target: Target, verdict: Verdict) -> None: ...
    def settled(self, target: Target) -> None: ...
    def problem(self, message: str) -> None: ...


def _ignore(target: Target) -> None:
    pass


class _NullReporter:
    def started(self, run_id: int, total: int | None) -> None:
        pass

    def measuring(self, target: Target) -> None:
        pass

    def settled(self, target: Target) -> None:
        pass

    def result(self, target: Target, verdict: Verdict) -> None:
        pass

    def problem(self, message: str) -> None:
        pass


async def preflight(
    cfg: Any, controls: Iterable[str], timeout: float = 3.0, reachable: list[str] | None = None
) -> list[str]:
    """Check that the network works at all: some resolver answers or some control is reachable.

    Returns the list of things that failed; raises :class:`NoNetworkError` when nothing works.
    Any DNS reply (even NXDOMAIN or REFUSED) proves that a resolver is reachable. The controls
    that answered are appended to ``reachable`` when given.
    """
    from probe.netcheck import dns_server_reachable, resolver_addresses

    failed: list[str] = []
    resolvers = resolver_addresses(cfg)
    controls = list(controls)

    async def check_resolver(server: str) -> bool:
        ok = await dns_server_reachable(server, timeout)
        if not ok:
            failed.append(f"resolver {server} did not answer")
        return ok

    async def check_control(url: str) -> bool:
        ok = await _control_reachable(url, timeout, getattr(cfg, "cafile", None))
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


async def _control_reachable(url: str, timeout: float, cafile: str | None) -> bool:
    import httpx

    from probe.netcheck import health_url

    try:
        verify: Any = True
        if cafile:
            import ssl

            verify = ssl.create_default_context(cafile=cafile)
        async with httpx.AsyncClient(timeout=timeout, verify=verify, trust_env=False) as client:
            await client.get(health_url(url))
        return True  # any HTTP answer proves the path works
    except Exception:
        return False


# Settings that name files: results record the file's name only, never its directories (home
# directories carry user names, and result databases are shared).
_PATH_SETTINGS = frozenset({"db", "cafile", "geo", "fingerprints", "resolv_conf"})


def _file_name(value: Any) -> Any:
    if isinstance(value, list | tuple):
        return [_file_name(v) for v in value]
    return Path(value).name if value else value


def recorded_options(options: RunSettings, cfg: MeasureConfig) -> dict[str, Any]:
    """The run's settings as ``runs.options`` stores them: file settings by file name only."""
    out: dict[str, Any] = {}
    for key, value in asdict(options).items():
        out[key] = _file_name(value) if key in _PATH_SETTINGS else value
    measure = asdict(cfg)
    measure.pop("connect_policy", None)
    out["measure"] = {k: (_file_name(v) if k in _PATH_SETTINGS else v) for k, v in measure.items()}
    return out


class _Limiter:
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


async def run(
    targets: Iterator[Target],
    options: RunSettings,
    reporter: Reporter | None = None,
    total: int | None = None,
    stop: asyncio.Event | None = None,
    *,
    config: MeasureConfig | None = None,
    lists: Sequence[str] = (),
    measure: Callable[..., Any] | None = None,
    classify: Callable[..., Verdict] | None = None,
) -> RunSummary:
    """Measure every target, classify it and store it. Never raises for network failures.

    ``stop``, when set, ends the run early: targets in flight are cancelled, everything already
    measured is written, and the run is recorded as interrupted. ``measure`` and ``classify``
    default to probe's own (:func:`probe.observe.measure`, :func:`probe.classify.classify`);
    passing others lets researchers and tests drive the same policy with their own steps. A
    verdict with ``retryable`` set is measured again (up to ``retries`` times). ``config`` says
    how each URL is measured (default: :class:`MeasureConfig`'s defaults); ``lists`` is what the
    run records as its lists.
    """
    from probe.fingerprints import load_fingerprints
    from probe.store import Store

    if measure is None:
        from probe.observe import measure as measure_fn
    else:
        measure_fn = measure
    if classify is None:
        from probe.classify import classify as classify_fn
    else:
        classify_fn = classify

    reporter = reporter or _NullReporter()
    cfg = config or MeasureConfig()
    store = Store.open(options.db)
    fingerprints = load_fingerprints(options.fingerprints)
    from probe.geo import GeoDB, open_default_geo

    # The database `probe geo update` downloaded is used unless --geo names another.
    geo = GeoDB.open(options.geo) if options.geo else open_default_geo()

    from probe.identity import Identity, discover, vantage_name
    from probe.netcheck import resolver_addresses
    from probe.scrub import Scrubber

    resolvers = resolver_addresses(cfg)
    # Who we are on the network, before anything is stored: the public address (STUN) and the
    # resolver's egress (whoami). Only what they map to is stored; the addresses feed the
    # scrubber, which removes them from every stored measurement.
    ident = await discover(resolvers, options.identity, geo) if options.identity else Identity()
    ident = _apply_overrides(ident, options)
    scrubber = Scrubber(ident.public_ips | ident.local_ips)
    name = options.vantage or (vantage_name(ident) if ident.asn or ident.country else "default")
    if options.resume is not None:
        # Continue an interrupted run: same run id and vantage point; what it stored (a final
        # verdict) is not measured again, so the run ends with no duplicate URL.
        run_id, vantage_id = store.resume_run(options.resume)
        from probe.urlset import URLSet

        done = URLSet()
        for url in store.final_urls(run_id):
            done.add(url)
        if total is not None:
            total = max(0, total - len(done))
        targets = (t for t in targets if t.url not in done)
    else:
        vantage_id = store.vantage(
            name, resolver=",".join(resolvers), asn=ident.asn or None, as_org=ident.as_org or None,
            country=ident.country or None, network=options.network,
            resolver_asn=ident.resolver_asn or None, resolver_as_org=ident.resolver_as_org or None,
        )
        run_id = store.start_run(vantage_id, list(lists), recorded_options(options, cfg))
    identity_record: dict[str, Any] = {"start": scrubber.record(ident.record()), "checks": []}
    if options.resume is not None:
        identity_record["resumed"] = True  # the identity of the network the run resumed on
    store.set_run_identity(run_id, identity_record)
    summary = RunSummary(run_id=run_id, status="running", started=time.time(), vantage=name,
                         network=ident.describe() if options.identity is not None else "")

    controls = options.controls
    if options.preflight:
        answered: list[str] = []
        try:
            for message in await preflight(cfg, options.controls, reachable=answered):
                reporter.problem(f"warning: {message}")
        except NoNetworkError as exc:
            store.finish_run(run_id, "offline")
            summary.status = "offline"
            summary.finished = time.time()
            raise NoNetworkError(
                f"no network: {exc}. Nothing was measured; run {run_id} is recorded as offline."
            ) from None
        if controls and not answered:
            # Every verdict would be inconclusive: a cron job must notice, not exit 0.
            if not options.allow_no_control:
                store.finish_run(run_id, "failed")
                summary.status = "failed"
                summary.finished = time.time()
                raise NoControlError(
                    f"no control answers ({', '.join(controls)}): every verdict would be "
                    f"inconclusive. Nothing was measured; run {run_id} is recorded as failed. "
                    "Use --allow-no-control to measure with local proofs only, or --no-control."
                )
            reporter.problem("warning: no control answers; measuring with local proofs only")
            controls = ()

    cap = _open_capture(options, run_id, reporter)
    reporter.started(run_id, total)
    queue: asyncio.Queue[tuple[Measurement, Verdict, bool] | None] = asyncio.Queue()
    stop = stop or asyncio.Event()

    room = asyncio.Event()  # set whenever the writer has taken a batch off the queue
    write_failure: Exception | None = None
    stored = 0  # URLs whose final attempt is committed
    loop = asyncio.get_running_loop()

    async def writer() -> None:
        nonlocal write_failure, stored
        try:
            done = False
            while not done:
                batch: list[tuple[Measurement, Verdict, bool]] = []
                item = await queue.get()
                deadline = loop.time() + _FLUSH_INTERVAL
                while True:
                    if item is None:
                        done = True
                        break
                    batch.append(item)
                    if len(batch) >= _BATCH_MAX:
                        break
                    # Take what is already queued in one go: each awaited get() costs an
                    # event-loop iteration, and a loop busy with 64 measurements then drains
                    # the queue more slowly than it fills (memory grew with the list).
                    try:
                        item = queue.get_nowait()
                        continue
                    except asyncio.QueueEmpty:
                        pass
                    timeout = deadline - loop.time()
                    if timeout <= 0:
                        break
                    try:
                        item = await asyncio.wait_for(queue.get(), timeout)
                    except TimeoutError:
                        break
                room.set()
                if batch:
                    # Off the event loop: a batch costs milliseconds of CPU that the measurements
                    # in flight should not wait for. Only this task writes: no contention.
                    try:
                        await asyncio.to_thread(store.write, run_id, vantage_id, batch)
                    except Exception as exc:  # disk full, read-only file, I/O error, ...
                        # Measuring on cannot be stored: stop the run, keep what is committed.
                        write_failure = exc
                        stop.set()
                        return
                    stored += sum(1 for item in batch if item[2])
        finally:
            room.set()  # a writer that stopped must not leave the producer waiting for room

    control_ctx: Any = contextlib.nullcontext(None)
    if controls:
        from probe.control.client import ControlClient

        control_ctx = ControlClient(
            controls, timeout=options.control_timeout, cafile=getattr(cfg, "cafile", None)
        )

    limiter = _Limiter(options.per_host)
    slots = asyncio.Semaphore(options.concurrency)

    on_measuring: Callable[[Target], Any] = getattr(reporter, "measuring", _ignore)
    on_settled: Callable[[Target], Any] = getattr(reporter, "settled", _ignore)

    async def one(target: Target, control: Any) -> None:
        on_measuring(target)
        try:
            await measure_one(target, control)
        finally:
            on_settled(target)

    async def measure_one(target: Target, control: Any) -> None:
        held = True  # the producer acquired a global slot for this task

        async def attempt_once(attempt: int) -> Measurement:
            # Slots are released as soon as the foreground steps are done (on_ready): the DNS
            # late-reply window then runs on without holding a slot or the host's share.
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
                return await measure_fn(target, cfg, control, attempt=attempt, on_ready=release)
            finally:
                release()

        try:
            m = await attempt_once(0)
            v = classify_fn(m, fingerprints=fingerprints, geo=geo)
            for attempt in range(1, options.retries + 1):
                if not v.retryable:
                    break
                await queue.put((scrubber.record(m), scrubber.record(v), False))
                await asyncio.sleep(options.retry_pause)
                m = await attempt_once(attempt)
                v = classify_fn(m, fingerprints=fingerprints, geo=geo)
            # Judged on what was seen; stored without the probe's own addresses.
            m, v = scrubber.record(m), scrubber.record(v)
        except Exception as exc:
            # Network failures are data and never get here; this is a bug in probe. Say so
            # loudly for this URL and keep measuring the others.
            summary.errors += 1
            reporter.problem(f"error: probe failed on {target.url}: {exc!r} (please report)")
            return
        await queue.put((m, v, True))
        summary.measured += 1
        summary.verdicts[v.verdict] += 1
        reporter.result(target, v)

    writer_task = asyncio.create_task(writer())
    network_changed = False

    async def check_identity(when: str) -> None:
        """Learn the identity again; note a change; scrub any new address from now on."""
        nonlocal scrubber, network_changed
        if options.identity is None:
            return
        now = await discover(resolvers, options.identity, geo)
        new = (now.public_ips | now.local_ips) - scrubber.addresses
        if new:
            scrubber = Scrubber(scrubber.addresses | new)
        # Both checks must have learned the address: a failed STUN request is not a new network.
        changed = now.known and ident.known and not now.same_network(ident)
        network_changed = network_changed or changed
        identity_record["checks"].append(
            {"when": when, "changed": changed, **scrubber.record(now.record())}
        )
        if changed:
            reporter.problem(f"warning: the network changed during the run ({now.describe()})")

    async def recheck_periodically(interval: float) -> None:
        while True:
            await asyncio.sleep(interval)  # a timer between checks, not a synchronisation
            await check_identity("periodic")

    checker: asyncio.Task[None] | None = None
    if options.identity is not None and options.identity.recheck_interval > 0:
        checker = asyncio.create_task(recheck_periodically(options.identity.recheck_interval))

    async def admit() -> None:
        while queue.qsize() >= _BACKLOG_MAX and not writer_task.done():
            room.clear()
            await room.wait()
        await slots.acquire()

    tasks: set[asyncio.Task[None]] = set()
    status = "complete"
    try:
        async with control_ctx as control:
            for target in targets:
                acquire = asyncio.ensure_future(admit())
                stopper = asyncio.ensure_future(stop.wait())
                await asyncio.wait({acquire, stopper}, return_when=asyncio.FIRST_COMPLETED)
                stopper.cancel()
                if stop.is_set():
                    if acquire.done():
                        slots.release()
                    else:
                        acquire.cancel()
                    status = "interrupted"
                    break
                task = asyncio.create_task(one(target, control))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
            if tasks and status == "complete":
                waiter = asyncio.ensure_future(asyncio.wait(set(tasks)))
                stopper = asyncio.ensure_future(stop.wait())
                await asyncio.wait({waiter, stopper}, return_when=asyncio.FIRST_COMPLETED)
                stopper.cancel()
                if stop.is_set():
                    status = "interrupted"
                waiter.cancel()
    except asyncio.CancelledError:
        status = "interrupted"
    except BaseException:
        status = "failed"
        raise
    finally:
        for task in list(tasks):
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        await queue.put(None)
        await writer_task
        if cap is not None:
            from probe.observe import capture

            capture.set_active(None)
            cap.close()
        from probe.observe import aclose

        await aclose(cfg)
        if checker is not None:
            checker.cancel()
            await asyncio.gather(checker, return_exceptions=True)
        if write_failure is not None:
            status = "failed"
        checked_end = False
        if options.identity is not None and status == "complete":
            # Did the run end on the network it started on? (An interrupted run ends at once.)
            await check_identity("end")
            checked_end = True
        if options.identity is not None and write_failure is None:
            summary.network_changed = network_changed if checked_end else (network_changed or None)
            store.set_run_identity(run_id, identity_record, network_changed=summary.network_changed)
        summary.status = status
        summary.finished = time.time()
        recorded = True
        try:
            store.finish_run(run_id, status)
        except Exception:
            if write_failure is None:
                raise
            recorded = False  # the same disk problem, most likely; the cause is raised below
    if write_failure is not None:
        from probe.store import StoreError

        raise StoreError(
            f"{options.db}: cannot write results ({write_failure}); the run stopped after "
            f"{stored} URLs were stored"
            + (f"; run {run_id} is recorded as failed" if recorded else "")
        ) from write_failure
    return summary


def _apply_overrides(ident: Any, options: RunSettings) -> Any:
    """The identity with ``--asn`` / ``--country`` applied (the user knows best)."""
    import dataclasses

    changes: dict[str, Any] = {}
    if options.asn is not None and options.asn != ident.asn:
        changes.update(asn=options.asn, as_org="")  # the found organisation was another AS's
    if options.country:
        changes["country"] = options.country.upper()
    return dataclasses.replace(ident, **changes) if changes else ident


def _open_capture(options: RunSettings, run_id: int, reporter: Reporter) -> Any:
    """The run's packet capture, or None (without privileges: one warning, and no capture)."""
    if not (options.capture or options.pcap):
        return None
    from probe.observe import capture

    pcap = None
    if options.pcap:
        Path(options.pcap).mkdir(parents=True, exist_ok=True)
        pcap = Path(options.pcap) / f"run-{run_id}.pcap"
    try:
        cap = capture.Capture.open(pcap)
    except capture.CaptureUnavailable as exc:
        reporter.problem(f"warning: {exc}; measuring without capture")
        return None
    capture.set_active(cap)
    return cap


def run_sync(
    targets: Iterator[Target],
    options: RunSettings,
    reporter: Reporter | None = None,
    total: int | None = None,
    *,
    config: MeasureConfig | None = None,
    lists: Sequence[str] = (),
) -> RunSummary:
    """Run from synchronous code; SIGINT, SIGTERM and SIGHUP end the run cleanly as
    interrupted."""

    async def main() -> RunSummary:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        # SIGHUP too: a closed terminal or a stopped session ends the run as interrupted
        # (everything measured is kept) instead of killing it mid-batch.
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(sig, stop.set)
        return await run(targets, options, reporter, total, stop, config=config, lists=lists)

    return asyncio.run(main())
