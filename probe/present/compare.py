"""`probe compare` for people: the verdict matrix fitted to a width, its summaries, and the
national isolation of each vantage point; the matrix also as CSV and as one JSON document.

The matrix renderers yield text in chunks of about 2,000 URLs, so a matrix of any size is
written while it is read; the summaries are a few lines each.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING

from probe.present.text import cut, printable

if TYPE_CHECKING:
    from probe.research.compare import Cell, Matrix, Stability
    from probe.research.outages import Isolation

__all__ = ["render_csv", "render_isolation", "render_json", "render_stability", "render_summary",
           "render_table"]

# One or two letters per verdict when the vantage points do not fit the terminal by name.
_CODES = {"ok": ".", "blocked": "B", "reset": "R", "hijacked": "H", "throttled": "T", "down": "~",
          "inconclusive": "?"}
_STAGE_CODES = {"dns": "d", "tcp": "t", "tls": "s", "http": "h"}
_FULL_WIDTH = 12  # "blocked/http", "hijacked/dns"
_CHUNK = 2000


def _cell_text(cell: Cell | None, compact: bool) -> str:
    if cell is None:
        return "" if compact else "-"
    if compact:
        code = _CODES.get(cell.verdict, "?")
        return code + (_STAGE_CODES.get(cell.stage or "", "") if cell.interference else "")
    return cell.technique if cell.interference else cell.verdict


def render_table(matrix: Matrix, width: int) -> Iterator[str]:
    """The matrix fitted to ``width`` columns: verdicts by name, or codes and a legend."""
    cols = matrix.columns
    longest = max((len(u) for u in matrix.urls), default=3)
    col_w = [max(_FULL_WIDTH, min(len(c), 16)) for c in cols]
    url_w = min(longest, max(24, width - 8 - sum(w + 2 for w in col_w)))
    compact = 24 + 8 + sum(w + 2 for w in col_w) > width
    if compact:
        col_w = [max(2, len(str(i + 1))) for i in range(len(cols))]
        url_w = min(longest, max(20, width - 8 - sum(w + 1 for w in col_w)))
        head = [str(i + 1) for i in range(len(cols))]
        sep = " "
    else:
        head = [cut(c, w) for c, w in zip(cols, col_w, strict=True)]
        sep = "  "
    buf = []
    if compact:
        buf.append("vantage points: " + ", ".join(f"{i + 1}={c}" for i, c in enumerate(cols)) + "\n")
        buf.append("cells: " + " ".join(f"{v}={k}" for k, v in _CODES.items())
                   + "; stage: " + " ".join(f"{v}={k}" for k, v in _STAGE_CODES.items())
                   + "; blank = not measured\n")
    fmt_cols = sep.join(f"{{:<{w}}}" for w in col_w)
    line = f"{{:<{url_w}}}  {{:<6}}" + sep + fmt_cols
    buf.append(line.format("URL", "CAT", *head).rstrip() + "\n")
    n = 0
    for url, category, cells in matrix.rows():
        n += 1
        texts = [_cell_text(c, compact) for c in cells]
        buf.append(line.format(cut(url, url_w), cut(category or "-", 6), *texts).rstrip() + "\n")
        if len(buf) >= _CHUNK:
            yield "".join(buf)
            buf = []
    buf.append(f"({n} URL{'s' if n != 1 else ''} x {len(cols)} vantage point"
               f"{'s' if len(cols) != 1 else ''})\n")
    yield "".join(buf)


def render_summary(matrix: Matrix) -> str:
    """Per pair: blocked by each, by both, Jaccard; per vantage point: the technique mix."""
    out = ["\nPairs (over the URLs both measured; blocks = blocked, reset, hijacked or throttled):\n"]
    pairs = matrix.pairs()
    if not pairs:
        out.append("  (one vantage point: nothing to pair)\n")
    else:
        name_w = max(8, *(len(p.a) for p in pairs), *(len(p.b) for p in pairs))
        fmt = f"  {{:<{name_w}}}  {{:<{name_w}}}  {{:>7}}  {{:>8}}  {{:>8}}  {{:>6}}  {{:>9}}  {{:>7}}\n"
        out.append(fmt.format("A", "B", "COMMON", "A BLOCKS", "B BLOCKS", "BOTH", "SAME WAY",
                              "JACCARD"))
        for p in pairs:
            jac = "-" if p.jaccard is None else f"{p.jaccard:.3f}"
            out.append(fmt.format(p.a, p.b, p.common, p.a_blocks, p.b_blocks, p.both_block,
                                  p.same_technique, jac))
    out.append("\nTechniques per vantage point (URLs interfered with, by stage and by verdict):\n")
    tech = matrix.techniques()
    name_w = max(8, *(len(c) for c in tech)) if tech else 8
    keys = ("urls", "interference", "dns", "tcp", "tls", "http", "hijacked", "reset", "blocked", "throttled")
    fmt = f"  {{:<{name_w}}}" + "".join("  {:>6}" for _ in keys) + "\n"
    out.append(fmt.format("VANTAGE", "URLS", "BLOCKS", "DNS", "TCP", "TLS", "HTTP", "HIJACK",
                          "RESET", "BLOCK", "THROTL"))
    for col, counts in tech.items():
        out.append(fmt.format(col, *(counts[k] for k in keys)))
    return "".join(out)


def _stable(stability: Mapping[str, Stability] | None, column: str, url: str) -> str:
    """``agree/runs`` of a cell (``7/10``), or empty."""
    s = stability.get(column) if stability else None
    got = s.cells.get(url) if s else None
    return f"{got[0]}/{got[1]}" if got else ""


def render_csv(matrix: Matrix, stability: Mapping[str, Stability] | None = None) -> Iterator[str]:
    """url, category, then per vantage point its verdict and stage (and, with ``stability``,
    how many of its last runs agree with the verdict: ``7/10``)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    header = ["url", "category"]
    for c in matrix.columns:
        header += [c, f"{c}:stage"] + ([f"{c}:stable"] if stability else [])
    w.writerow(header)
    for i, (url, category, cells) in enumerate(matrix.rows()):
        values: list[str] = [url, category]
        for c, cell in zip(matrix.columns, cells, strict=True):
            values += [cell.verdict, cell.stage or ""] if cell else ["", ""]
            if stability:
                values.append(_stable(stability, c, url))
        w.writerow(values)
        if i % _CHUNK == _CHUNK - 1:
            yield buf.getvalue()
            buf.seek(0)
            buf.truncate()
    yield buf.getvalue()


