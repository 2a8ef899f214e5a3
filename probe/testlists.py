"""Test lists: Citizen Lab CSV files (and ad-hoc URLs) -> a stream of :class:`~probe.model.Target`.

The format is the Citizen Lab one (https://github.com/citizenlab/test-lists): a header line, then
one URL per row, with the columns ``url, category_code, category_description, date_added, source,
notes``. Only ``url`` is required; ``category_code`` is used when present; other columns are
ignored.

Reading is streaming and forgiving: each file is read line by line in binary, each physical line
decoded on its own, so one bad row (invalid UTF-8, a broken quote, a malformed URL) is reported
with ``file:line`` and the reason and the other rows proceed. Nothing is dropped silently: every
row is either yielded, filtered out by category on request, skipped as a duplicate, or reported
as a :class:`ListProblem`. Line numbers are physical lines (1-based), so a quoted field that
spans lines does not shift the numbers of the rows after it.
"""

from __future__ import annotations

import csv
import logging
import os
import re
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from probe.model import Target
from probe.net.urls import InvalidURL, parse_url, show_url
from probe.urlset import URLSet

__all__ = [
    "InvalidURL",
    "ListProblem",
    "ListStats",
    "ListSummary",
    "OpenedList",
    "Summary",
    "TestListError",
    "default_lists",
    "iter_targets",
    "known_lists",
    "load_legend",
    "open_list",
    "parse_categories",
    "parse_url",
    "render_summary",
    "summarize",
    "summary_records",
    "testlists_dir",
    "unknown_categories",
]

log = logging.getLogger(__name__)

#: Environment variable naming the directory of the shipped lists (overrides the default).
TESTLISTS_ENV = "PROBE_TESTLISTS_DIR"
#: Name of the category legend in the lists directory (Citizen Lab's file name).
LEGEND_NAME = "00-LEGEND-new_category_codes.csv"
#: Where the shipped lists come from; shown by ``probe testlists`` next to lists in that directory.
SHIPPED_ORIGIN = (
    "Citizen Lab test lists (github.com/citizenlab/test-lists, commit 7f01e430), "
    "CC BY-NC-SA 4.0; see NOTICE.md"
)

# A list read from a stream (stdin, a pipe, a FIFO) is copied to a temporary file, up to this.
MAX_STREAM_BYTES = 256 << 20
# A physical line longer than this is reported and skipped instead of being read into memory.
MAX_LINE_BYTES = 64 * 1024
# A quoted field still open after this many lines is taken to be a stray quote: the row is
# reported and reading resumes on the next line, so one bad quote cannot swallow a whole file.
MAX_RECORD_LINES = 50

_CATEGORY_RE = re.compile(r"^[A-Z0-9_-]{1,32}$")
_UTF8_BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True)
class ListProblem:
    """One row (or file) that could not be turned into a target.

    ``line`` is the physical line number, or 0 when the problem concerns the whole file.
    """

    path: str
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.reason}" if self.line else f"{self.path}: {self.reason}"


class TestListError(Exception):
    """A test list that cannot be used: missing, unreadable, no ``url`` column, or a bad row
    with ``strict=True``. The message names ``file:line``."""

    __test__ = False  # not a pytest test class, despite the name

    def __init__(self, problem: ListProblem) -> None:
        super().__init__(str(problem))
        self.problem = problem


@dataclass
class ListStats:
    """Counters filled in by :func:`iter_targets` (pass one to see what happened to each row)."""

    rows: int = 0  # data rows read from files (not the header, not blank lines)
    targets: int = 0  # targets yielded (files and --url)
    problems: int = 0  # invalid rows reported
    duplicates: int = 0  # rows skipped because their measured URL was already yielded
    filtered: int = 0  # rows skipped by the category filter
    per_file: dict[str, int] = field(default_factory=dict)  # targets yielded per file


# --- categories ------------------------------------------------------------------------------


