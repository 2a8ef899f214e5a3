"""Test lists: URL normalisation, CSV edge cases, problems with file:line, de-duplication."""

from __future__ import annotations

import csv
import io
import logging
import os
import sys
from pathlib import Path

import pytest

from probe.inputs import testlists
from probe.inputs.testlists import (
    InvalidURL,
    ListProblem,
    ListStats,
    TestListError,
    default_lists,
    iter_targets,
    known_lists,
    load_legend,
    open_list,
    parse_categories,
    parse_url,
    summarize,
    unknown_categories,
)

HEADER = b"url,category_code,category_description,date_added,source,notes\n"
SHIPPED = Path(__file__).resolve().parents[2] / "testlists"


def write(tmp_path: Path, data: bytes, name: str = "list.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def row(url: str, code: str = "NEWS", notes: str = "") -> bytes:
    return f"{url},{code},Desc,2020-01-01,citizenlab,{notes}\n".encode()


def collect(paths, **kwargs) -> tuple[list, list[ListProblem]]:
    problems: list[ListProblem] = []
    targets = list(iter_targets(paths, on_error=problems.append, **kwargs))
    return targets, problems


# --- parse_url ------------------------------------------------------------------------------


def test_parse_url_uses_default_ports_and_keeps_path_and_query() -> None:
    t = parse_url("https://example.org/a/b?x=1&y=2", category_code="NEWS", source="f.csv:2")
    assert (t.scheme, t.host, t.port, t.path) == ("https", "example.org", 443, "/a/b?x=1&y=2")
    assert t.url == "https://example.org/a/b?x=1&y=2"
    assert (t.category_code, t.source) == ("NEWS", "f.csv:2")
    assert parse_url("http://example.org").port == 80
    assert parse_url("http://example.org").path == "/"


def test_parse_url_keeps_explicit_port_and_drops_default_one() -> None:
    t = parse_url("http://example.org:8080/x")
    assert (t.port, t.url) == (8080, "http://example.org:8080/x")
    assert parse_url("https://example.org:443/").url == "https://example.org/"


def test_parse_url_lowercases_scheme_and_host_and_drops_fragment() -> None:
    t = parse_url("HTTP://Example.ORG/Path#frag")
    assert t.url == "http://example.org/Path"
    assert t.original_url == "HTTP://Example.ORG/Path#frag"


def test_parse_url_measures_punycode_of_idn_host_and_keeps_original() -> None:
    original = "https://bücher.example/straße?q=ä"
    t = parse_url(original)
    assert t.host == "xn--bcher-kva.example"
    assert t.url == "https://xn--bcher-kva.example/stra%C3%9Fe?q=%C3%A4"
    assert t.original_url == original
    assert t.url.isascii()


def test_parse_url_escapes_lone_percent_and_keeps_existing_escapes() -> None:
    assert parse_url("http://example.org/100%/a%20b?p=5%").path == "/100%25/a%20b?p=5%25"


def test_parse_url_accepts_ipv6_literal_and_stores_host_without_brackets() -> None:
    t = parse_url("http://[2001:DB8::1]:8080/x")
    assert (t.host, t.port, t.url) == ("2001:db8::1", 8080, "http://[2001:db8::1]:8080/x")
    assert parse_url("https://[::1]/").port == 443


def test_parse_url_accepts_ipv4_literal() -> None:
    assert parse_url("http://192.0.2.7/").host == "192.0.2.7"


@pytest.mark.parametrize("url", ["ftp://example.org/", "file:///etc/passwd", "javascript:alert(1)"])
def test_parse_url_rejects_unsupported_scheme(url: str) -> None:
    with pytest.raises(InvalidURL) as exc:
        parse_url(url)
    assert "unsupported scheme" in exc.value.reason


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("", "empty"),
        ("example.org/page", "missing scheme"),
        ("example.org:8080/", "missing scheme"),
        ("http://", "missing host"),
        ("http:/example.org/", "'//'"),
        ("http://exa mple.org/", "white space"),
        ("http://example.org:99999/", "port"),
        ("http://example.org:abc/", "port"),
        ("http://example.org:0/", "port 0"),
        ("http://[::1/", "IPv6"),
        ("http://[not:an:ip]/", "IPv6"),
        ("http://999.1.1.1/", "IPv4"),
        ("http://user:pw@example.org/", "user name or password"),
        ("http://-bad-.example/", "label"),
        ("http://a..example/", "label"),
        ("http://example.org/\x00", "control character"),
    ],
)
def test_parse_url_rejects_malformed_url_with_reason(url: str, reason: str) -> None:
    with pytest.raises(InvalidURL) as exc:
        parse_url(url)
    assert reason in exc.value.reason


