"""The lab for people: the scenario table by technique group (``probe lab list``), the judges'
vocabulary and what reproduces it (``probe lab list --reasons``), the results table (``probe lab
run``), what is switched on (``probe lab censor``) and how to use a lab that is up (``probe lab
up``).

Pure formatting of the scenario records, :class:`probe.lab.lab.ScenarioResult` and
:class:`probe.lab.lab.Lab`; nothing touches the network.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING

from probe.lab import topology
from probe.lab.catalogue import GROUPS, Term
from probe.lab.scenarios import EndpointExpect, Expect, Expectation, Scenario
from probe.present.terminal import clean
from probe.present.text import cut, cut_middle, wrap

if TYPE_CHECKING:  # `probe lab list` reads only the scenarios: it must not import the lab
    from probe.lab.combine import Conflict
    from probe.lab.lab import Lab, ScenarioResult

__all__ = ["censor_lines", "describe_lab", "expected_text", "format_conflicts", "format_labs",
           "format_results", "format_scenarios", "format_switched", "format_terms"]


def expected_text(e: Expectation) -> str:
    """``verdict/stage@hop`` as expected, then each protocol test's (``quic:blocked``); a
    trace's conclusion (``censor@4 in-path drop``); outage states (``outage:isolated``)."""
    if not isinstance(e, Expect | EndpointExpect):
        return e.verdict
    protocols = e.protocols if isinstance(e, Expect) else ()
    suites = dict.fromkeys(f" {suite}:{verdict}" for suite, verdict, _ in protocols)
    return (e.verdict + (f"/{e.stage}" if e.stage else "") + (f"@{e.hop}" if e.hop else "")
            + "".join(suites))


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
    lines += [f"QUIC censor: decrypt the client's Initial, block the flow 120 s when the SNI is {n}"
              for n in c.quic_sni]
    lines += [f"QUIC censor: drop the client's 1-RTT packets to {ip} (the handshake passes)"
              for ip in c.quic_drop_data]
    lines += [f"censor program: {p} (probe/lab/{p}censor.py)" for p in c.programs]
    lines += [f"censor: iptables -A INPUT {r}" for r in c.censor_input]
    lines += [f"link to the control helper: iptables -A INPUT {r}" for r in c.helper_input]
    if s.latency_ms:
        lines.append(f"censor: every forwarded packet delayed {s.latency_ms:g} ms each way")
    if s.bandwidth:
        lines.append(f"censor: forwarding capped at {s.bandwidth} (tbf)")
    if s.probe_args:
        lines.append(f"probe: {' '.join(s.probe_args)}")
    if s.control == "unreachable":
        lines.append("control: a helper URL where nothing listens")
    if not lines:
        lines.append("censor: nothing (benign)")
    if s.notes:
        lines.append(f"note: {s.notes}")
    return lines


def format_scenarios(scenarios: Iterable[Scenario], *, verbose: bool = False, width: int = 80,
                     terms: Sequence[Term] = ()) -> Iterator[str]:
    """The scenarios in lines of at most ``width`` columns, group by group: number, name, kind
    and technique, each URL with the verdict expected for it, and a censorship scenario's twin.

    With ``verbose``, each scenario is followed by the censor's configuration for it. With
    ``terms`` (:func:`probe.lab.catalogue.terms`), a closing line counts the judges' vocabulary
    the scenarios reproduce.
    """
    yield f"{'#':>2}  scenario (kind): technique\n      {'expected':<18}  URL\n"
    group = ""
    for s in scenarios:
        if s.group != group:
            group = s.group
            yield "\n"
            yield from (line + "\n" for line in wrap(f"{group}: {GROUPS.get(group, '')}", width,
                                                     "== ", "   "))
        yield "\n"
        yield from (line + "\n" for line in wrap(f"{s.name} ({s.kind}): {s.technique}", width,
                                                 f"{s.number:>2}  ", "      "))
        for e in s.expectations:
            yield f"      {expected_text(e):<18}  {cut_middle(e.url, width - 26)}\n"
        if s.twin:
            yield f"      {'twin (benign):':<18}  {s.twin}\n"
        if verbose:
            for line in censor_lines(s):
                yield from (part + "\n" for part in wrap(clean(line), width, "        ", "          "))
    if terms:
        shown = sum(1 for t in terms if t.scenarios)
        yield "\n" + "\n".join(wrap(
            f"The judges name {len(terms)} verdicts, reasons, trace conclusions and outage states; "
            f"these scenarios reproduce {shown}, the others need conditions the lab cannot make "
            "(probe lab list --reasons says which and why).", width)) + "\n"


def format_terms(terms: Sequence[Term], *, width: int = 80) -> Iterator[str]:
    """The judges' vocabulary, kind by kind: each term with the scenarios that reproduce it, or
    why none can, in lines of at most ``width`` columns."""
    kind = ""
    for t in terms:
        if t.kind != kind:
            kind = t.kind
            yield ("" if t is terms[0] else "\n") + {"verdict": "Verdicts", "reason": "Reasons",
                                                      "trace": "What a trace says the censor does",
                                                      "outage": "Outage states"}.get(kind, kind) + "\n"
        said = (", ".join(t.scenarios) if t.scenarios
                else f"not in the lab: {t.why_not or '(no reason given)'}")  # fmt: skip
        yield from (line + "\n" for line in wrap(f"{t.code}: {said}", width, "  ", "      "))
    shown = sum(1 for t in terms if t.scenarios)
    yield f"\n{shown} of {len(terms)} reproduced by a scenario\n"


