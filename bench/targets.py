"""Issue 28's targets (issue 16's, against the lean floor), judged on one run of bench.throughput.

Every throughput and CPU target is a ratio of the probe to the lean floor (bench/floor.py
``--lean``) measured side by side in the same run (alternating order), so that the machine's
background load affects both alike; a row without a lean floor (an older JSON) is judged
against the httpx floor, and says so.
Also here: the two checks that need no lab (block-page matching whatever the number of
fingerprints; the latest-verdict query over a large database).
"""

from __future__ import annotations

import sqlite3
import statistics
import time
from pathlib import Path
from typing import Any

__all__ = ["check_targets", "fingerprint_scaling", "helper_capacity", "latest_query_time"]

#: probe / floor throughput at C = 64 with the control helper in use (latency-bound).
CONTROL_THROUGHPUT = {64: 0.95}
#: A run that kept at least this share of the machine's cores busy was CPU-bound.
BUSY_CPU_BOUND = 0.9
#: probe / floor throughput without the control, CPU-bound.
NO_CONTROL_THROUGHPUT = {128: 0.85, 256: 0.8}
#: probe CPU per URL / the floor's, every case, with and without the control.
CPU_RATIO = 1.3
#: Peak RSS: the C = 256 run and both list sizes of --memory at most this; growth from the
#: short list to the long one at most RSS_GROWTH.
RSS_MB = 100.0
RSS_GROWTH = 0.05
RSS_CONCURRENCY = 256
#: The headline: URLs an hour at C = 256 without the control, on the machine's two cores.
URLS_PER_HOUR = 1_200_000
HEADLINE_CONCURRENCY = 256
HELP_S = 0.1
LATEST_S = 1.0
#: Block-page matching in one pass: 100 times more patterns (the packaged set against 1 % of
#: it) may cost at most a tenth of that growth, i.e. at most 10 times more; one substring
#: search per pattern grows with their number (about 100 times).
FINGERPRINT_SCALING = 0.1


def _target(value: Any, ok: bool | None, **more: Any) -> dict[str, Any]:
    return {"value": value, "pass": ok, **more}


def helper_capacity(row: dict[str, Any]) -> float | None:
    """Control measurements the helper served per CPU second during a row's median probe run.

    The probe asks the helper once per URL; the helper's CPU is what the benchmark's servers
    accounting gave its process tree (``python``) during that run.
    """
    if not row.get("control", True) or not row["probe"].get("valid"):
        return None
    cpu = row["probe"].get("server_cpu_s", {}).get("python")
    return round(row["urls"] / cpu, 1) if cpu else None


def check_targets(result: dict[str, Any]) -> dict[str, Any]:
    """Every target of issue 28 with its value and PASS (True), FAIL (False) or info (None)."""
    t: dict[str, Any] = {}
    for row in result.get("runs", []):
        c, r, ctl = row["concurrency"], row["ratios"], row.get("control", True)
        kind = "control" if ctl else "no control"
        floor = "lean" if "lean" in row else "floor"
        thr, cpu = r[f"probe_vs_{floor}_throughput"], r[f"probe_vs_{floor}_cpu"]
        if not row["probe"]["valid"] or not row[floor]["valid"]:
            t[f"C{c} {kind}: both runs valid"] = _target(
                f"probe rc {row['probe']['returncode']} ok {row['probe']['ok']}, "
                f"{floor} rc {row[floor]['returncode']} ok {row[floor]['ok']}", False)
            continue
        goal = (CONTROL_THROUGHPUT if ctl else NO_CONTROL_THROUGHPUT).get(c)
        name = f"C{c} {kind}: throughput probe/{floor}" + (f" >= {goal}" if goal else "")
        helper_cpu = row["probe"].get("server_cpu_s", {}).get("python") if ctl else None
        extra = {"helper_cpu_ms_per_url": round(1000 * helper_cpu / row["urls"], 2)} if helper_cpu else {}
        busy = row["probe"].get("machine_busy")
        if busy is not None:
            extra["machine_busy"] = busy
            if ctl and busy >= BUSY_CPU_BOUND:
                # The latency-bound premise of the control target: the machine had no core to
                # spare while the probe ran, so its pace was set by CPU, not by round trips.
                extra["note"] = (f"CPU-bound: probe, helper and servers kept {busy:.0%} of the "
                                 "cores busy")
        if r.get(f"probe_vs_{floor}_measuring") is not None:
            extra["measuring_time_only"] = r[f"probe_vs_{floor}_measuring"]  # info: see run_pair
        t[name] = _target(thr, thr >= goal if goal and thr is not None else None, **extra)
        t[f"C{c} {kind}: CPU/URL probe/{floor} <= {CPU_RATIO}"] = _target(
            cpu, cpu <= CPU_RATIO if cpu is not None else None,
            probe_ms=row["probe"]["cpu_ms_per_url"], floor_ms=row[floor]["cpu_ms_per_url"])
        if not ctl and c == HEADLINE_CONCURRENCY:
            per_hour = round(row["probe"]["urls_per_s"] * 3600)
            t[f"C{c} {kind}: URLs an hour >= {URLS_PER_HOUR:,}"] = _target(
                f"{per_hour:,} ({thr} x the {floor} floor)", per_hour >= URLS_PER_HOUR)
        if c == RSS_CONCURRENCY:
            rss = row["probe"]["peak_rss_mb"]
            t[f"C{c} {kind}: peak RSS <= {RSS_MB:g} MB"] = _target(rss, rss <= RSS_MB)
        cap = helper_capacity(row)
        if cap is not None:
            t[f"C{c} {kind}: control helper measurements per CPU second"] = _target(
                cap, None, note="info: it must not fall from one version to the next")
    mem = result.get("memory") or []
    if len(mem) >= 2:
        lo, hi = mem[0]["peak_rss_mb"], mem[-1]["peak_rss_mb"]
        growth = (hi - lo) / lo if lo else None
        ok = (growth is not None and growth <= RSS_GROWTH and max(lo, hi) <= RSS_MB
              and all(m["valid"] for m in mem))  # fmt: skip
        t[f"peak RSS {mem[0]['urls']} -> {mem[-1]['urls']} URLs: growth <= "
          f"{RSS_GROWTH:.0%}, both <= {RSS_MB:g} MB"] = _target(
            f"{lo} -> {hi} MB ({growth:+.1%})" if growth is not None else f"{lo} -> {hi} MB", ok)
    hl = result.get("helper_load")
    if hl:
        t["helper: measurements/s per core serving "
          f"{hl['probes']} probes"] = _target(hl.get("measurements_per_cpu_s"), None)
        t["helper: CPU per measurement / probe's own (no control)"] = _target(
            hl.get("helper_vs_probe_cpu"), None, helper_ms=hl.get("helper_cpu_ms_per_measurement"),
            probe_ms=hl.get("probe_alone_cpu_ms_per_url"))
        t[f"helper: no 503 at {hl['probes']} x C={hl['concurrency']} (capacity "
          f"{hl['max_in_flight']})"] = _target(
            hl.get("busy_503"), hl.get("busy_503") == 0 and hl.get("valid", False))
    fp = result.get("fingerprints")
    if fp and fp.get("ratio") is not None:
        limit = round(FINGERPRINT_SCALING * fp["all"] / fp["few"], 1)
        t[f"block pages: {fp['all']} fingerprints cost <= {limit} x {fp['few']} (one pass)"] = (
            _target(fp["ratio"], fp["ratio"] <= limit, all_us=fp["all_us"], few_us=fp["few_us"],
                    one_search_per_pattern_us=fp.get("per_pattern_us"))
        )  # fmt: skip
    if result.get("help"):
        v = result["help"]["median_s"]
        t[f"probe --help <= {HELP_S} s"] = _target(v, v <= HELP_S)
    lq = result.get("latest_query")
    if lq and lq.get("median_s") is not None:
        t[f"latest-verdict query over {lq['rows']:,} rows <= {LATEST_S:g} s"] = _target(
            lq["median_s"], lq["median_s"] <= LATEST_S)
    return t


