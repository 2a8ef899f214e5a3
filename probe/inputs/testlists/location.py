"""Where the test lists are: the shipped (or updated) lists directory and its legend."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from probe.host.data import SOURCE_ROOT

__all__ = [
    "LEGEND_NAME",
    "NOTICE_NAME",
    "ORIGIN_NAME",
    "SHIPPED_ORIGIN",
    "TESTLISTS_ENV",
    "default_lists",
    "known_lists",
    "lists_origin",
    "testlists_dir",
    "user_testlists_dir",
]

#: Environment variable naming the directory of the shipped lists (overrides the default).
TESTLISTS_ENV = "PROBE_TESTLISTS_DIR"
#: Name of the category legend in the lists directory (Citizen Lab's file name).
LEGEND_NAME = "00-LEGEND-new_category_codes.csv"
#: The attribution and license notice that stays next to the lists.
NOTICE_NAME = "NOTICE.md"
#: Written by ``probe testlists update``: where and when the lists in a directory were fetched.
ORIGIN_NAME = "SOURCE.json"
#: Where the shipped lists come from; shown by ``probe testlists`` next to lists in that directory.
SHIPPED_ORIGIN = (
    "Citizen Lab test lists (github.com/citizenlab/test-lists, commit 7f01e430), "
    "CC BY-NC-SA 4.0; see NOTICE.md"
)


def user_testlists_dir() -> Path:
    """Where ``probe testlists update`` puts the lists it fetches: ``testlists`` in probe's data
    directory (``$PROBE_DATA_DIR``, else ``$XDG_DATA_HOME/probe``, i.e. ``~/.local/share/probe``)."""
    base = os.environ.get("PROBE_DATA_DIR")
    if base:
        return Path(base).expanduser() / "testlists"
    xdg = os.environ.get("XDG_DATA_HOME")
    return (Path(xdg) if xdg else Path.home() / ".local" / "share") / "probe" / "testlists"


def testlists_dir() -> Path:
    """The directory of the lists probe measures by default.

    ``$PROBE_TESTLISTS_DIR`` if set; else the lists ``probe testlists update`` fetched
    (:func:`user_testlists_dir`, once it holds ``global.csv``); else the shipped ones:
    ``testlists/`` next to the ``probe`` package (a source checkout or editable install), or
    ``<prefix>/share/probe/testlists`` (an installed wheel that ships the lists as data files).
    """
    env = os.environ.get(TESTLISTS_ENV)
    if env:
        return Path(env).expanduser()
    updated = user_testlists_dir()
    if (updated / "global.csv").is_file():
        return updated
    candidates = [
        SOURCE_ROOT / "testlists",
        Path(sys.prefix) / "share" / "probe" / "testlists",
    ]
    for candidate in candidates:
        if candidate.is_dir():
            return candidate
    return candidates[0]


def default_lists() -> list[Path]:
    """The lists ``probe run`` measures when given none: the Citizen Lab global list."""
    return [testlists_dir() / "global.csv"]


def known_lists() -> list[Path]:
    """Every list in :func:`testlists_dir` (``*.csv`` except the ``00-LEGEND`` files), global first."""
    directory = testlists_dir()
    try:
        paths = [p for p in directory.glob("*.csv") if not p.name.startswith("00-") and p.is_file()]
    except OSError:
        return []
    return sorted(paths, key=lambda p: (p.name != "global.csv", p.name))



def lists_origin(directory: Path | None = None) -> str:
    """Where the lists of ``directory`` (default :func:`testlists_dir`) come from, for people:
    the source and date of ``probe testlists update``, or the shipped lists' commit."""
    where = testlists_dir() if directory is None else directory
    try:
        origin = json.loads((where / ORIGIN_NAME).read_text(encoding="utf-8"))
        source, fetched = str(origin["source"]), str(origin["fetched"])
    except (OSError, ValueError, KeyError, TypeError):
        return SHIPPED_ORIGIN
    return (f"Citizen Lab test lists fetched from {source} at {fetched} (probe testlists update), "
            f"CC BY-NC-SA 4.0; see {NOTICE_NAME}")  # fmt: skip