def parse_categories(value: str | Iterable[str] | None) -> frozenset[str] | None:
    """``"NEWS,HUMR"`` (or several such strings) -> ``{"NEWS", "HUMR"}``; ``None`` stays ``None``.

    Codes are upper-cased; raises ``ValueError`` for an empty selection or a code that is not a
    plausible category code (letters, digits, ``-``, ``_``).
    """
    if value is None:
        return None
    items = [value] if isinstance(value, str) else list(value)
    codes = {c.strip().upper() for item in items for c in item.split(",") if c.strip()}
    if not codes:
        raise ValueError("empty category selection")
    bad = sorted(c for c in codes if not _CATEGORY_RE.match(c))
    if bad:
        raise ValueError(f"invalid category code(s): {', '.join(bad)}")
    return frozenset(codes)


def unknown_categories(codes: Iterable[str], legend: dict[str, str] | None = None) -> list[str]:
    """The codes (e.g. of ``--category``) that the Citizen Lab legend does not define: likely
    typos, worth a warning (a user's own list may still use them)."""
    legend = load_legend() if legend is None else legend
    if not legend:
        return []
    return sorted(c for c in codes if c not in legend)


# --- where the lists are --------------------------------------------------------------------


def testlists_dir() -> Path:
    """The directory of the shipped lists.

    ``$PROBE_TESTLISTS_DIR`` if set; else ``testlists/`` next to the ``probe`` package (a source
    checkout or editable install); else ``<prefix>/share/probe/testlists`` (an installed wheel
    that ships the lists as data files).
    """
    env = os.environ.get(TESTLISTS_ENV)
    if env:
        return Path(env).expanduser()
    candidates = [
        Path(__file__).resolve().parent.parent / "testlists",
        Path(sys.prefix) / "share" / "probe" / "testlists",
    ]
    for candidate in candidates:
        if candidate.is_dir():
            return candidate
    return candidates[0]


def default_lists() -> list[Path]:
    """The lists ``probe run`` measures when given none: the Citizen Lab global list."""
    return [testlists_dir() / "global.csv"]


def known_lists() -> list[Path]:
    """Every list in :func:`testlists_dir` (``*.csv`` except the ``00-LEGEND`` files), global first."""
    directory = testlists_dir()
    try:
        paths = [p for p in directory.glob("*.csv") if not p.name.startswith("00-") and p.is_file()]
    except OSError:
        return []
    return sorted(paths, key=lambda p: (p.name != "global.csv", p.name))


def load_legend(path: str | Path | None = None) -> dict[str, str]:
    """Category code -> short description, from Citizen Lab's legend CSV ({} if unavailable)."""
    legend = Path(path) if path is not None else testlists_dir() / LEGEND_NAME
    out: dict[str, str] = {}
    try:
        with open(legend, encoding="utf-8-sig", errors="replace", newline="") as fh:
            reader = csv.DictReader(fh)
            for row in reader:
                code = (row.get("New Code") or "").strip().upper()
                if code:
                    out[code] = (row.get("Category Description") or "").strip()
    except (OSError, csv.Error):
        return {}
    return out


# --- reading CSV files ----------------------------------------------------------------------


@dataclass
class _Record:
    entries: list[tuple[int, str, str]]  # (physical line, text, decode error) per line

    @property
    def line(self) -> int:
        return self.entries[0][0]

    @property
    def lines(self) -> list[str]:
        return [text for _, text, _ in self.entries]

    def decode_error(self) -> tuple[int, str] | None:
        for lineno, _, err in self.entries:
            if err:
                return lineno, err
        return None


def _quote_state(line: str, in_quotes: bool) -> bool:
    """Whether a CSV record is still inside a quoted field after ``line`` (csv-module rules:
    a quote opens a field only at its start; ``""`` inside quotes is an escaped quote)."""
    if '"' not in line:
        return in_quotes
    pos, n = 0, len(line)
    at_start = not in_quotes
    while pos < n:
        if in_quotes:
            j = line.find('"', pos)
            if j < 0:
                return True
            if j + 1 < n and line[j + 1] == '"':
                pos = j + 2
                continue
            in_quotes, at_start, pos = False, False, j + 1
        elif at_start and line[pos] == '"':
            in_quotes, pos = True, pos + 1
        else:
            j = line.find(",", pos)
            if j < 0:
                return False
            at_start, pos = True, j + 1
    return in_quotes