def test_parse_url_strips_surrounding_white_space() -> None:
    assert parse_url("  http://example.org/  ").url == "http://example.org/"


# --- reading lists ---------------------------------------------------------------------------


def test_reads_every_row_of_shipped_global_list() -> None:
    path = SHIPPED / "global.csv"
    with open(path, encoding="utf-8", newline="") as fh:
        expected = [r["url"] for r in csv.DictReader(fh)]
    targets, problems = collect([path])
    assert problems == []
    assert [t.original_url for t in targets] == expected
    assert targets[0].source == f"{Path(path).name}:2"


def test_rows_yield_targets_with_category_and_file_line_source(tmp_path: Path) -> None:
    path = write(tmp_path, HEADER + row("http://a.example/", "NEWS") + row("https://b.example/", "HUMR"))
    targets, problems = collect([path])
    assert problems == []
    assert [(t.url, t.category_code, t.source) for t in targets] == [
        ("http://a.example/", "NEWS", f"{path.name}:2"),
        ("https://b.example/", "HUMR", f"{path.name}:3"),
    ]


def test_header_without_url_column_is_a_file_error_naming_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, b"link,category_code\nhttp://a.example/,NEWS\n")
    with pytest.raises(TestListError) as exc:
        list(iter_targets([path]))
    assert str(exc.value).startswith(f"{path}:1:")
    assert "'url' column" in str(exc.value)


def test_missing_header_line_hints_that_the_first_line_must_be_the_header(tmp_path: Path) -> None:
    path = write(tmp_path, row("http://a.example/") + row("http://b.example/"))
    with pytest.raises(TestListError, match="first line must be the header"):
        list(iter_targets([path]))


def test_row_with_too_few_fields_is_reported_and_others_proceed(tmp_path: Path) -> None:
    path = write(tmp_path, HEADER + b"http://short.example/,NEWS\n" + row("http://ok.example/"))
    targets, problems = collect([path])
    assert [t.url for t in targets] == ["http://ok.example/"]
    assert [(p.path, p.line) for p in problems] == [(str(path), 2)]
    assert "2 field(s)" in problems[0].reason


def test_row_with_too_many_fields_is_reported(tmp_path: Path) -> None:
    data = HEADER + b"http://a.example/x,y,NEWS,News,2020-01-01,citizenlab,\n" + row("http://ok.example/")
    path = write(tmp_path, data)
    targets, problems = collect([path])
    assert [t.url for t in targets] == ["http://ok.example/"]
    assert [(p.line, "unquoted comma" in p.reason) for p in problems] == [(2, True)]


def test_extra_columns_are_ignored(tmp_path: Path) -> None:
    data = b"notes,extra,url,category_code\nhello,x,http://a.example/,news\n"
    targets, problems = collect([write(tmp_path, data)])
    assert problems == []
    assert [(t.url, t.category_code) for t in targets] == [("http://a.example/", "NEWS")]


def test_list_with_only_a_url_column_has_empty_categories(tmp_path: Path) -> None:
    targets, problems = collect([write(tmp_path, b"url\nhttp://a.example/\n")])
    assert problems == []
    assert [(t.url, t.category_code) for t in targets] == [("http://a.example/", "")]


def test_utf8_bom_is_skipped(tmp_path: Path) -> None:
    path = write(tmp_path, b"\xef\xbb\xbf" + HEADER + row("http://a.example/"))
    targets, problems = collect([path])
    assert problems == []
    assert [t.url for t in targets] == ["http://a.example/"]


def test_utf16_file_is_a_file_error(tmp_path: Path) -> None:
    path = write(tmp_path, (HEADER + row("http://a.example/")).decode().encode("utf-16"))
    with pytest.raises(TestListError, match="UTF-16"):
        list(iter_targets([path]))


