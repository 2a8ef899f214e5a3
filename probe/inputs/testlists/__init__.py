"""Test lists: Citizen Lab CSV files (and ad-hoc URLs) -> a stream of :class:`~probe.core.model.Target`.

The format is the Citizen Lab one (https://github.com/citizenlab/test-lists): a header line, then
one URL per row, with the columns ``url, category_code, category_description, date_added, source,
notes``. Only ``url`` is required; ``category_code`` is used when present; other columns are
ignored.

Reading is streaming and forgiving: each file is read line by line in binary, each physical line
decoded on its own, so one bad row (invalid UTF-8, a broken quote, a malformed URL) is reported
with ``file:line`` and the reason and the other rows proceed. Nothing is dropped silently: every
row is either yielded, filtered out by category on request, skipped as a duplicate, or reported
as a :class:`ListProblem`. Line numbers are physical lines (1-based), so a quoted field that
spans lines does not shift the numbers of the rows after it.
"""

from __future__ import annotations

from probe.core.net.urls import InvalidURL, parse_url
from probe.inputs.testlists.categories import load_legend, parse_categories, unknown_categories
from probe.inputs.testlists.location import (
    LEGEND_NAME,
    SHIPPED_ORIGIN,
    TESTLISTS_ENV,
    default_lists,
    find_lists,
    known_lists,
    testlists_dir,
)
from probe.inputs.testlists.problems import ListProblem, ListStats, SelectionError, TestListError
from probe.inputs.testlists.source import OpenedList, open_list
from probe.inputs.testlists.summary import ListSummary, Summary, summarize, summary_records
from probe.inputs.testlists.targets import (
    check_categories,
    check_usable,
    iter_targets,
    require_targets,
)

__all__ = [
    "LEGEND_NAME",
    "SHIPPED_ORIGIN",
    "TESTLISTS_ENV",
    "InvalidURL",
    "ListProblem",
    "ListStats",
    "ListSummary",
    "OpenedList",
    "SelectionError",
    "Summary",
    "TestListError",
    "check_categories",
    "check_usable",
    "default_lists",
    "find_lists",
    "iter_targets",
    "known_lists",
    "load_legend",
    "open_list",
    "parse_categories",
    "parse_url",
    "require_targets",
    "summarize",
    "summary_records",
    "testlists_dir",
    "unknown_categories",
]
