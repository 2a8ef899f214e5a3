"""`probe results --suite quic|ech`: the verdicts of the opt-in protocol tests, as text.

Rows come from :func:`probe.store.protocols.protocol_results`; the REASON column is the reason
that decided each verdict (the first one for ``ok``), and ``WEB`` is the URL's web verdict
beside it, so that "reachable over TCP, blocked over QUIC" reads on one line.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

from probe.judge.explain import decisive
from probe.present.tables import abbreviate_reasons, fit_columns, format_csv, time_text, write_fixed_width
from probe.present.terminal import clean
from probe.present.text import cut, cut_middle

__all__ = ["CSV_KEYS", "format_protocol_csv", "format_protocol_table"]

# (name, width, flexible minimum or 0 for fixed, drop order: higher goes first when narrow)
_COLUMNS: tuple[tuple[str, int, int, int], ...] = (
    ("URL", 50, 20, 0), ("VERDICT", 12, 0, 0), ("WEB", 12, 0, 2), ("REASON", 60, 16, 0),
    ("VANTAGE", 12, 0, 3), ("RUN", 5, 0, 4), ("TIME", 20, 0, 1),
)  # fmt: skip


def _reasons(r: dict[str, Any]) -> list[str]:
    """The reasons with the decisive one first."""
    reasons: list[str] = list(r["reasons"] or [])
    key = decisive(r["verdict"], r["stage"], reasons)
    if key is None or reasons[:1] == [key]:
        return reasons
    return [key, *(x for x in reasons if x != key)]


def _cells(widths: dict[str, int]) -> Callable[[dict[str, Any]], tuple[Any, ...]]:
    def cell(name: str, r: dict[str, Any]) -> Any:
        if name == "URL":
            return cut_middle(clean(r["url"]), widths[name])
        if name == "REASON":
            return abbreviate_reasons(_reasons(r), widths[name])
        if name == "VANTAGE":
            return cut(clean(str(r["vantage"])), widths[name])
        if name == "TIME":
            return time_text(r["measured_at"])
        return r[{"VERDICT": "verdict", "WEB": "web_verdict", "RUN": "run_id"}[name]]

    return lambda r: tuple(cell(name, r) for name in widths)


def format_protocol_table(rows: Iterable[dict[str, Any]], width: int = 160) -> Iterator[str]:
    """Protocol verdicts as lines fitted to ``width`` (a header first, a count at the end)."""
    cols = fit_columns(_COLUMNS, width)
    return write_fixed_width(rows, cols, _cells(dict(cols)), "result")


#: Columns of `probe results --suite quic|ech --csv`.
CSV_KEYS = ("url", "suite", "verdict", "stage", "hop", "decisive_reason", "explanation", "reasons",
            "web_verdict", "vantage", "run_id", "measured_at", "category", "classifier_version",
            "id")  # fmt: skip


def format_protocol_csv(rows: Iterable[dict[str, Any]]) -> Iterator[str]:
    """Protocol verdicts as CSV (RFC 4180, a header row first), in chunks of text."""
    return format_csv(rows, CSV_KEYS)
