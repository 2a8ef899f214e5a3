"""`probe geo`: the offline IP-to-ASN data used by the classifier and the vantage identity."""

from __future__ import annotations

from pathlib import Path

import click

from probe.cli._group import cli


@cli.group("geo")
def geo_group() -> None:
    """Offline IP -> ASN/country data.

    probe ships a table derived from the IPFire Location database (CC BY-SA 4.0), so the
    classifier's same-network rule (CDNs) and the vantage point's ASN work offline from the
    first run. `probe geo update` replaces it with a fresher download; `--geo PATH` on `probe
    run` uses another file (ip2asn TSV, .mmdb or a packed table).
    """


@geo_group.command("update")
@click.option("--url", default=None, metavar="URL",
              help="An ip2asn TSV (.tsv or .tsv.gz) or an .mmdb to download  "
                   "[default: $PROBE_GEO_URL, else iptoasn.com's combined table]")
@click.option("--dest", type=click.Path(dir_okay=False, path_type=Path),
              help="Where to store it (default: the user's data directory, see `probe geo path`).")
@click.option("--license", "license_", metavar="TEXT",
              help="The data's license, recorded with it (known for the default URL).")
@click.option("--timeout", type=click.FloatRange(1.0), default=60.0, show_default=True)
def geo_update(url: str | None, dest: Path | None, license_: str | None, timeout: float) -> None:
    """Download fresher IP-to-ASN data (needs Internet access).

    \b
    Examples:
      probe geo update
      probe geo update --url https://example.org/ip2asn-v4.tsv.gz \\
          --license "CC BY 4.0"
    """
    from probe.inputs.geo import update_geo
    from probe.present.geo import format_saved

    path = update_geo(url, dest, timeout=timeout, license=license_)
    click.echo(format_saved(path, url))


@geo_group.command("lookup")
@click.argument("ips", nargs=-1, required=True)
@click.option("--db", "db", type=click.Path(dir_okay=False, path_type=Path), multiple=True,
              help="Database file(s) (default: see `probe geo path`). Repeatable: ASN + country.")
def geo_lookup(ips: tuple[str, ...], db: tuple[Path, ...]) -> None:
    """Show ASN, country and organisation of IP addresses.

    \b
    Example:
      probe geo lookup 192.0.2.1 2001:db8::1
    """
    from probe.inputs.geo import GeoDB, GeoError, default_geo_sources
    from probe.present.geo import format_lookup

    paths = list(db) or default_geo_sources()
    try:
        geo = GeoDB(paths)
    except GeoError as exc:
        raise click.ClickException(f"{exc} (run `probe geo update` or pass --db)") from None
    for ip in ips:
        click.echo(format_lookup(ip, geo.lookup(ip)))


@geo_group.command("path")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per file.")
def geo_path(as_json: bool) -> None:
    """Show which IP-to-ASN data is in use: file, source, license and age.

    The table `probe geo update` downloaded is used when it exists, else the one shipped
    with probe. `probe run --geo PATH` overrides both for one run.
    """
    from probe.inputs.geo import default_geo_sources
    from probe.present.geo import format_sources, format_sources_json
    from probe.present.terminal import output_width

    sources = default_geo_sources()
    for line in format_sources_json(sources) if as_json else format_sources(sources, output_width()):
        click.echo(line)
