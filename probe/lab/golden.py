"""Golden cases for the classifier from what the lab recorded (``probe lab run --golden``,
``probe lab export-golden``): each target's observations, its control and the verdict the lab
expects, in the layout of tests/unit/golden.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from probe.core.codec import to_data
from probe.host.output import stage_files
from probe.lab.scenarios import Expect, Scenario

__all__ = ["GOLDEN_BODY_CAP", "export_golden"]

#: Exported bodies are cut to this many bytes (the golden files stay small; the hash and length
#: of the full captured body are kept in the record).
GOLDEN_BODY_CAP = 64 * 1024


def _golden_expected(e: Expect, stored: Any, scenario: Scenario) -> dict[str, Any]:
    stage = e.stage
    hop = e.hop
    if hop is None and stage is not None:
        hop = 0
    if stored is not None and stored.verdict == e.verdict and (e.stage is None or stored.stage == e.stage):
        stage, hop = stored.stage, stored.hop
    return {
        "rule": f"lab scenario {scenario.number} ({scenario.name}): {scenario.technique}",
        "verdict": e.verdict,
        "stage": stage,
        "hop": hop,
        "reasons_include": [e.reason] if e.reason else [],
    }


def export_golden(results: Iterable[Any], directory: Path) -> list[Path]:
    """Write each target's recorded observations as a golden case directory.

    Layout (the classifier's tests/unit/golden format): ``lab-<scenario>[-<n>]/`` with
    ``observations.json`` (the measurement without control), ``control.json`` (one control per
    hop, or null) and ``verdict.json`` (what the lab expects). Returns the directories written.
    """
    written = []
    for r in results:
        s = r.scenario
        for i, (e, rec) in enumerate(zip(s.expectations, r.records, strict=True)):
            if rec is None or not isinstance(e, Expect):
                continue  # endpoints have no golden cases (they are not web measurements)
            m, v = rec
            controls = [to_data(h.control) if h.control is not None else None for h in m.hops]
            hops = []
            for h in m.hops:
                http = h.http
                if http is not None and len(http.body) > GOLDEN_BODY_CAP:
                    http = dataclasses.replace(http, body=http.body[:GOLDEN_BODY_CAP])
                hops.append(dataclasses.replace(h, control=None, http=http))
            m = dataclasses.replace(m, hops=tuple(hops))
            name = f"lab-{s.name}" + (f"-{i + 1}" if len(s.targets) > 1 else "")
            d = directory / name
            d.mkdir(parents=True, exist_ok=True)
            texts = {"observations.json": json.dumps(to_data(m), indent=1, ensure_ascii=False),
                     "control.json": json.dumps(controls, indent=1, ensure_ascii=False),
                     "verdict.json": json.dumps(_golden_expected(e, v, s), indent=1,
                                                ensure_ascii=False) + "\n"}
            # The three files of a case are replaced together: never a case of two runs.
            with stage_files([d / name for name in texts]) as files:
                for staged, text in zip(files, texts.values(), strict=True):
                    staged.tmp.write_text(text, encoding="utf-8")
            written.append(d)
    return written
