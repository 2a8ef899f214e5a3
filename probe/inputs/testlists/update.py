"""``probe testlists update``: fetch current Citizen Lab lists, check them, then install them.

The source is a copy of the citizenlab/test-lists repository tree, by URL: ``lists/NAME.csv``
for each list, ``lists/00-LEGEND-new_category_codes.csv`` and ``README.md`` (whose License
section states the lists' license; the repository has no separate license file) under it. The default
is the upstream repository on GitHub (raw files); a mirror with the same layout works too
(``--source-url``, ``$PROBE_TESTLISTS_URL``, or ``testlists_url`` in the config file).

Nothing is installed until everything has been fetched and checked: every list must read as a
Citizen Lab list (a header with a ``url`` column, valid URLs in most rows), the legend must name
categories, and the license must be there, since the lists may be shared only under it. The
files are fetched into a staging directory next to the destination, then each is moved into
place with an atomic rename, so an interrupted or failed update leaves every installed list
either as it was or fully new, never truncated, and a bad download never replaces a good list.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from probe.core.errors import ProbeError
from probe.core.settings import DEFAULT_TESTLISTS_SOURCE
from probe.host.files import download_bounded
from probe.inputs.testlists.categories import load_legend
from probe.inputs.testlists.location import (
    LEGEND_NAME,
    NOTICE_NAME,
    ORIGIN_NAME,
    TESTLISTS_ENV,
    known_lists,
    testlists_dir,
    user_testlists_dir,
)
from probe.inputs.testlists.problems import ListStats, TestListError
from probe.inputs.testlists.targets import iter_targets

if TYPE_CHECKING:
    import httpx

__all__ = [
    "SOURCE_ENV",
    "ListChange",
    "UpdateError",
    "UpdateResult",
    "clean_stale_stages",
    "install_staged",
    "new_stage",
    "source_url",
    "update_testlists",
]

#: Environment variable naming another source (a mirror with the same layout).
SOURCE_ENV = "PROBE_TESTLISTS_URL"
#: The upstream file that states the license (its README), kept next to the lists as this.
LICENSE_NAME = "README-test-lists.md"
LICENSE_TEXT = "CC BY-NC-SA 4.0"
_LICENSE_WORDS = "Attribution-NonCommercial-ShareAlike 4.0"
# The largest upstream list is about 0.5 MB; anything far beyond is not a test list.
MAX_FILE_BYTES = 32 << 20
# A list where more than this share of rows is invalid is refused (an HTML error page, a
# truncated or foreign file); upstream lists have a handful of bad rows at most.
MAX_BAD_SHARE = 0.2
# A list that would keep less than this share of the URLs installed now is refused without
# --force: a broken or hostile mirror could otherwise shrink global from 1,722 URLs to 50.
MIN_KEPT_SHARE = 0.5
# A staging directory whose process is gone is removed; one older than this, whatever its pid
# says (pids are reused), too.
STALE_STAGE_SECONDS = 24 * 3600


class UpdateError(ProbeError):
    """The update could not be done; the message says why. Installed lists are untouched."""


@dataclass(frozen=True)
class ListChange:
    """What an update did to one list: URL counts before and after, and the difference."""

    name: str
    before: int | None  # None: the list was not installed
    after: int
    added: int
    removed: int
    invalid_rows: int


@dataclass(frozen=True)
class UpdateResult:
    """Where the lists went, where they came from, and what changed."""

    directory: Path
    source: str
    changes: tuple[ListChange, ...]


def source_url(url: str | None = None) -> str:
    """The source of an update: ``url``, else ``$PROBE_TESTLISTS_URL``, else upstream."""
    chosen = url or os.environ.get(SOURCE_ENV) or DEFAULT_TESTLISTS_SOURCE
    if not chosen.startswith(("http://", "https://")):
        raise UpdateError(f"{chosen}: the source must be an http:// or https:// URL")
    return chosen if chosen.endswith("/") else chosen + "/"


def default_destination() -> Path:
    """Where an update goes: ``$PROBE_TESTLISTS_DIR`` if set, else the user's data directory
    (which :func:`~probe.inputs.testlists.location.testlists_dir` then prefers to the shipped lists)."""
    env = os.environ.get(TESTLISTS_ENV)
    return Path(env).expanduser() if env else user_testlists_dir()


def _fetch(client: httpx.Client, url: str, dest: Path, timeout: float) -> None:
    """GET ``url`` into ``dest``: status 200, no content coding (a test list is plain text; a
    coded body is refused rather than decoded), at most :data:`MAX_FILE_BYTES`, the whole
    request within ``timeout`` seconds."""
    headers = download_bounded(client, url, dest, MAX_FILE_BYTES, what="a test list",
                               error=UpdateError, total=timeout)
    coding = headers.get("content-encoding", "identity").strip().lower()
    if coding not in ("", "identity"):
        raise UpdateError(f"{url}: unexpected Content-Encoding {coding!r}")


def _urls_of(path: Path) -> tuple[set[str], ListStats]:
    """The measured URLs of a list, and its row counts (raises TestListError if unusable)."""
    stats = ListStats()
    urls = {t.url for t in iter_targets([path], on_error=lambda _p: None, stats=stats)}
    return urls, stats


def _check_list(path: Path, url: str) -> tuple[set[str], int]:
    """A fetched list's URLs and invalid rows; :class:`UpdateError` if it is not a usable list."""
    try:
        urls, stats = _urls_of(path)
    except TestListError as exc:
        raise UpdateError(f"{url}: not a Citizen Lab test list: {exc.problem.reason}") from None
    if not urls:
        raise UpdateError(f"{url}: no valid URLs; not installed")
    if stats.problems > MAX_BAD_SHARE * max(stats.rows, 1):
        raise UpdateError(f"{url}: {stats.problems} of {stats.rows} rows are invalid; not installed")
    return urls, stats.problems


