"""Shared pieces of the classifier: findings, failure kinds and the control's view of a hop."""

from __future__ import annotations

from dataclasses import dataclass, field

from probe.core.failures import Failure
from probe.core.model import INTERFERENCE_VERDICTS as _INTERFERENCE
from probe.core.model import ControlObservation, Hop, Measurement
from probe.core.net.addresses import addr_class, canon_ip, family
from probe.inputs.fingerprints import Fingerprints
from probe.inputs.geo import GeoDB

__all__ = [
    "INTERFERENCE",
    "Context",
    "Finding",
    "HopControl",
    "chain_controls",
    "failure_kind",
    "is_loopback",
]

#: Verdicts that mean someone interfered; the first one found decides.
INTERFERENCE = frozenset(_INTERFERENCE)


@dataclass(frozen=True)
class Finding:
    """One piece of evidence. ``verdict`` None is evidence that decides nothing by itself."""

    stage: str  # dns, tcp, tls, http, or "control"/"measurement" for context
    hop: int
    reason: str
    verdict: str | None = None

    @property
    def outcome(self) -> str:
        """The ``outcome`` of the reason ``stage/outcome[:detail]``."""
        return self.reason.partition("/")[2].partition(":")[0]


# Failure strings grouped by what they mean for a verdict.
_KINDS = {
    Failure.GENERIC_TIMEOUT_ERROR: "timeout",
    Failure.DNS_TIMEOUT_ERROR: "timeout",
    Failure.DEADLINE_EXCEEDED: "deadline",
    Failure.CONNECTION_RESET: "reset",
    Failure.CONNECTION_ABORTED: "reset",
    Failure.EOF_ERROR: "eof",
    Failure.CONNECTION_REFUSED: "refused",
    Failure.DNS_NXDOMAIN_ERROR: "nxdomain",
    "connection_refused_error": "refused",  # OONI's older helpers
    "connection_reset_error": "reset",
    "android_dns_cache_no_data": "no-answer",  # Android's getaddrinfo EAI_NODATA (OONI)
    "dns_name_error": "nxdomain",  # older OONI test helpers
    Failure.DNS_NO_ANSWER: "no-answer",
    Failure.DNS_SERVFAIL_ERROR: "servfail",
    Failure.DNS_REFUSED_ERROR: "refused",
    Failure.NETWORK_UNREACHABLE: "local",
    Failure.HOST_UNREACHABLE: "local",
    Failure.NETWORK_DOWN: "local",
    Failure.ADDRESS_NOT_AVAILABLE: "local",
    Failure.SSL_INVALID_HOSTNAME: "cert-invalid",
    Failure.SSL_UNKNOWN_AUTHORITY: "cert-invalid",
    Failure.SSL_INVALID_CERTIFICATE: "cert-invalid",
    Failure.SSL_FAILED_HANDSHAKE: "handshake-failed",
    Failure.HTTP_TOO_MANY_REDIRECTS: "too-many-redirects",
    Failure.HTTP_INVALID_REDIRECT_LOCATION_HOST: "invalid-redirect",
}


def is_loopback(ip: str) -> bool:
    """127.0.0.0/8 or ::1 (also IPv4-mapped): a connection there never leaves the machine."""
    return addr_class(canon_ip(ip) or ip) == "loopback"


def failure_kind(failure: str | None) -> str | None:
    """``timeout``, ``reset``, ``eof``, ``refused``, ``nxdomain``, ... or ``other``; None on success."""
    if failure is None:
        return None
    return _KINDS.get(failure, "other")


