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

What they read comes from :mod:`probe.store.matrix`; only the standard library besides:
`probe compare` and `probe diff` import nothing heavy.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NamedTuple

from probe.core.model import INTERFERENCE_VERDICTS as _INTERFERENCE
from probe.store.history import stability
from probe.store.matrix import UrlVerdict, before_by_url, latest_by_url, latest_cells, run_by_url
from probe.store.protocols import latest_protocol_verdicts

if TYPE_CHECKING:
    from probe.store import Store

__all__ = [
    "INTERFERENCE",
    "Cell",
    "Change",
    "Matrix",
    "PairSummary",
    "Stability",
    "diff_states",
    "load_matrix",
    "load_stability",
    "parse_since",
    "protocol_matrix",
    "state_at",
    "state_latest",
    "state_of_run",
]

#: Verdicts that claim interference (the ``blocked`` view of docs/schema.md).
INTERFERENCE = frozenset(_INTERFERENCE)
STAGES = ("dns", "tcp", "tls", "http")


class Cell(NamedTuple):
    """One verdict: what, at which stage, when measured."""

    verdict: str
    stage: str | None
    measured_at: str

    @property
    def interference(self) -> bool:
        """True for blocked, reset, hijacked and throttled."""
        return self.verdict in INTERFERENCE

    @property
    def technique(self) -> str:
        """``verdict/stage`` for interference (``hijacked/dns``), else the verdict."""
        return f"{self.verdict}/{self.stage or '-'}" if self.verdict in INTERFERENCE else self.verdict


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
    """URL x column verdicts, stored by column: ``cells[column][url_index] -> Cell``.

    Columns are vantage points (or other sources of verdicts). By column because the
    summaries work on whole columns: each column's measured and blocked URLs become bit sets
    (Python integers), so a pair of vantage points is compared with a few big-integer ANDs.
    """

    columns: list[str]
    urls: list[str] = field(default_factory=list)
    categories: list[str] = field(default_factory=list)
    cells: dict[str, dict[int, Cell]] = field(default_factory=dict)
    index: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for c in self.columns:
            self.cells.setdefault(c, {})

    def url_index(self, url: str, category: str) -> int:
        """The row of ``url``, added when new."""
        i = self.index.get(url)
        if i is None:
            i = self.index[url] = len(self.urls)
            self.urls.append(url)
            self.categories.append(category)
        return i

    def cell(self, url: str, column: str) -> Cell | None:
        """The verdict of ``url`` in ``column``, if any."""
        i = self.index.get(url)
        return None if i is None else self.cells[column].get(i)

    def add_column(self, name: str, cells: Mapping[str, tuple[str, Cell]]) -> None:
        """Add a column of verdicts: ``cells`` maps url -> (category, cell).

        URLs new to the matrix become rows. This is how verdicts from outside this database
        (another measurement platform) are compared with the vantage points.
        """
        if name in self.columns:
            raise ValueError(f"column {name!r} exists already")
        self.columns.append(name)
        column = self.cells[name] = {}
        for url, (category, cell) in cells.items():
            column[self.url_index(url, category)] = cell

    def rows(self) -> Iterator[tuple[str, str, list[Cell | None]]]:
        """(url, category, one cell or None per column), by URL."""
        columns = [self.cells[c] for c in self.columns]
        for i in sorted(range(len(self.urls)), key=self.urls.__getitem__):
            yield self.urls[i], self.categories[i], [col.get(i) for col in columns]

    def __len__(self) -> int:
        return len(self.urls)

    def only_differences(self) -> Matrix:
        """The rows whose columns do not all agree (two or more distinct verdicts)."""
        out = Matrix(list(self.columns))
        columns = [self.cells[c] for c in self.columns]
        for i, url in enumerate(self.urls):
            present = [col[i] for col in columns if i in col]
            if len({c.verdict for c in present}) > 1:
                j = out.url_index(url, self.categories[i])
                for name, col in zip(self.columns, columns, strict=True):
                    if i in col:
                        out.cells[name][j] = col[i]
        return out

    def _bits(self, column: str) -> tuple[int, int, dict[str, int]]:
        """Bit sets of a column: measured URLs, interfered-with URLs, and per technique."""
        measured = blocked = 0
        by_technique: dict[str, int] = {}
        for i, cell in self.cells[column].items():
            bit = 1 << i
            measured |= bit
            if cell.verdict in INTERFERENCE:
                blocked |= bit
                t = cell.technique
                by_technique[t] = by_technique.get(t, 0) | bit
        return measured, blocked, by_technique

    def pairs(self) -> list[PairSummary]:
        """One summary per pair of columns, in column order."""
        bits = {c: self._bits(c) for c in self.columns}
        out = []
        for i, a in enumerate(self.columns):
            ma, ba, ta = bits[a]
            for b in self.columns[i + 1:]:
                mb, bb, tb = bits[b]
                common = ma & mb
                a_blocks = (ba & common).bit_count()
                b_blocks = (bb & common).bit_count()
                both = (ba & bb).bit_count()
                same = sum((v & tb.get(t, 0)).bit_count() for t, v in ta.items())
                union = a_blocks + b_blocks - both
                out.append(PairSummary(a, b, common.bit_count(), a_blocks, b_blocks, both, same,
                                       round(both / union, 4) if union else None))
        return out

    def techniques(self) -> dict[str, dict[str, int]]:
        """Per column: URLs measured, interfered with, and the mix by stage and by verdict."""
        keys = ("urls", "interference", *STAGES, "other_stage", *sorted(INTERFERENCE))
        out = {}
        for c in self.columns:
            counts = dict.fromkeys(keys, 0)
            for cell in self.cells[c].values():
                if cell.verdict in INTERFERENCE:
                    counts["interference"] += 1
                    counts[cell.verdict] += 1
                    counts[cell.stage if cell.stage in STAGES else "other_stage"] += 1
            counts["urls"] = len(self.cells[c])
            out[c] = counts
        return out


