"""Comparing vantage points and runs: the verdict matrix (`probe compare`) and changes (`probe diff`).

The matrix has one row per URL and one column per vantage point, each cell the latest final
verdict there (the ``latest`` table: one primary-key lookup per cell, so a million measurements
cost what their latest verdicts cost). Its summary answers "who blocks the same things the same
way": per pair of vantage points, the URLs each blocks, both block, the Jaccard similarity of
the blocked sets and how many of the shared blocks use the same technique; per vantage point,
the mix of techniques.

Columns are sources of verdicts, not only vantage points of this database: another source (e.g.
OONI's measurements of the same network) joins with :meth:`Matrix.add_column` and takes part in
the same differences and summaries.

Only the standard library and sqlite3: `probe compare` and `probe diff` import nothing heavy.
"""

from __future__ import annotations

import datetime
import re
import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

__all__ = [
    "INTERFERENCE",
    "Cell",
    "Change",
    "Matrix",
    "PairSummary",
    "diff_states",
    "load_matrix",
    "parse_since",
    "state_at",
    "state_latest",
    "state_of_run",
]

#: Verdicts that claim interference (the ``blocked`` view of docs/schema.md).
INTERFERENCE = frozenset({"blocked", "reset", "hijacked"})
STAGES = ("dns", "tcp", "tls", "http")


@dataclass(frozen=True, slots=True)
class Cell:
    """One verdict: what, at which stage, when measured (and by which measurement)."""

    verdict: str
    stage: str | None
    measured_at: str
    measurement_id: int | None = None

    @property
    def interference(self) -> bool:
        """True for blocked, reset and hijacked."""
        return self.verdict in INTERFERENCE

    @property
    def technique(self) -> str:
        """``verdict/stage`` for interference (``hijacked/dns``), else the verdict."""
        return f"{self.verdict}/{self.stage or '-'}" if self.verdict in INTERFERENCE else self.verdict


@dataclass
class Row:
    """One URL of the matrix."""

    url: str
    category: str
    cells: dict[str, Cell] = field(default_factory=dict)


@dataclass(frozen=True)
class PairSummary:
    """Two columns compared over the URLs both have a verdict for."""

    a: str
    b: str
    common: int  # URLs with a verdict in both
    a_blocks: int  # of those, interfered with at a
    b_blocks: int
    both_block: int
    same_technique: int  # both block with the same verdict and stage
    jaccard: float | None  # both / (a or b); None when neither blocks anything

    def as_dict(self) -> dict[str, object]:
        """JSON form."""
        return {"a": self.a, "b": self.b, "common_urls": self.common, "a_blocks": self.a_blocks,
                "b_blocks": self.b_blocks, "both_block": self.both_block,
                "same_technique": self.same_technique, "jaccard": self.jaccard}


