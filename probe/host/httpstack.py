"""httpx and httpcore, imported without the parts that probe never runs.

Two optional imports cost every `probe run` and `probe helper serve` ~0.1 s of CPU at start
(measured with ``python -X importtime``; docs/bench.md):

- httpx imports its own command-line client (``httpx._main``: click, rich, pygments) whenever
  those are installed, and probe installs click and rich for its own CLI;
- httpcore imports trio whenever it is installed (the test environment has it, for selenium)
  to support trio's event loop; probe runs on asyncio (or uvloop) only.

:func:`load` imports both with those two left out, once per process. Everything probe uses of
httpx and httpcore is unchanged. ``httpx.main`` still works: it imports the real CLI when called.
"""

from __future__ import annotations

import sys
import types
from typing import Any

__all__ = ["load"]


def _httpx_cli(*args: Any, **kwargs: Any) -> Any:
    """httpx's command-line entry point, imported only when it is called."""
    sys.modules.pop("httpx._main", None)  # this stand-in, if it is still there
    from httpx._main import main

    return main(*args, **kwargs)


def load() -> None:
    """Import httpx and httpcore (no-op once httpx is imported); see the module's docstring."""
    if "httpx" in sys.modules:
        return
    cli = types.ModuleType("httpx._main")
    cli.main = _httpx_cli  # type: ignore[attr-defined]
    # A module name mapped to None makes its import fail with ImportError, which httpcore
    # handles by running without trio. Only names not imported already are stood in for.
    stand_ins: dict[str, types.ModuleType | None] = {"httpx._main": cli, "trio": None}
    stand_ins = {name: mod for name, mod in stand_ins.items() if name not in sys.modules}
    sys.modules.update(stand_ins)  # type: ignore[arg-type]
    try:
        import httpcore  # noqa: F401
        import httpx  # noqa: F401
    finally:
        # Later imports (a program embedding probe that uses trio, httpx's CLI) get the real ones.
        for name, mod in stand_ins.items():
            if sys.modules.get(name, False) is mod:
                del sys.modules[name]
