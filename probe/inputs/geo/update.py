"""``probe geo update``: download an ip2asn table (or an .mmdb) and store it packed."""

from __future__ import annotations

import email.utils
import time
from collections.abc import Iterator
from pathlib import Path

from probe.host.files import download_bounded
from probe.inputs.geo.asndata import pack
from probe.inputs.geo.db import GeoDB, GeoError, _iter_tsv
from probe.inputs.geo.sources import DEFAULT_GEO_LICENSE, DEFAULT_GEO_URL, default_geo_path, geo_url

__all__ = ["MAX_DOWNLOAD", "update_geo"]

#: A download larger than this is refused (iptoasn's combined file is ~10 MB compressed).
MAX_DOWNLOAD = 256 << 20


def update_geo(
    url: str | None = None,
    dest: str | Path | None = None,
    *,
    timeout: float = 60.0,
    license: str | None = None,
) -> Path:
    """Download an ip2asn TSV (plain or gzip) and store it as a packed table at ``dest``.

    ``url`` defaults to :func:`geo_url`; ``dest`` to :func:`default_geo_path`, which then takes
    precedence over the bundled table. An ``.mmdb`` URL is stored as it is (it needs ``dest``,
    and ``--geo`` to be used). The table records its source, license (``license``, known for the
    default URL), the date of the data (the server's Last-Modified) and when it was fetched.
    Raises :class:`GeoError` with a plain message when offline or when the file is invalid; the
    previous table is then left in place.
    """
    # httpx only when downloading: read-only commands import probe.inputs.geo (and this module).
    from probe.host.httpstack import load

    load()  # before httpx is first imported (probe/host/httpstack.py)
    import httpx

    url = url or geo_url()
    mmdb = url.split("?")[0].endswith(".mmdb")
    if mmdb and dest is None:
        raise GeoError("an .mmdb download needs --dest (then use it with --geo PATH)")
    target = Path(dest) if dest else default_geo_path()
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise GeoError(f"{target.parent}: cannot create: {exc.strerror or exc}") from None
    tmp = target.with_name(target.name + ".download")
    fetched = time.time()
    created = fetched
    try:
        with httpx.Client(timeout=timeout, follow_redirects=True, trust_env=False) as client:
            headers = download_bounded(client, url, tmp, MAX_DOWNLOAD, what="an ip2asn table",
                                       error=GeoError)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise GeoError(f"{tmp}: cannot write: {exc.strerror or exc}") from None
    except GeoError:
        tmp.unlink(missing_ok=True)
        raise
    modified = headers.get("last-modified")
    if modified:
        try:
            created = email.utils.parsedate_to_datetime(modified).timestamp()
        except (TypeError, ValueError):
            pass
    try:
        if mmdb:
            check = target.with_name(target.stem + ".download.mmdb")
            tmp.replace(check)
            try:
                GeoDB.open(check).close()
            except GeoError as exc:
                check.unlink(missing_ok=True)
                raise GeoError(f"downloaded file is not a valid geo database: {exc}") from None
            check.replace(target)
            return target
        names: dict[int, str] = {}

        def ranges() -> Iterator[tuple[int, int, int, int, str]]:
            for version, start, end, asn, country, org in _iter_tsv(tmp):
                if asn and org:
                    names.setdefault(asn, org)
                yield version, start, end, asn, country

        def stamp(t: float) -> str:
            return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))

        meta = {
            "name": "ip2asn table downloaded by `probe geo update`",
            "source": url,
            "license": license
            or (DEFAULT_GEO_LICENSE if url == DEFAULT_GEO_URL else "as given by the source"),
            "created": stamp(created),
            "fetched": stamp(fetched),
        }
        try:
            counts = pack(target, ranges(), names, meta)
        except GeoError as exc:  # name the URL, not our temporary file
            detail = str(exc).replace(str(tmp), url)
            raise GeoError(f"downloaded file is not a valid ip2asn table: {detail}") from None
        if not counts["ipv4_ranges"] and not counts["ipv6_ranges"]:
            target.unlink(missing_ok=True)
            raise GeoError(f"downloaded file from {url} has no address ranges")
        return target
    finally:
        tmp.unlink(missing_ok=True)

