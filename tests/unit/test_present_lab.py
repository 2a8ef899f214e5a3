"""The lab's text for people (`probe lab list`, `run`, `censor`): every line within 80 columns,
nothing expected cut, the groups, twins and the judges' vocabulary shown."""

from __future__ import annotations

from probe.lab.catalogue import GROUPS, select, terms
from probe.lab.checks import Outcome
from probe.lab.combine import conflicts
from probe.lab.lab import ScenarioResult
from probe.lab.scenarios import SCENARIOS, by_name
from probe.present.lab import expected_text, format_conflicts, format_results, format_scenarios, format_terms


def _fits(lines: list[str], width: int = 80) -> None:
    wide = [line for chunk in lines for line in chunk.splitlines() if len(line) > width]
    assert not wide, wide


def test_the_scenario_list_goes_group_by_group_with_each_twin() -> None:
    lines = list(format_scenarios(select(()), verbose=True, terms=terms()))
    _fits(lines)
    text = "".join(lines)
    positions = [text.index(f"== {g}: ") for g in GROUPS]
    assert positions == sorted(positions)
    assert "twin (benign):      trace-server-mute" in text
    assert "(probe lab list --reasons says which and why)" in " ".join(text.split())


def test_the_vocabulary_says_where_each_term_is_shown_or_why_not() -> None:
    lines = list(format_terms(terms()))
    _fits(lines)
    text = "".join(lines)
    assert "  throttled: throttling-sni\n" in text
    assert "  dns/bogon: not in the lab: " in text
    shown = sum(1 for t in terms() if t.scenarios)
    assert text.endswith(f"{shown} of {len(terms())} reproduced by a scenario\n")


def test_the_results_table_fits_80_columns_and_cuts_no_expectation() -> None:
    results = []
    for s in SCENARIOS:
        outcomes = tuple(Outcome(e.url, (), ("verdict: expected something else " * 4,), "observed " * 12,
                                 expected_text(e)) for e in s.expectations)  # fmt: skip
        results.append(ScenarioResult(s, outcomes, tuple(None for _ in outcomes), 0, "", 1.0))
    lines = list(format_results(results))
    _fits(lines)
    text = "".join(lines)
    for s in SCENARIOS:
        for e in s.expectations:
            assert f"  {expected_text(e)}  " in text or f"  {expected_text(e)}\n" in text, s.name


def test_a_refused_combination_is_said_within_80_columns() -> None:
    found = conflicts([by_name("tls-sni-rst"), by_name("down-everywhere"), by_name("packets-injected")])
    lines = list(format_conflicts(found))
    _fits(lines)
    assert "".join(lines).startswith("tls-sni-rst and down-everywhere cannot be combined: both act on")
