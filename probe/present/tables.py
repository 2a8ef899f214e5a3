"""Text renderings of result rows: a table fitted to a width, JSON lines or CSV, in chunks."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from probe.judge.explain import decisive, explain
from probe.present.text import cut, printable

__all__ = [
    "CSV_KEYS",
    "abbreviate_reasons",
    "fit_columns",
    "format_csv",
    "format_json_lines",
    "format_latest_runs",
    "format_outages_table",
    "format_runs_table",
    "format_table",
]

_CHUNK = 2000  # rows per chunk written to the terminal
_JSON_KEYS = ("url", "verdict", "stage", "hop", "reasons", "vantage", "run_id", "measured_at",
              "category", "domain", "attempt", "runtime", "classifier_version", "measurement_id")


def abbreviate_reasons(reasons: list[str], width: int = 34) -> str:
    """The first reason, cut to fit, and ``+N`` for the others."""
    if not reasons:
        return "-"
    more = f" +{len(reasons) - 1}" if len(reasons) > 1 else ""
    return cut(reasons[0], width - len(more)) + more


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
    # Stored times are UTC; the table says so on every row, to the minute (JSON and CSV keep
    # the full ISO 8601 time with its Z).
    return f"{iso[:16].replace('T', ' ')} UTC" if iso else "-"


_TIME_WIDTH = 20  # "2026-11-26 11:52 UTC"
# (name, width, flexible minimum or 0 for fixed, drop order: higher goes first when narrow)
_RESULT_COLUMNS: tuple[tuple[str, int, int, int], ...] = (
    ("URL", 60, 24, 0), ("VERDICT", 12, 0, 0), ("STAGE", 5, 0, 2), ("REASON", 60, 16, 0),
    ("VANTAGE", 12, 0, 3), ("RUN", 5, 0, 4), ("TIME", _TIME_WIDTH, 0, 1),
)  # fmt: skip


def fit_columns(
    columns: tuple[tuple[str, int, int, int], ...], width: int
) -> tuple[tuple[str, int], ...]:
    """Choose columns and widths so that a line (two spaces between columns) fits ``width``.

    Fixed columns keep their width; droppable ones (drop order > 0) go, highest first, until
    the flexible columns get at least their minimum; the flexible columns then share what is
    left in proportion to their preferred widths. A line never exceeds ``width`` unless even
    the minimal table does not fit.
    """
    kept = list(columns)

    def need(cols: list[tuple[str, int, int, int]]) -> int:
        return sum(m or w for _, w, m, _ in cols) + 2 * (len(cols) - 1)

    for _, _, _, order in sorted(columns, key=lambda c: -c[3]):
        if order == 0 or need(kept) <= width:
            break
        kept = [c for c in kept if c[3] != order]
    fixed = sum(w for _, w, m, _ in kept if not m) + 2 * (len(kept) - 1)
    flex = [(w, m) for _, w, m, _ in kept if m]
    room = width - fixed
    spare = max(0, room - sum(m for _, m in flex))
    stretch = sum(w - m for w, m in flex)
    out: list[tuple[str, int]] = []
    for name, w, m, _ in kept:
        if not m or room >= sum(w for w, _ in flex):
            out.append((name, w))
        else:  # minimum, plus a share of the spare room in proportion to what it would like
            out.append((name, m + (spare * (w - m) // stretch if stretch else 0)))
    return tuple(out)


def _result_cells(widths: dict[str, int]) -> Callable[[dict[str, Any]], tuple[Any, ...]]:
    def cell(name: str, r: dict[str, Any]) -> Any:
        if name == "URL":
            return cut(r["url"], widths["URL"])
        if name == "STAGE":
            return r["stage"] or "-"
        if name == "REASON":
            return abbreviate_reasons(_decisive_first(r), widths["REASON"])
        if name == "VANTAGE":
            return cut(r["vantage"], widths["VANTAGE"])
        if name == "TIME":
            return _time(r["measured_at"])
        return r[{"VERDICT": "verdict", "RUN": "run_id"}[name]]

    def cells(r: dict[str, Any]) -> tuple[Any, ...]:
        return tuple(cell(name, r) for name in widths)

    return cells


def _decisive_first(r: dict[str, Any]) -> list[str]:
    reasons: list[str] = list(r["reasons"] or [])
    key = decisive(r["verdict"], r["stage"], reasons)
    if key is None or not reasons or reasons[0] == key:
        return reasons
    return [key, *(x for x in reasons if x != key)]


def format_table(rows: Iterable[dict[str, Any]], width: int = 160) -> Iterator[str]:
    """Results as lines fitted to ``width`` columns (a header first; a count at the end).

    The REASON column shows the reason that decided the verdict, and ``+N`` for the others.
    """
    cols = fit_columns(_RESULT_COLUMNS, width)
    widths = dict(cols)
    return _fixed_width(rows, cols, _result_cells(widths), "result")


def format_latest_runs(runs: Sequence[tuple[str, int]], width: int = 80) -> str:
    """The note that ``probe results`` shows every vantage point's latest run, wrapped to
    ``width`` columns: which run of which vantage point (names cut to fit)."""
    head = f"The latest run of each of {len(runs)} vantage points:"
    items = [f"{cut(printable(name), width // 2)} (run {rid})" for name, rid in runs]
    lines, line = [], head
    for k, item in enumerate(items):
        item += "," if k < len(items) - 1 else "."
        if len(line) + 1 + len(item) > width:
            lines.append(line)
            line = "  " + item
        else:
            line += " " + item
    lines.append(line)
    return "\n".join(lines) + "\n"


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


_RUN_COLUMNS = (("RUN", 5), ("VANTAGE", 12), ("STARTED", _TIME_WIDTH), ("FINISHED", _TIME_WIDTH),
                ("STATUS", 11), ("URLS", 6), ("VERDICTS", 0))


def _run_cells(r: dict[str, Any]) -> tuple[Any, ...]:
    verdicts = " ".join(f"{k} {v}" for k, v in r["counts"].items() if v) or "-"
    return (r["run_id"], cut(r["vantage"], 12), _time(r["started_at"]), _time(r["finished_at"]),
            r["status"], r["n_measurements"], verdicts)  # fmt: skip


def format_runs_table(rows: Iterable[dict[str, Any]]) -> Iterator[str]:
    """Runs as fixed-width lines: the non-zero verdict counts of each, and a count at the end."""
    return _fixed_width(rows, _RUN_COLUMNS, _run_cells, "run")


_OUTAGE_COLUMNS = (("VANTAGE", 12), ("STATE", 7), ("FIRST SEEN", _TIME_WIDTH), ("LAST SEEN", _TIME_WIDTH),
                   ("AFTER", _TIME_WIDTH), ("BEFORE", _TIME_WIDTH), ("EVIDENCE", 0))


def _outage_cells(o: dict[str, Any]) -> tuple[Any, ...]:
    return (cut(o["vantage"], 12), o["state"], _time(o["first_seen"]), _time(o["last_seen"]),
            _time(o["after"]), _time(o["before"]) if o["before"] else "ongoing", o["evidence"])  # fmt: skip


def format_outages_table(rows: Iterable[dict[str, Any]]) -> Iterator[str]:
    """Outage intervals (``probe.research.outages.Outage.to_dict``) as fixed-width lines."""
    return _fixed_width(rows, _OUTAGE_COLUMNS, _outage_cells, "outage")


#: Columns of `probe results --csv`: the JSON keys, with the decisive reason in words.
CSV_KEYS = ("url", "verdict", "stage", "hop", "decisive_reason", "explanation", "reasons",
            "vantage", "run_id", "measured_at", "category", "domain", "attempt", "runtime",
            "classifier_version", "measurement_id")  # fmt: skip


def format_csv(rows: Iterable[dict[str, Any]]) -> Iterator[str]:
    """Results as CSV (RFC 4180, a header row first), in chunks of text.

    ``reasons`` are joined with spaces (codes contain none); ``decisive_reason`` is the one that
    decided the verdict and ``explanation`` says it in words.
    """
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(CSV_KEYS)
    for n, r in enumerate(rows, 1):
        key = decisive(r["verdict"], r["stage"], r["reasons"] or [])
        row = {**r, "reasons": " ".join(r["reasons"] or []), "decisive_reason": key or "",
               "explanation": explain(key, r["verdict"]) if key else ""}
        w.writerow(["" if row.get(k) is None else row.get(k) for k in CSV_KEYS])
        if n % _CHUNK == 0:
            yield buf.getvalue()
            buf.seek(0)
            buf.truncate()
    yield buf.getvalue()
