"""Resuming an interrupted run: exactly what it was measuring, never more.

A run records what it selected in ``runs.options["selection"]``: each list by its file name and
the SHA-256 of its content (never its path: results are shared, and paths carry user names),
the ``--url`` values, the categories and strictness. ``probe run --resume`` measures that same
selection, minus the URLs the run already stored:

- the lists are the ones given again on the command line, or, when none are given, found by
  name among the lists probe knows (the shipped or updated Citizen Lab lists); either way each
  must have the content hash the run recorded, or the resume is refused (a changed list would
  measure something else under the same run). It never falls back to the default list;
- the ``--url`` values, categories and strictness are the run's; given again, they must be the
  same;
- measuring flags given differently from the run's (another ``--resolver``, ``--control``,
  ``--dns-probe`` ...) are said, one warning each: the printed resume command repeats them.

Every refusal is a :class:`ResumeError` (a usage error, exit 2) that names the list or flag
and says what to do.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from probe.core.errors import ProbeUsageError
from probe.core.settings import ListSelection
from probe.inputs.testlists import OpenedList, known_lists, parse_categories

if TYPE_CHECKING:
    from probe.store import Store

__all__ = ["ResumeError", "ResumePlan", "plan_resume", "selection_record"]

_STDIN = "<stdin>"


class ResumeError(ProbeUsageError):
    """The interrupted run cannot be resumed as asked; the message names the list or flag."""


@dataclass(frozen=True)
class StoredList:
    """A list as a run recorded it: its file name and the SHA-256 of its content."""

    name: str
    sha256: str

    def __str__(self) -> str:
        return f"{self.name} (sha256:{self.sha256[:12]}…)"


def selection_record(selection: ListSelection, opened: Sequence[OpenedList]) -> dict[str, Any]:
    """What a run stores about its selection, so that a resume measures the same (no path)."""
    categories = parse_categories(selection.category)
    return {
        "lists": [{"name": item.label, "sha256": item.scan()[1]} for item in opened],
        "urls": list(selection.urls),
        "category": sorted(categories) if categories else None,
        "strict": selection.strict,
    }


#: Settings that change what a measurement says, as ``runs.options`` records them, and their
#: flags: a resume that changes one measures the rest of the run another way.
_COMPARED = (("controls", "--control"), ("measure.resolvers", "--resolver"),
             ("measure.doh", "--doh"), ("measure.dns_probe", "--dns-probe"),
             ("measure.decoy_sni", "--decoy-sni"), ("measure.decoy_host", "--decoy-host"),
             ("measure.control_first_url", "--control-first-url"), ("capture", "--capture"),
             ("fingerprints", "--fingerprints"))  # fmt: skip


def _setting(options: Mapping[str, Any], key: str) -> Any:
    value: Any = options
    for part in key.split("."):
        value = value.get(part) if isinstance(value, Mapping) else None
    return value


@dataclass(frozen=True)
class ResumePlan:
    """The interrupted run to resume, and the selection to measure for it."""

    run_id: int
    selection: ListSelection
    expected: tuple[StoredList, ...]
    options: Mapping[str, Any] = field(default_factory=dict)  # as the run recorded them

    def differences(self, now: Mapping[str, Any]) -> list[str]:
        """The measuring flags that differ from the run's (``now``: today's recorded options),
        one line each: the rest of the run would be measured another way than its start."""
        out = []
        for key, flag in _COMPARED:
            then, today = _setting(self.options, key), _setting(now, key)
            if key in ("controls", "fingerprints", "measure.resolvers", "measure.doh",
                       "measure.dns_probe"):
                then, today = list(then or []), list(today or [])
            if then != today:
                none = "the system's" if flag == "--resolver" else "none"
                out.append(f"{flag}: run {self.run_id} was measured with {_shown(then, none)}, "
                           f"this resume with {_shown(today, none)}")
        return out

    def check(self, opened: Sequence[OpenedList]) -> None:
        """Raise :class:`ResumeError` unless ``opened`` are the run's lists, content included."""
        given = [StoredList(item.label, item.scan()[1]) for item in opened]
        if len(given) != len(self.expected):
            raise ResumeError(
                f"run {self.run_id} measured {_count(self.expected)}"
                f"{': ' + ', '.join(map(str, self.expected)) if self.expected else ''}; given "
                f"{_count(given)}{': ' + ', '.join(map(str, given)) if given else ''}. A resumed "
                "run measures exactly what it started with")
        for want, got in zip(self.expected, given, strict=True):
            if got.sha256 != want.sha256:
                raise ResumeError(
                    f"{got.name} is not the list run {self.run_id} measured: {want} then, "
                    f"sha256:{got.sha256[:12]}… now (changed since, or another file). A resumed "
                    "run measures exactly what it started with: start a new run to measure it")