# --- reading the database ----------------------------------------------------------------------
def load_matrix(
    store: Store,
    vantages: Sequence[str] | None = None,
    categories: Sequence[str] | None = None,
    since: str | None = None,
    *,
    times: bool = True,
) -> Matrix:
    """The latest verdict per vantage point and URL, as a :class:`Matrix`.

    ``vantages``: only these (in this column order; default all, by name; an unknown name
    raises KeyError); ``categories``: only URLs of these category codes; ``since``: only
    verdicts measured at or after this ISO time (a URL whose latest verdict is older has no
    cell there). With ``times=False`` cells have an empty ``measured_at`` and are shared between
    equal verdicts (faster: the table and the summaries do not need times).
    """
    ids = store.vantage_ids(vantages)
    names = {vid: name for name, vid in ids.items()}
    matrix = Matrix(list(ids))
    index = matrix.index
    urls, cats = matrix.urls, matrix.categories
    shared: dict[tuple[str, str | None], Cell] = {}  # a few dozen distinct cells without times
    current_vid = -1
    column: dict[int, Cell] = {}
    for row in latest_cells(store, list(ids.values()), categories, since, times=times):
        if row.vantage_id != current_vid:
            current_vid, column = row.vantage_id, matrix.cells[names[row.vantage_id]]
        i = index.get(row.url)
        if i is None:  # inlined url_index: this loop runs once per cell
            i = index[row.url] = len(urls)
            urls.append(row.url)
            cats.append(row.category or "")
        if times:
            column[i] = Cell(row.verdict, row.stage, row.measured_at or "")
        else:
            cell = shared.get((row.verdict, row.stage))
            if cell is None:
                cell = shared[(row.verdict, row.stage)] = Cell(row.verdict, row.stage, "")
            column[i] = cell
    return matrix


@dataclass
class Stability:
    """How stable one vantage point's latest verdicts are over its last ``last`` runs."""

    last: int
    cells: dict[str, tuple[int, int]] = field(default_factory=dict)  # url -> (agree, runs)

    def summary(self, interference: Mapping[str, bool]) -> dict[str, int | float]:
        """URLs with a verdict; of those, how many every considered run agrees with (with
        two runs or more), how many changed at least once, and how many of the interfered-with
        ones (``interference``: url -> latest is interference) half the runs or fewer agree
        with (weak evidence); and the mean share of agreeing runs."""
        cells = self.cells.values()
        weak = sum(1 for url, (agree, runs) in self.cells.items()
                   if interference.get(url) and 2 * agree <= runs)
        return {"urls": len(self.cells),
                "steady": sum(1 for agree, runs in cells if runs > 1 and agree == runs),
                "changed": sum(1 for agree, runs in cells if agree < runs),
                "weak_interference": weak,
                "mean": round(sum(a / r for a, r in cells) / len(self.cells), 3) if cells else 0.0}


def load_stability(store: Store, matrix: Matrix, last: int) -> dict[str, Stability]:
    """Per column of ``matrix`` (a vantage point of ``store``): how many of the last ``last``
    runs that measured each URL agree with its latest verdict (probe/store/history.py)."""
    ids = store.vantage_ids([c for c in matrix.columns if c in store.vantage_ids()])
    out = {name: Stability(last) for name in ids}
    for row in stability(store, last, list(ids.values())):
        if row.url in matrix.index:
            out[row.vantage].cells[row.url] = (row.agree, row.runs)
    return out


def protocol_matrix(
    store: Store,
    suite: str,
    vantages: Sequence[str] | None = None,
    categories: Sequence[str] | None = None,
    since: str | None = None,
) -> Matrix:
    """The ``suite`` verdict (``quic``, ``ech``: ``probe run --quic``/``--ech``) of the latest
    measurement of every URL at every vantage point, as a :class:`Matrix` (stage ``quic`` or
    ``tls``); URLs whose latest measurement had no such test have no cell. ``vantages``: as
    :func:`load_matrix` (an unknown name raises KeyError)."""
    ids = store.vantage_ids(vantages)
    matrix = Matrix(list(ids))
    if not ids:
        return matrix
    wanted = set(categories or ())
    for r in latest_protocol_verdicts(store, suite, list(ids), since):
        if wanted and r.category not in wanted:
            continue
        i = matrix.url_index(r.url, r.category or "")
        matrix.cells[r.vantage][i] = Cell(r.verdict, r.stage, r.measured_at)
    return matrix


def _by_url(rows: Iterable[UrlVerdict]) -> dict[str, Cell]:
    return {r.url: Cell(r.verdict, r.stage, r.measured_at) for r in rows}


def state_latest(store: Store, vantage_id: int) -> dict[str, Cell]:
    """URL -> latest final verdict at a vantage point."""
    return _by_url(latest_by_url(store, vantage_id))


def state_at(store: Store, vantage_id: int, before: str) -> dict[str, Cell]:
    """URL -> the latest final verdict at a vantage point measured before ``before`` (ISO)."""
    return _by_url(before_by_url(store, vantage_id, before))


def state_of_run(store: Store, run_id: int) -> dict[str, Cell]:
    """URL -> final verdict in one run."""
    return _by_url(run_by_url(store, run_id))


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
