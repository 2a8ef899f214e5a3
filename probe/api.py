"""probe's Python API for whole runs: what `probe run` does, importable by researchers.

    from probe.api import ListSelection, RunRequest, measure_lists
    request = RunRequest(ListSelection(urls=("https://example.org/",)))
    summary = measure_lists(request)

Lower layers are importable too: :func:`probe.measure.measure` measures one target,
:func:`probe.judge.classify.classify` judges a measurement, :class:`probe.store.Store` reads results.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from probe.core.settings import ListSelection, MeasureConfig, RunRequest, RunSettings
from probe.run.summary import Reporter, RunSummary

__all__ = [
    "ListSelection",
    "MeasureConfig",
    "RunRequest",
    "RunSettings",
    "measure_lists",
    "resolve_lists",
]


def resolve_lists(selection: ListSelection) -> list[Path]:
    """The lists to read: those named (files, or lists known by name: ``ru``, ``global,cn``;
    :func:`probe.inputs.testlists.find_lists`), else the default list unless only --url was
    given."""
    from probe.inputs.testlists import default_lists, find_lists

    if selection.lists:
        return find_lists(selection.lists)
    return [] if selection.urls else default_lists()


def _targets(
    selection: ListSelection, paths: Sequence[Any], on_problem: Callable[[Any], None]
) -> Iterator[Any]:
    from probe.inputs.testlists import iter_targets, parse_categories

    categories = parse_categories(selection.category)
    return iter_targets(paths, urls=selection.urls, categories=categories,
                        strict=selection.strict, on_error=on_problem)


def measure_lists(request: RunRequest, reporter: Reporter | None = None) -> RunSummary:
    """Measure the request's lists and URLs into its database and return the summary.

    Raises ``TestListError`` (bad list, exit 2 in the CLI), ``SelectionError`` (an unknown
    category, or nothing selected: exit 2), ``StoreError`` (bad database),
    :class:`probe.run.NoNetworkError` (nothing answers; the run is recorded as offline) and
    :class:`probe.run.NoControlError` (no control answers; recorded as failed) and
    :class:`probe.store.lock.DatabaseBusy` (another run holds the database; nothing measured).
    Network failures of single URLs are data, never exceptions.
    """
    from probe.inputs.testlists import (
        check_categories,
        check_usable,
        open_list,
        parse_categories,
        require_targets,
    )
    from probe.run.campaign import run_sync
    from probe.run.resume import plan_resume, selection_record
    from probe.store import Store
    from probe.store.lock import run_lock

    selection, settings = request.selection, request.settings
    plan = None
    if settings.resume is not None:
        # The interrupted run's own selection (its lists checked by content once open), never
        # the default list: a resume measures what the run started with, and nothing more.
        with Store.open(settings.db, create=False) as store:
            plan = plan_resume(store, settings.resume, selection)
        selection = plan.selection
        settings = dataclasses.replace(settings, resume=plan.run_id)
    # Lists are opened (streams copied) here, before the run's event loop: Ctrl-C still ends a
    # wait on a FIFO, and a pipe is not consumed by counting its rows.
    opened = []
    try:
        for path in resolve_lists(selection):
            opened.append(open_list(path))
        # Bad input is refused before the database is touched: no run row, no vantage update.
        if plan is not None:
            plan.check(opened)
        check_usable(opened, selection.urls)
        categories = parse_categories(selection.category)
        if categories:
            check_categories(opened, categories)
        if selection.strict:
            # Validate every row before measuring anything: a strict run is all or nothing.
            for _ in _targets(selection, opened, lambda problem: None):
                pass
        problems = 0

        def on_problem(problem: Any) -> None:
            nonlocal problems
            problems += 1
            if reporter is not None:
                reporter.problem(f"skipped {problem}")

        total = len(selection.urls) + sum(max(0, item.scan()[0] - 1) for item in opened)
        # Nothing selected is a usage error, not a "complete" run of 0 URLs (cron runs nightly).
        targets = require_targets(_targets(selection, opened, on_problem), opened, categories)
        # One run per database at a time (DatabaseBusy after --wait-lock seconds).
        if plan is not None and reporter is not None:
            from probe.run.writer import recorded_options

            for line in plan.differences(recorded_options(settings, request.measure)):
                reporter.problem(f"warning: {line}")
        with run_lock(settings.db, settings.wait_lock):
            summary = run_sync(targets, settings, reporter, total, config=request.measure,
                               lists=[item.identity() for item in opened],
                               selection=selection_record(selection, opened))
    finally:
        for item in opened:
            item.close()
    summary.problems = problems
    if summary.measured and summary.status in ("complete", "interrupted"):
        _judge_throttling(Path(settings.db), summary)
    return summary


def _judge_throttling(db: Path, summary: Any) -> None:
    """The run-level throttling rule (probe/judge/throttling.py), once every URL of the run is stored."""
    from probe.run.throttling import judge_run
    from probe.store import Store

    with Store.open(db, create=False) as store:
        for change in judge_run(store, summary.run_id):
            summary.verdicts[change.old.verdict] -= 1
            summary.verdicts[change.new.verdict] += 1
