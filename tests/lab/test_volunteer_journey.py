"""A volunteer's first hour, scripted, in a real terminal (tmux, 80x24), in the lab.

probe is installed as a volunteer installs it (the wheel alone in a fresh virtualenv, its
command on PATH, as pipx does), and the README's commands are typed into a shell: `probe
--help`, `probe testlists`, a first `probe run` (the consent question answered at the
keyboard) in the lab's client namespace under a censor, `probe results`, `probe show` (of a
site whose page title carries escape sequences), `probe report`, a run interrupted with
Ctrl-C and resumed with `--resume`, `probe runs` and `probe diff`. Each screen must fit 80
columns, carry no escape sequence but the progress display's own, and say what it should.

Lab traffic only: every `probe run` is started with `ip netns exec` in the lab's client
namespace; the other commands read the database and send nothing. The volunteer's config file
points the probe at the lab's control, CA, STUN and whoami servers, as a volunteer's config
file would point at their own helper.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))
from terminal import Tmux
from wheelhouse import install_wheel

pytestmark = pytest.mark.lab

COLS, ROWS = 80, 24
#: Escape sequences that only text from outside could have brought: OSC, DCS, APC, PM, SOS
#: and their 8-bit C1 forms (the live progress uses CSI, which is expected).
_FOREIGN = re.compile(rb"\x1b[\]P_^X]|\xc2[\x90\x9b\x9d\x9e\x9f]")
_HOSTILE = "http://hostile-title.lab.example/"


def _fits(lines: list[str]) -> None:
    long = [line for line in (x.rstrip() for x in lines) if len(line) > COLS]
    assert long == [], "lines wider than 80 columns:\n" + "\n".join(long)


def _showing(term: Tmux, what: str) -> str | None:
    screen = term.screen()
    return screen if what in screen else None


def _text(lines: list[str]) -> str:
    return " ".join(" ".join(lines).split())


@pytest.fixture
def home(tmp_path: Path, lab: Any) -> Path:
    """A volunteer's home: probe installed pipx-style on PATH, a config file pointing at the
    lab's servers, two lists of lab URLs in the working directory."""
    if shutil.which("tmux") is None:
        pytest.skip("tmux is installed by .ci/setup")
    from probe.lab import sites

    home = tmp_path / "home"
    (home / ".local" / "bin").mkdir(parents=True)
    venv = install_wheel(tmp_path / "pipx")
    (home / ".local" / "bin" / "probe").symlink_to(venv / "bin" / "probe")
    config = home / ".config" / "probe"
    config.mkdir(parents=True)
    (config / "config.toml").write_text(
        f'cafile = "{lab.cafile}"\ncontrol = ["{lab.control_url}"]\n'
        f'stun = ["{sites.STUN}"]\nwhoami = ["{sites.WHOAMI}"]\n'
        "dns_timeout = 2\ntcp_timeout = 2\ntls_timeout = 2\nhttp_timeout = 6\ndeadline = 30\n")
    work = home / "work"
    work.mkdir()
    long_path = "/reports/2026/a-long-path-to-an-article-about-the-elections/index.html"
    header = "url,category_code,category_description,date_added,source,notes\n"
    (work / "my-list.csv").write_text(header + "".join(f"{u},NEWS,News Media,2026-01-01,,\n" for u in (
        "https://clean.lab.example/", f"http://clean.lab.example{long_path}",
        f"https://clean.lab.example{long_path}", "https://tls-rst.lab.example/",
        "http://dns-nx.lab.example/", "http://does-not-exist.lab.example/", _HOSTILE)))
    (work / "slow-list.csv").write_text(header + "".join(
        f"{u},NEWS,News Media,2026-01-01,,\n"
        for u in [*(f"https://slow.lab.example/{i}" for i in range(8)), "https://clean.lab.example/"]))
    return home


