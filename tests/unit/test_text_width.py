"""Text fitted to terminal columns: CJK takes two, URLs are shortened in the middle."""

from __future__ import annotations

import pytest

from probe.present.text import cells, cut, cut_middle, pad, plural, wrap


def test_columns_count_wide_and_combining_characters() -> None:
    assert cells("abc") == 3
    assert cells("中文") == 4 and cells("e\u0301") == 1 and cells("😀") == 2


@pytest.mark.parametrize("width", [12, 20, 24, 30, 40])
def test_long_urls_keep_their_scheme_and_end(width: int) -> None:
    http = "http://www.example.org/some/long/path/to/page.html"
    https = "https://www.example.org/some/long/path/to/page.html"
    a, b = cut_middle(http, width), cut_middle(https, width)
    assert cells(a) <= width and cells(b) <= width and "…" in a
    assert a.startswith("http:") and b.startswith("https") and a != b
    assert a.endswith("l") and b.endswith("l")  # the end of the path stays
    assert cut_middle(http, 200) == http


def test_cut_pad_and_wrap_count_columns_not_characters() -> None:
    title = "中文网站中文网站"
    assert cells(cut(title, 7)) <= 7 and cut(title, 7).endswith("…")
    assert cells(pad("中文", 6)) == 6
    lines = wrap(f"a title: {title * 3} and more words here", 20, "  ", "    ")
    assert all(cells(line) <= 20 for line in lines) and lines[0].startswith("  a title:")
    assert wrap("", 20) == [] and wrap("one", 20, "- ") == ["- one"]
    assert "".join("".join(wrap("x" * 50, 10)).split()) == "x" * 50  # long words are broken


def test_plurals() -> None:
    assert (plural(1, "URL"), plural(2, "URL"), plural(0, "URL")) == ("1 URL", "2 URLs", "0 URLs")
    assert plural(3, "vantage point") == "3 vantage points"


@pytest.mark.parametrize("width", [60, 80, 100])
def test_the_consent_is_reflowed_to_the_terminal_without_losing_a_word(width: int) -> None:
    # Written at ~88 columns, it broke mid-line on every line of an 80-column terminal.
    from probe.host.consent import RISK_TEXT
    from probe.present.text import reflow

    text = reflow(RISK_TEXT, width)
    assert max(cells(line) for line in text.splitlines()) <= width
    assert text.split() == RISK_TEXT.split()
    items = [line for line in text.splitlines() if line.startswith("* ")]
    assert len(items) == RISK_TEXT.count("\n* ")  # each item starts its own line
    assert all(line.startswith("  ") or line.startswith("* ") or not line.strip() or line[0].isalpha()
               or line[0] == "=" for line in text.splitlines())
