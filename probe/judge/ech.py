"""Judge the ECH test of a URL (``probe run --ech``): pure, from the hops and their controls.

Per address, the plain ClientHello and the one with a GREASE ECH extension (otherwise the same
bytes) are compared, and with the control's pair to the same address (``x_ech``, probe's
helper only):

- the plain hello went unanswered: ``ech/plain-<kind>`` (``inconclusive``: nothing to compare
  with; the web test says what happened to TLS there);
- both answered: ``ech/ok``;
- only the ECH hello went unanswered (reset, EOF, silence: twice, plain hellos answered in
  between) or got an answer that is no ServerHello, and the control's ECH hello got a
  ServerHello from the same address: ``tls/ech-blocked`` (``reset`` for a reset or an EOF,
  else ``blocked``), as Russia's TSPU did from November 2024 (to hellos naming cloudflare-ech.com);
- the control's ECH hello failed too: ``ech/rejected-everywhere`` (``down``: the server does not
  take such hellos, never interference);
- no control pair: ``inconclusive`` (``control/no-ech``): a server, or a firewall in front of it,
  may refuse such hellos for everyone, and only a control can tell.

``ech/residual`` notes that a plain hello sent after the ECH one went unanswered too: the
address stayed blocked for a while after the hello the censor disliked.
"""

from __future__ import annotations

from probe.core.model import Hop, Measurement, ProtocolVerdict, TLSHelloObservation
from probe.judge.classify.core import failure_kind
from probe.judge.protocol_hops import control_entry, judge_measurement

__all__ = ["CLASSIFIER_VERSION", "judge_ech"]

CLASSIFIER_VERSION = "ech-1"
_ORDER = {"reset": 0, "blocked": 1, "ok": 2, "down": 3, "inconclusive": 4}


def _what(h: TLSHelloObservation) -> str:
    """How a hello failed: the server's answer when there was one, else the failure's kind."""
    return h.answer if h.answer is not None else (failure_kind(h.failure) or "ok")


def _failed(failure: str | None) -> str:
    """The kind of a step the control reports as failed (``failed`` when it says no more)."""
    return failure_kind(failure) or "failed"


def _address(hop: Hop, ip: str, tries: list[TLSHelloObservation]) -> tuple[str, list[str]] | None:
    plains = [h for h in tries if not h.ech]
    echs = [h for h in tries if h.ech]
    if not any(h.failure is None for h in plains):
        what = _what(plains[-1]) if plains else "none"
        return None if what == "local" else ("inconclusive", [f"ech/plain-{what}:{ip}"])
    if not echs:
        return "inconclusive", [f"ech/not-sent:{ip}"]
    if any(h.failure is None for h in echs):
        return "ok", [f"ech/ok:{ip}"]
    what = _what(echs[-1])
    reasons = [f"ech/{what}:{ip}"]
    if what == "deadline":
        return "inconclusive", reasons  # cut by the URL's deadline: not an answer from the path
    if any(h.failure is not None for h in plains):
        reasons.append(f"ech/residual:{ip}")
    ce = control_entry(hop, ip, lambda c: c.ech, "control/no-ech")
    if isinstance(ce, str):
        return "inconclusive", [*reasons, ce]
    if not ce.plain_ok:
        return "inconclusive", [*reasons, f"control/plain-{_failed(ce.plain_failure)}"]
    if not ce.ech_ok:
        return "down", [*reasons, f"ech/rejected-everywhere:control-{_failed(ce.ech_failure)}"]
    verdict = "reset" if what in ("reset", "eof") else "blocked"
    return verdict, [*reasons, f"tls/ech-blocked:{what}"]


def judge_ech(m: Measurement) -> ProtocolVerdict:
    """The ECH verdict of ``m`` (measured with ``--ech``), with its reasons."""
    return judge_measurement(
        m, "ech", addresses=lambda hop: list(dict.fromkeys(h.ip for h in hop.ech)),
        judge=lambda hop, ip: _address(hop, ip, [h for h in hop.ech if h.ip == ip]),
        order=_ORDER, stage="tls", version=CLASSIFIER_VERSION, not_measured=":no-connection",
    )  # fmt: skip
