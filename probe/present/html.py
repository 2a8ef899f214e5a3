"""`probe report`: one self-contained HTML file with the results of one or many vantage points.

The file opens offline: styles are inline, plots are inline SVG drawn here, there is no
script, and a Content-Security-Policy forbids every fetch (no fonts, images or scripts from
anywhere). Sections:

1. a summary per vantage point (network, runs, last measurement, latest verdict counts);
2. a heatmap of URLs x vantage points coloured by each one's latest verdict: the URLs with
   interference somewhere (by how many vantage points see it), and apart from them, folded,
   the URLs only down or inconclusive (not censorship);
3. changes over time in both directions: what each vantage point's latest run changed, as
   `probe diff` lists it (newly blocked, unblocked, technique changed, unclear), and a
   timeline of verdict changes per URL and vantage point (unblockings included);
4. the technique mix per vantage point (which verdict at which stage: DNS hijack, TLS reset...),
   each technique in one fixed colour, the same in every report, with a legend;
5. circumvention endpoints (`probe circumvention`: Tor relays, OpenVPN, VPN endpoints), then
   encrypted DNS and VPN protocols (DoH, DoT, fully encrypted traffic, WireGuard): each
   one's newest verdict per vantage point, and how many of each kind each reached; the
   messaging apps (`probe messaging`): each app per vantage point, reachable or not and
   which part, then its endpoints; then the opt-in QUIC and ECH tests (`probe run --quic
   --ech`): each test's verdict counts per vantage point and the URLs whose latest verdict
   is not ok somewhere;
6. outages and national isolation (`probe outages`): the intervals per vantage point;
7. the evidence of each non-ok URL: the decisive reason in words, and for the first ones the
   whole `probe show` evidence.

Memory stays bounded however large the database: every section reads what it draws with one
SQL query over the `latest` bookkeeping or over a bounded set of URLs, and each section is
capped (the caps are in :class:`ReportLimits` and the report says what it left out).
"""

from __future__ import annotations

import calendar
import html
import json
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TextIO

from probe.core.model import INTERFERENCE_VERDICTS
from probe.core.net import format_endpoint
from probe.inputs.endpointlists import MESSAGING_APPS
from probe.judge.explain import decisive, explain
from probe.present.circumvention import TUNNEL_KINDS, EndpointMatrix, explain_endpoint_reason
from probe.present.evidence import EvidenceError, evidence, render_text
from probe.present.messaging import APP_NAMES, app_summary
from probe.present.terminal import clean_lines
from probe.present.text import plural
from probe.research.compare import CHANGE_KINDS, Change, diff_states, state_of_run
from probe.research.outages import isolation, outages, run_stats
from probe.store.circumvention import latest_endpoints
from probe.store.overview import (
    NonOk,
    final_history,
    interference_mix,
    latest_of_urls,
    latest_verdict_counts,
    non_ok_count,
    non_ok_latest,
    urls_not_ok,
    vantage_overview,
)
from probe.store.protocols import latest_protocol_verdicts, protocol_summary

if TYPE_CHECKING:
    from probe.store import Store

__all__ = ["COLOURS", "TECHNIQUE_COLOURS", "ReportLimits", "write_report"]

VERDICT_ORDER = (*INTERFERENCE_VERDICTS, "down", "inconclusive", "ok")
INTERFERENCE = INTERFERENCE_VERDICTS
#: Verdict colours, chosen to stay distinct for the common colour-vision deficiencies.
COLOURS = {"ok": "#4caf50", "blocked": "#d32f2f", "reset": "#f57c00", "hijacked": "#7b1fa2",
           "throttled": "#c2185b", "down": "#9e9e9e", "inconclusive": "#64b5f6", None: "#eeeeee"}
_STAGE_WORDS = {"dns": "DNS", "tcp": "TCP", "tls": "TLS", "http": "HTTP"}
# One shade per stage (DNS, TCP, TLS, HTTP: dark to light) of each verdict's own hue.
_SHADES = {"hijacked": ("#4a148c", "#7b1fa2", "#ab47bc", "#ce93d8"),
           "reset": ("#bf360c", "#e65100", "#fb8c00", "#ffb74d"),
           "blocked": ("#7f0000", "#c62828", "#e53935", "#ef9a9a"),
           "throttled": ("#880e4f", "#c2185b", "#ec407a", "#f48fb1")}
#: The colour of each technique ("verdict at STAGE"), fixed: the same in every report, whatever
#: else the report shows. A stage not recorded takes the verdict's colour.
TECHNIQUE_COLOURS = {f"{v} at {_STAGE_WORDS[st]}": shade
                     for v, shades in _SHADES.items()
                     for st, shade in zip(_STAGE_WORDS, shades, strict=True)}


@dataclass(frozen=True)
class ReportLimits:
    """Caps that keep the file readable (and its size bounded) on big databases."""

    heatmap_urls: int = 150
    quiet_urls: int = 100  # URLs only down or inconclusive: their own, folded heatmap
    timeline_rows: int = 60
    change_rows: int = 200  # changes of the latest runs listed (`probe diff`)
    evidence_rows: int = 2000
    evidence_details: int = 100
    endpoint_rows: int = 300
    outage_rows: int = 500