def _shown(value: Any, none: str = "none") -> str:
    if isinstance(value, list):
        return ", ".join(map(str, value)) or none
    return none if value in (None, "", False) else ("yes" if value is True else str(value))


def _count(lists: Sequence[StoredList]) -> str:
    return f"{len(lists)} list{'s' if len(lists) != 1 else ''}"


def plan_resume(store: Store, run: int | str, given: ListSelection) -> ResumePlan:
    """What resuming ``run`` (an id or ``"latest"``) measures, given the command line's
    selection (``given``: what was typed with ``--resume``).

    Raises :class:`probe.store.StoreError` when there is no such interrupted run, and
    :class:`ResumeError` when the selection cannot be the run's.
    """
    run_id = store.interrupted_run(run)
    info = store.run_info(run_id) or {}
    stored = info.get("options", {}).get("selection")
    if not isinstance(stored, dict):
        return _plan_older(run_id, info.get("lists") or [], given, info.get("options") or {})
    expected = tuple(StoredList(str(x["name"]), str(x["sha256"])) for x in stored["lists"])
    urls = tuple(str(u) for u in stored.get("urls") or ())
    category = stored.get("category")
    if given.urls and tuple(given.urls) != urls:
        raise ResumeError(f"--url: run {run_id} measured {_urls(urls)}; resume it without "
                          "--url, or with the same ones")
    if given.category is not None and sorted(parse_categories(given.category) or ()) != (
            category or []):
        raise ResumeError(f"--category: run {run_id} measured "
                          f"{'--category ' + ','.join(category) if category else 'every category'}"
                          "; resume it without --category, or with the same codes")
    lists = tuple(given.lists) if given.lists else tuple(_find(run_id, s) for s in expected)
    selection = ListSelection(lists=lists, urls=urls,
                              category=",".join(category) if category else None,
                              strict=bool(stored.get("strict")))
    return ResumePlan(run_id, selection, expected, info.get("options") or {})


def _urls(urls: Sequence[str]) -> str:
    return f"--url {' '.join(urls)}" if urls else "no --url"


def _find(run_id: int, want: StoredList) -> Path:
    """A list probe knows by the name the run recorded (its hash is checked once opened)."""
    if want.name != _STDIN:
        for path in known_lists():
            if path.name == want.name:
                return path
    how = (f"probe run - --resume {run_id} < LIST" if want.name == _STDIN
           else f"probe run PATH/{want.name} --resume {run_id}")
    raise ResumeError(
        f"run {run_id} measured {want}, which probe does not know by name: give the same "
        f"list again, e.g. `{how}` (every list of the run, in the same order)")


def _plan_older(run_id: int, lists: Iterable[str], given: ListSelection,
                options: Mapping[str, Any]) -> ResumePlan:
    """A run recorded before runs stored their selection: only its lists' names and hashes
    are known, so the lists (or URLs) must be given again; filters are taken as given."""
    expected = []
    for entry in lists:
        name, _, digest = str(entry).rpartition(" sha256:")
        expected.append(StoredList(name, digest))
    if not given.lists and not given.urls:
        names = ", ".join(map(str, expected)) or "no list"
        raise ResumeError(f"run {run_id} was recorded by an older probe that did not store "
                          f"its selection ({names}): give its lists, --url and --category "
                          f"again with --resume {run_id}")
    return ResumePlan(run_id, given, tuple(expected), options)
