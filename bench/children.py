"""Benchmark child processes: how they are started, and what the kernel accounted for them.

The one place where the benchmarks start a measured child (`probe run`, the floor, `probe import`,
`probe results`, ...): :func:`run_child` waits for it with ``os.wait4`` (user and system CPU,
``ru_maxrss``), samples its RSS, kills its process group after a timeout, and can run it inside a
network namespace. Also the command lines and environments of the two clients of the throughput
benchmark (`probe run` and the floor), and the --probe-tree switch that measures another
version's probe with them.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.services import STUN_PORT, WHOAMI_NAME
from bench.topology import BenchNet, in_netns

__all__ = [
    "PROBE_EXTRA_ARGS",
    "ROOT",
    "ChildResult",
    "child_env",
    "compile_bytecode",
    "floor_argv",
    "probe_argv",
    "probe_env",
    "rss_profile",
    "run_child",
    "use_probe_tree",
]

ROOT = Path(__file__).resolve().parent.parent

#: Extra `probe run` arguments for every probe run (--probe-arg), e.g. to try an option's effect.
PROBE_EXTRA_ARGS: list[str] = []
#: --probe-tree: a directory holding another version's ``probe`` package (``git archive REV
#: probe``), measured instead of this checkout's, against the same floor, lab and helper.
PROBE_TREE: list[Path] = []
#: Options of :func:`probe_argv` that the --probe-tree version's `probe run` does not have.
_UNKNOWN_OPTIONS: set[str] = set()


@dataclass(frozen=True)
class ChildResult:
    """One child process, as the kernel accounted it."""

    argv: tuple[str, ...]
    returncode: int
    wall_s: float
    user_s: float
    sys_s: float
    maxrss_mb: float
    stdout: str
    stderr: str
    timed_out: bool = False
    rss_series: tuple[tuple[float, float], ...] = ()  # (seconds since start, RSS MB), every ~0.25 s
    hwm_mb: float | None = None  # VmHWM: the peak RSS of the command itself (after exec)
    rss_parts: dict[str, float] | None = None  # RssAnon/RssFile/RssShmem MB at the last sample

    @property
    def cpu_s(self) -> float:
        return self.user_s + self.sys_s


def compile_bytecode(dirs: Sequence[Path] = (ROOT / "probe", ROOT / "bench")) -> dict[str, Any]:
    """Byte-compile ``dirs`` (probe/ and bench/) once, before anything is timed.

    pip and pipx compile an installed package's modules at install time; an editable checkout
    writes its .pyc files on the first run, unless PYTHONDONTWRITEBYTECODE is set (it is in some
    CI and sandbox environments). Without this, every probe start here compiled ~100 modules
    from source (~0.35 s of CPU each time), a cost no installed probe pays and the floor (one
    module of its own) hardly pays: it was counted against the probe.
    """
    import compileall

    t0 = time.process_time()
    ok = all(compileall.compile_dir(d, quiet=1, workers=0) for d in dirs)
    return {"ok": ok, "cpu_s": round(time.process_time() - t0, 3),
            "dont_write_bytecode_env": bool(os.environ.get("PYTHONDONTWRITEBYTECODE"))}


def run_child(
    argv: Sequence[str], netns: str | None = None, *, timeout: float, env: dict[str, str] | None = None,
    workdir: Path | None = None, cwd: Path | None = None,
) -> ChildResult:  # fmt: skip
    """Run ``argv`` (in ``netns``), wait with ``os.wait4`` and return its resource usage.

    ``ip netns exec`` execs the command, so the accounted process is the command itself.
    A child that outlives ``timeout`` is killed (its whole process group) and marked timed out.
    Its output goes to files in ``workdir`` (a temporary directory when None), never to pipes
    that a large output would fill while nobody reads them; it runs in ``cwd`` (default
    ``workdir``).
    """
    if workdir is None:
        with tempfile.TemporaryDirectory(prefix="bench-child-") as tmp:
            return run_child(argv, netns, timeout=timeout, env=env, workdir=Path(tmp), cwd=cwd)
    cmd = in_netns(netns, *argv) if netns else list(argv)
    out_path, err_path = workdir / "child.out", workdir / "child.err"
    with out_path.open("wb") as out, err_path.open("wb") as err:
        t0 = time.monotonic()
        # In the work directory by default: `python -m` puts the current directory first on
        # sys.path, and a checkout's own probe/ there would shadow a --probe-tree version.
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, env=env, start_new_session=True,
                                cwd=cwd or workdir)  # fmt: skip
    timed_out = False
    series: list[tuple[float, float]] = []
    peak: float | None = None
    parts: dict[str, float] | None = None
    next_sample = t0
    try:
        while True:
            pid, status, ru = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            now = time.monotonic()
            if now >= next_sample:
                rss, hwm, sample_parts = _rss_mb(proc.pid)
                parts = sample_parts or parts
                if rss is not None:
                    series.append((round(now - t0, 2), rss))
                if hwm is not None:
                    peak = max(peak or 0.0, hwm)
                next_sample = now + 0.25
            if time.monotonic() - t0 > timeout:
                timed_out = True
                os.killpg(proc.pid, signal.SIGKILL)
                pid, status, ru = os.wait4(proc.pid, 0)
                break
            time.sleep(0.02)
    except BaseException:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            os.wait4(proc.pid, 0)
        raise
    wall = time.monotonic() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)  # keep Popen from waiting again
    return ChildResult(
        argv=tuple(argv), returncode=proc.returncode, wall_s=wall, user_s=ru.ru_utime,
        sys_s=ru.ru_stime, maxrss_mb=ru.ru_maxrss / 1024, stdout=out_path.read_text(errors="replace"),
        stderr=err_path.read_text(errors="replace")[-4000:], timed_out=timed_out,
        rss_series=tuple(series), hwm_mb=peak, rss_parts=parts,
    )  # fmt: skip


def _rss_mb(pid: int) -> tuple[float | None, float | None, dict[str, float]]:
    """(VmRSS, VmHWM, {RssAnon, RssFile, RssShmem}) of ``pid`` in MB.

    The parts tell heap growth (anonymous memory) from file pages that are merely mapped.
    """
    rss = hwm = None
    parts: dict[str, float] = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key == "VmRSS":
                    rss = round(int(value.split()[0]) / 1024, 1)
                elif key == "VmHWM":
                    hwm = round(int(value.split()[0]) / 1024, 1)
                elif key in ("RssAnon", "RssFile", "RssShmem"):
                    parts[key] = round(int(value.split()[0]) / 1024, 1)
    except OSError:
        pass
    return rss, hwm, parts


def rss_profile(series: Sequence[tuple[float, float]]) -> dict[str, Any]:
    """RSS at 25/50/75/100 % of a run and its growth over the second half (MB per minute)."""
    if len(series) < 4:
        return {}
    end = series[-1][0] or 1.0

    def at(frac: float) -> float:
        return next((mb for t, mb in series if t >= frac * end), series[-1][1])

    half = [(t, mb) for t, mb in series if t >= end / 2]
    slope = (half[-1][1] - half[0][1]) / max(half[-1][0] - half[0][0], 1e-9) * 60 if len(half) > 1 else 0.0
    return {"rss_25": at(0.25), "rss_50": at(0.5), "rss_75": at(0.75), "rss_end": series[-1][1],
            "second_half_mb_per_min": round(slope, 2)}  # fmt: skip


def child_env(workdir: Path) -> dict[str, str]:
    """The environment of a benchmark child: this checkout first, a consent file of its own, no proxy."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    env["PROBE_CONFIG_DIR"] = str(workdir / "probe-config")  # never the user's consent file
    env.pop("http_proxy", None)
    env.pop("https_proxy", None)
    return env