def format_switched(lab: Lab, on: Sequence[Scenario], *, width: int = 80) -> Iterator[str]:
    """What `probe lab censor` switched on in ``lab``: each scenario with its censor's rules,
    then how to measure what it censors from the client namespace."""
    if not on:
        yield f"lab {clean(lab.topo.prefix)}: no technique is switched on (uncensored)\n"
        return
    yield f"lab {clean(lab.topo.prefix)}: switched on: {', '.join(s.name for s in on)}\n"
    for s in on:
        yield "\n"
        yield from (line + "\n" for line in wrap(f"{s.name} ({s.kind}): {s.technique}", width,
                                                 f"{s.number:>2}  ", "      "))
        for line in censor_lines(s):
            yield from (part + "\n" for part in wrap(clean(line), width, "      ", "        "))
        for e in s.expectations:
            yield f"      {'expect ' + expected_text(e):<25}  {cut_middle(e.url, width - 33)}\n"
    yield "\n"
    yield from (line + "\n" for line in wrap(
        f"Measure from the client namespace (ip netns exec {lab.topo.client} probe run --url URL "
        f"--cafile {lab.cafile} --control {lab.control_url} ...; `probe lab up` printed the "
        "whole line), with each scenario's probe options; `probe lab censor --off` switches "
        "everything off.", width))


def format_conflicts(found: Sequence[Conflict], *, width: int = 80) -> Iterator[str]:
    """Why scenarios cannot be switched on together, one paragraph per pair."""
    for c in found:
        yield from (line + "\n" for line in wrap(f"{c.first} and {c.second} cannot be combined: "
                                                 f"{clean(c.why)}", width, "", "  "))


def format_results(results: Sequence[ScenarioResult], *, verbose: bool = False,
                   width: int = 80) -> Iterator[str]:
    """The ``probe lab run`` table in lines of at most ``width`` columns: expected against
    stored, and pass/fail, per target; what was observed under it.

    ``PASS`` needs both the observation and the verdict checks; ``obs`` marks a target whose
    observations matched but whose verdict did not (for example while the classifier or the
    control helper is missing), ``FAIL`` one whose observations did not match.
    """
    # 24 + 2 + 22 + 2 + 22 + 2 + "result": 80 columns; "inconclusive/wireguard" and a trace's
    # "censor@4 in-path drop" fit.
    yield f"{'#':>2}  {'scenario':<20}  {'expected':<22}  {'got':<22}  result\n"
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
            head = f"{s.number:>2}  {cut(s.name, 20):<20}" if i == 0 else " " * 24
            yield f"{head}  {cut(expected_text(e), 22):<22}  {cut(clean(o.verdict), 22):<22}  {mark}\n"
            yield f"      {cut(clean(o.observed), width - 6)}\n"
            for err in (*o.observation_errors, *o.verdict_errors):
                yield from (line + "\n" for line in wrap(clean(err), width, "      ! ", "        "))
        if verbose and r.probe_exit != 0:
            said = clean(r.probe_stderr.strip()[-400:])
            yield from (line + "\n" for line in wrap(f"probe exited {r.probe_exit}: {said}", width,
                                                     "      ", "        "))
    total = passed + obs_only + failed
    yield "\n" + "\n".join(wrap(
        f"{passed}/{total} targets passed; {obs_only} with observations right but the verdict "
        f"wrong; {failed} with observations wrong", width)) + "\n"


def describe_lab(lab: Lab) -> str:
    """How to use a lab that is up (``probe lab up``), for people."""
    t = lab.topo
    helper = (f"control helper: {lab.control_url} (in {t.uncensored})" if lab.helper
              else f"control helper: not running ({lab.helper_error or 'disabled'})")  # fmt: skip
    return (
        f"lab {t.prefix} is up\n"
        f"  client namespace:  {t.client} (resolver {topology.CENSOR_IN}, the censor's)\n"
        f"  censor namespace:  {t.censor}\n"
        f"  server namespace:  {t.server} (authoritative DNS {topology.AUTH_DNS})\n"
        f"  {helper}\n"
        f"  lab CA:            {lab.cafile}\n"
        f"  state and logs:    {lab.state_dir}\n\n"
        "Measure a lab site from the client namespace (the only place lab traffic may start):\n"
        f"  ip netns exec {t.client} probe run --url https://clean.lab.example/ \\\n"
        f"      --cafile {lab.cafile} --control {lab.control_url} \\\n"
        f"      --accept-risks --vantage lab --db /tmp/lab.db\n"
        "The lab starts uncensored: `probe lab censor SCENARIO...` switches techniques on\n"
        "(`probe lab list` names them, `--off` switches them off); `probe lab run` runs\n"
        "scenarios with their checks.\n"
        "Tear it down with `probe lab down`."
    )


def format_labs(found: Sequence[topology.LabInfo], me: int) -> Iterator[str]:
    """One line per lab of this machine (``probe lab status``): prefix, whether it is up, and
    whose it is (``me``: the user asking)."""
    if not found:
        yield "no lab is up"
    for info in found:
        if info.persistent:
            owner = "yours" if info.mine(me) else f"uid {info.uid}"
            kind = f"probe lab up, {owner}"
        else:
            kind = f"process {info.owner_pid}{'' if info.owner_alive else ' (gone: stale)'}"
        yield f"{clean(info.prefix)}  {'up' if info.live else 'not running'}  ({kind})"
