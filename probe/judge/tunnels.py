"""Judge encrypted DNS resolvers (``doh``, ``dot``) and the twin-controlled kinds (``fet``,
``wireguard``) from their observations (pure; called by :func:`probe.judge.circumvention.judge_endpoint`).

Encrypted DNS, against the control helper (which connects and completes TLS to the resolver
over an uncensored network, and resolves each name itself):

- TCP or TLS failed here, worked there: ``blocked`` (timeout) or ``reset``, as for ``tls``
  endpoints; after a failed handshake the decoy SNI says how: ``tls/sni-filtered`` (the decoy
  completed: the resolver's name was filtered) or ``tls/address-blocked`` (it failed too);
- a certificate that does not verify for the resolver's name while the control's handshake
  verified: ``hijacked`` (TLS interception);
- answers: a name answered with addresses that neither overlap the control's nor share an AS
  with them (both sides' AS known), or a bogon for a public name, or NXDOMAIN for a name the
  control resolved: ``hijacked`` at ``dns`` (the resolver, or someone holding a certificate the
  system trusts, lied). Differences that AS data cannot settle (a CDN) never count:
  ``dns/unverified:NAME`` is noted and the verdict stays ``ok``.

Twin kinds (no OONI control speaks them; the twin, sent first to the same peer over the same
path, is the control):

- the twin failed: ``inconclusive`` (``<kind>/twin-failed``: the peer is silent or down for
  this path, so nothing can be compared: the benign cases);
- every exchange worked: ``ok``;
- the tool's bytes failed while the twin went through before and after: ``blocked`` (dropped)
  or ``reset``, with ``<kind>/twin-passed-after``; when the twin failed afterwards too but
  worked on the reflector's other port, the first port was blocked for longer
  (``<kind>/residual``, the GFW's residual censorship); when nothing worked afterwards the path
  may have broken: ``inconclusive`` (``<kind>/followup-failed``);
- a WireGuard initiation without the server's key cannot be answered by anyone: its silence is
  never evidence (``wireguard/no-key``).
"""

from __future__ import annotations

from collections.abc import Callable

from probe.core.failures import CERTIFICATE_FAILURES
from probe.core.model import ControlObservation, EchoTrial, EndpointObservation, NameQuery, Verdict
from probe.core.net.addresses import addr_class, canon_ip, is_public_name
from probe.judge.classify.core import failure_kind

__all__ = [
    "CLASSIFIER_VERSION",
    "control_gate",
    "failure_gate",
    "judge_encrypted_dns",
    "judge_twin",
    "name_consistency",
]

CLASSIFIER_VERSION = "circumvention-2"
AsnOf = Callable[[str], int | None]
_FAILED = {"timeout": "blocked", "reset": "reset", "eof": "reset", "refused": "reset",
           "handshake-failed": "blocked"}  # fmt: skip


def _v(verdict: str, stage: str | None, reasons: list[str]) -> Verdict:
    return Verdict(verdict, stage, None, tuple(reasons), CLASSIFIER_VERSION)


def name_consistency(q: NameQuery, control: ControlObservation | None, asn: AsnOf | None) -> str:
    """How the resolver's answer for one name compares with the control's: ``same``, ``asn``
    (the same AS), ``unverified`` (differs; AS data cannot settle it), ``no-control``, or what
    makes it a lie: ``bogon``, ``nxdomain``, ``other-asn``."""
    if control is None or control.failure is not None:
        return "no-control"
    theirs = {a for a in (canon_ip(x) for x in control.dns_addrs) if a}
    if q.rcode == "NXDOMAIN":
        return "nxdomain" if theirs else "same"
    mine = {a for a in (canon_ip(x) for x in q.addresses) if a}
    if not theirs:
        return "no-control"
    if mine & theirs:
        return "same"
    for ip in mine:
        cls = addr_class(ip)
        if cls is not None and is_public_name(q.name) and not any(addr_class(a) == cls for a in theirs):
            return "bogon"
    known = {ip: a for ip, a, _ in control.ip_info if a}

    def as_of(ip: str) -> int:
        return (asn(ip) if asn is not None else None) or known.get(ip, 0)

    mine_as = {as_of(ip) for ip in mine}
    theirs_as = {as_of(ip) for ip in theirs}
    if (mine_as - {0}) & (theirs_as - {0}):
        return "asn"
    if mine and 0 not in mine_as and 0 not in theirs_as:
        return "other-asn"
    return "unverified"


_LIES = {"bogon", "nxdomain", "other-asn"}