def fingerprint_scaling(body_kib: int = 64, runs: int = 50) -> dict[str, Any]:
    """CPU per body of block-page matching with every packaged fingerprint against 1 % of them.

    One pass over the body (an automaton) costs about the same whatever the number of
    patterns; one search per pattern would cost ~100 times more.
    """
    from probe.inputs.fingerprints import Fingerprints, default_fingerprints

    full = default_fingerprints()
    few = Fingerprints(full.all[:: max(1, len(full.all) // max(1, len(full.all) // 100))])
    # A page that matches nothing (the common case): every pattern must be ruled out.
    body = (b"<p>Lorem ipsum dolor sit amet, consectetur adipiscing elit.</p>\n" * 2048)[
        : body_kib * 1024
    ]
    headers = [("content-type", "text/html; charset=utf-8")]

    def per_body(fps: Fingerprints) -> float:
        fps.match_response(body, headers)  # builds the automaton
        t0 = time.process_time()
        for _ in range(runs):
            fps.match_response(body, headers)
        return (time.process_time() - t0) / runs * 1e6

    all_us, few_us = per_body(full), per_body(few)
    # What one pass replaced: one substring search per body pattern.
    patterns = [fp.pattern.encode() for fp in full.all if fp.location == "body"]
    t0 = time.process_time()
    for _ in range(max(1, runs // 10)):
        for pat in patterns:
            body.find(pat)
    naive_us = (time.process_time() - t0) / max(1, runs // 10) * 1e6
    return {"all": len(full), "few": len(few), "body_kib": body_kib, "all_us": round(all_us, 1),
            "few_us": round(few_us, 1), "ratio": round(all_us / few_us, 2) if few_us else None,
            "per_pattern_us": round(naive_us, 1)}  # fmt: skip


def latest_query_time(rows: int, repeat: int = 3) -> dict[str, Any]:
    """Median wall time of reading every row of ``latest_verdicts`` from a database of ``rows``
    measurements (10 vantage points; bench/bench_store.py's synthetic data, built once and kept
    in bench/out), each on a fresh connection."""
    from bench.bench_store import OUT, generate

    path = OUT / f"store-{rows}.db"
    if not path.exists():
        OUT.mkdir(parents=True, exist_ok=True)
        print(f"building {path} ({rows:,} measurements) ...", flush=True)
        generate(path, rows, 10, 10_000, 1500)  # bench_store.py's defaults
    times, n = [], 0
    for _ in range(repeat):
        t0 = time.perf_counter()
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            n = len(con.execute("SELECT * FROM latest_verdicts").fetchall())
        finally:
            con.close()
        times.append(time.perf_counter() - t0)
    return {"rows": rows, "db": str(Path(path)), "latest_rows": n,
            "median_s": round(statistics.median(times), 3),
            "runs_s": [round(x, 3) for x in times]}  # fmt: skip
