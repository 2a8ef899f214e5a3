"""The control helper serving several probes at once (issue 16): capacity and CPU per measurement.

A second ``probe helper serve`` with its documented defaults (``--max-in-flight 64``, docs/helper.md)
runs next to the benchmark's own; N probes (default 4 at C = 16: 64 URLs in flight, the helper's
capacity) each measure their own list through it at the same time, in the client namespace,
through the same delayed router. From the kernel and the helper's one-line-per-request log:

- measurements per second per core: the measurements it answered (``POST / 200``) divided by
  its CPU seconds (user + system, as one core-second is one second of one core);
- its CPU per measurement, against the probe's own CPU per URL without the control (the same
  kind of measurement: DNS, TCP, TLS, HTTP per URL) from the same benchmark run;
- 503s (busy) and the most measurements it had in flight; control failures the probes stored.
"""

from __future__ import annotations

import os
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from bench import probedb
from bench.children import child_env, probe_argv, run_child
from bench.services import Services, write_url_list
from bench.topology import BenchNet, delayed

__all__ = ["helper_load", "parse_helper_log"]

_PORT = 8081
_DEFAULT_MAX_IN_FLIGHT = 64  # `probe helper serve`'s default, the capacity docs/helper.md states
_LINE = re.compile(r"\bPOST /\S* (\d{3}) .*?\bin_flight=(\d+)")


def parse_helper_log(text: str) -> dict[str, int]:
    """Counts of the helper's answers by status, and the most measurements in flight seen."""
    out: dict[str, int] = {"max_in_flight_seen": 0}
    for m in _LINE.finditer(text):
        status, in_flight = m.group(1), int(m.group(2))
        out[status] = out.get(status, 0) + 1
        out["max_in_flight_seen"] = max(out["max_in_flight_seen"], in_flight)
    return out


def _cpu_s(pid: int) -> float:
    """user + system CPU seconds of ``pid`` and its waited-for children."""
    tick = os.sysconf("SC_CLK_TCK")
    with open(f"/proc/{pid}/stat") as f:
        rest = f.read().rsplit(")", 1)[1].split()
    return sum(int(x) for x in rest[11:15]) / tick


def helper_load(
    net: BenchNet, services: Services, workdir: Path, *, probes: int, concurrency: int, urls: int,
    rtt_ms: float, timeouts: dict[str, float], timeout: float, probe_alone: float | None,
) -> dict[str, Any]:  # fmt: skip
    """Run ``probes`` probe runs at once against a fresh helper; the figures (see module doc)."""
    assert services.ca is not None
    log = workdir / "helper-load.log"
    url = services.start_helper(_PORT, log.name)
    helper_pid = services.procs[-1].pid
    lists = [write_url_list(workdir / f"hl-{i}.csv", urls, offset=(i + 1) * 1_000_000)
             for i in range(probes)]  # fmt: skip
    dirs = [workdir / f"hl-{i}" for i in range(probes)]
    for d in dirs:
        d.mkdir(exist_ok=True)
    dbs = [d / "probe.db" for d in dirs]

    def one(i: int) -> Any:
        argv = probe_argv([lists[i]], net, services.ca, concurrency, dbs[i], url, timeouts)
        return run_child(argv, net.client, timeout=timeout, env=child_env(workdir), workdir=dirs[i])

    load = os.getloadavg()[0]
    delay: list[dict[str, Any]] = []
    cpu0 = _cpu_s(helper_pid)
    with delayed(net, rtt_ms, delay), ThreadPoolExecutor(probes) as pool:
        results = list(pool.map(one, range(probes)))
    helper_cpu = _cpu_s(helper_pid) - cpu0
    counts = parse_helper_log(log.read_text(errors="replace"))
    served = counts.get("200", 0)
    oks = [probedb.probe_ok(db)[0] or 0 for db in dbs]
    failures = [probedb.control_failures(db) for db in dbs]
    wall = max(r.wall_s for r in results)
    probe_cpu = sum(r.cpu_s for r in results)
    per_meas = 1000 * helper_cpu / served if served else None
    out: dict[str, Any] = {
        "probes": probes, "concurrency": concurrency, "urls_each": urls, "rtt_ms": rtt_ms,
        "max_in_flight": _DEFAULT_MAX_IN_FLIGHT, "loadavg_before": round(load, 2),
        "served_200": served, "busy_503": counts.get("503", 0),
        "other_statuses": {k: v for k, v in counts.items() if k not in ("200", "503", "max_in_flight_seen")},
        "max_in_flight_seen": counts["max_in_flight_seen"],
        "helper_cpu_s": round(helper_cpu, 2),
        "helper_cpu_ms_per_measurement": round(per_meas, 2) if per_meas else None,
        "measurements_per_cpu_s": round(served / helper_cpu, 1) if helper_cpu else None,
        "measurements_per_s_wall": round(served / wall, 1) if wall else None,
        "wall_s": round(wall, 2),
        "probes_cpu_ms_per_url": round(1000 * probe_cpu / (probes * urls), 2),
        "probe_alone_cpu_ms_per_url": probe_alone,
        "helper_vs_probe_cpu": round(per_meas / probe_alone, 2) if per_meas and probe_alone else None,
        "probes_ok": oks, "control_failures": failures,
        "returncodes": [r.returncode for r in results],
        "delay": delay,
    }  # fmt: skip
    out["valid"] = all(r.returncode == 0 and not r.timed_out for r in results) and all(
        ok >= 0.99 * urls for ok in oks
    )
    print(f"  helper: {served} measurements, {out['busy_503']} busy (503), at most "
          f"{out['max_in_flight_seen']} in flight, {out['helper_cpu_s']} CPU s = "
          f"{out['helper_cpu_ms_per_measurement']} ms per measurement "
          f"({out['measurements_per_cpu_s']} per CPU second), probes ok {oks}", flush=True)  # fmt: skip
    return out