def _physical_lines(
    fh: BinaryIO, name: str, report: Callable[[ListProblem], None]
) -> Iterator[tuple[int, str, str]]:
    """Yield ``(line_number, text, decode_error)`` per physical line, bounded in length.

    Invalid UTF-8 is decoded with ``surrogateescape`` (so quote tracking still works) and flagged
    in ``decode_error``; overlong lines are reported here and replaced by an empty line.
    """
    lineno = 0
    while True:
        raw = fh.readline(MAX_LINE_BYTES)
        if not raw:
            return
        lineno += 1
        if lineno == 1:
            if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
                raise TestListError(
                    ListProblem(name, 0, "file is UTF-16 encoded; save it as UTF-8 (CSV UTF-8)")
                )
            if raw.startswith(_UTF8_BOM):
                raw = raw[len(_UTF8_BOM) :]
            if b"\r" in raw.rstrip(b"\r\n"):
                raise TestListError(
                    ListProblem(name, 0, "lines end with CR only (classic Mac); use LF or CRLF line ends")
                )
        if len(raw) == MAX_LINE_BYTES and not raw.endswith(b"\n"):
            while raw and not raw.endswith(b"\n"):  # skip the rest of the line, in bounded reads
                raw = fh.readline(MAX_LINE_BYTES)
            report(ListProblem(name, lineno, f"line longer than {MAX_LINE_BYTES} bytes"))
            yield lineno, "\n", ""
            continue
        try:
            text, reason = raw.decode("utf-8"), ""
        except UnicodeDecodeError as exc:
            bad = raw[exc.start : max(exc.end, exc.start + 1)].hex(" ")
            reason = f"invalid UTF-8 (byte {bad} at byte {exc.start + 1} of the line)"
            text = raw.decode("utf-8", "surrogateescape")
        yield lineno, text, reason


def _records(lines: Iterator[tuple[int, str, str]], name: str) -> Iterator[_Record | ListProblem]:
    """Group physical lines into CSV records; an unterminated quote becomes a problem and
    reading resumes on the line after the one that opened it."""
    pending: list[tuple[int, str, str]] = []  # lines to re-read after an unterminated quote

    def next_line() -> tuple[int, str, str] | None:
        if pending:
            return pending.pop(0)
        return next(lines, None)

    while True:
        first = next_line()
        if first is None:
            return
        entries = [first]
        in_quotes = _quote_state(first[1], False)
        while in_quotes and len(entries) < MAX_RECORD_LINES:
            nxt = next_line()
            if nxt is None:
                break
            entries.append(nxt)
            in_quotes = _quote_state(nxt[1], True)
        if in_quotes:
            yield ListProblem(name, first[0], "unterminated quoted field (a stray '\"'?)")
            # Re-read the lines swallowed by the open quote as rows of their own.
            pending[:0] = entries[1:]
            continue
        yield _Record(entries)


def _fields(rec: _Record) -> list[str]:
    if len(rec.lines) == 1 and '"' not in rec.lines[0]:
        return rec.lines[0].rstrip("\r\n").split(",")  # what csv would do, faster
    return next(csv.reader(rec.lines, strict=True), [])