@dataclass
class HopControl:
    """What the uncensored side saw for one hop: the test helper plus DoH queries."""

    th: ControlObservation | None  # the helper's observation, only when usable
    th_failure: str | None  # why the helper gave nothing (control/failed)
    addrs: set[str] = field(default_factory=set)  # addresses resolved by the helper or DoH
    dns_failure_kind: str | None = None  # set only when the control resolved nothing
    tcp: dict[tuple[str, int], tuple[bool, str | None]] = field(default_factory=dict)
    tls: dict[tuple[str, int], tuple[bool, str | None, str]] = field(default_factory=dict)
    asns: dict[str, int] = field(default_factory=dict)  # the helper's ip_info, when it sends it
    valid_ips: set[str] = field(default_factory=set)  # ip_info "valid_for_domain" (helper's TLS)
    # No control of its own, but the control of an earlier hop of the chain fetched the final
    # page: OONI's helper follows redirects itself and describes only the first URL, so it went
    # through this hop (DNS, TCP, TLS) successfully.
    chain_ok: bool = False

    @property
    def has_dns(self) -> bool:
        return bool(self.addrs) or self.dns_failure_kind is not None

    def addrs_of(self, fam: int) -> set[str]:
        return {a for a in self.addrs if family(a) == fam}

    @property
    def http_ok(self) -> bool:
        th = self.th
        return (
            th is not None and th.http_failure is None and th.http_status is not None and th.http_status > 0
        )

    @property
    def http_failure_kind(self) -> str | None:
        if self.th is None or self.th.http_failure is None:
            return None
        return failure_kind(self.th.http_failure)

    def tls_ok_anywhere(self, scheme: str) -> bool:
        """The control completed a TLS handshake for this host (to some address)."""
        if any(ok for ok, _, _ in self.tls.values()):
            return True
        return scheme == "https" and self.http_ok


def chain_controls(controls: list[HopControl]) -> None:
    """Mark hops with no control of their own that an earlier hop's control went through.

    A helper that follows redirects and reached the final page (OONI's does, and reports only
    the first URL) resolved, connected to and fetched every hop after the first.
    """
    reached = False
    for ctl in controls:
        if ctl.th is not None or ctl.has_dns or ctl.th_failure is not None:
            reached = ctl.http_ok
        elif reached:
            ctl.chain_ok = True


def hop_control(hop: Hop) -> HopControl:
    """Merge the helper's observation and the DoH control queries of ``hop``."""
    th = hop.control
    th_failure = None
    if th is not None and th.failure is not None:
        th_failure, th = th.failure, None
    ctl = HopControl(th=th, th_failure=th_failure)
    dns_failures: list[str] = []
    if th is not None:
        ctl.addrs.update(a for a in (canon_ip(x) for x in th.dns_addrs) if a)
        if th.dns_failure:
            dns_failures.append(th.dns_failure)
        elif not any(canon_ip(x) for x in th.dns_addrs) and (
            # No address at all (OONI's helper lists CNAMEs among addrs): when its own fetch then
            # failed to resolve, the control could not resolve the name either.
            failure_kind(th.http_failure) in ("nxdomain", "no-answer")
            or th.http_failure == "dns_lookup_error"
        ):
            dns_failures.append(Failure.DNS_NO_ANSWER)
        for t in th.tcp:
            ctl.tcp[(canon_ip(t.ip), t.port)] = (t.ok, t.failure)
        for s in th.tls:
            ctl.tls[(canon_ip(s.ip), s.port)] = (s.ok, s.failure, s.server_name)
        for ip, asn, flags in th.ip_info:
            if asn:
                ctl.asns[canon_ip(ip)] = asn
            if "valid_for_domain" in flags.split(","):
                ctl.valid_ips.add(canon_ip(ip))
    for q in hop.dns_control:
        ctl.addrs.update(a for a in (canon_ip(x) for x in q.addresses) if a)
        if q.failure and q.failure != Failure.DNS_NO_ANSWER:
            dns_failures.append(q.failure)
    if not ctl.addrs and dns_failures:
        kinds = {failure_kind(f) for f in dns_failures}
        # NXDOMAIN from any control source is authoritative; otherwise only a unanimous kind.
        if "nxdomain" in kinds:
            ctl.dns_failure_kind = "nxdomain"
        elif len(kinds) == 1:
            ctl.dns_failure_kind = kinds.pop()
    return ctl


@dataclass
class Context:
    """Everything the stage judges need for one measurement."""

    m: Measurement
    fingerprints: Fingerprints
    geo: GeoDB | None
    controls: list[HopControl]
    final_ok: bool = False  # the final response matches the control or is authenticated

    @property
    def final_hop(self) -> Hop | None:
        return self.m.hops[-1] if self.m.hops else None

    def asn(self, ip: str, ctl: HopControl) -> int:
        """ASN of ``ip`` from the offline database, else from the helper's ip_info (0: unknown)."""
        if self.geo is not None:
            asn = self.geo.asn(ip)
            if asn:
                return asn
        return ctl.asns.get(ip, 0)
