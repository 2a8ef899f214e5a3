"""The results database: :class:`Store` joins its parts, one module per concept.

- :mod:`probe.store.connection`: opening, refusing foreign or corrupt files, migrating;
- :mod:`probe.store.runs`: vantage points and runs;
- :mod:`probe.store.writing`: batches of judged measurements, traces, re-judged verdicts;
- :mod:`probe.store.reading`: results, latest verdicts, measurements rebuilt in full.
"""

from __future__ import annotations

from probe.store.connection import StoreError
from probe.store.reading import Reader
from probe.store.runs import RUN_STATUSES
from probe.store.writing import Writer

__all__ = ["RUN_STATUSES", "Store", "StoreError"]


class Store(Writer, Reader):
    """A probe results database (SQLite through sqlite-utils).

    Open with :meth:`open`; every write is one transaction that is committed before the call
    returns (WAL, ``synchronous=NORMAL``): a kill loses at most the batch being written.
    """