class OpenedList:
    """A test list opened for reading, named as the user named it.

    A regular file is read in place. Anything else (``-`` for stdin, ``<(cmd)``, a FIFO, a
    device) is a stream that can be read only once: it is copied into an anonymous temporary
    file first, with bounds, so that it can be counted for the progress bar and then read. The
    copy waits for data in ``select`` rather than in a blocking ``open``/``read``, so Ctrl-C and
    SIGTERM end a wait on a FIFO that nobody writes to.
    """

    def __init__(self, name: str, fh: BinaryIO, stream: bool) -> None:
        self.name = name
        self.fh = fh
        self.stream = stream
        #: What results record about the list: its file name, never the directories above it
        #: (home directories carry user names).
        self.label = "<stdin>" if name == "<stdin>" else (Path(name).name or name)
        self._scan: tuple[int, str] | None = None

    def scan(self) -> tuple[int, str]:
        """(lines, sha256 of the content), read once; the list is left at its start."""
        if self._scan is None:
            import hashlib

            digest = hashlib.sha256()
            lines = 0
            self.fh.seek(0)
            for chunk in iter(lambda: self.fh.read(1 << 20), b""):
                digest.update(chunk)
                lines += chunk.count(b"\n")
            self.fh.seek(0)
            self._scan = (lines, digest.hexdigest())
        return self._scan

    def identity(self) -> str:
        """``"name sha256:HEX"``: identifies the list's content without the user's paths."""
        return f"{self.label} sha256:{self.scan()[1]}"

    def close(self) -> None:
        self.fh.close()

    def __enter__(self) -> OpenedList:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _spool(fd: int, name: str) -> BinaryIO:
    """Copy a stream into an anonymous temporary file, waiting for data in ``select``."""
    import select
    import tempfile

    out = tempfile.TemporaryFile()  # noqa: SIM115  (returned open; its owner closes it)
    total = 0
    try:
        while True:
            select.select([fd], [], [])  # interruptible: signal handlers run while waiting
            try:
                chunk = os.read(fd, 1 << 16)
            except BlockingIOError:
                continue
            if not chunk:
                break
            if b"\0" in chunk:
                raise TestListError(ListProblem(
                    name, 0, "binary data (NUL bytes), not a CSV test list"))
            total += len(chunk)
            if total > MAX_STREAM_BYTES:
                raise TestListError(ListProblem(
                    name, 0, f"a list read from a stream is limited to {MAX_STREAM_BYTES >> 20} MiB; "
                    "save it to a file first"))
            out.write(chunk)
    except BaseException:
        out.close()
        raise
    out.seek(0)
    return out  # a binary file object


def open_list(path: str | Path) -> OpenedList:
    """Open one test list (``-``: standard input). Raises :class:`TestListError` naming it."""
    import stat

    name = str(path)
    if name == "-":
        return OpenedList("<stdin>", _spool(sys.stdin.fileno(), "<stdin>"), True)
    try:
        # O_NONBLOCK: opening a FIFO must not block before anyone writes to it.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise TestListError(ListProblem(name, 0, "no such file")) from None
    except IsADirectoryError:
        raise TestListError(ListProblem(name, 0, "is a directory, not a CSV file")) from None
    except OSError as exc:
        raise TestListError(ListProblem(name, 0, f"cannot read: {exc.strerror or exc}")) from None
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISREG(mode):
            os.set_blocking(fd, True)
            return OpenedList(name, os.fdopen(fd, "rb"), False)
    except BaseException:
        os.close(fd)
        raise
    try:
        if stat.S_ISDIR(mode):
            raise TestListError(ListProblem(name, 0, "is a directory, not a CSV file"))
        return OpenedList(name, _spool(fd, name), True)
    except OSError as exc:
        raise TestListError(ListProblem(name, 0, f"read error: {exc.strerror or exc}")) from None
    finally:
        os.close(fd)


def _open(path: str | Path | OpenedList) -> tuple[str, BinaryIO, bool]:
    """(name, file at its start, whether the caller must close it)."""
    if isinstance(path, OpenedList):
        path.fh.seek(0)
        return path.name, path.fh, False
    opened = open_list(path)
    return opened.name, opened.fh, True


