"""Where probe's packaged data and, in a source checkout, its tree are.

One definition for every module that reads a packaged file (fingerprints, the IP -> AS table,
circumvention endpoints, country names) or a file of the source tree (docs/schema.md,
testlists/): modules move between folders, these paths do not.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["DATA_DIR", "PACKAGE_DIR", "SOURCE_ROOT", "user_data_dir"]

#: The ``probe`` package itself.
PACKAGE_DIR = Path(__file__).resolve().parents[1]
#: Packaged data files (``probe/data``), installed with the package.
DATA_DIR = PACKAGE_DIR / "data"
#: The folder holding the package: the checkout's root in a source tree (where ``docs/`` and
#: ``testlists/`` are), site-packages in an installed wheel (where they are not).
SOURCE_ROOT = PACKAGE_DIR.parent


def user_data_dir() -> Path:
    """Where probe keeps what it downloads for its user (updated test and endpoint lists, the
    IP-to-ASN table): ``$PROBE_DATA_DIR``, else ``$XDG_DATA_HOME/probe``, i.e.
    ``~/.local/share/probe``."""
    base = os.environ.get("PROBE_DATA_DIR")
    if base:
        return Path(base).expanduser()
    xdg = os.environ.get("XDG_DATA_HOME")
    return (Path(xdg) if xdg else Path.home() / ".local" / "share") / "probe"
