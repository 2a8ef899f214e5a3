"""Run a measurement campaign: stream targets, measure concurrently, classify, store.

A run is three named parts on one :class:`asyncio.TaskGroup` (docs/design.md draws them):

- the **producer** (:mod:`probe.runner.producer`) reads the lists lazily, skips the URLs a
  resumed run already stored, and hands a target on only when a slot is free and the writer
  has room, so memory stays flat however long the list is;
- the **measurer pool** (:mod:`probe.runner.pool`) measures each target under bounded
  concurrency and a per-host limit, classifies it, and measures again while the verdict is
  ``retryable`` (a probe-side failure of a step the control completed);
- the **writer** (:mod:`probe.runner.writer`) is the only part that touches the
  :class:`~probe.store.Store`: it records the run, batches results into transactions, and
  closes the run. The Store is passed in (:func:`run`'s ``store``) or opened from the settings.

:mod:`probe.runner.campaign` wires them; :mod:`probe.runner.preflight` checks the network first;
:mod:`probe.runner.watch` keeps the network identity and the scrubber of the probe's addresses.
"""

from __future__ import annotations

from probe.runner.campaign import run, run_sync
from probe.runner.preflight import NoControlError, NoNetworkError, preflight
from probe.runner.summary import Reporter, RunSummary

__all__ = [
    "NoControlError",
    "NoNetworkError",
    "Reporter",
    "RunSummary",
    "preflight",
    "run",
    "run_sync",
]
