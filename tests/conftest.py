"""Suite-wide fixtures: the network guard, CI's rule that no lab test may skip, and how the suite
is spread over pytest-xdist workers (pyproject's addopts: ``-n auto --dist loadgroup``)."""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
sys.path.insert(0, str(TESTS))

# The session starts in the machine's root network namespace; record it before the guard
# module reads it, so that the guard in lab subprocesses can tell lab namespaces from it.
if "PROBE_NETGUARD_ROOTNS" not in os.environ:
    try:
        os.environ["PROBE_NETGUARD_ROOTNS"] = os.readlink("/proc/self/ns/net")
    except OSError:
        pass

import netguard  # noqa: E402

# Subprocesses (probe run, lab servers) inherit the guard through sitecustomize.
os.environ["PROBE_NETGUARD"] = "1"
os.environ["PYTHONPATH"] = os.pathsep.join(
    p for p in (str(TESTS / "netguard_site"), os.environ.get("PYTHONPATH", "")) if p
)
# Never read or write the user's real consent file or config from tests.
os.environ.setdefault("PROBE_CONFIG_DIR", str(TESTS / ".probe-config-unused"))
# Nor the developer's own database or config file.
os.environ.pop("PROBE_DB", None)
os.environ.pop("PROBE_CONFIG", None)
# The probe's Internet defaults point at loopback, where nothing listens (port 9, discard), so
# a test that forgets to override one fails locally instead of reaching a real server: the
# IP-to-ASN download and the identity services; the user's downloaded table is never read.
os.environ["PROBE_GEO_URL"] = "http://127.0.0.1:9/ip2asn-combined.tsv.gz"
# The network identity: STUN to a loopback port where nothing listens, whoami names under the
# reserved .test TLD (asked only through the test's own loopback or lab resolver).
os.environ["PROBE_STUN_SERVERS"] = "127.0.0.1:9"
os.environ["PROBE_WHOAMI_NAMES"] = "whoami.probe.test"
os.environ["PROBE_DATA_DIR"] = str(TESTS / ".probe-data-unused")
# `probe testlists update` fetches from a loopback port where nothing listens, never GitHub.
os.environ["PROBE_TESTLISTS_URL"] = "http://127.0.0.1:9/test-lists/"
# The messaging endpoint list has no default source; one from the environment is never used.
os.environ.pop("PROBE_ENDPOINTS_URL", None)
netguard.install()


@pytest.fixture(autouse=True)
def network_guard() -> None:
    """Autouse: fail loudly if a test reaches beyond loopback and the lab namespaces."""
    netguard.install()
    yield


@pytest.fixture(autouse=True)
def no_terminal_size(monkeypatch: pytest.MonkeyPatch) -> None:
    """Autouse: the output width is what the test sets, not the runner's: pytest-xdist's
    workers inherit COLUMNS=80 and LINES=24 (execnet sets them), a plain pytest run has none, and
    `probe.present.terminal.output_width` honours $COLUMNS on a pipe."""
    monkeypatch.delenv("COLUMNS", raising=False)
    monkeypatch.delenv("LINES", raising=False)


@pytest.fixture
def tmp_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private config directory (consent file) for one test."""
    cfg = tmp_path / "config"
    monkeypatch.setenv("PROBE_CONFIG_DIR", str(cfg))
    return cfg


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """Workers for ``-n auto``: PYTEST_XDIST_AUTO_NUM_WORKERS if set, else one more than the cores.

    Much of the suite's time is spent waiting (lab scenarios' timeouts, child processes
    starting, servers answering), so one extra worker keeps the cores busy; each worker builds
    its own lab when it first runs a lab test, and on a loaded 2-core machine four labs starved
    their control helpers (the probe's pre-flight check of the control timed out).
    """
    value = os.environ.get("PYTEST_XDIST_AUTO_NUM_WORKERS")
    if value:
        return int(value)
    return len(os.sched_getaffinity(0)) + 1


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Which tests share a worker under ``--dist loadgroup`` (an xdist_group each).

    - ``slow`` tests (budgets of memory, time or connections, and tests slow by design): all on
      one worker, one at a time, so that no two budgets compete with each other; the group is
      the largest unit of work, so xdist starts it first.
    - tests of a module with a module-scoped fixture (a second lab, a built wheel, a merged
      database): on one worker, so that the fixture is built once, not once per worker.
    A group set in the test module (the lab scenarios' pairs) is kept.
    """
    for item in items:
        if item.get_closest_marker("slow") is not None:
            group = "slow"
        elif item.get_closest_marker("xdist_group") is not None:
            continue
        elif any(
            d.scope == "module" for defs in item._fixtureinfo.name2fixturedefs.values() for d in defs
        ):
            group = item.nodeid.split("::", 1)[0]
        else:
            continue
        item.add_marker(pytest.mark.xdist_group(group))


def pytest_collection_finish(session: pytest.Session) -> None:
    """On a worker: stop if pytest-xdist ignored the groups (it does so silently with some pytest
    versions: pytest-dev/pytest-xdist#1386); the suite would then build fixtures and run lab
    scenarios once per worker, and run the budgets side by side."""
    config = session.config
    if not hasattr(config, "workerinput") or not config.getvalue("loadgroup"):
        return
    lost = [i.nodeid for i in session.items if i.get_closest_marker("xdist_group") and "@" not in i.nodeid]
    if lost:
        raise pytest.UsageError(
            f"pytest-xdist ignored the xdist_group of {len(lost)} tests (e.g. {lost[0]}) with pytest "
            f"{pytest.__version__}: install the test extra's versions (pip install -e '.[test]')"
        )


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):  # type: ignore[no-untyped-def]
    """In CI (CI=true, root) a skipped lab test is a failure: the lab must always run there."""
    outcome = yield
    report = outcome.get_result()
    if (
        report.skipped
        and os.environ.get("CI") == "true"
        and item.get_closest_marker("lab") is not None
    ):
        report.outcome = "failed"
        report.longrepr = f"lab test skipped in CI: {report.longrepr}"


def free_port(host: str = "127.0.0.1", kind: int = socket.SOCK_STREAM) -> int:
    """A free port on host (best effort)."""
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind((host, 0))
        return s.getsockname()[1]
