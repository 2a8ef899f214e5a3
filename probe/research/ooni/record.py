"""One OONI measurement mapped, and OONI's verdict in probe's vocabulary."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from probe.core.errors import ProbeError
from probe.core.model import (
    Measurement,
)

__all__ = ["OONIFormatError", "OONIRecord", "ooni_verdict"]


class OONIFormatError(ProbeError, ValueError):
    """A line that is not a usable Web Connectivity measurement; the message says why."""


@dataclass(frozen=True)
class OONIRecord:
    """One OONI measurement, mapped.

    ``meta`` keeps OONI's identifiers (``report_id``, ``measurement_uid``, ``probe_asn``,
    ``probe_cc``, ``resolver_asn``, ``measurement_start_time``, ``software``, ``engine``,
    ``test_version``). ``blocking``/``accessible`` are OONI's verdict as published;
    ``ooni_verdict`` is it in probe's vocabulary (:func:`ooni_verdict`).
    """

    measurement: Measurement
    meta: Mapping[str, Any]
    blocking: str | None
    accessible: bool | None
    ooni_verdict: str
    inferred: tuple[str, ...]


def ooni_verdict(blocking: object, accessible: object) -> str:
    """OONI's ``blocking``/``accessible`` in probe's vocabulary.

    ``false`` + accessible: ok; ``false`` + not accessible: down (OONI: "the website is down");
    ``"dns"``: hijacked; ``"tcp_ip"``, ``"http-failure"``, ``"http-diff"``: blocked (OONI does not
    tell a reset from a timeout at this level); anything else (``null``): inconclusive.
    """
    if blocking is False:
        return "ok" if accessible is True else "down" if accessible is False else "inconclusive"
    if blocking == "dns":
        return "hijacked"
    if blocking in ("tcp_ip", "http-failure", "http-diff"):
        return "blocked"
    return "inconclusive"

