"""One run from start to end: record it, check the network, then producer -> pool -> writer.

:func:`run` sets the parts up (the run's record, the network identity, the pre-flight check,
the control client), runs them on one :class:`asyncio.TaskGroup` until the targets are done or
``stop`` is set, and closes the run with its status. Everything measured is written, whatever
ends the run.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import importlib
import signal
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from probe.core.model import Target, Verdict
from probe.core.settings import MeasureConfig, RunSettings
from probe.host import eventloop, httpstack
from probe.host.heap import steady_heap
from probe.inputs.fingerprints import load_fingerprints
from probe.inputs.geo import GeoDB, open_default_geo
from probe.measure import identity
from probe.measure.identity import Identity, vantage_name
from probe.measure.netcheck import resolver_addresses
from probe.run.pool import MeasurerPool
from probe.run.preflight import NoControlError, NoNetworkError, offline_error, preflight
from probe.run.producer import produce, unmeasured
from probe.run.summary import NullReporter, Reporter, RunSummary
from probe.run.watch import IdentityUnknownError, NetworkWatch
from probe.run.writer import Writer, recorded_options
from probe.store import Store, StoreError

if TYPE_CHECKING:
    from probe.measure.control.client import ControlClient

__all__ = ["run", "run_sync"]


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
    store: Store | None = None,
    selection: Mapping[str, Any] | None = None,
) -> RunSummary:
    """Measure every target, classify it and store it. Never raises for network failures.

    ``stop``, when set, ends the run early: targets in flight are cancelled, everything already
    measured is written, and the run is recorded as interrupted. ``measure`` and ``classify``
    default to probe's own (:func:`probe.measure.measure`, :func:`probe.judge.classify.classify`);
    passing others lets researchers and tests drive the same policy with their own steps. A
    verdict with ``retryable`` set is measured again (up to ``retries`` times). ``config`` says
    how each URL is measured (default: :class:`MeasureConfig`'s defaults); ``lists`` is what the
    run records as its lists, ``selection`` what it records of its selection for a later
    ``--resume`` (:func:`probe.run.resume.selection_record`). ``store`` is where results go
    (the caller keeps it open); by default the run opens ``options.db`` and closes it at the
    end.
    """
    if store is not None:
        return await _run(targets, options, reporter, total, stop, config, lists, measure,
                          classify, store, selection)
    with Store.open(options.db, check=True) as opened:
        return await _run(targets, options, reporter, total, stop, config, lists, measure,
                          classify, opened, selection)


async def _run(
    targets: Iterable[Target],
    options: RunSettings,
    reporter: Reporter | None,
    total: int | None,
    stop: asyncio.Event | None,
    config: MeasureConfig | None,
    lists: Sequence[str],
    measure: Callable[..., Any] | None,
    classify: Callable[..., Verdict] | None,
    store: Store,
    selection: Mapping[str, Any] | None,
) -> RunSummary:
    reporter = reporter or NullReporter()
    cfg = config or MeasureConfig()
    stop = stop or asyncio.Event()
    writer = Writer(store, stop)
    fingerprints = load_fingerprints(options.fingerprints)  # a bad file: before any packet
    # The database `probe geo update` downloaded is used unless --geo names another.
    geo = GeoDB.open(options.geo) if options.geo else open_default_geo()

    resolvers = resolver_addresses(cfg)
    # Who we are on the network, before anything is stored: the public address (STUN) and the
    # resolver's egress (whoami). Only what they map to is stored; the addresses feed the
    # scrubber, which removes them from every stored measurement. The pre-flight check runs at
    # the same time (both only wait on the network); its outcome is acted on below, once the
    # run is recorded. While they wait on their round trips, the run imports what it measures
    # with (CPU work that would otherwise come before or after them).
    tls = functools.partial(_verifying, cfg)  # called only for an https helper
    checks = asyncio.gather(
        identity.discover(resolvers, options.identity, geo, helpers=options.controls, tls=tls)
        if options.identity else _no_identity(),
        _preflight(options, cfg),
    )
    try:
        await _warm_up(_WARM_UP + (_WARM_UP_CONTROL if options.controls else ()))
        ident, checked = await checks
    except BaseException:
        checks.cancel()
        raise
    # The engine and the classifier were imported by _warm_up, during the checks: the import
    # here only binds them (and a run without the checks imports them here).
    if measure is None:
        from probe.measure.engine import measure as measure_fn
    else:
        measure_fn = measure
    if classify is None:
        from probe.judge.classify import classify as classify_fn
    else:
        classify_fn = classify
    ident = _apply_overrides(ident, options)
    watch = NetworkWatch(ident, options.identity, resolvers, geo, reporter,
                         helpers=options.controls, tls=tls)
    name = options.vantage or (vantage_name(ident) if ident.asn or ident.country else "default")
    if options.resume is not None:
        # Continue an interrupted run: same run id and vantage point; what it stored (a final
        # verdict) is not measured again, so the run ends with no duplicate URL.
        done = writer.resume_run(options.resume)
        name = writer.vantage_name  # the run's own, whatever the network says now
        if total is not None:
            total = max(0, total - len(done))
        targets = unmeasured(targets, done)
        watch.record["resumed"] = True  # the identity of the network the run resumed on
    else:
        writer.start_run(name, dict(
            resolver=",".join(resolvers), asn=ident.asn or None, as_org=ident.as_org or None,
            country=ident.country or None, network=options.network,
            resolver_asn=ident.resolver_asn or None, resolver_as_org=ident.resolver_as_org or None,
        ), list(lists), {**recorded_options(options, cfg),
                         **({"selection": dict(selection)} if selection is not None else {})})
    run_id = writer.run_id
    writer.set_identity(watch.record)
    summary = RunSummary(run_id=run_id, status="running", started=time.time(), vantage=name,
                         network=ident.describe() if options.identity is not None else "",
                         address_unknown=ident.unknown_why if options.identity is not None else "")

    controls = _check_network(checked, options, writer, summary, reporter)
    _check_identity(ident, options, writer, summary, reporter)
    cap = _open_capture(options, run_id, reporter, watch)
    reporter.started(run_id, total)

    control_ctx: contextlib.AbstractAsyncContextManager[ControlClient | None] = (
        contextlib.nullcontext(None))
    if controls:
        # After the checks, as the engine: importing these (aiohttp, the TLS contexts) before
        # would delay the checks' first packets.
        from probe.measure.control.client import ControlClient
        from probe.measure.runtime import runtime

        control_ctx = ControlClient(
            controls, timeout=options.control_timeout, cafile=getattr(cfg, "cafile", None),
            ssl_context=runtime(cfg).tls.verifying,  # the engine's: one trust policy, built once
            quic=getattr(cfg, "quic", False), ech=getattr(cfg, "ech", False),
            ech_sni=getattr(cfg, "ech_sni", ""),
        )

    status = "failed"
    try:
        async with control_ctx as control:
            pool = MeasurerPool(
                concurrency=options.concurrency, per_host=options.per_host,
                retries=options.retries, retry_pause=options.retry_pause, measure=measure_fn,
                classify=classify_fn, cfg=cfg, control=control, fingerprints=fingerprints,
                geo=geo, watch=watch, writer=writer, reporter=reporter, summary=summary,
            )
            with steady_heap():  # everything long-lived is loaded by now
                status = await _drive(targets, pool, writer, watch, options, stop)
    finally:
        if cap is not None:
            from probe.measure import capture  # only runs that capture import it (below)
            capture.set_active(None)
            cap.close()
        from probe.measure.engine import aclose  # imported already unless no URL was measured
        await aclose(cfg)
        status = await _close(status, writer, watch, options, summary)
    return summary


async def _drive(targets: Iterable[Target], pool: MeasurerPool, writer: Writer,
                 watch: NetworkWatch, options: RunSettings, stop: asyncio.Event) -> str:
    """Run the producer, the pool and the writer until the targets are done or ``stop``.

    Returns the run's status; an error that is not a measurement's (reading the lists) is
    raised after everything measured is written.
    """
    status = "complete"
    error: BaseException | None = None  # raised once the TaskGroup is closed, not wrapped by it
    async with asyncio.TaskGroup() as tasks:
        writer.start(tasks)
        checker: asyncio.Task[None] | None = None
        if options.identity is not None and options.identity.recheck_interval > 0:
            checker = tasks.create_task(watch.periodically(options.identity.recheck_interval))
        # The end-of-run identity check starts once the last URL is out (a run that then
        # does not complete drops it): its round trips overlap the last measurements.
        producing = asyncio.ensure_future(produce(targets, pool, watch.start_end_check))
        stopping = asyncio.ensure_future(stop.wait())
        try:
            await asyncio.wait({producing, stopping}, return_when=asyncio.FIRST_COMPLETED)
            if stop.is_set():
                status = "interrupted"
            elif not producing.cancelled():
                error = _first(producing.exception())
        except asyncio.CancelledError:
            status = "interrupted"  # the run itself was cancelled: keep what it measured
        finally:
            stopping.cancel()
            if not producing.done():
                producing.cancel()  # cancels the measurements in flight
            await asyncio.wait({producing})
            if checker is not None:
                checker.cancel()
            await writer.close()  # everything measured is written, whatever ended the run
    if error is not None:
        raise error
    return status


def _first(exc: BaseException | None) -> BaseException | None:
    """The error itself, out of the exception groups TaskGroups wrap it in."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc


async def _close(status: str, writer: Writer, watch: NetworkWatch, options: RunSettings,
                 summary: RunSummary) -> str:
    """Record the run's end: its final identity check, its status; raise a write failure."""
    if writer.failure is not None:
        status = "failed"
    checked_end = False
    if options.identity is not None and status == "complete":
        # Did the run end on the network it started on? (An interrupted run ends at once.)
        await watch.end_check()
        checked_end = True
    else:
        await watch.drop_end_check()
    if options.identity is not None and writer.failure is None:
        summary.network_changed = watch.changed if checked_end else (watch.changed or None)
        writer.set_identity(watch.record, network_changed=summary.network_changed)
    summary.status = status
    summary.finished = time.time()
    recorded = True
    try:
        writer.finish_run(status)
    except Exception:
        if writer.failure is None:
            raise
        recorded = False  # the same disk problem, most likely; the cause is raised below
    if writer.failure is not None:
        raise StoreError(
            f"{options.db}: cannot write results ({writer.failure}); the run stopped after "
            f"{writer.stored} URLs were stored"
            + (f"; run {summary.run_id} is recorded as failed" if recorded else "")
        ) from writer.failure
    return status


@dataclasses.dataclass(frozen=True)
class _Checked:
    """What the pre-flight check found: its warnings, the controls that answered, or no network."""

    warnings: tuple[str, ...] = ()
    answered: tuple[str, ...] = ()
    offline: str | None = None  # why nothing works (NoNetworkError's message)


async def _preflight(options: RunSettings, cfg: MeasureConfig) -> _Checked | None:
    """Run the pre-flight check (None: the options want none); never raises NoNetworkError."""
    if not options.preflight:
        return None
    answered: list[str] = []
    try:
        warnings = await preflight(cfg, options.controls, reachable=answered)
    except NoNetworkError as exc:
        return _Checked(offline=str(exc))
    return _Checked(warnings=tuple(warnings), answered=tuple(answered))


#: What a run imports to measure, ~0.2 s of CPU together, in the order they build on each
#: other (httpx and httpcore first, through probe.host.httpstack); and what the control client
#: adds (aiohttp, ~0.1 s) when a control is in use.
_WARM_UP = ("probe.measure.engine", "probe.judge.classify")
_WARM_UP_CONTROL = ("aiohttp",)
#: The pause before each import: time for the network checks' tasks to take their next step
#: (a thread's address lookup, a connect, a send), so that their round trips run during the
#: imports. It orders work for speed only: nothing depends on what happened in it.
_STEP = 0.002


async def _warm_up(modules: Sequence[str]) -> None:
    """Import ``modules`` one at a time, letting the loop run between them."""
    steps: list[Callable[[], object]] = [httpstack.load]
    steps += [functools.partial(importlib.import_module, name) for name in modules]
    for step in steps:
        await asyncio.sleep(_STEP)
        step()


async def _no_identity() -> Identity:
    return Identity()


def _check_network(checked: _Checked | None, options: RunSettings, writer: Writer,
                   summary: RunSummary, reporter: Reporter) -> tuple[str, ...]:
    """Act on the pre-flight check (record the run offline or failed); the controls to use."""
    controls = options.controls
    if checked is None:
        return controls
    if checked.offline is not None:
        _stop_before_measuring(writer, summary, "offline")
        raise offline_error(checked.offline, summary.run_id)
    for message in checked.warnings:
        reporter.problem(f"warning: {message}")
    if controls and not checked.answered:
        # Every verdict would be inconclusive: a cron job must notice, not exit 0.
        if not options.allow_no_control:
            _stop_before_measuring(writer, summary, "failed")
            raise NoControlError(
                f"no control answers ({', '.join(controls)}): every verdict would be "
                f"inconclusive. Nothing was measured; run {summary.run_id} is recorded as failed. "
                "Use --allow-no-control to measure with local proofs only, or --no-control."
            )
        reporter.problem("warning: no control answers; measuring with local proofs only")
        controls = ()
    return controls


def _stop_before_measuring(writer: Writer, summary: RunSummary, status: str) -> None:
    """Record the run's end with ``status`` before anything was measured."""
    writer.finish_run(status)
    summary.status = status
    summary.finished = time.time()


def _check_identity(ident: Identity, options: RunSettings, writer: Writer, summary: RunSummary,
                    reporter: Reporter) -> None:
    """Say when the public address is unknown; refuse to measure then if the options say so.

    The local addresses of the probe's sockets are scrubbed anyway; what cannot be is the
    public address behind a NAT, which a site that shows "your IP" would echo.
    """
    if ident.known or options.identity is None:  # None: a library caller asked for no check
        return
    if options.require_identity:
        _stop_before_measuring(writer, summary, "failed")
        raise IdentityUnknownError(
            f"your public address is unknown ({ident.unknown_why}), so it could not be "
            f"scrubbed from what sites echo; not measuring (--require-identity). Nothing was "
            f"measured; run {summary.run_id} is recorded as failed, with the reasons."
        )
    # Short lines: each fits 80 columns above a live progress display.
    reporter.problem(f"warning: your public address is unknown ({ident.unknown_why}):")
    reporter.problem("  a page that shows it may be stored with it (this machine's own")
    reporter.problem("  addresses are scrubbed); --require-identity refuses to measure then")


def _verifying(cfg: MeasureConfig) -> Any:
    """The run's verifying SSL context (built on first use, shared with the engine)."""
    from probe.measure.runtime import runtime  # only for an https helper: see _preflight

    return runtime(cfg).tls.verifying


def _apply_overrides(ident: Identity, options: RunSettings) -> Identity:
    """The identity with ``--asn`` / ``--country`` applied (the user knows best)."""
    changes: dict[str, Any] = {}
    if options.asn is not None and options.asn != ident.asn:
        changes.update(asn=options.asn, as_org="")  # the found organisation was another AS's
    if options.country:
        changes["country"] = options.country.upper()
    return dataclasses.replace(ident, **changes) if changes else ident


def _open_capture(options: RunSettings, run_id: int, reporter: Reporter,
                  watch: NetworkWatch) -> Any:  # fmt: skip
    """The run's packet capture, or None (without privileges: one warning, and no capture).

    With ``--pcap`` the packets kept also go to a new file in that directory, with the
    probe's addresses (those the run's scrubber knows at each packet) rewritten.
    """
    if not (options.capture or options.pcap):
        return None
    # Only runs that capture import it: raw sockets, a reader thread, pcap writing.
    from probe.measure import capture
    writer = None
    if options.pcap:
        from probe.measure import pcap

        Path(options.pcap).mkdir(parents=True, exist_ok=True)
        path, f = pcap.new_pcap_path(Path(options.pcap), run_id)
        writer = pcap.PcapFile(f, lambda: watch.scrubber.addresses)
    try:
        cap = capture.Capture.open(writer)
    except capture.CaptureUnavailable as exc:
        reporter.problem(f"warning: {exc}; measuring without capture")
        if writer is not None:  # the empty file this run just made
            writer.close()
            path.unlink(missing_ok=True)
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
    store: Store | None = None,
    selection: Mapping[str, Any] | None = None,
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
        return await run(targets, options, reporter, total, stop, config=config, lists=lists,
                         store=store, selection=selection)

    return eventloop.run(main())  # uvloop where installed (a dependency where it installs)
