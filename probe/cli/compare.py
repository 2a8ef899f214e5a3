"""`probe compare`: the latest verdicts of every URL at every vantage point, and how they agree."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import click

from probe.cli._group import cli
from probe.cli.options import db_option, since_option

if TYPE_CHECKING:
    from probe.present.circumvention import EndpointMatrix
    from probe.research.compare import Cell, Matrix
    from probe.research.outages import Isolation

# One or two letters per verdict when the vantage points do not fit the terminal by name.
_CODES = {"ok": ".", "blocked": "B", "reset": "R", "hijacked": "H", "throttled": "T", "down": "~",
          "inconclusive": "?"}
_STAGE_CODES = {"dns": "d", "tcp": "t", "tls": "s", "http": "h"}
_FULL_WIDTH = 12  # "blocked/http", "hijacked/dns"
_CHUNK = 2000


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(1, width - 1)] + "…"


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
        head = [_cut(c, w) for c, w in zip(cols, col_w, strict=True)]
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
        buf.append(line.format(_cut(url, url_w), _cut(category or "-", 6), *texts).rstrip() + "\n")
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


def render_csv(matrix: Matrix) -> Iterator[str]:
    """url, category, then per vantage point its verdict and stage."""
    import csv
    import io

    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    header = ["url", "category"]
    for c in matrix.columns:
        header += [c, f"{c}:stage"]
    w.writerow(header)
    for i, (url, category, cells) in enumerate(matrix.rows()):
        values: list[str] = [url, category]
        for cell in cells:
            values += [cell.verdict, cell.stage or ""] if cell else ["", ""]
        w.writerow(values)
        if i % _CHUNK == _CHUNK - 1:
            yield buf.getvalue()
            buf.seek(0)
            buf.truncate()
    yield buf.getvalue()


def render_json(matrix: Matrix, filters: dict[str, object],
                extra: dict[str, object] | None = None) -> Iterator[str]:
    """The matrix, the pairs and the techniques as one JSON document, written URL by URL;
    ``extra`` adds keys at the end (endpoints, isolation)."""
    import json

    dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
    yield (f'{{"vantage_points":{dumps(matrix.columns)},\n"filters":{dumps(filters)},\n'
           '"urls":[')
    buf: list[str] = []
    for n, (url, category, cells) in enumerate(matrix.rows()):
        verdicts = {c: {"verdict": cell.verdict, "stage": cell.stage,
                        "measured_at": cell.measured_at}
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


@cli.command("compare")
@db_option
@click.option("--vantage", "vantages", multiple=True, metavar="NAME[,NAME...]",
              help="Only these vantage points, in this order (repeatable; default: all).")
@click.option("--category", "categories", multiple=True, metavar="CODE[,CODE...]",
              help="Only URLs of these Citizen Lab categories (repeatable).")
@since_option("Only verdicts measured since then: 2026-11-20, 2026-11-20T10:00, 7d, 24h.")
@click.option("--only-differences", is_flag=True,
              help="Only URLs whose verdicts differ between vantage points.")
@click.option("--summary", "summary_only", is_flag=True,
              help="Only the per-pair summary and technique mix, not the matrix.")
@click.option("--json", "as_json", is_flag=True, help="One JSON document: matrix, pairs, techniques.")
@click.option("--csv", "as_csv", is_flag=True, help="The matrix as CSV (verdict, stage per vantage point).")
@click.option("--isolation", is_flag=True,
              help="Also each vantage point's national isolation (runs isolated, intervals): "
              "reads every run's first-hop results, about 12 s of CPU per million measurements.")
@click.option("--geo", type=click.Path(exists=True, dir_okay=False),
              help="IP-to-country data for --isolation (as `probe outages --geo`; implies "
              "--isolation)  [default: probe's]")
@click.option("--with-ooni", is_flag=True,
              help="Compare probe's verdicts with OONI's on imported OONI measurements "
                   "(`probe import ooni`): agreement, then where they differ (--json: JSON lines).")
def compare_command(db: Path, vantages: tuple[str, ...], categories: tuple[str, ...],
                    since: str | None, only_differences: bool, summary_only: bool, as_json: bool,
                    as_csv: bool, isolation: bool, geo: str | None, with_ooni: bool) -> None:
    """Compare vantage points: the latest verdict of every URL at each, and how they agree.

    The summary compares each pair of vantage points over the URLs both measured: how many each
    blocks (blocked, reset, hijacked or throttled), how many both block, the Jaccard similarity of the two
    blocked sets, and how many of the shared blocks use the same technique (verdict and stage);
    then, per vantage point, the mix of techniques (DNS / TCP / TLS / HTTP; hijacked / reset /
    blocked).

    Circumvention endpoints (`probe circumvention`: Tor relays, OpenVPN, VPN endpoints) get a
    matrix of their own, with how many of each kind each vantage point reached; --category
    applies to URLs only. With --isolation, each vantage point's national isolation too (`probe
    outages`): its runs where sites at home were reached and those abroad were not, and the
    intervals they form.

    \b
    Examples:
      probe merge moscow.db almaty.db --into all.db
      probe compare --db all.db
      probe compare --db all.db --only-differences --category NEWS,HUMR
      probe compare --db all.db --since 7d --csv > matrix.csv
      probe compare --db all.db --summary --isolation
      probe compare --db ooni.db --with-ooni   # after probe import ooni
    """
    if as_json and as_csv:
        raise click.UsageError("--json and --csv are exclusive")
    if with_ooni:
        from probe.cli.import_ooni import ooni_report

        ooni_report(db, limit=1000, as_json=as_json)
        return
    from probe.research import compare as cmp
    since_iso = since  # made ISO by the option's callback
    names = cmp.split_list(vantages)
    cats = cmp.split_list(categories)
    matrix = _load(db, names, cats, since_iso, times=as_json)
    if only_differences:
        matrix = matrix.only_differences()
    if as_csv:
        for chunk in render_csv(matrix):
            click.echo(chunk, nl=False)
        return
    endpoints, isolated = _beyond(db, names, since_iso, geo, isolation or geo is not None)
    if only_differences:
        endpoints = endpoints.only_differences()
    if as_json:
        filters: dict[str, object] = {"vantage": names or None, "category": cats or None, "since": since_iso,
                   "only_differences": only_differences}
        extra: dict[str, object] = {**endpoints.as_json()}
        if isolated is not None:
            extra["isolation"] = {k: v.to_dict() for k, v in isolated.items()}
        for chunk in render_json(matrix, filters, extra):
            click.echo(chunk, nl=False)
        return
    import shutil

    width = shutil.get_terminal_size((120, 24)).columns
    if not summary_only:
        for chunk in render_table(matrix, width):
            click.echo(chunk, nl=False)
    click.echo(render_summary(matrix), nl=False)
    for chunk in endpoints.render_table(width, matrix=not summary_only):
        click.echo(chunk, nl=False)
    if isolated is not None:
        click.echo(render_isolation(isolated), nl=False)


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


def _beyond(db: Path, names: list[str], since: str | None, geo: str | None, isolation_too: bool
            ) -> tuple[EndpointMatrix, dict[str, Isolation] | None]:
    """The endpoint matrix and (``isolation_too``) each vantage point's isolation (same vantage
    points and time)."""
    from probe.cli.outages import geo_lookup
    from probe.present.circumvention import EndpointMatrix
    from probe.research.outages import isolation, run_stats
    from probe.store import SQLiteError, Store, StoreError
    from probe.store.circumvention import latest_endpoints

    country_of = geo_lookup(geo) if isolation_too else None
    try:
        with Store.open(db, create=False, check=False) as store:
            endpoints = EndpointMatrix.from_latest(latest_endpoints(store, names or None, since),
                                                   names or None)  # fmt: skip
            if not isolation_too:
                return endpoints, None
            stats = [s for s in run_stats(store, None, since, country_of=country_of)
                     if not names or s.vantage in names]  # fmt: skip
    except (StoreError, SQLiteError) as exc:
        raise click.ClickException(str(exc)) from None
    isolated = isolation(stats)
    if names:
        isolated = {n: isolated[n] for n in names if n in isolated}
    return endpoints, isolated


def _load(db: Path, names: list[str], cats: list[str], since: str | None, *, times: bool
          ) -> Matrix:
    """Open the database read-only-ish through Store (checks it is a probe database)."""
    from probe.research import compare as cmp
    from probe.store import SQLiteError, Store, StoreError

    try:
        with Store.open(db, create=False, check=False) as store:
            try:
                return cmp.load_matrix(store, names or None, cats or None, since, times=times)
            except KeyError as exc:
                known = ", ".join(store.vantage_ids()) or "none"
                raise click.BadParameter(
                    f"no vantage point {exc.args[0]} in {db} (known: {known})",
                    param_hint="--vantage",
                ) from None
    except (StoreError, SQLiteError) as exc:
        raise click.ClickException(str(exc)) from None
