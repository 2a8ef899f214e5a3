"""The verdicts of the opt-in protocol tests a measurement was made with (``--quic``, ``--ech``).

Each test has a judge of its own (:mod:`probe.judge.quic`, :mod:`probe.judge.ech`); their
verdicts travel with the URL's web verdict (``Verdict.protocols``) and never change it.
"""

from __future__ import annotations

from collections.abc import Callable

from probe.core.model import Measurement, ProtocolVerdict
from probe.judge.ech import judge_ech
from probe.judge.quic import judge_quic

__all__ = ["JUDGES", "SUITES", "protocol_verdicts"]

#: Each protocol test's judge, by suite name.
JUDGES: dict[str, Callable[[Measurement], ProtocolVerdict]] = {"quic": judge_quic, "ech": judge_ech}
#: The suite names, in the order they are shown.
SUITES: tuple[str, ...] = tuple(JUDGES)


def protocol_verdicts(m: Measurement) -> tuple[ProtocolVerdict, ...]:
    """One verdict per protocol test ``m`` was made with (unknown names are skipped)."""
    return tuple(JUDGES[name](m) for name in m.protocols if name in JUDGES)
