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
from probe.core.settings import MeasureConfig
from probe.inputs.endpointlists import DNS_KINDS, TWIN_KINDS, Endpoint, suite_of
from probe.inputs.geo import GeoDB, GeoError, default_asn_lookup, open_default_geo
from probe.judge.circumvention import judge_endpoint
from probe.measure import localaddrs
from probe.measure.circumvention import EndpointOptions, measure_endpoint
from probe.measure.control import client as control_client
from probe.measure.engine import aclose as engine_aclose
from probe.measure.messaging import measure_service
from probe.measure.reflector import discover
from probe.measure.tls import TLSContexts
from probe.run.preflight import NoNetworkError, offline_error, preflight
from probe.run.scrub import Scrubber
from probe.store import Store
from probe.store.circumvention import write_endpoints

__all__ = [
    "SUITE",
    "SuiteConfig",
    "SuiteSummary",
    "measure_endpoints",
    "reflector_endpoints",
    "run_suite",
]

SUITE = "circumvention"
Judged = tuple[EndpointObservation, ControlObservation | None, Verdict]


@dataclass(frozen=True)
class SuiteConfig:
    """How to measure: controls (test helpers; none: no control), timeouts, concurrency.

    ``resolvers`` (or the system's, from ``resolv_conf``) are what the pre-flight check asks,
    as ``probe run``'s does: the endpoints are addresses, nothing else here uses DNS.
    """

    controls: tuple[str, ...] = ()
    cafile: str | None = None
    resolvers: tuple[str, ...] = ()
    resolv_conf: str | None = None
    tcp_timeout: float = 10.0
    handshake_timeout: float = 10.0
    control_timeout: float = 30.0
    concurrency: int = 32
    # Like `probe run --retries`: an endpoint that failed here while the control reached it is
    # measured again after a pause before the failure is taken as interference.
    retries: int = 1
    retry_pause: float = 2.0
    # Encrypted DNS: the names resolved through each resolver and asked of the control.
    names: tuple[str, ...] = ()
    decoy_sni: str = ""
    # Fully encrypted traffic: random exchanges per reflector before it counts as unblocked.
    fet_tries: int = 5
    # Helpers whose reflector is measured (fet, wireguard); None: the controls'.
    reflectors: tuple[str, ...] | None = None
    # Services reached by name (the messaging apps'): their DNS and HTTP steps, and the
    # deadline of each one's measurement (all hops), as `probe run` has them.
    dns_timeout: float = 4.0
    http_timeout: float = 15.0
    deadline: float = 60.0

    def measure_config(self) -> MeasureConfig:
        """How services reached by name are measured: the web engine's configuration."""
        cfg = MeasureConfig(resolvers=self.resolvers, system_resolver=not self.resolvers,
                            dns_timeout=self.dns_timeout, tcp_timeout=self.tcp_timeout,
                            tls_timeout=self.handshake_timeout, http_timeout=self.http_timeout,
                            deadline=self.deadline, cafile=self.cafile, decoy_sni=self.decoy_sni)
        return replace(cfg, resolv_conf=self.resolv_conf) if self.resolv_conf else cfg


@dataclass
class SuiteSummary:
    """What a suite run did: its run id and verdict counts."""

    run_id: int
    counts: Counter[str] = field(default_factory=Counter)
    results: list[Judged] = field(default_factory=list)
    reflector: int = 0  # endpoints added from a helper's reflector (0: none offered one)


#: Kinds whose control must fetch over HTTP: a Telegram data centre answers HTTP, and a DC
#: silent here counts as blocked only when it answered the control's request
#: (probe/judge/messaging.py). The others' control stops after the handshakes (x_skip_http).
_CONTROL_FETCHES = frozenset({"telegram-dc"})


def _control_url(ep: Endpoint) -> str:
    if ep.kind in DNS_KINDS:
        # The resolver's own name: the helper's handshake then verifies the same certificate.
        return f"https://{format_endpoint(ep.sni, ep.port)}/"
    # https makes the helper complete a TLS handshake with the endpoint as well as connect.
    scheme = "https" if ep.kind in ("tor", "tls") else "http"
    return f"{scheme}://{format_endpoint(ep.address, ep.port)}/"


async def reflector_endpoints(urls: Sequence[str], cafile: str | None, timeout: float) -> list[Endpoint]:
    """The fet and wireguard endpoints of the first helper in ``urls`` that has a reflector."""
    for url in urls:
        found = await discover(url, timeout=timeout, cafile=cafile)
        if found is not None:
            info, address = found
            return info.endpoints(address)
    return []


