"""Throughput benchmark: `probe run` against the floor, in a lab with real round-trip time.

    sudo .venv/bin/python -m bench.throughput --urls 2000 --concurrency 64,128 --rtt-ms 100
    sudo .venv/bin/python -m bench.throughput --memory            # peak RSS at 10,000 and 100,000 URLs

Builds a three-namespace lab (client == router with NFQUEUE delay == server with nginx, dnsmasq
and the control helper), then for each concurrency C runs, inside the client namespace, the floor
(bench/floor.py) and `probe run` over the same N names, and measures for each child process:
wall time (URLs/s), user+sys CPU seconds (CPU ms per URL) and peak RSS, from ``os.wait4``.
Prints a table with the ratios probe/floor and against the ideal C / (4 x RTT) and writes
bench/out/throughput-<time>.json. See docs/bench.md.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from bench import probedb, topology
from bench.children import (
    PROBE_EXTRA_ARGS,
    ChildResult,
    child_env,
    compile_bytecode,
    floor_argv,
    probe_argv,
    probe_env,
    rss_profile,
    run_child,
    use_probe_tree,
)
from bench.helper_load import helper_load
from bench.services import Services, write_url_list
from bench.targets import check_targets as _check_targets
from bench.targets import fingerprint_scaling, helper_capacity, latest_query_time
from bench.topology import BenchNet, delayed, in_netns

__all__ = ["OUT", "lab", "main", "median_run", "probe_once", "ratio"]

OUT = Path(__file__).resolve().parent / "out"

#: The concurrency of the latency-bound target (with the control); the memory runs' default.
#: Every target is in bench/targets.py.
TARGET_CONCURRENCY = 64


# --- the lab --------------------------------------------------------------------------------


@contextlib.contextmanager
def _signals_raise() -> Iterator[None]:
    """SIGTERM/SIGHUP become KeyboardInterrupt so that every finally (teardown) runs."""

    def handler(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    old = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


@contextlib.contextmanager
def lab(workdir: Path, *, helper: bool, nginx_workers: int,
        helper_profile: Path | None = None,
        helper_idle: bool = False) -> Iterator[tuple[BenchNet, Services]]:
    """The namespaces and servers; everything is torn down on exit, whatever happened."""
    net = topology.create()
    try:
        with Services(net, workdir, helper=helper, nginx_workers=nginx_workers,
                      helper_profile=helper_profile, helper_idle=helper_idle) as services:
            yield net, services
    finally:
        topology.destroy(net)


def measure_rtt(net: BenchNet, n: int = 5) -> float:
    """Median TCP connect time (ms) from the client namespace to the web server."""
    code = (
        "import socket,time,statistics\n"
        "ts=[]\n"
        f"for _ in range({n}):\n"
        "    t=time.perf_counter()\n"
        f"    s=socket.create_connection(('{net.web_ip}',443),timeout=5)\n"
        "    ts.append(time.perf_counter()-t); s.close()\n"
        "print(statistics.median(ts)*1000)\n"
    )
    r = subprocess.run(in_netns(net.client, sys.executable, "-c", code), capture_output=True,
                       text=True, check=True)  # fmt: skip
    return round(float(r.stdout.strip()), 2)


# --- the two clients -------------------------------------------------------------------------


def _figures(r: ChildResult, urls: int, ok: int | None) -> dict[str, Any]:
    return {
        "returncode": r.returncode,
        "timed_out": r.timed_out,
        "urls": urls,
        "ok": ok,
        "wall_s": round(r.wall_s, 3),
        "urls_per_s": round(urls / r.wall_s, 1) if r.wall_s else None,
        "cpu_s": round(r.cpu_s, 3),
        "user_s": round(r.user_s, 3),
        "sys_s": round(r.sys_s, 3),
        "cpu_ms_per_url": round(1000 * r.cpu_s / urls, 2) if urls else None,
        # ru_maxrss also counts the pages a forked child shared with this (parent) process before
        # it exec'd, so the command's own high-water mark (VmHWM, sampled) is the figure; the
        # kernel's ru_maxrss is kept for reference.
        "peak_rss_mb": r.hwm_mb if r.hwm_mb is not None else round(r.maxrss_mb, 1),
        "ru_maxrss_mb": round(r.maxrss_mb, 1),
        "rss": rss_profile(r.rss_series),
    }


def _valid(fig: dict[str, Any]) -> bool:
    """A run counts when it exited 0 in time and fetched (nearly) every URL fine."""
    ok = fig.get("ok")
    return (
        fig["returncode"] == 0
        and not fig["timed_out"]
        and ok is not None
        and ok >= 0.99 * fig["urls"]
    )


def _floor_once(
    net: BenchNet, services: Services, workdir: Path, lists: Sequence[Path], urls: int, c: int,
    rtt_ms: float, timeouts: dict[str, float], timeout: float, lean: bool = False,
) -> dict[str, Any]:  # fmt: skip
    assert services.ca is not None
    delay_stats: list[dict[str, Any]] = []
    load = os.getloadavg()[0]
    cpu0, m0 = services.cpu_seconds(), machine_cpu()
    with delayed(net, rtt_ms, delay_stats):
        fr = run_child(floor_argv(lists, net, services.ca, c, timeouts.get("deadline", 15.0), lean),
                       net.client, timeout=timeout, env=child_env(workdir), workdir=workdir)  # fmt: skip
    try:
        fdata = json.loads(fr.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        fdata = {}
    fig = _figures(fr, urls, fdata.get("ok"))
    fig.update(failures=fdata.get("failures"), internal_elapsed_s=fdata.get("elapsed"),
               step_median_ms=fdata.get("step_median_ms"), loadavg_before=round(load, 2),
               delay=delay_stats, server_cpu_s=_cpu_delta(cpu0, services.cpu_seconds()),
               machine_busy=machine_busy(m0, machine_cpu()))  # fmt: skip
    if fr.returncode != 0:
        fig["stderr"] = fr.stderr[-1500:]
    fig["valid"] = _valid(fig)
    return fig


def probe_once(
    net: BenchNet, services: Services, workdir: Path, lists: Sequence[Path], urls: int, c: int,
    rtt_ms: float, timeouts: dict[str, float], timeout: float, profile: Path | None, control: bool,
) -> dict[str, Any]:  # fmt: skip
    assert services.ca is not None
    db = workdir / f"probe-c{c}.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    delay_stats: list[dict[str, Any]] = []
    load = os.getloadavg()[0]
    cpu0, m0 = services.cpu_seconds(), machine_cpu()
    with delayed(net, rtt_ms, delay_stats):
        pr = run_child(
            probe_argv(lists, net, services.ca, c, db, services.control_url if control else None,
                       timeouts, profile),
            net.client, timeout=timeout, env=probe_env(workdir), workdir=workdir,
        )  # fmt: skip
    ok, verdicts = probedb.probe_ok(db)
    fig = _figures(pr, urls, ok)
    fig.update(verdicts=verdicts, control=services.control_url if control else None,
               timeline_median_ms=probedb.timeline(db), measuring_span_s=probedb.measuring_span(db),
               loadavg_before=round(load, 2), delay=delay_stats,
               server_cpu_s=_cpu_delta(cpu0, services.cpu_seconds()),
               machine_busy=machine_busy(m0, machine_cpu()))  # fmt: skip
    if pr.returncode != 0:
        fig["stderr"] = pr.stderr[-1500:]
    fig["valid"] = _valid(fig)
    return fig


def machine_cpu() -> tuple[int, int]:
    """(busy, total) jiffies of all cores so far, from /proc/stat (idle and iowait are not busy)."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:9]]
    return sum(fields) - fields[3] - fields[4], sum(fields)


