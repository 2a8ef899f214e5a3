"""The lab as one object: build it, start its services, run scenarios, tear it down.

::

    from probe.lab.lab import Lab
    from probe.lab.scenarios import SCENARIOS

    with Lab.create() as lab:                       # about 1-2 s
        for result in lab.run_scenarios(SCENARIOS, workdir):
            print(result.scenario.name, result.ok)

Services run as ``ip netns exec NS python -m probe.lab.<service>``; each prints ``ready`` on
stdout once it listens. The probe runs as ``ip netns exec CLIENT python -m probe.lab.client run
...`` (which refuses to run in the root namespace), and its results are read back from its
SQLite database with :class:`probe.store.Store`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from probe.inputs.testlists import parse_url
from probe.lab import censor as _censor
from probe.lab import fetcensor, sites, topology, tunnels
from probe.lab import messaging as lab_messaging
from probe.lab.certs import make_certs
from probe.lab.checks import Outcome, check, check_endpoint, check_outages, check_trace
from probe.lab.combine import Conflict, combine, conflicts
from probe.lab.latency import Delay, remove_delay_rule
from probe.lab.safety import namespace_id
from probe.lab.scenarios import Censor, Scenario, by_name
from probe.lab.topology import LabError, Topology
from probe.research.outages import country_lookup, outages, run_stats
from probe.store import Store
from probe.store.circumvention import endpoint_measurements_at
from probe.store.protocols import protocol_verdicts_of

__all__ = [
    "PROBE_TIMEOUTS",
    "CensorConflict",
    "Lab",
    "LabError",
    "ScenarioResult",
    "is_root",
    "missing_tools",
    "read_endpoints",
]

#: Step timeouts the lab gives the probe: short, since the lab's network answers in
#: milliseconds, yet longer than the slow site's 3 s.
PROBE_TIMEOUTS: tuple[str, ...] = (
    "--dns-timeout", "2", "--tcp-timeout", "2", "--tls-timeout", "2", "--http-timeout", "6",
    "--deadline", "30", "--retry-pause", "0.2",
)  # fmt: skip
#: A control URL on the helper's link where nothing listens (the "helper unreachable" case).
UNREACHABLE_CONTROL = f"http://{topology.HELPER}:9/"
_TOOLS = ("ip", "iptables", "iptables-restore", "conntrack", "ethtool", "tc", "sysctl", "ss")
#: The censor's programs (``Censor.programs``): the module each runs and its arguments.
_PROGRAMS = {"fet": ("probe.lab.fetcensor", "--queue", str(fetcensor.QUEUE), "--residual", "60")}
#: The interfaces the latency knob delays, one NFQUEUE each from queue 0 (both directions).
_DELAYED = ("r1", "r0")


class CensorConflict(LabError):
    """Scenarios that cannot be switched on together (:func:`probe.lab.combine.conflicts`)."""

    def __init__(self, found: Sequence[Conflict]) -> None:
        self.conflicts = tuple(found)
        super().__init__("; ".join(f"{c.first} and {c.second}: {c.why}" for c in found))


def is_root() -> bool:
    """True when running as root (the lab needs it)."""
    return os.geteuid() == 0


def missing_tools() -> list[str]:
    """The command-line tools the lab needs that are not installed."""
    missing = [t for t in _TOOLS if shutil.which(t) is None]
    try:  # are the lab's Python packages installed? (imported here to find out)
        import aioquic  # noqa: F401
        import netfilterqueue  # noqa: F401
        import scapy  # noqa: F401
        import trustme  # noqa: F401
    except ImportError as exc:
        missing.append(f"python:{exc.name}")
    return missing


def _fresh(workdir: Path, name: str) -> Path:
    """A database path in ``workdir`` that no file holds yet (``NAME.db``, ``NAME.2.db``, ...):
    a scenario never writes into, or deletes, a database of an earlier run kept there."""
    for k in range(1, 10_000):
        path = workdir / (f"{name}.db" if k == 1 else f"{name}.{k}.db")
        if not any(Path(f"{path}{s}").exists() for s in ("", "-wal", "-shm", "-journal")):
            return path
    raise LabError(f"{workdir}: {name}.db and 9,998 numbered copies exist: clean it up")


def _read_db(db: Path) -> dict[str, tuple[Any, Any]]:
    """Final (measurement, verdict) per measured URL, from a probe database."""
    stored: dict[str, tuple[Any, Any]] = {}
    if not db.exists():
        return stored
    with Store.open(db, create=False) as store:
        final = {r["measurement_id"] for r in store.results(run=None)}
        for mid, m, v in store.iter_judged():
            if mid in final:
                if m.protocols:  # --quic, --ech: their verdicts, stored beside the web one
                    v = dataclasses.replace(v, protocols=protocol_verdicts_of(store, mid))
                stored[m.target.url] = (m, v)
    return stored


def read_endpoints(db: Path) -> dict[str, dict[str, Any]]:
    """The stored endpoint results by name (with the observation), from a probe database
    written by `probe circumvention`."""
    if not db.exists():
        return {}
    with Store.open(db, create=False) as store:
        return {d["name"]: d for d in endpoint_measurements_at(store, None, None)}


def read_outages(db: Path, geo: Path, country: str) -> tuple[str | None, list[dict[str, Any]]]:
    """The status of the last run in a probe database and the outage intervals the outage rules
    find in it (`probe outages --geo GEO --country COUNTRY`), from a probe database."""
    if not db.exists():
        return None, []
    with Store.open(db, create=False) as store:
        stats = run_stats(store, country_of=country_lookup(str(geo)), country=country)
        return (stats[-1].status if stats else None), [o.to_dict() for o in outages(stats)]


def _pid_runs(pid: int, module: str) -> bool:
    """Whether process ``pid`` is still the lab program ``module`` (not a reused pid)."""
    try:
        return module.encode() in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def _stop_pid(pid: int, module: str, timeout: float = 5.0) -> None:
    """Stop the lab program ``module`` running as ``pid`` (started by another process)."""
    if not _pid_runs(pid, module):
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while _pid_runs(pid, module) and time.monotonic() < deadline:
        time.sleep(0.02)
    if _pid_runs(pid, module):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


@dataclass(frozen=True)
class ScenarioResult:
    """One scenario run: the checks per target, and what the probe stored."""

    scenario: Scenario
    outcomes: tuple[Outcome, ...]
    records: tuple[tuple[Any, Any] | None, ...]  # (Measurement, Verdict) per target, or None
    probe_exit: int
    probe_stderr: str
    duration: float

    @property
    def observations_ok(self) -> bool:
        return all(not o.observation_errors for o in self.outcomes)

    @property
    def verdicts_ok(self) -> bool:
        return all(not o.verdict_errors for o in self.outcomes)

    @property
    def ok(self) -> bool:
        return self.observations_ok and self.verdicts_ok


@dataclass
class Lab:
    """A running lab (see the module docstring). ``Lab.create()`` builds one; ``down()`` ends it."""

    topo: Topology
    persistent: bool = False
    helper: bool = True
    services: dict[str, int] = field(default_factory=dict)
    helper_error: str = ""
    env: dict[str, str] | None = None  # environment of every lab process (None: ours)
    uid: int = field(default_factory=topology.creator_uid)  # the user it belongs to
    latency_ms: float = 0.0  # the lab's own knobs (`probe lab up --latency --bandwidth`)
    bandwidth: str | None = None
    _procs: list[subprocess.Popen[bytes]] = field(default_factory=list, repr=False)
    _delay: Any = field(default=None, repr=False)
    _censor_procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict, repr=False)

    # --- life cycle -----------------------------------------------------------------------------

    @classmethod
    def create(cls, *, helper: bool = True, persistent: bool = False, latency_ms: float = 0.0,
               bandwidth: str | None = None, env: dict[str, str] | None = None,
               prefix: str | None = None) -> Lab:  # fmt: skip
        """Build a new lab and start its services (cleans stale labs first).

        ``prefix`` names its namespaces and state (default: a fresh ``pl<6 hex>``); a prefix
        already in use is refused, whoever uses it. ``env`` is the environment of the lab's
        processes (services and probe), by default this process's.
        """
        if not is_root():
            raise LabError("the lab needs root (network namespaces, iptables)")
        missing = missing_tools()
        if missing:
            raise LabError(f"the lab needs these tools: {', '.join(missing)}")
        topology.cleanup_stale()
        chosen = topology.check_prefix(prefix) if prefix is not None else topology.new_prefix()
        addresses = sites.server_addresses() + tunnels.TOOL_ADDRESSES + lab_messaging.TOOL_ADDRESSES
        lab = cls(Topology(chosen, addresses), persistent, helper,
                  env=dict(env) if env is not None else None, latency_ms=latency_ms,
                  bandwidth=bandwidth or None)  # fmt: skip
        lab._claim()  # raises, touching nothing, if the prefix is taken
        try:
            lab._up(latency_ms, bandwidth)
        except BaseException:
            lab.down()
            raise
        return lab

    @classmethod
    def attach(cls, prefix: str | None = None) -> Lab:
        """A persistent lab (``probe lab up``) of this user: the one named ``prefix``, or the
        only one. Another user's lab, and a lab that belongs to a running process (a test
        session, another ``probe lab run``), are never attached to: their owner resets and
        tears them down, and a second user of them would change their scenarios' outcomes."""
        me = topology.creator_uid()
        every = [i for i in topology.labs() if i.live]
        if prefix is not None:
            topology.check_prefix(prefix)
            info = next((i for i in every if i.prefix == prefix), None)
            if info is None:
                raise LabError(f"no lab {prefix} is up")
            if not info.persistent:
                raise LabError(f"lab {prefix} belongs to process {info.owner_pid} (a test or "
                               "`probe lab run`), not to `probe lab up`; leaving it alone")  # fmt: skip
            # A lab made before labs recorded their user (uid None) is taken when named.
            if info.uid is not None and not info.mine(me):
                raise LabError(f"lab {prefix} belongs to another user (uid {info.uid}); leaving it alone")
        else:
            mine = [i for i in every if i.mine(me)]
            if not mine:
                raise LabError("no lab of yours is up (start one with `probe lab up`)")
            if len(mine) > 1:
                names = ", ".join(i.prefix for i in mine)
                raise LabError(f"several labs of yours are up ({names}): choose one with --prefix")
            info = mine[0]
        state = info.state
        addresses = state.get("server_addresses", ())
        lab = cls(Topology(info.prefix, tuple(str(a) for a in addresses)
                           if isinstance(addresses, list) else ()),
                  info.persistent, bool(state.get("helper", False)))  # fmt: skip
        services = state.get("services", {})
        lab.services = {str(k): int(v) for k, v in services.items()} if isinstance(services, dict) else {}
        lab.helper_error = str(state.get("helper_error", ""))
        latency = state.get("latency_ms", 0.0)
        lab.latency_ms = float(latency) if isinstance(latency, int | float) else 0.0
        lab.bandwidth = str(state.get("bandwidth") or "") or None
        return lab

    def __enter__(self) -> Lab:
        return self

    def __exit__(self, *exc: object) -> None:
        self.down()

    @property
    def state_dir(self) -> Path:
        return self.topo.state_dir

    @property
    def cafile(self) -> str:
        """The lab CA: pass it to the probe and the helper with ``--cafile``."""
        return str(self.state_dir / "lab-ca.pem")

    @property
    def control_url(self) -> str:
        """The control helper's URL, reachable from the client namespace only."""
        return f"http://{topology.HELPER}:{topology.HELPER_PORT}/"

    def _save_state(self) -> None:
        info = {
            "prefix": self.topo.prefix,
            "owner": os.getpid(),
            "uid": self.uid,
            "persistent": self.persistent,
            "helper": self.helper,
            "helper_error": self.helper_error,
            "services": self.services,
            "server_addresses": list(self.topo.server_addresses),
            "created": time.time(),
            "latency_ms": self.latency_ms,
            "bandwidth": self.bandwidth,
        }
        topology.write_state(self.state_dir, info)

    def _state(self) -> dict[str, Any]:
        try:
            state = json.loads((self.state_dir / "state.json").read_text())
        except (OSError, ValueError):
            return {}
        return state if isinstance(state, dict) else {}

    def _update_state(self, **values: Any) -> None:
        """Change some keys of the lab's state file, keeping the others (its owner above all)."""
        state = self._state()
        state.update(values)
        topology.write_state(self.state_dir, state)

    def _claim(self) -> None:
        """Make the lab's state directory and state file, or refuse a prefix in use."""
        sd = self.state_dir
        with topology.state_lock():  # another process's clean-up must not see a state-less dir
            taken = [ns for ns in topology.list_namespaces() if ns in self.topo.namespaces]
            if sd.exists():
                taken.append(str(sd))
            if taken:
                raise LabError(f"lab prefix {self.topo.prefix} is in use ({', '.join(taken)})")
            sd.mkdir(parents=True)
            self._save_state()  # first, so that a crash from here on is cleaned up as stale

    def _up(self, latency_ms: float, bandwidth: str | None) -> None:
        sd = self.state_dir
        topology.build(self.topo)
        certs = make_certs(sd, [*(s.name for s in sites.SITES if s.ip), tunnels.RESOLVER_NAME])
        (sd / "zone.json").write_text(json.dumps(sites.zone(), indent=1))
        (sd / "web.json").write_text(json.dumps(sites.web_config(certs), indent=1))
        _censor.install_base(self.topo)
        _censor.apply(self.topo, sd, Censor())
        py = sys.executable
        t = self.topo
        specs = {
            "auth-dns": (t.server, [py, "-m", "probe.lab.dnsserver", "auth", "--listen",
                                    f"{topology.AUTH_DNS}:53", "--zone", str(sd / "zone.json")]),
            "web": (t.server, [py, "-m", "probe.lab.web", "--config", str(sd / "web.json")]),
            "isp-resolver": (t.censor, [py, "-m", "probe.lab.dnsserver", "resolver", "--listen",
                                        f"{topology.CENSOR_IN}:53", "--upstream",
                                        f"{topology.AUTH_DNS}:53", "--overrides",
                                        str(sd / _censor.CONFIG_FILES["resolver"])]),
            "proxy": (t.censor, [py, "-m", "probe.lab.proxy", "--http", "0.0.0.0:3129",
                                 "--tls", "0.0.0.0:3443", "--cert", certs["censor"][0],
                                 "--key", certs["censor"][1], "--config",
                                 str(sd / _censor.CONFIG_FILES["proxy"])]),
            "injector": (t.censor, [py, "-m", "probe.lab.injector", "--iface", "r0", "--config",
                                    str(sd / _censor.CONFIG_FILES["injector"])]),
            "stun": (t.server, [py, "-m", "probe.lab.stun", "--listen", sites.STUN]),
            "quic": (t.server, [py, "-m", "probe.lab.quicserver",
                                *sites.quic_listeners(*certs["valid"])]),
            "quic-censor": (t.censor, [py, "-m", "probe.lab.quiccensor", "--config",
                                       str(sd / _censor.CONFIG_FILES["quic"])]),
        }  # fmt: skip
        tools = {**tunnels.services(sd, certs), **lab_messaging.services()}
        _, reflector = tools.pop("reflector")
        specs.update({name: (t.server if role == "server" else t.censor, argv)
                      for name, (role, argv) in tools.items()})  # fmt: skip
        for name, (ns, argv) in specs.items():
            self._start(name, ns, argv)
        self._start("reflector", t.server, reflector)
        if self.helper:
            self._start_helper()
        for name in specs:
            self._wait_ready(name)
        if not self._listening("reflector", t.server, tunnels.REFLECTOR_PORT):
            log = (self.state_dir / "reflector.log").read_text(errors="replace")[-1500:]
            raise LabError(f"lab service reflector did not start: {log.strip() or 'no output'}")
        if self.helper:
            self._wait_helper()
        if latency_ms:
            self.set_latency(latency_ms)
        if bandwidth:
            _censor.set_bandwidth(t.censor, bandwidth)
        self._save_state()

    def _env(self) -> dict[str, str]:
        env = dict(os.environ if self.env is None else self.env)
        # The probe's consent file and config stay inside the lab, never the user's.
        env.setdefault("PROBE_CONFIG_DIR", str(self.state_dir / "config"))
        return env

    def _start(self, name: str, ns: str, argv: Sequence[str]) -> None:
        sd = self.state_dir
        with open(sd / f"{name}.out", "wb") as out, open(sd / f"{name}.log", "wb") as err:
            proc = subprocess.Popen(["ip", "netns", "exec", ns, *argv], stdout=out, stderr=err,
                                    stdin=subprocess.DEVNULL, start_new_session=True,
                                    env=self._env())  # fmt: skip
        self._procs.append(proc)
        self.services[name] = proc.pid

    def _wait_ready(self, name: str, timeout: float = 20.0) -> None:
        out = self.state_dir / f"{name}.out"
        proc = next(p for p in self._procs if p.pid == self.services[name])
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if b"ready" in out.read_bytes():
                return
            if proc.poll() is not None:
                break
            time.sleep(0.02)
        log = (self.state_dir / f"{name}.log").read_text(errors="replace")[-2000:]
        raise LabError(f"lab service {name} did not start: {log.strip() or 'no output'}")

    def _start_helper(self) -> None:
        argv = [sys.executable, "-m", "probe", "helper", "serve", "--listen",
                f"{topology.HELPER}:{topology.HELPER_PORT}", "--cafile", self.cafile,
                "--allow-private"]  # fmt: skip
        self._start("helper", self.topo.uncensored, argv)

    def _listening(self, name: str, ns: str, port: int, timeout: float = 20.0) -> bool:
        """Wait until service ``name`` listens on TCP ``port`` in ``ns``; False if it died or
        never did. Readiness without sending a packet from here: the namespace's socket table."""
        proc = next(p for p in self._procs if p.pid == self.services[name])
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if topology.ns_run(ns, ["ss", "-Hltn", f"sport = :{port}"], check=False).strip():
                return True
            if proc.poll() is not None:
                return False
            time.sleep(0.05)
        return False

    def _wait_helper(self, timeout: float = 20.0) -> None:
        if self._listening("helper", self.topo.uncensored, topology.HELPER_PORT, timeout):
            return
        log = (self.state_dir / "helper.log").read_text(errors="replace")[-1500:]
        self.helper = False
        self.helper_error = f"control helper did not start: {log.strip() or 'no output'}"

    def set_latency(self, delay_ms: float) -> None:
        """Delay every packet the censor forwards by ``delay_ms`` each way (NFQUEUE), 0 to stop.

        The delay programs' pids are kept in the lab's state, so that a later process (the
        next `probe lab censor`) can stop what an earlier one started.
        """
        if self._delay is not None:
            if delay_ms:
                self._delay.set_delay(delay_ms)
            else:
                self._delay.stop()
                self._delay = None
        else:
            recorded = self._state().get("delay_pids") or []
            for pid in recorded:
                _stop_pid(int(pid), "probe.lab.latency")
            if recorded:
                for queue, iface in enumerate(_DELAYED):
                    remove_delay_rule(self.topo.censor, iface, queue)
            if delay_ms:
                self._delay = Delay(self.topo.censor, _DELAYED, delay_ms).start()
        pids = [p.pid for p in self._delay._procs] if self._delay is not None else []
        self._update_state(delay_pids=pids, delay_ms=delay_ms)

    def set_bandwidth(self, rate: str | None) -> None:
        """Cap the censor's forwarding rate (tbf), e.g. ``"8mbit"``; None removes the cap."""
        _censor.set_bandwidth(self.topo.censor, rate)

    def down(self) -> None:
        """Stop the services and delete the namespaces and state (safe to call twice)."""
        self._programs(set())
        if self._delay is not None:
            try:
                self._delay.stop()
            except Exception:
                pass
            self._delay = None
        topology.destroy(self.topo)
        for p in self._procs:
            try:
                p.wait(timeout=2)
            except subprocess.TimeoutExpired:
                p.kill()
        self._procs.clear()

    # --- censor and probe -----------------------------------------------------------------------

    def apply(self, censor: Censor) -> None:
        """Configure the censor (``Censor()`` resets it; conntrack is flushed either way)."""
        self._programs(set(censor.programs))
        _censor.apply(self.topo, self.state_dir, censor)

    def _programs(self, wanted: set[str]) -> None:
        """Run exactly the censor programs ``wanted`` (their rules pass traffic when they stop).

        A program's pid is kept in the lab's state: one that a `probe lab censor` started is
        stopped by the next one, or by `probe lab down` with the lab's namespaces.
        """
        unknown = sorted(set(wanted) - set(_PROGRAMS))
        if unknown:
            raise LabError(f"no censor program {', '.join(unknown)}")
        running = {str(k): int(v) for k, v in (self._state().get("censor_programs") or {}).items()}
        for name in [n for n in running if n not in wanted]:
            proc = self._censor_procs.pop(name, None)
            if proc is not None:
                proc.terminate()
                try:
                    proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            else:
                _stop_pid(running[name], _PROGRAMS[name][0])
            del running[name]
        for name in sorted(set(wanted) - set(running)):
            module, *args = _PROGRAMS[name]
            argv = ["ip", "netns", "exec", self.topo.censor, sys.executable, "-m", module, *args]
            out = self.state_dir / f"censor-{name}.out"
            with open(out, "wb") as stdout, open(self.state_dir / f"censor-{name}.log", "ab") as log:
                # Its own session: it outlives a `probe lab censor` that started it.
                proc = subprocess.Popen(argv, stdout=stdout, stderr=log, stdin=subprocess.DEVNULL,
                                        env=self._env(), start_new_session=True)  # fmt: skip
            deadline = time.monotonic() + 20
            while b"ready" not in out.read_bytes() and proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.02)
            if b"ready" not in out.read_bytes():
                proc.kill()
                proc.wait()
                raise LabError(f"the censor program {name} did not start (NetfilterQueue?)")
            self._censor_procs[name] = proc
            running[name] = proc.pid
        if self.state_dir.exists():
            self._update_state(censor_programs=running)

    def reset(self) -> None:
        """Remove every censorship rule and flush conntrack."""
        self.apply(Censor())

    def client_argv(self, argv: Sequence[str]) -> list[str]:
        """The command line running ``probe ARGV`` in the client namespace (with the guard)."""
        ns_id = namespace_id(str(Path("/run/netns") / self.topo.client))
        if ns_id is None:
            raise LabError(f"the lab's client namespace {self.topo.client} does not exist")
        if ns_id == namespace_id():
            raise LabError("the client namespace is the namespace we run in: refusing")
        return ["ip", "netns", "exec", self.topo.client, sys.executable, "-m", "probe.lab.client",
                *argv]  # fmt: skip

    def probe(
        self,
        urls: Sequence[str],
        db: Path,
        *,
        control: str | None = None,
        stun: str | None = None,
        extra: Sequence[str] = (),
        timeout: float = 240.0,
    ) -> subprocess.CompletedProcess[str]:
        """Run ``probe run`` for ``urls`` in the client namespace into ``db``.

        ``control`` and ``stun`` replace the lab's helper and STUN server; ``control="none"``
        runs with no control.
        """
        helper = ["--no-control"] if control == "none" else ["--control", control or self.control_url]
        argv = ["run", "--db", str(db), "--vantage", "lab", "--cafile", self.cafile,
                *helper, "--accept-risks", "--no-progress",
                "--stun", stun or sites.STUN, "--whoami", sites.WHOAMI,  # the lab's identity services
                *PROBE_TIMEOUTS, *extra]  # fmt: skip
        for u in urls:
            argv += ["--url", u]
        return subprocess.run(self.client_argv(argv), capture_output=True, text=True,
                              timeout=timeout, env=self._env())  # fmt: skip

    def run_scenario(self, scenario: Scenario, workdir: Path) -> ScenarioResult:
        """Apply the scenario's censor, run the probe on its URLs, reset, and check the results.

        """
        if scenario.trace is not None:
            return self._run_trace_scenario(scenario, workdir)
        if scenario.outages is not None:
            return self._run_outage_scenario(scenario, workdir)
        if scenario.endpoints:
            return self._run_endpoint_scenario(scenario, workdir)
        workdir.mkdir(parents=True, exist_ok=True)
        control = UNREACHABLE_CONTROL if scenario.control == "unreachable" else None
        urls = [e.url for e in scenario.targets]
        t0 = time.monotonic()
        with self.under(scenario):
            db = _fresh(workdir, scenario.name)
            # An unreachable control makes `probe run` refuse to measure (so that cron
            # notices); this scenario is about what is provable without one.
            extra = [*scenario.probe_args, *(["--allow-no-control"] if control else [])]
            proc = self.probe(urls, db, control=control, extra=extra)
            stored = _read_db(db)
        duration = time.monotonic() - t0
        outcomes, records = [], []
        for e in scenario.targets:
            rec = stored.get(parse_url(e.url).url)
            records.append(rec)
            outcomes.append(check(e, *(rec or (None, None))))
        if proc.returncode != 0 and not stored:
            outcomes = [
                Outcome(o.url, (*o.observation_errors, f"probe exited {proc.returncode}"),
                        o.verdict_errors, o.observed, o.verdict)
                for o in outcomes
            ]
        return ScenarioResult(scenario, tuple(outcomes), tuple(records), proc.returncode,
                              proc.stderr[-4000:], duration)  # fmt: skip

    def _run_endpoint_scenario(self, scenario: Scenario, workdir: Path) -> ScenarioResult:
        """`probe circumvention` on the scenario's endpoints (and the lab reflector's), or
        `probe messaging` on the messaging apps', under its censor, then each endpoint's stored
        verdict checked."""
        workdir.mkdir(parents=True, exist_ok=True)
        lst = workdir / f"{scenario.name}.csv"
        lst.write_text(tunnels.endpoint_list(scenario))
        db = workdir / f"{scenario.name}.db"
        db.unlink(missing_ok=True)
        control = UNREACHABLE_CONTROL if scenario.control == "unreachable" else self.control_url
        if lab_messaging.is_messaging(scenario):
            argv = lab_messaging.messaging_argv(lst, db, control, self.cafile)
        else:
            argv = tunnels.circumvention_argv(scenario, lst, db, control, self.cafile)
        t0 = time.monotonic()
        with self.under(scenario):
            proc = subprocess.run(self.client_argv([*argv, *scenario.probe_args]), capture_output=True,
                                  text=True, timeout=240, env=self._env())  # fmt: skip
            stored = read_endpoints(db)
        outcomes = tuple(check_endpoint(e, stored.get(e.name)) for e in scenario.endpoints)
        if proc.returncode != 0:
            outcomes = tuple(Outcome(o.url, (*o.observation_errors, f"probe exited {proc.returncode}"),
                                     o.verdict_errors, o.observed, o.verdict) for o in outcomes)  # fmt: skip
        return ScenarioResult(scenario, outcomes, tuple(None for _ in outcomes), proc.returncode,
                              proc.stderr[-4000:], time.monotonic() - t0)  # fmt: skip

    def _run_trace_scenario(self, scenario: Scenario, workdir: Path) -> ScenarioResult:
        """`probe trace` of the scenario's URL under its censor (JSON into a database, and the
        text report too when the scenario reads it), then where it put the censor checked."""
        e = scenario.trace
        assert e is not None
        workdir.mkdir(parents=True, exist_ok=True)
        db = workdir / f"{scenario.name}.db"
        db.unlink(missing_ok=True)
        argv = ["trace", e.url, "--ip", e.ip, "--control-name", e.control_name, "--wait", "0.5",
                "--db", str(db), *scenario.probe_args]  # fmt: skip
        t0 = time.monotonic()
        shown = None
        with self.under(scenario):
            proc = subprocess.run(self.client_argv([*argv, "--json"]), capture_output=True, text=True,
                                  timeout=120, env=self._env())  # fmt: skip
            if e.says or e.never_says:
                shown = subprocess.run(self.client_argv([*argv, "--no-store"]), capture_output=True,
                                       text=True, timeout=120, env=self._env())  # fmt: skip
        try:
            data = json.loads(proc.stdout) if proc.returncode == 0 else None
        except ValueError:
            data = None
        outcome = check_trace(e, data, shown.stdout if shown is not None else None)
        failed = [f"probe trace exited {p.returncode}" for p in (proc, shown)
                  if p is not None and p.returncode]  # fmt: skip
        if failed:
            outcome = Outcome(outcome.url, (*outcome.observation_errors, *failed), outcome.verdict_errors,
                              outcome.observed, outcome.verdict)  # fmt: skip
        return ScenarioResult(scenario, (outcome,), (None,), proc.returncode, proc.stderr[-4000:],
                              time.monotonic() - t0)  # fmt: skip

    def _run_outage_scenario(self, scenario: Scenario, workdir: Path) -> ScenarioResult:
        """`probe run` over the scenario's sites under its censor, with the lab's IP-to-country
        table, then the outage rules over what it stored."""
        o = scenario.outages
        assert o is not None
        workdir.mkdir(parents=True, exist_ok=True)
        geo = workdir / "lab-geo.tsv"
        geo.write_text(sites.GEO)
        db = workdir / f"{scenario.name}.db"
        db.unlink(missing_ok=True)
        t0 = time.monotonic()
        with self.under(scenario):
            proc = self.probe(o.urls, db, extra=["--geo", str(geo), *scenario.probe_args])
        status, found = read_outages(db, geo, o.country)
        outcome = check_outages(o, proc.returncode, status, found)
        return ScenarioResult(scenario, (outcome,), (None,), proc.returncode, proc.stderr[-4000:],
                              time.monotonic() - t0)  # fmt: skip

    @contextlib.contextmanager
    def under(self, scenario: Scenario) -> Iterator[None]:
        """The censor (and the knobs) of ``scenario`` while the block runs, reset after it."""
        self.apply(scenario.censor)
        try:
            if scenario.latency_ms:
                self.set_latency(scenario.latency_ms)
            if scenario.bandwidth:
                self.set_bandwidth(scenario.bandwidth)
            yield
        finally:
            if scenario.latency_ms:
                self.set_latency(self.latency_ms)
            if scenario.bandwidth:
                self.set_bandwidth(self.bandwidth)
            self.reset()

    # --- techniques switched on by hand (`probe lab censor`) -------------------------------------

    def switched_on(self) -> tuple[str, ...]:
        """The scenarios `probe lab censor` switched on in this lab, in the order given."""
        names = self._state().get("censor_on") or []
        return tuple(str(n) for n in names if isinstance(n, str))

    def switch(self, scenarios: Sequence[Scenario]) -> None:
        """Make the censor do exactly what ``scenarios`` do together (none: nothing).

        Raises :class:`CensorConflict`, changing nothing, when two of them cannot both work
        (:func:`probe.lab.combine.conflicts`), or one needs a knob the lab was set up with
        another value of (`probe lab up --latency/--bandwidth`).
        """
        found = conflicts(scenarios)
        for s in scenarios:
            for knob, mine, theirs in (("the censor's delay (ms each way)", self.latency_ms, s.latency_ms),
                                       ("the censor's bandwidth", self.bandwidth, s.bandwidth)):  # fmt: skip
                if mine and theirs and mine != theirs:
                    found.append(Conflict("the lab", s.name, f"{knob} takes one value: the lab was "
                                          f"started with {mine}, {s.name} wants {theirs}"))  # fmt: skip
        if found:
            raise CensorConflict(found)
        self.apply(combine(scenarios))
        latency = max([self.latency_ms, *(s.latency_ms for s in scenarios)])
        if latency != float(self._state().get("delay_ms") or 0.0):
            self.set_latency(latency)
        self.set_bandwidth(next((s.bandwidth for s in scenarios if s.bandwidth), self.bandwidth))
        self._update_state(censor_on=[s.name for s in scenarios])

    def switch_on(self, scenarios: Sequence[Scenario]) -> tuple[Scenario, ...]:
        """Switch ``scenarios`` on beside those already on; returns every scenario now on."""
        on = [by_name(n) for n in self.switched_on()]
        wanted = (*on, *(s for s in scenarios if s.name not in {x.name for x in on}))
        self.switch(wanted)
        return wanted

    def switch_off(self, names: Sequence[str] = ()) -> tuple[Scenario, ...]:
        """Switch the scenarios ``names`` off (none: all); returns those still on."""
        left = tuple(by_name(n) for n in self.switched_on() if names and n not in names)
        self.switch(left)
        return left

    def run_scenarios(self, scenarios: Iterable[Scenario], workdir: Path) -> Iterator[ScenarioResult]:
        """Run scenarios one after the other (the censor is reset between them)."""
        for s in scenarios:
            yield self.run_scenario(s, workdir)
