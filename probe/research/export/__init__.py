"""Exports of a results database for other tools: CSV, JSON lines, OONI's data format, Parquet.

Every format streams: rows are read in chunks by id and written as they come, so memory stays
flat however big the database. Rows are named by their global ids (``uid``), so exports of
different databases can be concatenated without merging them first.

- ``csv``: one row per measurement (verdict, where, when; no raw observations).

Where a measurement was taken is its own run's network (``asn``, ``as_org``, ``country``,
``resolver_asn``: what the run's public address and resolver mapped to, docs/identity.md), not
the vantage point's today: a laptop that moved from one network to another keeps each
measurement where it was made. A run that recorded none (before schema version 7,
``--no-identity``) gives its vantage point's (``--asn``, ``--country``); ``network_source``
says which (``run``, ``vantage_point``, or empty when neither is known).
- ``jsonl``: one JSON object per measurement: the verdict fields and the complete observations
  (``probe.core.codec.to_data`` of the Measurement: bodies and certificates in base64, controls).
- ``ooni``: one OONI Web Connectivity measurement per line (probe/research/ooni/export.py).
- ``parquet``: a directory with one file per entity (probe/research/export/parquet.py; needs pyarrow).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from typing import TYPE_CHECKING

from probe.core.codec import to_data
from probe.store.export import Filters, Record, iter_records, measurement_columns

if TYPE_CHECKING:
    from probe.store import Store

__all__ = ["FORMATS", "Filters", "Record", "csv_lines", "iter_records", "jsonl_lines"]

FORMATS = ("csv", "jsonl", "ooni", "parquet")


def jsonl_lines(store: Store, f: Filters) -> Iterator[str]:
    """One JSON line per measurement: ids, where, the verdict and the complete observations."""
    dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
    for r in iter_records(store, f):
        v = r.verdict
        yield dumps({
            "measurement_uid": r.uid, "run_uid": r.run_uid, "vantage_uid": r.vantage_uid,
            "vantage": r.vantage, "asn": r.network[0], "as_org": r.network[1],
            "country": r.network[2], "resolver_asn": r.network[3], "network_source": r.network[4],
            "final": r.final,
            "verdict": v.verdict, "stage": v.stage, "hop": v.hop, "reasons": list(v.reasons),
            "classifier_version": v.classifier_version, "classified_at": r.classified_at,
            **({"protocols": to_data(v.protocols)} if v.protocols else {}),  # --quic, --ech
            "measurement": to_data(r.measurement),
        }) + "\n"


#: Columns of the CSV export, in order.
CSV_COLUMNS = ("measurement_uid", "run_uid", "vantage_uid", "vantage", "asn", "as_org", "country",
               "resolver_asn", "network_source", "url",
               "original_url", "domain", "category", "source", "measured_at", "runtime",
               "attempt", "final", "failure", "n_hops", "final_url", "verdict", "stage", "hop",
               "reasons", "classifier_version", "classified_at", "quic_verdict", "quic_reasons",
               "ech_verdict", "ech_reasons")
# quic_* and ech_*: the QUIC and ECH tests' verdicts (probe run --quic, --ech), empty for URLs
# measured without them (probe.store.protocols.PROTOCOL_COLUMNS).


def csv_lines(store: Store, f: Filters) -> Iterator[str]:
    """CSV text (a header, then one row per measurement), in chunks. ``reasons`` is JSON."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(CSV_COLUMNS)
    for rows in measurement_columns(store, f, CSV_COLUMNS, chunk=2000):
        w.writerows(rows)
        yield buf.getvalue()
        buf.seek(0)
        buf.truncate()
    yield buf.getvalue()
