"""Offline IP -> (ASN, country, organisation) lookups for the DNS consistency check.

Two standard formats are read:

- an **ip2asn TSV** (iptoasn.com: ``range_start range_end AS_number country_code
  AS_description``, tab-separated, IPv4 and/or IPv6, optionally gzip-compressed); ASN 0 marks
  unrouted space and is treated as "unknown";
- a **MaxMind-style .mmdb** (GeoLite2-ASN, GeoLite2-Country, DB-IP lite, ipinfo) through the
  ``maxminddb`` package. Several files can be combined, e.g. an ASN database and a country one;
- probe's **packed table** (probe/inputs/geo/asndata.py): what probe ships and what ``probe geo update``
  writes, memory-mapped so that opening it costs nothing.

Data is there by default: :func:`open_default_geo` opens the table ``probe geo update`` wrote
(:func:`default_geo_path`: ``$PROBE_DATA_DIR`` or ``$XDG_DATA_HOME/probe`` or
``~/.local/share/probe``), else the one shipped in the package (:func:`bundled_geo_path`, derived
from the IPFire Location database, CC BY-SA 4.0: probe/data/NOTICE-ip-asn.txt).

The package: :mod:`probe.inputs.geo.db` reads the tables (:class:`GeoDB`), :mod:`probe.inputs.geo.sources`
says where they are, :mod:`probe.inputs.geo.update` downloads one (``probe geo update``).
"""

from __future__ import annotations

from probe.inputs.geo.db import GeoDB, GeoError, GeoInfo, describe_source
from probe.inputs.geo.sources import (
    DEFAULT_GEO_LICENSE,
    DEFAULT_GEO_URL,
    STALE_DAYS,
    bundled_geo_path,
    default_asn_lookup,
    default_geo_path,
    default_geo_sources,
    geo_url,
    open_default_geo,
)
from probe.inputs.geo.update import MAX_DOWNLOAD, update_geo

__all__ = [
    "DEFAULT_GEO_LICENSE",
    "DEFAULT_GEO_URL",
    "MAX_DOWNLOAD",
    "STALE_DAYS",
    "GeoDB",
    "GeoError",
    "GeoInfo",
    "bundled_geo_path",
    "default_asn_lookup",
    "default_geo_path",
    "default_geo_sources",
    "describe_source",
    "geo_url",
    "open_default_geo",
    "update_geo",
]
