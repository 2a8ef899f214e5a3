"""`probe show URL|MEASUREMENT_ID`: the whole evidence of one measurement, step by step."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

from probe.cli._group import cli

__all__ = ["render_text"]


def _ms(seconds: float | None) -> str:
    return "" if seconds is None else f"{seconds * 1000:.0f} ms"


def _ok(failure: str | None, success: str) -> str:
    return f"FAILED {failure}" if failure else success


def _control(c: dict[str, Any] | None, success: str = "ok") -> str:
    if c is None:
        return "-"
    if c.get("ok") is False:
        return f"FAILED {c.get('failure') or 'failed'}"
    return _ok(c.get("failure"), success)


def _rows(hop: dict[str, Any]) -> Iterator[tuple[str, str, str]]:
    """(step, probe, control) rows of one hop."""
    ctl = hop["control"]
    if ctl is not None and ctl["failure"]:
        yield ("control", "", f"unavailable: {ctl['failure']} ({ctl['source']})")
        ctl = None
    for q in hop["dns"]:
        step = f"DNS {q['qtype']} {q['hostname']} via {q['resolver']}"
        probe = _ok(q["failure"], ", ".join(q["addresses"]) or "no address")
        n = len(q["replies"])
        probe += f" ({_ms(q['duration'])}, {n} repl{'y' if n == 1 else 'ies'})"
        control = "-"
        if ctl is not None:
            control = _ok(ctl["dns_failure"], ", ".join(ctl["dns_addrs"]) or "no address")
        yield (step, probe, control)
        if len(q["replies"]) > 1 or any(r["injected"] for r in q["replies"]):
            for i, r in enumerate(q["replies"]):
                answer = " ".join([*r["cnames"], *r["answers"]]) or "-"
                mark = f"  << {r['injected']}" if r["injected"] else ""
                yield (f"  reply {i} +{_ms(r['t'])} from {r['source']}", f"{r['rcode']} {answer}{mark}", "")
    for t in hop["tcp"]:
        yield (f"TCP {t['ip']}:{t['port']}", _ok(t["failure"], f"connected ({_ms(t['duration'])})"),
               _control(t["control"], "connected"))
    for t in hop["tls"]:
        if t["failure"]:
            probe = f"FAILED {t['failure']}"
        else:
            probe = f"{t['version'] or 'TLS'} {t['cipher'] or ''}".strip()
            probe += ", certificate valid" if t["cert_valid"] else ", certificate NOT valid"
        probe += f" ({_ms(t['duration'])})"
        yield (f"TLS {t['ip']}:{t['port']} SNI {t['sni']}", probe, _control(t["control"], "handshake ok"))
        cert = t["certificate"]
        if cert is not None:
            valid = f"valid {str(cert['not_before'] or '?')[:10]} to {str(cert['not_after'] or '?')[:10]}"
            yield ("  certificate", f"subject {cert['subject']}; issuer {cert['issuer']}; {valid}", "")
    h = hop["http"]
    if h is not None:
        if h["failure"]:
            probe = f"FAILED {h['failure']}"
        else:
            title = f" \"{h['title']}\"" if h["title"] else ""
            more = "+ (truncated)" if h["body_truncated"] else ""
            probe = f"{h['status']}{title}, {h['body_length']}{more} bytes"
            if h["location"]:
                probe += f", Location {h['location']}"
        for fp in h["fingerprints"]:
            kind = "known look-alike (false positive)" if fp["false_positive"] else "BLOCK PAGE"
            probe += f"; matches {kind} {fp['name']}"
        control = "-"
        if ctl is not None:
            if ctl["http_failure"]:
                control = f"FAILED {ctl['http_failure']}"
            elif ctl["http_status"] is not None:
                title = f" \"{ctl['http_title']}\"" if ctl["http_title"] else ""
                control = f"{ctl['http_status']}{title}, {ctl['http_body_length']} bytes"
        yield (f"HTTP GET {h['url']} via {h['ip']}:{h['port']}", probe, control)


def _table(rows: list[tuple[str, str, str]], width: int) -> Iterator[str]:
    """Three columns (step | probe | control) that fit ``width``; long cells wrap."""
    inner = max(width - 4 - 2 * 3, 30)
    w_step = min(max((len(r[0]) for r in rows), default=4), max(inner * 3 // 10, 12))
    w_ctl = min(max((len(r[2]) for r in rows), default=7), max(inner * 3 // 10, 12))
    w_ctl = max(w_ctl, len("control"))
    w_probe = max(inner - w_step - w_ctl, 12)
    header = ("step", "probe", "control")
    for r in (header, *rows):
        cols = [textwrap.wrap(cell, w, break_long_words=True, break_on_hyphens=False) or [""]
                for cell, w in zip(r, (w_step, w_probe, w_ctl), strict=True)]
        for i in range(max(len(c) for c in cols)):
            parts = [(c[i] if i < len(c) else "").ljust(w)
                     for c, w in zip(cols, (w_step, w_probe, w_ctl), strict=True)]
            yield ("    " + "   ".join(parts)).rstrip()


def render_text(ev: dict[str, Any], width: int = 100) -> Iterator[str]:
    """The evidence (:func:`probe.evidence.evidence`) as text lines fitted to ``width``."""
    v = ev["verdict"]
    yield ev["url"]
    meta = (f"measurement {ev['measurement_id']}, run {ev['run_id']}, vantage {ev['vantage']}, "
            f"{ev['measured_at'][:19].replace('T', ' ')} UTC, attempt {ev['attempt']}"
            f"{'' if ev['final'] else ' (not final: retried)'}, {ev['runtime']} s")
    yield from textwrap.wrap(meta, width, initial_indent="  ", subsequent_indent="  ")
    if len(ev["attempts"]) > 1:
        tries = ", ".join(f"#{a['measurement_id']} {a['verdict']}{' (final)' if a['final'] else ''}"
                          for a in ev["attempts"])
        yield from textwrap.wrap(f"attempts: {tries}", width, initial_indent="  ",
                                 subsequent_indent="  ")
    where = f" at {v['stage']} (hop {v['hop']})" if v["stage"] else ""
    yield ""
    yield f"verdict: {v['verdict'].upper()}{where}"
    yield from textwrap.wrap(v["summary"], width, initial_indent="  ", subsequent_indent="  ")
    if ev["failure"]:
        yield f"  the measurement did not finish: {ev['failure']}"
    for hop in ev["hops"]:
        yield ""
        yield _cut(f"hop {hop['hop']}: {hop['url']}", width)
        rows = list(_rows(hop))
        if rows:
            yield from _table(rows, width)
        else:
            yield "    nothing measured"
    yield ""
    yield f"reasons (classifier {v['classifier_version']}):"
    for r in v["reasons"]:
        mark = "*" if r["decisive"] else "-"
        yield _cut(f"  {mark} {r['code']}{'  (decided the verdict)' if r['decisive'] else ''}", width)
        yield from textwrap.wrap(r["words"], width, initial_indent="      ",
                                 subsequent_indent="      ")
    if not v["reasons"]:
        yield "  (none)"


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


@cli.command("show")
@click.argument("what", metavar="URL|MEASUREMENT_ID")
@click.option("--db", type=click.Path(dir_okay=False, path_type=Path), default="results/probe.db",
              show_default=True, help="Results database.")
@click.option("--vantage", metavar="NAME", help="The URL's newest measurement from this vantage point.")
@click.option("--run", "run_id", type=click.IntRange(min=1), metavar="ID",
              help="The URL's measurement in this run.")
@click.option("--json", "as_json", is_flag=True, help="The evidence as one JSON document.")
def show_command(what: str, db: Path, vantage: str | None, run_id: int | None, as_json: bool) -> None:
    """Show the whole evidence of one measurement, step by step.

    WHAT is a measurement id (from `probe results --json`) or a URL: its newest final
    measurement (narrowed by --vantage or --run). For each hop: every DNS query and reply
    (injected replies marked), TCP per address, TLS with the certificate, HTTP with the
    fingerprints it matches, each next to what the control saw; then the verdict and every
    reason in plain words.

    \b
    Examples:
      probe show http://example.org/
      probe show 42 --json | jq .verdict
    """
    import shutil
    import sys

    from probe.evidence import EvidenceError, dumps, evidence, find_measurement
    from probe.fingerprints import default_fingerprints
    from probe.store import Store, StoreError

    try:
        with Store.open(db, create=False) as store:
            mid = find_measurement(store, what, vantage, run_id)
            ev = evidence(store, mid, fingerprints=default_fingerprints())
    except (StoreError, EvidenceError) as exc:
        raise click.ClickException(str(exc)) from None
    if as_json:
        click.echo(dumps(ev))
        return
    width = shutil.get_terminal_size((100, 24)).columns if sys.stdout.isatty() else 100
    for line in render_text(ev, width):
        click.echo(line)
