"""Reading one Citizen Lab CSV file: physical lines, bounded, into (line, url, category) rows.

Each file is read line by line in binary, each physical line decoded on its own, so one bad row
(invalid UTF-8, a broken quote, a short row) is reported with ``file:line`` and the reason and
the other rows proceed. Line numbers are physical lines (1-based), so a quoted field that spans
lines does not shift the numbers of the rows after it.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from probe.inputs.testlists.problems import ListProblem, ListStats, TestListError
from probe.inputs.testlists.source import OpenedList, open_list

__all__ = ["MAX_LINE_BYTES", "MAX_RECORD_LINES", "read_rows"]

# A physical line longer than this is reported and skipped instead of being read into memory.
MAX_LINE_BYTES = 64 * 1024
# A quoted field still open after this many lines is taken to be a stray quote: the row is
# reported and reading resumes on the next line, so one bad quote cannot swallow a whole file.
MAX_RECORD_LINES = 50

_UTF8_BOM = b"\xef\xbb\xbf"


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

def _open(path: str | Path | OpenedList) -> tuple[str, BinaryIO, bool]:
    """(name, file at its start, whether the caller must close it)."""
    if isinstance(path, OpenedList):
        path.fh.seek(0)
        return path.name, path.fh, False
    opened = open_list(path)
    return opened.name, opened.fh, True


def read_rows(
    path: str | Path | OpenedList, report: Callable[[ListProblem], None], stats: ListStats
) -> Generator[tuple[int, str, str], None, None]:
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
