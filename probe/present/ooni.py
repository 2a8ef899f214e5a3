"""OONI measurements imported into probe, for people: what an import did (``probe import
ooni``), and where probe's verdicts and OONI's agree and differ (``probe import ooni --report``,
``probe compare --with-ooni``), as text or JSON lines.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from probe.present.terminal import clean
from probe.present.text import wrap
from probe.research.ooni.importer import (
    ImportStats,
    agreement,
    disagreements,
    endpoint_agreement,
    endpoint_disagreements,
)

if TYPE_CHECKING:
    from probe.store import Store

__all__ = ["format_import", "format_skipped", "ooni_report"]


def format_import(stats: ImportStats, db: Path, width: int = 80) -> str:
    """What an import did, in lines of at most ``width`` columns: lines read and imported into
    ``db``, probe's verdicts, agreement with OONI; then the endpoints of OONI's other
    experiments, when there were any."""
    counts = ", ".join(f"{k} {v}" for k, v in sorted(stats.verdicts.items()))
    web = sum(stats.verdicts.values())
    lines = wrap(
        f"imported {stats.imported} of {stats.read} lines into {clean(db)} "
        f"({stats.duplicates} already there, {stats.skipped} skipped); "
        f"probe's verdicts: {clean(counts) or 'none'}; agrees with OONI on "
        f"{stats.agree} of {web + stats.duplicates}", width, "", "  ")  # fmt: skip
    if stats.experiments:
        tests = ", ".join(f"{k} {v}" for k, v in sorted(stats.experiments.items()))
        eps = ", ".join(f"{k} {v}" for k, v in sorted(stats.endpoint_verdicts.items()))
        lines += wrap(
            f"other experiments: {clean(tests)}; {stats.endpoints} endpoints, probe's verdicts: "
            f"{clean(eps) or 'none'}; agrees with OONI on {stats.endpoint_agree} of "
            f"{stats.endpoints}", width, "", "  ")  # fmt: skip
    return "\n".join(lines)


def format_skipped(message: str, width: int = 80) -> str:
    """A line of an OONI file that was skipped (``file:line: why``, quoting the file: made safe
    for a terminal), in lines of at most ``width`` columns."""
    return "\n".join(wrap(f"skipped {clean(message)}", width, "", "  "))


def ooni_report(store: Store, limit: int, as_json: bool, width: int = 80) -> Iterator[str]:
    """Lines of at most ``width`` columns: how often probe and OONI agree on the imported
    measurements of ``store``, then the first ``limit`` where they differ (``as_json``: only
    those, one JSON object a line); the same for the endpoints of OONI's other experiments.
    Every field quoted from the OONI files is made safe for a terminal
    (:mod:`probe.present.terminal`)."""
    rows = disagreements(store, limit)
    eps = endpoint_disagreements(store, limit)
    if as_json:
        for r in rows:
            yield json.dumps(r, sort_keys=True) + "\n"
        for r in eps:
            yield json.dumps(r, sort_keys=True) + "\n"
        return
    yield from _section("imported measurements", agreement(store), rows, 4, width, lambda r: (
        f"#{r['measurement_id']} {r['input']}",
        f"(blocking={r['ooni_blocking']}, accessible={r['ooni_accessible']})"))  # fmt: skip
    pairs = endpoint_agreement(store)
    if pairs:  # the endpoints of OONI's other experiments, when any were imported
        yield from _section("endpoints of OONI's other experiments", pairs, eps, 3, width, lambda r: (
            f"#{r['endpoint_id']} {r['test_name']} {r['target']}", f"({r['ooni_status']})"))  # fmt: skip


def _section(what: str, pairs: dict[str, int], rows: list[dict[str, Any]], reasons_shown: int,
             width: int, names: Callable[[dict[str, Any]], tuple[str, str]]) -> Iterator[str]:
    """Agreement of probe and OONI (``pairs``: ``probe class|OONI class`` -> count), then the
    rows where they differ, in lines of at most ``width`` columns; ``names``: a row's (what it
    is, OONI's own words of it), made safe for a terminal here."""
    total = sum(pairs.values())
    same = sum(n for k, n in pairs.items() if k.split("|")[0] == k.split("|")[1])
    yield "".join(line + "\n" for line in wrap(f"{total} {what}; probe and OONI agree on {same}",
                                                width, "", "  "))
    for k, n in sorted(pairs.items(), key=lambda kv: -kv[1]):
        p, o = k.split("|")
        yield f"  probe {clean(p):<13} OONI {clean(o):<13} {n}\n"
    if rows:
        yield f"where they differ (first {len(rows)}):\n"
    for r in rows:
        reasons = ", ".join(json.loads(str(r["probe_reasons"]))[:reasons_shown])
        what_it_is, ooni_words = names(r)
        text = clean(f"{what_it_is} {r['probe_cc']} {r['probe_asn']} "
                     f"{r['measurement_start_time']}: probe {r['probe_verdict']}"
                     f"{'/' + str(r['probe_stage']) if r['probe_stage'] else ''} ({reasons}); "
                     f"OONI {r['ooni_verdict']} {ooni_words}")  # fmt: skip
        yield "".join(line + "\n" for line in wrap(text, width, "  ", "      "))
