"""Block-page and false-positive fingerprints: DNS answer IPs, HTTP body and header patterns.

The data format is the one of OONI blocking-fingerprints (CSV with the columns of
:data:`COLUMNS`), so that users can extend the packaged set with their own file
(``--fingerprints PATH``). Each row has:

- ``location_found``: ``dns`` (an A/AAAA answer address, or a CNAME target name), ``body``
  (the HTTP response body) or ``header.<lower-case name>`` (the value of that response header);
- ``pattern_type``: ``full`` (the whole value), ``prefix``, ``contains`` or ``regexp``
  (Python ``re`` syntax, searched, not anchored);
- ``scope``: where the blocking happens (``nat``, ``isp``, ``prod``, ``inst``, ``vbw``, ...);
  ``fp`` marks a *false positive*: a page that looks odd but is not censorship (CAPTCHAs,
  parking pages, server errors). False positives are evidence against blocking and the
  classifier checks them first.

Matching is case-sensitive and byte-wise on the UTF-8 form of the body (bodies declared in
another charset are transcoded once), as the upstream patterns were collected. Bodies are
scanned up to :data:`SCAN_LIMIT` bytes (64 KiB): block pages and bot challenges are small.
``contains`` patterns, nearly all of them, are matched together in one pass of an Aho-Corasick
automaton (ahocorasick-rs), so the cost does not grow with the number of fingerprints. The
classifier scans only responses it cannot judge by the control alone.
"""

from __future__ import annotations

import codecs
import csv
import functools
import ipaddress
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import ahocorasick_rs

from probe.core.errors import ProbeError
from probe.host.data import DATA_DIR

__all__ = [
    "COLUMNS",
    "DATA_FILES",
    "SCAN_LIMIT",
    "Fingerprint",
    "FingerprintError",
    "Fingerprints",
    "default_fingerprints",
    "load_fingerprints",
    "parse_rows",
]

#: Column order of the CSV format (OONI blocking-fingerprints).
COLUMNS: tuple[str, ...] = (
    "name",
    "scope",
    "other_names",
    "location_found",
    "pattern_type",
    "pattern",
    "confidence_no_fp",
    "expected_countries",
    "source",
    "exp_url",
    "notes",
)
REQUIRED: tuple[str, ...] = ("name", "scope", "location_found", "pattern_type", "pattern")
PATTERN_TYPES = frozenset({"full", "prefix", "contains", "regexp"})
#: Packaged data files, loaded in this order.
DATA_FILES: tuple[str, ...] = ("fingerprints_dns.csv", "fingerprints_http.csv", "fingerprints_extra.csv")
#: Bytes of a body that are scanned for patterns.
SCAN_LIMIT = 64 * 1024
FALSE_POSITIVE = "fp"

_DATA_DIR = DATA_DIR
_CHARSET = re.compile(rb"""charset\s*=\s*["']?([A-Za-z0-9_.:-]+)""", re.IGNORECASE)


class FingerprintError(ProbeError, ValueError):
    """An invalid fingerprint file or row; the message names ``file:line``."""


@dataclass(frozen=True)
class Fingerprint:
    """One signature. ``location`` is ``dns``, ``body`` or ``header.<name>``."""

    name: str
    scope: str
    location: str
    pattern_type: str
    pattern: str
    confidence: int = 5
    countries: tuple[str, ...] = ()
    source: str = ""
    notes: str = ""
    origin: str = ""  # "file:line" it was read from

    @property
    def false_positive(self) -> bool:
        """True for scope ``fp``: evidence that a response is *not* a block page."""
        return self.scope == FALSE_POSITIVE


def _dns_key(value: str) -> str:
    """Canonical form of a DNS answer: an IP address, or a lower-case name without the root dot."""
    value = value.strip()
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        return value.rstrip(".").lower()


