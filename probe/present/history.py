"""`probe history URL` for people: a URL's verdicts over time at each vantage point, with how
stable the latest one is, in 80 columns (or JSON lines / CSV)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from itertools import groupby
from typing import Any

from probe.judge.explain import decisive
from probe.present.terminal import clean, json_safe
from probe.present.text import cut, pad
from probe.store.history import HistoryRow, StabilityRow

__all__ = ["HISTORY_KEYS", "render_history", "render_history_csv", "render_history_json",
           "stability_words"]

#: The keys of each row of `probe history --json` and the columns of `--csv`.
HISTORY_KEYS = ("vantage", "url", "measured_at", "run_uid", "measurement_uid", "attempt",
                "verdict", "stage", "hop", "reasons", "classifier_version", "asn", "country",
                "network_source", "stable_runs", "stable_agree")

_WIDTHS = (("TIME", 20), ("RUN", 5), ("VERDICT", 13))


def _verdict(verdict: str, stage: str | None) -> str:
    return f"{verdict}/{stage}" if stage and verdict not in ("ok", "inconclusive") else verdict


def stability_words(s: StabilityRow) -> str:
    """``hijacked/dns now; 7 of the last 10 runs agree``."""
    if s.runs == 1:
        return f"{_verdict(s.verdict, s.stage)} now; measured in one run only"
    every = "all of " if s.agree == s.runs else f"{s.agree} of "
    return f"{_verdict(s.verdict, s.stage)} now; {every}the last {s.runs} runs agree"


def _reasons(text: str) -> list[str]:
    return [] if text == "[]" else [str(x) for x in json.loads(text)]


def render_history(rows: Sequence[HistoryRow], stability: Mapping[str, StabilityRow],
                   width: int = 80, last: int | None = None) -> Iterator[str]:
    """Per vantage point: its stability line, then its verdicts, newest first (the newest
    ``last`` when given, and how many older ones there are). Fits ``width`` columns."""
    reason_w = max(10, width - 2 - sum(w + 2 for _, w in _WIDTHS))
    yield cut(clean(rows[0].url), width) + "\n" if rows else ""
    for vantage, group in groupby(rows, key=lambda r: r.vantage):
        runs = list(group)[::-1]  # newest first
        s = stability.get(vantage)
        head = f"{clean(vantage)}: " + (stability_words(s) if s else "")
        buf = ["\n", cut(head, width) + "\n"]
        buf.append("  " + "  ".join(f"{n:<{w}}" for n, w in _WIDTHS) + "  REASON\n")
        shown = runs if last is None else runs[:last]
        for r in shown:
            reasons = _reasons(r.reasons)
            first = decisive(r.verdict, r.stage, reasons) or (reasons[0] if reasons else None)
            reason = clean(first or "-") + (f" +{len(reasons) - 1}" if len(reasons) > 1 else "")
            cells = (f"{r.measured_at[:16].replace('T', ' ')} UTC", str(r.run_id),
                     cut(_verdict(r.verdict, r.stage), 13))
            buf.append("  " + "  ".join(pad(c, w) for c, (_, w) in zip(cells, _WIDTHS, strict=True))
                       + "  " + cut(reason, reason_w) + "\n")
        if len(shown) < len(runs):
            buf.append(f"  ({len(runs) - len(shown)} older not shown: --last)\n")
        yield "".join(buf)


def _record(r: HistoryRow, stability: Mapping[str, StabilityRow]) -> dict[str, Any]:
    s = stability.get(r.vantage)
    d = {k: getattr(r, k) for k in HISTORY_KEYS if hasattr(r, k)}
    d["reasons"] = _reasons(r.reasons)
    d["stable_runs"], d["stable_agree"] = (s.runs, s.agree) if s else (None, None)
    return d


def render_history_json(rows: Iterable[HistoryRow], stability: Mapping[str, StabilityRow]
                        ) -> Iterator[str]:
    """One JSON object per verdict (:data:`HISTORY_KEYS`), oldest first per vantage point."""
    dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
    for r in rows:
        yield json_safe(dumps(_record(r, stability))) + "\n"


def render_history_csv(rows: Iterable[HistoryRow], stability: Mapping[str, StabilityRow]
                       ) -> Iterator[str]:
    """CSV with a header (:data:`HISTORY_KEYS`; reasons space-separated; text made safe for a
    terminal, as probe results' CSV)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(HISTORY_KEYS)
    for r in rows:
        d = _record(r, stability)
        d["reasons"] = " ".join(d["reasons"])
        w.writerow([clean(d[k]) if isinstance(d[k], str) else d[k] for k in HISTORY_KEYS])
    yield buf.getvalue()