def judge_encrypted_dns(
    obs: EndpointObservation, control: ControlObservation | None, asn: AsnOf | None = None
) -> Verdict:
    """The verdict of a ``doh``/``dot`` resolver (see the module's docstring)."""
    where = f"{obs.address}:{obs.port}"
    if obs.tcp_failure is None and obs.handshake_failure is None:
        by_name = {c.url: c for c in obs.name_controls}
        lies, notes = [], []
        for q in obs.queries:
            if q.failure is not None:
                notes.append(f"dns/query-failed:{q.name}:{q.failure}")
                continue
            how = name_consistency(q, by_name.get(f"http://{q.name}/"), asn)
            if how in _LIES:
                lies.append(f"dns/answers-differ:{q.name}:{how}")
            elif how in ("unverified", "no-control"):
                notes.append(f"dns/{how}:{q.name}")
        if lies:
            return _v("hijacked", "dns", [*lies, f"{obs.kind}/reached:{where}", *notes])
        return _v("ok", None, [f"{obs.kind}/ok:{where}", *notes])
    stage = "tcp" if obs.tcp_failure else "tls"
    failure = obs.tcp_failure or obs.handshake_failure or ""
    kind = failure_kind(failure) or "failure"
    reasons = [f"{stage}/{kind}:{where}"]
    settled = failure_gate(obs, control, stage, kind, failure, reasons, _FAILED)
    if settled is not None:
        return _v(settled[0], stage, settled[1])
    assert control is not None
    ctls = next((t for t in control.tls if t.port == obs.port and t.ip == obs.address), None)
    if ctls is None:
        return _v("inconclusive", stage, [*reasons, "control/no-tls-result"])
    if not ctls.ok:
        ckind = failure_kind(ctls.failure or "") or "failure"
        return _v("down", stage, [*reasons, f"control/tls-{ckind}:{where}"])
    if failure in CERTIFICATE_FAILURES:
        return _v("hijacked", stage, reasons)  # the control verified the same name there
    if obs.decoy_sni:
        if obs.decoy_failure is None:
            reasons.append(f"tls/sni-filtered:decoy={obs.decoy_sni}")
        else:
            reasons.append(f"tls/address-blocked:decoy-failed:{obs.decoy_failure}")
    return _v(_FAILED.get(kind, "inconclusive"), stage, reasons)


def control_gate(obs: EndpointObservation, control: ControlObservation | None) -> tuple[str, str] | None:
    """(verdict, reason) when the control cannot vouch for the endpoint's address: none usable
    (``inconclusive``), no result for it, or TCP failing there too (``down``); None when the
    control connected to it (the shared first steps of every TCP endpoint's rules)."""
    if control is None or control.failure is not None:
        return "inconclusive", "control/unavailable"
    ctcp = next((t for t in control.tcp if t.port == obs.port and t.ip == obs.address), None)
    if ctcp is None:
        return "inconclusive", "control/no-tcp-result"
    if not ctcp.ok:
        ckind = failure_kind(ctcp.failure or "") or "failure"
        return "down", f"control/tcp-{ckind}:{obs.address}:{obs.port}"
    return None


def failure_gate(
    obs: EndpointObservation, control: ControlObservation | None, stage: str, kind: str, failure: str,
    reasons: list[str], on_tcp: dict[str, str],
) -> tuple[str, list[str]] | None:
    """(verdict, reasons) that the first rules settle for a failed TCP endpoint: a local
    failure (inconclusive), the control's gate (:func:`control_gate`), a TCP failure the
    control did not share (``on_tcp`` by failure kind); None when the stage's own rules decide."""
    if kind == "local":
        return "inconclusive", [*reasons, f"{stage}/local:{failure}"]
    gate = control_gate(obs, control)
    if gate is not None:
        return gate[0], [*reasons, gate[1]]
    if stage == "tcp":
        return on_tcp.get(kind, "inconclusive"), reasons
    return None


def _by_role(trials: tuple[EchoTrial, ...], role: str) -> EchoTrial | None:
    return next((t for t in trials if t.role == role), None)


def judge_twin(obs: EndpointObservation) -> Verdict:
    """The verdict of a ``fet`` or ``wireguard`` endpoint (see the module's docstring)."""
    kind, where = obs.kind, f"{obs.address}:{obs.port}"
    twin = _by_role(obs.trials, "twin")
    if twin is None:
        return _v("inconclusive", None, [f"{kind}/not-measured:{where}"])
    if twin.failure is not None:
        fkind = failure_kind(twin.failure) or "failure"
        stage = "tcp" if twin.step == "connect" else kind
        return _v("inconclusive", stage, [f"{kind}/twin-failed:{where}", f"{stage}/{fkind}:{twin.failure}"])
    tool = [t for t in obs.trials if t.role in ("random", "initiation")]
    bad = next((t for t in tool if t.failure is not None), None)
    if bad is None:
        details = [f"{kind}/{t.detail}:{where}" for t in tool if t.detail not in ("", "echoed", "ok")]
        if kind == "wireguard" and any(t.detail == "unverifiable" for t in tool):
            return _v("ok", None, [f"{kind}/answered-unverified:{where}"])
        return _v("ok", None, [f"{kind}/ok:{where}", *details])
    if kind == "wireguard" and not obs.key:
        return _v("inconclusive", kind, [f"{kind}/no-key:{where}"])
    fkind = failure_kind(bad.failure) or "failure"
    what = "random" if bad.role == "random" else "initiation"
    outcome = {"timeout": "dropped", "reset": "reset", "eof": "reset", "refused": "reset"}.get(fkind, fkind)
    reasons = [f"{kind}/{what}-{outcome}:{where}"]
    if bad.step == "second":
        reasons.append(f"{kind}/first-echoed")
    verdict = {"dropped": "blocked", "reset": "reset"}.get(outcome, "inconclusive")
    if verdict == "inconclusive":
        return _v("inconclusive", kind, [*reasons, f"{kind}/unexpected:{bad.failure}"])
    after = _by_role(obs.trials, "followup")
    other = _by_role(obs.trials, "other-port")
    if after is not None and after.failure is None:
        return _v(verdict, kind, [*reasons, f"{kind}/twin-passed-after"])
    if other is not None and other.failure is None:
        return _v(verdict, kind, [*reasons, f"{kind}/residual:port={obs.port}"])
    return _v("inconclusive", kind, [*reasons, f"{kind}/followup-failed"])