def _read_file(
    path: str | Path | OpenedList, report: Callable[[ListProblem], None], stats: ListStats
) -> Iterator[tuple[int, str, str]]:
    """Yield ``(line, url, category_code)`` for each structurally sound row of one file;
    report every other row. Raises TestListError for file-level problems."""
    name, fh, owned = _open(path)
    try:
        header: list[str] | None = None
        url_idx = cat_idx = -1
        any_rows = False
        try:
            for item in _records(_physical_lines(fh, name, report), name):
                if isinstance(item, ListProblem):
                    if header is None:
                        raise TestListError(item)
                    stats.rows += 1
                    any_rows = True
                    report(item)
                    continue
                rec = item
                if header is None and not "".join(rec.lines).strip():
                    continue  # blank lines before the header
                bad = rec.decode_error()
                if bad is not None:
                    if header is None:
                        raise TestListError(ListProblem(name, bad[0], f"header: {bad[1]}"))
                    stats.rows += 1
                    any_rows = True
                    report(ListProblem(name, bad[0], bad[1]))
                    continue
                try:
                    fields = _fields(rec)
                except csv.Error as exc:
                    if header is None:
                        raise TestListError(ListProblem(name, rec.line, f"header: bad CSV ({exc})")) from None
                    stats.rows += 1
                    any_rows = True
                    report(ListProblem(name, rec.line, f"bad CSV ({exc})"))
                    continue
                if not any(f.strip() for f in fields):
                    continue  # blank line: no data
                if header is None:
                    header = [f.strip().lower() for f in fields]
                    if "url" not in header:
                        hint = (
                            "; the first line must be the header" if "://" in "".join(fields) else ""
                        )
                        raise TestListError(
                            ListProblem(
                                name,
                                rec.line,
                                f"header has no 'url' column (found: {', '.join(header)}){hint}; "
                                "expected url,category_code,category_description,date_added,source,notes",
                            )
                        )
                    url_idx = header.index("url")
                    cat_idx = header.index("category_code") if "category_code" in header else -1
                    continue
                stats.rows += 1
                any_rows = True
                if len(fields) != len(header):
                    # Too many fields usually means an unquoted comma, which may have cut the URL.
                    hint = " (an unquoted comma?)" if len(fields) > len(header) else ""
                    reason = f"row has {len(fields)} field(s), the header has {len(header)}{hint}"
                    report(ListProblem(name, rec.line, reason))
                    continue
                category = fields[cat_idx].strip().upper() if cat_idx >= 0 else ""
                yield rec.line, fields[url_idx], category
        except OSError as exc:
            raise TestListError(ListProblem(name, 0, f"read error: {exc.strerror or exc}")) from None
        if header is None:
            report(ListProblem(name, 0, "empty file: no header and no URLs"))
        elif not any_rows:
            report(ListProblem(name, 0, "no URLs: the file has a header but no rows"))
    finally:
        if owned:
            fh.close()


def iter_targets(
    paths: Iterable[str | Path | OpenedList],
    urls: Iterable[str] = (),
    categories: str | Iterable[str] | None = None,
    strict: bool = False,
    on_error: Callable[[ListProblem], None] | None = None,
    *,
    stats: ListStats | None = None,
) -> Iterator[Target]:
    """Stream the targets of the given lists, then of ``urls``, de-duplicated by measured URL.

    - ``urls`` are ad-hoc targets (``--url``): source ``"cli"``, no category, never filtered by
      category; an invalid one always raises :class:`TestListError` (it is a usage error).
    - ``categories``: only list rows with these codes (``"NEWS,HUMR"`` or an iterable of codes).
    - Each invalid row goes to ``on_error`` as a :class:`ListProblem` (``file:line`` + reason)
      and the other rows proceed; without ``on_error`` problems are logged as warnings. With
      ``strict=True`` the first problem raises :class:`TestListError` instead.
    - A missing or unreadable file, or one whose header lacks a ``url`` column, always raises
      :class:`TestListError`; every file is checked for readability before the first target.
    - The first occurrence of a URL wins; de-duplication keeps an 8-byte fingerprint per URL
      (:class:`probe.urlset.URLSet`), so memory stays small however long the list.
    - ``stats``, if given, is filled in with counts (rows, targets, problems, duplicates, ...).
    """
    paths = list(paths)
    wanted = parse_categories(categories)
    st = stats if stats is not None else ListStats()
    seen = URLSet()

    def report(problem: ListProblem) -> None:
        st.problems += 1
        if strict:
            raise TestListError(problem)
        if on_error is not None:
            on_error(problem)
        else:
            log.warning("%s", problem)

    def fresh(target: Target) -> bool:
        if seen.add(target.url):
            return True
        st.duplicates += 1
        return False

    # Fail fast on usage errors, before the first target is measured.
    cli_targets = []
    for i, u in enumerate(urls, 1):
        try:
            cli_targets.append(parse_url(u, source="cli"))
        except InvalidURL as exc:
            raise TestListError(ListProblem("--url", 0, f"#{i}: {exc}")) from None
    # Open every list first (a stream is copied now): a missing file fails before any target.
    opened: list[OpenedList] = []
    try:
        for path in paths:
            opened.append(path if isinstance(path, OpenedList) else open_list(path))
    except BaseException:
        for item, path in zip(opened, paths, strict=False):
            if item is not path:
                item.close()
        raise
    try:
        yield from _targets_of(opened, report, fresh, wanted, st)
    finally:
        for item, path in zip(opened, paths, strict=True):
            if item is not path:
                item.close()

    for target in cli_targets:
        if fresh(target):
            st.targets += 1
            yield target


