"""Golden cases: observations.json + control.json -> verdict.json, one directory per case.

A case directory holds ``observations.json`` (``probe.core.codec.to_data(Measurement)`` without the
helper's control), ``control.json`` (a list with one ControlObservation or null per hop),
``verdict.json`` (``verdict``, ``stage``, ``hop``, ``reasons_include``: substrings each of which
must appear in some reason, optional ``reasons_exclude``) and, optionally, ``fingerprints.csv``
(extra fingerprints in the packaged format). Adding a case is dropping a directory here; the
geo fixture tests/fixtures/geo/ip2asn-fixture.tsv is always used.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from probe.core.codec import from_data
from probe.core.model import ControlObservation, Measurement
from probe.inputs.fingerprints import default_fingerprints, load_fingerprints
from probe.inputs.geo import GeoDB
from probe.judge.classify import CLASSIFIER_VERSION, classify

GOLDEN = Path(__file__).resolve().parent / "golden"
GEO_FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "geo" / "ip2asn-fixture.tsv"
sys.path.insert(0, str(GOLDEN))

from builders import join  # noqa: E402

CASES = sorted(p.name for p in GOLDEN.iterdir() if (p / "verdict.json").is_file())


@pytest.fixture(scope="module")
def geo() -> GeoDB:
    return GeoDB.open(GEO_FIXTURE)


def load_case(name: str) -> tuple[Measurement, dict]:
    d = GOLDEN / name
    m = from_data(Measurement, json.loads((d / "observations.json").read_text()))
    controls_path = d / "control.json"
    raw = json.loads(controls_path.read_text()) if controls_path.exists() else []
    controls = [from_data(ControlObservation, c) if c else None for c in raw]
    return join(m, controls), json.loads((d / "verdict.json").read_text())


def test_there_is_a_golden_case_per_rule() -> None:
    assert len(CASES) >= 40


@pytest.mark.parametrize("name", CASES)
def test_golden_case_gets_its_expected_verdict(name: str, geo: GeoDB) -> None:
    m, expected = load_case(name)
    extra = GOLDEN / name / "fingerprints.csv"
    fps = load_fingerprints([extra]) if extra.exists() else default_fingerprints()
    v = classify(m, fingerprints=fps, geo=geo)
    got = {"verdict": v.verdict, "stage": v.stage, "hop": v.hop}
    want = {k: expected.get(k) for k in ("verdict", "stage", "hop")}
    assert got == want, f"{name}: reasons {list(v.reasons)}"
    for sub in expected.get("reasons_include", []):
        assert any(sub in r for r in v.reasons), f"{name}: no reason contains {sub!r}: {list(v.reasons)}"
    for sub in expected.get("reasons_exclude", []):
        assert not any(sub in r for r in v.reasons), f"{name}: a reason contains {sub!r}: {list(v.reasons)}"
    assert v.classifier_version == CLASSIFIER_VERSION
