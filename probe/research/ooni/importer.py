"""``probe import ooni``: stream OONI measurements into a probe database, re-judged by probe.

Each measurement becomes a probe measurement (classified by :func:`probe.judge.classify.classify`)
plus one ``ooni_measurements`` row with OONI's identifiers, OONI's own verdict and what had to
be inferred. The vantage point is ``ooni-CC-ASN`` (probe_cc, probe_asn); each OONI report is
a run. Lines that are not usable measurements are reported as ``file:line: reason`` and
skipped; a measurement already imported (same report, input and start time) is skipped, so an
import can be repeated or resumed. Writes go in batches, one transaction each: memory stays
flat and an interrupted import keeps every batch already written.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from probe.core.model import Measurement, Verdict
from probe.inputs.fingerprints import Fingerprints
from probe.inputs.geo import GeoDB
from probe.judge.classify import classify
from probe.research.ooni import OONIFormatError, OONIRecord, iter_lines, parse_measurement
from probe.research.ooni.files import Limits
from probe.store import SQLiteError, Store
from probe.store.ooni import (
    ImportKey,
    OONISource,
    disagreements,
    imported_keys,
    verdict_pairs,
    write_imported,
)

__all__ = ["ImportStats", "Limits", "agreement", "disagreements", "import_ooni", "verdict_class"]

#: Measurements per transaction.
BATCH = 500
#: What storing a mapped measurement can raise for a value SQLite cannot hold.
_UNSTORABLE = (OverflowError, ValueError, TypeError, SQLiteError)
#: Runs (OONI reports) kept open at once; older ones are finished (memory stays bounded).
OPEN_RUNS = 256
_INTERFERENCE = frozenset({"blocked", "reset", "hijacked"})


def verdict_class(verdict: str) -> str:
    """``interference`` for blocked/reset/hijacked (OONI does not tell them apart the same way
    probe does), else the verdict itself: the level at which probe and OONI are compared."""
    return "interference" if verdict in _INTERFERENCE else verdict


@dataclass
class ImportStats:
    """What an import did."""

    read: int = 0
    imported: int = 0
    duplicates: int = 0
    skipped: int = 0  # malformed or not web_connectivity
    errors: list[str] = field(default_factory=list)  # the first few "file:line: reason"
    verdicts: dict[str, int] = field(default_factory=dict)
    agree: int = 0


def _vantage(store: Store, rec: OONIRecord, cache: dict[tuple[str, str], int]) -> int:
    cc = str(rec.meta.get("probe_cc") or "ZZ")
    asn_text = str(rec.meta.get("probe_asn") or "AS0")
    key = (cc, asn_text)
    vid = cache.get(key)
    if vid is None:
        asn = int(asn_text[2:]) if asn_text.upper().startswith("AS") and asn_text[2:].isdigit() else None
        vid = store.vantage(f"ooni-{cc}-{asn_text}", asn=asn, country=cc,
                            as_org=rec.meta.get("probe_network_name") or None, source="ooni")  # fmt: skip
        cache[key] = vid
    return vid


def import_ooni(
    store: Store,
    paths: Sequence[Path],
    *,
    fingerprints: Fingerprints | None = None,
    geo: GeoDB | None = None,
    on_error: Callable[[str], None] | None = None,
    batch: int = BATCH,
    limits: Limits = Limits(),
) -> ImportStats:
    """Import every OONI Web Connectivity measurement of ``paths`` (files or directories).

    Files are read within ``limits`` (:mod:`probe.research.ooni.files`). A line that cannot be
    read, parsed, mapped, judged or stored is skipped and reported as ``file:line: reason``
    (``on_error``); every other line of the same file is imported.
    """
    stats = ImportStats()
    vantages: dict[tuple[str, str], int] = {}
    runs: OrderedDict[tuple[int, str], int] = OrderedDict()
    pending: list[tuple[int, int, Measurement, Verdict, OONIRecord, str]] = []

    def report(msg: str) -> None:
        stats.skipped += 1
        if len(stats.errors) < 100:
            stats.errors.append(msg)
        if on_error is not None:
            on_error(msg)

    def run_for(vid: int, report_id: str) -> int:
        key = (vid, report_id)
        rid = runs.get(key)
        if rid is not None:
            runs.move_to_end(key)
            return rid
        rid = store.start_run(vid, [str(p) for p in paths], {"source": "ooni import", "report_id": report_id})
        runs[key] = rid
        if len(runs) > OPEN_RUNS:
            flush()
            _, old = runs.popitem(last=False)
            store.finish_run(old, "complete")
        return rid

    def flush() -> None:
        if not pending:
            return
        keys = [ImportKey(r.meta.get("report_id") or "", r.measurement.target.original_url,
                          r.meta.get("measurement_start_time") or "", r.meta.get("measurement_uid") or "")
                for *_, r, _src in pending]  # fmt: skip
        seen = imported_keys(store, keys)
        by_run: dict[tuple[int, int], list[int]] = {}
        fresh: set[ImportKey] = set()
        for k, (key, item) in enumerate(zip(keys, pending, strict=True)):
            if key in seen or key in fresh:
                stats.duplicates += 1
                continue
            fresh.add(key)
            by_run.setdefault((item[0], item[1]), []).append(k)
        for (rid, vid), idx in by_run.items():
            items = [(pending[k][2], pending[k][3], _source(pending[k][4], pending[k][5])) for k in idx]
            try:
                write_imported(store, rid, vid, items)
                stored = items
            except _UNSTORABLE:
                # The batch was rolled back: store its measurements one by one, so that one
                # the database cannot hold (a number beyond 64 bits, say) costs only itself.
                stored = []
                for one in items:
                    try:
                        write_imported(store, rid, vid, [one])
                        stored.append(one)
                    except _UNSTORABLE as exc:
                        report(f"{one[2].source}: cannot be stored ({type(exc).__name__}: {exc})")
            for _m, v, src in stored:
                stats.imported += 1
                stats.verdicts[v.verdict] = stats.verdicts.get(v.verdict, 0) + 1
                stats.agree += verdict_class(v.verdict) == verdict_class(src.ooni_verdict)
        pending.clear()

    for name, line, obj in iter_lines(paths, limits=limits):
        stats.read += 1
        if isinstance(obj, OONIFormatError):
            report(f"{name}:{line}: {obj}")
            continue
        try:
            rec = parse_measurement(obj)
            v = classify(rec.measurement, fingerprints=fingerprints, geo=geo)
        except OONIFormatError as exc:
            report(f"{name}:{line}: {exc}")
            continue
        except Exception as exc:
            # A line shaped in a way the mapping or the classifier did not foresee is that
            # line's problem, not the import's: the good lines of the file still count.
            report(f"{name}:{line}: cannot be mapped ({type(exc).__name__}: {exc})")
            continue
        vid = _vantage(store, rec, vantages)
        rid = run_for(vid, str(rec.meta.get("report_id") or ""))
        pending.append((rid, vid, rec.measurement, v, rec, f"{Path(name).name}:{line}"))
        if len(pending) >= batch:
            flush()
    flush()
    for rid in runs.values():
        store.finish_run(rid, "complete")
    return stats


def _source(r: OONIRecord, src: str) -> OONISource:
    """What is kept of OONI's record beside probe's (``src``: file:line)."""
    meta = r.meta
    return OONISource(
        report_id=meta.get("report_id") or "", measurement_uid=meta.get("measurement_uid") or "",
        input=r.measurement.target.original_url,
        measurement_start_time=meta.get("measurement_start_time") or "",
        probe_asn=meta.get("probe_asn"), probe_cc=meta.get("probe_cc"),
        resolver_asn=meta.get("resolver_asn"), software=meta.get("software"),
        engine=meta.get("engine"), test_version=meta.get("test_version"), blocking=r.blocking,
        accessible=r.accessible, ooni_verdict=r.ooni_verdict, inferred=r.inferred, source=src,
    )  # fmt: skip


def agreement(store: Store) -> dict[str, int]:
    """Counts of (probe class, OONI class) pairs over every imported measurement."""
    out: dict[str, int] = {}
    for pair in verdict_pairs(store):
        key = f"{verdict_class(pair.probe_verdict)}|{verdict_class(pair.ooni_verdict)}"
        out[key] = out.get(key, 0) + int(pair.n)
    return out
