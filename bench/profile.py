"""Summarise a pyinstrument session of `probe run`: where the probe's CPU time goes.

    .venv/bin/python -m bench.profile bench/out/profile-c64-....pyisession [--top 25]

Prints (1) the heaviest functions by self time, grouped by file:function, (2) the probe's own
functions (probe/...) by inclusive time, and writes the condensed call tree (library frames
collapsed) next to the session as .txt. Awaiting time (a coroutine suspended on the network) is
not CPU: pyinstrument records it only in async mode, which the benchmark does not enable.
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

__all__ = ["main", "summarise"]


def _walk(frame: Any, stack: tuple[str, ...] = ()) -> Iterator[tuple[Any, tuple[str, ...]]]:
    yield frame, stack
    key = f"{frame.file_path_short}:{frame.function}"
    for child in frame.children:
        yield from _walk(child, (*stack, key))


def summarise(session_path: Path, top: int = 25) -> str:
    """The report as text (self time by function; probe/ functions by inclusive time)."""
    from pyinstrument.renderers import ConsoleRenderer
    from pyinstrument.session import Session

    session = Session.load(session_path)
    root = session.root_frame()
    if root is None:
        return "empty profile\n"
    self_time: dict[str, float] = defaultdict(float)
    inclusive: dict[str, float] = defaultdict(float)
    for frame, stack in _walk(root):
        if frame.is_synthetic:
            continue
        key = f"{frame.file_path_short}:{frame.function}"
        self_time[key] += frame.total_self_time
        # Count a recursive function once per stack (its outermost frame).
        if "probe/" in (frame.file_path or "") and key not in stack:
            inclusive[key] += frame.time
    total = root.time or 1.0
    lines = [f"profile: {session_path}  duration {session.duration:.1f} s  "
             f"CPU {session.cpu_time:.1f} s  samples {session.sample_count}", "",
             f"top {top} by self time (s, % of samples):"]  # fmt: skip
    for key, t in sorted(self_time.items(), key=lambda kv: -kv[1])[:top]:
        lines.append(f"  {t:8.2f}  {100 * t / total:5.1f}%  {key}")
    lines += ["", f"top {top} probe/ functions by inclusive time:"]
    for key, t in sorted(inclusive.items(), key=lambda kv: -kv[1])[:top]:
        lines.append(f"  {t:8.2f}  {100 * t / total:5.1f}%  {key}")
    tree = ConsoleRenderer(unicode=True, color=False, short_mode=False).render(session)
    session_path.with_suffix(".txt").write_text(tree)
    lines += ["", f"call tree: {session_path.with_suffix('.txt')}"]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__.split("\n")[0])
    ap.add_argument("session", type=Path, help="a .pyisession written by bench.throughput --profile")
    ap.add_argument("--top", type=int, default=25)
    args = ap.parse_args(argv)
    sys.stdout.write(summarise(args.session, args.top))
    return 0


if __name__ == "__main__":
    sys.exit(main())
