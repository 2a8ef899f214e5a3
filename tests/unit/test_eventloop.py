"""The event loop choice: uvloop when installed, asyncio's own otherwise, $PROBE_EVENT_LOOP."""

from __future__ import annotations

import asyncio
import sys

import pytest

from probe.host import eventloop


def test_asyncio_is_forced_by_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROBE_EVENT_LOOP", "asyncio")
    assert eventloop.loop_factory() is None

    async def which() -> str:
        return eventloop.loop_name()

    assert eventloop.run(which()) == "asyncio"


def test_without_uvloop_auto_falls_back_to_asyncio(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "uvloop", None)  # import uvloop now raises ImportError
    monkeypatch.delenv("PROBE_EVENT_LOOP", raising=False)
    assert eventloop.loop_factory() is None

    async def add() -> int:
        await asyncio.sleep(0)
        return 1 + 1

    assert eventloop.run(add()) == 2


def test_asking_for_a_missing_uvloop_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "uvloop", None)
    monkeypatch.setenv("PROBE_EVENT_LOOP", "uvloop")
    with pytest.raises(RuntimeError, match=r"pip install uvloop"):
        eventloop.loop_factory()


def test_an_unknown_loop_name_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROBE_EVENT_LOOP", "trio")
    with pytest.raises(RuntimeError, match="auto, uvloop or asyncio"):
        eventloop.loop_factory()


def test_auto_runs_on_uvloop_when_it_is_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("uvloop")
    monkeypatch.delenv("PROBE_EVENT_LOOP", raising=False)

    async def which() -> str:
        return eventloop.loop_name()

    assert eventloop.run(which()) == "uvloop"