def render_json(matrix: Matrix, filters: dict[str, object],
                extra: dict[str, object] | None = None,
                stability: Mapping[str, Stability] | None = None) -> Iterator[str]:
    """The matrix, the pairs and the techniques as one JSON document, written URL by URL;
    ``extra`` adds keys at the end (endpoints, isolation); with ``stability``, each verdict says
    how many of the last runs agree with it (``"stable": "7/10"``)."""
    dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
    yield (f'{{"vantage_points":{dumps(matrix.columns)},\n"filters":{dumps(filters)},\n'
           '"urls":[')
    buf: list[str] = []
    for n, (url, category, cells) in enumerate(matrix.rows()):
        verdicts = {c: {"verdict": cell.verdict, "stage": cell.stage,
                        "measured_at": cell.measured_at,
                        **({"stable": _stable(stability, c, url)} if stability else {})}
                    for c, cell in zip(matrix.columns, cells, strict=True) if cell is not None}
        buf.append(("\n" if n == 0 else ",\n")
                   + dumps({"url": url, "category": category, "verdicts": verdicts}))
        if len(buf) >= _CHUNK:
            yield "".join(buf)
            buf = []
    yield "".join(buf)
    more = "".join(f',\n{dumps(k)}:{dumps(v)}' for k, v in (extra or {}).items())
    yield (f'],\n"pairs":{dumps([p.as_dict() for p in matrix.pairs()])},\n'
           f'"techniques":{dumps(matrix.techniques())}{more}}}\n')


def render_stability(matrix: Matrix, stability: Mapping[str, Stability]) -> str:
    """Per vantage point: how steady its latest verdicts are over its last runs."""
    last = next(iter(stability.values())).last if stability else 0
    out = [f"\nStability of the latest verdicts over each vantage point's last {last} runs:\n",
           f"  {'VANTAGE':<16} {'URLS':>6} {'STEADY':>7} {'CHANGED':>8} {'WEAK BLOCKS':>12} {'MEAN':>6}\n"]
    for c in matrix.columns:
        s = stability.get(c)
        if s is None:
            continue
        column = matrix.cells[c]
        interference = {matrix.urls[i]: cell.interference for i, cell in column.items()}
        n = s.summary(interference)
        out.append(f"  {cut(printable(c), 16):<16} {n['urls']:>6} {n['steady']:>7} "
                   f"{n['changed']:>8} {n['weak_interference']:>12} {n['mean']:>6.0%}\n")
    out.append("  STEADY: all of those runs (two or more) had the latest verdict; CHANGED: some\n"
               "  did not; WEAK BLOCKS: interference now that half of those runs or fewer saw.\n")
    return "".join(out)


def render_isolation(isolated: dict[str, Isolation]) -> str:
    """Per vantage point: runs judged, runs isolated, and the isolation intervals."""
    out = ["\nNational isolation per vantage point (sites at home reached, abroad not; "
           "see `probe outages`):\n"]
    if not isolated:
        out.append("  (no finished runs)\n")
    unknown = [name for name, iso in isolated.items() if not iso.country]
    for name, iso in isolated.items():
        if not iso.country:
            continue
        out.append(f"  {name} ({iso.country}): {iso.isolated_runs} of {iso.runs} runs isolated\n")
        for o in iso.intervals:
            until = o.before or "ongoing"
            out.append(f"    {o.first_seen} .. {o.last_seen} (between {o.after or '-'} and {until}): "
                       f"{o.evidence}\n")
    if unknown:
        out.append(f"  not judged (country unknown): {', '.join(unknown)}\n")
    return "".join(out)
