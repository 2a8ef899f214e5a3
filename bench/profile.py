"""Summarise a profile of `probe run`: where the probe's CPU time goes.

    .venv/bin/python -m bench.profile bench/out/profile-c64-....pyisession [--top 25]
    .venv/bin/python -m bench.profile bench/out/profile-c64-....folded [--urls 2000]

A ``.folded`` file (py-spy's raw format, ``bench.throughput --pyspy``) holds on-CPU samples of
every thread; its summary is the per-stage account of docs/bench.md: each sample is charged to
the first stage (in :data:`STAGES` order) that one of its frames belongs to, and with
``--cpu-ms`` (the run's CPU ms per URL, from its rusage) each stage's share of the samples is
turned into CPU ms per URL. (py-spy cannot always tell a thread waiting in the event loop's
poll from a running one, so its sample count is not itself a CPU time.)

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

__all__ = ["STAGES", "main", "stage_account", "summarise"]

#: The stages of a URL's CPU: (name, frame substrings, leaf only). A sample goes to the first
#: stage, in this order, that one of its frames matches (only its innermost frame, for a stage
#: marked leaf only): the TLS handshake inside the engine's TLS step is "tls handshake", a
#: dnspython parse inside the DNS step is "dns", the event loop's own code (every stack starts
#: in it) only where it is the innermost frame.
STAGES: tuple[tuple[str, tuple[str, ...], bool], ...] = (
    ("imports", ("<frozen importlib._bootstrap", "_find_and_load"), False),
    ("tls handshake (OpenSSL)", ("do_handshake", "ssl_do_handshake", "SSL_do_handshake"), False),
    ("store: encode + SQLite write", ("probe/store/", "probe/run/writer.py", "sqlite3", "zlib",
                                      "msgspec"), False),
    ("scrub (the user's addresses)", ("probe/run/scrub.py",), False),
    ("control client", ("probe/measure/control",), False),
    ("fingerprints", ("probe/inputs/fingerprints",), False),
    ("classification", ("probe/judge/",), False),
    ("body hash + title", ("probe/measure/decoding.py", "hashlib", "extract_title"), False),
    ("http client + headers", ("probe/measure/http.py", "httpx/", "httpcore/", "h11/"), False),
    ("dns (A, AAAA, late window)", ("probe/measure/dns.py", "dns/"), False),
    ("tcp + tls steps", ("probe/measure/tcp.py", "probe/measure/tls.py"), False),
    ("event loop (uvloop/asyncio), TLS records", ("asyncio/", "uvloop", "selectors", "ssl.py"),
     True),
    ("engine + pool", ("probe/measure/", "probe/run/pool.py", "probe/run/producer.py",
                       "probe/inputs/testlists"), False),
    ("run setup, identity, pre-flight, end", ("probe/",), False),
)


def stage_account(path: Path, cpu_ms_per_url: float | None = None,
                  ) -> list[tuple[str, int, float | None]]:  # fmt: skip
    """(stage, samples, CPU ms per URL or None) for a py-spy raw file, heaviest first."""
    counts: dict[str, int] = defaultdict(int)
    for line in path.read_text(errors="replace").splitlines():
        stack, _, n = line.rpartition(" ")
        if not n.isdigit():
            continue
        frames = stack.split(";")[::-1]  # leaf first
        for name, needles, leaf_only in STAGES:
            if any(needle in f for f in (frames[:1] if leaf_only else frames) for needle in needles):
                counts[name] += int(n)
                break
        else:
            counts["other (interpreter, C libraries)"] += int(n)
    total = sum(counts.values()) or 1
    return [(k, v, round(cpu_ms_per_url * v / total, 3) if cpu_ms_per_url else None)
            for k, v in sorted(counts.items(), key=lambda kv: -kv[1])]  # fmt: skip


def summarise_folded(path: Path, top: int = 25, cpu_ms_per_url: float | None = None) -> str:
    """The per-stage account and the heaviest leaf frames of a py-spy raw file."""
    account = stage_account(path, cpu_ms_per_url)
    total = sum(n for _, n, _ in account) or 1
    lines = [f"profile: {path}  {total} samples", "",
             "per stage (samples, %, CPU ms per URL):"]  # fmt: skip
    for name, n, ms in account:
        lines.append(f"  {n:7d}  {100 * n / total:5.1f}%  {_ms(ms)}  {name}")
    leaves: dict[str, int] = defaultdict(int)
    for line in path.read_text(errors="replace").splitlines():
        stack, _, n = line.rpartition(" ")
        if n.isdigit():
            leaves[stack.split(";")[-1]] += int(n)
    lines += ["", f"top {top} leaf frames:"]
    for key, n in sorted(leaves.items(), key=lambda kv: -kv[1])[:top]:
        lines.append(f"  {n:7d}  {100 * n / total:5.1f}%  {key[:100]}")
    return "\n".join(lines) + "\n"


def _ms(ms: float | None) -> str:
    return f"{ms:6.3f}" if ms is not None else "     -"



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
    ap.add_argument("session", type=Path, help="a .pyisession (--profile) or .folded (--pyspy)")
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument("--cpu-ms", type=float,
                    help="the run's CPU ms per URL (.folded: each stage's share in ms per URL)")
    args = ap.parse_args(argv)
    if args.session.suffix == ".folded":
        sys.stdout.write(summarise_folded(args.session, args.top, args.cpu_ms))
    else:
        sys.stdout.write(summarise(args.session, args.top))
    return 0


if __name__ == "__main__":
    sys.exit(main())
