"""Text renderings of result rows: a table fitted to a width, JSON lines or CSV, in chunks."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from probe.judge.explain import decisive, explain
from probe.present.terminal import clean, json_safe
from probe.present.text import cells, cut, cut_middle, pad, wrap

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
    "time_text",
    "write_fixed_width",
]

_CHUNK = 2000  # rows per chunk written to the terminal
_JSON_KEYS = ("url", "verdict", "stage", "hop", "reasons", "vantage", "run_id", "measured_at",
              "category", "domain", "attempt", "runtime", "classifier_version", "measurement_id")


def abbreviate_reasons(reasons: list[str], width: int = 34) -> str:
    """The first reason, cut to fit, and ``+N`` for the others (made safe for a terminal)."""
    if not reasons:
        return "-"
    more = f" +{len(reasons) - 1}" if len(reasons) > 1 else ""
    return cut(clean(reasons[0]), width - len(more)) + more


def _fixed_width(
    rows: Iterable[dict[str, Any]],
    columns: tuple[tuple[str, int], ...],
    row_cells: Callable[[dict[str, Any]], tuple[Any, ...]],
    noun: str,
    width: int | None = None,
) -> Iterator[str]:
    """Fixed-width lines (a header first; ``(N nouns)`` at the end), in chunks of text.

    The last column has no width: it takes the rest of the line, or with ``width`` the rest of
    ``width`` columns, wrapped onto lines of its own under it (a tuple there is a list of
    items, never broken inside one). Cells are padded by the columns they take on a terminal
    (:func:`probe.present.text.cells`), not by characters.
    """
    start = sum(w + 2 for _, w in columns[:-1])
    room = None if width is None else max(12, width - start)

    def line(values: tuple[Any, ...]) -> str:
        head = "".join(pad(str(v), w) + "  " for v, (_, w) in zip(values, columns[:-1], strict=False))
        last = values[-1]
        parts = _pack(last, room) if isinstance(last, tuple) else (
            [str(last)] if room is None or cells(str(last)) <= room else wrap(str(last), room))
        return head + parts[0] + "\n" + "".join(" " * start + p + "\n" for p in parts[1:])

    buf = [line(tuple(name for name, _ in columns))]
    n = 0
    for r in rows:
        n += 1
        buf.append(line(row_cells(r)))
        if len(buf) >= _CHUNK:
            yield "".join(buf)
            buf = []
    buf.append(f"({n} {noun}{'s' if n != 1 else ''})\n")
    yield "".join(buf)


def _pack(items: tuple[str, ...], room: int | None) -> list[str]:
    """``items`` joined by spaces on lines of at most ``room`` columns (one line: None)."""
    lines = [""]
    for item in items:
        if lines[-1] and room is not None and cells(lines[-1]) + 1 + cells(item) > room:
            lines.append(item)
        else:
            lines[-1] = f"{lines[-1]} {item}" if lines[-1] else item
    return lines


def _time(iso: str | None) -> str:
    # Stored times are UTC; the table says so on every row, to the minute (JSON and CSV keep
    # the full ISO 8601 time with its Z).
    return f"{iso[:16].replace('T', ' ')} UTC" if iso else "-"


#: For renderers of other modules: fixed-width lines (with :func:`fit_columns`), and a stored
#: UTC time as the tables show it (``2026-11-26 11:52 UTC``).
write_fixed_width = _fixed_width
time_text = _time

_TIME_WIDTH = 20  # "2026-11-26 11:52 UTC"
# (name, width, flexible minimum or 0 for fixed, drop order: higher goes first when narrow).
# At 80 columns RUN, TIME and STAGE (the REASON's code starts with the stage) make way for the
# URL, shortened in the middle so that http:// and https:// rows stay distinct.
_RESULT_COLUMNS: tuple[tuple[str, int, int, int], ...] = (
    ("URL", 60, 28, 0), ("VERDICT", 12, 0, 0), ("STAGE", 5, 0, 2), ("REASON", 60, 16, 0),
    ("VANTAGE", 12, 0, 1), ("RUN", 5, 0, 4), ("TIME", _TIME_WIDTH, 0, 3),
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
            return cut_middle(clean(r["url"]), widths["URL"])
        if name == "STAGE":
            return r["stage"] or "-"
        if name == "REASON":
            return abbreviate_reasons(_decisive_first(r), widths["REASON"])
        if name == "VANTAGE":
            return cut(clean(r["vantage"]), widths["VANTAGE"])
        if name == "TIME":
            return _time(r["measured_at"])
        return r[{"VERDICT": "verdict", "RUN": "run_id"}[name]]

    def row(r: dict[str, Any]) -> tuple[Any, ...]:
        return tuple(cell(name, r) for name in widths)

    return row


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
    items = [f"{cut(clean(name), width // 2)} (run {rid})" for name, rid in runs]
    lines, line = [], head
    for k, item in enumerate(items):
        item += "," if k < len(items) - 1 else "."
        if cells(line) + 1 + cells(item) > width:
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

    The default keys are those `probe results --json` documents. Characters a terminal would
    act on are ``\\u`` escapes (:func:`probe.present.terminal.json_safe`): the same JSON values.
    """
    dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
    wanted = None if keys is None else tuple(keys)
    buf: list[str] = []
    for r in rows:
        buf.append(json_safe(dumps(r if wanted is None else {k: r[k] for k in wanted if k in r}))
                   + "\n")
        if len(buf) >= _CHUNK:
            yield "".join(buf)
            buf = []
    if buf:
        yield "".join(buf)