def _targets_of(
    opened: list[OpenedList],
    report: Callable[[ListProblem], None],
    fresh: Callable[[Target], bool],
    wanted: frozenset[str] | None,
    st: ListStats,
) -> Iterator[Target]:
    for path in opened:
        name = path.name
        count = 0
        for line, url, category in _read_file(path, report, st):
            source = f"{path.label}:{line}"  # stored: the list's name, not where it lives
            try:
                target = parse_url(url, category_code=category, source=source)
            except InvalidURL as exc:
                report(ListProblem(name, line, f"invalid URL {show_url(url.strip())}: {exc.reason}"))
                continue
            if wanted is not None and category not in wanted:
                st.filtered += 1
                continue
            if fresh(target):
                st.targets += 1
                count += 1
                yield target
        st.per_file[name] = st.per_file.get(name, 0) + count


# --- summaries (`probe testlists`) ----------------------------------------------------------


@dataclass(frozen=True)
class ListSummary:
    """What one list contains: valid unique URLs per category, and the rows that are not valid."""

    path: str
    targets: int
    categories: tuple[tuple[str, int], ...]  # (code, URLs), sorted by code
    problems: tuple[ListProblem, ...] = ()  # the first few
    problem_count: int = 0
    duplicates: int = 0  # rows repeating a URL already in this list
    shipped: bool = False  # one of the lists shipped with probe (see SHIPPED_ORIGIN)
    descriptions: tuple[tuple[str, str], ...] = ()  # (code, category_description) from the rows


@dataclass(frozen=True)
class Summary:
    """The result of :func:`summarize`: one entry per list, and the URLs they have in total."""

    lists: tuple[ListSummary, ...]
    unique_targets: int  # distinct measured URLs over all the lists


_MAX_KEPT_PROBLEMS = 20


def summarize(paths: Iterable[str | Path] | None = None) -> Summary:
    """Count each list's valid URLs per category (``paths`` default: :func:`known_lists`).

    Raises :class:`TestListError` for a missing or unusable file, like :func:`iter_targets`.
    """
    chosen: list[str | Path] = list(known_lists() if paths is None else paths)
    opened: list[OpenedList] = []
    try:
        for path in chosen:
            opened.append(open_list(path))
        return _summarize(chosen, opened)
    finally:
        for item in opened:
            item.close()


def _summarize(paths: list[str | Path], opened: list[OpenedList]) -> Summary:
    shipped_dir = testlists_dir().resolve()
    union = URLSet()
    out = []
    for path, item in zip(paths, opened, strict=True):
        problems: list[ListProblem] = []
        st = ListStats()

        def keep(problem: ListProblem, problems: list[ListProblem] = problems) -> None:
            if len(problems) < _MAX_KEPT_PROBLEMS:
                problems.append(problem)

        counts: dict[str, int] = {}
        for target in iter_targets([item], on_error=keep, stats=st):
            counts[target.category_code] = counts.get(target.category_code, 0) + 1
            union.add(target.url)
        try:
            shipped = not item.stream and Path(path).resolve().parent == shipped_dir
        except OSError:
            shipped = False
        out.append(
            ListSummary(
                path=item.name,
                targets=st.targets,
                categories=tuple(sorted(counts.items())),
                problems=tuple(problems),
                problem_count=st.problems,
                duplicates=st.duplicates,
                shipped=shipped,
                descriptions=tuple(sorted(_row_descriptions(item).items())),
            )
        )
    return Summary(lists=tuple(out), unique_targets=len(union))


