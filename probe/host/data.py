"""Where probe's packaged data and, in a source checkout, its tree are.

One definition for every module that reads a packaged file (fingerprints, the IP -> AS table,
circumvention endpoints, country names) or a file of the source tree (docs/schema.md,
testlists/): modules move between folders, these paths do not.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["DATA_DIR", "PACKAGE_DIR", "SOURCE_ROOT"]

#: The ``probe`` package itself.
PACKAGE_DIR = Path(__file__).resolve().parents[1]
#: Packaged data files (``probe/data``), installed with the package.
DATA_DIR = PACKAGE_DIR / "data"
#: The folder holding the package: the checkout's root in a source tree (where ``docs/`` and
#: ``testlists/`` are), site-packages in an installed wheel (where they are not).
SOURCE_ROOT = PACKAGE_DIR.parent