@dataclass
class Matrix:
    """URL x column verdicts. Columns are vantage points (or other sources of verdicts)."""

    columns: list[str]
    rows: dict[str, Row]

    def add_column(self, name: str, cells: Mapping[str, tuple[str, Cell]]) -> None:
        """Add a column of verdicts: ``cells`` maps url -> (category, cell).

        URLs new to the matrix become rows. This is how verdicts from outside this database
        (another measurement platform) are compared with the vantage points.
        """
        if name in self.columns:
            raise ValueError(f"column {name!r} exists already")
        self.columns.append(name)
        for url, (category, cell) in cells.items():
            row = self.rows.get(url)
            if row is None:
                row = self.rows[url] = Row(url, category)
            row.cells[name] = cell

    def only_differences(self) -> Matrix:
        """The rows whose columns do not all agree (two or more distinct verdicts)."""
        rows = {url: r for url, r in self.rows.items()
                if len({c.verdict for c in r.cells.values()}) > 1}
        return Matrix(list(self.columns), rows)

    def sorted_rows(self) -> list[Row]:
        """Rows by URL."""
        return [self.rows[u] for u in sorted(self.rows)]

    def pairs(self) -> list[PairSummary]:
        """One summary per pair of columns, in column order."""
        measured: dict[str, set[str]] = {c: set() for c in self.columns}
        blocked: dict[str, dict[str, str]] = {c: {} for c in self.columns}
        for url, row in self.rows.items():
            for col, cell in row.cells.items():
                measured[col].add(url)
                if cell.verdict in INTERFERENCE:
                    blocked[col][url] = cell.technique
        out = []
        for i, a in enumerate(self.columns):
            for b in self.columns[i + 1:]:
                common = measured[a] & measured[b]
                ba = {u for u in blocked[a] if u in common}
                bb = {u for u in blocked[b] if u in common}
                both = ba & bb
                union = len(ba) + len(bb) - len(both)
                same = sum(1 for u in both if blocked[a][u] == blocked[b][u])
                out.append(PairSummary(a, b, len(common), len(ba), len(bb), len(both), same,
                                       round(len(both) / union, 4) if union else None))
        return out

    def techniques(self) -> dict[str, dict[str, int]]:
        """Per column: URLs measured, interfered with, and the mix by stage and by verdict."""
        keys = ("urls", "interference", *STAGES, "other_stage", *sorted(INTERFERENCE))
        out = {c: dict.fromkeys(keys, 0) for c in self.columns}
        for row in self.rows.values():
            for col, cell in row.cells.items():
                counts = out[col]
                counts["urls"] += 1
                if cell.verdict in INTERFERENCE:
                    counts["interference"] += 1
                    counts[cell.verdict] += 1
                    counts[cell.stage if cell.stage in STAGES else "other_stage"] += 1
        return out


# --- reading the database ----------------------------------------------------------------------
def vantage_ids(conn: sqlite3.Connection, names: Sequence[str] | None = None) -> dict[str, int]:
    """Vantage point name -> id (every one, or those named; unknown names raise KeyError)."""
    known = dict(conn.execute("SELECT name, id FROM vantage_points ORDER BY name").fetchall())
    if not names:
        return known
    missing = [n for n in names if n not in known]
    if missing:
        raise KeyError(", ".join(missing))
    return {n: known[n] for n in names}


def load_matrix(
    conn: sqlite3.Connection,
    vantages: Sequence[str] | None = None,
    categories: Sequence[str] | None = None,
    since: str | None = None,
) -> Matrix:
    """The latest verdict per vantage point and URL, as a :class:`Matrix`.

    ``vantages``: only these (in this column order; default all, by name); ``categories``:
    only URLs of these category codes; ``since``: only verdicts measured at or after this ISO
    time (a URL whose latest verdict is older has no cell there).
    """
    ids = vantage_ids(conn, vantages)
    names = {vid: name for name, vid in ids.items()}
    where = [f"l.vantage_id IN ({','.join('?' * len(ids))})"]
    params: list[object] = list(ids.values())
    if categories:
        where.append(f"m.category IN ({','.join('?' * len(categories))})")
        params.extend(categories)
    if since:
        where.append("l.measured_at >= ?")
        params.append(since)
    sql = (
        "SELECT l.vantage_id, l.url, m.category, m.verdict, m.stage, l.measured_at, m.id "
        "FROM latest AS l JOIN measurements AS m ON m.id = l.measurement_id "
        f"WHERE {' AND '.join(where)}"
    )
    rows: dict[str, Row] = {}
    if ids:
        for vid, url, category, verdict, stage, at, mid in conn.execute(sql, params):
            row = rows.get(url)
            if row is None:
                row = rows[url] = Row(url, category)
            row.cells[names[vid]] = Cell(verdict, stage, at, mid)
    return Matrix(list(ids), rows)


def state_latest(conn: sqlite3.Connection, vantage_id: int) -> dict[str, Cell]:
    """URL -> latest final verdict at a vantage point."""
    return {
        url: Cell(verdict, stage, at, mid)
        for url, verdict, stage, at, mid in conn.execute(
            "SELECT l.url, m.verdict, m.stage, l.measured_at, m.id FROM latest AS l "
            "JOIN measurements AS m ON m.id = l.measurement_id WHERE l.vantage_id = ?",
            (vantage_id,),
        )
    }


