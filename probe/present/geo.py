"""`probe geo` for people: what is known about addresses (``probe geo lookup``), and which
IP-to-ASN data is in use, from where, under which license and how old (``probe geo path``)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from probe.inputs.geo import STALE_DAYS, GeoInfo, bundled_geo_path, default_geo_path, describe_source
from probe.present.terminal import clean
from probe.present.text import wrap

__all__ = ["format_lookup", "format_saved", "format_sources", "format_sources_json"]


def format_saved(path: Path, url: str | None) -> str:
    """What `probe geo update` saved: where, the data's date and its source."""
    info = describe_source(path)
    return clean(f"saved {path} (data of {info['created'] or 'unknown date'}, from {info['source'] or url})")


def format_lookup(ip: str, info: GeoInfo | None) -> str:
    """One tab-separated line: the address, then AS number, country and organisation (names
    from the data file, made safe for a terminal)."""
    if info is None:
        return f"{clean(ip)}\tunknown"
    return f"{clean(ip)}\tAS{info.asn}\t{clean(info.country or '-')}\t{clean(info.org)}"


def format_sources_json(sources: list[Path]) -> Iterator[str]:
    """One JSON object per data file: format, source, license, dates, age."""
    for path in sources:
        yield json.dumps(describe_source(path), sort_keys=True)


def format_sources(sources: list[Path], width: int = 80) -> Iterator[str]:
    """Lines of at most ``width`` columns: each data file in use with its source, license and
    age (a hint when it is stale), then where `probe geo update` writes."""
    for line in _sources(sources):
        yield from wrap(line, width, "", "          ")


def _sources(sources: list[Path]) -> Iterator[str]:
    if not sources:
        yield f"no IP-to-ASN data: neither {default_geo_path()} nor {bundled_geo_path()} exists"
        return
    for path in sources:
        info: dict[str, Any] = {k: clean(v) if isinstance(v, str) else v
                                for k, v in describe_source(path).items()}
        kind = "bundled" if path == bundled_geo_path() else "downloaded"
        yield f"in use:   {path} ({kind}, {info['format']})"
        if info.get("name"):
            yield f"data:     {info['name']}"
        yield f"source:   {info['source'] or 'unknown'}"
        yield f"license:  {info['license'] or 'unknown'}"
        age = info["age_days"]
        stale = f"  (older than {STALE_DAYS} days: consider `probe geo update`)" if (
            age is not None and age > STALE_DAYS) else ""
        yield (f"data of:  {info['created'] or 'unknown'}"
               + (f", {age} days old" if age is not None else "") + stale)  # fmt: skip
        if info.get("fetched"):
            yield f"fetched:  {info['fetched']}"
    yield f"updates go to {default_geo_path()} (`probe geo update`)"
