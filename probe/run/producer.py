"""The producer: reads the targets lazily and starts one measurer task per target.

A target is pulled from the lists only when the pool admits it (a free slot, room at the
writer), so the lists are never read far ahead of what was measured.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING

from probe.core.model import Target
from probe.run.pool import MeasurerPool

if TYPE_CHECKING:
    from probe.store.urlset import URLSet

__all__ = ["produce", "unmeasured"]


def unmeasured(targets: Iterable[Target], done: URLSet) -> Iterator[Target]:
    """The targets whose URL a resumed run has not stored yet (no duplicate URL in a run)."""
    return (t for t in targets if t.url not in done)


async def produce(targets: Iterable[Target], pool: MeasurerPool,
                  all_out: Callable[[], None] | None = None) -> None:
    """Measure every target in ``pool``; returns when all are settled.

    ``all_out`` (optional) is called once every target is handed to the pool, while the last
    ones are still measured. Cancelling it cancels the measurements in flight (a stopped run);
    an error reading the targets cancels them too and is raised.
    """
    async with asyncio.TaskGroup() as measurers:
        for target in targets:
            await pool.admit()
            measurers.create_task(pool.measure(target))
        if all_out is not None:
            all_out()
