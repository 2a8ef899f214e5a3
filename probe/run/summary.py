"""What a run reports as it goes (:class:`Reporter`) and at its end (:class:`RunSummary`)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Protocol

from probe.core.model import Target, Verdict

__all__ = ["NullReporter", "Reporter", "RunSummary"]


@dataclass
class RunSummary:
    """What a run did, for the summary table and the exit status."""

    run_id: int
    status: str  # complete | interrupted | offline | failed
    measured: int = 0
    verdicts: Counter[str] = field(default_factory=Counter)
    protocols: Counter[str] = field(default_factory=Counter)  # "quic:blocked" -> URLs (--quic, --ech)
    problems: int = 0
    errors: int = 0  # URLs lost to a bug in probe (reported as they happen)
    started: float = 0.0
    finished: float = 0.0
    vantage: str = ""
    network: str = ""  # one line describing the network identity (no addresses)
    network_changed: bool | None = None  # None: not checked at the end
    #: Why the public address is unknown ("" when it is known, or the check was off).
    address_unknown: str = ""

    @property
    def elapsed(self) -> float:
        return max(0.0, self.finished - self.started)


class Reporter(Protocol):
    """Receives progress events; the CLI draws a bar or writes log lines from them.

    ``measuring`` and ``settled`` bracket each URL (all its attempts), so that a display can
    name the URLs still in flight when a run waits on slow ones; ``result`` comes in between
    with the final verdict when there is one. A reporter written before these two existed
    still works: the runner calls them only when they are there.
    """

    def started(self, run_id: int, total: int | None) -> None: ...
    def measuring(self, target: Target) -> None: ...
    def result(self, target: Target, verdict: Verdict) -> None: ...
    def settled(self, target: Target) -> None: ...
    def problem(self, message: str) -> None: ...


class NullReporter:
    """A reporter that drops every event (library use without a display)."""

    def started(self, run_id: int, total: int | None) -> None:
        pass

    def measuring(self, target: Target) -> None:
        pass

    def settled(self, target: Target) -> None:
        pass

    def result(self, target: Target, verdict: Verdict) -> None:
        pass

    def problem(self, message: str) -> None:
        pass