def _row_to_fp(row: Mapping[str, str | None], origin: str) -> Fingerprint:
    missing = [c for c in REQUIRED if not (row.get(c) or "").strip()]
    if missing:
        raise FingerprintError(f"{origin}: missing {', '.join(missing)}")
    name = (row["name"] or "").strip()
    scope = (row["scope"] or "").strip()
    location = (row["location_found"] or "").strip().lower()
    ptype = (row["pattern_type"] or "").strip().lower()
    pattern = row["pattern"] or ""
    if ptype not in PATTERN_TYPES:
        raise FingerprintError(f"{origin}: {name}: unknown pattern_type {ptype!r}")
    if location == "dns":
        if ptype != "full":
            raise FingerprintError(f"{origin}: {name}: dns fingerprints must be pattern_type full")
        pattern = _dns_key(pattern)
        if not pattern:
            raise FingerprintError(f"{origin}: {name}: empty dns pattern")
    elif location != "body" and not (location.startswith("header.") and len(location) > 7):
        raise FingerprintError(f"{origin}: {name}: unknown location_found {location!r}")
    if ptype == "regexp":
        try:
            re.compile(pattern.encode("utf-8"))
        except re.error as exc:
            raise FingerprintError(f"{origin}: {name}: bad regexp: {exc}") from None
    conf_text = (row.get("confidence_no_fp") or "").strip()
    try:
        confidence = int(conf_text) if conf_text else 5
    except ValueError:
        raise FingerprintError(f"{origin}: {name}: confidence_no_fp is not an integer") from None
    countries = tuple(c.strip() for c in (row.get("expected_countries") or "").split(",") if c.strip())
    return Fingerprint(
        name=name,
        scope=scope,
        location=location,
        pattern_type=ptype,
        pattern=pattern,
        confidence=confidence,
        countries=countries,
        source=(row.get("source") or "").strip(),
        notes=(row.get("notes") or "").strip(),
        origin=origin,
    )


def parse_rows(rows: Iterable[Mapping[str, str | None]], origin: str = "<rows>") -> list[Fingerprint]:
    """Validate CSV rows (dicts) into fingerprints. Line numbers count the header as line 1."""
    return [_row_to_fp(row, f"{origin}:{i}") for i, row in enumerate(rows, start=2)]


def _read_csv(path: Path) -> list[Fingerprint]:
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except OSError as exc:
        raise FingerprintError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise FingerprintError(f"{path}: not UTF-8 ({exc.reason} at byte {exc.start})") from None
    reader = csv.DictReader(text.splitlines())
    header = reader.fieldnames or []
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        raise FingerprintError(f"{path}:1: missing column(s) {', '.join(missing)}")
    out = []
    for row in reader:
        origin = f"{path}:{reader.line_num}"
        if None in row:  # more cells than header columns
            raise FingerprintError(f"{origin}: more cells than columns")
        if not any((v or "").strip() for v in row.values()):
            continue
        out.append(_row_to_fp(row, origin))
    return out


@dataclass
class _Group:
    """Patterns of one location, prepared for fast matching."""

    full: dict[bytes, list[Fingerprint]] = field(default_factory=dict)
    prefix: list[tuple[bytes, Fingerprint]] = field(default_factory=list)
    contains: list[tuple[bytes, Fingerprint]] = field(default_factory=list)
    regexp: list[tuple[re.Pattern[bytes], Fingerprint]] = field(default_factory=list)
    _automaton: _Automaton | None = None
    _prefix_tuple: tuple[bytes, ...] | None = None

    def add(self, fp: Fingerprint) -> None:
        pat = fp.pattern.encode("utf-8")
        if fp.pattern_type == "full":
            self.full.setdefault(pat, []).append(fp)
        elif fp.pattern_type == "prefix":
            self.prefix.append((pat, fp))
            self._prefix_tuple = None
        elif fp.pattern_type == "contains":
            self.contains.append((pat, fp))
            self._automaton = None
        else:
            self.regexp.append((re.compile(pat), fp))

    def _prefixes(self) -> tuple[bytes, ...]:
        if self._prefix_tuple is None:
            self._prefix_tuple = tuple(pat for pat, _ in self.prefix)
        return self._prefix_tuple

    def match(self, value: bytes) -> list[Fingerprint]:
        hits = list(self.full.get(value, ()))
        if self.prefix and value.startswith(self._prefixes()):  # one C call rules them all out
            hits.extend(fp for pat, fp in self.prefix if value.startswith(pat))
        if self.contains:
            if self._automaton is None:
                self._automaton = _Automaton([pat for pat, _ in self.contains])
            hits.extend(self.contains[i][1] for i in self._automaton.found(value))
        hits.extend(fp for rx, fp in self.regexp if rx.search(value))
        return hits


