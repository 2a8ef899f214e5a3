"""The measurement engine: ``measure(target) -> Measurement``, step by step, hop by hop.

For each hop (the URL, then each redirect target): DNS (A and AAAA through every probe resolver,
concurrently; DoH control queries in the background) -> the control, started as a task with the
addresses the probe resolved -> TCP to every address, concurrently -> TLS with SNI on every
connected address (https) -> one HTTP GET over one of those connections. HTTP starts as soon as
the first suitable connection is ready (TLS validated for https; plain TCP for http), while the
other addresses are still being measured; a connection with an invalid certificate is used only
when no address gave a valid one. The DNS late-reply windows, the DoH queries and the control
run in the background; ``measure`` returns once all of them finished, so the record is complete,
but none of them delays TCP/TLS/HTTP.

Nothing here raises for network problems: every failure becomes a failure string of
:mod:`probe.core.failures`. When the per-URL deadline fires, steps still running are recorded with
``deadline_exceeded`` and the measurement is returned with everything seen so far.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Awaitable, Callable, Sequence

from probe.host import httpstack

httpstack.load()  # before httpx and httpcore: without the parts probe never runs

import httpcore

from probe.core.failures import Failure, failure_string
from probe.core.model import (
    ControlObservation,
    DNSObservation,
    HTTPObservation,
    Measurement,
    Target,
    TCPObservation,
    TLSObservation,
)
from probe.core.net import (
    InvalidURL,
    is_ip_literal,
    parse_resolver,
    parse_url,
)
from probe.core.settings import DEFAULT_USER_AGENT, MeasureConfig
from probe.measure import capture, protocols
from probe.measure.dns import UDPQuery, doh_query, union_addresses, wait_decided
from probe.measure.hop import HopState
from probe.measure.http import REDIRECT_STATUSES, ConnTransport, absolute_location, http_get
from probe.measure.runtime import aclose, runtime
from probe.measure.tcp import Conn, tcp_connect
from probe.measure.tls import decoy_handshake, tls_handshake

__all__ = ["DEFAULT_USER_AGENT", "ControlFn", "MeasureConfig", "aclose", "measure"]

log = logging.getLogger(__name__)

ControlFn = Callable[[str, Sequence[str], int], Awaitable[ControlObservation]]

_QTYPES = ("A", "AAAA")
_DECOY_BODY_CAP = 64 << 10  # a decoy answer is judged by its status; its body is not kept
_RESOLUTION_DELAY = 0.05  # RFC 8305 section 3: how long AAAA may lag behind A


class _Measurer:
    """One measure() call: the hops and the background tasks they started."""

    def __init__(
        self,
        target: Target,
        cfg: MeasureConfig,
        control: ControlFn | None,
        extra_addresses: Sequence[str],
        connect_only: bool = False,
    ) -> None:
        self.target = target
        self.connect_only = connect_only
        self.cfg = cfg
        self.rt = runtime(cfg)
        self.control = control
        self.extra = [a for a in extra_addresses if is_ip_literal(a)]
        self.hops: list[HopState] = []
        self.protocol_origins: set[tuple[str, int]] = set()  # (host, port) the --quic/--ech tests ran on

    # -- the hop loop ---------------------------------------------------------------------
    async def run(self) -> None:
        cfg = self.cfg
        url, host, port, scheme = self.target.url, self.target.host, self.target.port, self.target.scheme
        previous: tuple[str, str, int] | None = None
        addresses: list[str] = []
        transport: ConnTransport | None = None
        try:
            for index in range(cfg.max_redirects + 1):
                hs = HopState(index, url, host, port, scheme)
                self.hops.append(hs)
                same_origin = previous == (scheme, host, port)
                if same_origin and transport is not None and transport.reusable():
                    # Keep-alive: the server kept the connection open, as a browser would use it.
                    hs.addresses = addresses
                    self._start_control(hs)
                    await self._http(hs, transport)
                else:
                    if transport is not None:
                        await transport.aclose()
                    transport = None
                    if not same_origin:
                        addresses = await self._dns(hs)
                    hs.addresses = addresses
                    self._start_control(hs)
                    transport = await self._connect_and_get(hs)
                    await self._protocols(hs)
                previous = (scheme, host, port)
                nxt = self._next_hop(hs)
                if nxt is None:
                    return
                url, host, port, scheme = nxt
            last = self.hops[-1]
            if last.http is not None:
                last.http = dataclasses.replace(last.http, failure=Failure.HTTP_TOO_MANY_REDIRECTS)
        finally:
            if transport is not None:
                transport.conn.close()

    def _next_hop(self, hs: HopState) -> tuple[str, str, int, str] | None:
        http = hs.http
        if http is None or http.failure or http.status not in REDIRECT_STATUSES:
            return None
        raw = next((v for k, v in http.headers if k == "location"), None)
        if raw is None:
            return None
        loc = absolute_location(hs.url, raw)
        if loc is None:
            hs.http = dataclasses.replace(http, failure=Failure.HTTP_INVALID_REDIRECT_LOCATION_HOST)
            return None
        try:
            nxt = parse_url(loc)  # the one URL policy, as for list URLs and the helper's
        except InvalidURL:
            hs.http = dataclasses.replace(http, failure=Failure.HTTP_INVALID_REDIRECT_LOCATION_HOST)
            return None
        return nxt.url, nxt.host, nxt.port, nxt.scheme

    # -- DNS --------------------------------------------------------------------------------
    async def _dns(self, hs: HopState) -> list[str]:
        cfg, rt = self.cfg, self.rt
        if is_ip_literal(hs.host):
            return self._cap([hs.host, *self.extra])
        loop = asyncio.get_running_loop()
        if cfg.doh:
            client = rt.doh_client()
            for url in cfg.doh:
                for qtype in _QTYPES:
                    task = loop.create_task(doh_query(hs.host, qtype, url, client, cfg.dns_timeout))
                    hs.doh.append((qtype, url, time.time(), task))
        if rt.no_resolver is not None:
            hs.dns_static.append(
                DNSObservation(
                    hs.host, "A", "system", "udp", time.time(), 0.0,
                    failure_string(RuntimeError(rt.no_resolver)),
                )
            )
        for ip, port in rt.resolvers:
            for qtype in _QTYPES:
                hs.queries.append(
                    UDPQuery(hs.host, qtype, ip, port, cfg.dns_timeout, cfg.late_window).start()
                )
        for probe_addr in cfg.dns_probe:
            ip, port = parse_resolver(probe_addr)
            # Never waited for: the answer (if any) is evidence, not an address to connect to.
            hs.probe_queries.append(
                UDPQuery(hs.host, "A", ip, port, cfg.dns_timeout, cfg.late_window,
                         hold_errors=True).start()
            )
        if hs.queries:
            await self._wait_answers(hs.queries)
        return self._cap([*union_addresses(hs.queries), *self.extra])

    @staticmethod
    async def _wait_answers(queries: list[UDPQuery]) -> None:
        """Wait for the A answers, then give AAAA a short grace (RFC 8305's resolution delay).

        Some resolvers and middleboxes drop AAAA queries; waiting for their timeout would add
        the whole DNS timeout to every URL. A query still open after the grace goes on in the
        background and is recorded in full; its addresses are just not connected to.
        """
        await wait_decided([q for q in queries if q.qtype == "A"])
        pending = [q for q in queries if not q.decided.done()]
        if not pending:
            return
        if not union_addresses(queries):
            await wait_decided(pending)  # no address yet: AAAA is all there may be
            return
        grace = asyncio.timeout(_RESOLUTION_DELAY)
        try:
            async with grace:
                await wait_decided(pending)
        except TimeoutError:
            if not grace.expired():
                raise  # not the grace's: the measurement's deadline

    def _cap(self, addresses: list[str]) -> list[str]:
        return list(dict.fromkeys(addresses))[: self.cfg.max_addresses]

    # -- control ----------------------------------------------------------------------------
    def _start_control(self, hs: HopState) -> None:
        if self.control is None or (hs.index > 0 and self.cfg.control_first_url):
            return
        started = time.time()
        task = asyncio.get_running_loop().create_task(
            self._call_control(hs.url, list(hs.addresses), hs.port, started)
        )
        hs.control = (hs.url, started, task)

    def control_source(self) -> str:
        return str(getattr(self.control, "source", None) or "control")

    async def _call_control(
        self, url: str, addresses: list[str], port: int, started: float
    ) -> ControlObservation:
        assert self.control is not None
        try:
            return await self.control(url, addresses, port)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the control is data too: its failure never escapes
            return ControlObservation(
                self.control_source(), url, started, time.time() - started, failure_string(exc)
            )

    # -- TCP, TLS, HTTP ---------------------------------------------------------------------
    async def _connect_one(self, hs: HopState, ip: str) -> Conn | None:
        cfg = self.cfg
        started, t0 = time.time(), time.monotonic()
        try:
            tcp, conn = await tcp_connect(ip, hs.port, cfg.tcp_timeout, cfg.connect_policy)
        except asyncio.CancelledError:
            elapsed = time.monotonic() - t0
            hs.tcp.append(TCPObservation(ip, hs.port, started, elapsed, Failure.DEADLINE_EXCEEDED))
            raise
        hs.tcp.append(tcp)
        if conn is None or hs.scheme != "https":
            return conn
        started, t0 = time.time(), time.monotonic()
        try:
            tls, tconn = await tls_handshake(conn, hs.host, self.rt.tls, cfg.tls_timeout, cfg.tcp_timeout)
        except asyncio.CancelledError:
            hs.tls.append(
                TLSObservation(
                    ip, hs.port, hs.host, started, time.monotonic() - t0, Failure.DEADLINE_EXCEEDED
                )
            )
            raise
        hs.tls.append(tls)
        if tconn is None and cfg.decoy_sni and tls.failure is not None and tls.cert_valid is None:
            hs.decoy_tls.append(
                await decoy_handshake(ip, hs.port, cfg.decoy_sni, self.rt.tls, cfg.tls_timeout,
                                      cfg.tcp_timeout)
            )
        return tconn

    async def _connect_and_get(self, hs: HopState) -> ConnTransport | None:
        """Connect to every address; GET over the first good connection; the transport used."""
        if not hs.addresses:
            return None
        origin = httpcore.Origin(hs.scheme.encode(), hs.host.encode(), hs.port)
        chosen: list[ConnTransport] = []
        fallback: list[Conn] = []

        async def one(ip: str) -> None:
            conn = await self._connect_one(hs, ip)
            if conn is None:
                return
            if self.connect_only:
                conn.close()  # the service speaks its own protocol: reaching it is the test
                return
            if conn.tls_valid is not False and not chosen:
                # GET right here: handing the connection to the caller through a future costs
                # two event-loop iterations, milliseconds on a busy loop, on every URL.
                transport = ConnTransport(conn, origin)
                chosen.append(transport)
                await self._http(hs, transport)
            elif conn.tls_valid is False and not fallback:
                fallback.append(conn)
            else:
                conn.close()

        try:
            if len(hs.addresses) == 1:
                await one(hs.addresses[0])  # no task to schedule: TCP starts at once
            else:
                loop = asyncio.get_running_loop()
                all_done = asyncio.gather(*(loop.create_task(one(ip)) for ip in hs.addresses))
                try:
                    await all_done
                except BaseException:
                    all_done.cancel()
                    await asyncio.gather(all_done, return_exceptions=True)
                    raise
            if not chosen and fallback:
                # Only certificates that do not validate: GET anyway, the answer is evidence.
                chosen.append(ConnTransport(fallback[0], origin))
                await self._http(hs, chosen[0])
        finally:
            for c in fallback:
                if not chosen or c is not chosen[0].conn:
                    c.close()
        return chosen[0] if chosen else None

    async def _http(self, hs: HopState, transport: ConnTransport) -> None:
        cfg = self.cfg
        if not cfg.http:
            return  # the connects and handshakes were all that was asked (x_skip_http)
        started, t0 = time.time(), time.monotonic()
        try:
            hs.http = await http_get(
                transport, hs.url, hs.host, hs.port, hs.scheme, cfg.user_agent, cfg.body_cap,
                cfg.http_timeout,
            )
        except asyncio.CancelledError:
            hs.http = HTTPObservation(
                hs.url, transport.conn.ip, hs.port, started, time.monotonic() - t0, Failure.DEADLINE_EXCEEDED
            )
            raise
        if cfg.decoy_host and hs.scheme == "http" and hs.http.failure is not None:
            await self._decoy_http(hs, transport.conn.ip)

    async def _decoy_http(self, hs: HopState, ip: str) -> None:
        """GET from the same address with a harmless Host: does the name or the address fail?"""
        cfg = self.cfg
        decoy = cfg.decoy_host
        url = f"http://{decoy}/" if hs.port == 80 else f"http://{decoy}:{hs.port}/"
        started, t0 = time.time(), time.monotonic()
        tcp, conn = await tcp_connect(ip, hs.port, cfg.tcp_timeout, cfg.connect_policy)
        if conn is None:
            hs.decoy_http.append(HTTPObservation(url, ip, hs.port, started, time.monotonic() - t0,
                                                 tcp.failure))  # fmt: skip
            return
        transport = ConnTransport(conn, httpcore.Origin(b"http", decoy.encode(), hs.port))
        try:
            obs = await http_get(transport, url, decoy, hs.port, "http", cfg.user_agent,
                                 _DECOY_BODY_CAP, cfg.http_timeout)  # fmt: skip
        finally:
            conn.close()
        hs.decoy_http.append(dataclasses.replace(obs, body=b""))

    async def _protocols(self, hs: HopState) -> None:
        """The opt-in protocol tests (--quic, --ech) of an https hop, once per host and port,
        after its web steps: they never delay or disturb what the web verdict is judged on."""
        cfg = self.cfg
        origin = (hs.host, hs.port)
        if (not (cfg.quic or cfg.ech) or hs.scheme != "https" or not hs.addresses
                or origin in self.protocol_origins):
            return
        self.protocol_origins.add(origin)
        await protocols.run(hs, cfg)

    # -- the end ----------------------------------------------------------------------------
    async def wait_controls(self) -> None:
        """Wait for the controls the hops started (their answers or failures)."""
        # Only the unfinished ones: asyncio.wait() costs two event-loop iterations even when
        # every task is done, and the control usually answers before the steps end (measured:
        # 5 ms per URL of a busy loop, with the slot held).
        tasks = [hs.control[2] for hs in self.hops if hs.control is not None and not hs.control[2].done()]
        if tasks:
            await asyncio.wait(tasks)

    async def wait_background(self) -> None:
        tasks = [t for hs in self.hops for t in hs.background()]
        if tasks:
            await asyncio.wait(tasks)

    async def cancel_background(self) -> None:
        tasks = [t for hs in self.hops for t in hs.background() if not t.done()]
        for t in tasks:
            t.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)


async def measure(
    target: Target,
    cfg: MeasureConfig,
    control: ControlFn | None = None,
    attempt: int = 0,
    extra_addresses: Sequence[str] = (),
    *,
    on_ready: Callable[[], None] | None = None,
    connect_only: bool = False,
) -> Measurement:
    """Measure one target step by step, following redirects; never raises for network problems.

    ``control`` (when given) is called once per hop, right after that hop's DNS, with the hop's
    URL, the addresses the probe resolved and the port; it runs in parallel with TCP/TLS/HTTP.
    ``extra_addresses`` are connected to in addition to the resolved ones (the test helper uses
    it to try the probe's addresses). When ``cfg.deadline`` fires, unfinished steps are recorded
    with ``deadline_exceeded`` and so is ``Measurement.failure``.

    ``on_ready`` (optional) is called once, as soon as the foreground steps (DNS decisions,
    TCP, TLS, HTTP of every hop) and the control are over, before waiting for the background
    ones (late-reply windows, DoH). A runner that bounds concurrency can release its slot
    there, so that the late-reply window never costs throughput; the measurement still
    completes. The control counts as foreground here although it runs in parallel with the
    steps: a slot released while the control is still out would let the measurements waiting
    for a slow helper (and their memory, and the helper's load) grow without bound.

    ``connect_only`` stops each hop after TCP (and TLS, for https): for services that speak a
    protocol of their own on the port (WhatsApp's chat endpoints), reaching them is the test.
    """
    started = time.time()
    t0 = time.monotonic()
    m = _Measurer(target, cfg, control, extra_addresses, connect_only)
    failure: str | None = None
    ready = on_ready

    def signal_ready() -> None:
        nonlocal ready
        if ready is not None:
            callback, ready = ready, None
            try:
                callback()
            except Exception:
                log.exception("on_ready callback failed")

    capturing = capture.begin()
    deadline = asyncio.timeout(cfg.deadline)
    try:
        async with deadline:
            await m.run()
            await m.wait_controls()
            signal_ready()
            await m.wait_background()
    except TimeoutError:
        if not deadline.expired():
            raise
        failure = Failure.DEADLINE_EXCEEDED
    except Exception as exc:  # a bug, not the network: keep the run going, record it
        log.exception("measuring %s failed", target.url)
        failure = failure_string(exc)
    finally:
        signal_ready()
        await m.cancel_background()
    packets = await capture.finish(capturing)
    source = m.control_source()
    return Measurement(
        target=target,
        started=started,
        runtime=time.monotonic() - t0,
        attempt=attempt,
        hops=tuple(hs.build(source) for hs in m.hops),
        failure=failure,
        captured=capturing is not None,
        packets=packets,
        protocols=protocols.requested(cfg),
    )
