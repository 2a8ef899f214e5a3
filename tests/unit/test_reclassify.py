"""Re-judging stored measurements with an injected classifier."""

from __future__ import annotations

from collections import Counter

import pytest
from store_samples import sample_measurement, sample_verdict

import probe.run.reclassify as reclassify_module
from probe.core.model import Measurement, Verdict
from probe.present.reclassify import describe_change
from probe.run.reclassify import reclassify
from probe.store import Store


@pytest.fixture
def store() -> Store:
    s = Store.open(":memory:")
    vid = s.vantage("lab")
    for run_verdicts in (("blocked", "ok", "reset", "ok"), ("ok", "down")):
        run = s.start_run(vid, [], {})
        s.write(run, vid, [(sample_measurement(i), sample_verdict(v, "old-1"))
                           for i, v in enumerate(run_verdicts)])
    yield s
    s.close()


def _by_site(m: Measurement) -> Verdict:
    # A "newer classifier": site0 is ok now; everything else keeps the verdict the store has.
    if m.target.host.startswith("site0"):
        return Verdict("ok", None, None, ())
    return {"site1": sample_verdict("ok", ""), "site2": sample_verdict("reset", ""),
            "site3": sample_verdict("ok", "")}[m.target.host.split(".")[0]]


def test_reclassify_rewrites_changed_verdicts_and_reports_them(store: Store) -> None:
    report = reclassify(store, 1, classify=_by_site, version="new-2")
    assert (report.judged, report.changed) == (4, 1)
    assert report.transitions == Counter({("blocked", "ok"): 1})
    (change,) = report.changes
    assert (change.url, change.old.verdict, change.new.verdict) == ("http://site0.example.org/",
                                                                    "blocked", "ok")
    assert describe_change(change) == "http://site0.example.org/: blocked/http -> ok"
    rows = {r["url"]: (r["verdict"], r["classifier_version"]) for r in store.results(1)}
    assert rows["http://site0.example.org/"] == ("ok", "new-2")
    assert rows["http://site2.example.org/"] == ("reset", "new-2")  # unchanged, version recorded


def test_reclassify_without_run_covers_every_run(store: Store) -> None:
    seen: list[str] = []

    def spy(m: Measurement) -> Verdict:
        seen.append(m.target.url)
        return Verdict("inconclusive", None, None, ("test/none",), "spy-1")

    report = reclassify(store, classify=spy, version="ignored")
    assert report.judged == len(seen) == 6
    assert report.changed == 6
    assert {r["classifier_version"] for r in store.results(None)} == {"spy-1"}


def test_reclassify_gives_the_classifier_full_measurements(store: Store) -> None:
    bodies: list[bytes] = []

    def keep(m: Measurement) -> Verdict:
        bodies.append(m.hops[1].http.body)
        return sample_verdict("blocked", "x")

    reclassify(store, 2, classify=keep, version="x")
    assert bodies and all(b.startswith(b"<html>") for b in bodies)


def test_reclassify_writes_in_batches(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    real = store.set_verdicts
    monkeypatch.setattr(reclassify_module, "_BATCH", 2)
    monkeypatch.setattr(store, "set_verdicts", lambda u: (calls.append(len(u)), real(u)))
    reclassify(store, None, classify=lambda m: Verdict("ok", None, None, ()), version="b-1")
    assert calls == [2, 2, 2, 0]
    assert {r["verdict"] for r in store.results(None)} == {"ok"}


def test_reclassify_uses_the_real_classifier_by_default(store: Store) -> None:
    classify = pytest.importorskip("probe.judge.classify")
    if not hasattr(classify, "classify") or not hasattr(classify, "CLASSIFIER_VERSION"):
        pytest.skip("probe.judge.classify.classify is not written yet")
    report = reclassify(store, 1)
    assert report.judged == 4
    assert report.classifier_version == classify.CLASSIFIER_VERSION
    assert {r["classifier_version"] for r in store.results(1)} != {"old-1"}