class _Automaton:
    """All ``contains`` patterns of a group in one Aho-Corasick automaton: one pass over a body
    finds every pattern, whatever their number (one substring search per pattern cost ~15 ms
    per 64 KiB body with the ~1,300 packaged body patterns)."""

    def __init__(self, patterns: Sequence[bytes]) -> None:
        unique = list(dict.fromkeys(patterns))
        where: dict[bytes, list[int]] = {}
        for i, pat in enumerate(patterns):
            where.setdefault(pat, []).append(i)
        # Index of each unique pattern -> the positions of the fingerprints that share it.
        self._owners: list[list[int]] = [where[pat] for pat in unique]
        # The contiguous NFA: 0.7 MB for the packaged set and ~1.4 ms per 64 KiB body; the DFA
        # is 4x faster but takes ~60 MB, too much for the probe's memory budget.
        self._ac = ahocorasick_rs.BytesAhoCorasick(
            unique, implementation=ahocorasick_rs.Implementation.ContiguousNFA
        )

    def found(self, value: bytes) -> list[int]:
        """Positions (in insertion order) of the patterns that occur in ``value``."""
        # Overlapping search reports every occurrence of every pattern, so a pattern that is a
        # substring of another, or starts inside another's match, is never missed.
        seen = {k for k, _, _ in self._ac.find_matches_as_indexes(value, overlapping=True)}
        return sorted(i for k in seen for i in self._owners[k])


def _to_utf8(body: bytes, headers: Sequence[tuple[str, str]]) -> bytes:
    """The body as UTF-8 bytes, transcoded once when it declares another charset."""
    charset = None
    for name, value in headers:
        if name.lower() == "content-type":
            m = _CHARSET.search(value.encode("latin-1", "replace"))
            if m:
                charset = m.group(1).decode("ascii")
    if charset is None:
        m = _CHARSET.search(body[:2048])
        if m:
            charset = m.group(1).decode("ascii", "replace")
    if not charset:
        return body
    try:
        codec = codecs.lookup(charset).name
    except LookupError:
        return body
    if codec in ("utf-8", "ascii"):
        return body
    try:
        return body.decode(codec, "replace").encode("utf-8")
    except (UnicodeError, LookupError):
        return body


class Fingerprints:
    """A compiled set of fingerprints; build with :func:`load_fingerprints`."""

    def __init__(self, fingerprints: Iterable[Fingerprint]) -> None:
        self.all: tuple[Fingerprint, ...] = tuple(fingerprints)
        self._dns: dict[str, list[Fingerprint]] = {}
        # Block pages and false positives share one group per location, so that a response is
        # scanned once for both (the classifier needs both for nearly every page it scans).
        self._body = _Group()
        self._headers: dict[str, _Group] = {}
        for fp in self.all:
            if fp.location == "dns":
                self._dns.setdefault(fp.pattern, []).append(fp)
            elif fp.location == "body":
                self._body.add(fp)
            else:
                self._headers.setdefault(fp.location[len("header.") :], _Group()).add(fp)

    def __len__(self) -> int:
        return len(self.all)

    def match_dns(self, answer: str) -> list[Fingerprint]:
        """Block-page fingerprints for a DNS answer: an A/AAAA address or a CNAME target."""
        return list(self._dns.get(_dns_key(answer), ()))

    def match_response(
        self, body: bytes, headers: Sequence[tuple[str, str]]
    ) -> tuple[list[Fingerprint], list[Fingerprint]]:
        """(false positives, block pages) matching a response, in one pass over its body."""
        hits: list[Fingerprint] = []
        for name, value in headers:
            group = self._headers.get(name.lower())
            if group is not None:
                hits.extend(group.match(value.encode("utf-8", "surrogateescape")))
        if body:
            hits.extend(self._body.match(_to_utf8(body[:SCAN_LIMIT], headers)))
        fps = [fp for fp in hits if fp.false_positive]
        bps = [fp for fp in hits if not fp.false_positive] if fps else hits
        return fps, bps

    def false_positives(self, body: bytes, headers: Sequence[tuple[str, str]]) -> list[Fingerprint]:
        """False-positive fingerprints (scope ``fp``) matching a response."""
        return self.match_response(body, headers)[0]

    def blockpages(self, body: bytes, headers: Sequence[tuple[str, str]]) -> list[Fingerprint]:
        """Block-page fingerprints (any scope but ``fp``) matching a response."""
        return self.match_response(body, headers)[1]


def load_fingerprints(extra_paths: Iterable[str | Path] = (), *, packaged: bool = True) -> Fingerprints:
    """Load the packaged fingerprints plus users' files in the same CSV format.

    Raises :class:`FingerprintError` naming ``file:line`` for an unreadable file or a bad row.
    A user row with the name of a packaged one replaces it.
    """
    rows: dict[str, Fingerprint] = {}
    paths = [_DATA_DIR / name for name in DATA_FILES] if packaged else []
    paths.extend(Path(p) for p in extra_paths)
    for path in paths:
        for fp in _read_csv(path):
            rows[fp.name] = fp
    return Fingerprints(rows.values())


@functools.lru_cache(maxsize=1)
def default_fingerprints() -> Fingerprints:
    """The packaged fingerprints, loaded once per process."""
    return load_fingerprints()
