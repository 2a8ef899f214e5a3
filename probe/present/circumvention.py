"""Circumvention results as people read them: `probe results --suite circumvention`, `probe show
ADDRESS:PORT`, the endpoint matrix of `probe compare` and the report's section.

The rows come from probe/store/circumvention.py (one dict per endpoint measurement). Only the
standard library: read-only commands import nothing heavy.
"""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from probe.core.model import INTERFERENCE_VERDICTS
from probe.core.net import format_endpoint
from probe.inputs.endpointlists import BY_NAME_KINDS
from probe.judge.explain import explain
from probe.present.terminal import clean, json_safe
from probe.present.text import cells as columns_of
from probe.present.text import cut, wrap

if TYPE_CHECKING:
    from probe.run.circumvention import Judged, SuiteSummary

__all__ = [
    "ENDPOINT_CSV_KEYS",
    "TUNNEL_KINDS",
    "EndpointMatrix",
    "explain_endpoint_reason",
    "format_endpoint_csv",
    "format_endpoint_table",
    "format_judged",
    "format_no_reflector",
    "format_suite_end",
    "render_endpoint",
]

_CHUNK = 2000

# What each reason of probe/judge/circumvention.py says, by its ``stage/outcome`` key.
_WORDS = {
    "tls/ok": "the TLS handshake completed",
    "openvpn/ok": "the OpenVPN server answered our HARD_RESET for this session",
    "tcp/ok": "the TCP connection was accepted",
    "tcp/timeout": "no answer to the TCP connection attempt (SYN)",
    "tcp/refused": "the TCP connection was refused (RST to the SYN)",
    "tcp/reset": "the TCP connection was reset",
    "tcp/local": "a local failure (no route, network down here): never a censor's",
    "tls/timeout": "the TLS handshake got no answer in time",
    "tls/reset": "the TLS handshake was reset",
    "tls/eof": "the connection was closed during the TLS handshake",
    "tls/handshake-failed": "the TLS handshake failed",
    "tls/local": "a local failure during the TLS handshake",
    "openvpn/reset": "the connection was reset after OpenVPN's first packet (servers do not; DPI boxes do)",
    "openvpn/timeout": "no OpenVPN answer in time",
    "openvpn/silent-server-possible": "no answer; a server configured with tls-auth is silent too",
    "control/none": "no control can speak for a UDP path",
    "control/unavailable": "no usable control",
    "control/absent": "the measurement carries no control (OONI's experiments have none): "
                      "the failure may be the server's or the path's, not a censor's",
    "http/ok": "the HTTP exchange completed",
    "obfs4/ok": "the obfs4 bridge completed its handshake",
    "tls/cert-invalid": "the certificate was not valid for the name (an interception, or the server's own)",
    "control/no-tcp-result": "the control did not report this address",
}


#: Kinds shown apart from Tor, OpenVPN and VPN endpoints (the report's section on encrypted DNS
#: and VPN protocols).
TUNNEL_KINDS = frozenset({"doh", "dot", "fet", "wireguard"})