def test_cr_only_line_ends_are_a_file_error(tmp_path: Path) -> None:
    path = write(tmp_path, (HEADER + row("http://a.example/")).replace(b"\n", b"\r"))
    with pytest.raises(TestListError, match="CR only"):
        list(iter_targets([path]))


def test_crlf_line_ends_are_handled(tmp_path: Path) -> None:
    data = (HEADER + row("http://a.example/", "NEWS") + row("http://b.example/", "HUMR")).replace(
        b"\n", b"\r\n"
    )
    targets, problems = collect([write(tmp_path, data)])
    assert problems == []
    assert [(t.url, t.category_code) for t in targets] == [
        ("http://a.example/", "NEWS"),
        ("http://b.example/", "HUMR"),
    ]


def test_quoted_commas_stay_inside_their_field(tmp_path: Path) -> None:
    data = (
        HEADER
        + b'https://a.example/,HATE,Hate Speech,2014-04-15,citizenlab,"blocked, critical"\n'
        + b'"http://b.example/x,y",NEWS,"News, Media",2014-04-15,citizenlab,\n'
    )
    targets, problems = collect([write(tmp_path, data)])
    assert problems == []
    assert [(t.url, t.category_code) for t in targets] == [
        ("https://a.example/", "HATE"),
        ("http://b.example/x,y", "NEWS"),
    ]


def test_line_numbers_are_physical_across_quoted_newlines(tmp_path: Path) -> None:
    data = (
        HEADER
        + b'http://a.example/,NEWS,News,2020-01-01,citizenlab,"two\nline notes"\n'
        + b"not a url,NEWS,News,2020-01-01,citizenlab,\n"
        + row("http://c.example/")
    )
    path = write(tmp_path, data)
    targets, problems = collect([path])
    assert [t.source for t in targets] == [f"{path.name}:2", f"{path.name}:5"]
    assert [p.line for p in problems] == [4]


def test_invalid_utf8_row_is_reported_with_file_line_and_others_proceed(tmp_path: Path) -> None:
    data = HEADER + row("http://a.example/") + b"http://b\xff\xfe.example/,NEWS,,,,\n" + row("http://c.example/")
    path = write(tmp_path, data)
    targets, problems = collect([path])
    assert [t.url for t in targets] == ["http://a.example/", "http://c.example/"]
    assert len(problems) == 1
    assert str(problems[0]).startswith(f"{path}:3:")
    assert "invalid UTF-8" in problems[0].reason


def test_invalid_utf8_inside_multiline_record_names_its_own_line(tmp_path: Path) -> None:
    data = HEADER + b'http://a.example/,NEWS,,,,"notes\nbad \xc3 byte"\n' + row("http://b.example/")
    targets, problems = collect([write(tmp_path, data)])
    assert [t.url for t in targets] == ["http://b.example/"]
    assert [p.line for p in problems] == [3]


def test_unterminated_quote_is_reported_and_reading_resumes(tmp_path: Path) -> None:
    data = HEADER + b'http://a.example/,NEWS,,,,"oops\n' + row("http://b.example/") + row("http://c.example/")
    targets, problems = collect([write(tmp_path, data)])
    assert [p.line for p in problems] == [2]
    assert "unterminated" in problems[0].reason
    assert [t.url for t in targets] == ["http://b.example/", "http://c.example/"]


def test_bad_quoting_is_reported_as_bad_csv(tmp_path: Path) -> None:
    data = HEADER + b'"http://a.example/"x,NEWS,,,,\n' + row("http://b.example/")
    targets, problems = collect([write(tmp_path, data)])
    assert [t.url for t in targets] == ["http://b.example/"]
    assert [p.line for p in problems] == [2]
    assert "bad CSV" in problems[0].reason


def test_empty_file_gives_no_targets_and_one_problem(tmp_path: Path) -> None:
    path = write(tmp_path, b"")
    targets, problems = collect([path])
    assert targets == []
    assert len(problems) == 1
    assert problems[0].path == str(path)
    assert "empty file" in problems[0].reason


def test_header_only_file_gives_no_targets_and_a_problem(tmp_path: Path) -> None:
    targets, problems = collect([write(tmp_path, HEADER)])
    assert targets == []
    assert ["no URLs" in p.reason for p in problems] == [True]


