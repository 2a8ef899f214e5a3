"""Summaries of test lists (``probe testlists``): URLs per category and list, problems."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from probe.inputs.testlists.categories import load_legend
from probe.inputs.testlists.location import find_lists, known_lists, testlists_dir
from probe.inputs.testlists.problems import ListProblem, ListStats
from probe.inputs.testlists.source import OpenedList, open_list
from probe.inputs.testlists.targets import iter_targets
from probe.store.urlset import URLSet

__all__ = ["ListSummary", "Summary", "summarize", "summary_records"]


@dataclass(frozen=True)
class ListSummary:
    """What one list contains: valid unique URLs per category, and the rows that are not valid."""

    path: str
    targets: int
    categories: tuple[tuple[str, int], ...]  # (code, URLs), sorted by code
    problems: tuple[ListProblem, ...] = ()  # the first few
    problem_count: int = 0
    duplicates: int = 0  # rows repeating a URL already in this list
    shipped: bool = False  # one of the lists shipped with probe (see SHIPPED_ORIGIN)
    descriptions: tuple[tuple[str, str], ...] = ()  # (code, category_description) from the rows


@dataclass(frozen=True)
class Summary:
    """The result of :func:`summarize`: one entry per list, and the URLs they have in total."""

    lists: tuple[ListSummary, ...]
    unique_targets: int  # distinct measured URLs over all the lists


_MAX_KEPT_PROBLEMS = 20


def summarize(paths: Iterable[str | Path] | None = None) -> Summary:
    """Count each list's valid URLs per category (``paths`` default: :func:`known_lists`; files
    or lists known by name, as :func:`find_lists` finds them).

    Raises :class:`TestListError` for a missing or unusable file, like :func:`iter_targets`.
    """
    chosen: list[str | Path] = list(known_lists() if paths is None else find_lists(paths))
    opened: list[OpenedList] = []
    try:
        for path in chosen:
            opened.append(open_list(path))
        return _summarize(chosen, opened)
    finally:
        for item in opened:
            item.close()


def _summarize(paths: list[str | Path], opened: list[OpenedList]) -> Summary:
    shipped_dir = testlists_dir().resolve()
    union = URLSet()
    out = []
    for path, item in zip(paths, opened, strict=True):
        problems: list[ListProblem] = []
        st = ListStats()

        def keep(problem: ListProblem, problems: list[ListProblem] = problems) -> None:
            if len(problems) < _MAX_KEPT_PROBLEMS:
                problems.append(problem)

        counts: dict[str, int] = {}
        for target in iter_targets([item], on_error=keep, stats=st):
            counts[target.category_code] = counts.get(target.category_code, 0) + 1
            union.add(target.url)
        try:
            shipped = not item.stream and Path(path).resolve().parent == shipped_dir
        except OSError:
            shipped = False
        out.append(
            ListSummary(
                path=item.name,
                targets=st.targets,
                categories=tuple(sorted(counts.items())),
                problems=tuple(problems),
                problem_count=st.problems,
                duplicates=st.duplicates,
                shipped=shipped,
                descriptions=tuple(sorted(_row_descriptions(item).items())),
            )
        )
    return Summary(lists=tuple(out), unique_targets=len(union))


def _row_descriptions(item: OpenedList) -> dict[str, str]:
    """category_code -> category_description as written in a list (fallback for the legend)."""
    out: dict[str, str] = {}
    item.fh.seek(0)
    fh = io.TextIOWrapper(item.fh, encoding="utf-8-sig", errors="replace", newline="")
    try:
        for row in csv.DictReader(fh):
            code = (row.get("category_code") or "").strip().upper()
            if code and code not in out:
                out[code] = (row.get("category_description") or "").strip()
    except (OSError, csv.Error):
        pass
    finally:
        fh.detach()  # the list stays open: its owner closes it
    return out


def summary_records(summary: Summary, legend: dict[str, str] | None = None) -> Iterator[dict[str, Any]]:
    """One JSON-able dict per list (``probe testlists --json``)."""
    legend = load_legend() if legend is None else legend
    for entry in summary.lists:
        own = dict(entry.descriptions)
        yield {
            "path": entry.path,
            "urls": entry.targets,
            "shipped": entry.shipped,
            "invalid_rows": entry.problem_count,
            "duplicate_rows": entry.duplicates,
            "categories": {
                code: {"urls": n, "description": legend.get(code) or own.get(code, "")}
                for code, n in entry.categories
            },
        }