def _minute(iso: str | None) -> str:
    # In the runs and outages tables the header says UTC: 16 columns a time, not 20.
    return iso[:16].replace("T", " ") if iso else "-"


# (name, width, flexible minimum or 0 for fixed, drop order): at 80 columns FINISHED goes.
_RUN_COLUMNS = (("RUN", 5, 0, 0), ("VANTAGE", 12, 0, 0), ("STARTED UTC", 16, 0, 0),
                ("FINISHED UTC", 16, 0, 1), ("STATUS", 11, 0, 0), ("URLS", 6, 0, 0),
                ("VERDICTS", 60, 20, 0))  # fmt: skip


def _run_cells(names: tuple[str, ...]) -> Callable[[dict[str, Any]], tuple[Any, ...]]:
    def row(r: dict[str, Any]) -> tuple[Any, ...]:
        every = {"RUN": r["run_id"], "VANTAGE": cut(clean(r["vantage"]), 12),
                 "STARTED UTC": _minute(r["started_at"]), "FINISHED UTC": _minute(r["finished_at"]),
                 "STATUS": r["status"], "URLS": r["n_measurements"],
                 "VERDICTS": tuple(f"{k} {v}" for k, v in r["counts"].items() if v) or ("-",)}
        return tuple(every[n] for n in names)

    return row


def format_runs_table(rows: Iterable[dict[str, Any]], width: int = 80) -> Iterator[str]:
    """Runs as lines fitted to ``width`` columns: the non-zero verdict counts of each (wrapped
    under their column when they do not fit), and a count at the end."""
    cols = fit_columns(_RUN_COLUMNS, width)
    return _fixed_width(rows, cols, _run_cells(tuple(n for n, _ in cols)), "run", width)


_OUTAGE_COLUMNS = (("VANTAGE", 12), ("STATE", 8), ("FIRST SEEN UTC", 16), ("LAST SEEN UTC", 16),
                   ("EVIDENCE", 0))


def _outage_cells(o: dict[str, Any]) -> tuple[Any, ...]:
    until = f"before {_minute(o['before'])}" if o["before"] else "ongoing"
    bounds = f"between runs: after {_minute(o['after'])}, {until}"
    return (cut(clean(o["vantage"]), 12), o["state"], _minute(o["first_seen"]),
            _minute(o["last_seen"]), f"{clean(o['evidence'])} ({bounds})")  # fmt: skip


def format_outages_table(rows: Iterable[dict[str, Any]], width: int = 80) -> Iterator[str]:
    """Outage intervals (``probe.research.outages.Outage.to_dict``) as lines fitted to
    ``width`` columns: when each was seen, then its evidence and the runs around it (AFTER ..
    BEFORE, or ongoing), wrapped under the EVIDENCE column."""
    return _fixed_width(rows, _OUTAGE_COLUMNS, _outage_cells, "outage", width)


#: Columns of `probe results --csv`: the JSON keys, with the decisive reason in words.
CSV_KEYS = ("url", "verdict", "stage", "hop", "decisive_reason", "explanation", "reasons",
            "vantage", "run_id", "measured_at", "category", "domain", "attempt", "runtime",
            "classifier_version", "measurement_id")  # fmt: skip


def format_csv(rows: Iterable[dict[str, Any]], keys: tuple[str, ...] = CSV_KEYS) -> Iterator[str]:
    """Results as CSV (RFC 4180, a header row first), in chunks of text: the columns ``keys``.

    ``reasons`` are joined with spaces (codes contain none); ``decisive_reason`` is the one that
    decided the verdict and ``explanation`` says it in words. Text is made safe for a terminal
    (:func:`probe.present.terminal.clean`): a control character is never data here.
    """
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(keys)
    for n, r in enumerate(rows, 1):
        key = decisive(r["verdict"], r["stage"], r["reasons"] or [])
        row = {**r, "reasons": " ".join(r["reasons"] or []), "decisive_reason": key or "",
               "explanation": explain(key, r["verdict"]) if key else ""}
        w.writerow(["" if row.get(k) is None else _csv_cell(row.get(k)) for k in keys])
        if n % _CHUNK == 0:
            yield buf.getvalue()
            buf.seek(0)
            buf.truncate()
    yield buf.getvalue()


def _csv_cell(value: Any) -> Any:
    return clean(value) if isinstance(value, str) else value
