"""Fixtures for loopback integration tests (servers live in tests/integration/servers.py)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from servers import LoopbackNet, start_loopback_net


@pytest.fixture(scope="session")
def loopback_net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LoopbackNet]:
    """The standard loopback network: DNS servers, web servers, a trustme CA (see servers.py)."""
    net = start_loopback_net(tmp_path_factory.mktemp("tls"))
    yield net
    net.close()