_WORDS.update({
    "doh/ok": "the DoH resolver answered over a verified TLS connection; no answer contradicts the control's",
    "dot/ok": "the DoT resolver answered over a verified TLS connection; no answer contradicts the control's",
    "doh/reached": "the DoH resolver was reached (its answers are judged by the reasons before)",
    "dot/reached": "the DoT resolver was reached (its answers are judged by the reasons before)",
    "dns/answers-differ": "the resolver's answer for this name disagrees with the control's beyond "
                          "what a CDN explains (a bogon, NXDOMAIN, or addresses of another AS)",
    "dns/unverified": "the answer differs from the control's and AS data cannot settle it (a CDN?): "
                      "not counted",
    "dns/no-control": "the control gave nothing to compare this name's answer with",
    "dns/query-failed": "the query failed over the established connection",
    "tls/cert-invalid": "the certificate did not verify for the resolver's name while the "
                        "control's did: TLS interception",
    "tls/sni-filtered": "a harmless SNI to the same address completed: the resolver's name was filtered",
    "tls/address-blocked": "a harmless SNI to the same address failed too: the address is blocked",
    "control/no-tls-result": "the control did not report a TLS handshake with this address",
    "wireguard/no-key": "no server key: nobody can answer this initiation, so its silence proves nothing",
    "wireguard/cookie": "a WireGuard server answered with a cookie (it is under load): reachable",
    "wireguard/answered-unverified": "something answered an initiation we could not make verifiable",
})
# What the reasons of the twin-controlled kinds say (fet, wireguard), by their outcome.
_TWIN_WORDS = {
    "ok": "every exchange came back as it should (the {tool} was not blocked in these tries)",
    "twin-failed": "the twin (the control exchange) failed too: the peer is silent or down for this "
                   "path, nothing to compare",
    "random-dropped": "random bytes the published rule does not exempt were dropped, while "
                      "printable bytes of the same length passed",
    "random-reset": "the connection carrying random bytes was reset; printable bytes passed",
    "initiation-dropped": "the WireGuard handshake initiation got no answer while a datagram of the "
                          "same size passed",
    "initiation-reset": "the WireGuard handshake initiation was refused",
    "first-echoed": "the first segment came back (the censor saw it pass) and the rest was dropped",
    "twin-passed-after": "the twin passed again right after: the path works, only the {tool} is blocked",
    "residual": "after it, the same port stayed blocked for the twin too while the other port "
                "worked (residual blocking, as the GFW's)",
    "followup-failed": "after it the twin failed too: a residual block or a broken path; not judged",
    "unexpected": "the peer answered something unexpected",
    "not-measured": "nothing was measured",
}
_TOOLS = {"fet": "fully encrypted traffic", "wireguard": "WireGuard handshake"}


# What the reasons of probe/judge/messaging.py say; a service reached by name also gets the web
# classifier's reasons, worded by probe.judge.explain.
_MESSAGING_WORDS = {
    "mtproto/ok": "the data centre answered MTProto's first message (resPQ with our nonce)",
    "mtproto/error-code": "the data centre answered with an MTProto error code: it read our "
                          "obfuscated bytes, so it was reached",
    "mtproto/reset": "the connection was reset after MTProto's first message while the control "
                     "connected (data centres do not; DPI boxes do)",
    "mtproto/eof": "the connection was closed after MTProto's first message while the control connected",
    "mtproto/timeout": "no MTProto answer in time",
    "mtproto/silent": "no MTProto answer, and the control's HTTP request to the data centre failed "
                      "too: not proof of blocking",
    "mtproto/unexpected": "something answered that is not MTProto: not a data centre's answer",
    "mtproto/local": "a local failure during MTProto's first exchange",
    "control/http-answered": "the data centre answered the control's HTTP request: it is up and talking",
    "https/reached": "an HTTPS answer came back over a connection whose certificate verified for "
                     "the name (any status: the app needs the conversation, not a page)",
    "tcp/reached": "an address the name resolved to (consistent with the control's) accepted the "
                   "connection",
    "tls/pinned-ca-issued": "the certificate that failed was issued by the CA the app pins: a stale "
                            "pin or the service's own mistake, not a censor's",
}


def explain_endpoint_reason(reason: str, kind: str = "") -> str:
    """A reason of an endpoint verdict in words (the code itself when it has none); ``kind``
    selects the web classifier's words for the messaging services reached by name."""
    key = reason.split(":", 1)[0]
    if key in _MESSAGING_WORDS:
        return _MESSAGING_WORDS[key]
    if kind in BY_NAME_KINDS or key.endswith("/not-measured"):
        return explain(reason)
    if key in _WORDS:
        return _WORDS[key]
    kind, _, outcome = key.partition("/")
    if kind in _TOOLS and outcome in _TWIN_WORDS:
        return _TWIN_WORDS[outcome].format(tool=_TOOLS[kind])
    if key.startswith("control/tcp-"):
        return f"the control failed to connect too ({key.removeprefix('control/tcp-')}): down for everyone"
    if key.startswith("control/tls-"):
        what = key.removeprefix("control/tls-")
        return f"the control's TLS handshake failed too ({what}): down for everyone"
    return reason


def _where(r: dict[str, Any]) -> str:
    return format_endpoint(r["address"], r["port"])


def _time(iso: str | None) -> str:
    return f"{iso[:16].replace('T', ' ')} UTC" if iso else "-"


