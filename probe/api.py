"""probe's Python API for whole runs: what `probe run` does, importable by researchers.

    from probe.api import RunRequest, measure_lists
    summary = measure_lists(RunRequest(urls=("https://example.org/",), no_consent_check=True))

Lower layers are importable too: :func:`probe.observe.measure` measures one target,
:func:`probe.classify.classify` judges a measurement, :class:`probe.store.Store` reads results.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from probe.runner import DEFAULT_CONCURRENCY, DEFAULT_DB, Reporter, RunSummary

__all__ = ["RunRequest", "measure_lists", "resolve_lists"]


@dataclass(frozen=True)
class RunRequest:
    """The options of one run, as the command line takes them."""

    lists: tuple[Path, ...] = ()
    urls: tuple[str, ...] = ()
    category: str | None = None
    strict: bool = False
    db: Path = DEFAULT_DB
    vantage: str = "default"
    resolvers: tuple[str, ...] = ()
    resolv_conf: str = "/etc/resolv.conf"
    doh: tuple[str, ...] = ()
    controls: tuple[str, ...] = ()
    cafile: str | None = None
    concurrency: int | None = None
    per_host: int = 4
    dns_timeout: float = 4.0
    tcp_timeout: float = 10.0
    tls_timeout: float = 10.0
    http_timeout: float = 15.0
    deadline: float = 60.0
    late_window: float = 0.5
    body_cap: int = 1 << 20
    max_redirects: int = 10
    retries: int = 1
    retry_pause: float = 2.0
    fingerprints: tuple[str, ...] = ()
    geo: str | None = None
    accept_risks: bool = False
    preflight: bool = True


def resolve_lists(request: RunRequest) -> list[Path]:
    """The lists to read: those named, else the default list unless only --url was given."""
    from probe.testlists import default_lists

    if request.lists:
        return list(request.lists)
    return [] if request.urls else default_lists()


def _targets(request: RunRequest, paths: list[Path], on_problem: Callable[[Any], None]) -> Iterator[Any]:
    from probe.testlists import iter_targets, parse_categories

    categories = parse_categories(request.category)
    return iter_targets(paths, urls=request.urls, categories=categories, strict=request.strict,
                        on_error=on_problem)


def measure_lists(request: RunRequest, reporter: Reporter | None = None) -> RunSummary:
    """Measure the request's lists and URLs into its database and return the summary.

    Raises ``TestListError`` (bad list, exit 2 in the CLI), ``StoreError`` (bad database) and
    :class:`probe.runner.NoNetworkError` (nothing answers; the run is recorded as offline).
    Network failures of single URLs are data, never exceptions.
    """
    from probe.observe import MeasureConfig
    from probe.runner import RunOptions, estimate_total, run_sync

    paths = resolve_lists(request)
    if request.strict:
        # Validate every row before measuring anything: a strict run is all or nothing.
        for _ in _targets(request, paths, lambda problem: None):
            pass
    problems: list[int] = [0]

    def on_problem(problem: Any) -> None:
        problems[0] += 1
        if reporter is not None:
            reporter.problem(f"skipped {problem}")

    cfg = MeasureConfig(
        resolvers=tuple(request.resolvers),
        system_resolver=not request.resolvers,
        resolv_conf=request.resolv_conf,
        doh=tuple(request.doh),
        dns_timeout=request.dns_timeout,
        tcp_timeout=request.tcp_timeout,
        tls_timeout=request.tls_timeout,
        http_timeout=request.http_timeout,
        deadline=request.deadline,
        late_window=request.late_window,
        body_cap=request.body_cap,
        max_redirects=request.max_redirects,
        cafile=request.cafile,
    )
    options = RunOptions(
        db=Path(request.db),
        vantage=request.vantage,
        lists=tuple(str(p) for p in paths),
        controls=tuple(request.controls),
        concurrency=request.concurrency or DEFAULT_CONCURRENCY,
        per_host=request.per_host,
        retries=request.retries,
        retry_pause=request.retry_pause,
        fingerprints=tuple(request.fingerprints),
        geo=request.geo,
        preflight=request.preflight,
        measure=cfg,
    )
    total = estimate_total(paths, request.urls)
    summary = run_sync(_targets(request, paths, on_problem), options, reporter, total)
    summary.problems = problems[0]
    return summary