def test_blank_lines_are_not_rows(tmp_path: Path) -> None:
    data = b"\n" + HEADER + b"\n" + row("http://a.example/") + b"\r\n,,,,,\n"
    targets, problems = collect([write(tmp_path, data)])
    assert problems == []
    assert [t.url for t in targets] == ["http://a.example/"]


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("ftp://a.example/", "unsupported scheme"),
        ("file:///etc/passwd", "unsupported scheme"),
        ("javascript:alert(1)", "unsupported scheme"),
        ("http://exa mple.com/", "white space"),
        ("www.example.org", "missing scheme"),
    ],
)
def test_invalid_url_row_is_reported_with_reason(tmp_path: Path, url: str, reason: str) -> None:
    path = write(tmp_path, HEADER + row(url) + row("http://ok.example/"))
    targets, problems = collect([path])
    assert [t.url for t in targets] == ["http://ok.example/"]
    assert len(problems) == 1
    assert str(problems[0]).startswith(f"{path}:2: invalid URL")
    assert reason in problems[0].reason


def test_idn_row_is_measured_as_punycode_with_original_kept(tmp_path: Path) -> None:
    targets, _ = collect([write(tmp_path, HEADER + row("http://пример.испытание/"))])
    assert targets[0].url == "http://xn--e1afmkfd.xn--80akhbyknj4f/"
    assert targets[0].original_url == "http://пример.испытание/"


def test_port_and_ipv6_rows(tmp_path: Path) -> None:
    data = HEADER + row("http://a.example:8080/") + row("https://[2001:db8::7]:8443/p")
    targets, problems = collect([write(tmp_path, data)])
    assert problems == []
    assert [(t.host, t.port) for t in targets] == [("a.example", 8080), ("2001:db8::7", 8443)]


def test_duplicates_across_lists_are_dropped_and_first_wins(tmp_path: Path) -> None:
    first = write(tmp_path, HEADER + row("http://a.example/", "NEWS") + row("http://b.example/"), "one.csv")
    second = write(
        tmp_path, HEADER + row("HTTP://A.example:80/", "HUMR") + row("http://c.example/"), "two.csv"
    )
    stats = ListStats()
    problems: list[ListProblem] = []
    targets = list(iter_targets([first, second], on_error=problems.append, stats=stats))
    assert [t.url for t in targets] == ["http://a.example/", "http://b.example/", "http://c.example/"]
    assert (targets[0].category_code, targets[0].source) == ("NEWS", f"{first.name}:2")
    assert stats.duplicates == 1
    assert problems == []


def test_duplicates_across_long_lists_are_dropped_beyond_the_in_memory_cache(tmp_path: Path) -> None:
    """22,500 distinct URLs: more than URLSet keeps in memory, so lookups reach its file."""
    first = write(tmp_path, HEADER + b"".join(row(f"http://n{i}.example/") for i in range(15_000)),
                  "one.csv")
    second = write(tmp_path, HEADER + b"".join(row(f"http://n{i}.example/", "HUMR")
                                               for i in range(7_500, 22_500)), "two.csv")
    stats = ListStats()
    targets = list(iter_targets([first, second], stats=stats))
    assert [t.url for t in targets] == [f"http://n{i}.example/" for i in range(22_500)]
    assert stats.duplicates == 7_500
    # The first occurrence wins: the overlap keeps the first list's category and source.
    assert (targets[10_000].category_code, targets[10_000].source) == ("NEWS", "one.csv:10002")


def test_category_filter_keeps_only_the_given_codes(tmp_path: Path) -> None:
    data = HEADER + row("http://n.example/", "NEWS") + row("http://h.example/", "HUMR")
    data += row("http://g.example/", "GMB")
    path = write(tmp_path, data)
    stats = ListStats()
    urls = [t.url for t in iter_targets([path], categories="news,HUMR", stats=stats)]
    assert urls == ["http://n.example/", "http://h.example/"]
    assert stats.filtered == 1
    assert [t.url for t in iter_targets([path], categories=["GMB"])] == ["http://g.example/"]