def format_endpoint_table(rows: Iterable[dict[str, Any]], width: int = 160) -> Iterator[str]:
    """Endpoint results as fixed-width lines fitted to ``width`` (a count at the end)."""
    # KIND: the longest kinds (telegram-web, whatsapp-web) are 12 characters.
    fixed = {"KIND": 12, "VERDICT": 12, "STAGE": 7, "VANTAGE": 12, "RUN": 5, "TIME": 20}
    cols = ["NAME", "KIND", "ENDPOINT", "VERDICT", "STAGE", "REASON", "VANTAGE", "RUN", "TIME"]
    for drop in ("RUN", "VANTAGE", "TIME", "STAGE"):  # narrow terminals lose these first
        if 16 + 21 + 24 + sum(fixed[c] for c in cols if c in fixed) + 2 * (len(cols) - 1) <= width:
            break
        cols.remove(drop)
    room = width - sum(fixed[c] for c in cols if c in fixed) - 2 * (len(cols) - 1)
    flex = {"NAME": max(8, room * 2 // 10), "ENDPOINT": max(12, room * 3 // 10)}
    flex["REASON"] = max(16, room - flex["NAME"] - flex["ENDPOINT"])
    widths = {**fixed, **flex}
    fmt = "  ".join(f"{{:<{widths[c]}}}" for c in cols[:-1]) + "  {}\n"
    buf = [fmt.format(*cols)]
    n = 0
    for r in rows:
        n += 1
        reasons = r["reasons"] or []
        # The first reason decides; "+N" says how many more there are.
        reason = (reasons[0] + (f" +{len(reasons) - 1}" if len(reasons) > 1 else "")) if reasons else "-"
        cells = {"NAME": cut(clean(r["name"]), widths["NAME"]), "KIND": cut(clean(r["kind"]), widths["KIND"]),
                 "ENDPOINT": cut(_where(r), widths["ENDPOINT"]), "VERDICT": r["verdict"],
                 "STAGE": r["stage"] or "-", "REASON": cut(clean(reason), widths["REASON"]),
                 "VANTAGE": cut(clean(r["vantage"]), 12), "RUN": r["run_id"],
                 "TIME": _time(r["measured_at"])}  # fmt: skip
        buf.append(fmt.format(*(cells[c] for c in cols)))
        if len(buf) >= _CHUNK:
            yield "".join(buf)
            buf = []
    buf.append(f"({n} endpoint{'s' if n != 1 else ''})\n")
    yield "".join(buf)


#: Columns of `probe results --suite circumvention --csv`.
ENDPOINT_CSV_KEYS = ("name", "kind", "address", "port", "transport", "verdict", "stage", "explanation",
                     "reasons", "vantage", "run_id", "measured_at", "runtime", "source", "id")  # fmt: skip


def format_endpoint_csv(rows: Iterable[dict[str, Any]]) -> Iterator[str]:
    """Endpoint results as CSV (a header first); ``explanation`` is the first reason in words."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(ENDPOINT_CSV_KEYS)
    for n, r in enumerate(rows, 1):
        reasons = r["reasons"] or []
        row = {**r, "reasons": " ".join(reasons),
               "explanation": explain_endpoint_reason(reasons[0]) if reasons else ""}  # fmt: skip
        w.writerow([clean(row[k]) if isinstance(row[k], str) else row[k] for k in ENDPOINT_CSV_KEYS])
        if n % _CHUNK == 0:
            yield buf.getvalue()
            buf.seek(0)
            buf.truncate()
    yield buf.getvalue()


def render_endpoint(d: dict[str, Any]) -> list[str]:
    """One endpoint measurement (``endpoint_measurements_at``) step by step, for `probe show`."""
    obs = d["observation"]
    ctl = d.get("control") or {}
    retry = f", retry {obs['attempt']} after a failure the control did not see" if obs.get("attempt") else ""
    lines = [f"{d['name']} ({d['kind']}) {_where(d)} over {d['transport']}",
             f"  vantage {d['vantage']}, run {d['run_id']}, measured {_time(d['measured_at'])}{retry}",
             f"  list: {d['source'] or '-'}"]  # fmt: skip
    flat = not obs.get("trials") and not obs.get("hops")  # steps not shown otherwise
    if d["transport"] == "tcp" and flat:
        took = obs.get("tcp_duration")
        ms = f" in {took * 1000:.0f} ms" if isinstance(took, (int, float)) else ""
        lines.append(f"  tcp      {obs.get('tcp_failure') or 'connected'}{ms}")
    if obs.get("handshake") and flat:
        took = obs.get("handshake_duration")
        ms = f" in {took * 1000:.0f} ms" if isinstance(took, (int, float)) else ""
        what = obs.get("handshake_failure") or "completed"
        extra = []
        if obs.get("sni"):
            extra.append(f"SNI {obs['sni']}")
        if obs.get("tls_version"):
            extra.append(obs["tls_version"])
        if obs.get("leaf_sha256"):
            extra.append(f"certificate sha256 {obs['leaf_sha256'][:16]}…")
        if obs.get("other_datagrams"):
            extra.append(f"{obs['other_datagrams']} other datagrams ignored")
        lines.append(f"  {obs['handshake']:<8} {what}{ms}" + (f" ({', '.join(extra)})" if extra else ""))
    elif d["transport"] == "tcp" and not obs.get("tcp_failure") and flat:
        lines.append("  (TCP only: the tool's handshake needs a secret we do not have)")
    lines += _tunnel_lines(obs)
    lines += _hop_lines(obs)
    if obs.get("hops"):
        src = next((h["control"].get("source") for h in obs["hops"] if h.get("control")), None)
        lines.append(f"  control  {src}: beside each step above" if src else "  control  none")
    elif ctl:
        seen = [f"tcp {t.get('ip')}:{t.get('port')} {'ok' if t.get('ok') else t.get('failure') or 'failed'}"
                for t in ctl.get("tcp") or [] if t.get("ip") == d["address"] and t.get("port") == d["port"]]
        seen += [f"tls {'ok' if t.get('ok') else t.get('failure') or 'failed'}"
                 for t in ctl.get("tls") or [] if t.get("ip") == d["address"] and t.get("port") == d["port"]]
        state = ctl.get("failure") or ("; ".join(seen) if seen else "no result for this address")
        lines.append(f"  control  {ctl.get('source', '?')}: {state}")
    elif obs.get("trials"):
        lines.append("  control  the twin exchanges above (no test helper speaks this protocol)")
    else:
        lines.append("  control  none")
    lines.append(f"verdict: {d['verdict']}" + (f" at {d['stage']}" if d["stage"] else "")
                 + f" (classifier {d.get('classifier_version') or '-'})")
    for r in d["reasons"]:
        lines.append(f"  {r}: {explain_endpoint_reason(r, d['kind'])}")
    # Names, list lines, control answers: text from files and the network (probe.present.terminal).
    return [clean(line) for line in lines]


def _tunnel_lines(obs: dict[str, Any]) -> list[str]:
    """The decoy, the names resolved and the twin exchanges of one observation, for `probe show`."""
    lines = []
    if obs.get("decoy_sni"):
        lines.append(f"  decoy    SNI {obs['decoy_sni']}: {obs.get('decoy_failure') or 'completed'}")
    controls = {c.get("url"): c for c in obs.get("name_controls") or []}
    for q in obs.get("queries") or []:
        got = ", ".join(q.get("addresses") or []) or q.get("rcode") or "-"
        if q.get("failure"):
            got = q["failure"]
        ctl = controls.get(f"http://{q['name']}/")
        theirs = ", ".join((ctl or {}).get("dns_addrs") or []) or ((ctl or {}).get("failure") or "-")
        lines.append(f"  {q['qtype']:<8} {q['name']}: {got} (control: {theirs})")
    for t in obs.get("trials") or []:
        ms = f" in {t['duration'] * 1000:.0f} ms" if isinstance(t.get("duration"), (int, float)) else ""
        what = f"{t['step']}: {t['failure']}" if t.get("failure") else (t.get("detail") or "ok")
        exempt = f", exempt by {'+'.join(t['exempt'])}" if t.get("exempt") else ""
        head = f"  {t['role']:<10} :{t['port']} sent {t['sent']}, back {t['received']}"
        lines.append(f"{head}: {what}{ms}{exempt}")
    if obs.get("key"):
        lines.append(f"  key      {obs['key']} (the responder's public key)")
    return lines


_CERT = {True: ", certificate verified", False: ", certificate NOT verified"}


def _hop_lines(obs: dict[str, Any]) -> list[str]:
    """A Telegram DC's answer, and the steps of a service reached by name (each hop's DNS, TCP,
    TLS and HTTP next to the control's view of them), for `probe show`."""
    lines = [f"  answer   {obs['answer']}"] if obs.get("answer") else []
    for h in obs.get("hops") or []:
        ctl = h.get("control") or {}
        lines.append(f"  hop {h.get('index', 0)}    {h.get('url')}")
        theirs = ", ".join(ctl.get("dns_addrs") or []) or ctl.get("dns_failure") or ctl.get("failure") or "-"
        for q in h.get("dns") or []:
            got = q.get("failure") or ", ".join(q.get("addresses") or []) or "-"
            lines.append(f"  dns      {q.get('qtype')} via {q.get('resolver')}: {got} (control: {theirs})")
        ctcp = {(t.get("ip"), t.get("port")): t for t in ctl.get("tcp") or []}
        for t in h.get("tcp") or []:
            c = ctcp.get((t.get("ip"), t.get("port")))
            cs = "-" if c is None else ("ok" if c.get("ok") else c.get("failure") or "failed")
            lines.append(f"  tcp      {format_endpoint(t['ip'], t['port'])}: "
                         f"{t.get('failure') or 'connected'} (control: {cs})")  # fmt: skip
        for t in h.get("tls") or []:
            valid = _CERT.get(t.get("cert_valid"), "")
            what = t.get("failure") or "completed"
            lines.append(f"  tls      {t.get('ip')} SNI {t.get('sni')}: {what}{valid}")
        http = h.get("http")
        if http:
            theirs = ctl.get("http_failure") or ctl.get("http_status") or "-"
            lines.append(f"  http     {http.get('failure') or http.get('status')} (control: {theirs})")
    if obs.get("pinned"):
        lines.append(f"  pinned   {'; '.join(obs['pinned'])} (the app's CA, trusted too)")
    if obs.get("measure_failure"):
        lines.append(f"  stopped  {obs['measure_failure']}")
    return lines


def _key(r: dict[str, Any]) -> tuple[str, str, str, int]:
    return (r["kind"], r["name"], r["address"], int(r["port"]))


@dataclass
class EndpointMatrix:
    """The newest verdict of every endpoint at every vantage point (`probe compare`)."""

    columns: list[str]
    rows: dict[tuple[str, str, str, int], dict[str, dict[str, Any]]] = field(default_factory=dict)
    title: str = "Circumvention endpoints"

    @classmethod
    def from_latest(
        cls, latest: Iterable[dict[str, Any]], columns: Sequence[str] | None = None,
        title: str = "Circumvention endpoints",
    ) -> EndpointMatrix:
        """From ``latest_endpoints`` rows; ``columns`` fixes the vantage points and their order."""
        m = cls(list(columns) if columns else [], title=title)
        seen = set(m.columns)
        for r in latest:
            if columns and r["vantage"] not in seen:
                continue
            if r["vantage"] not in seen:
                seen.add(r["vantage"])
                m.columns.append(r["vantage"])
            m.rows.setdefault(_key(r), {})[r["vantage"]] = r
        if not columns:
            m.columns.sort()
        return m

    def only_differences(self) -> EndpointMatrix:
        """Only endpoints whose verdicts differ between the vantage points that measured them."""
        rows = {k: v for k, v in self.rows.items() if len({c["verdict"] for c in v.values()}) > 1}
        return EndpointMatrix(self.columns, rows, self.title)

    def summary(self) -> dict[str, dict[str, dict[str, int]]]:
        """Per vantage point, per kind: how many endpoints were tried and each verdict's count."""
        out: dict[str, dict[str, Counter[str]]] = {c: {} for c in self.columns}
        for (kind, *_), cells in self.rows.items():
            for vp, r in cells.items():
                counts = out[vp].setdefault(kind, Counter())
                counts["tried"] += 1
                counts[r["verdict"]] += 1
        return {vp: {k: dict(c) for k, c in sorted(kinds.items())} for vp, kinds in out.items()}

    def render_table(self, width: int = 120, *, matrix: bool = True) -> Iterator[str]:
        """The matrix as text (``matrix``): one line per endpoint, the verdict (and stage) per
        vantage point; then how many endpoints of each kind each vantage point reached."""
        if not self.rows:
            return
        col_w = [max(12, min(len(c), 16)) for c in self.columns]
        name_w = max(16, min(40, width - 26 - sum(w + 2 for w in col_w)))
        fmt = f"{{:<{name_w}}}  {{:<11}}  {{:<21}}" + "".join(f"  {{:<{w}}}" for w in col_w)
        out = [f"\n{self.title} (newest verdict per vantage point; blocks = blocked, reset):\n",
               fmt.format("NAME", "KIND", "ENDPOINT", *(cut(clean(c), w) for c, w in zip(self.columns, col_w,
                          strict=True))).rstrip() + "\n"]  # fmt: skip
        for (kind, name, address, port), cells in sorted(self.rows.items()) if matrix else ():
            texts = []
            for c in self.columns:
                r = cells.get(c)
                if r is None:
                    texts.append("-")
                elif r["verdict"] in INTERFERENCE_VERDICTS:
                    texts.append(f"{r['verdict']}/{r['stage'] or '-'}")
                else:
                    texts.append(r["verdict"])
            where = _where({"address": address, "port": port})
            out.append(fmt.format(cut(clean(name), name_w), clean(kind), cut(where, 21), *texts).rstrip()
                       + "\n")
        if not matrix:
            out = []
        out.append(f"\n{self.title} reached per vantage point (ok / tried, by kind):\n")
        for vp, kinds in self.summary().items():
            parts = [f"{k} {c.get('ok', 0)}/{c['tried']}" for k, c in kinds.items()]
            blocked = sum(c.get(v, 0) for c in kinds.values() for v in INTERFERENCE_VERDICTS)
            out.append(f"  {clean(vp)}: {clean(', '.join(parts)) or 'none measured'}"
                       + (f"; {blocked} blocked or reset" if blocked else "") + "\n")
        yield "".join(out)

    def as_json(self) -> dict[str, Any]:
        """JSON form: the endpoints with their verdicts per vantage point, and the summary."""
        endpoints = []
        for (kind, name, address, port), cells in sorted(self.rows.items()):
            verdicts = {vp: {"verdict": r["verdict"], "stage": r["stage"], "reasons": r["reasons"],
                             "measured_at": r["measured_at"], "run_id": r["run_id"]}
                        for vp, r in cells.items()}  # fmt: skip
            endpoints.append({"kind": kind, "name": name, "address": address, "port": port,
                              "verdicts": verdicts})  # fmt: skip
        return {"endpoints": endpoints, "endpoint_summary": self.summary()}


def dumps(d: dict[str, Any]) -> str:
    """One endpoint measurement as JSON (``probe show --json``)."""
    return json_safe(json.dumps(d, ensure_ascii=False, sort_keys=True))


def format_judged(judged: Judged, as_json: bool, width: int = 80) -> str:
    """One endpoint as `probe circumvention` judges it: for people, verdict, kind, name, where
    and the first reason in lines of at most ``width`` columns; or ``as_json`` one JSON object."""
    obs, _, verdict = judged
    if as_json:
        row = {"kind": obs.kind, "name": obs.name, "address": obs.address, "port": obs.port,
               "verdict": verdict.verdict, "stage": verdict.stage, "reasons": list(verdict.reasons)}
        return json.dumps(row)  # fmt: skip
    reason = verdict.reasons[0] if verdict.reasons else ""
    where = f"{obs.address}:{obs.port}"
    line = f"{verdict.verdict:<12} {obs.kind:<11} {clean(obs.name):<16} {where}  {clean(reason)}"
    return "\n".join(wrap(line, width, "", " " * 13)) if columns_of(line) > width else line


def format_no_reflector() -> str:
    """The note of `probe circumvention` when it wanted a reflector and no helper offered one."""
    return ("note: no helper offered a reflector: fully encrypted traffic and WireGuard were not "
            "measured (run your own: probe helper serve --reflector)")  # fmt: skip


def format_suite_end(summary: SuiteSummary, db: Path) -> str:
    """The last line of `probe circumvention`: the run, its verdict counts, the database."""
    counts = " / ".join(f"{k} {v}" for k, v in sorted(summary.counts.items()))
    return f"run {summary.run_id}: {len(summary.results)} endpoints: {counts or 'none'}; stored in {db}"
