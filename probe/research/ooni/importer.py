"""``probe import ooni``: stream OONI measurements into a probe database, re-judged by probe.

Each Web Connectivity measurement becomes a probe measurement (classified by
:func:`probe.judge.classify.classify`) plus one ``ooni_measurements`` row with OONI's
identifiers, OONI's own verdict and what had to be inferred. Each measurement of OONI's other
experiments (:data:`probe.research.ooni.experiments.EXPERIMENTS`: tor, openvpn, telegram,
whatsapp, signal, ...) becomes endpoint rows beside probe's own circumvention and messaging
results (judged by :func:`probe.judge.circumvention.judge_without_control`), each with an
``ooni_endpoints`` row keeping OONI's verdict of it. The vantage point is ``ooni-CC-ASN``
(probe_cc, probe_asn); each OONI report is a run. Lines that are not usable measurements are
reported as ``file:line: reason`` and skipped; a measurement already imported (same report,
input and start time; for the other experiments, the same endpoints) is skipped, so an import
can be repeated or resumed. Writes go in batches, one transaction each: memory stays
flat and an interrupted import keeps every batch already written.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from probe.core.model import EndpointObservation, Measurement, Verdict
from probe.inputs.fingerprints import Fingerprints
from probe.inputs.geo import GeoDB
from probe.judge.circumvention import judge_without_control
from probe.judge.classify import classify
from probe.research.ooni import OONIFormatError, OONIRecord, iter_lines, parse_measurement
from probe.research.ooni.experiments import EXPERIMENTS, OONIExperiment, parse_experiment
from probe.research.ooni.files import Limits
from probe.store import SQLiteError, Store
from probe.store.ooni import (
    ImportKey,
    OONIEndpointSource,
    OONISource,
    VerdictPair,
    disagreements,
    endpoint_disagreements,
    endpoint_verdict_pairs,
    imported_endpoint_uids,
    imported_keys,
    verdict_pairs,
    write_imported,
    write_imported_endpoints,
)
from probe.store.uid import uuid7

__all__ = ["ImportStats", "Limits", "agreement", "disagreements", "endpoint_agreement",
           "endpoint_disagreements", "import_ooni", "verdict_class"]

_T = TypeVar("_T")

#: Measurements per transaction.
BATCH = 500
#: What storing a mapped measurement can raise for a value SQLite cannot hold.
_UNSTORABLE = (OverflowError, ValueError, TypeError, SQLiteError)
#: Runs (OONI reports) kept open at once; older ones are finished (memory stays bounded).
OPEN_RUNS = 256
# "anomaly": OONI's word for a failure of an experiment it makes no claim about (experiments).
_INTERFERENCE = frozenset({"blocked", "reset", "hijacked", "anomaly"})


def verdict_class(verdict: str) -> str:
    """``interference`` for blocked/reset/hijacked (OONI does not tell them apart the same way
    probe does) and OONI's ``anomaly``, else the verdict itself: the level at which probe and
    OONI are compared."""
    return "interference" if verdict in _INTERFERENCE else verdict


@dataclass
class ImportStats:
    """What an import did."""

    read: int = 0
    imported: int = 0  # measurements (of every experiment)
    duplicates: int = 0
    skipped: int = 0  # malformed, or of an experiment probe does not import
    errors: list[str] = field(default_factory=list)  # the first few "file:line: reason"
    verdicts: dict[str, int] = field(default_factory=dict)  # Web Connectivity: probe's verdicts
    agree: int = 0  # Web Connectivity measurements where probe and OONI agree
    experiments: dict[str, int] = field(default_factory=dict)  # measurements imported per test_name
    endpoints: int = 0  # endpoints of the other experiments stored
    endpoint_verdicts: dict[str, int] = field(default_factory=dict)
    endpoint_agree: int = 0


def _vantage(store: Store, meta: Mapping[str, Any], cache: dict[tuple[str, str], int]) -> int:
    cc = str(meta.get("probe_cc") or "ZZ")
    asn_text = str(meta.get("probe_asn") or "AS0")
    key = (cc, asn_text)
    vid = cache.get(key)
    if vid is None:
        asn = int(asn_text[2:]) if asn_text.upper().startswith("AS") and asn_text[2:].isdigit() else None
        vid = store.vantage(f"ooni-{cc}-{asn_text}", asn=asn, country=cc,
                            as_org=meta.get("probe_network_name") or None, source="ooni")  # fmt: skip
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
    pending_eps: list[_Judged] = []

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
            flush_endpoints()
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
            stored = _store_batch(partial(write_imported, store, rid, vid), items, lambda one: one[2].source,
                                  report)  # fmt: skip
            for _m, v, src in stored:
                stats.imported += 1
                stats.verdicts[v.verdict] = stats.verdicts.get(v.verdict, 0) + 1
                stats.agree += verdict_class(v.verdict) == verdict_class(src.ooni_verdict)
        pending.clear()

    def flush_endpoints() -> None:
        if not pending_eps:
            return
        seen = imported_endpoint_uids(store, [src.uid for j in pending_eps for *_, src in j.rows])
        groups: dict[tuple[int, int, str], list[_Judged]] = {}
        for j in pending_eps:
            fresh = [row for row in j.rows if row[3].uid not in seen]
            seen.update(row[3].uid for row in fresh)
            if not fresh:
                stats.duplicates += 1
                continue
            groups.setdefault((j.run_id, j.vantage_id, j.suite), []).append(_Judged(
                j.run_id, j.vantage_id, j.suite, j.test_name, j.where, tuple(fresh)))
        for (rid, vid, suite), judged in groups.items():
            stored_eps = _store_batch(partial(_write_judged, store, rid, vid, suite), judged,
                                      lambda one: one.where, report)  # fmt: skip
            for j in stored_eps:
                stats.imported += 1
                stats.experiments[j.test_name] = stats.experiments.get(j.test_name, 0) + 1
                for _o, _c, v, src in j.rows:
                    stats.endpoints += 1
                    stats.endpoint_verdicts[v.verdict] = stats.endpoint_verdicts.get(v.verdict, 0) + 1
                    stats.endpoint_agree += verdict_class(v.verdict) == verdict_class(src.ooni_verdict)
        pending_eps.clear()

    def mapped(build: Callable[[], _T], where: str) -> _T | None:
        """``build()``, or None with ``where`` reported: a line shaped in a way the mapping or
        the classifier did not foresee is that line's problem, not the import's (the good lines
        of the file still count)."""
        try:
            return build()
        except OONIFormatError as exc:
            report(f"{where}: {exc}")
        except Exception as exc:
            report(f"{where}: cannot be mapped ({type(exc).__name__}: {exc})")
        return None

    for name, line, obj in iter_lines(paths, limits=limits):
        stats.read += 1
        if isinstance(obj, OONIFormatError):
            report(f"{name}:{line}: {obj}")
            continue
        where = f"{name}:{line}"
        if isinstance(obj, Mapping) and obj.get("test_name") in EXPERIMENTS:
            judged = mapped(partial(_experiment, obj, f"{Path(name).name}:{line}", fingerprints, geo), where)
            if judged is None:
                continue
            exp, rows = judged
            vid = _vantage(store, exp.meta, vantages)
            rid = run_for(vid, str(exp.meta.get("report_id") or ""))
            pending_eps.append(_Judged(rid, vid, exp.suite, exp.test_name, where, rows))
            if len(pending_eps) >= batch:
                flush_endpoints()
            continue
        classified = mapped(partial(_web_connectivity, obj, fingerprints, geo), where)
        if classified is None:
            continue
        rec, v = classified
        vid = _vantage(store, rec.meta, vantages)
        rid = run_for(vid, str(rec.meta.get("report_id") or ""))
        pending.append((rid, vid, rec.measurement, v, rec, f"{Path(name).name}:{line}"))
        if len(pending) >= batch:
            flush()
    flush()
    flush_endpoints()
    for rid in runs.values():
        store.finish_run(rid, "complete")
    return stats


def _store_batch(write: Callable[[list[_T]], object], items: Sequence[_T], where: Callable[[_T], str],
                 report: Callable[[str], None]) -> list[_T]:
    """Write ``items`` in one transaction (``write``); the items stored. When the database refuses
    the batch (rolled back), they are written one by one, so that one it cannot hold (a number
    beyond 64 bits, say) costs only itself, reported as ``where: cannot be stored (...)``."""
    try:
        write(list(items))
        return list(items)
    except _UNSTORABLE:
        stored = []
        for one in items:
            try:
                write([one])
                stored.append(one)
            except _UNSTORABLE as exc:
                report(f"{where(one)}: cannot be stored ({type(exc).__name__}: {exc})")
        return stored


_EndpointRow = tuple[EndpointObservation, None, Verdict, OONIEndpointSource]


@dataclass(frozen=True)
class _Judged:
    """The judged endpoints of one experiment measurement, waiting to be written."""

    run_id: int
    vantage_id: int
    suite: str
    test_name: str
    where: str  # file:line
    rows: tuple[_EndpointRow, ...]


def _web_connectivity(obj: object, fingerprints: Fingerprints | None,
                      geo: GeoDB | None) -> tuple[OONIRecord, Verdict]:
    """A Web Connectivity measurement mapped, and probe's verdict of it."""
    rec = parse_measurement(obj)
    return rec, classify(rec.measurement, fingerprints=fingerprints, geo=geo)