def _notice(source: str, fetched: str, digests: dict[str, str]) -> str:
    files = "\n".join(f"- `{name}` sha256 `{digest}`" for name, digest in sorted(digests.items()))
    return f"""# Citizen Lab test lists

The CSV files in this directory are the Citizen Lab test lists
(https://github.com/citizenlab/test-lists), © the Citizen Lab and contributors, licensed under
the Creative Commons Attribution-NonCommercial-ShareAlike 4.0 International license
({LICENSE_TEXT}, https://creativecommons.org/licenses/by-nc-sa/4.0/), as the License section of
the source's README states; that README is kept here as `{LICENSE_NAME}`. They are not under
probe's license. Keep this notice and that file next to them when you share them.

Fetched by `probe testlists update` from {source} at {fetched}, unmodified:

{files}
"""


def _list_names(dest: Path, extra: Iterable[str]) -> list[str]:
    names = dict.fromkeys(p.stem for p in known_lists())
    if dest.is_dir():
        names.update(dict.fromkeys(p.stem for p in dest.glob("*.csv") if not p.name.startswith("00-")))
    names.update(dict.fromkeys(extra))
    return sorted(names, key=lambda n: (n != "global", n))


def _new_stage(target: Path, pid: int) -> Path:
    """A fresh staging directory ``.NAME.update-PID-RANDOM`` beside ``target``, created
    exclusively (never one that exists, whoever made it)."""
    return Path(tempfile.mkdtemp(prefix=f".{target.name}.update-{pid}-", dir=target.parent))


def _stage_pid(target: Path, stage: Path) -> int | None:
    """The process id in a staging directory's name (``.NAME.update-PID`` as older probes
    named it, or ``.NAME.update-PID-RANDOM``); None for any other name."""
    match = re.fullmatch(rf"\.{re.escape(target.name)}\.update-(\d+)(?:-\w+)?", stage.name)
    return int(match.group(1)) if match else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: someone else's live process
        return True
    return True


def new_stage(target: Path) -> Path:
    """A fresh staging directory for an update of ``target`` (created, with ``target``), after
    removing those killed updates left; UpdateError when it cannot be written."""
    try:
        target.mkdir(parents=True, exist_ok=True)
        clean_stale_stages(target)
        # A directory of our own (a fresh name with our process id, created exclusively):
        # removing it afterwards never removes anything else.
        stage = _new_stage(target, os.getpid())
    except OSError as exc:
        raise UpdateError(f"{target}: cannot write: {exc.strerror or exc}") from None
    return stage


def clean_stale_stages(target: Path) -> list[Path]:
    """Remove the staging directories that killed updates of ``target`` left behind (their
    process is gone, or they are older than a day); returns those removed. A live update's
    stays."""
    removed: list[Path] = []
    try:
        stages = list(target.parent.glob(f".{target.name}.update-*"))
    except OSError:
        return removed
    now = time.time()
    for stage in stages:
        pid = _stage_pid(target, stage)
        try:
            old = now - stage.lstat().st_mtime > STALE_STAGE_SECONDS
        except OSError:
            continue
        # A live process's (ours included: its directory is not this update's, which has a
        # fresh name) stays; so does a name no update gives, unless a day old.
        if not old and (pid is None or _alive(pid)):
            continue
        if stage.is_dir() and not stage.is_symlink():
            shutil.rmtree(stage, ignore_errors=True)
        else:
            stage.unlink(missing_ok=True)
        removed.append(stage)
    return removed


