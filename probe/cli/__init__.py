"""Command-line interface: thin click commands over probe's Python API.

Each submodule registers its commands on :data:`cli`. Submodules import only click at module
level; the library (httpx, dnspython, scapy, ...) is imported inside the command functions so
that ``probe --help`` stays cheap. A command module never imports another (the independence
contract in pyproject.toml): what commands share is option plumbing (:mod:`.options`,
:mod:`.types`), rendering (``probe.present``) or logic (``probe.research`` and below).
"""

from __future__ import annotations

from probe.cli import (  # noqa: F401  (registers the commands)
    check,
    circumvention,
    compare,
    config,
    diff,
    explore,
    export,
    geo,
    helper,
    history,
    import_ooni,
    lab,
    merge,
    messaging,
    outages,
    reclassify,
    report,
    results,
    run,
    runs,
    show,
    testlists,
    trace,
)
from probe.cli._group import cli

__all__ = ["cli", "main"]


def main() -> None:
    """Console-script entry point."""
    cli()
