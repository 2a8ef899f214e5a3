"""Installed like real software: the wheel carries the bundled lists (and their license), so
`probe run` from a wheel install (pipx) finds its default list."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from wheelhouse import ROOT, install_wheel

pytestmark = pytest.mark.integration

@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtualenv with only the built wheel installed (wheelhouse.install_wheel)."""
    return install_wheel(tmp_path_factory.mktemp("wheel"))


def _probe(env_dir: Path, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PROBE_TESTLISTS_DIR",)}
    env["PROBE_CONFIG_DIR"] = str(tmp_path / "cfg")
    return subprocess.run([str(env_dir / "bin" / "probe"), *args], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)


def test_the_distribution_is_censorship_probe_and_its_command_probe(installed: Path) -> None:
    code = ("import importlib.metadata as m; d = m.distribution('censorship-probe'); "
            "print(d.version, [e.name for e in d.entry_points if e.group == 'console_scripts'])")
    out = subprocess.run([str(installed / "bin" / "python"), "-c", code], capture_output=True,
                         text=True, check=True).stdout
    from probe import __version__

    assert out.split(" ", 1) == [__version__, "['probe']\n"]
    assert (installed / "bin" / "probe").exists()


def test_the_wheel_install_is_not_the_checkout(installed: Path, tmp_path: Path) -> None:
    out = subprocess.run([str(installed / "bin" / "python"), "-c",
                          "import probe; print(probe.__file__)"], capture_output=True, text=True,
                         check=True, cwd=tmp_path).stdout
    assert str(installed) in out and str(ROOT) not in out


def test_the_installed_probe_knows_its_bundled_lists(installed: Path, tmp_path: Path) -> None:
    result = _probe(installed, tmp_path, "testlists", "--json")
    assert result.returncode == 0, result.stderr
    lists = [json.loads(line) for line in result.stdout.splitlines()]
    names = {Path(entry["path"]).name: entry for entry in lists}
    assert {"global.csv", "cn.csv", "ru.csv"} <= set(names)
    assert names["global.csv"]["shipped"] and names["global.csv"]["urls"] > 1000
    assert str(installed) in names["global.csv"]["path"]
    notice = installed / "share" / "probe" / "testlists" / "NOTICE.md"
    assert "CC BY-NC-SA" in notice.read_text()


def test_probe_run_from_the_wheel_reads_the_default_list(installed: Path, tmp_path: Path) -> None:
    # A resolver on a closed loopback port: the run reads the default list, then finds no
    # network and says so (exit 1); a missing list would be exit 2 "no such file".
    result = _probe(installed, tmp_path, "run", "--resolver", "127.0.0.1:9", "--no-control",
                    "--accept-risks", "--db", str(tmp_path / "r.db"))
    assert result.returncode == 1, result.stderr
    assert "no network" in result.stderr and "no such file" not in result.stderr
    assert _lists(tmp_path / "r.db")


def _lists(db: Path, *names: str) -> bool:
    import sqlite3

    conn = sqlite3.connect(db)
    try:
        stored = conn.execute("select lists from runs").fetchone()[0]
    finally:
        conn.close()
    return all(f"{name} sha256:" in stored for name in names or ("global.csv",))


# The README's ways of naming a list, run from a directory without a testlists/ folder: after
# a pipx install the lists are data files of the package (share/probe/testlists).
@pytest.mark.parametrize(("args", "names"), [
    (["testlists/ru.csv", "--category", "NEWS,HUMR", "--vantage", "moscow-home"], ["ru.csv"]),
    (["ru.csv"], ["ru.csv"]), (["ru"], ["ru.csv"]), (["global,cn"], ["global.csv", "cn.csv"]),
])  # fmt: skip
def test_the_installed_probe_finds_lists_by_name(installed: Path, tmp_path: Path,
                                                args: list[str], names: list[str]) -> None:
    assert not (tmp_path / "testlists").exists()
    result = _probe(installed, tmp_path, "run", *args, "--resolver", "127.0.0.1:9", "--no-control",
                    "--accept-risks", "--db", str(tmp_path / "r.db"))
    assert result.returncode == 1, result.stderr  # the lists were read; then: no network
    assert "no network" in result.stderr and "no such file" not in result.stderr
    assert _lists(tmp_path / "r.db", *names)


def test_the_installed_probe_names_its_lists_when_one_is_unknown(installed: Path,
                                                                 tmp_path: Path) -> None:
    result = _probe(installed, tmp_path, "run", "xx", "--accept-risks", "--db", str(tmp_path / "r.db"))
    assert result.returncode == 2
    assert "known: global, cn, ru" in result.stderr and "probe testlists" in result.stderr
    shown = _probe(installed, tmp_path, "testlists", "ru", "--json")
    assert shown.returncode == 0 and json.loads(shown.stdout)["urls"] > 500


def test_the_metadata_names_the_license_urls_and_classifiers(installed: Path) -> None:
    (meta,) = installed.glob("lib/python*/site-packages/censorship_probe-*.dist-info/METADATA")
    text = meta.read_text()
    # `probe` on the package index is someone else's (2013): ours is censorship-probe, whose
    # command and import package stay `probe`.
    assert "\nName: censorship-probe\n" in text
    assert "License :: OSI Approved :: Apache Software License" in text
    assert "Classifier: Topic :: Internet" in text
    # Only addresses that exist: the placeholder home of the project is gone.
    assert "Project-URL: Test lists, https://github.com/citizenlab/test-lists" in text
    assert "probe-censorship" not in text
    licenses = {p.name for p in meta.parent.rglob("*") if p.is_file()}
    assert {"LICENSE", "NOTICE.md"} <= licenses
