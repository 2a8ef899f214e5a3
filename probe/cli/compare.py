"""`probe compare`: the latest verdicts of every URL at every vantage point, and how they agree."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from probe.cli._group import cli
from probe.cli.options import country_lookup, db_option, since_option

if TYPE_CHECKING:
    from probe.present.circumvention import EndpointMatrix
    from probe.research.compare import Matrix, Stability
    from probe.research.outages import Isolation


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
@click.option("--suite", type=click.Choice(("web", "quic", "ech")), default="web", show_default=True,
              help="web: the URLs' verdicts; quic, ech: the verdicts of their QUIC (HTTP/3) or "
              "ECH test (`probe run --quic`, `--ech`), per vantage point.")
@click.option("--with-ooni", is_flag=True,
              help="Compare probe's verdicts with OONI's on imported OONI measurements "
                   "(`probe import ooni`): agreement, then where they differ (--json: JSON lines).")
@click.option("--stability", "stability_runs", type=click.IntRange(min=1), metavar="N",
              help="How many of each vantage point's last N runs agree with each latest verdict: a "
                   "summary per vantage point, and a stable column (7/10) in --csv and --json.")
def compare_command(db: Path, vantages: tuple[str, ...], categories: tuple[str, ...],
                    since: str | None, only_differences: bool, summary_only: bool, as_json: bool,
                    as_csv: bool, isolation: bool, geo: str | None, suite: str,
                    with_ooni: bool, stability_runs: int | None) -> None:
    """Compare vantage points: the latest verdict of every URL at each, and how they agree.

    The summary compares each pair of vantage points over the URLs both measured: how many each
    blocks (blocked, reset, hijacked or throttled), how many both block, the Jaccard similarity of the two
    blocked sets, and how many of the shared blocks use the same technique (verdict and stage);
    then, per vantage point, the mix of techniques (DNS / TCP / TLS / HTTP; hijacked / reset /
    blocked).

    Circumvention endpoints (`probe circumvention`: Tor relays, OpenVPN, VPN endpoints) and
    messaging endpoints (`probe messaging`) get matrices of their own, with how many of each
    kind each vantage point reached, then each messaging app per vantage point; --category
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
      probe compare --db all.db --stability 10   # how steady each verdict is
      probe compare --db ooni.db --with-ooni   # after probe import ooni
      probe compare --db all.db --suite quic   # whose HTTP/3 is blocked where
    """
    if as_json and as_csv:
        raise click.UsageError("--json and --csv are exclusive")
    if suite != "web" and stability_runs:
        raise click.UsageError(f"--stability is about the web verdicts, not --suite {suite}")
    if with_ooni:
        _with_ooni(db, as_json)
        return
    from probe.present.compare import (
        render_csv,
        render_isolation,
        render_json,
        render_stability,
        render_summary,
        render_table,
    )
    from probe.research import compare as cmp

    since_iso = since  # made ISO by the option's callback
    names = cmp.split_list(vantages)
    cats = cmp.split_list(categories)
    matrix = _load(db, names, cats, since_iso, times=as_json, suite=suite)
    if only_differences:
        matrix = matrix.only_differences()
    stable = _stability(db, matrix, stability_runs) if stability_runs else None
    if as_csv:
        for chunk in render_csv(matrix, stable):
            click.echo(chunk, nl=False)
        return
    if suite != "web" and (isolation or geo):
        raise click.UsageError(f"--isolation is about the web verdicts, not --suite {suite}")
    endpoints, messaging, isolated = _beyond(db, names, since_iso, geo, isolation or geo is not None,
                                             with_endpoints=suite == "web")
    if only_differences:
        endpoints = endpoints.only_differences()
        messaging = messaging.only_differences()
    from probe.present.messaging import app_summary, vantage_app_lines

    apps = [r for cells in messaging.rows.values() for r in cells.values()]
    if as_json:
        filters: dict[str, object] = {"vantage": names or None, "category": cats or None, "since": since_iso,
                   "only_differences": only_differences}
        extra: dict[str, object] = {**endpoints.as_json()}
        if messaging.rows:
            extra["messaging"] = {**messaging.as_json(), "apps": app_summary(apps)}
        if isolated is not None:
            extra["isolation"] = {k: v.to_dict() for k, v in isolated.items()}
        if stable is not None:
            filters["stability"] = stability_runs
        for chunk in render_json(matrix, filters, extra, stable):
            click.echo(chunk, nl=False)
        return
    from probe.present.terminal import output_width

    width = output_width(120)
    if not summary_only:
        for chunk in render_table(matrix, width):
            click.echo(chunk, nl=False)
    click.echo(render_summary(matrix, width), nl=False)
    if stable is not None:
        click.echo(render_stability(matrix, stable, width), nl=False)
    for chunk in endpoints.render_table(width, matrix=not summary_only):
        click.echo(chunk, nl=False)
    for chunk in messaging.render_table(width, matrix=not summary_only):
        click.echo(chunk, nl=False)
    for line in vantage_app_lines(apps, width):
        click.echo(line)
    if isolated is not None:
        click.echo(render_isolation(isolated, width), nl=False)


def _beyond(db: Path, names: list[str], since: str | None, geo: str | None, isolation_too: bool,
            *, with_endpoints: bool = True
            ) -> tuple[EndpointMatrix, EndpointMatrix, dict[str, Isolation] | None]:
    """The endpoint matrices, circumvention's and the messaging apps' (empty without
    ``with_endpoints``), and (``isolation_too``) each vantage point's isolation (same vantage
    points and time)."""
    from probe.inputs.endpointlists import MESSAGING_APPS
    from probe.present.circumvention import EndpointMatrix
    from probe.research.outages import isolation, run_stats
    from probe.store import SQLiteError, Store
    from probe.store.circumvention import latest_endpoints

    country_of = country_lookup(geo) if isolation_too else None
    try:
        with Store.open(db, create=False) as store:
            rows = latest_endpoints(store, names or None, since) if with_endpoints else []
            endpoints = EndpointMatrix.from_latest([r for r in rows if r["kind"] not in MESSAGING_APPS],
                                                   names or None)
            messaging = EndpointMatrix.from_latest([r for r in rows if r["kind"] in MESSAGING_APPS],
                                                   names or None, "Messaging endpoints")
            if not isolation_too:
                return endpoints, messaging, None
            stats = [s for s in run_stats(store, None, since, country_of=country_of)
                     if not names or s.vantage in names]  # fmt: skip
    except SQLiteError as exc:  # a file that is not a database (Store.open does not check it)
        raise click.ClickException(str(exc)) from None
    isolated = isolation(stats)
    if names:
        isolated = {n: isolated[n] for n in names if n in isolated}
    return endpoints, messaging, isolated


def _load(db: Path, names: list[str], cats: list[str], since: str | None, *, times: bool,
          suite: str = "web") -> Matrix:
    """Open the database read-only-ish through Store (checks it is a probe database)."""
    from probe.research import compare as cmp
    from probe.store import SQLiteError, Store

    try:
        with Store.open(db, create=False) as store:
            try:
                if suite != "web":
                    return cmp.protocol_matrix(store, suite, names or None, cats or None, since)
                return cmp.load_matrix(store, names or None, cats or None, since, times=times)
            except KeyError as exc:
                known = ", ".join(store.vantage_ids()) or "none"
                raise click.BadParameter(
                    f"no vantage point {exc.args[0]} in {db} (known: {known})",
                    param_hint="--vantage",
                ) from None
    except SQLiteError as exc:  # a file that is not a database (Store.open does not check it)
        raise click.ClickException(str(exc)) from None


def _stability(db: Path, matrix: Matrix, last: int) -> dict[str, Stability]:
    """Per vantage point of the matrix: how many of its last ``last`` runs agree with each
    latest verdict."""
    from probe.research import compare as cmp
    from probe.store import Store

    with Store.open(db, create=False, check=False) as store:
        return cmp.load_stability(store, matrix, last)


def _with_ooni(db: Path, as_json: bool) -> None:
    """Where probe's verdicts and OONI's differ on the OONI measurements imported into ``db``."""
    from probe.present.ooni import ooni_report
    from probe.present.terminal import output_width
    from probe.store import Store

    with Store.open(db, create=False) as store:
        for line in ooni_report(store, 1000, as_json, output_width(120)):
            click.echo(line, nl=False)
