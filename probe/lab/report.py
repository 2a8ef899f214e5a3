"""Tables for people (``probe lab list``, ``probe lab run``) and golden cases for the classifier.

Everything here is pure formatting of :class:`probe.lab.lab.ScenarioResult` and the scenario
records; nothing touches the network.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from probe.lab.scenarios import EndpointExpect, Expect, Scenario

__all__ = ["expected_text", "export_golden", "format_results", "format_scenarios"]

#: Exported bodies are cut to this many bytes (the golden files stay small; the hash and length
#: of the full captured body are kept in the record).
GOLDEN_BODY_CAP = 64 * 1024


def expected_text(e: Expect | EndpointExpect) -> str:
    """``verdict/stage@hop`` as expected."""
    return e.verdict + (f"/{e.stage}" if e.stage else "") + (f"@{e.hop}" if e.hop else "")


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def censor_lines(s: Scenario) -> list[str]:
    """How the censor reproduces the scenario's technique, one line per rule or setting."""
    c = s.censor
    lines = [f"resolver: {name} -> {action}" + (f" {', '.join(addrs)}" if addrs else "")
             + (f" (+{delay * 1000:.0f} ms)" if action == "delay" else "")
             for name, action, addrs, delay in c.resolver]  # fmt: skip
    lines += [f"iptables -A FORWARD {r}" for r in c.forward]
    lines += [f"iptables -t nat -A PREROUTING {r}" for r in c.nat]
    lines += [f"proxy: block page for Host {h}" for h in c.proxy_block]
    lines += [f"injector: forge A {name} -> {', '.join(addrs)}" for name, addrs in c.inject_dns]
    for port, hx, flags in c.inject_tcp:
        trigger = bytes.fromhex(hx).decode("ascii", "replace")
        lines.append(f"injector: {flags} to the client after a port-{port} segment with {trigger!r}")
    for port, hx, flags in c.inject_tcp_copy_ttl:
        trigger = bytes.fromhex(hx).decode("ascii", "replace")
        lines.append(f"injector (copies the server's TTL): {flags} after a port-{port} segment "
                     f"with {trigger!r}")  # fmt: skip
    lines += [f"server: iptables -A INPUT {r}" for r in c.server_input]
    lines += [f"censor program: {p} (probe/lab/{p}censor.py)" for p in c.programs]
    if s.latency_ms:
        lines.append(f"censor: every forwarded packet delayed {s.latency_ms:g} ms each way")
    if s.probe_args:
        lines.append(f"probe: {' '.join(s.probe_args)}")
    if s.control == "unreachable":
        lines.append("control: a helper URL where nothing listens")
    if not lines:
        lines.append("censor: nothing (benign)")
    if s.notes:
        lines.append(f"note: {s.notes}")
    return lines


def format_scenarios(scenarios: Iterable[Scenario], *, verbose: bool = False) -> Iterator[str]:
    """The scenario table: number, name, kind, technique, URLs and the verdicts expected.

    With ``verbose``, each scenario is followed by the censor's configuration for it.
    """
    yield f"{'#':>2}  {'scenario':<22} {'kind':<10} {'technique':<50} expected\n"
    for s in scenarios:
        for i, e in enumerate(s.expectations):
            head = (f"{s.number:>2}  {s.name:<22} {s.kind:<10} {_cut(s.technique, 50):<50}"
                    if i == 0 else " " * 88)  # fmt: skip
            yield f"{head} {expected_text(e):<18} {e.url}\n"
        if verbose:
            for line in censor_lines(s):
                yield f"{'':>6}{line}\n"


def format_results(results: Sequence[Any], *, verbose: bool = False) -> Iterator[str]:
    """The ``probe lab run`` table: expected against stored, and pass/fail, per target.

    ``PASS`` needs both the observation and the verdict checks; ``obs`` marks a target whose
    observations matched but whose verdict did not (for example while the classifier or the
    control helper is missing), ``FAIL`` one whose observations did not match.
    """
    yield (f"{'#':>2}  {'scenario':<22} {'technique':<34} {'expected':<18} {'got':<18} "
           f"{'result':<6} observed\n")  # fmt: skip
    passed = obs_only = failed = 0
    for r in results:
        s = r.scenario
        for i, (e, o) in enumerate(zip(s.expectations, r.outcomes, strict=True)):
            if o.ok:
                mark, passed = "PASS", passed + 1
            elif not o.observation_errors:
                mark, obs_only = "obs", obs_only + 1
            else:
                mark, failed = "FAIL", failed + 1
            head = f"{s.number:>2}  {s.name:<22} {_cut(s.technique, 34):<34}" if i == 0 else " " * 61
            yield f"{head} {expected_text(e):<18} {o.verdict:<18} {mark:<6} {_cut(o.observed, 70)}\n"
            for err in (*o.observation_errors, *o.verdict_errors):
                yield f"{'':>62}! {err}\n"
        if verbose and r.probe_exit != 0:
            yield f"{'':>62}probe exited {r.probe_exit}: {r.probe_stderr.strip()[-400:]}\n"
    total = passed + obs_only + failed
    yield (f"\n{passed}/{total} targets passed; {obs_only} with observations right but the verdict "
           f"wrong; {failed} with observations wrong\n")  # fmt: skip


def _golden_expected(e: Expect, stored: Any, scenario: Scenario) -> dict[str, Any]:
    stage = e.stage
    hop = e.hop
    if hop is None and stage is not None:
        hop = 0
    if stored is not None and stored.verdict == e.verdict and (e.stage is None or stored.stage == e.stage):
        stage, hop = stored.stage, stored.hop
    return {
        "rule": f"lab scenario {scenario.number} ({scenario.name}): {scenario.technique}",
        "verdict": e.verdict,
        "stage": stage,
        "hop": hop,
        "reasons_include": [e.reason] if e.reason else [],
    }


def export_golden(results: Iterable[Any], directory: Path) -> list[Path]:
    """Write each target's recorded observations as a golden case directory.

    Layout (the classifier's tests/unit/golden format): ``lab-<scenario>[-<n>]/`` with
    ``observations.json`` (the measurement without control), ``control.json`` (one control per
    hop, or null) and ``verdict.json`` (what the lab expects). Returns the directories written.
    """
    from probe.core.model import to_json

    written = []
    for r in results:
        s = r.scenario
        for i, (e, rec) in enumerate(zip(s.expectations, r.records, strict=True)):
            if rec is None or not isinstance(e, Expect):
                continue  # endpoints have no golden cases (they are not web measurements)
            m, v = rec
            controls = [to_json(h.control) if h.control is not None else None for h in m.hops]
            hops = []
            for h in m.hops:
                http = h.http
                if http is not None and len(http.body) > GOLDEN_BODY_CAP:
                    http = dataclasses.replace(http, body=http.body[:GOLDEN_BODY_CAP])
                hops.append(dataclasses.replace(h, control=None, http=http))
            m = dataclasses.replace(m, hops=tuple(hops))
            name = f"lab-{s.name}" + (f"-{i + 1}" if len(s.targets) > 1 else "")
            d = directory / name
            d.mkdir(parents=True, exist_ok=True)
            (d / "observations.json").write_text(json.dumps(to_json(m), indent=1, ensure_ascii=False))
            (d / "control.json").write_text(json.dumps(controls, indent=1, ensure_ascii=False))
            (d / "verdict.json").write_text(
                json.dumps(_golden_expected(e, v, s), indent=1, ensure_ascii=False) + "\n"
            )
            written.append(d)
    return written
