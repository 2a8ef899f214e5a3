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
traffic, WireGuard) are judged by :mod:`probe.judge.tunnels`, the messaging apps' endpoints by
:mod:`probe.judge.messaging`.

Endpoints measured by another tool without a control (OONI's experiments, imported by
``probe import ooni``) are judged by :func:`judge_without_control`, whatever their kind (the
messaging apps' included: their rules read a control): the rules above, where every failure is
``inconclusive`` (``control/absent``) unless content evidence decides it as probe's classifier
would (a bogon or block-page DNS answer, a block page).
"""

from __future__ import annotations

from probe.core.failures import CERTIFICATE_FAILURES
from probe.core.model import ControlObservation, EndpointObservation, Measurement, Verdict
from probe.inputs.endpointlists import DNS_KINDS, MESSAGING_APPS, TWIN_KINDS
from probe.inputs.fingerprints import Fingerprints
from probe.inputs.geo import GeoDB
from probe.judge.classify import classify
from probe.judge.classify.core import failure_kind
from probe.judge.messaging import judge_messaging
from probe.judge.tunnels import AsnOf, control_gate, judge_encrypted_dns, judge_twin

__all__ = ["CLASSIFIER_VERSION", "judge_endpoint", "judge_without_control"]

CLASSIFIER_VERSION = "circumvention-1"
_TCP = {"timeout": "blocked", "refused": "reset", "reset": "reset"}
_TLS = {"timeout": "blocked", "reset": "reset", "eof": "reset", "handshake-failed": "blocked"}


def _verdict(verdict: str, stage: str | None, reasons: list[str]) -> Verdict:
    return Verdict(verdict, stage, None, tuple(reasons), CLASSIFIER_VERSION)


def judge_endpoint(
    obs: EndpointObservation, control: ControlObservation | None, asn: AsnOf | None = None, *,
    geo: GeoDB | None = None, fingerprints: Fingerprints | None = None,
) -> Verdict:
    """The verdict of one endpoint, with reasons ``stage/outcome[:detail]``; ``asn`` (IP to AS
    number, offline data) settles whether an encrypted resolver's answers match the control's;
    ``geo`` and ``fingerprints`` are what the web rules read for the messaging services reached
    by name (as ``probe run`` passes them to its classifier)."""
    if obs.kind in MESSAGING_APPS:
        return judge_messaging(obs, control, fingerprints=fingerprints, geo=geo)
    if obs.kind in DNS_KINDS:
        return judge_encrypted_dns(obs, control, asn)
    if obs.kind in TWIN_KINDS:
        return judge_twin(obs)
    return _judge_tool(obs, control)


def _judge_tool(obs: EndpointObservation, control: ControlObservation | None, *,
                missing: str | None = None) -> Verdict:
    """The rules of a tool's endpoint (see the module's docstring); ``missing``: the endpoint was
    measured without a control, and this is the reason a failure gets instead of the control's
    gate (:func:`probe.judge.tunnels.control_gate`)."""
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
    gate = ("inconclusive", missing) if missing is not None else control_gate(obs, control)
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


# Reasons of probe's classifier that decide without a control: what the network answered, not
# whether something failed. A bogon answer decides only for a fixed target (an app's own names,
# which never resolve to private addresses); an arbitrary URL may (its owner's choice).
_CONTENT = frozenset({"dns/blockpage", "http/blockpage"})
_FIXED_CONTENT = _CONTENT | {"dns/bogon"}


def judge_without_control(obs: EndpointObservation, evidence: Measurement | None, *, fixed_target: bool,
                          fingerprints: Fingerprints | None = None, geo: GeoDB | None = None,
                          source: str = "ooni") -> Verdict:
    """An endpoint measured without a control (``source``: by whom; OONI's experiments carry
    none), of any kind: ``ok`` when it answered as its tool expects; ``hijacked``/``blocked``
    when probe's classifier finds content evidence in ``evidence`` (its DNS answers and HTTP
    responses); otherwise ``inconclusive`` with the failure and ``control/absent:SOURCE``,
    because a failure without a control may be the server's or the path's, not a censor's. The
    kinds' own rules (messaging, encrypted DNS, twins) are not used: they read a control.
    """
    if evidence is not None:
        v = classify(evidence, fingerprints=fingerprints, geo=geo)
        keys = {r.split(":", 1)[0] for r in v.reasons}
        if v.verdict in ("hijacked", "blocked") and keys & (_FIXED_CONTENT if fixed_target else _CONTENT):
            return _verdict(v.verdict, v.stage, [r for r in v.reasons if r != "control/unavailable"])
    return _judge_tool(obs, None, missing=f"control/absent:{source}")
