"""Run the circumvention suite: every endpoint measured and its control asked at the same time,
with bounded concurrency, judged, and stored as one run."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from probe.core.model import INTERFERENCE_VERDICTS as INTERFERENCE
from probe.core.model import ControlObservation, EndpointObservation, Verdict
from probe.core.net import format_endpoint
from probe.inputs.endpointlists import Endpoint
from probe.judge.circumvention import judge_endpoint
from probe.measure.circumvention import measure_endpoint
from probe.measure.control import client as control_client
from probe.measure.tls import TLSContexts
from probe.store import Store
from probe.store.circumvention import write_endpoints

__all__ = ["SUITE", "SuiteConfig", "SuiteSummary", "measure_endpoints", "run_suite"]

SUITE = "circumvention"
Judged = tuple[EndpointObservation, ControlObservation | None, Verdict]


@dataclass(frozen=True)
class SuiteConfig:
    """How to measure: controls (test helpers; none: no control), timeouts, concurrency."""

    controls: tuple[str, ...] = ()
    cafile: str | None = None
    tcp_timeout: float = 10.0
    handshake_timeout: float = 10.0
    control_timeout: float = 30.0
    concurrency: int = 32
    # Like `probe run --retries`: an endpoint that failed here while the control reached it is
    # measured again after a pause before the failure is taken as interference.
    retries: int = 1
    retry_pause: float = 2.0


@dataclass
class SuiteSummary:
    """What a suite run did: its run id and verdict counts."""

    run_id: int
    counts: Counter[str] = field(default_factory=Counter)
    results: list[Judged] = field(default_factory=list)


def _control_url(ep: Endpoint) -> str:
    # https makes the helper complete a TLS handshake with the endpoint as well as connect.
    scheme = "https" if ep.kind in ("tor", "tls") else "http"
    return f"{scheme}://{format_endpoint(ep.address, ep.port)}/"


async def measure_endpoints(
    endpoints: Sequence[Endpoint], config: SuiteConfig, on_result: Callable[[Judged], None] | None = None
) -> list[Judged]:
    """Measure and judge every endpoint; results in the order of ``endpoints``."""
    contexts = TLSContexts(config.cafile)
    slots = asyncio.Semaphore(max(1, config.concurrency))
    out: list[Judged | None] = [None] * len(endpoints)

    async def one(i: int, ep: Endpoint, control: control_client.ControlClient | None) -> None:
        async with slots:
            ask = None
            if control is not None and ep.transport == "tcp":
                ask = asyncio.ensure_future(control(_control_url(ep), [ep.address], ep.port))
            obs = await measure_endpoint(ep, contexts, tcp_timeout=config.tcp_timeout,
                                         handshake_timeout=config.handshake_timeout)  # fmt: skip
            ctl = await ask if ask is not None else None
            verdict = judge_endpoint(obs, ctl)
            attempt = 0
            while verdict.verdict in INTERFERENCE and attempt < config.retries:
                attempt += 1
                await asyncio.sleep(config.retry_pause)
                obs = await measure_endpoint(ep, contexts, tcp_timeout=config.tcp_timeout,
                                             handshake_timeout=config.handshake_timeout)  # fmt: skip
                obs = replace(obs, attempt=attempt)
                verdict = judge_endpoint(obs, ctl)
        judged = (obs, ctl, verdict)
        out[i] = judged
        if on_result is not None:
            on_result(judged)

    control = (
        control_client.ControlClient(config.controls, timeout=config.control_timeout, cafile=config.cafile)
        if config.controls
        else None
    )
    try:
        async with asyncio.TaskGroup() as tg:
            for i, ep in enumerate(endpoints):
                tg.create_task(one(i, ep, control))
    finally:
        if control is not None:
            await control.aclose()
    return [r for r in out if r is not None]


def run_suite(
    endpoints: Sequence[Endpoint],
    db: Path,
    vantage: str,
    lists: Sequence[str],
    config: SuiteConfig,
    on_result: Callable[[Judged], None] | None = None,
) -> SuiteSummary:
    """Measure ``endpoints`` into database ``db`` as one run of vantage point ``vantage``.

    The run is recorded ``complete``, or ``interrupted`` (and what was measured is kept) when
    the measuring is cancelled.
    """
    with Store.open(db, check=True) as store:
        vid = store.vantage(vantage)
        run_id = store.start_run(vid, list(lists), {"suite": SUITE, "endpoints": len(endpoints)})
        summary = SuiteSummary(run_id)
        status = "interrupted"

        def keep(judged: Judged) -> None:
            # Kept as they come, so an interrupted run still stores what was measured.
            summary.results.append(judged)
            if on_result is not None:
                on_result(judged)

        try:
            asyncio.run(measure_endpoints(endpoints, config, keep))
            status = "complete"
        finally:
            write_endpoints(store, run_id, vid, SUITE, summary.results)
            store.finish_run(run_id, status)
        summary.counts.update(v.verdict for _, _, v in summary.results)
    return summary
