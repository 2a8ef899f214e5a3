"""The process's heap over a long run: RSS kept flat, and the cyclic collector kept off the
event loop's critical path.

A run allocates and frees each measurement's objects (bodies, parsed replies, JSON, rows)
thousands of times a minute. glibc keeps memory freed inside its main heap resident, to reuse
it, and over a long run the resident pages of that heap grow although the memory in use does
not: in 25,000-URL runs RSS went 92 -> 101 MB while glibc's heap in use stayed at 46 MB and
Python's and SQLite's own memory stayed flat. ``malloc_trim(0)`` every 5 s returned those pages:
the same runs peaked at 93.9 MB (docs/bench.md, issue 16). Elsewhere than glibc this does
nothing.

The cyclic garbage collector runs on the event loop's thread, and every measurement waits
while it does. With CPython's default thresholds a 2,000-URL run at C = 64 collected 360
times (0.4 s in all, pauses of up to 50 ms while it walked the ~64,000 objects of the imported
libraries, the fingerprints and the geo tables). :func:`steady_heap` moves what is alive when
measuring starts out of the collector's reach (``gc.freeze``) and collects the young
generation less often; almost everything a measurement allocates is freed by reference
counting anyway, and what forms cycles (tasks, exceptions) is still collected.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import gc
import threading
import time
from collections.abc import Callable, Iterator
from typing import cast

__all__ = ["TRIM_INTERVAL", "YOUNG_THRESHOLD", "Trimmer", "malloc_trim", "steady_heap"]

#: Seconds between two trims: a trim walks the heap (milliseconds), so not after every batch.
TRIM_INTERVAL = 5.0
#: Net allocations of container objects between two collections of the young generation
#: (CPython's default: 700). 10,000 cut the collector's time in a run from 0.4 s to 0.03 s.
YOUNG_THRESHOLD = 10_000


@functools.cache
def _c_malloc_trim() -> Callable[[int], int] | None:
    """glibc's ``malloc_trim``, looked up once in the C library the interpreter runs on."""
    try:
        fn = ctypes.CDLL(None).malloc_trim
    except (AttributeError, OSError):
        return None
    fn.argtypes, fn.restype = [ctypes.c_size_t], ctypes.c_int
    return cast(Callable[[int], int], fn)


def malloc_trim() -> bool:
    """Return the heap's free pages to the system (glibc); False where there is no such call."""
    fn = _c_malloc_trim()
    if fn is None:
        return False
    fn(0)
    return True


class Trimmer:
    """Calls ``trim`` (default :func:`malloc_trim`) at most once per ``interval`` seconds."""

    def __init__(self, interval: float = TRIM_INTERVAL, trim: Callable[[], bool] = malloc_trim,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.interval = interval
        self._trim = trim
        self._clock = clock
        self._next = clock() + interval

    def __call__(self) -> None:
        """Trim if the interval has passed since the last trim (or since this was made)."""
        now = self._clock()
        if now >= self._next:
            self._next = now + self.interval
            self._trim()


_steady_lock = threading.Lock()
_steady_depth = 0
_steady_saved: tuple[tuple[int, ...], bool] = ((), False)


@contextlib.contextmanager
def steady_heap(young: int = YOUNG_THRESHOLD) -> Iterator[None]:
    """Within the block, objects alive on entry are never traversed by the collector and the
    young generation is collected every ``young`` allocations; both are undone on exit (a
    process that runs many runs, a test suite, gets its objects back for collection).

    Nested or overlapping blocks (a helper and a run in one process) share the first one's
    settings, and the last to leave restores the collector. Where the process had frozen
    objects of its own already, they stay frozen, and so do ours.
    """
    global _steady_depth, _steady_saved
    with _steady_lock:
        if _steady_depth == 0:
            _steady_saved = gc.get_threshold(), gc.get_freeze_count() > 0
            gc.freeze()
            gc.set_threshold(young, *_steady_saved[0][1:])
        _steady_depth += 1
    try:
        yield
    finally:
        with _steady_lock:
            _steady_depth -= 1
            if _steady_depth == 0:
                threshold, frozen_before = _steady_saved
                gc.set_threshold(*threshold)
                if not frozen_before:
                    gc.unfreeze()
