"""`probe compare`: the latest verdicts of every URL at every vantage point, and how they agree."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from probe.cli._group import cli
from probe.cli.options import country_lookup, db_option, since_option

if TYPE_CHECKING:
    from probe.present.circumvention import EndpointMatrix
    from probe.research.compare import Matrix
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
        _with_ooni(db, as_json)
        return
    from probe.present.compare import (
        render_csv,
        render_isolation,
        render_json,
        render_summary,
        render_table,
    )
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


def _beyond(db: Path, names: list[str], since: str | None, geo: str | None, isolation_too: bool
            ) -> tuple[EndpointMatrix, dict[str, Isolation] | None]:
    """The endpoint matrix and (``isolation_too``) each vantage point's isolation (same vantage
    points and time)."""
    from probe.present.circumvention import EndpointMatrix
    from probe.research.outages import isolation, run_stats
    from probe.store import SQLiteError, Store
    from probe.store.circumvention import latest_endpoints

    country_of = country_lookup(geo) if isolation_too else None
    try:
        with Store.open(db, create=False) as store:
            endpoints = EndpointMatrix.from_latest(latest_endpoints(store, names or None, since),
                                                   names or None)  # fmt: skip
            if not isolation_too:
                return endpoints, None
            stats = [s for s in run_stats(store, None, since, country_of=country_of)
                     if not names or s.vantage in names]  # fmt: skip
    except SQLiteError as exc:  # a file that is not a database (Store.open does not check it)
        raise click.ClickException(str(exc)) from None
    isolated = isolation(stats)
    if names:
        isolated = {n: isolated[n] for n in names if n in isolated}
    return endpoints, isolated


def _load(db: Path, names: list[str], cats: list[str], since: str | None, *, times: bool
          ) -> Matrix:
    """Open the database read-only-ish through Store (checks it is a probe database)."""
    from probe.research import compare as cmp
    from probe.store import SQLiteError, Store

    try:
        with Store.open(db, create=False) as store:
            try:
                return cmp.load_matrix(store, names or None, cats or None, since, times=times)
            except KeyError as exc:
                known = ", ".join(store.vantage_ids()) or "none"
                raise click.BadParameter(
                    f"no vantage point {exc.args[0]} in {db} (known: {known})",
                    param_hint="--vantage",
                ) from None
    except SQLiteError as exc:  # a file that is not a database (Store.open does not check it)
        raise click.ClickException(str(exc)) from None


def _with_ooni(db: Path, as_json: bool) -> None:
    """Where probe's verdicts and OONI's differ on the OONI measurements imported into ``db``."""
    from probe.present.ooni import ooni_report
    from probe.store import Store

    with Store.open(db, create=False) as store:
        for line in ooni_report(store, 1000, as_json):
            click.echo(line, nl=False)
