"""Exports of circumvention and messaging results (`probe export --suite circumvention|messaging`):
one row per endpoint measurement (Tor, OpenVPN, VPN endpoints, encrypted DNS resolvers,
reflector kinds; Telegram's DCs and the apps' services, with their hops), named by
global ids like the measurements' exports, streamed chunk by chunk from the store.

- ``csv``: the verdict and where and when (no observation): :data:`ENDPOINT_CSV_COLUMNS`;
- ``jsonl``: the same keys plus the complete observation (queries, twin exchanges, decoys) and
  the control, as stored.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from probe.store.circumvention import iter_endpoint_exports
from probe.store.export import Filters

if TYPE_CHECKING:
    from probe.store import Store

__all__ = ["ENDPOINT_CSV_COLUMNS", "endpoint_csv_lines", "endpoint_jsonl_lines"]

#: Columns of `probe export --suite circumvention --format csv`, in order.
ENDPOINT_CSV_COLUMNS = ("uid", "run_uid", "vantage_uid", "vantage", "kind", "name", "address", "port",
                        "transport", "measured_at", "runtime", "verdict", "stage", "reasons",
                        "classifier_version", "source")  # fmt: skip


def _rows(store: Store, f: Filters, suite: str | None) -> Iterator[dict[str, Any]]:
    return iter_endpoint_exports(store, run_id=f.run_id, vantages=tuple(f.vantages), since=f.since,
                                 suite=suite)  # fmt: skip


def endpoint_csv_lines(store: Store, f: Filters, suite: str | None = None) -> Iterator[str]:
    """CSV text: a header, then one row per endpoint measurement (of ``suite``: circumvention,
    messaging; None: all) (``reasons`` is JSON)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(ENDPOINT_CSV_COLUMNS)
    for n, r in enumerate(_rows(store, f, suite), 1):
        w.writerow([json.dumps(r[c]) if c == "reasons" else r[c] for c in ENDPOINT_CSV_COLUMNS])
        if n % 2000 == 0:
            yield buf.getvalue()
            buf.seek(0)
            buf.truncate()
    yield buf.getvalue()


def endpoint_jsonl_lines(store: Store, f: Filters, suite: str | None = None) -> Iterator[str]:
    """One JSON line per endpoint measurement (of ``suite``), with its observation and control."""
    dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
    for r in _rows(store, f, suite):
        yield dumps({k: r[k] for k in (*ENDPOINT_CSV_COLUMNS, "observation", "control")}) + "\n"
