"""`probe report`: a self-contained HTML report (summary, heatmap, timeline, techniques, evidence)."""

from __future__ import annotations

from pathlib import Path

import click

from probe.cli._group import cli
from probe.cli.options import country_lookup, db_option


@cli.command("report")
@db_option
@click.option("--out", "out", type=click.Path(dir_okay=False, path_type=Path), default="report.html",
              show_default=True, help="HTML file to write.")
@click.option("--vantage", "vantages", multiple=True, metavar="NAME",
              help="Only this vantage point (repeatable). Default: all of them.")
@click.option("--title", default="probe report", show_default=True, help="Title of the report.")
@click.option("--max-urls", type=click.IntRange(1), default=150, show_default=True,
              help="URLs in the heatmap (those with the most interference).")
@click.option("--max-evidence", type=click.IntRange(0), default=100, show_default=True,
              help="Non-ok verdicts shown with their whole evidence.")
@click.option("--geo", type=click.Path(exists=True, dir_okay=False),
              help="IP-to-country data for the isolation rule (as `probe outages --geo`)  "
              "[default: probe's]")
def report_command(db: Path, out: Path, vantages: tuple[str, ...], title: str, max_urls: int,
                   max_evidence: int, geo: str | None) -> None:
    """Write one self-contained HTML file with the results of every vantage point.

    It opens offline (no script, nothing fetched: plots are inline SVG): a summary per
    vantage point, a heatmap of URLs x vantage points coloured by verdict, a timeline of
    verdict changes, the technique mix per vantage point, circumvention endpoints (Tor,
    OpenVPN, VPNs) and messaging apps (Telegram, WhatsApp, Signal: reachable or not, which
    part) per vantage point, outages and national isolation, and the evidence of each non-ok
    URL.

    \b
    Examples:
      probe report --out report.html
      probe report --db results/all.db --vantage msk-isp1 \\
          --vantage spb-isp2 --out ru.html
    """
    from probe.host.output import check_output_file, replacing
    from probe.inputs.fingerprints import default_fingerprints
    from probe.present.html import ReportLimits, write_report
    from probe.present.text import plural
    from probe.store import Store

    check_output_file(out, protect=[db])
    country_of = country_lookup(geo)
    limits = ReportLimits(heatmap_urls=max_urls, evidence_details=max_evidence)
    try:
        with Store.open(db, create=False) as store:
            if vantages:
                known = set(store.vantage_ids())
                missing = [v for v in vantages if v not in known]
                if missing:
                    raise click.BadParameter(f"no vantage point {', '.join(missing)} in {db}",
                                             param_hint="--vantage")
            # Written under a temporary name and renamed: a reader never sees half a report.
            with replacing(out, "w", encoding="utf-8") as f:
                drawn = write_report(store, f, vantages=vantages or None, limits=limits,
                                     fingerprints=default_fingerprints(), title=title,
                                     country_of=country_of)
    except OSError as exc:
        raise click.ClickException(f"{out}: cannot write the report ({exc.strerror or exc})") from None
    click.echo(f"{out}: {plural(drawn['vantage_points'], 'vantage point')}, "
               f"{plural(drawn['non_ok'], 'non-ok verdict')}, {out.stat().st_size / 1e3:.0f} kB")
