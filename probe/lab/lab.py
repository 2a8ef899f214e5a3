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

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from probe.inputs.testlists import parse_url
from probe.lab import censor as _censor
from probe.lab import sites, topology
from probe.lab.certs import make_certs
from probe.lab.checks import Outcome, check
from probe.lab.latency import Delay
from probe.lab.safety import namespace_id
from probe.lab.scenarios import Censor, Scenario
from probe.lab.topology import LabError, Topology
from probe.store import Store

__all__ = [
    "PROBE_TIMEOUTS",
    "Lab",
    "LabError",
    "ScenarioResult",
    "is_root",
    "missing_tools",
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


def is_root() -> bool:
    """True when running as root (the lab needs it)."""
    return os.geteuid() == 0


def missing_tools() -> list[str]:
    """The command-line tools the lab needs that are not installed."""
    missing = [t for t in _TOOLS if shutil.which(t) is None]
    try:  # are the lab's Python packages installed? (imported here to find out)
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
                stored[m.target.url] = (m, v)
    return stored


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
    _procs: list[subprocess.Popen[bytes]] = field(default_factory=list, repr=False)
    _delay: Any = field(default=None, repr=False)

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
        lab = cls(Topology(chosen, sites.server_addresses()), persistent, helper,
                  env=dict(env) if env is not None else None)  # fmt: skip
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
        }
        topology.write_state(self.state_dir, info)

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
        certs = make_certs(sd, [s.name for s in sites.SITES if s.ip])
        (sd / "zone.json").write_text(json.dumps(sites.zone(), indent=1))
        (sd / "web.json").write_text(json.dumps(sites.web_config(certs), indent=1))
        _censor.install_base(self.topo.censor, self.topo.server)
        _censor.apply(self.topo.censor, sd, Censor(), self.topo.server)
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
        }  # fmt: skip
        for name, (ns, argv) in specs.items():
            self._start(name, ns, argv)
        if self.helper:
            self._start_helper()
        for name in specs:
            self._wait_ready(name)
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

    def _wait_helper(self, timeout: float = 20.0) -> None:
        # Readiness without sending a packet from here: ask the namespace's own socket table.
        proc = next(p for p in self._procs if p.pid == self.services["helper"])
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            query = ["ss", "-Hltn", f"sport = :{topology.HELPER_PORT}"]
            out = topology.ns_run(self.topo.uncensored, query, check=False)
            if out.strip():
                return
            if proc.poll() is not None:
                break
            time.sleep(0.05)
        log = (self.state_dir / "helper.log").read_text(errors="replace")[-1500:]
        self.helper = False
        self.helper_error = f"control helper did not start: {log.strip() or 'no output'}"

    def set_latency(self, delay_ms: float) -> None:
        """Delay every packet the censor forwards by ``delay_ms`` each way (NFQUEUE), 0 to stop."""
        if self._delay is not None:
            if delay_ms:
                self._delay.set_delay(delay_ms)
                return
            self._delay.stop()
            self._delay = None
            return
        if delay_ms:
            self._delay = Delay(self.topo.censor, ["r1", "r0"], delay_ms).start()

    def set_bandwidth(self, rate: str | None) -> None:
        """Cap the censor's forwarding rate (tbf), e.g. ``"8mbit"``; None removes the cap."""
        _censor.set_bandwidth(self.topo.censor, rate)

    def down(self) -> None:
        """Stop the services and delete the namespaces and state (safe to call twice)."""
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
        _censor.apply(self.topo.censor, self.state_dir, censor, self.topo.server)

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
        extra: Sequence[str] = (),
        timeout: float = 240.0,
    ) -> subprocess.CompletedProcess[str]:
        """Run ``probe run`` for ``urls`` in the client namespace into ``db``."""
        argv = ["run", "--db", str(db), "--vantage", "lab", "--cafile", self.cafile,
                "--control", control or self.control_url, "--accept-risks", "--no-progress",
                "--stun", sites.STUN, "--whoami", sites.WHOAMI,  # the lab's identity services
                *PROBE_TIMEOUTS, *extra]  # fmt: skip
        for u in urls:
            argv += ["--url", u]
        return subprocess.run(self.client_argv(argv), capture_output=True, text=True,
                              timeout=timeout, env=self._env())  # fmt: skip

    def run_scenario(self, scenario: Scenario, workdir: Path) -> ScenarioResult:
        """Apply the scenario's censor, run the probe on its URLs, reset, and check the results.

        """
        workdir.mkdir(parents=True, exist_ok=True)
        control = UNREACHABLE_CONTROL if scenario.control == "unreachable" else None
        urls = [e.url for e in scenario.targets]
        t0 = time.monotonic()
        self.apply(scenario.censor)
        try:
            db = _fresh(workdir, scenario.name)
            # An unreachable control makes `probe run` refuse to measure (so that cron
            # notices); this scenario is about what is provable without one.
            extra = [*scenario.probe_args, *(["--allow-no-control"] if control else [])]
            proc = self.probe(urls, db, control=control, extra=extra)
            stored = _read_db(db)
        finally:
            self.reset()
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

    def run_scenarios(self, scenarios: Iterable[Scenario], workdir: Path) -> Iterator[ScenarioResult]:
        """Run scenarios one after the other (the censor is reset between them)."""
        for s in scenarios:
            yield self.run_scenario(s, workdir)
