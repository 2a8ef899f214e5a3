"""The one terminal sanitizer: text that came from the network or a file, made safe to print.

A page title, a header, a certificate subject, an OONI field, a vantage point's name from a
merged database or a line of a test list is someone else's text. Written raw to a terminal,
its escape sequences act: OSC 52 writes the clipboard, OSC 8 disguises a link, OSC 0 renames
the window, DCS, APC, PM and SOS strings reach the terminal's parsers, CSI moves the cursor and
repaints what the volunteer reads, and a carriage return or a line feed forges a line
("verdict: OK"). Every such sequence starts with a control character: ESC (0x1b) or another
C0 control, DEL, or a C1 control (0x80-0x9f: 0x9b is CSI, 0x9d OSC, 0x90 DCS in 8-bit form).
So escaping every control character disarms all of them, whatever follows: what is left of
the sequence is printable text, shown as it came (``\\x1b]52;c;...\\x07``), so that the
evidence stays visible. Bidirectional overrides and isolates (U+202A-U+202E, U+2066-U+2069)
and the line and paragraph separators (U+2028, U+2029) are escaped too: they reorder or break
what is displayed without being control characters.

:func:`clean` is for one field (every control escaped, line breaks included);
:func:`clean_lines` for a message of several lines (line feeds kept); :func:`json_safe` for
JSON that a person may read on a terminal (the same characters as ``\\u`` escapes, which a JSON
reader decodes back to the same text: nothing is lost). :func:`output_width` is the one rule for
how wide a command's text may be. Every renderer in probe/present and the
error boundary of the command line (probe/cli/_group.py) use them. Standard library only.
"""

from __future__ import annotations

import os
import shutil
import sys

from probe.present.text import cells, wrap

__all__ = ["clean", "clean_lines", "fit_lines", "json_safe", "output_width"]

_NAMED = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}
_UNSAFE = [*range(0x00, 0x20), 0x7F, *range(0x80, 0xA0),
           *range(0x202A, 0x202F), *range(0x2066, 0x206A), 0x2028, 0x2029]  # fmt: skip


def _escape(cp: int) -> str:
    c = chr(cp)
    if c in _NAMED:
        return _NAMED[c]
    return f"\\x{cp:02x}" if cp < 0x100 else f"\\u{cp:04x}"


_FIELD = str.maketrans({cp: _escape(cp) for cp in _UNSAFE})
_LINES = str.maketrans({cp: _escape(cp) for cp in _UNSAFE if cp != 0x0A})
_JSON = str.maketrans({cp: f"\\u{cp:04x}" for cp in _UNSAFE if cp >= 0x7F})


def clean(text: object) -> str:
    """``text`` (anything: ``str()`` of it) as one line safe for a terminal: every control
    character (C0 with tab, CR and LF, DEL, C1) and every bidirectional override shown as an
    escape (``\\x1b``, ``\\n``, ``\\u202e``)."""
    s = text if isinstance(text, str) else str(text)
    return s if s.isprintable() else s.translate(_FIELD)


def clean_lines(text: object) -> str:
    """``text`` as lines safe for a terminal: as :func:`clean`, but line feeds are kept."""
    s = text if isinstance(text, str) else str(text)
    return s if s.isprintable() else s.translate(_LINES)


def json_safe(encoded: str) -> str:
    """JSON text with DEL, the C1 controls and the bidirectional overrides written as ``\\u``
    escapes. JSON encoders escape the C0 controls already but write these raw (``ensure_ascii=
    False``); they can only occur inside strings, where the escape means the same character."""
    return encoded if encoded.isascii() else encoded.translate(_JSON)


def output_width(default: int = 80, *, err: bool = False) -> int:
    """The columns a command's text must fit: the terminal's on stdout (stderr with ``err``);
    on a pipe or a file, $COLUMNS when it is set, else ``default`` (what a command's output is
    for there: 160 for `probe results`, so a line keeps every column)."""
    stream = sys.stderr if err else sys.stdout
    try:
        tty = stream.isatty()
    except (AttributeError, ValueError):  # replaced or closed streams
        tty = False
    if tty:
        return max(20, shutil.get_terminal_size((default, 24)).columns)
    columns = os.environ.get("COLUMNS", "")
    return max(20, int(columns)) if columns.isdigit() else default


def fit_lines(text: str, width: int, first: int = 0) -> str:
    """``text`` (already safe) with every line longer than ``width`` columns wrapped at spaces,
    continuations indented by two; the first line starts ``first`` columns in (after click's
    ``Error: ``)."""
    out: list[str] = []
    for i, line in enumerate(text.split("\n")):
        lead = first if i == 0 else 0
        if lead + cells(line) <= width:
            out.append(line)
            continue
        parts = wrap(line, width, " " * lead, "  ")
        out += [parts[0][lead:], *parts[1:]]
    return "\n".join(out)