def test_cli_urls_have_source_cli_no_category_and_ignore_the_filter(tmp_path: Path) -> None:
    path = write(tmp_path, HEADER + row("http://n.example/", "NEWS"))
    targets = list(iter_targets([path], urls=["https://adhoc.example/x"], categories="HUMR"))
    assert [(t.url, t.source, t.category_code) for t in targets] == [("https://adhoc.example/x", "cli", "")]


def test_cli_url_already_in_a_list_is_measured_once(tmp_path: Path) -> None:
    path = write(tmp_path, HEADER + row("http://n.example/", "NEWS"))
    targets = list(iter_targets([path], urls=["http://n.example/"]))
    assert [(t.url, t.category_code) for t in targets] == [("http://n.example/", "NEWS")]


def test_invalid_cli_url_raises_before_any_target() -> None:
    targets = iter_targets([], urls=["http://fine.example/", "ftp://bad.example/"])
    with pytest.raises(TestListError, match=r"--url: #2: unsupported scheme"):
        next(targets)


def test_missing_file_raises_before_any_target_is_yielded(tmp_path: Path) -> None:
    good = write(tmp_path, HEADER + row("http://a.example/"))
    missing = tmp_path / "nope.csv"
    targets = iter_targets([good, missing])
    with pytest.raises(TestListError) as exc:
        next(targets)
    assert str(exc.value) == f"{missing}: no such file"


def test_directory_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(TestListError, match="directory"):
        list(iter_targets([tmp_path]))


def test_strict_raises_on_first_problem_naming_file_line(tmp_path: Path) -> None:
    path = write(tmp_path, HEADER + row("http://a.example/") + row("gopher://b.example/") + row("x"))
    targets = iter_targets([path], strict=True)
    assert next(targets).url == "http://a.example/"  # rows before the problem stream out first
    with pytest.raises(TestListError) as exc:
        next(targets)
    assert str(exc.value).startswith(f"{path}:3: invalid URL")
    assert exc.value.problem.line == 3


def test_strict_makes_an_empty_file_fatal(tmp_path: Path) -> None:
    with pytest.raises(TestListError, match="empty file"):
        list(iter_targets([write(tmp_path, b"")], strict=True))


def test_problems_without_on_error_are_logged_not_dropped(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = write(tmp_path, HEADER + row("ftp://a.example/") + row("http://b.example/"))
    with caplog.at_level(logging.WARNING, logger="probe.inputs.testlists"):
        urls = [t.url for t in iter_targets([path])]
    assert urls == ["http://b.example/"]
    assert f"{path}:2: invalid URL" in caplog.text


def test_overlong_line_is_reported_without_being_loaded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(testlists.csvfile, "MAX_LINE_BYTES", 128)
    data = HEADER + row("http://a.example/" + "x" * 500) + row("http://b.example/")
    path = write(tmp_path, data)
    targets, problems = collect([path])
    assert [t.url for t in targets] == ["http://b.example/"]
    assert [(p.line, "longer than" in p.reason) for p in problems] == [(2, True)]
    assert targets[0].source == f"{path.name}:3"


def test_stdin_is_read_for_dash(monkeypatch: pytest.MonkeyPatch) -> None:
    r, w = os.pipe()
    os.write(w, HEADER + row("http://a.example/"))
    os.close(w)
    with open(r, "rb") as pipe:
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(pipe))
        targets = list(iter_targets(["-"]))
    assert [(t.url, t.source) for t in targets] == [("http://a.example/", "<stdin>:2")]


def test_sources_record_the_list_name_never_its_directories(tmp_path: Path) -> None:
    home = tmp_path / "home" / "alice" / "lists"
    home.mkdir(parents=True)
    path = write(home, HEADER + row("http://a.example/"))
    (target,) = iter_targets([path])
    assert target.source == f"{path.name}:2"
    assert "alice" not in target.source


def test_a_pipe_is_counted_without_being_consumed(tmp_path: Path) -> None:
    r, w = os.pipe()
    os.write(w, HEADER + row("http://a.example/") + row("http://b.example/"))
    os.close(w)
    with open_list(f"/dev/fd/{r}") as opened:
        assert opened.stream and opened.scan()[0] == 3
        assert [t.url for t in iter_targets([opened])] == ["http://a.example/", "http://b.example/"]
    os.close(r)


