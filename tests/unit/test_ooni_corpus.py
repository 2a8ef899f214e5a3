"""The real-data corpus: OONI web_connectivity measurements, each with the verdict judged right.

tests/fixtures/ooni/corpus.json gives, for every measurement, its provenance, the verdict its raw
evidence supports (with a one-line why) and who is right where probe and OONI disagree. This
test re-judges each with probe's classifier (no IP data: the import's default) and checks the
verdict, the stage and the hop; it also checks that OONI's recorded verdict is what the corpus
says about the disagreement.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from probe.judge.classify import classify
from probe.research.ooni import OONIRecord, iter_lines, parse_measurement
from probe.research.ooni.importer import verdict_class

HERE = Path(__file__).resolve().parents[1] / "fixtures" / "ooni"
CORPUS: list[dict[str, Any]] = json.loads((HERE / "corpus.json").read_text())["cases"]


def _records() -> dict[str, OONIRecord]:
    by_file: dict[str, list[dict[str, Any]]] = {}
    for case in CORPUS:
        by_file.setdefault(case["file"], []).append(case)
    out: dict[str, OONIRecord] = {}
    for name, cases in by_file.items():
        lines = [obj for _, _, obj in iter_lines([HERE / name])]
        assert len(lines) == len(cases), name
        for case, obj in zip(cases, lines, strict=True):
            out[case["name"]] = parse_measurement(obj)
    return out


RECORDS = _records()


def test_corpus_has_every_source_and_its_provenance() -> None:
    assert len(CORPUS) >= 60
    assert {c["repo"] for c in CORPUS} == {"ooni/backend", "ooni/probe-cli"}
    for c in CORPUS:
        assert (
            c["why"] and c["license"] and len(c["commit"]) == 40 and c["right"] in ("both", "probe", "ooni")
        )


@pytest.mark.parametrize("case", CORPUS, ids=[c["name"] for c in CORPUS])
def test_probe_reaches_the_verdict_the_evidence_supports(case: dict[str, Any]) -> None:
    rec = RECORDS[case["name"]]
    v = classify(rec.measurement)
    got = (v.verdict, v.stage, v.hop)
    assert got == (case["verdict"], case["stage"], case["hop"]), f"{case['why']}: {list(v.reasons)}"
    agree = verdict_class(v.verdict) == verdict_class(rec.ooni_verdict)
    # "both" means OONI agrees by class; otherwise the corpus names who is right.
    assert agree == (case["right"] == "both"), f"OONI says {rec.ooni_verdict}; corpus: {case['right']}"
    assert case["right"] != "ooni", "probe must be right on every case a human can judge"