def _row_descriptions(item: OpenedList) -> dict[str, str]:
    """category_code -> category_description as written in a list (fallback for the legend)."""
    import io

    out: dict[str, str] = {}
    item.fh.seek(0)
    fh = io.TextIOWrapper(item.fh, encoding="utf-8-sig", errors="replace", newline="")
    try:
        for row in csv.DictReader(fh):
            code = (row.get("category_code") or "").strip().upper()
            if code and code not in out:
                out[code] = (row.get("category_description") or "").strip()
    except (OSError, csv.Error):
        pass
    finally:
        fh.detach()  # the list stays open: its owner closes it
    return out


def summary_records(summary: Summary, legend: dict[str, str] | None = None) -> Iterator[dict[str, Any]]:
    """One JSON-able dict per list (``probe testlists --json``)."""
    legend = load_legend() if legend is None else legend
    for entry in summary.lists:
        own = dict(entry.descriptions)
        yield {
            "path": entry.path,
            "urls": entry.targets,
            "shipped": entry.shipped,
            "invalid_rows": entry.problem_count,
            "duplicate_rows": entry.duplicates,
            "categories": {
                code: {"urls": n, "description": legend.get(code) or own.get(code, "")}
                for code, n in entry.categories
            },
        }


def render_summary(summary: Summary, legend: dict[str, str] | None = None) -> str:
    """A text table for ``probe testlists``: URLs per category (rows) and list (columns)."""
    summaries = summary.lists
    if not summaries:
        return f"No test lists found in {testlists_dir()} (set ${TESTLISTS_ENV} or name files)."
    legend = dict(load_legend() if legend is None else legend)
    for s in summaries:
        for code, desc in s.descriptions:
            legend.setdefault(code, desc)
    names = [Path(s.path).name for s in summaries]
    if len(set(names)) != len(names):
        names = [s.path for s in summaries]
    codes = sorted({code for s in summaries for code, _ in s.categories})
    per = [dict(s.categories) for s in summaries]
    desc_w = max([len("category"), *(len(legend.get(c, "")) for c in codes)])
    code_w = max([len("code"), len("total"), *(len(c or "-") for c in codes)])
    col_w = [max(len(n), 6) for n in names]

    lines = ["Test lists:"]
    for s in summaries:
        lines.append(f"  {s.path}  {s.targets} URLs{'  [shipped]' if s.shipped else ''}")
        if s.problem_count:
            lines.append(f"    {s.problem_count} invalid row(s), first: {s.problems[0]}")
        if s.duplicates:
            lines.append(f"    {s.duplicates} duplicate row(s) skipped")
    if any(s.shipped for s in summaries):
        lines.append(f"  [shipped] {SHIPPED_ORIGIN} in {testlists_dir()}")
    lines.append("")
    head = f"{'code':<{code_w}}  {'category':<{desc_w}}"
    lines.append(head + "".join(f"  {n:>{w}}" for n, w in zip(names, col_w, strict=True)))
    for code in codes:
        row = f"{code or '-':<{code_w}}  {legend.get(code, ''):<{desc_w}}"
        row += "".join(f"  {p.get(code, 0):>{w}}" for p, w in zip(per, col_w, strict=True))
        lines.append(row)
    total = f"{'total':<{code_w}}  {'':<{desc_w}}"
    total += "".join(f"  {s.targets:>{w}}" for s, w in zip(summaries, col_w, strict=True))
    lines.append(total)
    if len(summaries) > 1:
        lines.append(f"{summary.unique_targets} distinct URLs over these {len(summaries)} lists")
    return "\n".join(lines)
