"""Where the test lists are: the shipped (or updated) lists directory and its legend."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable
from pathlib import Path

from probe.host.data import SOURCE_ROOT, user_data_dir
from probe.inputs.testlists.problems import ListProblem, TestListError

__all__ = [
    "LEGEND_NAME",
    "NOTICE_NAME",
    "ORIGIN_NAME",
    "SHIPPED_ORIGIN",
    "TESTLISTS_ENV",
    "default_lists",
    "find_lists",
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
    return user_data_dir() / "testlists"


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
    candidates = _shipped_dirs()
    for candidate in candidates:
        if candidate.is_dir():
            return candidate
    return candidates[0]


def _shipped_dirs() -> list[Path]:
    # A source checkout (or editable install) first, then an installed wheel's data files.
    return [SOURCE_ROOT / "testlists", Path(sys.prefix) / "share" / "probe" / "testlists"]


def _by_name(name: str) -> Path | None:
    """The list called ``name`` (``ru``, ``ru.csv``) in :func:`testlists_dir`, else among the
    shipped lists (an update fetches the lists installed then: a shipped one may be missing
    from it); None when no directory has it."""
    file = name.lower() if name.lower().endswith(".csv") else f"{name.lower()}.csv"
    if "/" in file or file.startswith(("00-", ".")):
        return None
    dirs = [testlists_dir()]
    if not os.environ.get(TESTLISTS_ENV):
        dirs += _shipped_dirs()
    for directory in dirs:
        if (directory / file).is_file():
            return directory / file
    return None


def _names_known() -> str:
    names = [p.stem for p in known_lists()]
    return ", ".join(names) if names else "none installed"


def find_lists(args: Iterable[str | Path]) -> list[Path]:
    """The files the list arguments of ``probe run`` and ``probe testlists`` name.

    A path that exists always wins, and ``-`` is standard input. Otherwise an argument names
    known lists, comma-separated: ``ru``, ``ru.csv``, ``global,cn``, or ``testlists/ru.csv`` as
    the README writes it (a path under ``testlists/`` that does not exist here, e.g. after a
    pipx install), found in :func:`testlists_dir` (the updated lists, else the shipped ones).
    Any other path that does not exist stays as it is (``open_list`` then says "no such
    file"). Raises :class:`TestListError` (a usage error) for a name no directory holds,
    pointing at ``probe testlists``.
    """
    out: list[Path] = []
    for arg in args:
        text = str(arg)
        path = Path(text)
        if text == "-" or path.exists():
            out.append(path)
            continue
        parts = [p.strip() for p in text.split(",")] if "," in text else [text]
        for part in parts:
            if not part:
                continue
            here = Path(part)
            if here.exists():
                out.append(here)
                continue
            bare = here.name if here.parent == Path("testlists") else part
            if "/" in bare:  # a path elsewhere that does not exist: "no such file", never a name
                out.append(here)
                continue
            found = _by_name(bare)
            if found is None:
                raise TestListError(ListProblem(part, 0, (
                    f"no such file, nor a test list probe knows (known: {_names_known()}; "
                    "see `probe testlists`, or `probe testlists update --list NAME` to fetch one)")))
            out.append(found)
    return out


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
