"""What can go wrong with a test list's rows and files, and counters of what happened to them."""

from __future__ import annotations

from dataclasses import dataclass, field

from probe.core.errors import ProbeUsageError

__all__ = ["ListProblem", "ListStats", "SelectionError", "TestListError"]


@dataclass(frozen=True)
class ListProblem:
    """One row (or file) that could not be turned into a target.

    ``line`` is the physical line number, or 0 when the problem concerns the whole file.
    """

    path: str
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.reason}" if self.line else f"{self.path}: {self.reason}"


class TestListError(ProbeUsageError):
    """A test list that cannot be used: missing, unreadable, no ``url`` column, or a bad row
    with ``strict=True``. The message names ``file:line``."""

    __test__ = False  # not a pytest test class, despite the name

    def __init__(self, problem: ListProblem) -> None:
        super().__init__(str(problem))
        self.problem = problem


class SelectionError(ProbeUsageError):
    """What was asked measures nothing: an unknown ``--category`` code, or no URL selected.
    The message names the flag or the lists and points at ``probe testlists``."""


@dataclass
class ListStats:
    """Counters filled in by :func:`iter_targets` (pass one to see what happened to each row)."""

    rows: int = 0  # data rows read from files (not the header, not blank lines)
    targets: int = 0  # targets yielded (files and --url)
    problems: int = 0  # invalid rows reported
    duplicates: int = 0  # rows skipped because their measured URL was already yielded
    filtered: int = 0  # rows skipped by the category filter
    per_file: dict[str, int] = field(default_factory=dict)  # targets yielded per file
