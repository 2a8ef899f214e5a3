"""How the helper is configured and how it measures: server policy, engine settings."""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from probe.core.model import Measurement
from probe.core.net import read_resolv_conf
from probe.core.net.policy import ConnectPolicy, is_public_address
from probe.core.settings import MeasureConfig
from probe.measure.control.protocol import THRequest
from probe.measure.engine import measure
from probe.measure.quic import available as quic_available
from probe.serve.reflector import ReflectorConfig

__all__ = ["HelperConfig", "MeasureFn", "engine_measure", "measure_config"]


#: What the helper calls to measure: the request -> a Measurement (never raises for network
#: failures). The default is :func:`engine_measure`; tests inject their own.
MeasureFn = Callable[[THRequest], Awaitable[Measurement]]


@dataclass(frozen=True)
class HelperConfig:
    """Server policy (the measurement settings live in the engine's MeasureConfig)."""

    host: str = "127.0.0.1"
    port: int = 8080
    max_in_flight: int = 64  # concurrent measurements; more get 503
    retry_after: int = 5  # seconds, in the 503's Retry-After
    request_max_bytes: int = 64 * 1024  # request bodies above this get 413
    measure_timeout: float = 30.0  # safety net over the engine's own deadline; 504 beyond
    allow_private: bool = False  # connect to loopback/private addresses (labs, tests)
    #: What counts as public when ``allow_private`` is off; tests inject a policy that makes
    #: one loopback address "public" (nothing may leave loopback in tests).
    public: ConnectPolicy = is_public_address
    log_clients: str = "none"  # "none", "hashed" (salted per process) or "full"
    tls_cert: str | None = None
    tls_key: str | None = None
    shutdown_timeout: float = 30.0  # seconds given to in-flight requests on SIGTERM
    # Slow or stalled clients (slowloris): a connection must deliver a request's headers
    # within header_timeout of connecting or of the previous response (aiohttp's keep-alive
    # timer closes it otherwise), and its body within body_timeout (408).
    header_timeout: float = 10.0
    body_timeout: float = 10.0
    max_connections_per_client: int = 256  # open connections per client address; more: closed
    backlog: int = 1024
    reflector: ReflectorConfig | None = None  # echo and WireGuard ports (--reflector); None: off

    def connect_policy(self) -> ConnectPolicy | None:
        """The engine's connect policy for this helper (None: connect anywhere)."""
        return None if self.allow_private else self.public


def measure_config(
    *,
    resolvers: Sequence[str] = (),
    resolv_conf: str | Path | None = None,
    cafile: str | None = None,
    body_cap: int = 1 << 20,
    deadline: float = 25.0,
) -> Any:
    """The engine's MeasureConfig for the helper (no DoH: the helper is the control).

    ``resolvers`` win; otherwise the ``nameserver`` lines of ``resolv_conf``; otherwise the
    engine's system resolver. Raises OSError/ValueError for an unreadable resolv.conf.
    """
    names = {f.name for f in dataclasses.fields(MeasureConfig)}
    servers = tuple(resolvers)
    wanted: dict[str, Any] = {}
    if resolv_conf and not servers:
        found = read_resolv_conf(resolv_conf)  # fail early, naming the file
        if "resolv_conf" in names:
            wanted["resolv_conf"] = str(resolv_conf)
        else:
            servers = found
    wanted |= {
        "resolvers": servers,
        "cafile": cafile,
        "body_cap": body_cap,
        "deadline": deadline,
        "late_window": 0.0,  # the helper reports the first answer; no need to linger
    }
    return MeasureConfig(**{k: v for k, v in wanted.items() if k in names})


def engine_measure(cfg: Any = None, *, policy: ConnectPolicy | None = is_public_address) -> MeasureFn:
    """The production MeasureFn: :func:`probe.measure.measure` with ``cfg`` (a MeasureConfig).

    The probe's User-Agent is used for the fetch, so the site serves both the same page; the
    probe's addresses (for the URL's port) are passed as ``extra_addresses``. ``policy`` is
    enforced on every address connected to (after DNS, after each redirect): public
    addresses only unless the caller passes another policy or None (``--allow-private``).
    """
    base = dataclasses.replace(cfg if cfg is not None else MeasureConfig(), connect_policy=policy)
    has_ua = any(f.name == "user_agent" for f in dataclasses.fields(base))
    quic_ok = quic_available()

    async def run_measure(req: THRequest) -> Measurement:
        mcfg = base
        ua = req.header("User-Agent")
        if ua and has_ua:
            mcfg = dataclasses.replace(base, user_agent=ua)
        if (req.quic_enabled and quic_ok) or req.ech_enabled:
            # The probe's own tests, without decoy: the helper answers whether the site's name
            # gets through from here (x_quic_enabled, x_ech_enabled; docs/protocols.md).
            mcfg = dataclasses.replace(mcfg, quic=req.quic_enabled and quic_ok, quic_decoy="",
                                       ech=req.ech_enabled, ech_sni=req.ech_sni)
        if not req.http:
            mcfg = dataclasses.replace(mcfg, http=False)
        return await measure(req.target, mcfg, control=None, extra_addresses=req.addresses)

    return run_measure