def test_binary_streams_are_refused_with_a_clear_message() -> None:
    with pytest.raises(TestListError, match="/dev/zero: binary data"):
        open_list("/dev/zero")


def test_a_stream_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(testlists.source, "MAX_STREAM_BYTES", 1000)
    r, w = os.pipe()
    os.write(w, HEADER + b"".join(row(f"http://h{i}.example/") for i in range(100)))
    os.close(w)
    with pytest.raises(TestListError, match="limited to"):
        open_list(f"/dev/fd/{r}")
    os.close(r)


def test_stats_count_rows_targets_and_problems(tmp_path: Path) -> None:
    path = write(tmp_path, HEADER + row("http://a.example/") + row("bad") + row("http://a.example/"))
    stats = ListStats()
    list(iter_targets([path], on_error=lambda p: None, stats=stats))
    assert (stats.rows, stats.targets, stats.problems, stats.duplicates) == (3, 1, 1, 1)
    assert stats.per_file == {str(path): 1}


# --- categories, lists, legend, summary -----------------------------------------------------


def test_parse_categories_splits_and_uppercases() -> None:
    assert parse_categories("news, HUMR") == frozenset({"NEWS", "HUMR"})
    assert parse_categories(["NEWS", "grp,lgbt"]) == frozenset({"NEWS", "GRP", "LGBT"})
    assert parse_categories(None) is None


@pytest.mark.parametrize("value", ["", " , ", "NEWS;HUMR", "NE WS"])
def test_parse_categories_rejects_bad_selection(value: str) -> None:
    with pytest.raises(ValueError):
        parse_categories(value)


def test_unknown_categories_flags_codes_missing_from_the_legend(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PROBE_TESTLISTS_DIR", raising=False)
    assert unknown_categories({"NEWS", "NWES", "HUMR"}) == ["NWES"]
    assert unknown_categories({"NWES"}, legend={}) == []  # no legend: nothing to check against


def test_default_lists_is_the_shipped_global_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PROBE_TESTLISTS_DIR", raising=False)
    assert default_lists() == [SHIPPED / "global.csv"]
    assert default_lists()[0].is_file()


def test_testlists_dir_env_override(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROBE_TESTLISTS_DIR", str(tmp_path))
    write(tmp_path, HEADER, "zz.csv")
    write(tmp_path, HEADER, "global.csv")
    write(tmp_path, b"Category Description,New Code\n", "00-LEGEND-new_category_codes.csv")
    (tmp_path / "NOTICE.md").write_text("notice")
    assert default_lists() == [tmp_path / "global.csv"]
    assert known_lists() == [tmp_path / "global.csv", tmp_path / "zz.csv"]


def test_known_lists_are_the_shipped_csvs_without_the_legend(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PROBE_TESTLISTS_DIR", raising=False)
    names = [p.name for p in known_lists()]
    assert names[0] == "global.csv"
    assert {"cn.csv", "ru.csv"} <= set(names)
    assert not any(n.startswith("00-") for n in names)


def test_shipped_lists_have_a_license_notice() -> None:
    notice = (SHIPPED / "NOTICE.md").read_text(encoding="utf-8")
    assert "CC BY-NC-SA 4.0" in notice
    assert "Citizen Lab" in notice


def test_legend_maps_codes_to_descriptions(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PROBE_TESTLISTS_DIR", raising=False)
    legend = load_legend()
    assert legend["NEWS"] == "News Media"
    assert legend["HUMR"] == "Human Rights Issues"


def test_summarize_counts_unique_valid_urls_per_category(tmp_path: Path) -> None:
    one = write(
        tmp_path,
        HEADER + row("http://a.example/", "NEWS") + row("http://b.example/", "NEWS") + row("x", "GMB"),
        "one.csv",
    )
    two = write(
        tmp_path, HEADER + row("http://a.example/", "NEWS") + row("http://c.example/", "HUMR"), "two.csv"
    )
    summary = summarize([one, two])
    first, second = summary.lists
    assert (first.targets, dict(first.categories), first.problem_count) == (2, {"NEWS": 2}, 1)
    assert first.problems[0].line == 4
    assert dict(second.categories) == {"NEWS": 1, "HUMR": 1}
    assert summary.unique_targets == 3
    assert not first.shipped
