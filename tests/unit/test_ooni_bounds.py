"""`probe import ooni` on hostile files: bounded memory, and one bad line costs that line only.

Each bad line is skipped and reported as file:line with the reason; the good lines of the same
file are imported. Memory is measured as the peak RSS of a `probe import ooni` subprocess: a
test of a bound (generous, for a shared machine), not of speed.
"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import zlib
from pathlib import Path

import pytest
from click.testing import CliRunner

from probe.cli import cli
from probe.research.ooni.files import Limits, iter_lines
from probe.research.ooni.importer import import_ooni
from probe.store import Store

CORPUS = Path(__file__).resolve().parents[1] / "fixtures" / "ooni"
ROOT = Path(__file__).resolve().parents[2]


def _good() -> list[str]:
    with gzip.open(CORPUS / "fastpath.jsonl.gz", "rt", encoding="utf-8") as fh:
        return [line for line in fh.read().splitlines() if line]


def _with(line: str, **changes: object) -> str:
    obj = json.loads(line)
    obj.update(changes)
    return json.dumps(obj)


def test_every_bad_line_is_skipped_by_name_and_every_good_line_imported(tmp_path: Path) -> None:
    good = _good()
    assert len(good) == 12
    deep = "[" * 100_000 + "]" * 100_000
    first = json.loads(good[0])
    big_port = dict(first, test_keys=dict(first["test_keys"], tcp_connect=[
        {"ip": "192.0.2.1", "port": 2**70, "status": {"success": True, "failure": None}}]))
    bad = [
        _with(good[0], report_id={"an": "object"}),          # the report_id object
        deep,                                                 # 100,000-deep nesting
        _with(good[1], probe_cc=["R", "U"]),
        '{"test_name": "web_connectivity", "input": ',       # cut short
        "[" + "{}," * 400_000 + "{}]",                        # 1.2 MB of empty objects
        json.dumps(dict(big_port, report_id="20250101T000000Z_webconnectivity_ZZ_1_n1_x")),
        "\xff\xfe not text",
        "x" * (2 << 20),                                      # longer than --max-line-bytes 1.5M
    ]
    lines: list[str] = []
    for k in range(len(good)):
        lines.append(good[k])
        if k < len(bad):
            lines.append(bad[k])
    # A line of the wrong type is its own problem whatever its position, so interleave.
    path = tmp_path / "hostile.jsonl"
    path.write_bytes("\n".join(lines).encode("utf-8", "surrogateescape").replace(
        "\xff\xfe".encode(), b"\xff\xfe") + b"\n")
    errors: list[str] = []
    with Store.open(tmp_path / "o.db") as store:
        stats = import_ooni(store, [path], on_error=errors.append, limits=Limits(max_line=3 << 19))
    assert stats.imported == 12, errors
    assert stats.skipped == len(bad) == len(errors)
    by_line = {int(e.split(":")[1]): e for e in errors}
    bad_lines = [2 * k + 2 for k in range(len(bad))]
    assert sorted(by_line) == bad_lines
    assert "report_id: expected a string, got an object" in by_line[2]
    assert "nested deeper" in by_line[4]
    assert "probe_cc: expected a string, got an array" in by_line[6]
    assert "not JSON" in by_line[8]
    assert "JSON values in one line" in by_line[10]
    assert "cannot be stored" in by_line[12]
    assert "not JSON" in by_line[14]
    assert "longer than 1,572,864" in by_line[16]
    assert all(e.startswith(f"{path}:") or "hostile.jsonl:" in e for e in errors)


def test_the_cli_reports_skipped_lines_and_exits_0_when_good_lines_were_imported(tmp_path: Path) -> None:
    good = _good()
    path = tmp_path / "mixed.jsonl"
    path.write_text("\n".join([good[0], _with(good[1], report_id=7), good[2]]) + "\n")
    # Wide enough for the temporary path on one line (at 80 columns a long one wraps, rightly).
    r = CliRunner().invoke(cli, ["import", "ooni", str(path), "--db", str(tmp_path / "o.db")],
                           env={"COLUMNS": "400"})
    assert r.exit_code == 0, r.output
    assert f"skipped {path}:2: report_id: expected a string, got a number" in r.output
    assert "imported 2 of 3 lines" in r.output


def test_an_over_long_line_is_never_held(tmp_path: Path) -> None:
    # 64 MiB on one line, then a good one: read in 1 MiB chunks, the long line skipped as it passes.
    path = tmp_path / "long.jsonl"
    with path.open("wb") as fh:
        fh.write(b'{"padding": "')
        for _ in range(64):
            fh.write(b"a" * (1 << 20))
        fh.write(b'"}\n')
        fh.write(_good()[0].encode() + b"\n")
    got = list(iter_lines([path]))
    assert [n for _, n, _ in got] == [1, 2]
    assert "line of 67,108,879 bytes, longer than 8,388,608" in str(got[0][2])
    assert isinstance(got[1][2], dict)


def _bomb(path: Path, payload: int, before: bytes = b"", after: bytes = b"") -> None:
    """A gzip file holding ``before``, ``payload`` bytes of 'x' on one line, ``after``."""
    comp = zlib.compressobj(9, zlib.DEFLATED, 31)  # gzip container
    block = b"x" * (1 << 20)
    with path.open("wb") as fh:
        fh.write(comp.compress(before))
        for _ in range(payload >> 20):
            fh.write(comp.compress(block))
        fh.write(comp.compress(b"\n" + after))
        fh.write(comp.flush())


def test_a_compression_bomb_is_cut_off_at_the_ratio(tmp_path: Path) -> None:
    good = _good()[0].encode() + b"\n"
    path = tmp_path / "bomb.jsonl.gz"
    _bomb(path, 1 << 30, before=good, after=good)  # 1 GiB of one byte: ~1 MB compressed
    assert path.stat().st_size < 2 << 20
    got = list(iter_lines([path]))
    assert isinstance(got[0][2], dict)  # the line before the bomb
    assert "decompresses to more than 100 times its size" in str(got[-1][2])
    assert got[-1][1] == 2  # where reading stopped


def test_devices_and_pipes_are_refused(tmp_path: Path) -> None:
    got = list(iter_lines([Path("/dev/zero")]))
    assert len(got) == 1 and "not a regular file" in str(got[0][2])


_PEAK = """
import sys
from probe.cli import cli
try:
    cli(sys.argv[1:])
