"""The click group every command attaches to. Kept import-light: `probe --help` must be fast."""

from __future__ import annotations

import click

from probe import __version__

__all__ = ["cli"]


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="probe")
def cli() -> None:
    """probe: measure Internet censorship with DNS, TCP, TLS and HTTP tests.

    \b
    Exit status: 0 when the command completed (whatever censorship a run found),
    1 on a probe error (bad database, no network, ...), 2 on a usage error
    (bad flags, invalid test list with --strict).
    """
