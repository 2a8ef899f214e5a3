"""Runner policy with fake steps: concurrency bounds, per-host limits, retries, streaming, stop."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from probe.core.model import Measurement, Target, Verdict
from probe.core.settings import RunSettings
from probe.inputs.testlists import parse_url
from probe.run.campaign import run
from probe.run.pool import HostLimiter


def targets(n: int, hosts: int = 1000) -> Iterator[Target]:
    for i in range(n):
        yield parse_url(f"http://h{i % hosts}.example/{i}")


class FakeSteps:
    """measure() that records concurrency, classify() that reads a verdict from the URL."""

    def __init__(self, delay: float = 0.01, fail_first: bool = False) -> None:
        self.delay = delay
        self.fail_first = fail_first
        self.in_flight = 0
        self.peak = 0
        self.per_host: dict[str, int] = {}
        self.peak_per_host = 0
        self.calls: list[tuple[str, int]] = []

    async def measure(
        self, target: Target, cfg: object, control: object, attempt: int = 0, on_ready: object = None
    ) -> Measurement:
        self.calls.append((target.url, attempt))
        self.in_flight += 1
        self.per_host[target.host] = self.per_host.get(target.host, 0) + 1
        self.peak = max(self.peak, self.in_flight)
        self.peak_per_host = max(self.peak_per_host, self.per_host[target.host])
        await asyncio.sleep(self.delay)
        self.in_flight -= 1
        self.per_host[target.host] -= 1
        return Measurement(target=target, started=0.0, runtime=self.delay, attempt=attempt)

    def classify(self, m: Measurement, **kw: object) -> Verdict:
        if self.fail_first and m.attempt == 0:
            return Verdict("blocked", "tcp", 0, ("tcp/timeout",), retryable=True)
        return Verdict("ok")


def _run(steps: FakeSteps, items: Iterator[Target], opts: RunSettings, stop: asyncio.Event | None = None):  # type: ignore[no-untyped-def]
    return asyncio.run(run(items, opts, stop=stop, measure=steps.measure, classify=steps.classify))


def _opts(tmp_path: Path, **kw: object) -> RunSettings:
    return RunSettings(db=tmp_path / "r.db", preflight=False, retry_pause=0.0, **kw)  # type: ignore[arg-type]


def test_concurrency_never_exceeds_the_limit(tmp_path: Path) -> None:
    steps = FakeSteps()
    summary = _run(steps, targets(200), _opts(tmp_path, concurrency=16))
    assert summary.measured == 200
    assert steps.peak == 16


def test_per_host_limit_holds_when_a_list_has_one_host(tmp_path: Path) -> None:
    steps = FakeSteps()
    summary = _run(steps, targets(60, hosts=1), _opts(tmp_path, concurrency=32, per_host=3))
    assert summary.measured == 60
    assert steps.peak_per_host == 3


def test_retry_stores_both_attempts_and_the_final_verdict(tmp_path: Path) -> None:
    steps = FakeSteps(fail_first=True)
    summary = _run(steps, targets(5), _opts(tmp_path, retries=1))
    assert summary.verdicts == {"ok": 5}
    con = sqlite3.connect(tmp_path / "r.db")
    got = con.execute("select attempt, final, verdict from measurements order by url, attempt").fetchall()
    assert got == [(0, 0, "blocked"), (1, 1, "ok")] * 5


def test_targets_are_pulled_only_when_a_slot_is_free(tmp_path: Path) -> None:
    steps = FakeSteps()
    pulled = 0

    def counting() -> Iterator[Target]:
        nonlocal pulled
        for t in targets(100):
            pulled += 1
            # Streaming: the runner never reads far ahead of what it has measured.
            assert pulled - len(steps.calls) <= 8 + 1
            yield t

    _run(steps, counting(), _opts(tmp_path, concurrency=8))
    assert pulled == 100


class _StopAfter:
    """A reporter that sets the stop event once ``after`` results are in (no timing assumptions)."""

    def __init__(self, stop: asyncio.Event, after: int) -> None:
        self.stop, self.after, self.seen = stop, after, 0

    def started(self, run_id: int, total: int | None) -> None:
        pass

    def problem(self, message: str) -> None:
        pass

    def result(self, target: Target, verdict: Verdict) -> None:
        self.seen += 1
        if self.seen == self.after:
            self.stop.set()


def test_stop_event_interrupts_and_keeps_finished_results(tmp_path: Path) -> None:
    steps = FakeSteps(delay=0.05)

    async def main() -> object:
        stop = asyncio.Event()
        return await run(targets(10_000), _opts(tmp_path, concurrency=4), _StopAfter(stop, 10), stop=stop,
                         measure=steps.measure, classify=steps.classify)

    summary = asyncio.run(main())
    assert summary.status == "interrupted"  # type: ignore[attr-defined]
    con = sqlite3.connect(tmp_path / "r.db")
    stored = con.execute("select count(*) from measurements").fetchone()[0]
    assert stored == summary.measured > 0  # type: ignore[attr-defined]
    assert con.execute("select status from runs").fetchone()[0] == "interrupted"


def test_a_resumed_run_measures_only_the_urls_it_has_not_stored(tmp_path: Path) -> None:
    """--resume skips what the interrupted run stored (looked up in the on-disk URL set)."""
    first = FakeSteps(delay=0.01)

    async def interrupted() -> object:
        stop = asyncio.Event()
        return await run(targets(400), _opts(tmp_path, concurrency=4), _StopAfter(stop, 50), stop=stop,
                         measure=first.measure, classify=first.classify)

    assert asyncio.run(interrupted()).status == "interrupted"  # type: ignore[attr-defined]
    con = sqlite3.connect(tmp_path / "r.db")
    stored = {u for (u,) in con.execute("select url from measurements where final = 1")}
    assert 50 <= len(stored) < 400

    again = FakeSteps(delay=0.0)
    summary = _run(again, targets(400), _opts(tmp_path, concurrency=4, resume="latest"))
    assert summary.status == "complete" and summary.run_id == 1
    measured_again = {url for url, _ in again.calls}
    assert not measured_again & stored
    finals = [u for (u,) in con.execute("select url from measurements where final = 1")]
    assert sorted(finals) == sorted(f"http://h{i % 1000}.example/{i}" for i in range(400))


def test_limiter_forgets_idle_hosts() -> None:
    limiter = HostLimiter(2)

    async def main() -> None:
        for i in range(100):
            await limiter.acquire(f"h{i}")
            await limiter.acquire(f"h{i}")
            limiter.release(f"h{i}")
            limiter.release(f"h{i}")

    asyncio.run(main())
    assert limiter._sems == {}


def test_slot_is_released_when_foreground_steps_are_done(tmp_path: Path) -> None:
    """The DNS late-reply window must not hold a concurrency slot (issue 4)."""
    foreground = 0
    peak_foreground = 0
    peak_tasks = 0
    tasks = 0

    async def measure(target: Target, cfg: object, control: object, attempt: int = 0,
                      on_ready=None) -> Measurement:  # type: ignore[no-untyped-def]
        nonlocal foreground, peak_foreground, tasks, peak_tasks
        tasks += 1
        foreground += 1
        peak_tasks = max(peak_tasks, tasks)
        peak_foreground = max(peak_foreground, foreground)
        await asyncio.sleep(0.01)
        foreground -= 1
        on_ready()
        await asyncio.sleep(0.1)  # the late-reply window
        tasks -= 1
        return Measurement(target=target, started=0.0, runtime=0.11, attempt=attempt)

    steps = FakeSteps()
    summary = asyncio.run(run(targets(100), _opts(tmp_path, concurrency=4), measure=measure,
                              classify=steps.classify))
    assert summary.measured == 100
    assert peak_foreground == 4
    assert peak_tasks > 4


def test_a_bug_on_one_url_is_reported_and_the_run_goes_on(tmp_path: Path) -> None:
    steps = FakeSteps()
    problems: list[str] = []

    class Collect:
        def started(self, run_id: int, total: int | None) -> None:
            pass

        def result(self, target: Target, verdict: Verdict) -> None:
            pass

        def problem(self, message: str) -> None:
            problems.append(message)

    def classify(m: Measurement, **kw: object) -> Verdict:
        if m.target.url.endswith("/3"):
            raise ValueError("boom")
        return Verdict("ok")

    summary = asyncio.run(run(targets(10), _opts(tmp_path), Collect(), measure=steps.measure,
                              classify=classify))
    assert summary.measured == 9 and summary.errors == 1
    assert summary.status == "complete"
    assert any("http://h3.example/3" in p and "boom" in p for p in problems)


def test_a_slow_disk_slows_measuring_instead_of_queueing_results(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Memory stays flat when the writer lags: no new URL starts while the backlog is full."""
    import time

    from probe.run import writer as runner
    from probe.store import Store

    monkeypatch.setattr(runner, "BATCH_MAX", 8)
    monkeypatch.setattr(runner, "BACKLOG_MAX", 16)
    written = 0
    real_write = Store.write

    def slow_write(self, run_id, vantage_id, items):  # type: ignore[no-untyped-def]
        nonlocal written
        time.sleep(0.02)  # a disk far slower than the (instant) measurements
        real_write(self, run_id, vantage_id, items)
        written += len(items)

    monkeypatch.setattr(Store, "write", slow_write)
    steps = FakeSteps(delay=0.0)
    backlog = 0

    async def measure(target: Target, *args: object, **kw: object) -> Measurement:
        nonlocal backlog
        backlog = max(backlog, len(steps.calls) - written)
        return await steps.measure(target, *args, **kw)  # type: ignore[arg-type]

    concurrency = 4
    summary = asyncio.run(run(targets(300), _opts(tmp_path, concurrency=concurrency), measure=measure,
                              classify=steps.classify))
    assert summary.measured == written == 300
    # Queued (at most the backlog limit), in the writer's hands (one batch), in flight.
    assert backlog <= 16 + 8 + concurrency