def _check_shrink(change: ListChange, url: str) -> None:
    if change.before and change.after < MIN_KEPT_SHARE * change.before:
        raise UpdateError(
            f"{url}: {change.after} URLs where {change.before} are installed: a list that loses "
            f"more than half of its URLs is not installed without --force (a broken or "
            f"hostile mirror?)")


def update_testlists(
    source: str | None = None,
    dest: Path | None = None,
    lists: Sequence[str] = (),
    *,
    timeout: float = 60.0,
    force: bool = False,
) -> UpdateResult:
    """Fetch the lists installed now (and ``lists``, by name: ``ir``, ``de``), check them, and
    install them in ``dest`` (default :func:`default_destination`). Raises :class:`UpdateError`
    with installed lists untouched when anything is missing or invalid, or (unless ``force``)
    when a list would lose more than half of its URLs. ``timeout`` bounds each file's whole
    request. Staging directories of killed updates are removed first."""
    # httpx only when updating: `probe testlists` imports this module (present/testlists.py).
    from probe.host.httpstack import load

    load()  # before httpx is first imported (probe/host/httpstack.py)
    import httpx

    base = source_url(source)
    target = dest if dest is not None else default_destination()
    for name in lists:
        if not name or not all(c.isalnum() or c in "-_" for c in name):
            raise UpdateError(f"{name!r}: a list is named by its file name without .csv (e.g. ir)")
    names = _list_names(target, lists)
    before_dir = target if (target / "global.csv").is_file() else testlists_dir()
    stage = new_stage(target)
    try:
        files = {f"{n}.csv": f"{base}lists/{n}.csv" for n in names}
        files[LEGEND_NAME] = f"{base}lists/{LEGEND_NAME}"
        files[LICENSE_NAME] = f"{base}README.md"
        with httpx.Client(timeout=timeout, follow_redirects=True, max_redirects=5,
                          trust_env=False) as client:  # fmt: skip
            for name, url in files.items():
                _fetch(client, url, stage / name, timeout)
        changes = []
        for n in names:
            name = f"{n}.csv"
            new, invalid = _check_list(stage / name, files[name])
            old: set[str] | None = None
            if (before_dir / name).is_file():
                try:
                    old = _urls_of(before_dir / name)[0]
                except TestListError:
                    old = set()  # an unreadable installed list: everything is new
            had = old or set()
            changes.append(ListChange(name, None if old is None else len(old), len(new),
                                      len(new - had), len(had - new), invalid))  # fmt: skip
            if not force:
                _check_shrink(changes[-1], files[name])
        if not load_legend(stage / LEGEND_NAME):
            raise UpdateError(f"{files[LEGEND_NAME]}: not a category legend (no 'New Code' rows)")
        license_text = (stage / LICENSE_NAME).read_text(encoding="utf-8", errors="replace")
        if _LICENSE_WORDS not in " ".join(license_text.split()):
            raise UpdateError(f"{files[LICENSE_NAME]}: does not state the {LICENSE_TEXT} license the "
                              "lists are published under; not installed")  # fmt: skip
        fetched = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        digests = {name: hashlib.sha256((stage / name).read_bytes()).hexdigest() for name in files}
        (stage / NOTICE_NAME).write_text(_notice(base, fetched, digests), encoding="utf-8")
        origin = {"source": base, "fetched": fetched, "license": LICENSE_TEXT, "files": digests}
        (stage / ORIGIN_NAME).write_text(json.dumps(origin, indent=1, sort_keys=True), encoding="utf-8")
        install_staged(stage, target)
        return UpdateResult(target, base, tuple(changes))
    except OSError as exc:
        raise UpdateError(f"{exc.filename or target}: {exc.strerror or exc}") from None
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def install_staged(stage: Path, target: Path) -> None:
    """Move every staged file into ``target``, each with one atomic rename (same file system):
    the license and notice first, so that no list is ever there without them."""
    order = sorted(os.listdir(stage), key=lambda n: (n.endswith(".csv"), n))
    for name in order:
        with open(stage / name, "rb") as fh:
            os.fsync(fh.fileno())  # the content is on disk before the rename makes it visible
        os.replace(stage / name, target / name)
    fd = os.open(target, os.O_RDONLY)
    try:
        os.fsync(fd)  # the renames themselves
    finally:
        os.close(fd)

