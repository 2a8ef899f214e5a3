"""Parse probe's own source files for the tests that read its code (contracts, design doc)."""

from __future__ import annotations

import ast
import gc
from pathlib import Path

__all__ = ["parse"]


def parse(path: Path, name: str | None = None) -> ast.Module:
    """``ast.parse`` of ``path``, with no garbage collection while it runs.

    CPython 3.11's AST constructor is not re-entrant: an object an earlier test left for the
    collector (an asyncio task destroyed pending) logs a traceback when it is collected, which
    3.11 formats with ast.parse, and inside our parse that raised "SystemError: AST
    constructor recursion depth mismatch" (seen on test workers, in two of these tests).
    """
    source = path.read_text(encoding="utf-8")
    gc.collect()
    gc.disable()
    try:
        return ast.parse(source, name or str(path))
    finally:
        gc.enable()
