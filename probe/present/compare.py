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

from probe.present.terminal import clean, json_safe
from probe.present.text import cells, cut, cut_middle, pad, plural, wrap

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
    """The matrix fitted to ``width`` columns: verdicts by name, or codes and a legend. URLs
    too long for their column are shortened in the middle (scheme and end kept)."""
    cols = [clean(c) for c in matrix.columns]
    longest = max((cells(clean(u)) for u in matrix.urls), default=3)
    col_w = [max(_FULL_WIDTH, min(cells(c), 16)) for c in cols]
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
        legend = "vantage points: " + ", ".join(f"{i + 1}={c}" for i, c in enumerate(cols))
        buf += [line + "\n" for line in wrap(legend, width, "", "  ")]
        legend = ("cells: " + " ".join(f"{v}={k}" for k, v in _CODES.items()) + "; stage: "
                  + " ".join(f"{v}={k}" for k, v in _STAGE_CODES.items()) + "; blank = not measured")
        buf += [line + "\n" for line in wrap(legend, width, "", "  ")]

    def line(url: str, category: str, texts: list[str]) -> str:
        cells_ = [pad(url, url_w), pad(category, 6), *(pad(t, w) for t, w in zip(texts, col_w, strict=True))]
        return (cells_[0] + "  " + cells_[1] + sep + sep.join(cells_[2:])).rstrip() + "\n"

    buf.append(line("URL", "CAT", head))
    n = 0
    for url, category, row in matrix.rows():
        n += 1
        texts = [_cell_text(c, compact) for c in row]
        buf.append(line(cut_middle(clean(url), url_w), cut(clean(category or "-"), 6), texts))
        if len(buf) >= _CHUNK:
            yield "".join(buf)
            buf = []
    buf.append(f"({plural(n, 'URL')} x {plural(len(cols), 'vantage point')})\n")
    yield "".join(buf)


_PAIR_HEAD = ("COMMON", "A BLOCKS", "B BLOCKS", "BOTH", "SAME WAY", "JACCARD")
_STAGE_KEYS = (("urls", "URLS"), ("interference", "BLOCKS"), ("dns", "DNS"), ("tcp", "TCP"),
               ("tls", "TLS"), ("http", "HTTP"))
_VERDICT_KEYS = (("hijacked", "HIJACKED"), ("reset", "RESET"), ("blocked", "BLOCKED"),
                 ("throttled", "THROTTLED"))


def _numbers(title: str, names: list[str], keys: tuple[tuple[str, str], ...],
             counts: dict[str, dict[str, int]], width: int) -> list[str]:
    """A table of counts: a name column, then one right-aligned column per key."""
    num_w = [max(6, len(head)) for _, head in keys]
    name_w = min(max(8, *(cells(n) for n in names)) if names else 8,
                 max(8, width - 2 - sum(w + 2 for w in num_w)))
    out = [f"  {pad(title, name_w)}" + "".join(f"  {h:>{w}}" for (_, h), w in zip(keys, num_w, strict=True))]
    for name, raw in zip(names, counts.values(), strict=True):
        out.append(f"  {pad(cut(name, name_w), name_w)}"
                   + "".join(f"  {raw[k]:>{w}}" for (k, _), w in zip(keys, num_w, strict=True)))
    return [line + "\n" for line in out]


