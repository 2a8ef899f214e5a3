"""Small pieces every renderer shares: text measured, cut, padded and wrapped to a width.

Widths are terminal columns, not characters: a CJK character or an emoji takes two columns and
a combining mark none (East Asian Width and the Unicode categories of the standard library's
``unicodedata``), so a table of Chinese page titles fits 80 columns as well as an English one.
Text that came from the network is made safe first (:mod:`probe.present.terminal`).
"""

from __future__ import annotations

import unicodedata

__all__ = ["cells", "cut", "cut_middle", "pad", "plural", "reflow", "wrap"]

_ELLIPSIS = "…"


def _char_cells(c: str) -> int:
    if unicodedata.combining(c) or unicodedata.category(c) in ("Mn", "Me", "Cf"):
        return 0
    return 2 if unicodedata.east_asian_width(c) in ("W", "F") else 1


def cells(text: str) -> int:
    """The columns ``text`` takes on a terminal."""
    return len(text) if text.isascii() else sum(_char_cells(c) for c in text)


def _head(text: str, width: int) -> str:
    """The longest start of ``text`` that fits ``width`` columns."""
    used = 0
    for i, c in enumerate(text):
        used += _char_cells(c)
        if used > width:
            return text[:i]
    return text


def _tail(text: str, width: int) -> str:
    """The longest end of ``text`` that fits ``width`` columns."""
    used = 0
    for i in range(len(text) - 1, -1, -1):
        used += _char_cells(text[i])
        if used > width:
            return text[i + 1:]
    return text


def cut(text: str, width: int) -> str:
    """``text`` cut to ``width`` columns, an ellipsis marking the cut."""
    if len(text) <= width and (text.isascii() or cells(text) <= width):
        return text
    return _head(text, max(0, width - 1)) + _ELLIPSIS


def cut_middle(text: str, width: int) -> str:
    """``text`` shortened to ``width`` columns by an ellipsis in the middle: its start (for a
    URL, the scheme and host: ``http://`` and ``https://`` rows stay distinct) and its end
    (the path's last part) are kept."""
    if len(text) <= width and (text.isascii() or cells(text) <= width):
        return text
    room = max(0, width - 1)
    scheme = text.find("://") + 3 if "://" in text[:12] else 0
    head = max(min(scheme + 1, room), (room + 1) // 2)
    start = _head(text, head)
    return start + _ELLIPSIS + _tail(text[len(start):], room - cells(start))


def plural(n: int, noun: str, nouns: str | None = None) -> str:
    """``1 URL``, ``2 URLs``, ``0 URLs`` (``nouns``: an irregular plural)."""
    return f"{n} {noun if n == 1 else nouns or noun + 's'}"


def pad(text: str, width: int) -> str:
    """``text`` padded with spaces to ``width`` columns (``str.ljust`` counts characters)."""
    return text + " " * max(0, width - cells(text))


def wrap(text: str, width: int, indent: str = "", subsequent: str | None = None) -> list[str]:
    """``text`` wrapped at spaces to lines of at most ``width`` columns (``indent`` before the
    first line, ``subsequent`` before the others: ``indent`` when not given); a word longer
    than a line is broken. Runs of spaces collapse to one."""
    later = indent if subsequent is None else subsequent
    lines: list[str] = []
    if not text.strip():
        return lines
    line, used, lead = indent, cells(indent), indent
    for word in text.split():
        w = cells(word)
        if line != lead and used + 1 + w <= width:
            line, used = line + " " + word, used + 1 + w
            continue
        if line != lead:
            lines.append(line)
            line = lead = later
            used = cells(later)
        room = max(1, width - used)
        while w > room:  # a word longer than the line: break it
            part = _head(word, room) or word[0]
            lines.append(line + part)
            word = word[len(part):]
            w = cells(word)
            line = lead = later
            used = cells(later)
            room = max(1, width - used)
        line, used = line + word, used + w
    if line != lead or not lines:
        lines.append(line)
    return lines


_BULLETS = ("* ", "- ")


def reflow(text: str, width: int) -> str:
    """Prose written as paragraphs re-wrapped to ``width`` columns, as a terminal of that width
    needs it (text wrapped at another width breaks mid-line there, every line).

    Paragraphs are separated by blank lines; a paragraph's lines are joined, then wrapped at
    its first line's indentation. An item (a line starting with ``* `` or ``- ``) starts a new
    paragraph whose continuation lines hang under its text. A heading underlined with ``=`` or
    ``-`` keeps its line, its rule cut to the width. Single line breaks inside a paragraph are
    not kept.
    """
    out: list[str] = []
    for block in text.split("\n\n"):
        lines = block.split("\n")
        if len(lines) == 2 and lines[1] and set(lines[1]) <= {"=", "-"}:
            out += [*wrap(lines[0], width), lines[1][:width]]
            out.append("")
            continue
        items: list[list[str]] = []
        for line in lines:
            if not items or line.lstrip().startswith(_BULLETS):
                items.append([line])
            else:
                items[-1].append(line)
        for item in items:
            first = item[0]
            lead = first[: len(first) - len(first.lstrip())]
            body = " ".join(x.strip() for x in item)
            if body.startswith(_BULLETS):
                out += wrap(body[2:], width, lead + body[:2], lead + "  ")
            else:
                out += wrap(body, width, lead) or [""]
        out.append("")
    return "\n".join(out[:-1]) + ("\n" if text.endswith("\n") else "")