def floor_argv(lists: Sequence[Path], net: BenchNet, ca: Path, c: int, timeout: float,
               lean: bool = False) -> list[str]:  # fmt: skip
    """A floor (bench/floor.py: httpx's, or with ``lean`` issue 28's) over ``lists`` in the bench
    lab, at concurrency ``c``."""
    argv = [sys.executable, "-m", "bench.floor", "--resolver", net.dns_ip, "--cafile", str(ca),
            "--concurrency", str(c), "--timeout", str(timeout), "--timings"]  # fmt: skip
    if lean:
        argv.append("--lean")
    for p in lists:
        argv += ["--list", str(p)]
    return argv


def probe_argv(
    lists: Sequence[Path], net: BenchNet, ca: Path, c: int, db: Path, control: str | None,
    timeouts: dict[str, float], profile: Path | None = None,
) -> list[str]:  # fmt: skip
    """`probe run` over ``lists`` in the bench lab (with --probe-tree's version, --probe-arg's extras)."""
    argv = [sys.executable]
    if profile is not None and profile.suffix == ".folded":
        # py-spy (--pyspy): on-CPU samples of every thread (the store's writer too), Python
        # frames, from outside the process without pausing it (the probe runs unmodified).
        spy = Path(sys.executable).with_name("py-spy")
        argv = [str(spy), "record", "--nonblocking", "--threads", "-r", "400",
                "-f", "raw", "-o", str(profile), "--", sys.executable]  # fmt: skip
    elif profile is not None:
        argv += ["-m", "pyinstrument", "-r", "pyisession", "-o", str(profile)]
    argv += ["-m", "probe", "run", *map(str, lists), "--resolver", net.dns_ip,
             "--cafile", str(ca), "--concurrency", str(c), "--db", str(db), "--accept-risks",
             "--no-progress", "--vantage", "bench"]  # fmt: skip
    # The identity check asks the lab's STUN server and resolver, never the public defaults.
    argv += ["--stun", f"{net.helper_ip}:{STUN_PORT}", "--whoami", WHOAMI_NAME]
    argv += ["--control", control] if control else ["--no-control"]
    for k, v in timeouts.items():
        argv += [f"--{k.replace('_', '-')}", str(v)]
    return _known_options(argv) + PROBE_EXTRA_ARGS


