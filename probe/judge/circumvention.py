"""Judge one endpoint from its observation and the control's view of the same address (pure).

The control (a Web Connectivity test helper) connects to the endpoint over an uncensored network
and, for TLS endpoints, completes a TLS handshake (a certificate it cannot verify still proves the
handshake worked: Tor relays' certificates are self-signed by design). It cannot speak UDP or
OpenVPN, so:

- TCP failed here, connected there: ``blocked`` (timeout: the address is blackholed) or
  ``reset`` (refused or reset);
- TLS failed here, completed there: ``reset`` (reset/EOF) or ``blocked`` (timeout, failed);
- OpenVPN over TCP reset here after a TCP connect that works everywhere: ``reset`` (a server does
  not answer its own protocol's first packet with a reset; DPI boxes do). A silent OpenVPN server
  is ``inconclusive``: one configured with tls-auth/tls-crypt stays silent too;
- OpenVPN over UDP without an answer: ``inconclusive`` (no UDP control exists);
- the same failure at the control: ``down``; no usable control: ``inconclusive``.

Encrypted DNS resolvers and the kinds judged against their own twin exchange (fully encrypted
traffic, WireGuard) are judged by :mod:`probe.judge.tunnels`.
"""

from __future__ import annotations

from probe.core.failures import CERTIFICATE_FAILURES
from probe.core.model import ControlObservation, EndpointObservation, Verdict
from probe.inputs.endpointlists import DNS_KINDS, TWIN_KINDS
from probe.judge.classify.core import failure_kind
from probe.judge.tunnels import AsnOf, control_gate, judge_encrypted_dns, judge_twin

__all__ = ["CLASSIFIER_VERSION", "judge_endpoint"]

CLASSIFIER_VERSION = "circumvention-1"
_TCP = {"timeout": "blocked", "refused": "reset", "reset": "reset"}
_TLS = {"timeout": "blocked", "reset": "reset", "eof": "reset", "handshake-failed": "blocked"}


def _verdict(verdict: str, stage: str | None, reasons: list[str]) -> Verdict:
    return Verdict(verdict, stage, None, tuple(reasons), CLASSIFIER_VERSION)


def judge_endpoint(
    obs: EndpointObservation, control: ControlObservation | None, asn: AsnOf | None = None
) -> Verdict:
    """The verdict of one endpoint, with reasons ``stage/outcome[:detail]``; ``asn`` (IP to AS
    number, offline data) settles whether an encrypted resolver's answers match the control's."""
    if obs.kind in DNS_KINDS:
        return judge_encrypted_dns(obs, control, asn)
    if obs.kind in TWIN_KINDS:
        return judge_twin(obs)
    where = f"{obs.address}:{obs.port}"
    if obs.reached:
        return _verdict("ok", None, [f"{obs.handshake or 'tcp'}/ok:{where}"])
    stage = "tcp" if obs.tcp_failure else obs.handshake
    failure = obs.tcp_failure or obs.handshake_failure or ""
    kind = failure_kind(failure) or "failure"
    reasons = [f"{stage}/{kind}:{where}"]
    if kind == "local":
        return _verdict("inconclusive", stage, [*reasons, f"{stage}/local:{failure}"])
    if obs.transport == "udp":
        return _verdict("inconclusive", stage, [*reasons, "control/none:udp"])
    gate = control_gate(obs, control)
    if gate is not None:
        return _verdict(gate[0], stage, [*reasons, gate[1]])
    assert control is not None
    if stage == "tcp":
        verdict = _TCP.get(kind)
        return _verdict(verdict or "inconclusive", stage, reasons)
    if stage == "tls":
        ctls = next((t for t in control.tls if t.port == obs.port and t.ip == obs.address), None)
        if ctls is None:
            return _verdict("inconclusive", stage, [*reasons, "control/no-tls-result"])
        if not (ctls.ok or ctls.failure in CERTIFICATE_FAILURES):
            ckind = failure_kind(ctls.failure or "") or "failure"
            return _verdict("down", stage, [*reasons, f"control/tls-{ckind}:{where}"])
        verdict = _TLS.get(kind)
        return _verdict(verdict or "inconclusive", stage, reasons)
    # openvpn over TCP: only a reset is evidence (see the module's docstring)
    if kind == "reset":
        return _verdict("reset", stage, reasons)
    return _verdict("inconclusive", stage, [*reasons, "openvpn/silent-server-possible"])