except SystemExit as exc:
    code = exc.code
with open("/proc/self/status") as fh:  # VmHWM: this process's own peak (not its parent's)
    peak = next(int(line.split()[1]) for line in fh if line.startswith("VmHWM:"))
print(f"peak_kb={peak}", file=sys.stderr)
sys.exit(code)
"""


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs /proc for VmHWM")
def test_memory_stays_bounded_on_hostile_files(tmp_path: Path) -> None:
    good = _good()
    plain = tmp_path / "hostile.jsonl"
    with plain.open("wb") as fh:
        fh.write(good[0].encode() + b"\n")
        fh.write(b"[" + b'"ab",' * (1 << 20) + b'"ab"]\n')  # 5 MB of strings: over the value bound
        fh.write(b'{"x": "')  # a 200 MB line (it cost 828 MB before)
        for _ in range(200):
            fh.write(b"y" * (1 << 20))
        fh.write(b'"}\n')
        fh.write(good[1].encode() + b"\n")
    bomb = tmp_path / "bomb.jsonl.gz"
    _bomb(bomb, 2 << 30, after=good[2].encode() + b"\n")  # 2 GiB in ~2 MB
    env = {**os.environ, "PROBE_CONFIG_DIR": str(tmp_path / "cfg")}
    proc = subprocess.run([sys.executable, "-c", _PEAK, "import", "ooni", str(plain), str(bomb),
                           "--db", str(tmp_path / "o.db")],
                          capture_output=True, text=True, cwd=ROOT, env=env, timeout=300)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "imported 2 of" in proc.stdout, proc.stdout + proc.stderr
    peak_mb = int(proc.stderr.rsplit("peak_kb=", 1)[1].split()[0]) / 1024
    # probe's own import (classifier, store) takes 35-45 MB; the 200 MB line alone would be 200.
    print(f"peak RSS {peak_mb:.0f} MB")
    assert peak_mb < 120, f"peak RSS {peak_mb:.0f} MB"


def test_the_bounds_are_flags_checked_when_parsed(tmp_path: Path) -> None:
    f = tmp_path / "one.jsonl"
    f.write_text(_good()[0] + "\n")
    db = str(tmp_path / "o.db")
    for bad in (["--max-line-bytes", "8Q"], ["--max-line-bytes", "10"], ["--max-ratio", "0.5"]):
        r = CliRunner().invoke(cli, ["import", "ooni", str(f), "--db", db, *bad])
        assert r.exit_code == 2 and bad[0] in r.output, r.output
    r = CliRunner().invoke(cli, ["import", "ooni", str(f), "--db", db, "--max-line-bytes", "1KiB"])
    assert r.exit_code == 1 and "longer than 1,024" in r.output  # nothing imported: exit 1
    r = CliRunner().invoke(cli, ["import", "ooni", str(f), "--db", db, "--max-line-bytes", "512K"])
    assert r.exit_code == 0 and "imported 1 of 1" in r.output
