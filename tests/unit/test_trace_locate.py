"""`probe trace`'s pure parts: locating the link (probe/measure/trace.py), its words
(probe/present/trace.py) and the ICMP quotes scapy parses.

Each case is a path as data: per TTL, what the trigger and the control drew. A letter per
probe: ``e`` ICMP time exceeded from the router of that TTL, ``.`` nothing, ``r`` a reset,
``R`` a reset and the ICMP, ``f`` a FIN, ``F`` a FIN and the ICMP, ``s`` the server's answer,
``S`` an answer and the ICMP, ``x`` the connection failed. Routers are 10.0.0.TTL; the server is 192.0.2.10.
"""

from __future__ import annotations

import pytest
from scapy.layers.inet import ICMP, IP, TCP, UDP

from probe.measure.trace import Trace, TraceProbe, locate, parse_time_exceeded
from probe.present.trace import render_trace

_OUTCOME = {"e": "silent", ".": "silent", "r": "rst", "R": "rst", "f": "fin", "F": "fin",
            "s": "response", "S": "response", "x": "connect-failed"}  # fmt: skip


def _probes(trigger: str, control: str) -> list[TraceProbe]:
    out = []
    for i, (t, c) in enumerate(zip(trigger, control, strict=True), start=1):
        for name, ch in (("trigger", t), ("control", c)):
            router = f"10.0.0.{i}" if ch in "eRFS" else None
            out.append(TraceProbe(i, name, router, _OUTCOME[ch], 0.01, 5))
    return out


# (name, trigger, control, technique, (near, far) or None, censor_hop, placement)
CASES = [
    ("clean path", "eeees", "eeees", None, None, None, None),
    ("on-path FIN tap on the link into hop 3", "eeFFs", "eeees", "fin", (2, 3), 3, "on-path"),
    ("on-path RST, the server still answers", "eeRes", "eeees", "rst", (2, 3), 3, "on-path"),
    ("in-path reset in hop 3's forwarding", "eeerr", "eeees", "rst", (3, 4), 4, "in-path"),
    ("a block page injected from hop 3 on, the original goes on", "eeSSSs", "eeeees", "response",
     (2, 3), 3, "on-path"),
    ("a block page answered in place of the original from hop 3 on", "eessss", "eeeees",
     "response", (2, 3), 3, "in-path"),
    ("silent drop after hop 3", "eee..", "eeees", "drop", (3, 4), 4, "in-path"),
    ("silent drop after hop 1", "e....", "eeees", "drop", (1, 2), 2, "in-path"),
    ("silent drop past a hop without ICMP", "ee...", "ee.es", "drop", (2, 4), 4, "in-path"),
    ("one lost ICMP, then the trigger reaches the server", "ee.es", "eeees", None, None, None, None),
    ("the trigger's ICMP lost at one hop, the control's at another", "e.ees", "ee.es",
     None, None, None, None),
    ("a hop that never sends ICMP", "ee.es", "ee.es", None, None, None, None),
    ("only the server ignores the trigger", "eeee.", "eeees", "drop", (4, 5), None, None),
    ("only the server resets the trigger", "eeeer", "eeees", "rst", (4, 5), None, None),
    ("a difference from TTL 1: could be this machine", ".....", "eeees", "drop", (0, 1),
     None, None),
    ("a reset at TTL 1: could be this machine", "rrrrr", "eeees", "rst", (0, 1), None, None),
    ("server never answers either: one control ICMP past the silence is not enough",
     "ee.....", "eee....", None, None, None, None),
    ("server never answers either: two control ICMPs past the silence", "ee......",
     "eeee....", "drop", (2, 3), 3, "in-path"),
    ("the server resets both", "eeeerr", "eeeerr", None, None, None, None),
    ("nothing connects", "x", "x", None, None, None, None),
    ("a failed connect says nothing: the link moves past it, here to the server",
     "eee.x.", "eeeees", "drop", (3, 6), None, None),
]


@pytest.mark.parametrize(("trigger", "control", "technique", "link", "censor", "placement"),
                         [c[1:] for c in CASES], ids=[c[0] for c in CASES])  # fmt: skip
