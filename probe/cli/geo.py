"""`probe geo`: the offline IP-to-ASN data used by the classifier and the vantage identity."""

from __future__ import annotations

import json
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
      probe geo update --url https://example.org/ip2asn-v4.tsv.gz --license "CC BY 4.0"
    """
    from probe.inputs.geo import GeoError, describe_source, update_geo

    try:
        path = update_geo(url, dest, timeout=timeout, license=license_)
    except GeoError as exc:
        raise click.ClickException(str(exc)) from None
    info = describe_source(path)
    click.echo(f"saved {path} (data of {info['created'] or 'unknown date'}, from {info['source'] or url})")


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

    paths = list(db) or default_geo_sources()
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
@click.option("--json", "as_json", is_flag=True, help="One JSON object per file.")
def geo_path(as_json: bool) -> None:
    """Show which IP-to-ASN data is in use: file, source, license and age.

    The table `probe geo update` downloaded is used when it exists, else the one shipped
    with probe. `probe run --geo PATH` overrides both for one run.
    """
    from probe.inputs.geo import (
        STALE_DAYS,
        bundled_geo_path,
        default_geo_path,
        default_geo_sources,
        describe_source,
    )

    sources = default_geo_sources()
    if as_json:
        for path in sources:
            click.echo(json.dumps(describe_source(path), sort_keys=True))
        return
    if not sources:
        click.echo(f"no IP-to-ASN data: neither {default_geo_path()} nor {bundled_geo_path()} exists")
        return
    for path in sources:
        info = describe_source(path)
        kind = "bundled" if path == bundled_geo_path() else "downloaded"
        click.echo(f"in use:   {path} ({kind}, {info['format']})")
        if info.get("name"):
            click.echo(f"data:     {info['name']}")
        click.echo(f"source:   {info['source'] or 'unknown'}")
        click.echo(f"license:  {info['license'] or 'unknown'}")
        age = info["age_days"]
        stale = f"  (older than {STALE_DAYS} days: consider `probe geo update`)" if (
            age is not None and age > STALE_DAYS) else ""
        click.echo(f"data of:  {info['created'] or 'unknown'}"
                   + (f", {age} days old" if age is not None else "") + stale)
        if info.get("fetched"):
            click.echo(f"fetched:  {info['fetched']}")
    click.echo(f"updates go to {default_geo_path()} (`probe geo update`)")
