"""The messaging apps for people: per app, reachable or not, and which part (`probe messaging`'s
end, `probe results --suite messaging`, `probe compare`, the report's section).

An app is told in parts, the way its users meet it: Telegram's data centres and its web
client; WhatsApp's chat endpoints, its web client and its registration service; Signal's
services. A part is ``ok`` when every endpoint of it was reached, ``partly`` when some were,
and otherwise takes its endpoints' worst verdict (interference first, then down, then
inconclusive), with the stage where that was seen. Only the standard library.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from probe.core.model import INTERFERENCE_VERDICTS
from probe.inputs.endpointlists import MESSAGING_APPS
from probe.present.terminal import clean
from probe.present.text import wrap

if TYPE_CHECKING:
    from probe.inputs.endpointupdate import EndpointUpdate
    from probe.run.circumvention import SuiteSummary

__all__ = [
    "APP_NAMES",
    "AppPart",
    "app_lines",
    "app_parts",
    "app_state",
    "app_summary",
    "format_endpoint_update",
    "format_messaging_end",
    "part_of",
    "vantage_app_lines",
]

#: The apps as people write them, in the order they are shown.
APP_NAMES = {"telegram": "Telegram", "whatsapp": "WhatsApp", "signal": "Signal"}
# The part each kind measures (whatsapp-web rows are told apart by their name: web, registration).
_PARTS = {"telegram-dc": "data centres", "telegram-web": "web", "whatsapp": "chat endpoints",
          "signal": "services"}  # fmt: skip
_ORDER = ("data centres", "chat endpoints", "services", "web", "registration")


def part_of(kind: str, name: str) -> tuple[str, str]:
    """(app, part) of an endpoint of ``kind`` named ``name``."""
    return MESSAGING_APPS.get(kind, kind), _PARTS.get(kind, name)


@dataclass
class AppPart:
    """One part of an app at one vantage point: its endpoints' verdicts."""

    app: str
    part: str
    verdicts: Counter[str] = field(default_factory=Counter)
    stages: Counter[tuple[str, str]] = field(default_factory=Counter)  # (verdict, stage)

    @property
    def tried(self) -> int:
        return sum(self.verdicts.values())

    @property
    def ok(self) -> int:
        return self.verdicts["ok"]

    @property
    def state(self) -> str:
        """``ok``, ``partly`` (some endpoints reached) or the worst verdict of its endpoints."""
        if self.ok == self.tried:
            return "ok"
        worst = next((v for v in (*INTERFERENCE_VERDICTS, "down", "inconclusive") if self.verdicts[v]),
                     "inconclusive")  # fmt: skip
        if self.ok and worst not in INTERFERENCE_VERDICTS:
            return "partly"
        return worst

    @property
    def stage(self) -> str | None:
        """The stage its most frequent instance of :attr:`state` was seen at."""
        hits = [(n, s) for (v, s), n in self.stages.items() if v == self.state and s]
        return max(hits)[1] if hits else None

    def text(self) -> str:
        """``data centres: 10 of 12 reached, blocked at tcp`` (``web: ok`` for one endpoint)."""
        state = self.state
        detail = f"{state} at {self.stage}" if self.stage and state != "ok" else state
        if self.tried == 1:
            return f"{self.part}: {detail}"
        if state == "ok":
            return f"{self.part}: all {self.tried} reached"
        bad = sum(n for v, n in self.verdicts.items() if v in INTERFERENCE_VERDICTS)
        extra = f", {bad} {detail}" if bad and state in INTERFERENCE_VERDICTS else f", {detail}"
        return f"{self.part}: {self.ok} of {self.tried} reached{extra}"


