"""The opt-in protocol tests of one https hop: QUIC (``--quic``) and ECH (``--ech``).

They run after the hop's DNS, TCP, TLS and HTTP, to the addresses those steps used, so they
never delay or disturb what the web verdict is judged on (a censor that blocks an address for a
while after a hello it disliked must not spoil the web test). Per address, concurrently:

- QUIC: a handshake with the site's SNI and an HTTP/3 GET of the page over it; after a failure,
  one with a harmless name (the decoy: does the name or the address fail?) and, when the decoy
  got through and the control already says QUIC works there, the site's SNI once more (one lost
  datagram must not make a finding);
- ECH: the plain and the GREASE-ECH ClientHello (:func:`probe.measure.ech.ech_pair`) to each
  address TCP connected to.
"""

from __future__ import annotations

import asyncio
import time
from urllib.parse import urlsplit

from probe.core.failures import Failure
from probe.core.model import QUICObservation
from probe.core.net import authority, is_ip_literal
from probe.core.settings import MeasureConfig
from probe.measure.ech import ech_pair
from probe.measure.hop import HopState
from probe.measure.quic import H3Request, quic_handshake

__all__ = ["requested", "run"]

# Failures that say nothing about the path: the probe cannot send there at all.
_LOCAL = frozenset({Failure.NETWORK_UNREACHABLE, Failure.NETWORK_DOWN, Failure.ADDRESS_NOT_AVAILABLE,
                    Failure.ADDRESS_REFUSED_BY_POLICY})  # fmt: skip


def requested(cfg: MeasureConfig) -> tuple[str, ...]:
    """The protocol tests ``cfg`` asks for, in a fixed order (recorded in the Measurement)."""
    return tuple(name for name, on in (("quic", cfg.quic), ("ech", cfg.ech)) if on)


def _control_quic_ok(hs: HopState, ip: str) -> bool:
    """The hop's control has answered and completed a QUIC handshake with ``ip``."""
    if hs.control is None or not hs.control[2].done() or hs.control[2].cancelled():
        return False
    ctl = hs.control[2].result()
    return any(q.ip == ip and q.port == hs.port and q.ok for q in ctl.quic)


def _request(hs: HopState, cfg: MeasureConfig) -> H3Request:
    """The HTTP/3 GET of the hop's page, as the web step asked for it."""
    parts = urlsplit(hs.url)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return authority(hs.host, hs.port, "https"), path, cfg.user_agent


async def _handshake(hs: HopState, ip: str, sni: str, cfg: MeasureConfig,
                     out: list[QUICObservation], attempt: int = 0) -> QUICObservation:
    """One handshake (with the site's name: and its HTTP/3 GET), recorded in ``out``; cut by
    the URL's deadline, recorded as that."""
    started, t0 = time.time(), time.monotonic()
    request = _request(hs, cfg) if sni == hs.host else None
    try:
        obs = await quic_handshake(ip, hs.port, sni, cfg.quic_timeout, policy=cfg.connect_policy,
                                   attempt=attempt, request=request)  # fmt: skip
    except asyncio.CancelledError:
        out.append(QUICObservation(ip, hs.port, sni, started, time.monotonic() - t0,
                                   Failure.DEADLINE_EXCEEDED, attempt=attempt))  # fmt: skip
        raise
    out.append(obs)
    return obs


async def _quic(hs: HopState, ip: str, cfg: MeasureConfig) -> None:
    first = await _handshake(hs, ip, hs.host, cfg, hs.quic)
    if first.failure is None or first.failure in _LOCAL or not cfg.quic_decoy:
        return
    decoy = await _handshake(hs, ip, cfg.quic_decoy, cfg, hs.decoy_quic)
    if decoy.failure is None and _control_quic_ok(hs, ip):
        await _handshake(hs, ip, hs.host, cfg, hs.quic, attempt=1)


async def _ech(hs: HopState, ip: str, cfg: MeasureConfig) -> None:
    await ech_pair(ip, hs.port, cfg.ech_sni or hs.host, hs.ech, timeout=cfg.tls_timeout,
                   tcp_timeout=cfg.tcp_timeout, policy=cfg.connect_policy)


async def run(hs: HopState, cfg: MeasureConfig) -> None:
    """Run the tests ``cfg`` asks for on ``hs``'s addresses; the observations go into ``hs``."""
    jobs = []
    if cfg.quic:
        jobs += [_quic(hs, ip, cfg) for ip in hs.addresses]
    if cfg.ech and (cfg.ech_sni or not is_ip_literal(hs.host)):  # no name to hide in an IP URL
        connected = dict.fromkeys(t.ip for t in hs.tcp if t.failure is None)
        jobs += [_ech(hs, ip, cfg) for ip in connected]
    if len(jobs) == 1:
        await jobs[0]
    elif jobs:
        await asyncio.gather(*jobs)