def test_a_volunteers_first_hour_at_80_columns(lab: Any, home: Path, tmp_path: Path) -> None:
    from probe.lab.scenarios import Censor, by_name

    work = home / "work"
    env = {"HOME": str(home), "PATH": f"{home / '.local' / 'bin'}:/usr/sbin:/usr/bin:/sbin:/bin",
           "TERM": "xterm-256color", "LANG": "C.UTF-8", "PROBE_NETGUARD": "1",
           "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "netguard_site")}
    env.update({k: v for k, v in os.environ.items()  # the suite's guard and loopback defaults
                if k in ("PROBE_NETGUARD_ROOTNS", "PROBE_GEO_URL", "PROBE_TESTLISTS_URL")})
    inside = f"ip netns exec {lab.topo.client}"  # where lab traffic may start
    nx, rst = by_name("dns-nxdomain").censor, by_name("tls-sni-rst").censor
    lab.apply(Censor(resolver=nx.resolver, forward=rst.forward))
    term = Tmux(tmp_path, work, env, COLS, ROWS)
    title = term.title()
    try:
        code, out = term.run("probe --help")
        assert code == 0 and "Usage: probe" in out[0]
        _fits(out)

        code, out = term.run("probe testlists")
        assert code == 0 and "[shipped]" in _text(out) and "global.csv" in _text(out)
        _fits(out)

        # The first run: the risks explained, the question answered at the keyboard.
        term.type(f"{inside} probe run my-list.csv")
        asked = term.wait_for(lambda: _showing(term, "[y/N]"), 60)
        assert isinstance(asked, str)
        _fits(asked.splitlines())
        term.keys("y", "Enter")
        code, out = term.finish(240)
        summary = _text(out)
        assert code == 0, summary
        assert "complete: 7 URLs" in summary
        assert "reset (connection cut): 1 https://tls-rst.lab.example/" in summary
        assert "hijacked (DNS or TLS lied): 1 http://dns-nx.lab.example/" in summary
        assert "down (the control failed too: not censorship): 1" in summary
        _fits(out[out.index(next(x for x in out if "complete: 7 URLs" in x)):])

        code, out = term.run("probe results")
        assert code == 0 and out[0].split()[:2] == ["URL", "VERDICT"]
        _fits(out)
        rows = {line.split()[0]: line.split()[1] for line in out[1:-1]}
        assert rows["https://tls-rst.lab.example/"] == "reset"
        # The long URL twice, by scheme: shortened in the middle, the two rows stay distinct.
        long_rows = [u for u in rows if "…" in u and u.endswith("index.html")]
        assert sorted(u.split(":")[0] for u in long_rows) == ["http", "https"]

        code, out = term.run("probe show https://tls-rst.lab.example/")
        assert code == 0 and "verdict: RESET at tls" in _text(out)
        _fits(out)

        code, out = term.run(f"probe show {_HOSTILE}")
        assert term.title() == title  # no OSC 0 reached the terminal
        assert term.buffers() == ""  # nor an OSC 52 clipboard write
        assert code == 0 and r"\x1b]0;pwned\x07" in "".join(out).replace(" ", "")
        _fits(out)

        code, out = term.run("probe report --out report.html")
        assert code == 0 and (work / "report.html").stat().st_size > 10_000
        _fits(out)

        # A run interrupted with Ctrl-C, then resumed.
        term.type(f"{inside} probe run slow-list.csv")
        term.wait_for(lambda: "/9 URLs" in term.screen(), 60)
        term.keys("C-c")
        code, out = term.finish(120)
        assert code == 130 and "interrupted" in _text(out)
        _fits(out[1:])
        code, out = term.run(f"{inside} probe run slow-list.csv --resume", 240)
        assert code == 0 and "complete" in _text(out)
        _fits(out)

        code, out = term.run("probe runs")
        assert code == 0 and out[0].split()[:2] == ["RUN", "VANTAGE"]
        assert [line.split()[0] for line in out[1:-1] if line[:1].isdigit()] == ["2", "1"]
        assert all(" complete " in line for line in out[1:-1] if line[:1].isdigit())
        _fits(out)

        code, out = term.run("probe diff")
        assert code == 0 and "run 1 -> run 2" in _text(out)
        _fits(out)
    finally:
        term.close()
        lab.reset()
    raw = term.raw.read_bytes()
    assert _FOREIGN.findall(raw) == [], "escape sequences from outside reached the terminal"