def _colour(verdict: str | None) -> str:
    return COLOURS.get(verdict, COLOURS[None])


def _e(text: object) -> str:
    # HTML-escaped, after the terminal sanitizer: control characters and bidirectional
    # overrides are shown as escapes in the page as they are on the terminal.
    return html.escape(clean_lines("" if text is None else text), quote=True)


def _ago(iso: str | None) -> str:
    return "-" if not iso else iso[:16].replace("T", " ") + " UTC"


def _vantage_summary(store: Store, vantages: list[str] | None) -> list[dict[str, Any]]:
    counts: dict[int, Counter[str]] = defaultdict(Counter)
    for c in latest_verdict_counts(store):
        counts[c.vantage_id][c.verdict] = c.n
    return [{"id": r.id, "name": r.name, "asn": r.asn, "as_org": r.as_org, "country": r.country,
             "network": r.network, "runs": r.runs, "last": r.last,
             "counts": counts.get(r.id, Counter())}
            for r in vantage_overview(store, vantages)]  # fmt: skip


def _interesting_urls(store: Store, vids: list[int], limit: int, quiet_limit: int
                      ) -> tuple[list[str], int, list[str], int]:
    """URLs with interference at some vantage point (most interference first) and how many;
    then, apart, the URLs whose latest verdict is not ok somewhere but never interference
    (down or inconclusive: not censorship) and how many."""
    rows = urls_not_ok(store, vids)
    loud = [r.url for r in rows if r.interference]
    quiet = [r.url for r in rows if not r.interference]
    return loud[:limit], len(loud), quiet[:quiet_limit], len(quiet)


def _latest_cells(store: Store, urls: list[str], vids: list[int]) -> dict[tuple[str, int], tuple[str, int]]:
    return {(r.url, r.vantage_id): (r.verdict, r.measurement_id)
            for r in latest_of_urls(store, urls) if r.vantage_id in vids}


def _svg_heatmap(urls: list[str], vps: list[dict[str, Any]],
                 cells: dict[tuple[str, int], tuple[str, int]], svg_id: str = "heatmap") -> str:
    cw, ch, label = 26, 16, 330
    head = 110
    width = label + cw * len(vps) + 10
    height = head + ch * len(urls) + 10
    out = [f'<svg id="{svg_id}" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" role="img" aria-label="URLs by vantage point">']
    for j, vp in enumerate(vps):
        x = label + j * cw + cw // 2
        out.append(f'<text class="vp" x="{x}" y="{head - 6}" transform="rotate(-60 {x} {head - 6})">'
                   f'{_e(vp["name"][:18])}</text>')
    for i, url in enumerate(urls):
        y = head + i * ch
        short = url if len(url) <= 52 else url[:51] + "…"
        out.append(f'<text class="url" x="{label - 6}" y="{y + ch - 4}" text-anchor="end">'
                   f'<title>{_e(url)}</title>{_e(short)}</text>')
        for j, vp in enumerate(vps):
            got = cells.get((url, vp["id"]))
            verdict, mid = got if got else (None, 0)
            rect = (f'<rect class="cell v-{verdict or "none"}" data-url="{_e(url)}" '
                    f'data-vantage="{_e(vp["name"])}" x="{label + j * cw + 1}" y="{y + 1}" '
                    f'width="{cw - 2}" height="{ch - 2}" fill="{_colour(verdict)}">'
                    f'<title>{_e(url)} at {_e(vp["name"])}: {verdict or "not measured"}</title></rect>')
            out.append(f'<a href="#m{mid}">{rect}</a>' if verdict and verdict != "ok" else rect)
    out.append("</svg>")
    return "".join(out)


def _timelines(store: Store, urls: list[str], vps: list[dict[str, Any]], limit: int,
               first: frozenset[tuple[str, str]] = frozenset(),
               ) -> list[tuple[str, str, list[tuple[str, str]]]]:
    """(url, vantage, [(measured_at, verdict) at each change]) for pairs whose verdict changed;
    the (url, vantage) pairs in ``first`` (what the latest runs changed) come first."""
    names = {vp["id"]: vp["name"] for vp in vps}
    series: dict[tuple[str, int], list[tuple[str, str]]] = defaultdict(list)
    for r in final_history(store, urls):
        if r.vantage_id not in names:
            continue
        s = series[(r.url, r.vantage_id)]
        if not s or s[-1][1] != r.verdict:
            s.append((r.measured_at, r.verdict))
    changed = [(url, names[vid], s) for (url, vid), s in series.items() if len(s) > 1]
    changed.sort(key=lambda x: ((x[0], x[1]) not in first, -len(x[2]), x[0], x[1]))
    return changed[:limit]


