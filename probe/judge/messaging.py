"""Judge the messaging apps' endpoints (``probe messaging``, docs/messaging.md): pure.

**Telegram data centres** (``telegram-dc``, an address and port): TCP, then MTProto's first
exchange (``req_pq_multi``, answered by ``resPQ``), against the control helper, which connects
to the same address and port over an uncensored network and fetches ``http://IP:PORT/`` there
(a DC answers HTTP too, as OONI's ``telegram`` experiment relies on):

- the DC answered (a ``resPQ`` naming our nonce, or an MTProto error code): ``ok``;
- TCP failed here, connected there: ``blocked`` (timeout: the address is blackholed) or
  ``reset`` (refused or reset); the same failure there: ``down``;
- connected, then our MTProto bytes were reset (or the connection closed) while the control
  connected: ``reset`` (a DC does not reset its own protocol's first message; DPI boxes do);
- connected, then silence: ``blocked`` only when the control's HTTP exchange with the same DC
  was answered (the DC is up and talking); otherwise ``inconclusive`` (``mtproto/silent``);
- something answered that is not MTProto: ``inconclusive`` (``mtproto/unexpected``).

**Services reached by name** (``telegram-web``, ``whatsapp``, ``whatsapp-web``, ``signal``):
their hops are judged stage by stage by the web classifier's own rules (a DNS lie about
``web.whatsapp.com`` is ``hijacked`` at dns as it would be for the web; TCP and TLS failures
against the helper's view of the same address), then:

- an HTTPS service is ``ok`` once a GET came back over a connection whose certificate verified
  for the name, whatever its status (as OONI's experiments: the HTTPS conversation is what the
  app needs; Signal answers 404 to ``/``);
- a WhatsApp chat endpoint (TCP only: the app speaks its own protocol there) is ``ok`` once an
  address it resolved to, consistent with the control's, accepted the connection.

Signal's apps pin Signal's own CA, which the control helper does not trust: a helper's
handshake that failed only on the certificate, to an address the helper itself resolved the
name to, counts as completed. A certificate that does not verify here (against the system's
CAs and Signal's) is interception (``hijacked``) only when it was not issued by the pinned
CA's subject: one that was is a stale pin or Signal's own mistake (``inconclusive``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from cryptography import x509

from probe.core.failures import CERTIFICATE_FAILURES
from probe.core.model import (
    ControlObservation,
    EndpointObservation,
    Hop,
    Measurement,
    Target,
    Verdict,
)
from probe.core.net.addresses import canon_ip
from probe.inputs.endpointlists import HTTPS_KINDS
from probe.inputs.fingerprints import Fingerprints
from probe.inputs.geo import GeoDB
from probe.judge.classify import findings, open_step
from probe.judge.classify.core import INTERFERENCE, Finding, failure_kind
from probe.judge.classify.http import authenticated
from probe.judge.tunnels import failure_gate

__all__ = ["CLASSIFIER_VERSION", "judge_dc", "judge_messaging", "judge_service"]

CLASSIFIER_VERSION = "messaging-1"
_TCP = {"timeout": "blocked", "refused": "reset", "reset": "reset"}
# Findings that say nothing about a service measured by TCP only (its GET is never made).
_TCP_ONLY_NOISE = ("http/not-attempted",)


def _v(verdict: str, stage: str | None, reasons: Sequence[str]) -> Verdict:
    # No hop: an endpoint's verdict is stored without one (its reasons name the addresses).
    return Verdict(verdict, stage, None, tuple(dict.fromkeys(reasons)), CLASSIFIER_VERSION)


def judge_messaging(
    obs: EndpointObservation,
    control: ControlObservation | None,
    *,
    fingerprints: Fingerprints | None = None,
    geo: GeoDB | None = None,
) -> Verdict:
    """The verdict of one messaging endpoint (see the module's docstring)."""
    if obs.kind == "telegram-dc":
        return judge_dc(obs, control)
    return judge_service(obs, fingerprints=fingerprints, geo=geo)


def judge_dc(obs: EndpointObservation, control: ControlObservation | None) -> Verdict:
    """A Telegram data centre: TCP, then MTProto, against the control's connect and fetch."""
    where = f"{obs.address}:{obs.port}"
    if obs.reached:
        code = obs.answer.partition(":")[2] if obs.answer.startswith("error:") else ""
        note = [f"mtproto/error-code:{code}"] if code else []
        return _v("ok", None, [f"mtproto/ok:{where}", *note])
    stage = "tcp" if obs.tcp_failure else "mtproto"
    failure = obs.tcp_failure or obs.handshake_failure or ""
    kind = failure_kind(failure) or "failure"
    if obs.answer and stage == "mtproto":
        kind = "unexpected"
    reasons = [f"{stage}/{kind}:{where}"]
    settled = failure_gate(obs, control, stage, kind, failure, reasons, _TCP)
    if settled is not None:
        return _v(settled[0], stage, settled[1])
    assert control is not None
    if kind in ("reset", "eof", "refused"):
        return _v("reset", stage, reasons)
    if kind == "unexpected":
        return _v("inconclusive", stage, [f"mtproto/unexpected:{obs.answer}:{where}"])
    if kind == "timeout":
        if control.http_status is not None:
            return _v("blocked", stage, [*reasons, f"control/http-answered:{control.http_status}"])
        return _v("inconclusive", stage, [*reasons, "mtproto/silent",
                                          f"control/http-failed:{control.http_failure}"])  # fmt: skip
    return _v("inconclusive", stage, reasons)


def _target(hop: Hop) -> Target:
    return Target(hop.url, hop.url, hop.scheme, hop.host, hop.port)


def _pinned_control(hop: Hop) -> Hop:
    """The hop with the helper's handshakes that failed only on the certificate counted as
    completed, for the addresses the helper resolved the name to itself (the service's own:
    an address a lying resolver gave us keeps its failure, so it never vouches for a lie)."""
    c = hop.control
    if c is None or not c.tls:
        return hop
    own = {canon_ip(a) for a in c.dns_addrs}
    tls = tuple(
        dataclasses.replace(t, ok=True) if t.failure in CERTIFICATE_FAILURES and canon_ip(t.ip) in own else t
        for t in c.tls
    )
    return dataclasses.replace(hop, control=dataclasses.replace(c, tls=tls))


def _issuer(chain: tuple[bytes, ...]) -> str | None:
    """The leaf certificate's issuer (RFC 4514), or None when it cannot be read."""
    if not chain:
        return None
    try:
        return x509.load_der_x509_certificate(chain[0]).issuer.rfc4514_string()
    except ValueError:
        return None


def _pin_stale(hop: Hop, f: Finding, pinned: tuple[str, ...]) -> bool:
    """A certificate failure whose certificate the pinned CA's subject issued: not a censor's."""
    if not (f.stage == "tls" and f.outcome == "cert-invalid"):
        return False
    failed = [t for t in hop.tls if t.cert_valid is False or t.failure in CERTIFICATE_FAILURES]
    issuers = {_issuer(t.cert_chain) for t in failed}
    return bool(issuers) and None not in issuers and issuers <= set(pinned)


def judge_service(
    obs: EndpointObservation, *, fingerprints: Fingerprints | None = None, geo: GeoDB | None = None
) -> Verdict:
    """A service reached by name: the web classifier's findings over its hops, then the
    service's own idea of working (see the module's docstring)."""
    if not obs.hops:
        return _v("inconclusive", None, [f"{obs.kind}/not-measured:{obs.address}"])
    hops = tuple(_pinned_control(h) for h in obs.hops) if obs.pinned else obs.hops
    m = Measurement(_target(hops[0]), obs.started, obs.runtime, obs.attempt, hops, obs.measure_failure)
    https = obs.kind in HTTPS_KINDS
    found = [f for f in findings(m, fingerprints=fingerprints, geo=geo)
             if https or f.reason not in _TCP_ONLY_NOISE]  # fmt: skip
    if obs.pinned:
        stale = [f for f in found if f.verdict == "hijacked" and _pin_stale(hops[f.hop], f, obs.pinned)]
        if stale:
            found = [dataclasses.replace(f, verdict="inconclusive") if f in stale else f for f in found]
            found.append(Finding("tls", stale[0].hop, "tls/pinned-ca-issued", "inconclusive"))
    reasons = [f.reason for f in found]

    def decided(f: Finding, verdict: str | None = None) -> Verdict:
        stage = f.stage if f.stage in ("dns", "tcp", "tls", "http") else None
        return _v(verdict or f.verdict or "inconclusive", stage, reasons)

    for wanted in (INTERFERENCE, {"down"}):
        hit = next((f for f in found if f.verdict in wanted), None)
        if hit is not None:
            return decided(hit)
    final = hops[-1]
    if https:
        h = final.http
        if h is not None and h.failure is None and h.status is not None and authenticated(final, h):
            return _v("ok", None, [*reasons, f"https/reached:{h.status}"])
    else:
        reached = next((t for t in final.tcp if t.failure is None), None)
        if reached is not None:
            where = f"{reached.ip}:{reached.port}"
            return _v("ok", None, [*reasons, f"tcp/reached:{where}"])
    inconclusive = next((f for f in found if f.verdict == "inconclusive"), None)
    if inconclusive is not None:
        return decided(inconclusive)
    _, stage = open_step(m)
    return _v("inconclusive", stage, reasons)