def state_at(conn: sqlite3.Connection, vantage_id: int, before: str) -> dict[str, Cell]:
    """URL -> the latest final verdict at a vantage point measured before ``before`` (ISO)."""
    # SQLite returns the other columns of the row holding max(): one pass over the
    # (vantage_id, url, measured_at) index.
    return {
        url: Cell(verdict, stage, at, mid)
        for url, verdict, stage, at, mid in conn.execute(
            "SELECT url, verdict, stage, max(measured_at), id FROM measurements "
            "WHERE vantage_id = ? AND final = 1 AND measured_at < ? GROUP BY url",
            (vantage_id, before),
        )
    }


def state_of_run(conn: sqlite3.Connection, run_id: int) -> dict[str, Cell]:
    """URL -> final verdict in one run."""
    return {
        url: Cell(verdict, stage, at, mid)
        for url, verdict, stage, at, mid in conn.execute(
            "SELECT url, verdict, stage, measured_at, id FROM measurements "
            "WHERE run_id = ? AND final = 1 ORDER BY id",
            (run_id,),
        )
    }


# --- what changed ------------------------------------------------------------------------------
CHANGE_KINDS = ("newly_blocked", "unblocked", "technique_changed", "unclear")


@dataclass(frozen=True)
class Change:
    """One URL whose verdict changed between two states of a vantage point.

    Kinds: ``newly_blocked`` (no interference before, interference now), ``unblocked``
    (interference before, ``ok`` now), ``technique_changed`` (interference in both, another
    verdict or stage), ``unclear`` (interference before, ``down`` or ``inconclusive`` now: not
    evidence that the block was lifted).
    """

    url: str
    kind: str
    before: Cell
    after: Cell

    def as_dict(self) -> dict[str, object]:
        """JSON form."""
        return {"url": self.url, "change": self.kind,
                "before": {"verdict": self.before.verdict, "stage": self.before.stage,
                           "measured_at": self.before.measured_at},
                "after": {"verdict": self.after.verdict, "stage": self.after.stage,
                          "measured_at": self.after.measured_at}}


def diff_states(before: Mapping[str, Cell], after: Mapping[str, Cell]) -> list[Change]:
    """The changes from ``before`` to ``after`` (URLs in both), by kind then URL."""
    out = []
    for url in before.keys() & after.keys():
        b, a = before[url], after[url]
        if a.interference and not b.interference:
            kind = "newly_blocked"
        elif b.interference and not a.interference:
            kind = "unblocked" if a.verdict == "ok" else "unclear"
        elif a.interference and b.interference and a.technique != b.technique:
            kind = "technique_changed"
        else:
            continue
        out.append(Change(url, kind, b, a))
    order = {k: i for i, k in enumerate(CHANGE_KINDS)}
    out.sort(key=lambda c: (order[c.kind], c.url))
    return out


# --- options -----------------------------------------------------------------------------------
_RELATIVE = re.compile(r"^(\d+)\s*([dhw])$")


def parse_since(text: str, now: datetime.datetime | None = None) -> str:
    """A ``--since`` value -> ISO text comparable with ``measured_at``.

    Accepts a date (``2026-11-20``), a date and time (``2026-11-20T10:00``, ``2026-11-20 10:00``,
    UTC) or an age (``7d``, ``24h``, ``2w``). Raises ValueError otherwise.
    """
    text = text.strip()
    m = _RELATIVE.match(text)
    if m:
        n, unit = int(m.group(1)), m.group(2)
        delta = {"h": datetime.timedelta(hours=n), "d": datetime.timedelta(days=n),
                 "w": datetime.timedelta(weeks=n)}[unit]
        t = (now or datetime.datetime.now(datetime.UTC)) - delta
        return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"
    try:
        t = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"expected a date (2026-11-20), a time (2026-11-20T10:00) or an age (7d, 24h), "
            f"not {text!r}"
        ) from None
    if t.tzinfo is not None:
        t = t.astimezone(datetime.UTC).replace(tzinfo=None)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def split_list(values: Iterable[str]) -> list[str]:
    """Repeatable, comma-separated option values -> one list without duplicates, in order."""
    out: list[str] = []
    for v in values:
        for part in v.split(","):
            part = part.strip()
            if part and part not in out:
                out.append(part)
    return out