def test_a_failing_disk_stops_the_run_and_keeps_what_was_stored(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Measuring on when nothing can be stored is pointless: stop, say why, keep the rest."""
    import pytest

    from probe.run import writer as runner
    from probe.store import Store, StoreError

    monkeypatch.setattr(runner, "BATCH_MAX", 8)
    real_write = Store.write
    batches = 0

    def write(self, run_id, vantage_id, items):  # type: ignore[no-untyped-def]
        nonlocal batches
        batches += 1
        if batches > 1:
            raise sqlite3.OperationalError("database or disk is full")
        real_write(self, run_id, vantage_id, items)

    monkeypatch.setattr(Store, "write", write)
    steps = FakeSteps(delay=0.001)
    with pytest.raises(StoreError, match=r"r\.db: cannot write results \(database or disk is full\)"
                                         r"; the run stopped after 8 URLs were stored; run 1 is "
                                         r"recorded as failed"):  # fmt: skip
        _run(steps, targets(10_000), _opts(tmp_path, concurrency=4))
    assert len(steps.calls) < 1000  # stopped early, not after the whole list
    con = sqlite3.connect(tmp_path / "r.db")
    assert con.execute("select count(*) from measurements").fetchone()[0] == 8
    assert con.execute("select status from runs").fetchone()[0] == "failed"


def test_results_go_to_the_store_passed_in(tmp_path: Path) -> None:
    """A caller (a test, a researcher's script) can hand the runner its own Store."""
    from probe.store import Store

    steps = FakeSteps()
    with Store.open(tmp_path / "injected.db") as store:
        summary = asyncio.run(run(targets(20), _opts(tmp_path), measure=steps.measure,
                                  classify=steps.classify, store=store))
        # The caller's store is still open and holds the run.
        (stored,) = store.conn.execute("select count(*) from measurements").fetchone()
        assert stored == summary.measured == 20
        assert store.conn.execute("select status from runs").fetchone()[0] == "complete"
    assert not (tmp_path / "r.db").exists()  # options.db was not opened


def test_an_error_reading_the_list_is_raised_as_itself_after_writing(tmp_path: Path) -> None:
    """A broken list ends the run as failed; what was measured before is kept."""
    import pytest

    class Broken(Exception):
        pass

    def broken() -> Iterator[Target]:
        yield from targets(5)
        raise Broken("list unreadable")

    steps = FakeSteps(delay=0.0)
    with pytest.raises(Broken, match="list unreadable"):
        _run(steps, broken(), _opts(tmp_path, concurrency=1))
    con = sqlite3.connect(tmp_path / "r.db")
    assert con.execute("select status from runs").fetchone()[0] == "failed"
    # One at a time: the first four are settled before the fifth is started; the fifth may be
    # cancelled in flight when reading the sixth fails.
    assert 4 <= con.execute("select count(*) from measurements").fetchone()[0] <= 5


def test_the_preflight_check_and_the_identity_discovery_wait_on_the_network_together(
    tmp_path: Path, monkeypatch  # type: ignore[no-untyped-def]
) -> None:
    # Both only wait on the network: the run's start costs the longer of the two round trips,
    # not their sum. Each fake waits until the other has started; run one after the other,
    # the first would wait for ever (bounded here, to fail instead of hanging).
    import probe.measure.identity
    import probe.run.campaign as campaign
    from probe.core.settings import IdentityConfig
    from probe.measure.identity import Identity

    started: dict[str, asyncio.Event] = {}

    async def meet(me: str, other: str) -> None:
        started.setdefault(me, asyncio.Event()).set()
        try:
            async with asyncio.timeout(10):
                await started.setdefault(other, asyncio.Event()).wait()
        except TimeoutError:
            raise AssertionError(f"{me} ran without {other} waiting at the same time") from None

    calls = 0

    async def discover(resolvers: object, config: object, geo: object, **_: object) -> Identity:
        nonlocal calls
        calls += 1
        if calls == 1:  # the start of the run; the end's check comes after measuring
            await meet("discover", "preflight")
        return Identity()

    async def preflight(cfg: object, controls: object, timeout: float = 3.0,
                        reachable: list[str] | None = None) -> list[str]:
        await meet("preflight", "discover")
        return []

    monkeypatch.setattr(probe.measure.identity, "discover", discover)
    monkeypatch.setattr(campaign, "preflight", preflight)
    opts = RunSettings(db=tmp_path / "r.db", retry_pause=0.0, preflight=True,
                       identity=IdentityConfig(stun_servers=(), whoami_names=(), recheck_interval=0))
    steps = FakeSteps()
    summary = _run(steps, targets(3), opts)
    assert summary.measured == 3
    assert set(started) == {"discover", "preflight"}


def test_the_network_checks_are_under_way_before_the_run_imports_its_engine(
    tmp_path: Path, monkeypatch  # type: ignore[no-untyped-def]
) -> None:
    # The imports (~0.3 s of CPU) run while the checks wait on their round trips, instead of
    # before them.
    import importlib

    import probe.measure.identity
    import probe.run.campaign as campaign
    from probe.core.settings import IdentityConfig
    from probe.measure.identity import Identity

    order: list[str] = []
    real_import = importlib.import_module

    def recording_import(name: str, package: str | None = None):  # type: ignore[no-untyped-def]
        if name in campaign._WARM_UP:
            order.append(name)
        return real_import(name, package)

    async def discover(resolvers: object, config: object, geo: object, **_: object) -> Identity:
        order.append("discover")
        return Identity()

    async def preflight(cfg: object, controls: object, timeout: float = 3.0,
                        reachable: list[str] | None = None) -> list[str]:
        order.append("preflight")
        return []

    monkeypatch.setattr(importlib, "import_module", recording_import)
    monkeypatch.setattr(probe.measure.identity, "discover", discover)
    monkeypatch.setattr(campaign, "preflight", preflight)
    opts = RunSettings(db=tmp_path / "r.db", retry_pause=0.0, preflight=True,
                       identity=IdentityConfig(stun_servers=(), whoami_names=(), recheck_interval=0))
    summary = _run(FakeSteps(), targets(3), opts)
    assert summary.measured == 3
    assert order[:2] in (["discover", "preflight"], ["preflight", "discover"])
    assert order[2:4] == list(campaign._WARM_UP)


def test_the_end_of_run_identity_check_overlaps_the_last_measurements(
    tmp_path: Path, monkeypatch  # type: ignore[no-untyped-def]
) -> None:
    # It starts once the last URL is out: the last measurement below waits for it to start;
    # run after the measurements, it would never start (bounded here, to fail instead).
    import probe.measure.identity
    from probe.core.settings import IdentityConfig
    from probe.measure.identity import Identity

    checks = 0
    end_started = asyncio.Event()
    waited: list[bool] = []

    async def discover(resolvers: object, config: object, geo: object, **_: object) -> Identity:
        nonlocal checks
        checks += 1
        if checks == 2:  # the first is the start of the run's
            end_started.set()
        return Identity()

    class LastWaits(FakeSteps):
        async def measure(self, target: Target, cfg: object, control: object, attempt: int = 0,
                          on_ready: object = None) -> Measurement:
            if target.url.endswith("/3"):
                try:
                    async with asyncio.timeout(10):
                        await end_started.wait()
                    waited.append(True)
                except TimeoutError:
                    waited.append(False)
            return await super().measure(target, cfg, control, attempt, on_ready)

    monkeypatch.setattr(probe.measure.identity, "discover", discover)
    opts = _opts(tmp_path, concurrency=2,
                 identity=IdentityConfig(stun_servers=(), whoami_names=(), recheck_interval=0))
    summary = _run(LastWaits(), targets(4), opts)
    assert (summary.status, summary.measured, checks, waited) == ("complete", 4, 2, [True])
    con = sqlite3.connect(tmp_path / "r.db")
    [[identity]] = con.execute("select identity from runs").fetchall()
    assert '"when": "end"' in identity


def test_the_collector_leaves_the_loaded_libraries_alone_while_measuring(tmp_path: Path) -> None:
    # gc pauses of up to 50 ms (a full walk of the imported libraries) held up every URL in
    # flight; the run freezes what is loaded and restores the collector at its end.
    import gc

    from probe.host.heap import YOUNG_THRESHOLD

    seen: list[tuple[int, bool]] = []

    class Recording(FakeSteps):
        async def measure(self, target: Target, cfg: object, control: object, attempt: int = 0,
                          on_ready: object = None) -> Measurement:
            seen.append((gc.get_threshold()[0], gc.get_freeze_count() > 0))
            return await super().measure(target, cfg, control, attempt, on_ready)

    before = gc.get_threshold()
    summary = _run(Recording(), targets(3), _opts(tmp_path))
    assert summary.measured == 3
    assert seen == [(YOUNG_THRESHOLD, True)] * 3
    assert gc.get_threshold() == before and gc.get_freeze_count() == 0


def test_a_run_builds_its_verifying_context_once_for_the_engine_and_the_control_client(
    tmp_path: Path, monkeypatch  # type: ignore[no-untyped-def]
) -> None:
    # Each costs ~20 ms of CPU; the engine, the control client and the pre-flight check
    # share one (same trust: system CAs plus --cafile).
    import probe.measure.tls as tls
    import probe.run.campaign as campaign
    from probe.core.settings import MeasureConfig
    from probe.measure.control.client import ControlClient
    from probe.measure.runtime import runtime

    built: list[object] = []
    real = tls.verifying_context
    monkeypatch.setattr(tls, "verifying_context",
                        lambda cafile=None, extra_ca=None: built.append(cafile) or real(cafile, extra_ca))
    given: list[object] = []

    class Recording(ControlClient):
        async def __aenter__(self) -> ControlClient:
            given.append(self._ssl_context)
            return self

    async def preflight(cfg: object, controls: object, timeout: float = 3.0,
                        reachable: list[str] | None = None) -> list[str]:
        if reachable is not None:
            reachable.extend(controls)  # type: ignore[call-overload]
        return []

    monkeypatch.setattr("probe.measure.control.client.ControlClient", Recording)
    monkeypatch.setattr(campaign, "preflight", preflight)
    pytest.importorskip("trustme")
    from probe.lab.certs import CertAuthority

    ca = str(CertAuthority("probe test CA").write(tmp_path / "ca.pem"))
    cfg = MeasureConfig(resolvers=("127.0.0.1:53",), cafile=ca)
    opts = RunSettings(db=tmp_path / "r.db", retry_pause=0.0, preflight=True,
                       controls=("http://127.0.0.1:9/",))
    steps = FakeSteps()
    summary = asyncio.run(run(targets(2), opts, config=cfg, measure=steps.measure,
                              classify=steps.classify))
    assert summary.measured == 2
    assert given == [runtime(cfg).tls.verifying]
    assert built == [ca]
