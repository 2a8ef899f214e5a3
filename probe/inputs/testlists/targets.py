"""Test lists (and ad-hoc URLs) -> a de-duplicated stream of :class:`~probe.core.model.Target`."""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from probe.core.model import Target
from probe.core.net.urls import InvalidURL, parse_url, show_url
from probe.inputs.testlists.categories import parse_categories, unknown_categories
from probe.inputs.testlists.csvfile import read_rows
from probe.inputs.testlists.problems import ListProblem, ListStats, SelectionError, TestListError
from probe.inputs.testlists.source import OpenedList, open_list
from probe.store.urlset import URLSet

__all__ = ["check_categories", "check_usable", "iter_targets", "require_targets"]

log = logging.getLogger("probe.inputs.testlists")


def iter_targets(
    paths: Iterable[str | Path | OpenedList],
    urls: Iterable[str] = (),
    categories: str | Iterable[str] | None = None,
    strict: bool = False,
    on_error: Callable[[ListProblem], None] | None = None,
    *,
    stats: ListStats | None = None,
) -> Iterator[Target]:
    """Stream the targets of the given lists, then of ``urls``, de-duplicated by measured URL.

    - ``urls`` are ad-hoc targets (``--url``): source ``"cli"``, no category, never filtered by
      category; an invalid one always raises :class:`TestListError` (it is a usage error).
    - ``categories``: only list rows with these codes (``"NEWS,HUMR"`` or an iterable of codes).
    - Each invalid row goes to ``on_error`` as a :class:`ListProblem` (``file:line`` + reason)
      and the other rows proceed; without ``on_error`` problems are logged as warnings. With
      ``strict=True`` the first problem raises :class:`TestListError` instead.
    - A missing or unreadable file, or one whose header lacks a ``url`` column, always raises
      :class:`TestListError`; every file is checked for readability before the first target.
    - The first occurrence of a URL wins; de-duplication keeps an 8-byte fingerprint per URL
      in a temporary SQLite database (:class:`probe.store.urlset.URLSet`): its memory is bounded
      (256 KiB of cache) however long the list.
    - ``stats``, if given, is filled in with counts (rows, targets, problems, duplicates, ...).
    """
    paths = list(paths)
    wanted = parse_categories(categories)
    st = stats if stats is not None else ListStats()

    def report(problem: ListProblem) -> None:
        st.problems += 1
        if strict:
            raise TestListError(problem)
        if on_error is not None:
            on_error(problem)
        else:
            log.warning("%s", problem)

    def fresh(target: Target) -> bool:
        if seen.add(target.url):
            return True
        st.duplicates += 1
        return False

    # Fail fast on usage errors, before the first target is measured.
    cli_targets = _cli_targets(urls)
    # Open every list first (a stream is copied now): a missing file fails before any target.
    opened: list[OpenedList] = []
    try:
        for path in paths:
            opened.append(path if isinstance(path, OpenedList) else open_list(path))
    except BaseException:
        for item, path in zip(opened, paths, strict=False):
            if item is not path:
                item.close()
        raise
    # On disk beyond a small cache, and its temporary file deleted when the stream ends.
    with URLSet() as seen:
        try:
            yield from _targets_of(opened, report, fresh, wanted, st)
        finally:
            for item, path in zip(opened, paths, strict=True):
                if item is not path:
                    item.close()

        for target in cli_targets:
            if fresh(target):
                st.targets += 1
                yield target


def check_usable(lists: Iterable[OpenedList], urls: Iterable[str] = ()) -> None:
    """Raise :class:`TestListError` if a run could not use these lists and URLs at all.

    What :func:`iter_targets` would raise only once it reached it (a bad ``--url``; a list that
    cannot be read, is not text, or has no ``url`` header), checked up front so that a run
    refused for bad input records nothing. Problems of single rows are not checked: a run
    reports them as it reads them and measures the other rows.
    """
    _cli_targets(urls)
    for item in lists:
        rows = read_rows(item, lambda problem: None, ListStats())
        try:
            next(rows, None)  # reads the header and at most the rows before the first good one
        finally:
            rows.close()


def check_categories(lists: Iterable[OpenedList], categories: Iterable[str]) -> None:
    """Raise :class:`SelectionError` for ``--category`` codes that neither the Citizen Lab
    legend nor any row of ``lists`` has: a typo (``NEWZ``) would otherwise select nothing, or
    less than was meant, without a word. A user's own list may use codes of its own."""
    unknown = set(unknown_categories(categories))
    for item in lists:
        if not unknown:
            break
        rows = read_rows(item, lambda problem: None, ListStats())
        try:
            for _, _, category in rows:
                unknown.discard(category)
        finally:
            rows.close()
    if unknown:
        codes = ", ".join(sorted(unknown))
        raise SelectionError(
            f"--category: unknown category code{'s' if len(unknown) > 1 else ''} {codes}: in "
            "neither the Citizen Lab legend nor the lists; `probe testlists` shows the "
            "categories of each list")


def require_targets(targets: Iterator[Target], lists: Iterable[OpenedList],
                    categories: Iterable[str] | None) -> Iterator[Target]:
    """``targets`` unchanged, or :class:`SelectionError` when they are none at all.

    Reads up to the first target (the rows before it) to know: a run that would measure
    nothing is a usage error, never a "complete" run of 0 URLs.
    """
    first = next(targets, None)
    if first is None:
        labels = [item.label for item in lists]
        names = ", ".join(labels) or "the lists"
        codes = ", ".join(sorted(categories or ()))
        verb = "holds" if len(labels) == 1 else "hold"
        what = f"no URL of {names} is in category {codes}" if codes else f"{names} {verb} no URL"
        raise SelectionError(f"nothing to measure: {what}; `probe testlists` shows the "
                             "categories and URLs of each list")
    return itertools.chain((first,), targets)


def _cli_targets(urls: Iterable[str]) -> list[Target]:
    targets = []
    for i, u in enumerate(urls, 1):
        try:
            targets.append(parse_url(u, source="cli"))
        except InvalidURL as exc:
            raise TestListError(ListProblem("--url", 0, f"#{i}: {exc}")) from None
    return targets


def _targets_of(
    opened: list[OpenedList],
    report: Callable[[ListProblem], None],
    fresh: Callable[[Target], bool],
    wanted: frozenset[str] | None,
    st: ListStats,
) -> Iterator[Target]:
    for path in opened:
        name = path.name
        count = 0
        for line, url, category in read_rows(path, report, st):
            source = f"{path.label}:{line}"  # stored: the list's name, not where it lives
            try:
                target = parse_url(url, category_code=category, source=source)
            except InvalidURL as exc:
                report(ListProblem(name, line, f"invalid URL {show_url(url.strip())}: {exc.reason}"))
                continue
            if wanted is not None and category not in wanted:
                st.filtered += 1
                continue
            if fresh(target):
                st.targets += 1
                count += 1
                yield target
        st.per_file[name] = st.per_file.get(name, 0) + count
