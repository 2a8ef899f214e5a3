"""The systemd service and timer in contrib/systemd are valid and do what docs/running.md says."""

from __future__ import annotations

import configparser
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

UNITS = Path(__file__).resolve().parents[2] / "contrib" / "systemd"


def _analyze() -> str:
    tool = shutil.which("systemd-analyze")
    if tool is None:
        if os.environ.get("CI") == "true":
            pytest.fail("systemd-analyze is missing: .ci/setup installs systemd")
        pytest.skip("systemd-analyze is not installed")
    return tool


def _unit(name: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # keys are case-sensitive
    parser.read(UNITS / name)
    return parser


def test_systemd_analyze_verifies_the_service_and_timer(tmp_path: Path) -> None:
    tool = _analyze()
    # ExecStart= must name an executable that exists: point it at this environment's probe,
    # as the install instructions in the unit say to do.
    probe = Path(sys.executable).with_name("probe")
    assert probe.exists()
    text = (UNITS / "probe.service").read_text()
    assert "ExecStart=/usr/local/bin/probe " in text
    (tmp_path / "probe.service").write_text(text.replace("/usr/local/bin/probe", str(probe)))
    shutil.copy(UNITS / "probe.timer", tmp_path / "probe.timer")
    result = subprocess.run([tool, "verify", "--man=no", "probe.service", "probe.timer"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == "", result.stderr  # unknown keys only warn


def test_the_service_writes_an_absolute_database_in_its_state_directory() -> None:
    service = _unit("probe.service")["Service"]
    assert service["DynamicUser"] == "yes" and service["StateDirectory"] == "probe"
    # StateDirectory=probe is /var/lib/probe: the database is an absolute path inside it.
    text = (UNITS / "probe.service").read_text()
    assert "\nEnvironment=PROBE_DB=/var/lib/probe/probe.db\n" in text
    assert "--accept-risks" in service["ExecStart"]
    assert "130" in service["SuccessExitStatus"].split()


def test_the_timer_catches_up_missed_runs() -> None:
    timer = _unit("probe.timer")
    assert timer["Timer"]["Persistent"] == "true"
    assert timer["Install"]["WantedBy"] == "timers.target"


#: What the unit's own sandbox hides: ProtectHome=yes (/root, /home, /run/user) and
#: PrivateTmp=yes (an empty /tmp and /var/tmp).
HIDDEN = ("/root", "/home", "/run/user", "/tmp", "/var/tmp")


def _exec_start() -> list[str]:
    return _unit("probe.service")["Service"]["ExecStart"].split()


def test_execstart_is_a_path_the_units_sandbox_can_reach() -> None:
    # The unit used to suggest /root/.local/bin/probe (a pipx install of root's): ProtectHome=yes
    # hides it from the very service that starts it.
    service = _unit("probe.service")["Service"]
    assert service["ProtectHome"] == "yes" and service["PrivateTmp"] == "yes"
    binary = _exec_start()[0]
    assert binary.startswith("/") and not binary.startswith(HIDDEN), binary
    text = (UNITS / "probe.service").read_text()
    assert ".local/bin" not in text.replace("~/.local/bin/probe -> ~/.local/share/pipx", "")
    # The install line the unit gives puts the command exactly there, its venv outside too.
    install = next(line for line in text.splitlines() if "pipx install" in line and "PIPX_" in line)
    env = dict(w.split("=", 1) for w in install.lstrip("# ").split() if "=" in w)
    assert Path(env["PIPX_BIN_DIR"]) / "probe" == Path(binary)
    assert not env["PIPX_HOME"].startswith(HIDDEN)


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("unshare") is None
                    or shutil.which("setpriv") is None or not Path("/usr/bin/python3").exists(),
                    reason="needs root, unshare, setpriv and a system Python")
def test_the_service_runs_in_an_emulation_of_its_sandbox(tmp_path: Path) -> None:
    # The unit's run as systemd would start it, from a probe installed as the unit says (a
    # pipx-style venv in PIPX_HOME, the command in PIPX_BIN_DIR): a throw-away user without a
    # home, /root and /home hidden, an empty /tmp, the state directory the only place it owns,
    # and no network at all (an empty namespace). The run reads the shipped list, finds no
    # network, records an offline run in the state directory's database and exits 1.
    # Everything lives under tmp_path, bound onto /mnt inside the namespace (/mnt stands for
    # /opt, /usr/local and /var/lib). (On this machine the test suite's own Python is under
    # /root/.pyenv: exactly what such a unit cannot start, so the venv is made from the
    # system's /usr/bin/python3.)
    uid = 61234
    venv = tmp_path / "pipx" / "venvs" / "censorship-probe"
    subprocess.run(["/usr/bin/python3", "-m", "venv", "--without-pip", str(venv)], check=True,
                   capture_output=True, timeout=120)
    site = next(venv.glob("lib/python3*/site-packages"))
    # The built dependencies and this checkout are bound onto /mnt/deps and /mnt/src inside the
    # namespace: where they are on this machine (/root, /tmp: a clone in CI) the sandbox hides.
    deps = next(Path(sys.prefix).glob("lib/python3*/site-packages"))
    checkout = Path(__file__).resolve().parents[2]
    (tmp_path / "deps").mkdir()
    (tmp_path / "src").mkdir()
    (site / "deps.pth").write_text("/mnt/deps\n/mnt/src\n")
    inside = Path("/mnt") / venv.relative_to(tmp_path) / "bin" / "python"
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "probe").write_text(f"#!{inside}\nfrom probe.cli import main\nmain()\n")
    (tmp_path / "bin" / "probe").chmod(0o755)
    state = tmp_path / "state"
    state.mkdir()
    os.chown(state, uid, uid)
    for d in (tmp_path, *tmp_path.parents):
        if str(d).startswith("/tmp/"):
            d.chmod(d.stat().st_mode | 0o005)  # pytest makes them 0700: the user must pass
    text = (UNITS / "probe.service").read_text()  # Environment= is repeated: not configparser's
    env = [line.removeprefix("Environment=").replace("/var/lib/probe", "/mnt/state")
           for line in text.splitlines() if line.startswith("Environment=")]
    assert any(e.startswith("PROBE_DB=/mnt/state/") for e in env)
    # Never the Internet defaults (the guard checks): a loopback resolver where nothing
    # listens, no control, and the suite's loopback identity servers.
    args = ["/mnt/bin/probe", *_exec_start()[1:], "--resolver", "127.0.0.1:9", "--no-control"]
    env += [f"{k}={os.environ[k]}" for k in ("PROBE_STUN_SERVERS", "PROBE_WHOAMI_NAMES",
                                             "PROBE_GEO_URL", "PROBE_TESTLISTS_URL")]
    hide = " && ".join(f"mount -t tmpfs none {d}" for d in ("/root", "/home", "/var/tmp")
                       if Path(d).is_dir())
    script = (f"mount --make-rprivate / && mount --bind {tmp_path} /mnt && "
              f"mount --bind {deps} /mnt/deps && mount --bind {checkout} /mnt/src && {hide} && "
              f"mount -t tmpfs none /tmp && exec setpriv --reuid={uid} --regid={uid} "
              '--clear-groups -- env -i PATH=/usr/bin:/bin HOME=/ "$@"')
    guard = "/mnt/src/tests/netguard_site"  # the network guard, from inside the namespace
    result = subprocess.run(
        ["unshare", "--mount", "--net", "sh", "-c", script, "sh", *env,
         f"PYTHONPATH={guard}", "PROBE_NETGUARD=1", *args],
        capture_output=True, text=True, timeout=120)
    assert result.returncode == 1, result.stderr
    assert "no network" in result.stderr
    db = state / "probe.db"
    assert db.exists() and db.stat().st_uid == uid
    import sqlite3

    conn = sqlite3.connect(db)
    try:
        assert conn.execute("select status from runs").fetchall() == [("offline",)]
        assert conn.execute("select name from vantage_points").fetchone() == ("office",)
        assert "global.csv sha256:" in conn.execute("select lists from runs").fetchone()[0]
    finally:
        conn.close()
