"""Offline IP -> (ASN, country, organisation) lookups for the DNS consistency check.

Two standard formats are read:

- an **ip2asn TSV** (iptoasn.com: ``range_start range_end AS_number country_code
  AS_description``, tab-separated, IPv4 and/or IPv6, optionally gzip-compressed); ASN 0 marks
  unrouted space and is treated as "unknown";
- a **MaxMind-style .mmdb** (GeoLite2-ASN, GeoLite2-Country, DB-IP lite, ipinfo) through the
  ``maxminddb`` package. Several files can be combined, e.g. an ASN database and a country one.

:func:`default_geo_path` is where ``probe geo update`` stores the download:
``$PROBE_DATA_DIR`` or ``$XDG_DATA_HOME/probe`` or ``~/.local/share/probe``.
"""

from __future__ import annotations

import bisect
import gzip
import io
import ipaddress
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any, NamedTuple

__all__ = [
    "DEFAULT_GEO_URL",
    "GeoDB",
    "GeoError",
    "GeoInfo",
    "default_geo_path",
    "open_default_geo",
    "update_geo",
]

DEFAULT_GEO_URL = "https://iptoasn.com/data/ip2asn-combined.tsv.gz"
DEFAULT_FILENAME = "ip2asn-combined.tsv.gz"


class GeoError(Exception):
    """An unreadable or invalid geo database (the message names file:line), or a failed update."""


class GeoInfo(NamedTuple):
    """What is known about one address: ``asn`` 0 means unknown, ``country`` "" unknown."""

    asn: int
    country: str
    org: str


class _RangeTable:
    """Sorted, non-overlapping address ranges of one family, searched with bisect."""

    def __init__(self) -> None:
        self.starts: list[int] = []
        self.ends: list[int] = []
        self.infos: list[GeoInfo] = []

    def add(self, start: int, end: int, info: GeoInfo) -> None:
        self.starts.append(start)
        self.ends.append(end)
        self.infos.append(info)

    def finish(self) -> None:
        if any(a > b for a, b in zip(self.starts, self.starts[1:], strict=False)):
            order = sorted(range(len(self.starts)), key=self.starts.__getitem__)
            self.starts = [self.starts[i] for i in order]
            self.ends = [self.ends[i] for i in order]
            self.infos = [self.infos[i] for i in order]

    def find(self, value: int) -> GeoInfo | None:
        i = bisect.bisect_right(self.starts, value) - 1
        if i >= 0 and value <= self.ends[i]:
            return self.infos[i]
        return None


def _open_text(path: Path) -> io.TextIOBase:
    raw = path.open("rb")
    magic = raw.read(2)
    raw.seek(0)
    stream = gzip.GzipFile(fileobj=raw) if magic == b"\x1f\x8b" else raw
    return io.TextIOWrapper(stream, encoding="utf-8", errors="replace", newline="")


def _read_tsv(path: Path) -> tuple[_RangeTable, _RangeTable]:
    v4, v6 = _RangeTable(), _RangeTable()
    orgs: dict[tuple[int, str, str], GeoInfo] = {}
    try:
        with _open_text(path) as fh:
            for lineno, line in enumerate(fh, start=1):
                line = line.rstrip("\r\n")
                if not line or line.startswith("#"):
                    continue
                cells = line.split("\t")
                if len(cells) < 4:
                    raise GeoError(f"{path}:{lineno}: expected 5 tab-separated columns, got {len(cells)}")
                try:
                    start = ipaddress.ip_address(cells[0].strip())
                    end = ipaddress.ip_address(cells[1].strip())
                    asn = int(cells[2].strip().removeprefix("AS") or 0)
                except ValueError as exc:
                    raise GeoError(f"{path}:{lineno}: {exc}") from None
                if start.version != end.version or int(start) > int(end):
                    raise GeoError(f"{path}:{lineno}: bad range {start} - {end}")
                country = cells[3].strip()
                country = "" if country in ("None", "ZZ", "") else country.upper()
                org = cells[4].strip() if len(cells) > 4 else ""
                if asn == 0 and org == "Not routed":
                    org = ""
                key = (asn, country, org)
                info = orgs.get(key)
                if info is None:
                    info = orgs[key] = GeoInfo(asn, country, org)
                (v4 if start.version == 4 else v6).add(int(start), int(end), info)
    except OSError as exc:
        raise GeoError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except (EOFError, gzip.BadGzipFile) as exc:
        raise GeoError(f"{path}: corrupt gzip data: {exc}") from None
    v4.finish()
    v6.finish()
    return v4, v6


def _from_mmdb_record(rec: Any) -> GeoInfo | None:
    """Normalise the record shapes of MaxMind, DB-IP and ipinfo databases."""
    if not isinstance(rec, dict):
        return None
    asn: Any = rec.get("autonomous_system_number") or rec.get("asn") or 0
    if isinstance(asn, str):
        try:
            asn = int(asn.upper().removeprefix("AS") or 0)
        except ValueError:
            asn = 0
    org = rec.get("autonomous_system_organization") or rec.get("as_name") or rec.get("name") or ""
    country = ""
    c = rec.get("country")
    if isinstance(c, dict):
        country = c.get("iso_code") or ""
    elif isinstance(c, str):
        country = c
    country = country or rec.get("country_code") or ""
    if not asn and not country and not org:
        return None
    return GeoInfo(int(asn), str(country).upper(), str(org))


