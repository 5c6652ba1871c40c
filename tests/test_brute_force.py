"""The adaptive attack held to the exhaustive best response on tiny populations.

tests/brute_force_cases.py lists the scenarios (leave, switch and join moves, the
median's tie at even n, the mean at the box edge, declared bounds, coalitions and
Sybils, both built-in mechanisms, the selfish, capture and exclude goals). On every
one, ``best_response`` at its defaults must reach ≥ 95 % of the exhaustive optimum,
≥ 99 % on average, in both knowledge modes, and never report a gain below zero.
"""

from __future__ import annotations

import statistics

import pytest
from brute_force_cases import CASES, Case

from pluralguard.attacks import ATTACKS, exhaustive_search

EVERY_CASE, ON_AVERAGE = 0.95, 0.99
TOL = 1e-12
#: A few quick cases checked in the default run (the full table is slow).
QUICK = ("median-even-a2", "mean-edge-a0", "mean-coalition", "median-sybils")


def _ratio(found: float, optimum: float) -> float:
    return found / optimum if optimum > TOL else 1.0


def _compare(case: Case) -> list[tuple[str, str, float, float, float, int]]:
    """(case, knowledge, optimum, found, ratio, queries) in both knowledge modes."""
    reference = exhaustive_search(case.population, case.mechanism, case.threat_model(),
                                  case.budget)
    assert reference.complete and reference.value >= reference.truth_value - TOL
    default = ATTACKS["best_response"]().threat.queries
    rows = []
    for knowledge in ("white", "black"):
        attack = ATTACKS["best_response"](threat=case.threat_model(knowledge, default))
        plan = attack.plan(case.population, case.mechanism, case.budget)
        found = plan.info["score"]
        assert found >= -TOL, (case.name, knowledge, found)  # never below the truth
        assert plan.queries <= default
        rows.append((case.name, knowledge, reference.value, found,
                     _ratio(found, reference.value), plan.queries))
    return rows


def _table(rows: list[tuple]) -> str:
    return "\n".join(f"{c:28s} {k:5s} optimum {o:.6g} found {f:.6g} ratio {r:.4f} "
                     f"queries {q}" for c, k, o, f, r, q in rows)


def test_the_cases_cover_what_the_reference_must_hold() -> None:
    assert len(CASES) >= 20
    kinds = {case.kind for case in CASES}
    assert {"leave", "switch", "join", "tie", "box edge", "coalition", "sybil"} <= kinds
    goals = {case.threat.get("goal", "selfish") for case in CASES}
    assert {"selfish", "capture", "exclude"} <= goals
    assert {case.mechanism.kind for case in CASES} == {"agreements", "consensus"}


@pytest.mark.parametrize("name", QUICK)
def test_best_response_matches_the_exhaustive_optimum_on_quick_cases(name: str) -> None:
    case = next(c for c in CASES if c.name == name)
    rows = _compare(case)
    assert all(r[4] >= EVERY_CASE for r in rows), _table(rows)


@pytest.mark.slow
def test_best_response_reaches_the_exhaustive_optimum_on_every_case() -> None:
    rows = [row for case in CASES for row in _compare(case)]
    for knowledge in ("white", "black"):
        ratios = [r[4] for r in rows if r[1] == knowledge]
        assert min(ratios) >= EVERY_CASE, _table(rows)
        assert statistics.fmean(ratios) >= ON_AVERAGE, _table(rows)