def _experiment(obj: Mapping[str, Any], src: str, fingerprints: Fingerprints | None,
                geo: GeoDB | None) -> tuple[OONIExperiment, tuple[_EndpointRow, ...]]:
    """A measurement of another experiment mapped, and probe's verdicts of its endpoints."""
    exp = parse_experiment(obj)
    return exp, _judge_experiment(exp, src, fingerprints, geo)


def _write_judged(store: Store, run_id: int, vantage_id: int, suite: str, judged: list[_Judged]) -> int:
    """Store the endpoints of judged experiment measurements in one transaction."""
    return write_imported_endpoints(store, run_id, vantage_id, suite, [row for j in judged for row in j.rows])


def _judge_experiment(exp: OONIExperiment, src: str, fingerprints: Fingerprints | None,
                      geo: GeoDB | None) -> tuple[_EndpointRow, ...]:
    """Probe's verdict of every endpoint of ``exp``, with what is kept of OONI's (``src``: file:line)."""
    meta = exp.meta
    start = str(meta.get("measurement_start_time") or "")
    ident = (str(meta.get("report_id") or ""), str(meta.get("measurement_uid") or ""), start, exp.input,
             exp.test_name)  # fmt: skip
    keys = json.dumps(dict(exp.ooni_keys), sort_keys=True)
    rows = []
    for ep in exp.endpoints:
        v = judge_without_control(ep.observation, ep.evidence, fixed_target=exp.test_name != "urlgetter",
                                  fingerprints=fingerprints, geo=geo)  # fmt: skip
        uid = uuid7(int(ep.observation.started * 1000), seed="\x1f".join((*ident, ep.target)).encode())
        rows.append((ep.observation, None, v, OONIEndpointSource(
            uid=uid, test_name=exp.test_name, report_id=ident[0], measurement_uid=ident[1], input=exp.input,
            measurement_start_time=start, target=ep.target, probe_asn=meta.get("probe_asn"),
            probe_cc=meta.get("probe_cc"), resolver_asn=meta.get("resolver_asn"),
            software=meta.get("software"), engine=meta.get("engine"),
            test_version=meta.get("test_version"), ooni_status=ep.ooni_status,
            ooni_verdict=ep.ooni_verdict, ooni_keys=keys, source=src)))  # fmt: skip
    return tuple(rows)


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
    return _classes(verdict_pairs(store))


def endpoint_agreement(store: Store) -> dict[str, int]:
    """Counts of (probe class, OONI class) pairs over every imported endpoint of OONI's other
    experiments."""
    return _classes(endpoint_verdict_pairs(store))


def _classes(pairs: Iterable[VerdictPair]) -> dict[str, int]:
    """``probe class|OONI class`` -> count, from verdict pairs."""
    out: dict[str, int] = {}
    for pair in pairs:
        key = f"{verdict_class(pair.probe_verdict)}|{verdict_class(pair.ooni_verdict)}"
        out[key] = out.get(key, 0) + int(pair.n)
    return out
