"""CLI command module (see probe/cli/__init__.py)."""

from __future__ import annotations

from probe.cli._group import cli  # noqa: F401
