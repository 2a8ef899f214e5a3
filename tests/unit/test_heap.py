"""Returning freed heap pages to the system: at most once per interval."""

from __future__ import annotations

import ctypes

import pytest

from probe.host import heap


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


def _collectable(obj: object) -> bool:
    import gc

    return any(o is obj for o in gc.get_objects())


def test_steady_heap_freezes_what_is_alive_and_restores_the_collector_on_exit() -> None:
    import gc

    before = gc.get_threshold()
    assert gc.get_freeze_count() == 0
    alive = {"k": [1, 2]}
    assert _collectable(alive)
    with heap.steady_heap(young=12_345):
        assert gc.get_threshold() == (12_345, *before[1:])
        # What was alive on entry is out of the collector's reach while measuring.
        assert gc.get_freeze_count() > 0
        assert not _collectable(alive)
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0  # a process that runs many runs gets them back
    assert _collectable(alive)


def test_steady_heap_leaves_a_freeze_of_the_process_own_in_place() -> None:
    import gc

    gc.freeze()
    try:
        frozen = gc.get_freeze_count()
        with heap.steady_heap():
            pass
        assert gc.get_freeze_count() >= frozen
    finally:
        gc.unfreeze()


def test_overlapping_steady_heaps_restore_the_collector_when_the_last_one_ends() -> None:
    # A helper and a run in one process: whichever ends first must not undo the other's.
    import gc

    before = gc.get_threshold()
    first, second = heap.steady_heap(young=20_000), heap.steady_heap(young=30_000)
    first.__enter__()
    second.__enter__()
    first.__exit__(None, None, None)
    assert gc.get_threshold()[0] == 20_000 and gc.get_freeze_count() > 0
    second.__exit__(None, None, None)
    assert gc.get_threshold() == before and gc.get_freeze_count() == 0
