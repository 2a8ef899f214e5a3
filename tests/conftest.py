"""Suite-wide fixtures: the network guard, and CI's rule that no lab test may skip."""

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
netguard.install()


@pytest.fixture(autouse=True)
def network_guard() -> None:
    """Autouse: fail loudly if a test reaches beyond loopback and the lab namespaces."""
    netguard.install()
    yield


@pytest.fixture
def tmp_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private config directory (consent file) for one test."""
    cfg = tmp_path / "config"
    monkeypatch.setenv("PROBE_CONFIG_DIR", str(cfg))
    return cfg


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
