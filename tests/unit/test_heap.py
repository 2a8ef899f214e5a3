"""Returning freed heap pages to the system: at most once per interval."""

from __future__ import annotations

import ctypes

import pytest

from probe import heap


def test_the_trimmer_trims_at_most_once_per_interval() -> None:
    now = [0.0]
    calls: list[float] = []
    trimmer = heap.Trimmer(5.0, trim=lambda: calls.append(now[0]) is None, clock=lambda: now[0])
    for t in (0.0, 1.0, 4.9, 5.0, 5.1, 9.9, 10.2, 30.0):
        now[0] = t
        trimmer()
    assert calls == [5.0, 10.2, 30.0]


def test_malloc_trim_runs_where_the_c_library_has_it() -> None:
    has_it = hasattr(ctypes.CDLL(None), "malloc_trim")
    if not has_it:
        pytest.skip("no malloc_trim in this C library (not glibc)")
    assert heap.malloc_trim() is True
    assert heap.malloc_trim() is True  # the function is looked up once, then reused
