"""Where the geo tables are: the one ``probe geo update`` wrote, else the one probe ships."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from probe.core.settings import DEFAULT_GEO_URL
from probe.host.data import DATA_DIR, user_data_dir
from probe.inputs.geo.db import GeoDB, GeoError

__all__ = ["DEFAULT_GEO_LICENSE", "DEFAULT_GEO_URL", "STALE_DAYS", "bundled_geo_path",
           "default_asn_lookup", "default_geo_path", "default_geo_sources", "geo_url",
           "open_default_geo"]  # fmt: skip

DEFAULT_GEO_LICENSE = "PDDL 1.0 (https://opendatacommons.org/licenses/pddl/1-0/)"
DEFAULT_FILENAME = "ip-asn.bin"
#: Data older than this is flagged by `probe geo path` (routing changes slowly, but it changes).
STALE_DAYS = 365


def bundled_geo_path() -> Path:
    """The IP-to-ASN table shipped inside the package (probe/data/ip-asn.bin)."""
    return DATA_DIR / "ip-asn.bin"


def geo_url() -> str:
    """Where ``probe geo update`` downloads from: ``$PROBE_GEO_URL``, else iptoasn.com."""
    return os.environ.get("PROBE_GEO_URL") or DEFAULT_GEO_URL


def default_geo_path() -> Path:
    """Where ``probe geo update`` stores its download."""
    return user_data_dir() / DEFAULT_FILENAME


def default_geo_sources() -> list[Path]:
    """The files :func:`open_default_geo` would open: the downloaded table, else the bundled one."""
    downloaded = default_geo_path()
    if downloaded.exists():
        return [downloaded]
    bundled = bundled_geo_path()
    return [bundled] if bundled.exists() else []


def open_default_geo() -> GeoDB | None:
    """The table ``probe geo update`` wrote, else the one shipped with probe.

    None only when neither exists (a build that left the package data out).
    """
    paths = default_geo_sources()
    return GeoDB(paths) if paths else None


def default_asn_lookup() -> Callable[[str], int | None] | None:
    """IP -> AS number from :func:`open_default_geo`'s table, or None when there is none or it
    cannot be read (what needs AS data then does without: `probe circumvention` and `probe
    reclassify` judging resolvers' answers)."""
    try:
        geo = open_default_geo()
    except (GeoError, OSError):
        return None
    return geo.asn if geo is not None else None
