"""Reading IP-to-ASN tables: ip2asn TSV, MaxMind-style .mmdb and probe's packed table."""

from __future__ import annotations

import bisect
import gzip
import io
import ipaddress
import time
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

from probe.core.errors import ProbeError
from probe.inputs.geo.asndata import MAGIC, PackedTable, PackError

__all__ = ["GeoDB", "GeoError", "GeoInfo", "describe_source"]


class GeoError(ProbeError):
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


def _iter_tsv(path: Path) -> Iterator[tuple[int, int, int, int, str, str]]:
    """(version, start, end, asn, country, org) of every row; GeoError names file:line."""
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
                yield start.version, int(start), int(end), asn, country, org
    except OSError as exc:
        raise GeoError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise GeoError(f"{path}: corrupt gzip data: {exc}") from None


def _read_tsv(path: Path) -> tuple[_RangeTable, _RangeTable]:
    v4, v6 = _RangeTable(), _RangeTable()
    orgs: dict[tuple[int, str, str], GeoInfo] = {}
    for version, start, end, asn, country, org in _iter_tsv(path):
        key = (asn, country, org)
        info = orgs.get(key)
        if info is None:
            info = orgs[key] = GeoInfo(asn, country, org)
        (v4 if version == 4 else v6).add(start, end, info)
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
            if _is_packed(path):
                try:
                    self._sources.append(PackedTable(path))
                except PackError as exc:
                    raise GeoError(str(exc)) from None
            elif path.suffix == ".mmdb":
                # Only for .mmdb files (~50 ms to import): read-only commands open the packed table.
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
        if isinstance(source, PackedTable):
            found = source.lookup(addr)
            if found is None:
                return None
            return GeoInfo(found[0], found[1], source.org(found[0]) if found[0] else "")
        if isinstance(source, tuple):
            table = source[0] if addr.version == 4 else source[1]
            info: GeoInfo | None = table.find(int(addr))
            if info is None and addr.version == 6 and addr.ipv4_mapped is not None:
                v4: _RangeTable = source[0]
                info = v4.find(int(addr.ipv4_mapped))
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
        """The ASN of ``ip``, 0 when unknown (the classifier's question: no organisation name)."""
        if len(self._sources) == 1 and isinstance(self._sources[0], PackedTable):
            try:
                addr = ipaddress.ip_address(ip.strip("[]"))
            except ValueError:
                return 0
            found = self._sources[0].lookup(addr)
            return found[0] if found else 0
        info = self.lookup(ip)
        return info.asn if info else 0

    def close(self) -> None:
        """Release the files (mappings, .mmdb readers)."""
        for source in self._sources:
            if not isinstance(source, tuple):
                source.close()

    def describe(self) -> list[dict[str, Any]]:
        """One :func:`describe_source` dict per file, in lookup order."""
        return [describe_source(p) for p in self.paths]


def _is_packed(path: Path) -> bool:
    try:
        with path.open("rb") as fh:
            return fh.read(len(MAGIC)) == MAGIC
    except OSError:
        return False


def describe_source(path: Path) -> dict[str, Any]:
    """What a geo file is: format, source, license, the date of its data and its age in days.

    Packed tables carry this in their metadata; for other files the modification time stands
    in for the data's date and the source and license are unknown.
    """
    info: dict[str, Any] = {"path": str(path), "format": "unknown", "source": "", "license": "",
                            "created": "", "age_days": None}
    created: float | None = None
    if _is_packed(path):
        try:
            table = PackedTable(path)
        except PackError as exc:
            info["error"] = str(exc)
            return info
        meta = table.meta
        table.close()
        info.update(format="packed", source=meta.get("source", ""), license=meta.get("license", ""),
                    name=meta.get("name", ""), created=meta.get("created", ""))
        if meta.get("fetched"):
            info["fetched"] = meta["fetched"]
        try:
            created = time.mktime(time.strptime(info["created"], "%Y-%m-%dT%H:%M:%SZ")) - time.timezone
        except (ValueError, OverflowError):
            created = None
    else:
        info["format"] = "mmdb" if path.suffix == ".mmdb" else "ip2asn-tsv"
        try:
            created = path.stat().st_mtime
            info["created"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(created))
        except OSError:
            created = None
    if created is not None:
        info["age_days"] = max(0, int((time.time() - created) // 86400))
    return info

