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
import time
from collections.abc import Callable

__all__ = ["TRIM_INTERVAL", "Trimmer", "malloc_trim"]

#: Seconds between two trims: a trim walks the heap (milliseconds), so not after every batch.
TRIM_INTERVAL = 5.0

_unset = object()
_trim_fn: object = _unset


def malloc_trim() -> bool:
    """Return the heap's free pages to the system (glibc); False where there is no such call."""
    global _trim_fn
    if _trim_fn is _unset:
        try:
            fn = ctypes.CDLL(None).malloc_trim  # the C library the interpreter runs on
            fn.argtypes, fn.restype = [ctypes.c_size_t], ctypes.c_int
            _trim_fn = fn
        except (AttributeError, OSError):
            _trim_fn = None
    if _trim_fn is None:
        return False
    _trim_fn(0)  # type: ignore[operator]  # a ctypes function, checked above
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
