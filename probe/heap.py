"""Giving memory the process freed back to the system, so that a long run's RSS stays flat.

A run allocates and frees each measurement's objects (bodies, parsed replies, JSON, rows)
thousands of times a minute. glibc keeps memory freed inside its main heap resident, to reuse
it, and over a long run the resident pages of that heap grow although the memory in use does
not: in 25,000-URL runs RSS went 92 -> 101 MB while glibc's heap in use stayed at 46 MB and
Python's and SQLite's own memory stayed flat. ``malloc_trim(0)`` every 5 s returned those pages:
the same runs peaked at 93.9 MB (docs/bench.md, issue 16). Elsewhere than glibc this does
nothing.
"""

from __future__ import annotations

import ctypes
import functools
import time
from collections.abc import Callable
from typing import cast

__all__ = ["TRIM_INTERVAL", "Trimmer", "malloc_trim"]

#: Seconds between two trims: a trim walks the heap (milliseconds), so not after every batch.
TRIM_INTERVAL = 5.0


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
