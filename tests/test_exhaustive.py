"""The exhaustive reference, the goal specification, and what every attack reports."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from brute_force_cases import FIXED, MEAN, SCALAR_FIXED, line, scalar
from hypothesis import given, settings
from hypothesis import strategies as st

from pluralguard.attacks import (
    ATTACKS,
    GOAL_SPECS,
    AttackContext,
    Goal,
    ThreatModel,
    exhaustive_search,
    make_attack,
)
from pluralguard.attacks.geometry import project_budget
from pluralguard.attacks.space import DeclarationSpace
from pluralguard.core import Population
from pluralguard.core.errors import InputError
from pluralguard.core.geometry import normalised_distance
from pluralguard.eval.cli import main
from pluralguard.eval.scenario import run_scenario

TOL = 1e-12


# ------------------------------------------------------------------ the reference
def test_exhaustive_finds_the_closed_form_of_the_mean() -> None:
    """Under the ℓ2 consensus one attacker's best response is the δ-projection of
    v + (Σw / w_a)(v − a) onto its budget ball (Lera-Leri et al.'s mean): the
    exhaustive search must reach the same utility gain."""
    pop = scalar([0.9, 0.5, 0.1, -0.3, -0.6])
    threat = ThreatModel(attackers=(0,))
    res = exhaustive_search(pop, MEAN, threat, budget=0.05)
    v = pop.X[0], pop.W[0]
    a = MEAN(pop)
    X, _ = project_budget(v[0], v[1], v[0] + pop.n * (v[0] - a.X[0]),
                          v[1] + pop.n * (v[1] - a.W[0]), 0.05)
    closed = ATTACKS["overshoot"](threat=threat).plan(pop, MEAN, 0.05)
    assert closed.declared.X[0] == pytest.approx(X)
    assert res.value == pytest.approx(closed.goal_value, rel=1e-6)
    assert res.complete and res.truth_value == 0.0


@pytest.mark.slow
def test_exhaustive_is_monotone_in_the_budget_and_never_below_the_truth() -> None:
    pop = line(0)
    threat = ThreatModel(attackers=(0,))
    small = exhaustive_search(pop, FIXED, threat, budget=0.05, grid_points=300, keep=2)
    large = exhaustive_search(pop, FIXED, threat, budget=0.1, grid_points=300, keep=2)
    assert small.value > 0 and large.value >= small.value - 1e-6
    # the optimum leaves the group: the attacker ends alone
    labels = FIXED(large.plan.declared).labels
    assert np.sum(labels == labels[0]) == 1
    assert normalised_distance(large.plan.declared.X[0], large.plan.declared.W[0],
                               pop.X[0], pop.W[0]) <= 0.1 + 1e-12


def test_exhaustive_enumerates_sybil_counts_and_outcomes() -> None:
    pop = scalar([-0.8, -0.3, -0.1, 0.2, 0.45, 0.9])
    threat = ThreatModel(attackers=(0,), sybils=2)
    res = exhaustive_search(pop, MEAN, threat, 0.1)
    assert set(res.outcomes["sybils"]) == {0, 1, 2}
    assert res.value == res.outcomes["best"].max()
    assert res.plan.sybils.size in (0, 1, 2)


def test_exhaustive_finds_the_leave_point_on_a_line() -> None:
    """One judgement, bound 0.25: agent 1 at 0.1 is linked to 0.3 and gains by moving
    just out of its reach — to 0.05 exactly, the point of the budget ball farthest
    from 0.3 that is nearest its truth (0.3 − 0.05 = 0.25 + 0)."""
    pop = scalar([-0.7, 0.1, 0.3])
    res = exhaustive_search(pop, SCALAR_FIXED, ThreatModel(attackers=(1,)), budget=0.1,
                            grid_points=101)
    labels = SCALAR_FIXED(res.plan.declared).labels
    assert labels[1] not in (labels[0], labels[2])  # alone
    assert res.plan.declared.X[1, 0, 0] == pytest.approx(0.05, abs=1e-3)
    clean = SCALAR_FIXED(pop)
    u_clean = 1 - (clean.agent_X[1, 0, 0] - 0.1) ** 2 / 8
    assert res.value == pytest.approx(1 - 0.05 ** 2 / 8 - u_clean, rel=1e-3)


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"budget": -1.0}, "budget"), ({"grid_points": 0}, "grid_points"),
    ({"levels": 1.5}, "levels"), ({"sybil_counts": (3,)}, "sybil_counts")])
def test_exhaustive_rejects_bad_input(kwargs: dict, field: str) -> None:
    args = {"budget": 0.1} | kwargs
    with pytest.raises(InputError) as err:
        exhaustive_search(scalar([0.1, 0.2, 0.5]), MEAN, ThreatModel(attackers=(0,)),
                          **args)
    assert err.value.field == field


def test_the_declaration_space_respects_the_budget_and_maps_back() -> None:
    pop = line(3, n=6, m=3)
    ctx = AttackContext(pop, FIXED, ThreatModel(attackers=(1, 4), sybils=1), seed=0)
    space = DeclarationSpace(ctx, budget=0.07)
    rng = np.random.default_rng(0)
    for z in space.random(rng, 50, boundary=0.5) * 3:  # also points far outside
        declared = space.declare(z)
        d = normalised_distance(declared.X[[1, 4]], declared.W[[1, 4]], pop.X[[1, 4]],
                                pop.W[[1, 4]])
        assert (d <= 0.07 + 1e-12).all() and declared.n == pop.n + 1
        back = space.declare(space.coordinates(declared))
        assert back.X == pytest.approx(declared.X) and back.W == pytest.approx(declared.W)


# ------------------------------------------------------------------------ goals
@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), goal=st.sampled_from(sorted(GOAL_SPECS)))
def test_telling_the_truth_measures_zero_for_every_goal(seed: int, goal: str) -> None:
    pop = line(seed, n=7)
    threat = ThreatModel(count=1, select="in_target", goal=Goal(goal))
    ctx = AttackContext(pop, FIXED, threat, seed=seed)
    try:
        main_value, _ = ctx.measure(pop)
    except InputError:  # e.g. merge needs two groups
        return
    assert main_value == 0.0
    assert not GOAL_SPECS[goal].success(main_value)


@pytest.mark.parametrize("name", ["overshoot", "exclude", "camouflage", "sybil"])
def test_no_attack_reports_less_than_the_truth(name: str) -> None:
    """overshoot out of its group did worse than the truth on line(0); every recipe
    now declares the truth when its own plan serves its goal worse."""
    pop = line(0)
    row = run_scenario(pop, FIXED, make_attack(name, attackers=(0,)), budget=0.1,
                       exhaustive=False).row
    assert row["goal_measure"] >= 0.0
    if row["truth_fallback"] == 1.0:
        assert row["goal_measure"] == 0.0 and row["utility_loss_max"] == 0.0


def test_goal_measure_is_the_goal_column_times_its_sign() -> None:
    pop = line(2)
    for name, goal in (("overshoot", "selfish"), ("infiltrate", "capture"),
                       ("exclude", "exclude")):
        row = run_scenario(pop, FIXED, make_attack(name, goal=goal, count=1),
                           budget=0.2, exhaustive=False).row
        assert not math.isnan(row["goal_measure"]), name
        spec = GOAL_SPECS[goal]
        assert row["goal_measure"] == pytest.approx(spec.sign * row[spec.column], abs=TOL)
        assert row["attack_success"] == float(spec.success(row["goal_measure"]))


# ----------------------------------------------------------- recomputable output
def test_attack_json_lets_every_metric_be_recomputed(tmp_path, capsys) -> None:
    pop = line(6, n=10)
    path = tmp_path / "pop.csv"
    from pluralguard.core.datasets import write_population

    write_population(pop, path)
    assert main(["attack", "--population", str(path), "--mechanism", "agreements",
                 "--bounds", "fixed:0.3,1.0", "--attack", "infiltrate,count=2",
                 "--budget", "0.2", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    plan = out["plan"]
    names = list(pop.agents)
    attackers = [a["index"] for a in plan["attackers"]]
    assert [a["name"] for a in plan["attackers"]] == [names[i] for i in attackers]
    # capture from the output alone: the target group's clean agreement, each honest
    # member's attacked agreement, the target point
    g = plan["target_group"]["clean_group"]
    clean = out["clean_agreements"][g]
    by_member = {m: a for a in out["attacked_agreements"] for m in a["members"]}
    t = np.array(plan["target_point"]["X"]), np.array(plan["target_point"]["W"])
    d0 = normalised_distance(np.array(clean["X"]), np.array(clean["W"]), *t)
    scores = []
    for member in plan["target_group"]["honest_members"]:
        a = by_member[member["name"]]
        d1 = normalised_distance(np.array(a["X"]), np.array(a["W"]), *t)
        scores.append(np.clip((d0 - d1) / d0, -1, 1))
    assert float(np.mean(scores)) == pytest.approx(out["capture"], abs=1e-12)
    assert out["goal_measure"] == pytest.approx(out["capture"], abs=1e-12)
    assert plan["sybils"]["count"] == out["n_sybils"] == 0
    assert plan["queries"] == out["queries"]


# ----------------------------------------------------------- randomized defenses
def test_a_randomized_defense_is_evaluated_over_draws() -> None:
    pop = line(4, n=10)
    mech = {"kind": "agreements", "bounds": "quantile:0.5"}
    res = run_scenario(pop, mech, make_attack("sybil", sybils=3), "randomized_threshold",
                       budget=math.inf, draws=5)
    row = res.row
    assert row["draws"] == 5
    assert {"goal_measure_draw_sd", "utility_loss_p90_draw_sd"} <= set(row)
    # the row is the mean over the evaluation's draws, each against its own clean run
    from pluralguard.defenses import make_defense
    from pluralguard.defenses.base import DefenseChain
    from pluralguard.eval.scenario import _draw_seed, make_mechanism

    chain = DefenseChain((make_defense("randomized_threshold"),))
    values = []
    for e in range(5):
        defended = chain.redraw(_draw_seed(0, "evaluation", e))(make_mechanism(mech))
        values.append(res.plan.measure(pop, defended(pop), defended(res.plan.declared))[0])
    assert row["goal_measure"] == pytest.approx(np.mean(values), abs=1e-12)
    assert row["goal_measure_draw_sd"] == pytest.approx(np.std(values), abs=1e-12)
    # deterministic defenses are evaluated once
    assert "draws" not in run_scenario(pop, mech, "sybil", "bound_floor", budget=0.1).row


def test_scenarios_on_small_populations_carry_the_exhaustive_optimum() -> None:
    pop = scalar([-0.7, 0.1, 0.3, 0.5])
    row = run_scenario(pop, SCALAR_FIXED, make_attack("best_response", attackers=(1,)),
                       budget=0.1).row
    assert row["exhaustive_optimum"] > 0
    assert row["goal_measure"] >= 0.95 * row["exhaustive_optimum"]
    large = run_scenario(line(0, n=14), FIXED, "overshoot", budget=0.1).row
    assert "exhaustive_optimum" not in large


def test_a_zero_move_declares_the_truth_exactly() -> None:
    pop = line(3, n=6, m=3)
    ctx = AttackContext(pop, FIXED, ThreatModel(attackers=(1, 4)), seed=0)
    declared = DeclarationSpace(ctx, budget=0.0).declare(np.zeros(2 * (3 + 2)))
    assert declared.fingerprint() == pop.fingerprint()


def test_bridge_between_a_group_of_attackers_and_another_declares_the_truth() -> None:
    X = np.array([-0.70358293, -0.42406509, 0.1100577, 0.09244772, -0.56223906,
                  0.85742016]).reshape(6, 1, 1)
    pop = Population(X, np.ones((6, 1)))
    res = run_scenario(pop, {"kind": "agreements", "bounds": "quantile:0.3"},
                       {"name": "bridge", "sybils": 3}, budget=0.02, exhaustive=False)
    assert res.plan.info["reason"] == "a group to merge has no honest member"
    assert res.plan.declared is pop and res.row["goal_measure"] == 0.0