def render_summary(matrix: Matrix, width: int = 80) -> str:
    """Per pair: blocked by each, by both, Jaccard; per vantage point: the technique mix, by
    stage and by verdict. Fitted to ``width`` columns (names are cut when they do not fit)."""
    intro = wrap("Pairs (over the URLs both measured; blocks = blocked, reset, hijacked or "
                 "throttled):", width)
    out = ["\n" + "\n".join(intro) + "\n"]
    pairs = matrix.pairs()
    if not pairs:
        out.append("  (one vantage point: nothing to pair)\n")
    else:
        numbers = 7 + 8 + 8 + 6 + 9 + 7 + 2 * 6
        name_w = min(max(8, *(cells(clean(p.a)) for p in pairs), *(cells(clean(p.b)) for p in pairs)),
                     max(8, (width - 2 - 2 - numbers) // 2))
        fmt = "{:>7}  {:>8}  {:>8}  {:>6}  {:>9}  {:>7}\n"
        out.append(f"  {pad('A', name_w)}  {pad('B', name_w)}  " + fmt.format(*_PAIR_HEAD))
        for p in pairs:
            jac = "-" if p.jaccard is None else f"{p.jaccard:.3f}"
            out.append(f"  {pad(cut(clean(p.a), name_w), name_w)}  {pad(cut(clean(p.b), name_w), name_w)}  "
                       + fmt.format(p.common, p.a_blocks, p.b_blocks, p.both_block,
                                    p.same_technique, jac))
    out.append("\n" + "\n".join(wrap("Techniques per vantage point (URLs interfered with, by stage, "
                                     "then by verdict):", width)) + "\n")
    tech = matrix.techniques()
    names = [clean(c) for c in tech]
    out += _numbers("VANTAGE", names, _STAGE_KEYS, tech, width)
    out += _numbers("VANTAGE", names, _VERDICT_KEYS, tech, width)
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
        header += [clean(c), f"{clean(c)}:stage"] + ([f"{clean(c)}:stable"] if stability else [])
    w.writerow(header)
    for i, (url, category, row) in enumerate(matrix.rows()):
        values: list[str] = [clean(url), clean(category)]
        for c, cell in zip(matrix.columns, row, strict=True):
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
    encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode

    def dumps(value: object) -> str:
        return json_safe(encode(value))

    yield (f'{{"vantage_points":{dumps(matrix.columns)},\n"filters":{dumps(filters)},\n'
           '"urls":[')
    buf: list[str] = []
    for n, (url, category, row) in enumerate(matrix.rows()):
        verdicts = {c: {"verdict": cell.verdict, "stage": cell.stage,
                        "measured_at": cell.measured_at,
                        **({"stable": _stable(stability, c, url)} if stability else {})}
                    for c, cell in zip(matrix.columns, row, strict=True) if cell is not None}
        buf.append(("\n" if n == 0 else ",\n")
                   + dumps({"url": url, "category": category, "verdicts": verdicts}))
        if len(buf) >= _CHUNK:
            yield "".join(buf)
            buf = []
    yield "".join(buf)
    more = "".join(f',\n{dumps(k)}:{dumps(v)}' for k, v in (extra or {}).items())
    yield (f'],\n"pairs":{dumps([p.as_dict() for p in matrix.pairs()])},\n'
           f'"techniques":{dumps(matrix.techniques())}{more}}}\n')


def render_stability(matrix: Matrix, stability: Mapping[str, Stability], width: int = 80) -> str:
    """Per vantage point: how steady its latest verdicts are over its last runs (lines of at
    most ``width`` columns, and never more than 80: prose; the table's rows take 62)."""
    width = min(width, 80)
    last = next(iter(stability.values())).last if stability else 0
    out = ["\n"] + [line + "\n" for line in wrap(
        f"Stability of the latest verdicts over each vantage point's last {last} runs:", width)]
    out.append(f"  {'VANTAGE':<16} {'URLS':>6} {'STEADY':>7} {'CHANGED':>8} {'WEAK BLOCKS':>12} "
               f"{'MEAN':>6}\n")
    for c in matrix.columns:
        s = stability.get(c)
        if s is None:
            continue
        column = matrix.cells[c]
        interference = {matrix.urls[i]: cell.interference for i, cell in column.items()}
        n = s.summary(interference)
        out.append(f"  {pad(cut(clean(c), 16), 16)} {n['urls']:>6} {n['steady']:>7} "
                   f"{n['changed']:>8} {n['weak_interference']:>12} {n['mean']:>6.0%}\n")
    out += [line + "\n" for line in wrap(
        "STEADY: all of those runs (two or more) had the latest verdict; CHANGED: some did not; "
        "WEAK BLOCKS: interference now that half of those runs or fewer saw.", width, "  ")]
    return "".join(out)


def render_isolation(isolated: dict[str, Isolation], width: int = 80) -> str:
    """Per vantage point: runs judged, runs isolated, and the isolation intervals (lines of at
    most ``width`` columns)."""
    out = ["\n" + "\n".join(wrap("National isolation per vantage point (sites at home reached, "
                                 "abroad not; see `probe outages`):", width)) + "\n"]
    if not isolated:
        out.append("  (no finished runs)\n")
    unknown = [name for name, iso in isolated.items() if not iso.country]
    for name, iso in isolated.items():
        if not iso.country:
            continue
        out += [line + "\n" for line in wrap(
            f"{clean(name)} ({clean(iso.country)}): {iso.isolated_runs} of {iso.runs} runs isolated",
            width, "  ", "    ")]
        for o in iso.intervals:
            until = o.before or "ongoing"
            out += [line + "\n" for line in wrap(
                f"{o.first_seen} .. {o.last_seen} (between {o.after or '-'} and {until}): "
                f"{clean(o.evidence)}", width, "    ", "      ")]
    if unknown:
        out += [line + "\n" for line in wrap(
            f"not judged (country unknown): {clean(', '.join(unknown))}", width, "  ", "    ")]
    return "".join(out)