def app_parts(rows: Iterable[Mapping[str, Any]]) -> dict[str, list[AppPart]]:
    """The parts of each app from endpoint results (dicts with kind, name, verdict, stage), the
    apps in :data:`APP_NAMES` order, each app's parts in the order people meet them."""
    parts: dict[tuple[str, str], AppPart] = {}
    for r in rows:
        if r["kind"] not in MESSAGING_APPS:
            continue
        app, part = part_of(r["kind"], r["name"])
        p = parts.setdefault((app, part), AppPart(app, part))
        p.verdicts[r["verdict"]] += 1
        p.stages[(r["verdict"], r["stage"] or "")] += 1
    out: dict[str, list[AppPart]] = {}
    for app in APP_NAMES:
        mine = [p for (a, _), p in parts.items() if a == app]
        if mine:
            out[app] = sorted(mine, key=lambda p: (_ORDER.index(p.part) if p.part in _ORDER else 99, p.part))
    return out


def app_state(parts: list[AppPart]) -> str:
    """One word for the whole app: ``reachable`` (every part ok), ``partly`` (some part has
    interference or failures but something works), ``blocked`` (interference and nothing
    reached), ``unreachable`` (nothing reached, no interference shown)."""
    if all(p.state == "ok" for p in parts):
        return "reachable"
    reached = any(p.ok for p in parts)
    interfered = any(p.state in INTERFERENCE_VERDICTS for p in parts)
    if reached:
        return "partly reachable"
    return "blocked" if interfered else "not reached"


def app_lines(rows: Iterable[Mapping[str, Any]], width: int = 80) -> Iterator[str]:
    """One paragraph per app: its state, then each part (wrapped to ``width``)."""
    for app, parts in app_parts(rows).items():
        line = f"{APP_NAMES[app]}: {app_state(parts)} ({'; '.join(p.text() for p in parts)})"
        yield from wrap(clean(line), width, "", "  ")


def format_messaging_end(summary: SuiteSummary, db: Path, width: int = 80) -> Iterator[str]:
    """The end of `probe messaging`: each app in a line or two, then the run and the database."""
    rows = [{"kind": obs.kind, "name": obs.name, "verdict": v.verdict, "stage": v.stage}
            for obs, _, v in summary.results]  # fmt: skip
    yield from app_lines(rows, width)
    counts = " / ".join(f"{k} {v}" for k, v in sorted(summary.counts.items()))
    yield from wrap(f"run {summary.run_id}: {len(summary.results)} endpoints: {counts or 'none'}; "
                    f"stored in {db} (probe results --suite messaging)", width, "", "  ")  # fmt: skip


def _by_vantage(rows: Iterable[Mapping[str, Any]]) -> dict[str, list[Mapping[str, Any]]]:
    out: dict[str, list[Mapping[str, Any]]] = {}
    for r in rows:
        if r["kind"] in MESSAGING_APPS:
            out.setdefault(str(r["vantage"]), []).append(r)
    return dict(sorted(out.items()))


def app_summary(rows: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, dict[str, Any]]]:
    """Per vantage point, per app: its state and each part's (`probe compare --json`, the
    report), from endpoint results that carry their ``vantage``."""
    return {vp: {app: {"state": app_state(parts),
                       "parts": {p.part: {"state": p.state, "stage": p.stage, "reached": p.ok,
                                          "tried": p.tried} for p in parts}}
                 for app, parts in app_parts(mine).items()}
            for vp, mine in _by_vantage(rows).items()}  # fmt: skip


def vantage_app_lines(rows: Iterable[Mapping[str, Any]], width: int = 80) -> Iterator[str]:
    """Each vantage point's apps (`probe compare`): the vantage point, then one paragraph per app."""
    by_vp = _by_vantage(rows)
    if not by_vp:
        return
    yield ""
    yield "Messaging apps per vantage point (newest verdict of each endpoint):"
    for vp, mine in by_vp.items():
        yield f"  {clean(vp)}:"
        for line in app_lines(mine, width - 4):
            yield f"    {line}"


def format_endpoint_update(u: EndpointUpdate, width: int = 80) -> Iterator[str]:
    """What `probe testlists update --endpoints-url` installed, in a line or two."""
    change = "" if u.before is None else f" (+{u.added}, -{u.removed})"
    yield from wrap(clean(f"messaging endpoints: {u.after}{change} from {u.source}, installed in "
                          f"{u.target} with {', '.join(u.files[1:]) or 'no CA file'}"), width, "", "  ")