def _known_options(argv: list[str]) -> list[str]:
    """``argv`` without the options (and their values) an older --probe-tree lacks."""
    out: list[str] = []
    skip = False
    for i, arg in enumerate(argv):
        if skip:
            skip = False
            continue
        if arg in _UNKNOWN_OPTIONS:
            skip = i + 1 < len(argv) and not argv[i + 1].startswith("--")
            continue
        out.append(arg)
    return out


def use_probe_tree(tree: Path, workdir: Path) -> list[str]:
    """Measure the probe of ``tree``; returns the options of probe_argv it does not know."""
    PROBE_TREE[:] = [tree.resolve()]
    compile_bytecode([PROBE_TREE[0]])  # as for this checkout's
    r = subprocess.run([sys.executable, "-m", "probe", "run", "--help"], capture_output=True,
                       text=True, env=probe_env(workdir), check=True, cwd=workdir)  # fmt: skip
    wanted = ["--stun", "--whoami", "--vantage", "--no-progress", "--accept-risks", "--no-control",
              "--control", "--dns-timeout", "--tcp-timeout", "--tls-timeout", "--http-timeout",
              "--deadline"]  # fmt: skip
    _UNKNOWN_OPTIONS.clear()
    _UNKNOWN_OPTIONS.update(o for o in wanted if o not in r.stdout)
    return sorted(_UNKNOWN_OPTIONS)


def probe_env(workdir: Path) -> dict[str, str]:
    """The environment of `probe run`: this checkout's, or --probe-tree's probe first."""
    env = child_env(workdir)
    if PROBE_TREE:
        env["PYTHONPATH"] = os.pathsep.join([str(PROBE_TREE[0]), env["PYTHONPATH"]])
    return env