def machine_busy(before: tuple[int, int], after: tuple[int, int]) -> float | None:
    """Share of the machine's cores busy between two :func:`machine_cpu` readings (0 to 1).

    Near 1, every process of the run (client, helper, nginx, delay program) together used all
    the cores: the case was CPU-bound, whatever its concurrency.
    """
    total = after[1] - before[1]
    return round((after[0] - before[0]) / total, 3) if total > 0 else None


def _cpu_delta(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    """CPU seconds each server spent during one client run (nginx, dnsmasq, the helper)."""
    return {k: round(v - before.get(k, 0.0), 2) for k, v in after.items()}


def median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The run with the median throughput (valid runs first), so its figures belong together."""
    pool = [r for r in runs if r["valid"]] or runs
    pool = sorted(pool, key=lambda r: r["urls_per_s"] or 0.0)
    return pool[(len(pool) - 1) // 2]


def run_pair(
    net: BenchNet, services: Services, workdir: Path, lists: Sequence[Path], urls: int, c: int,
    rtt_ms: float, timeouts: dict[str, float], timeout: float, profile: Path | None,
    control: bool = True, repeat: int = 1,
) -> dict[str, Any]:  # fmt: skip
    """Measure both floors and the probe over the same URLs at concurrency ``c``, ``repeat`` times.

    The order alternates (floor, lean, probe, probe, lean, floor, ...) so that a change in
    background load does not always favour the same client; the row reports the median run of
    each.
    """
    row: dict[str, Any] = {"concurrency": c, "urls": urls, "rtt_ms": rtt_ms, "repeat": repeat}
    with delayed(net, rtt_ms, []):
        row["measured_connect_ms"] = measure_rtt(net)
    runs: dict[str, list[dict[str, Any]]] = {"floor": [], "lean": [], "probe": []}
    for i in range(repeat):
        order = ("floor", "lean", "probe") if i % 2 == 0 else ("probe", "lean", "floor")
        for who in order:
            if who == "probe":
                runs[who].append(probe_once(net, services, workdir, lists, urls, c, rtt_ms,
                                            timeouts, timeout, None, control))  # fmt: skip
            else:
                runs[who].append(_floor_once(net, services, workdir, lists, urls, c, rtt_ms,
                                             timeouts, timeout, lean=who == "lean"))  # fmt: skip
    floors, probes = runs["floor"], runs["probe"]
    row["floor"], row["lean"], row["probe"] = (median_run(floors), median_run(runs["lean"]),
                                               median_run(probes))  # fmt: skip
    if profile is not None:
        # A separate run under pyinstrument: the figures above stay free of its overhead.
        prof = probe_once(net, services, workdir, lists, urls, c, rtt_ms, timeouts, timeout,
                           profile, control)  # fmt: skip
        row["profile"] = {"session": str(profile), "urls_per_s": prof["urls_per_s"],
                          "cpu_ms_per_url": prof["cpu_ms_per_url"], "valid": prof["valid"]}  # fmt: skip
        if profile.exists():
            # In a child: loading a session takes hundreds of MB, which later forks would inherit.
            r = subprocess.run([sys.executable, "-m", "bench.profile", str(profile),
                                "--cpu-ms", str(prof["cpu_ms_per_url"] or 0)],
                               capture_output=True, text=True, env=child_env(workdir))  # fmt: skip
            row["profile"]["summary"] = r.stdout or r.stderr[-1000:]
    if repeat > 1:
        row["floor_runs"], row["lean_runs"], row["probe_runs"] = floors, runs["lean"], probes
    ideal = c / (4 * rtt_ms / 1000) if rtt_ms > 0 else None
    row["ideal_urls_per_s"] = round(ideal, 1) if ideal else None
    f, p, lean = row["floor"], row["probe"], row["lean"]
    row["ratios"] = {
        # The targets (issue 28) are judged against the lean floor.
        "probe_vs_lean_throughput": ratio(p["urls_per_s"], lean["urls_per_s"]),
        "probe_vs_lean_cpu": ratio(p["cpu_ms_per_url"], lean["cpu_ms_per_url"]),
        "probe_vs_lean_measuring": ratio(lean.get("internal_elapsed_s"),
                                         p.get("measuring_span_s")),
        "probe_vs_floor_throughput": ratio(p["urls_per_s"], f["urls_per_s"]),
        "probe_vs_floor_cpu": ratio(p["cpu_ms_per_url"], f["cpu_ms_per_url"]),
        "probe_vs_ideal": ratio(p["urls_per_s"], ideal),
        "floor_vs_ideal": ratio(f["urls_per_s"], ideal),
        # Throughput over each client's measuring time only (first URL to last): the part of
        # the gap that is per URL, without the probe's fixed start and end costs.
        "probe_vs_floor_measuring": ratio(f.get("internal_elapsed_s"), p.get("measuring_span_s")),
    }
    if not p["valid"]:
        row["ratios"] = {k: None for k in row["ratios"]}
    else:
        for name, fl in (("floor", f), ("lean", lean)):
            if not fl["valid"]:
                row["ratios"].update({k: None for k in row["ratios"] if f"_{name}_" in k})
    row["ratios"]["floor_vs_ideal"] = ratio(f["urls_per_s"], ideal) if f["valid"] else None
    row["ratios"]["lean_vs_ideal"] = ratio(lean["urls_per_s"], ideal) if lean["valid"] else None
    return row


def ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 3) if a and b else None


def help_time(runs: int) -> dict[str, Any]:
    """Wall time of ``probe --help`` (no network involved), median of ``runs``."""
    exe = shutil.which("probe")
    argv = [exe, "--help"] if exe else [sys.executable, "-m", "probe", "--help"]
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        subprocess.run(argv, capture_output=True, check=True)
        times.append(time.perf_counter() - t)
    return {"argv": argv, "runs": runs, "median_s": round(statistics.median(times), 3),
            "min_s": round(min(times), 3), "max_s": round(max(times), 3)}  # fmt: skip


def memory_runs(
    net: BenchNet, services: Services, workdir: Path, sizes: Sequence[int], c: int, rtt_ms: float,
    timeouts: dict[str, float], timeout: float, control: bool,
) -> list[dict[str, Any]]:  # fmt: skip
    """Peak RSS of `probe run` over lists of growing size (flat memory is the goal)."""
    assert services.ca is not None
    rows = []
    for n in sizes:
        lst = write_url_list(workdir / f"mem-{n}.csv", n)
        db = workdir / f"mem-{n}.db"
        delay_stats: list[dict[str, Any]] = []
        with delayed(net, rtt_ms, delay_stats):
            pr = run_child(
                probe_argv([lst], net, services.ca, c, db,
                           services.control_url if control else None, timeouts),
                net.client, timeout=timeout, env=probe_env(workdir), workdir=workdir,
            )  # fmt: skip
        ok, verdicts = probedb.probe_ok(db)
        row = {"urls": n, "concurrency": c, "rtt_ms": rtt_ms, **_figures(pr, n, ok),
               "verdicts": verdicts, "delay": delay_stats, "rss_parts_end": pr.rss_parts}  # fmt: skip
        row["valid"] = _valid(row)
        if pr.returncode != 0:
            row["stderr"] = pr.stderr[-1500:]
        rows.append(row)
        row["rss_series"] = pr.rss_series[:: max(1, len(pr.rss_series) // 100)]
        print(f"  memory: {n} URLs: peak RSS {row['peak_rss_mb']} MB, {row['urls_per_s']} URLs/s, "
              f"rc {pr.returncode}, RSS over the run {row['rss']}, at the end {pr.rss_parts}",
              flush=True)  # fmt: skip
        for p in (lst, db, Path(f"{db}-wal"), Path(f"{db}-shm")):
            p.unlink(missing_ok=True)
    return rows


# --- report ----------------------------------------------------------------------------------


def _fmt(v: Any, spec: str = "") -> str:
    if v is None:
        return "-"
    return format(v, spec) if spec else str(v)


def print_table(result: dict[str, Any]) -> None:
    """The terminal report."""
    p = result["params"]
    print()
    if result["runs"]:
        print(f"probe throughput benchmark  cores={result['machine']['cores']}  RTT={p['rtt_ms']} ms"
              f"  URLs={p['urls']}  control={'yes' if p['control'] else 'no'}"
              f"  helper priority={p.get('helper_priority', 'normal')}")  # fmt: skip
    else:
        print(f"probe benchmark  cores={result['machine']['cores']}  "
              f"control={'yes' if p['control'] else 'no'}")  # fmt: skip
    hdr = (f"{'C':>4} {'client':<6} {'URLs/s':>8} {'CPU ms/URL':>11} {'peak RSS MB':>12} "
           f"{'ok':>6} {'wall s':>7} {'load':>5}")  # fmt: skip
    for row in result["runs"]:
        print()
        print(f"C = {row['concurrency']}, {'with' if row.get('control', True) else 'without'} the "
              f"control  (TCP connect measured: {row['measured_connect_ms']} ms)")  # fmt: skip
        print(hdr)
        for name in ("ideal", "floor", "lean", "probe"):
            if name == "ideal":
                print(f"{row['concurrency']:>4} {'ideal':<6} {_fmt(row['ideal_urls_per_s'], '8.1f')}")
                continue
            if name not in row:
                continue
            f = row[name]
            print(f"{row['concurrency']:>4} {name:<6} {_fmt(f['urls_per_s'], '8.1f')} "
                  f"{_fmt(f['cpu_ms_per_url'], '11.2f')} {_fmt(f['peak_rss_mb'], '12.1f')} "
                  f"{_fmt(f['ok'], '>6')} {_fmt(f['wall_s'], '7.1f')} "
                  f"{_fmt(f.get('loadavg_before'), '5.2f')}")  # fmt: skip
        r = row["ratios"]
        print(f"     probe/lean throughput {_fmt(r.get('probe_vs_lean_throughput'))}  CPU "
              f"{_fmt(r.get('probe_vs_lean_cpu'))}  (the targets' floor)")  # fmt: skip
        print(f"     probe/floor throughput {_fmt(r['probe_vs_floor_throughput'])}  CPU "
              f"{_fmt(r['probe_vs_floor_cpu'])}  probe/ideal {_fmt(r['probe_vs_ideal'])}  "
              f"floor/ideal {_fmt(r['floor_vs_ideal'])}")  # fmt: skip
        if row["probe"].get("urls_per_s"):
            print(f"     probe: {row['probe']['urls_per_s'] * 3600:,.0f} URLs an hour")
        hc = helper_capacity(row)
        if hc is not None:
            print(f"     control helper: {hc} measurements per CPU second")
        if r.get("probe_vs_floor_measuring") is not None:
            print(f"     probe/floor throughput over their measuring time only (first URL to "
                  f"last; fixed start and end costs excluded): {_fmt(r['probe_vs_floor_measuring'])}"
                  f"  (probe {_fmt(row['probe'].get('measuring_span_s'))} s, floor "
                  f"{_fmt(row['floor'].get('internal_elapsed_s'))} s)")  # fmt: skip
        for name in ("floor", "lean", "probe"):
            if row.get(name, {}).get("step_median_ms"):
                print(f"     {name} median step ms: {row[name]['step_median_ms']}")
            if row[name].get("timeline_median_ms"):
                print(f"     {name} median timeline ms: {row[name]['timeline_median_ms']}")
            if row[name].get("server_cpu_s"):
                print(f"     server CPU s during {name}: {row[name]['server_cpu_s']}")
            if row[name].get("machine_busy") is not None:
                print(f"     machine CPU busy during {name}: {row[name]['machine_busy']:.0%} of "
                      f"{os.cpu_count()} cores")
            for s in row[name].get("delay", []):
                print(f"     delay q{s['queue']} during {name}: {s['packets']} packets, late p50 "
                      f"{s['late_p50_ms']} ms p99 {s['late_p99_ms']} ms max {s['late_max_ms']} ms, "
                      f"drops {s['queue_dropped'] + s['user_dropped']}")  # fmt: skip
            if row[name].get("stderr"):
                print(f"     {name} failed (rc {row[name]['returncode']}): "
                      f"{row[name]['stderr'].strip().splitlines()[-1:]}")  # fmt: skip
    for row in result["runs"]:
        if row.get("profile", {}).get("summary"):
            print(f"profile at C={row['concurrency']} (probe under pyinstrument: "
                  f"{row['profile']['urls_per_s']} URLs/s):")  # fmt: skip
            print(row["profile"]["summary"])
    for m in result.get("memory", []):
        print(f"memory: {m['urls']:>7} URLs  C={m['concurrency']} RTT={m['rtt_ms']} ms  peak RSS "
              f"{m['peak_rss_mb']} MB  {m['urls_per_s']} URLs/s  rc={m['returncode']}  "
              f"RSS at 25/50/75/100 %: {m['rss'].get('rss_25')}/{m['rss'].get('rss_50')}/"
              f"{m['rss'].get('rss_75')}/{m['rss'].get('rss_end')} MB")  # fmt: skip
    if result.get("help"):
        h = result["help"]
        print(f"probe --help: median {h['median_s']} s over {h['runs']} runs")
    hl = result.get("helper_load")
    if hl:
        print(f"helper serving {hl['probes']} probes at C={hl['concurrency']} (load "
              f"{hl['loadavg_before']}): {hl['served_200']} measurements in {hl['wall_s']} s, "
              f"{hl['busy_503']} busy (503), at most {hl['max_in_flight_seen']} in flight, CPU "
              f"{hl['helper_cpu_ms_per_measurement']} ms per measurement = "
              f"{hl['measurements_per_cpu_s']} measurements/s per core; the probes "
              f"{hl['probes_cpu_ms_per_url']} ms/URL each; control failures stored "
              f"{hl['control_failures']}")  # fmt: skip
    fp = result.get("fingerprints")
    if fp:
        print(f"block-page matching over a {fp['body_kib']} KiB page: {fp['all']} fingerprints "
              f"{fp['all_us']} us, {fp['few']} fingerprints {fp['few_us']} us")  # fmt: skip
    lq = result.get("latest_query")
    if lq:
        print(f"latest verdicts over {lq['rows']:,} measurements: {lq['latest_rows']:,} rows in "
              f"{lq['median_s']} s (median of {lq['runs_s']})")  # fmt: skip
    if result.get("targets"):
        print()
        for name, t in result["targets"].items():
            verdict = "info" if t["pass"] is None else "PASS" if t["pass"] else "FAIL"
            print(f"target {name}: {t['value']} -> {verdict}"
                  + (f"  ({t['note']})" if t.get("note") else ""))
    print()


def check_targets(result: dict[str, Any]) -> dict[str, Any]:
    """Issue 16's targets, judged on this run's figures (bench/targets.py)."""
    return _check_targets(result)


def parse_cases(text: str) -> list[tuple[bool, int]]:
    """``control@64,none@128`` -> [(True, 64), (False, 128)]; raises SystemExit on a bad case."""
    cases = []
    for part in text.split(","):
        kind, _, c = part.strip().partition("@")
        if kind not in ("control", "none") or not c.isdigit() or int(c) < 1:
            raise SystemExit(f"--cases: {part!r} is not control@C or none@C")
        cases.append((kind == "control", int(c)))
    return cases


def probe_event_loop(workdir: Path) -> str:
    """The event loop `probe run` gets (uvloop when installed, asyncio's otherwise)."""
    # A --probe-tree version from before the event loop module runs on asyncio's loop; one from
    # before the layers (2026-12) has it at probe/eventloop.py. Looked up by file: the editable
    # install's finder would otherwise answer with this checkout's module.
    code = ("import importlib, os, probe\n"
            "d = os.path.dirname(probe.__file__)\n"
            "name = next((m for f, m in (('host/eventloop.py', 'probe.host.eventloop'),\n"
            "                            ('eventloop.py', 'probe.eventloop'))\n"
            "             if os.path.exists(os.path.join(d, f))), None)\n"
            "if name is None:\n"
            "    print('asyncio'); raise SystemExit\n"
            "f = importlib.import_module(name).loop_factory\n"
            "print('asyncio' if f() is None else 'uvloop')")  # fmt: skip
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       env=probe_env(workdir), cwd=workdir)  # fmt: skip
    return r.stdout.strip() or f"unknown ({r.stderr.strip()[-200:]})"


def _probe_alone_cpu(runs: Sequence[dict[str, Any]]) -> float | None:
    """The probe's CPU ms per URL without the control, from this run's no-control cases."""
    xs = [r["probe"]["cpu_ms_per_url"] for r in runs
          if not r.get("control", True) and r["probe"]["valid"]]  # fmt: skip
    return min(xs) if xs else None


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.throughput", description=__doc__.split("\n")[0])
    ap.add_argument("--urls", type=int, default=2000, help="URLs per run (distinct names)")
    ap.add_argument("--concurrency", default="64", help="comma-separated, e.g. 64,128")
    ap.add_argument("--rtt-ms", type=float, default=100.0, help="round-trip time added by the router")
    ap.add_argument("--repeat", type=int, default=1,
                    help="runs of each client per concurrency (order alternates; median reported)")
    ap.add_argument("--no-control", action="store_true", help="run the probe without the helper")
    ap.add_argument("--cases", metavar="CASES",
                    help="comma-separated control@C or none@C (e.g. control@64,none@128,none@256): "
                    "each a floor + probe pair, with or without the helper, side by side in one "
                    "run (replaces --concurrency / --no-control)")
    ap.add_argument("--issue16", action="store_true",
                    help="issue 16's targets: --cases control@64,none@128,none@256, the helper "
                    "serving 4 probes, --memory (10k and 100k URLs with the control) and the "
                    "latest-verdict query over 1M rows, each judged PASS/FAIL")
    ap.add_argument("--issue28", action="store_true",
                    help="issue 28's targets: --issue16's runs, judged against the lean floor, "
                    "with URLs an hour at C=256 and the helper's measurements per CPU second")
    ap.add_argument("--helper-load", action="store_true",
                    help="the helper (default --max-in-flight) serving --helper-probes probes at once")
    ap.add_argument("--helper-probes", type=int, default=4)
    ap.add_argument("--helper-concurrency", type=int, default=16,
                    help="concurrency of each probe of --helper-load (default 16: 4 x 16 = the "
                    "helper's documented capacity of 64)")
    ap.add_argument("--latest-rows", type=int, default=0,
                    help="time the latest-verdict query over a synthetic database of this many "
                    "measurements (bench/bench_store.py's, kept in bench/out for reuse); 0: skip")
    ap.add_argument("--no-throughput", action="store_true", help="skip the probe/floor runs")
    ap.add_argument("--memory", action="store_true", help="also measure peak RSS on long lists")
    ap.add_argument("--memory-urls", default="10000,100000", help="list sizes for --memory")
    ap.add_argument("--memory-rtt-ms", type=float, default=10.0,
                    help="RTT for --memory (lower than --rtt-ms to keep 100k URLs bounded in time)")
    ap.add_argument("--memory-concurrency", type=int, default=TARGET_CONCURRENCY,
                    help="concurrency of the --memory runs (default: the targets' C)")
    ap.add_argument("--help-runs", type=int, default=7, help="runs of `probe --help` (0: skip)")
    ap.add_argument("--profile", action="store_true",
                    help="one more probe run per concurrency under pyinstrument; its summary goes "
                    "to the report (the measured figures come from runs without the profiler)")
    ap.add_argument("--pyspy", action="store_true",
                    help="like --profile, with py-spy (every thread, on-CPU samples, native "
                    "frames): the per-stage account of CPU per URL (bench/profile.py)")
    ap.add_argument("--profile-helper", type=Path, metavar="SESSION",
                    help="run the control helper under pyinstrument for the whole benchmark and "
                    "write its session here (slows the helper: the figures of that run are for "
                    "finding its costs, not for the targets)")
    ap.add_argument("--probe-arg", action="append", default=[], metavar="ARG",
                    help="extra argument for `probe run` (repeatable), e.g. --probe-arg=--late-window=0")
    ap.add_argument("--probe-tree", type=Path, metavar="DIR",
                    help="measure the probe package in DIR (e.g. `git archive REV probe` of an "
                    "older version) instead of this checkout's, against the same floor and lab")
    ap.add_argument("--nginx-workers", type=int, default=1)
    ap.add_argument("--helper-priority", choices=("idle", "normal"), default="idle",
                    help="CPU priority of the probes' control helper, which shares the client's "
                    "cores here (deployed, it is another machine): idle (SCHED_IDLE, default) or "
                    "normal")
    ap.add_argument("--timeout", type=float, default=900.0, help="kill a client after this many s")
    ap.add_argument("--out", type=Path, help="JSON output (default bench/out/throughput-<time>.json)")
    args = ap.parse_args(argv)
    if os.geteuid() != 0:
        ap.error("needs root (network namespaces, iptables, NFQUEUE); run with sudo")
    if args.issue16 or args.issue28:
        args.cases = args.cases or "control@64,none@128,none@256"
        args.helper_load = True
        args.memory = True
        args.latest_rows = args.latest_rows or 1_000_000
    cases = parse_cases(args.cases) if args.cases else [
        (not args.no_control, int(x)) for x in args.concurrency.split(",") if x.strip()
    ]
    concurrencies = [c for _, c in cases]
    wants_helper = any(ctl for ctl, _ in cases) or args.helper_load or (
        args.memory and not args.no_control
    )
    PROBE_EXTRA_ARGS[:] = args.probe_arg
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    out = args.out or OUT / f"throughput-{stamp}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    # Short per-step timeouts: every URL works here, and a stuck one must not hold a slot long.
    timeouts = {"dns_timeout": 4.0, "tcp_timeout": 10.0, "tls_timeout": 10.0, "http_timeout": 15.0,
                "deadline": 60.0}  # fmt: skip
    mem_timeouts = {"dns_timeout": 2.0, "tcp_timeout": 3.0, "tls_timeout": 3.0, "http_timeout": 5.0,
                    "deadline": 15.0}  # fmt: skip
    result: dict[str, Any] = {
        "machine": {"cores": os.cpu_count(), "python": platform.python_version(),
                    "kernel": platform.release(), "nginx_workers": args.nginx_workers},
        "params": {"urls": args.urls, "concurrency": concurrencies, "rtt_ms": args.rtt_ms,
                   "control": not args.no_control, "timeouts": timeouts, "profile": args.profile,
                   "repeat": args.repeat, "probe_args": args.probe_arg,
                   "helper_priority": args.helper_priority,
                   "cases": [f"{'control' if ctl else 'none'}@{c}" for ctl, c in cases]},
        "started": stamp, "runs": [],
        "bytecode": compile_bytecode(),
    }  # fmt: skip
    workdir = Path(tempfile.mkdtemp(prefix="probe-bench-"))
    try:
        with _signals_raise(), lab(workdir, helper=wants_helper, nginx_workers=args.nginx_workers,
                                   helper_profile=args.profile_helper,
                                   helper_idle=args.helper_priority == "idle") as (net, services):
            if wants_helper and services.control_url is None:
                print("note: `probe helper serve` is not available: running without control",
                      flush=True)  # fmt: skip
            control = not args.no_control and services.control_url is not None
            result["params"]["control"] = control
            result["params"]["control_url"] = services.control_url
            result["params"]["event_loop"] = probe_event_loop(workdir)
            if args.probe_tree:
                result["params"]["probe_tree"] = str(args.probe_tree)
                result["params"]["probe_tree_lacks"] = use_probe_tree(args.probe_tree, workdir)
                result["params"]["event_loop"] = probe_event_loop(workdir)
            if not args.no_throughput:
                lst = write_url_list(workdir / f"urls-{args.urls}.csv", args.urls)
                for with_control, c in cases:
                    with_control = with_control and services.control_url is not None
                    print(f"C={c}: floor and probe over {args.urls} URLs, RTT {args.rtt_ms} ms, "
                          f"{'with' if with_control else 'without'} the control ...",
                          flush=True)  # fmt: skip
                    kind = "control" if with_control else "none"
                    suffix = ".folded" if args.pyspy else ".pyisession"
                    profile = (OUT / f"profile-{kind}-c{c}-{stamp}{suffix}"
                               if args.profile or args.pyspy else None)  # fmt: skip
                    if profile is not None:
                        profile.parent.mkdir(parents=True, exist_ok=True)  # --out elsewhere
                    row = run_pair(net, services, workdir, [lst], args.urls, c, args.rtt_ms,
                                   timeouts, args.timeout, profile, with_control,
                                   args.repeat)  # fmt: skip
                    row["control"] = with_control
                    result["runs"].append(row)
                    out.write_text(json.dumps(result, indent=2))
            if args.helper_load and services.control_url is not None:
                print(f"helper: {args.helper_probes} probes at C={args.helper_concurrency} at once "
                      f"over {args.urls} URLs each ...", flush=True)  # fmt: skip
                result["helper_load"] = helper_load(
                    net, services, workdir, probes=args.helper_probes,
                    concurrency=args.helper_concurrency, urls=args.urls, rtt_ms=args.rtt_ms,
                    timeouts=timeouts, timeout=args.timeout,
                    probe_alone=_probe_alone_cpu(result["runs"]),
                )  # fmt: skip
                out.write_text(json.dumps(result, indent=2))
            if args.memory:
                sizes = [int(x) for x in args.memory_urls.split(",") if x.strip()]
                result["memory_params"] = {"rtt_ms": args.memory_rtt_ms, "timeouts": mem_timeouts,
                                           "concurrency": args.memory_concurrency}  # fmt: skip
                result["memory"] = memory_runs(net, services, workdir, sizes, args.memory_concurrency,
                                               args.memory_rtt_ms, mem_timeouts, 4 * 3600,
                                               control)  # fmt: skip
        if args.help_runs:
            result["help"] = help_time(args.help_runs)
        result["fingerprints"] = fingerprint_scaling()
        if args.latest_rows:
            result["latest_query"] = latest_query_time(args.latest_rows)
        result["targets"] = check_targets(result)
        out.write_text(json.dumps(result, indent=2))
        print_table(result)
        print(f"wrote {out}")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