async def measure_endpoints(
    endpoints: Sequence[Endpoint], config: SuiteConfig, on_result: Callable[[Judged], None] | None = None
) -> list[Judged]:
    """Measure and judge every endpoint; results in the order of ``endpoints``."""
    contexts = TLSContexts(config.cafile)
    slots = asyncio.Semaphore(max(1, config.concurrency))
    out: list[Judged | None] = [None] * len(endpoints)
    options = EndpointOptions(config.names, config.decoy_sni, config.fet_tries)
    asn = default_asn_lookup() if any(ep.kind in DNS_KINDS for ep in endpoints) else None
    by_name = any(ep.by_name for ep in endpoints)
    web_cfg = config.measure_config() if by_name else None
    geo = _geo() if by_name else None
    # What the control resolves for each name: asked once per run, shared by every resolver.
    name_asks: dict[str, asyncio.Future[ControlObservation]] = {}

    async def names_of(control: control_client.ControlClient | None) -> tuple[ControlObservation, ...]:
        if control is None:
            return ()
        for name in config.names:
            if name not in name_asks:
                name_asks[name] = asyncio.ensure_future(control(f"http://{name}/", [], 80, http=False))
        return tuple([await name_asks[n] for n in config.names])

    async def measure(
        ep: Endpoint, control: control_client.ControlClient | None, attempt: int
    ) -> EndpointObservation:
        if web_cfg is not None and ep.by_name:
            # Measured as the web is: the engine asks the control about every hop itself.
            return await measure_service(ep, web_cfg, control, attempt)
        obs = await measure_endpoint(ep, contexts, tcp_timeout=config.tcp_timeout,
                                     handshake_timeout=config.handshake_timeout, options=options)  # fmt: skip
        if ep.kind in DNS_KINDS and obs.queries:
            obs = replace(obs, name_controls=await names_of(control))
        return replace(obs, attempt=attempt) if attempt else obs

    async def one(i: int, ep: Endpoint, control: control_client.ControlClient | None) -> None:
        async with slots:
            ask = None
            if control is not None and ep.transport == "tcp" and ep.kind not in TWIN_KINDS and not ep.by_name:
                ask = asyncio.ensure_future(
                    control(_control_url(ep), [ep.address], ep.port, http=ep.kind in _CONTROL_FETCHES)
                )
            obs = await measure(ep, control, 0)
            ctl = await ask if ask is not None else None
            verdict = judge_endpoint(obs, ctl, asn, geo=geo)
            attempt = 0
            # Twin kinds repeat their own exchanges; measuring them again a moment later would
            # meet a censor's residual block of the address and read as a broken path.
            while verdict.verdict in INTERFERENCE and attempt < config.retries and ep.kind not in TWIN_KINDS:
                attempt += 1
                await asyncio.sleep(config.retry_pause)
                obs = await measure(ep, control, attempt)
                verdict = judge_endpoint(obs, ctl, asn, geo=geo)
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
        for fut in name_asks.values():
            fut.cancel()
        if control is not None:
            await control.aclose()
        if web_cfg is not None:
            await engine_aclose(web_cfg)
    return [r for r in out if r is not None]


def _scrubbed(results: list[Judged]) -> list[Judged]:
    """The results with the local addresses of the probe's sockets replaced (probe.run.scrub):
    a service's headers, title or DNS answers may echo them."""
    scrub = Scrubber(localaddrs.seen())
    if not scrub:
        return results
    return [(scrub.record(o), None if c is None else scrub.record(c), scrub.record(v)) for o, c, v in results]


def _geo() -> GeoDB | None:
    """The IP-to-AS data the web rules read (as `probe run` opens it), or None."""
    try:
        return open_default_geo()
    except (GeoError, OSError):
        return None


def _check_config(config: SuiteConfig) -> MeasureConfig:
    """The pre-flight check's view of the suite's configuration (resolvers, trust)."""
    cfg = MeasureConfig(resolvers=config.resolvers, system_resolver=not config.resolvers,
                        cafile=config.cafile)
    return replace(cfg, resolv_conf=config.resolv_conf) if config.resolv_conf else cfg


async def _offline(config: SuiteConfig, warn: Callable[[str], None] | None) -> str | None:
    """Why the network does not work at all (the pre-flight check of every run), or None."""
    try:
        warnings = await preflight(_check_config(config), config.controls)
    except NoNetworkError as exc:
        return str(exc)
    if warn is not None:
        for message in warnings:
            warn(f"warning: {message}")
    return None


def run_suite(
    endpoints: Sequence[Endpoint],
    db: Path,
    vantage: str,
    lists: Sequence[str],
    config: SuiteConfig,
    on_result: Callable[[Judged], None] | None = None,
    warn: Callable[[str], None] | None = None,
    suite: str = SUITE,
) -> SuiteSummary:
    """Measure ``endpoints`` into database ``db`` as one run of vantage point ``vantage``.

    The run is recorded ``complete``, or ``interrupted`` (and what was measured is kept) when
    the measuring is cancelled. The network is checked first, as ``probe run`` checks it: with
    no network at all the run is recorded ``offline`` and :class:`NoNetworkError` raised,
    instead of recording every endpoint as a failure. ``warn`` receives the check's warnings.
    ``suite`` names the run's suite (``circumvention``, ``messaging``); each endpoint is
    stored under its own kind's suite.
    """
    with Store.open(db, check=True) as store:
        vid = store.vantage(vantage)
        run_id = store.start_run(vid, list(lists), {"suite": suite, "endpoints": len(endpoints)})
        offline = asyncio.run(_offline(config, warn))
        if offline is not None:
            store.finish_run(run_id, "offline")
            raise offline_error(offline, run_id)
        summary = SuiteSummary(run_id)
        status = "interrupted"

        def keep(judged: Judged) -> None:
            # Kept as they come, so an interrupted run still stores what was measured.
            summary.results.append(judged)
            if on_result is not None:
                on_result(judged)

        async def go() -> None:
            urls = config.controls if config.reflectors is None else config.reflectors
            extra = await reflector_endpoints(urls, config.cafile, config.control_timeout) if urls else []
            have = {(ep.kind, ep.address, ep.port) for ep in endpoints}
            extra = [ep for ep in extra if (ep.kind, ep.address, ep.port) not in have]
            summary.reflector = len(extra)
            await measure_endpoints([*endpoints, *extra], config, keep)

        try:
            asyncio.run(go())
            status = "complete"
        finally:
            write_endpoints(store, run_id, vid, suite_of, _scrubbed(summary.results))
            store.finish_run(run_id, status)
        summary.counts.update(v.verdict for _, _, v in summary.results)
    return summary
