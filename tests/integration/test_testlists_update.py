"""`probe testlists update` against a loopback mirror of the citizenlab/test-lists tree.

Never the real URL: tests/conftest.py points $PROBE_TESTLISTS_URL at a loopback port where
nothing listens, and every test here serves its own copy of the tree on 127.0.0.1.
"""

from __future__ import annotations

import functools
import hashlib
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from click.testing import CliRunner

from probe.cli import cli
from probe.inputs import testlists

SHIPPED = Path(__file__).resolve().parents[2] / "testlists"
README = """# test-lists (loopback copy)

License
=======

All data is provided under Creative Commons
Attribution-NonCommercial-ShareAlike 4.0 International.
"""


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def mirror(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """(URL, directory) of a loopback copy of the upstream tree: the shipped lists, with two
    URLs added to global.csv and its first row removed."""
    root = tmp_path / "mirror"
    (root / "lists").mkdir(parents=True)
    for name in ("cn.csv", "ru.csv", "00-LEGEND-new_category_codes.csv"):
        shutil.copy(SHIPPED / name, root / "lists" / name)
    lines = (SHIPPED / "global.csv").read_text(encoding="utf-8").splitlines(keepends=True)
    added = ("https://new-one.example/,NEWS,News Media,2026-12-01,citizenlab,\n"
             "https://new-two.example/,HUMR,Human Rights Issues,2026-12-01,citizenlab,\n")  # fmt: skip
    (root / "lists" / "global.csv").write_text(lines[0] + "".join(lines[2:]) + added, encoding="utf-8")
    (root / "lists" / "ir.csv").write_text(lines[0] + "https://ir-only.example/,NEWS,News,,,\n")
    (root / "README.md").write_text(README)
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/", root
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty data directory: the update's default destination is data_dir/testlists."""
    d = tmp_path / "data"
    monkeypatch.setenv("PROBE_DATA_DIR", str(d))
    monkeypatch.delenv("PROBE_TESTLISTS_DIR", raising=False)
    return d


def _digests(directory: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(directory.iterdir())}


def test_update_installs_checked_lists_with_their_license_and_reports_changes(
    mirror: tuple[str, Path], data_dir: Path
) -> None:
    url, _ = mirror
    result = CliRunner().invoke(cli, ["testlists", "update", "--source-url", url, "--list", "ir"])
    assert result.exit_code == 0, result.output
    installed = data_dir / "testlists"
    assert "global.csv: 1722 -> 1723 URLs (+2, -1)" in result.output
    assert "cn.csv: unchanged, 594 URLs" in result.output
    assert "ir.csv: new, 1 URL" in result.output and "1 URLs" not in result.output
    notice = (installed / "NOTICE.md").read_text()
    assert "© the Citizen Lab and contributors" in notice and url in notice
    assert "CC BY-NC-SA 4.0" in notice
    assert "Attribution-NonCommercial-ShareAlike" in (installed / "README-test-lists.md").read_text()
    # probe now measures the updated lists, and says where they came from.
    assert testlists.testlists_dir() == installed
    assert [p.name for p in testlists.known_lists()] == ["global.csv", "cn.csv", "ir.csv", "ru.csv"]
    shown = CliRunner().invoke(cli, ["testlists"])
    assert shown.exit_code == 0, shown.output
    assert f"fetched from {url}" in shown.output and "1723 URLs" in shown.output
    assert not list(data_dir.glob(".testlists.update-*"))  # no staging left behind


@pytest.mark.parametrize(
    ("path", "content", "reason"),
    [
        ("lists/global.csv", "<html><body>Rate limited</body></html>\n", "not a Citizen Lab test list"),
        ("lists/ru.csv", "url,category_code\n" + "not a url,NEWS\n" * 50 + "https://a.example/,NEWS\n",
         "rows are invalid"),
        ("lists/cn.csv", None, "HTTP 404"),
        ("README.md", "# no license here\n", "does not state the CC BY-NC-SA 4.0 license"),
        ("lists/00-LEGEND-new_category_codes.csv", "nothing,useful\n", "not a category legend"),
    ],
)
def test_a_bad_download_never_replaces_the_installed_lists(
    mirror: tuple[str, Path], data_dir: Path, path: str, content: str | None, reason: str
) -> None:
    url, root = mirror
    assert CliRunner().invoke(cli, ["testlists", "update", "--source-url", url]).exit_code == 0
    installed = data_dir / "testlists"
    before = _digests(installed)
    if content is None:
        (root / path).unlink()
    else:
        (root / path).write_text(content)
    result = CliRunner().invoke(cli, ["testlists", "update", "--source-url", url])
    assert result.exit_code == 1
    assert reason in result.output and "installed lists unchanged" in result.output
    assert _digests(installed) == before
    assert not list(data_dir.glob(".testlists.update-*"))


def test_source_comes_from_the_flag_then_the_environment_then_the_config_file(
    mirror: tuple[str, Path], data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, _ = mirror
    dead = "http://127.0.0.1:9/test-lists/"  # nothing listens there
    config = tmp_path / "config.toml"
    config.write_text(f'testlists_url = "{url}"\n')
    monkeypatch.setenv("PROBE_CONFIG", str(config))
    monkeypatch.delenv("PROBE_TESTLISTS_URL", raising=False)
    assert CliRunner().invoke(cli, ["testlists", "update"]).exit_code == 0  # the config file
    monkeypatch.setenv("PROBE_TESTLISTS_URL", dead)
    result = CliRunner().invoke(cli, ["testlists", "update"])  # the environment wins over it
    assert result.exit_code == 1 and "cannot fetch http://127.0.0.1:9/" in result.output
    result = CliRunner().invoke(cli, ["testlists", "update", "--source-url", url])  # the flag wins
    assert result.exit_code == 0, result.output


def test_an_encoded_or_oversized_answer_is_refused(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import probe.inputs.testlists.update as update

    class Hostile(SimpleHTTPRequestHandler):
        gzip = True  # a gzip-encoded body (a decompression bomb is one); else 64 plain bytes

        def do_GET(self) -> None:
            body = b"\x1f\x8b" + b"\0" * 62 if self.gzip else b"x" * 64
            self.send_response(200)
            if self.gzip:
                self.send_header("Content-Encoding", "gzip")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Hostile)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/"
        with pytest.raises(update.UpdateError, match="unexpected Content-Encoding 'gzip'"):
            update.update_testlists(url)
        Hostile.gzip = False
        monkeypatch.setattr(update, "MAX_FILE_BYTES", 10)
        with pytest.raises(update.UpdateError, match="larger than 0 MiB"):
            update.update_testlists(url)
    finally:
        server.shutdown()
        server.server_close()
    assert not (data_dir / "testlists" / "global.csv").exists()


def test_probe_testlists_still_shows_a_named_list(tmp_path: Path) -> None:
    lst = tmp_path / "update"  # a file named like the subcommand still needs a path
    lst.write_text("url\nhttps://a.example/\n")
    # Wide enough for the temporary path on one line (at 80 columns a long one wraps, rightly).
    result = CliRunner().invoke(cli, ["testlists", str(lst)], env={"COLUMNS": "400"})
    assert result.exit_code == 0 and "update 1 URL\n" in result.output


def test_the_update_stages_in_a_directory_of_its_own(mirror: tuple[str, Path], data_dir: Path) -> None:
    url, _ = mirror
    # A directory with the name the update once took for its staging (from the process id): the
    # update must neither write into it nor remove it.
    data_dir.mkdir(parents=True)
    theirs = data_dir / f".testlists.update-{os.getpid()}"
    theirs.mkdir()
    (theirs / "notes.txt").write_text("keep me")
    result = CliRunner().invoke(cli, ["testlists", "update", "--source-url", url])
    assert result.exit_code == 0, result.output
    assert (theirs / "notes.txt").read_text() == "keep me"
    assert sorted(p.name for p in data_dir.iterdir()) == sorted(["testlists", theirs.name])


def test_the_timeout_bounds_the_whole_download_of_a_trickling_mirror(
    mirror: tuple[str, Path], data_dir: Path
) -> None:
    # A mirror that sends global.csv a byte every 0.3 s never trips a per-read timeout: before,
    # --timeout 2 let it hold the update for as long as it trickled (143 s seen).
    _, root = mirror
    lists = root / "lists"

    class Trickle(SimpleHTTPRequestHandler):
        def do_GET(self) -> None:
            if not self.path.endswith("/global.csv"):
                super().do_GET()
                return
            body = (lists / "global.csv").read_bytes()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            end = time.monotonic() + 12  # then the rest at once: an old probe would finish
            try:
                for i, byte in enumerate(body):
                    if time.monotonic() > end:
                        self.wfile.write(body[i:])
                        break
                    self.wfile.write(bytes([byte]))
                    self.wfile.flush()
                    time.sleep(0.3)
            except OSError:
                pass  # the probe hung up: what we want

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Trickle, directory=str(root)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/"
        started = time.monotonic()
        result = CliRunner().invoke(cli, ["testlists", "update", "--source-url", url,
                                          "--timeout", "2"])
        took = time.monotonic() - started
    finally:
        server.shutdown()
        server.server_close()
    assert result.exit_code == 1, result.output
    assert "global.csv: not complete after 2 s" in result.output
    assert "installed lists unchanged" in result.output
    assert took < 8, took  # 2 s for global.csv, plus the other files at loopback speed
    assert not (data_dir / "testlists" / "global.csv").exists()


def test_staging_left_by_a_killed_update_is_removed(mirror: tuple[str, Path], data_dir: Path) -> None:
    url, _ = mirror
    data_dir.mkdir(parents=True)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()  # a pid that no process has now
    stale = data_dir / f".testlists.update-{dead.pid}"
    (stale / "half").mkdir(parents=True)
    (stale / "half" / "global.csv").write_text("url\n")
    old = data_dir / ".testlists.update-1"  # pid 1 lives, but nobody updates for a day
    old.mkdir()
    os.utime(old, (time.time() - 2 * 86400,) * 2)
    live = data_dir / f".testlists.update-{os.getppid()}"  # a live update's: kept
    live.mkdir()
    result = CliRunner().invoke(cli, ["testlists", "update", "--source-url", url])
    assert result.exit_code == 0, result.output
    assert not stale.exists() and not old.exists() and live.exists()


def test_a_list_that_loses_more_than_half_needs_force(mirror: tuple[str, Path], data_dir: Path) -> None:
    url, root = mirror
    rows = (root / "lists" / "global.csv").read_text(encoding="utf-8").splitlines(keepends=True)
    (root / "lists" / "global.csv").write_text("".join(rows[:51]), encoding="utf-8")  # 50 URLs
    result = CliRunner().invoke(cli, ["testlists", "update", "--source-url", url])
    assert result.exit_code == 1
    flat = " ".join(result.output.split())
    assert "50 URLs where 1722 are installed" in flat and "--force" in flat
    assert "installed lists unchanged" in flat
    assert not (data_dir / "testlists" / "global.csv").exists()
    result = CliRunner().invoke(cli, ["testlists", "update", "--source-url", url, "--force"])
    assert result.exit_code == 0, result.output
    assert "global.csv: 1722 -> 50 URLs" in result.output
