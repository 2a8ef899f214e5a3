"""The results database: SQLite through sqlite-utils (schema in docs/schema.md).

:class:`Store` opens and migrates a database, writes batches of measurements with their
verdicts (one transaction each), and reads results back; :class:`StoreError` says why a file
cannot be used.
"""

from __future__ import annotations

from probe.store.connection import SQLiteError
from probe.store.database import RUN_STATUSES, Store, StoreError
from probe.store.schema import SCHEMA_VERSION

__all__ = ["RUN_STATUSES", "SCHEMA_VERSION", "SQLiteError", "Store", "StoreError"]
