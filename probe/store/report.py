"""Text renderings of result rows: a fixed-width table, or JSON lines. Both stream in chunks."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from typing import Any

__all__ = [
    "abbreviate_reasons",
    "format_json_lines",
    "format_outages_table",
    "format_runs_table",
    "format_table",
]

_CHUNK = 2000  # rows per chunk written to the terminal
_COLUMNS = (("URL", 48), ("VERDICT", 12), ("STAGE", 5), ("REASONS", 34), ("VANTAGE", 12),
            ("RUN", 5), ("TIME", 19))
_JSON_KEYS = ("url", "verdict", "stage", "hop", "reasons", "vantage", "run_id", "measured_at",
              "category", "domain", "attempt", "runtime", "classifier_version", "measurement_id")


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def abbreviate_reasons(reasons: list[str], width: int = 34) -> str:
    """The first reason, cut to fit, and ``+N`` for the others."""
    if not reasons:
        return "-"
    more = f" +{len(reasons) - 1}" if len(reasons) > 1 else ""
    return _cut(reasons[0], width - len(more)) + more


def _fixed_width(
    rows: Iterable[dict[str, Any]],
    columns: tuple[tuple[str, int], ...],
    cells: Callable[[dict[str, Any]], tuple[Any, ...]],
    noun: str,
) -> Iterator[str]:
    """Fixed-width lines (a header first; ``(N nouns)`` at the end), in chunks of text.

    The last column has no width: it takes the rest of the line.
    """
    fmt = "  ".join(f"{{:<{w}}}" for _, w in columns[:-1]) + "  {}\n"
    buf = [fmt.format(*(name for name, _ in columns))]
    n = 0
    for r in rows:
        n += 1
        buf.append(fmt.format(*cells(r)))
        if len(buf) >= _CHUNK:
            yield "".join(buf)
            buf = []
    buf.append(f"({n} {noun}{'s' if n != 1 else ''})\n")
    yield "".join(buf)


def _time(iso: str | None) -> str:
    return (iso or "-")[:19].replace("T", " ")


def _result_cells(r: dict[str, Any]) -> tuple[Any, ...]:
    return (_cut(r["url"], 48), r["verdict"], r["stage"] or "-", abbreviate_reasons(r["reasons"]),
            _cut(r["vantage"], 12), r["run_id"], _time(r["measured_at"]))  # fmt: skip


def format_table(rows: Iterable[dict[str, Any]]) -> Iterator[str]:
    """Results as fixed-width lines (a header first; a count at the end), in chunks of text."""
    return _fixed_width(rows, _COLUMNS, _result_cells, "result")


def format_json_lines(
    rows: Iterable[dict[str, Any]], keys: Iterable[str] | None = _JSON_KEYS
) -> Iterator[str]:
    """One JSON object per line, in chunks of text: ``keys`` of each row (None: all of them).

    The default keys are those `probe results --json` documents.
    """
    dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
    wanted = None if keys is None else tuple(keys)
    buf: list[str] = []
    for r in rows:
        buf.append(dumps(r if wanted is None else {k: r[k] for k in wanted if k in r}) + "\n")
        if len(buf) >= _CHUNK:
            yield "".join(buf)
            buf = []
    if buf:
        yield "".join(buf)


_RUN_COLUMNS = (("RUN", 5), ("VANTAGE", 12), ("STARTED", 19), ("FINISHED", 19), ("STATUS", 11),
                ("URLS", 6), ("VERDICTS", 0))


def _run_cells(r: dict[str, Any]) -> tuple[Any, ...]:
    verdicts = " ".join(f"{k} {v}" for k, v in r["counts"].items() if v) or "-"
    return (r["run_id"], _cut(r["vantage"], 12), _time(r["started_at"]), _time(r["finished_at"]),
            r["status"], r["n_measurements"], verdicts)  # fmt: skip


def format_runs_table(rows: Iterable[dict[str, Any]]) -> Iterator[str]:
    """Runs as fixed-width lines: the non-zero verdict counts of each, and a count at the end."""
    return _fixed_width(rows, _RUN_COLUMNS, _run_cells, "run")


_OUTAGE_COLUMNS = (("VANTAGE", 12), ("STATE", 7), ("FIRST SEEN", 19), ("LAST SEEN", 19),
                   ("AFTER", 19), ("BEFORE", 19), ("EVIDENCE", 0))


def _outage_cells(o: dict[str, Any]) -> tuple[Any, ...]:
    return (_cut(o["vantage"], 12), o["state"], _time(o["first_seen"]), _time(o["last_seen"]),
            _time(o["after"]), _time(o["before"]) if o["before"] else "ongoing", o["evidence"])  # fmt: skip


def format_outages_table(rows: Iterable[dict[str, Any]]) -> Iterator[str]:
    """Outage intervals (``probe.outages.Outage.to_dict``) as fixed-width lines."""
    return _fixed_width(rows, _OUTAGE_COLUMNS, _outage_cells, "outage")
