"""`probe geo`: the offline IP-to-ASN database used by the DNS consistency check."""

from __future__ import annotations

from pathlib import Path

import click

from probe.cli._group import cli

DEFAULT_GEO_URL = "https://iptoasn.com/data/ip2asn-combined.tsv.gz"  # == probe.geo.DEFAULT_GEO_URL


@cli.group("geo")
def geo_group() -> None:
    """Offline IP -> ASN/country data (ip2asn TSV or MaxMind-style .mmdb).

    The classifier uses it to accept DNS answers that differ from the control's but belong to
    the same network (CDNs). Without it, other evidence (overlap, valid TLS) is used.
    """


@geo_group.command("update")
@click.option("--url", default=DEFAULT_GEO_URL, show_default=True,
              help="Where to download an ip2asn TSV (.tsv or .tsv.gz) or an .mmdb from.")
@click.option("--dest", type=click.Path(dir_okay=False, path_type=Path),
              help="Where to store it (default: the user's data directory, see `probe geo path`).")
def geo_update(url: str, dest: Path | None) -> None:
    """Download the IP-to-ASN database (needs Internet access).

    \b
    Examples:
      probe geo update
      probe geo update --url https://example.org/ip2asn-v4.tsv.gz --dest ./ip2asn.tsv.gz
    """
    from probe.geo import GeoError, update_geo

    try:
        path = update_geo(url, dest)
    except GeoError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"saved {path}")


@geo_group.command("lookup")
@click.argument("ips", nargs=-1, required=True)
@click.option("--db", "db", type=click.Path(dir_okay=False, path_type=Path), multiple=True,
              help="Database file(s) (default: the downloaded one). Repeatable: ASN + country.")
def geo_lookup(ips: tuple[str, ...], db: tuple[Path, ...]) -> None:
    """Show ASN, country and organisation of IP addresses.

    \b
    Example:
      probe geo lookup 192.0.2.1 2001:db8::1
    """
    from probe.geo import GeoDB, GeoError, default_geo_path

    paths = list(db) or [default_geo_path()]
    try:
        geo = GeoDB(paths)
    except GeoError as exc:
        raise click.ClickException(f"{exc} (run `probe geo update` or pass --db)") from None
    for ip in ips:
        info = geo.lookup(ip)
        if info is None:
            click.echo(f"{ip}\tunknown")
        else:
            click.echo(f"{ip}\tAS{info.asn}\t{info.country or '-'}\t{info.org}")


@geo_group.command("path")
def geo_path() -> None:
    """Print where `probe geo update` stores the database."""
    from probe.geo import default_geo_path

    click.echo(str(default_geo_path()))
