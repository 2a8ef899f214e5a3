"""Judge the QUIC test of a URL (``probe run --quic``): pure, from the hops and their controls.

Per address of an https hop, the probe's QUIC handshakes with the site's name are compared with
the decoy handshake (a harmless name, same address), with the TCP/TLS test of that address and
with the control's QUIC handshake to it (``quic_handshake``):

- a handshake with the site's name completed and the HTTP/3 GET over it got an answer (or none
  was made): ``quic/ok``; the GET got none (``quic/handshake-ok`` and ``quic/h3-<kind>``):
  ``quic/h3-blocked`` (``blocked``) when the control's HTTP/3 request (``http3_request``) got
  an answer, ``quic/h3-failed-everywhere`` (``down``) when it failed too, ``inconclusive``
  (``control/no-http3``) without one;
- the control could not do QUIC there either: ``quic/unsupported`` (``down``: the site, or that
  address, has no HTTP/3; never interference);
- the control did QUIC there, and
  - the decoy completed: ``quic/sni-filtered`` (``blocked``: only the name fails, as with the
    GFW's rule of 2024, Zohaib et al., USENIX Security 2025);
  - the decoy failed too while TCP and TLS to the address work: ``quic/udp-blocked`` (``blocked``:
    QUIC to the address is blocked whatever the name, UDP endpoint blocking);
  - the decoy failed and TCP failed too: ``quic/address-blocked`` (``blocked``);
  - no decoy was tried: ``quic/no-decoy:control-ok`` (``inconclusive``: the probe always tries
    one, so only a measurement cut short or made without one lacks it);
- no control answer for that address: ``inconclusive`` with ``control/no-quic`` (OONI's
  helpers answer only when they do QUIC) or ``control/unavailable``;
- a handshake cut by the URL's deadline (``quic/deadline``) is no answer from the path:
  ``inconclusive``.

Failures of the probe's own network (no IPv6 route) say nothing and are left out. An address
that works decides for the hop (a browser gets the page over HTTP/3); a blocked hop decides for
the URL; otherwise the last hop's verdict (the final page's origin) does.
"""

from __future__ import annotations

from probe.core.model import Hop, Measurement, ProtocolVerdict, QUICObservation
from probe.judge.classify.core import failure_kind
from probe.judge.protocol_hops import control_entry, judge_measurement

__all__ = ["CLASSIFIER_VERSION", "judge_quic"]

CLASSIFIER_VERSION = "quic-1"
_ORDER = {"blocked": 0, "ok": 1, "down": 2, "inconclusive": 3}


def _kind(failure: str | None) -> str:
    return failure_kind(failure) or "ok"


def _address(hop: Hop, ip: str, tries: list[QUICObservation]) -> tuple[str, list[str]] | None:
    """(verdict, reasons) for one address; None when only the probe's own network failed."""
    done = [q for q in tries if q.failure is None]
    if done:
        return _request(hop, ip, done)
    kind = _kind(tries[-1].failure)
    if kind == "local":
        return None
    reasons = [f"quic/{kind}:{ip}"]
    decoy = next((d for d in hop.decoy_quic if d.ip == ip), None)
    if decoy is not None:
        reasons.append(f"quic/decoy-{_kind(decoy.failure)}:{decoy.sni}")
    if "deadline" in (kind, _kind(decoy.failure if decoy else None)):
        return "inconclusive", reasons  # cut by the URL's deadline: not an answer from the path
    cq = control_entry(hop, ip, lambda c: c.quic, "control/no-quic")
    if isinstance(cq, str):
        return "inconclusive", [*reasons, cq]
    if not cq.ok:
        return "down", [*reasons, f"quic/unsupported:control-{failure_kind(cq.failure) or 'failed'}"]
    if decoy is None:  # none tried (the helper's own test): name or address, nobody can say
        return "inconclusive", [*reasons, "quic/no-decoy:control-ok"]
    if decoy.failure is None:
        return "blocked", [*reasons, f"quic/sni-filtered:decoy={decoy.sni}"]
    tcp_ok = any(t.ip == ip and t.failure is None for t in hop.tcp)
    tls_ok = any(t.ip == ip and (t.failure is None or t.cert_valid is False) for t in hop.tls)
    if tcp_ok and tls_ok:
        return "blocked", [*reasons, "quic/udp-blocked"]
    if not tcp_ok:
        return "blocked", [*reasons, "quic/address-blocked"]
    return "blocked", [*reasons, "quic/udp-blocked:tls-failed-too"]


def _request(hop: Hop, ip: str, done: list[QUICObservation]) -> tuple[str, list[str]]:
    """After a handshake that completed: what became of the HTTP/3 GET over it."""
    answered = next((q for q in done if q.h3_status is not None), None)
    if answered is not None or not any(q.h3_failure for q in done):
        return "ok", [f"quic/ok:{ip}"]
    kind = _kind(next(q.h3_failure for q in done if q.h3_failure))
    reasons = [f"quic/handshake-ok:{ip}", f"quic/h3-{kind}:{ip}"]
    if kind in ("deadline", "local"):
        return "inconclusive", reasons
    ctl = hop.control
    if ctl is None or ctl.failure is not None:
        return "inconclusive", [*reasons, "control/unavailable"]
    if ctl.http3_status is None and ctl.http3_failure is None:
        return "inconclusive", [*reasons, "control/no-http3"]
    if ctl.http3_status is None:
        return "down", [*reasons, f"quic/h3-failed-everywhere:control-{_kind(ctl.http3_failure)}"]
    return "blocked", [*reasons, "quic/h3-blocked"]


def judge_quic(m: Measurement) -> ProtocolVerdict:
    """The QUIC verdict of ``m`` (measured with ``--quic``), with its reasons."""
    return judge_measurement(
        m, "quic", addresses=lambda hop: list(dict.fromkeys(q.ip for q in hop.quic)),
        judge=lambda hop, ip: _address(hop, ip, [q for q in hop.quic if q.ip == ip]),
        order=_ORDER, stage="quic", version=CLASSIFIER_VERSION, not_measured="",
    )  # fmt: skip
