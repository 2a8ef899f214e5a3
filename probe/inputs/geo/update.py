"""``probe geo update``: download an ip2asn table (or an .mmdb) and store it packed."""

from __future__ import annotations

import email.utils
import time
from collections.abc import Iterator
from pathlib import Path

from probe.host.files import download_bounded
from probe.host.output import Staged, staged
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
    # The download goes to a temporary file of its own beside the table (never a fixed name
    # that a file of the user's could have), and only a checked table replaces the old one.
    try:
        download = Staged(target, suffix=".mmdb" if mmdb else "")
    except OSError as exc:
        raise GeoError(f"{target.parent}: cannot write: {exc.strerror or exc}") from None
    fetched = time.time()
    created = fetched
    try:
        try:
            with httpx.Client(timeout=timeout, follow_redirects=True, trust_env=False) as client:
                headers = download_bounded(client, url, download.tmp, MAX_DOWNLOAD,
                                           what="an ip2asn table", error=GeoError)
        except OSError as exc:
            raise GeoError(f"{target.parent}: cannot write: {exc.strerror or exc}") from None
        modified = headers.get("last-modified")
        if modified:
            try:
                created = email.utils.parsedate_to_datetime(modified).timestamp()
            except (TypeError, ValueError):
                pass
        if mmdb:
            try:
                GeoDB.open(download.tmp).close()
            except GeoError as exc:
                raise GeoError(f"downloaded file is not a valid geo database: {exc}") from None
            download.commit()
            return target
        names: dict[int, str] = {}

        def ranges() -> Iterator[tuple[int, int, int, int, str]]:
            for version, start, end, asn, country, org in _iter_tsv(download.tmp):
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
            with staged(target) as packed:
                counts = pack(packed.tmp, ranges(), names, meta)
                if not counts["ipv4_ranges"] and not counts["ipv6_ranges"]:
                    raise GeoError(f"downloaded file from {url} has no address ranges")
        except GeoError as exc:  # name the URL, not our temporary file
            detail = str(exc).replace(str(download.tmp), url)
            if detail.startswith("downloaded file from"):
                raise GeoError(detail) from None
            raise GeoError(f"downloaded file is not a valid ip2asn table: {detail}") from None
        except OSError as exc:
            raise GeoError(f"{target}: cannot write: {exc.strerror or exc}") from None
        return target
    finally:
        download.discard()  # a table was packed from it, or it failed: either way not kept