def _latest_changes(store: Store, vps: list[dict[str, Any]]) -> list[tuple[str, str, list[Change]]]:
    """Per vantage point with two runs: ``probe diff``'s title and changes between its latest
    run and the one before (the same functions: the report and the command agree)."""
    out = []
    for vp in vps:
        later = store.latest_run_id(vp["name"])
        earlier = None if later is None else store.previous_run(vp["id"], later)
        if later is None or earlier is None:
            continue
        changes = diff_states(state_of_run(store, earlier), state_of_run(store, later))
        out.append((vp["name"], f"run {earlier} -> run {later}", changes))
    return out


def _changes_table(latest: list[tuple[str, str, list[Change]]], limit: int) -> str:
    if not latest:
        return '<p class="empty">No vantage point has two runs to compare yet.</p>'
    out = ["<ul>"]
    for name, runs, changes in latest:
        counts = Counter(c.kind for c in changes)
        out.append(f"<li>{_e(name)}, {_e(runs)}: " + ", ".join(
            f"{counts[k]} {k.replace('_', ' ')}" for k in CHANGE_KINDS) + "</li>")
    out.append("</ul>")
    rows = [(name, c) for name, _, changes in latest for c in changes]
    if not rows:
        return "".join(out) + '<p class="empty">Nothing changed in the latest runs.</p>'
    more = f" The first {limit} are listed (<code>probe diff</code> lists all)." if len(rows) > limit else ""
    out.append(f"<p>{plural(len(rows), 'change')}.{more}</p>")
    out.append('<table id="changes"><thead><tr><th>vantage point</th><th>change</th><th>URL</th>'
               "<th>before</th><th>after</th></tr></thead><tbody>")
    for name, c in rows[:limit]:
        sides = "".join(f'<td class="v-{_e(x.verdict)}">{_e(x.technique)} ({_ago(x.measured_at)})</td>'
                        for x in (c.before, c.after))
        out.append(f'<tr data-change="{c.kind}"><td>{_e(name)}</td><td>{c.kind.replace("_", " ")}</td>'
                   f"<td>{_e(c.url)}</td>{sides}</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def _epoch(iso: str) -> float:
    return calendar.timegm(time.strptime(iso[:19], "%Y-%m-%dT%H:%M:%S"))


def _svg_timeline(rows: list[tuple[str, str, list[tuple[str, str]]]], t_end: str) -> str:
    if not rows:
        return '<p class="empty">No URL changed its verdict at any vantage point.</p>'
    label, plot, rh = 420, 560, 16
    t0 = min(_epoch(s[0][0]) for _, _, s in rows)
    t1 = max(_epoch(t_end), t0 + 1)
    t1 += (t1 - t0) * 0.08  # room after the last change, so that the latest state shows
    height = 30 + rh * len(rows) + 24
    width = label + plot + 20
    out = [f'<svg id="timeline" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" role="img" aria-label="verdict changes over time">']

    def x(t: float) -> float:
        return label + plot * (t - t0) / (t1 - t0)

    for i, (url, vantage, series) in enumerate(rows):
        y = 20 + i * rh
        name = f"{url} @ {vantage}"
        short = name if len(name) <= 64 else name[:63] + "…"
        out.append(f'<text class="url" x="{label - 6}" y="{y + rh - 4}" text-anchor="end">'
                   f'<title>{_e(name)}</title>{_e(short)}</text>')
        for k, (at, verdict) in enumerate(series):
            start = x(_epoch(at))
            end = x(_epoch(series[k + 1][0])) if k + 1 < len(series) else x(t1)
            out.append(f'<rect class="seg v-{verdict}" x="{start:.1f}" y="{y + 2}" '
                       f'width="{max(end - start, 1.5):.1f}" height="{rh - 4}" fill="{_colour(verdict)}">'
                       f'<title>{_e(name)}: {verdict} from {_ago(at)}</title></rect>')
    y = 20 + len(rows) * rh + 14
    for frac in (0.0, 0.5, 1.0):
        t = t0 + frac * (t1 - t0)
        stamp = time.strftime("%Y-%m-%d %H:%M", time.gmtime(t)) + " UTC"
        anchor = ("start", "middle", "end")[int(frac * 2)]
        out.append(f'<text class="axis" x="{x(t):.1f}" y="{y}" text-anchor="{anchor}">{stamp}</text>')
    out.append("</svg>")
    return "".join(out)


def _techniques(store: Store, vids: list[int]) -> dict[int, Counter[str]]:
    out: dict[int, Counter[str]] = defaultdict(Counter)
    for r in interference_mix(store, vids):
        out[r.vantage_id][f"{r.verdict} at {_STAGE_WORDS.get(r.stage or '', r.stage or '?')}"] += r.n
    return out


def _svg_techniques(vps: list[dict[str, Any]], mix: dict[int, Counter[str]]) -> str:
    kinds = sorted({k for c in mix.values() for k in c}, key=lambda k: (VERDICT_ORDER.index(k.split()[0]), k))
    if not kinds:
        return '<p class="empty">No interference seen.</p>'
    colour = {k: TECHNIQUE_COLOURS.get(k, COLOURS.get(k.split()[0], COLOURS[None])) for k in kinds}
    label, plot, rh = 160, 600, 22
    height = 10 + rh * len(vps) + 30 + 18 * ((len(kinds) + 3) // 4)
    width = label + plot + 80
    out = [f'<svg id="techniques" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" role="img" aria-label="technique mix per vantage point">']
    for i, vp in enumerate(vps):
        y = 10 + i * rh
        c = mix.get(vp["id"], Counter())
        total = sum(c.values())
        out.append(f'<text class="vp" x="{label - 6}" y="{y + rh - 7}" text-anchor="end">'
                   f'{_e(vp["name"])}</text>')
        x = float(label)
        for k in kinds:
            if not c[k]:
                continue
            w = plot * c[k] / total
            out.append(f'<rect class="tech" data-vantage="{_e(vp["name"])}" data-technique="{_e(k)}" '
                       f'data-n="{c[k]}" x="{x:.1f}" y="{y + 2}" width="{w:.1f}" height="{rh - 6}" '
                       f'fill="{colour[k]}"><title>{_e(vp["name"])}: {_e(k)} {c[k]} '
                       f'({100 * c[k] / total:.0f}%)</title></rect>')
            x += w
        out.append(f'<text class="n" x="{label + plot + 6}" y="{y + rh - 7}">{total}</text>')
    y0 = 10 + rh * len(vps) + 16
    for i, k in enumerate(kinds):
        lx, ly = label + (i % 4) * 150, y0 + (i // 4) * 18
        out.append(f'<rect x="{lx}" y="{ly - 10}" width="12" height="12" fill="{colour[k]}"/>'
                   f'<text class="legend" x="{lx + 16}" y="{ly}">{_e(k)}</text>')
    out.append("</svg>")
    return "".join(out)


def _non_ok(store: Store, vids: list[int], limit: int) -> tuple[list[NonOk], int]:
    return non_ok_latest(store, vids, VERDICT_ORDER, limit), non_ok_count(store, vids)


_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0 auto;max-width:1180px;
padding:0 18px 40px;color:#222}
h1{font-size:24px;margin:24px 0 4px}h2{font-size:19px;margin:34px 0 8px;border-bottom:1px solid #ddd}
.meta{color:#666}table{border-collapse:collapse;margin:8px 0}
td,th{padding:3px 8px;border-bottom:1px solid #eee;text-align:left;vertical-align:top}
th{background:#fafafa}td.n{text-align:right;font-variant-numeric:tabular-nums}
.legend-row span{display:inline-block;margin-right:14px}.sw{display:inline-block;width:12px;height:12px;
vertical-align:-1px;margin-right:4px;border-radius:2px}svg text{font:11px system-ui,sans-serif;fill:#333}
svg text.vp{font-weight:600}svg text.axis{fill:#666}.scroll{overflow-x:auto}
pre{background:#f7f7f7;padding:8px;overflow-x:auto;font-size:12px;line-height:1.35}
details summary{cursor:pointer}.verdict{font-weight:600}.empty{color:#666;font-style:italic}
"""


def _legend() -> str:
    return '<p class="legend-row">' + "".join(
        f'<span><i class="sw" style="background:{COLOURS[v]}"></i>{v}</span>' for v in VERDICT_ORDER
    ) + f'<span><i class="sw" style="background:{COLOURS[None]}"></i>not measured</span></p>'


def _group(kind: str) -> str:
    """The report's section of an endpoint kind: messaging, tunnels or endpoints."""
    return "messaging" if kind in MESSAGING_APPS else "tunnels" if kind in TUNNEL_KINDS else "endpoints"


# Per section: the ids of its two tables, what it is called when empty, the command measuring it.
_GROUPS = {
    "endpoints": ("endpoints", "endpoint-matrix", "circumvention endpoints", "probe circumvention"),
    "tunnels": ("tunnels", "tunnel-matrix", "encrypted DNS resolvers or VPN protocols",
                "probe circumvention"),
    "messaging": ("messaging", "messaging-matrix", "messaging apps", "probe messaging"),
}


def _apps_table(names: list[str], latest: list[dict[str, Any]]) -> str:
    """Per vantage point and app: reachable or not, and which part (the messaging section)."""
    states = app_summary(latest)
    apps = [a for a in APP_NAMES if any(a in states.get(n, {}) for n in names)]
    out = ['<table id="apps"><thead><tr><th>vantage point</th>'
           + "".join(f"<th>{_e(APP_NAMES[a])}</th>" for a in apps) + "</tr></thead><tbody>"]
    for n in names:
        tds = []
        for a in apps:
            app = states.get(n, {}).get(a)
            if app is None:
                tds.append("<td>-</td>")
                continue
            parts = "; ".join(f"{p}: {v['state']}" + (f" at {v['stage']}" if v["stage"] and v["state"] != "ok"
                                                       else "") + f" ({v['reached']}/{v['tried']})"
                              for p, v in app["parts"].items())  # fmt: skip
            worst = next((v["state"] for v in app["parts"].values() if v["state"] in INTERFERENCE), None)
            colour = _colour(worst or ("ok" if app["state"] == "reachable" else "inconclusive"))
            tds.append(f'<td style="color:{colour}"><b>{_e(app["state"])}</b><br>{_e(parts)}</td>')
        out.append(f"<tr><td>{_e(n)}</td>{''.join(tds)}</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def _endpoints_section(vps: list[dict[str, Any]], latest: list[dict[str, Any]], limit: int, *,
                       group: str = "endpoints") -> tuple[str, int]:
    """An endpoint section (HTML) and how many endpoints it covers, from ``latest`` (the newest
    result of every endpoint at every vantage point): Tor, OpenVPN and VPN endpoints
    (``endpoints``), encrypted DNS resolvers and the reflector kinds (``tunnels``), or the
    messaging apps' endpoints (``messaging``), preceded by each app per vantage point."""
    names = [vp["name"] for vp in vps]
    mine = [r for r in latest if _group(r["kind"]) == group]
    matrix = EndpointMatrix.from_latest(mine, names)
    table_id, matrix_id, what, command = _GROUPS[group]
    ids = (table_id, matrix_id)
    if not matrix.rows:
        return f'<p class="empty">No {what} measured (<code>{command}</code>).</p>', 0

    def badness(item: tuple[tuple[str, str, str, int], dict[str, dict[str, Any]]]) -> tuple[int, int]:
        cells = item[1].values()
        return (-sum(c["verdict"] in INTERFERENCE for c in cells), -sum(c["verdict"] != "ok" for c in cells))

    rows = sorted(matrix.rows.items(), key=lambda kv: (badness(kv), kv[0]))
    lead = ("<p>Whether the tools people use to get around censorship connect from each vantage "
            "point: each endpoint's newest verdict (the reasons are in the cell's tooltip).</p>")
    if group == "messaging":
        lead = _apps_table(names, mine) + ("<p>Each app's endpoints, newest verdict per vantage "
                                           "point (the reasons are in the cell's tooltip).</p>")
        ids = ("messaging-kinds", matrix_id)
    out = [lead, f'<table id="{ids[0]}"><thead><tr><th>vantage point</th>'
           + "".join(f"<th>{_e(k)}</th>" for k in sorted({key[0] for key in matrix.rows}))
           + "</tr></thead><tbody>"]
    summary = matrix.summary()
    kinds = sorted({key[0] for key in matrix.rows})
    for name in names:
        reach = []
        for k in kinds:
            counts = summary.get(name, {}).get(k)
            reach.append("<td>-</td>" if not counts else
                         f'<td class="n">{counts.get("ok", 0)} / {counts["tried"]} reached</td>')
        out.append(f"<tr><td>{_e(name)}</td>{''.join(reach)}</tr>")
    out.append("</tbody></table>")
    more = f" The {limit} with the most interference are shown." if len(rows) > limit else ""
    out.append(f"<p>{plural(len(rows), 'endpoint')}.{more}</p>")
    out.append(f'<div class="scroll"><table id="{ids[1]}"><thead><tr><th>endpoint</th><th>kind</th>'
               "<th>address</th>" + "".join(f"<th>{_e(n)}</th>" for n in names) + "</tr></thead><tbody>")
    for (kind, ep_name, address, port), by_vp in rows[:limit]:
        tds = []
        for n in names:
            c = by_vp.get(n)
            if c is None:
                tds.append("<td>-</td>")
                continue
            why = "; ".join(f"{r}: {explain_endpoint_reason(r, kind)}" for r in c["reasons"])
            text = c["verdict"] + (f"/{c['stage']}" if c["stage"] and c["verdict"] != "ok" else "")
            tds.append(f'<td class="v-{_e(c["verdict"])}" style="color:{_colour(c["verdict"])}" '
                       f'title="{_e(why)}">{_e(text)}</td>')
        where = format_endpoint(address, port)
        out.append(f"<tr><td>{_e(ep_name)}</td><td>{_e(kind)}</td><td>{_e(where)}</td>{''.join(tds)}</tr>")
    out.append("</tbody></table></div>")
    return "".join(out), len(rows)


_SUITE_TITLES = {"quic": "QUIC (HTTP/3)", "ech": "Encrypted Client Hello"}


def _protocols_section(store: Store, names: list[str], limit: int) -> tuple[str, int]:
    """The QUIC and ECH section (HTML): verdict counts per vantage point, then the URLs whose
    latest QUIC or ECH verdict is not ok somewhere; and how many such URLs there are."""
    out: list[str] = []
    shown_total = 0
    for suite, title in _SUITE_TITLES.items():
        counts, urls, n_bad = protocol_summary(store, suite, names, limit)
        if not counts:
            continue
        shown_total += n_bad
        out.append(f"<h3>{_e(title)}</h3><table id=\"{suite}-summary\"><thead><tr><th>vantage point</th>"
                   + "".join(f'<th><i class="sw" style="background:{COLOURS[v]}"></i>{v}</th>'
                             for v in VERDICT_ORDER) + "</tr></thead><tbody>")
        for name in names:
            c = counts.get(name, {})
            out.append(f"<tr><td>{_e(name)}</td>"
                       + "".join(f'<td class="n v-{v}">{c.get(v, 0)}</td>' for v in VERDICT_ORDER)
                       + "</tr>")
        out.append("</tbody></table>")
        if not urls:
            out.append(f'<p class="empty">Every URL measured with --{suite} is ok everywhere.</p>')
            continue
        more = f" The {len(urls)} with the most interference are shown." if n_bad > len(urls) else ""
        out.append(f"<p>{n_bad} URLs whose {_e(title)} verdict is not ok somewhere (the reasons are "
                   f"in each cell's tooltip).{more}</p>")
        out.append(f'<div class="scroll"><table id="{suite}-matrix"><thead><tr><th>URL</th>'
                   + "".join(f"<th>{_e(n)}</th>" for n in names) + "</tr></thead><tbody>")
        cells = {(r.url, r.vantage): r for r in latest_protocol_verdicts(store, suite, names, urls=urls)}
        for url in urls:
            tds = []
            for n in names:
                r = cells.get((url, n))
                if r is None:
                    tds.append("<td>-</td>")
                    continue
                why = "; ".join(explain(x) for x in r.reasons)
                tds.append(f'<td class="v-{_e(r.verdict)}" style="color:{_colour(r.verdict)}" '
                           f'title="{_e(why)}">{_e(r.verdict)}</td>')
            out.append(f"<tr><td>{_e(url)}</td>{''.join(tds)}</tr>")
        out.append("</tbody></table></div>")
    if not out:
        return ('<p class="empty">No URL measured with the QUIC or ECH test (<code>probe run '
                "--quic --ech</code>).</p>"), 0
    return ("<p>The opt-in tests of each https site (docs/protocols.md): HTTP/3 over QUIC with "
            "the site's name and a harmless one, and a ClientHello with and without an Encrypted "
            "Client Hello extension, each judged against the control apart from the web verdict.</p>"
            + "".join(out)), shown_total


def _outages_section(store: Store, names: list[str], country_of: Callable[[str], str] | None,
                     limit: int, *, every: bool) -> tuple[str, int]:
    """The outages section (HTML): intervals per vantage point, isolation first.

    ``every``: ``names`` are every vantage point of the database, read in one pass; otherwise
    each named one is read on its own, so that a report of one vantage point of twenty reads
    its runs only (the outage rules read every measurement of the runs they judge).
    """
    if every:
        stats = run_stats(store, None, None, country_of=country_of)
    else:
        stats = [s for name in names for s in run_stats(store, name, None, country_of=country_of)]
    found = list(outages(stats))
    isolated = isolation(stats)
    out = ['<table id="isolation"><thead><tr><th>vantage point</th><th>country</th><th>runs</th>'
           "<th>isolated runs</th></tr></thead><tbody>"]
    for name in names:
        iso = isolated.get(name)
        if iso is None:
            continue
        country = iso.country or "unknown (not judged)"
        out.append(f'<tr><td>{_e(name)}</td><td>{_e(country)}</td><td class="n">{iso.runs}</td>'
                   f'<td class="n">{iso.isolated_runs}</td></tr>')
    out.append("</tbody></table>")
    if not found:
        out.append('<p class="empty">No outages: every run found the network as usual.</p>')
        return "".join(out), 0
    more = (f" The first {limit} are shown (<code>probe outages</code> lists all)."
            if len(found) > limit else "")
    out.append(f"<p>{plural(len(found), 'interval')}. Each lasted at least from <i>first seen</i> to <i>last "
               f"seen</i>, and fitted between <i>after</i> and <i>before</i>.{more}</p>")
    out.append('<table id="outages"><thead><tr><th>vantage point</th><th>state</th><th>first seen</th>'
               "<th>last seen</th><th>after</th><th>before</th><th>evidence</th></tr></thead><tbody>")
    for o in found[:limit]:
        out.append(f'<tr class="o-{_e(o.state)}"><td>{_e(o.vantage)}</td><td>{_e(o.state)}</td>'
                   f"<td>{_ago(o.first_seen)}</td><td>{_ago(o.last_seen)}</td><td>{_ago(o.after)}</td>"
                   f"<td>{_ago(o.before) if o.before else 'ongoing'}</td><td>{_e(o.evidence)}</td></tr>")
    out.append("</tbody></table>")
    return "".join(out), len(found)


def write_report(store: Store, out: TextIO, *, vantages: Iterable[str] | None = None,
                 limits: ReportLimits = ReportLimits(), fingerprints: Any = None,
                 title: str = "probe report", country_of: Callable[[str], str] | None = None,
                 ) -> dict[str, int]:
    """Write the HTML report of ``store`` (an open :class:`probe.store.Store`) to ``out``.

    ``vantages`` restricts it to those vantage points; ``country_of`` maps an address to its
    country for the isolation rule (None: isolation is not judged). Returns what was drawn
    (counts), for the command's one-line summary and for tests.
    """
    wanted = list(vantages) if vantages else None
    vps = _vantage_summary(store, wanted)
    vids = [vp["id"] for vp in vps]
    urls, n_interesting, quiet, n_quiet = _interesting_urls(store, vids, limits.heatmap_urls,
                                                            limits.quiet_urls)
    cells = _latest_cells(store, [*urls, *quiet], vids)
    last = max((vp["last"] for vp in vps if vp["last"]), default=None)
    latest_changes = _latest_changes(store, vps)
    changed = frozenset((c.url, name) for name, _, changes in latest_changes for c in changes)
    # The timeline draws at most timeline_rows pairs, the latest runs' changes first: reading the
    # history of more of their URLs than that would be read for nothing.
    first = list(dict.fromkeys(c.url for _, _, changes in latest_changes for c in changes))
    timeline = _timelines(store, list(dict.fromkeys([*first[:limits.timeline_rows], *urls])),
                          vps, limits.timeline_rows, changed)
    mix = _techniques(store, vids)
    non_ok, n_non_ok = _non_ok(store, vids, limits.evidence_rows)
    generated = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())

    def w(s: str) -> None:
        out.write(s)

    w('<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
      '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
      'style-src \'unsafe-inline\'; img-src data:">'
      '<meta name="viewport" content="width=device-width, initial-scale=1">'
      f'<link rel="icon" href="data:,"><title>{_e(title)}</title><style>{_CSS}</style></head><body>')
    w(f'<h1>{_e(title)}</h1><p class="meta">{plural(len(vps), "vantage point")}; '
      f'latest measurement {_ago(last)}; generated {generated} by probe. Verdicts are each vantage '
      "point's latest for each URL.</p>")

    # 1. Summary per vantage point.
    w('<h2 id="summary-h">Vantage points</h2><table id="summary"><thead><tr><th>vantage point</th>'
      "<th>network</th><th>runs</th><th>latest measurement</th><th>URLs</th>"
      + "".join(f'<th><i class="sw" style="background:{COLOURS[v]}"></i>{v}</th>' for v in VERDICT_ORDER)
      + "<th>interference</th></tr></thead><tbody>")
    for vp in vps:
        c = vp["counts"]
        total = sum(c.values())
        bad = sum(c[v] for v in INTERFERENCE)
        net = " ".join(x for x in (f"AS{vp['asn']}" if vp["asn"] else "", vp["as_org"] or "",
                                   vp["country"] or "", vp["network"] or "") if x) or "-"
        w(f'<tr data-vantage="{_e(vp["name"])}"><td>{_e(vp["name"])}</td><td>{_e(net)}</td>'
          f'<td class="n">{vp["runs"]}</td><td>{_ago(vp["last"])}</td><td class="n">{total}</td>'
          + "".join(f'<td class="n v-{v}">{c[v]}</td>' for v in VERDICT_ORDER)
          + f'<td class="n">{(100 * bad / total) if total else 0:.1f}%</td></tr>')
    w("</tbody></table>")

    # 2. Heatmap.
    w('<h2 id="heatmap-h">URLs by vantage point</h2>')
    if urls:
        more = (f" The {len(urls)} with the most interference of {n_interesting} are shown."
                if n_interesting > len(urls) else "")
        w(f"<p>Every URL blocked, reset, hijacked or throttled at some vantage point "
          f"({plural(n_interesting, 'URL')}), coloured by each vantage point's latest verdict; a "
          f"cell links to its evidence below.{more}</p>{_legend()}")
        w(f'<div class="scroll">{_svg_heatmap(urls, vps, cells)}</div>')
    else:
        w('<p class="empty">No URL is interfered with at any vantage point.</p>')
    if quiet:
        more = f" The first {len(quiet)} are shown." if n_quiet > len(quiet) else ""
        w(f'<details id="quiet"><summary>{plural(n_quiet, "URL")} down or inconclusive, never '
          "interfered with (not censorship: the site fails for the control too, or the evidence is "
          f"too thin)</summary><p>{more}</p>"
          f'<div class="scroll">{_svg_heatmap(quiet, vps, cells, "heatmap-quiet")}</div></details>')
    if not urls and not quiet:
        w('<p class="empty">Every URL is ok at every vantage point.</p>')

    # 3. Changes over time, both directions.
    w('<h2 id="timeline-h">Verdict changes over time</h2><p>What each vantage point\'s latest '
      "run changed against the run before, as <code>probe diff</code> lists it: newly blocked, "
      "unblocked (interfered with before, ok now), technique changed, unclear (interfered with "
      "before, down or inconclusive now).</p>")
    w(_changes_table(latest_changes, limits.change_rows))
    w("<p>Each row below is one URL at one vantage point whose verdict changed, coloured by "
      "verdict from each change to the next (the latest runs' changes first).</p>")
    w(f'<div class="scroll">{_svg_timeline(timeline, last or generated)}</div>')

    # 4. Techniques.
    w('<h2 id="techniques-h">Technique mix per vantage point</h2><p>Latest verdicts of '
      "interference by verdict and the stage where it was seen (share of each vantage point's "
      "interfered URLs; the number is their count).</p>")
    w(f'<div class="scroll">{_svg_techniques(vps, mix)}</div>')

    # 5. Circumvention endpoints: Tor, OpenVPN and VPN endpoints, then encrypted DNS and VPN
    # protocols (one read of the newest result of every endpoint for both).
    latest = latest_endpoints(store, [vp["name"] for vp in vps])
    w('<h2 id="circumvention-h">Circumvention: Tor, OpenVPN and VPN endpoints</h2>')
    section, n_endpoints = _endpoints_section(vps, latest, limits.endpoint_rows)
    w(section)
    w('<h2 id="tunnels-h">Encrypted DNS and VPN protocols: DoH, DoT, fully encrypted traffic, '
      "WireGuard</h2><p>Public DoH/DoT resolvers (reached, and their answers against the "
      "control's), and a reflector's echo and WireGuard ports, each judged against its own "
      "twin: printable bytes for the fully encrypted traffic rule, a same-size datagram for "
      "WireGuard (docs/circumvention.md).</p>")
    section, n_tunnels = _endpoints_section(vps, latest, limits.endpoint_rows, group="tunnels")
    w(section)
    n_endpoints += n_tunnels
    w('<h2 id="messaging-h">Messaging apps: Telegram, WhatsApp, Signal</h2><p>Each app per '
      "vantage point, reachable or not and which part: Telegram's data centres (MTProto) and "
      "web, WhatsApp's chat endpoints, web and registration, Signal's services, each judged "
      "against the control (docs/messaging.md).</p>")
    section, n_messaging = _endpoints_section(vps, latest, limits.endpoint_rows, group="messaging")
    w(section)
    n_endpoints += n_messaging

    # 5b. The opt-in protocol tests (QUIC, ECH).
    w('<h2 id="protocols-h">Protocol tests: QUIC (HTTP/3) and ECH</h2>')
    section, n_protocols = _protocols_section(store, [vp["name"] for vp in vps], limits.endpoint_rows)
    w(section)

    # 6. Outages and national isolation.
    w('<h2 id="outages-h">Outages and national isolation</h2><p>Each run judged from what it '
      "saw (docs/outages.md): no network at all, a silent resolver, sites at home reached while "
      "those abroad were not (isolation), connections dead far beyond the usual, missed runs.</p>")
    section, n_outages = _outages_section(store, [vp["name"] for vp in vps], country_of,
                                          limits.outage_rows, every=wanted is None)
    w(section)

    # 7. Evidence.
    w(f'<h2 id="evidence-h">Evidence: {plural(n_non_ok, "non-ok verdict")}</h2>')
    if n_non_ok > len(non_ok):
        w(f"<p>The first {len(non_ok)} are listed; <code>probe results --verdict ...</code> lists all.</p>")
    w('<table id="evidence"><thead><tr><th>verdict</th><th>vantage point</th><th>URL</th>'
      "<th>why</th><th>measured</th></tr></thead><tbody>")
    detailed = 0
    for row in non_ok:
        mid, verdict = row.measurement_id, row.verdict
        reasons = json.loads(row.reasons or "[]")
        key = decisive(verdict, row.stage, reasons)
        why = explain(key, verdict) if key else "no reason recorded"
        cell = _e(why)
        if detailed < limits.evidence_details:
            try:
                ev = evidence(store, mid, fingerprints=fingerprints)
                text = "\n".join(render_text(ev, 130))
                cell += f"<details><summary>evidence</summary><pre>{_e(text)}</pre></details>"
                detailed += 1
            except (EvidenceError, KeyError, TypeError, ValueError, AttributeError):
                # Observations from a foreign or synthetic database: the verdict row still says
                # what was decided; the step-by-step view is left out for this one.
                cell += " <i>(observations not readable)</i>"
        w(f'<tr id="m{mid}" class="v-{verdict}"><td class="verdict" style="color:{_colour(verdict)}">'
          f"{verdict}</td><td>{_e(row.vantage)}</td><td>{_e(row.url)}</td><td>{cell}</td>"
          f"<td>{_ago(row.measured_at)}</td></tr>")
    w("</tbody></table>")
    w('<p class="meta">Reasons in words come from probe/judge/explain.py; docs/classification.md '
      "defines every verdict rule.</p></body></html>\n")
    return {"vantage_points": len(vps), "heatmap_urls": len(urls), "quiet_urls": len(quiet),
            "changes": sum(len(c) for _, _, c in latest_changes), "timeline_rows": len(timeline),
            "evidence_rows": len(non_ok), "evidence_details": detailed, "non_ok": n_non_ok,
            "endpoints": n_endpoints, "outages": n_outages, "protocol_urls": n_protocols}