def test_locate(trigger: str, control: str, technique: str | None, link: tuple[int, int] | None,
                censor: int | None, placement: str | None) -> None:  # fmt: skip
    where = locate(_probes(trigger, control))
    assert where.technique == technique
    assert (None if where.link is None else (where.link.near, where.link.far)) == link
    assert (where.censor_hop, where.placement) == (censor, placement)
    if where.link is not None:
        near, far = where.link.near, where.link.far
        assert where.link.near_router == (f"10.0.0.{near}" if near else None)
        assert where.link.far_is_server == (control[far - 1] == "s")


def _trace(trigger: str, control: str) -> Trace:
    probes = _probes(trigger, control)
    w = locate(probes)
    return Trace("https://blocked.example/", "blocked.example", "example.org", "tls", "192.0.2.10",
                 443, 0.0, 1.5, tuple(probes), w.censor_hop, w.placement, w.server_hop, 42,
                 w.technique, w.link)  # fmt: skip


@pytest.mark.parametrize(("trigger", "control"), [c[1:3] for c in CASES], ids=[c[0] for c in CASES])
def test_every_trace_renders_within_80_columns(trigger: str, control: str) -> None:
    lines = list(render_trace(_trace(trigger, control), stored="; stored as trace 12 in /x/y.db"))
    assert all(len(line) <= 80 for line in lines), "\n".join(lines)
    assert lines[-1].startswith("42 packets sent in 1.50 s")


def _words(trigger: str, control: str) -> str:
    return " ".join(" ".join(render_trace(_trace(trigger, control))).split())


def test_a_dropper_is_named_by_its_link_with_the_rule() -> None:
    text = _words("eee..", "eeees")
    assert "Censor between hop 3 (10.0.0.3) and hop 4 (10.0.0.4), in-path: it silently drops" in text
    assert "only with TTL N+1 does it travel past hop N" in text
    assert "inside hop 3 (after routing), on the link from hop 3 to hop 4" in text


def test_a_link_over_silent_hops_says_so() -> None:
    text = _words("ee...", "ee.es")
    assert "between hop 2 (10.0.0.2) and hop 4 (10.0.0.4)" in text
    assert "The trigger drew no answer from hop 3 that would place the device more" in text


def test_a_difference_at_the_server_names_no_censor() -> None:
    text = _words("eeee.", "eeees")
    assert "between hop 4 (10.0.0.4) and hop 5, the server (192.0.2.10)" in text
    assert "No censor is named" in text and "Censor between" not in text


def test_a_difference_from_the_first_hop_names_no_censor() -> None:
    text = _words(".....", "eeees")
    assert "between this machine and hop 1 (10.0.0.1)" in text
    assert "No censor is named" in text and "firewall" in text


def test_no_difference_says_so() -> None:
    assert "No difference" in _words("eeees", "eeees")


# --- ICMP quotes, parsed by scapy ---------------------------------------------------------
def _expired(inner: bytes, icmp_type: int = 11) -> bytes:
    return bytes(IP(src="10.0.0.3", dst="10.0.0.99") / ICMP(type=icmp_type, code=0) / inner)


TRIGGER = bytes(IP(src="10.0.0.99", dst="192.0.2.10", ttl=1) / TCP(sport=40000, dport=443, flags="PA")
                / (b"\x16\x03\x01" + b"x" * 200))  # fmt: skip


def test_a_full_quote_names_router_and_flow() -> None:
    q = parse_time_exceeded(_expired(TRIGGER))
    assert q is not None and (q.router, q.sport, q.dst, q.dport) == ("10.0.0.3", 40000, "192.0.2.10", 443)


def test_an_eight_byte_quote_is_enough() -> None:
    q = parse_time_exceeded(_expired(TRIGGER[:28]))  # RFC 792: the IP header and 8 bytes
    assert q is not None and (q.sport, q.dport) == (40000, 443)


@pytest.mark.parametrize("data", [
    _expired(TRIGGER, icmp_type=3),  # unreachable, not time exceeded
    _expired(bytes(IP(src="10.0.0.99", dst="192.0.2.10") / UDP(sport=40000, dport=53))),
    _expired(TRIGGER[:22]),  # the quote is cut inside the ports
    _expired(TRIGGER[:12]),  # not even the quoted IP header
    b"", b"\x45", b"\xff" * 60,
])
def test_anything_else_is_no_quote(data: bytes) -> None:
    assert parse_time_exceeded(data) is None
