"""The writer: the only part of a run that touches the Store.

It records the run (new or resumed, its vantage point and network identity), takes results
off a bounded queue in batches (one transaction each, off the event loop), and closes the run.
A failed write stops the run: measuring on when nothing can be stored is pointless.
"""

from __future__ import annotations

import asyncio
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from probe.core.model import Measurement, Verdict
from probe.core.settings import MeasureConfig, RunSettings
from probe.host.heap import Trimmer
from probe.store.urlset import URLSet

if TYPE_CHECKING:
    from probe.store import Store
    from probe.store.urlset import URLSet

__all__ = ["BACKLOG_MAX", "BATCH_MAX", "FLUSH_INTERVAL", "Result", "Writer", "recorded_options"]

# Batching: big enough to amortise the transaction, small enough that a kill loses little (at
# most the URLs in flight plus one flush interval).
BATCH_MAX = 256
FLUSH_INTERVAL = 0.25
# Results waiting for the writer beyond which no new URL starts: when the disk is slower than
# the network, measuring slows down instead of memory growing with the list. One batch's worth
# (1 to 2 s of measuring at full speed) rides out a slow commit; four batches (the limit before)
# let one stall of the disk add up to ~1,000 results (tens of MB) to the peak RSS.
BACKLOG_MAX = BATCH_MAX

#: One attempt as stored: the measurement, its verdict, and whether it is the URL's final one.
Result = tuple[Measurement, Verdict, bool]

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


class Writer:
    """Records one run in ``store``; :meth:`drain` is the task that writes its results.

    ``stop`` is set when a write fails (the cause is kept in :attr:`failure`). The queue holds
    at most ``BACKLOG_MAX`` results; :meth:`wait_for_room` is how the producer holds new URLs
    back while it is full.
    """

    def __init__(self, store: Store, stop: asyncio.Event) -> None:
        self.store = store
        self.stop = stop
        self.run_id = 0
        self.vantage_id = 0
        self.vantage_name = ""  # of a resumed run: its own vantage point's
        self.batch_max = BATCH_MAX
        self.backlog_max = BACKLOG_MAX
        self.queue: asyncio.Queue[Result | None] = asyncio.Queue(maxsize=self.backlog_max)
        self.failure: Exception | None = None
        self.stored = 0  # URLs whose final attempt is committed
        self._room = asyncio.Event()  # set whenever a batch leaves the queue
        self._trim = Trimmer()  # keeps RSS flat over long lists (probe/host/heap.py)
        self._draining: asyncio.Task[None] | None = None

    # --- the run's record ----------------------------------------------------------------
    def start_run(self, name: str, vantage_meta: dict[str, Any], lists: list[str],
              options: dict[str, Any]) -> int:
        """Record a new run of vantage point ``name``; returns its id."""
        self.vantage_id = self.store.vantage(name, **vantage_meta)
        self.run_id = self.store.start_run(self.vantage_id, lists, options)
        return self.run_id

    def resume_run(self, run: int | str) -> URLSet:
        """Reopen an interrupted run; returns the URLs it already stored a final verdict for."""
        self.run_id, self.vantage_id = self.store.resume_run(run)
        info = self.store.run_info(self.run_id) or {}
        self.vantage_name = str(info.get("vantage") or "")
        done = URLSet()
        for url in self.store.final_urls(self.run_id):
            done.add(url)
        return done

    def set_identity(self, record: dict[str, Any], *, network_changed: bool | None = None) -> None:
        """Store the run's network identity record (no address of the probe's own)."""
        self.store.set_run_identity(self.run_id, record, network_changed=network_changed)

    def finish_run(self, status: str) -> None:
        """Close the run with ``status``."""
        self.store.finish_run(self.run_id, status)

    # --- results -------------------------------------------------------------------------
    async def put(self, result: Result) -> None:
        """Queue one attempt for writing (waits while the queue is full)."""
        await self.queue.put(result)

    async def wait_for_room(self) -> None:
        """Return once the backlog is below its limit (or the writer has stopped)."""
        while self.queue.qsize() >= self.backlog_max and not self.done:
            self._room.clear()
            await self._room.wait()

    @property
    def done(self) -> bool:
        """The writer stopped (closed, or a write failed)."""
        return self._draining is not None and self._draining.done()

    async def close(self) -> None:
        """Write what is queued, then end :meth:`drain`."""
        if self._draining is None:
            return
        if not self._draining.done():
            await self.queue.put(None)
        await asyncio.wait({self._draining})

    def start(self, tasks: asyncio.TaskGroup) -> None:
        """Start :meth:`drain` as a task of ``tasks``."""
        self._draining = tasks.create_task(self.drain(), name="probe-writer")

    def _write(self, batch: list[Result]) -> None:
        """One batch in one transaction (in the writer's thread), then the heap's free pages
        back to the system now and then: the batch's objects were just freed."""
        self.store.write(self.run_id, self.vantage_id, batch)
        self._trim()

    async def drain(self) -> None:
        """Take results off the queue in batches and write each in one transaction."""
        loop = asyncio.get_running_loop()
        queue = self.queue
        try:
            done = False
            while not done:
                batch: list[Result] = []
                item = await queue.get()
                deadline = loop.time() + FLUSH_INTERVAL
                while True:
                    if item is None:
                        done = True
                        break
                    batch.append(item)
                    if len(batch) >= self.batch_max:
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
                self._room.set()
                if batch:
                    # Off the event loop: a batch costs milliseconds of CPU that the measurements
                    # in flight should not wait for. Only this task writes: no contention.
                    try:
                        await asyncio.to_thread(self._write, batch)
                    except Exception as exc:  # disk full, read-only file, I/O error, ...
                        # Measuring on cannot be stored: stop the run, keep what is committed.
                        self.failure = exc
                        self.stop.set()
                        return
                    self.stored += sum(1 for item in batch if item[2])
        finally:
            self._room.set()  # a writer that stopped must not leave the producer waiting for room