class GeoDB:
    """IP -> :class:`GeoInfo` from one or more files (ip2asn TSV and/or .mmdb).

    When several files are given, the first one that knows an address gives the ASN and
    organisation; a missing country is filled in from the next files.
    """

    def __init__(self, paths: Iterable[str | Path]) -> None:
        self.paths = tuple(Path(p) for p in paths)
        if not self.paths:
            raise GeoError("no geo database given")
        self._sources: list[Any] = []
        for path in self.paths:
            if not path.exists():
                raise GeoError(f"{path}: no such file")
            if path.suffix == ".mmdb":
                import maxminddb

                try:
                    self._sources.append(maxminddb.open_database(str(path)))
                except (OSError, ValueError, maxminddb.InvalidDatabaseError) as exc:
                    raise GeoError(f"{path}: not a readable .mmdb: {exc}") from None
            else:
                self._sources.append(_read_tsv(path))

    @classmethod
    def open(cls, path: str | Path) -> GeoDB:
        """One database file; the format is chosen by the ``.mmdb`` suffix, else TSV."""
        return cls([path])

    def _lookup_one(self, source: Any, addr: ipaddress.IPv4Address | ipaddress.IPv6Address) -> GeoInfo | None:
        if isinstance(source, tuple):
            table = source[0] if addr.version == 4 else source[1]
            info: GeoInfo | None = table.find(int(addr))
            if info is None and addr.version == 6 and addr.ipv4_mapped is not None:
                info = source[0].find(int(addr.ipv4_mapped))
            return info
        try:
            return _from_mmdb_record(source.get(str(addr)))
        except ValueError:  # an IPv6 address in an IPv4-only database
            return None

    def lookup(self, ip: str) -> GeoInfo | None:
        """(asn, country, org) for ``ip``, or None when no database knows it."""
        try:
            addr = ipaddress.ip_address(ip.strip("[]"))
        except ValueError:
            return None
        best: GeoInfo | None = None
        for source in self._sources:
            info = self._lookup_one(source, addr)
            if info is None:
                continue
            if best is None:
                best = info
            elif not best.country and info.country:
                best = best._replace(country=info.country)
            elif not best.asn and info.asn:
                best = GeoInfo(info.asn, best.country or info.country, info.org)
            if best.asn and best.country:
                break
        if best is not None and not best.asn and not best.country:
            return None
        return best

    def asn(self, ip: str) -> int:
        """The ASN of ``ip``, 0 when unknown."""
        info = self.lookup(ip)
        return info.asn if info else 0

    def close(self) -> None:
        for source in self._sources:
            if not isinstance(source, tuple):
                source.close()


def default_geo_path() -> Path:
    """Where ``probe geo update`` stores its download."""
    base = os.environ.get("PROBE_DATA_DIR")
    if base:
        return Path(base) / DEFAULT_FILENAME
    xdg = os.environ.get("XDG_DATA_HOME")
    root = Path(xdg) if xdg else Path.home() / ".local" / "share"
    return root / "probe" / DEFAULT_FILENAME


def open_default_geo() -> GeoDB | None:
    """The downloaded database, if there is one (None otherwise: geo data is optional)."""
    path = default_geo_path()
    if not path.exists():
        return None
    return GeoDB.open(path)


def update_geo(url: str = DEFAULT_GEO_URL, dest: str | Path | None = None, *, timeout: float = 60.0) -> Path:
    """Download an ip2asn TSV (or .mmdb) to ``dest`` atomically and check that it parses.

    Raises :class:`GeoError` with a plain message when offline or when the file is invalid; the
    previous database is then left in place.
    """
    import httpx

    target = Path(dest) if dest else default_geo_path()
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".part")
    try:
        with httpx.stream("GET", url, timeout=timeout, follow_redirects=True) as response:
            if response.status_code != 200:
                raise GeoError(f"download of {url} failed: HTTP {response.status_code}")
            with tmp.open("wb") as fh:
                for chunk in response.iter_bytes():
                    fh.write(chunk)
    except httpx.HTTPError as exc:
        tmp.unlink(missing_ok=True)
        raise GeoError(f"cannot download {url}: {exc or type(exc).__name__} (are you online?)") from None
    except GeoError:
        tmp.unlink(missing_ok=True)
        raise
    # The format is chosen by suffix, so check the download under a name with the target's.
    check = target.with_name(target.stem + ".part" + target.suffix)
    tmp.replace(check)
    try:
        GeoDB.open(check).close()
    except GeoError as exc:
        check.unlink(missing_ok=True)
        raise GeoError(f"downloaded file is not a valid geo database: {exc}") from None
    check.replace(target)
    return target
