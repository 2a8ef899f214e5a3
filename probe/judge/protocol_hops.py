"""What the QUIC and ECH judges share: an address's verdict, a hop's, then the URL's.

Each judge says what one address of one hop shows (:data:`AddressJudge`); here the addresses
make the hop's verdict (the most telling one by the judge's order: an address that works
usually outranks one that does not, since a browser gets the page there) and the hops make
the URL's (a hop with interference decides; otherwise the last hop measured: the final page's
origin).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import TypeVar

from probe.core.model import ControlECH, ControlObservation, ControlTLS, Hop, Measurement, ProtocolVerdict

__all__ = ["AddressJudge", "control_entry", "judge_measurement"]

T = TypeVar("T", ControlTLS, ControlECH)

#: (hop, address) -> (verdict, reasons), or None when only the probe's own network failed.
AddressJudge = Callable[[Hop, str], tuple[str, list[str]] | None]


def control_entry(hop: Hop, ip: str, entries: Callable[[ControlObservation], Iterable[T]],
                  missing: str) -> T | str:
    """The control's result for ``ip`` on the hop's port, or the reason there is none:
    ``control/unavailable`` (no usable control) or ``missing`` (it answered without one)."""
    ctl = hop.control
    if ctl is None or ctl.failure is not None:
        return "control/unavailable"
    found = next((c for c in entries(ctl) if c.ip == ip and c.port == hop.port), None)
    return missing if found is None else found


def _hop(suite: str, hop: Hop, ips: Iterable[str], judge: AddressJudge,
         order: Mapping[str, int]) -> tuple[str, list[str]]:
    found = [out for ip in ips if (out := judge(hop, ip)) is not None]
    if not found:
        return "inconclusive", [f"{suite}/local-only"]
    verdict = min((v for v, _ in found), key=lambda v: order[v])
    return verdict, [r for _, reasons in found for r in reasons]


def judge_measurement(
    m: Measurement, suite: str, *, addresses: Callable[[Hop], list[str]], judge: AddressJudge,
    order: Mapping[str, int], stage: str, version: str, not_measured: str,
) -> ProtocolVerdict:
    """The ``suite`` verdict of ``m``: ``addresses(hop)`` are the addresses the test ran on (none:
    the hop was not tested); ``order`` ranks the verdicts of one hop's addresses (lowest wins);
    ``not_measured`` is the reason when no https hop was tested though there was one."""
    hops = [(hop, ips) for hop in m.hops if (ips := addresses(hop))]
    if not hops:
        detail = ":no-https" if not any(h.scheme == "https" for h in m.hops) else not_measured
        return ProtocolVerdict(suite, "inconclusive", None, None, (f"{suite}/not-measured{detail}",),
                               version)  # fmt: skip
    judged = [(hop.index, *_hop(suite, hop, ips, judge, order)) for hop, ips in hops]
    reasons = tuple(dict.fromkeys(r for _, _, rs in judged for r in rs))
    blocked = next((j for j in judged if j[1] in ("blocked", "reset")), None)
    index, verdict, _ = blocked or judged[-1]
    return ProtocolVerdict(suite, verdict, None if verdict == "ok" else stage, index, reasons, version)
