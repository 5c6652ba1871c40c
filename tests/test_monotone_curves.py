"""Security curves monotone by construction: an attacker allowed budget ε may spend any
ε' ≤ ε, so the attack at ε keeps the strongest of its plans at the curve's budgets up to
ε (``pluralguard.attacks.strongest``, ``run_scenario(budget_path=...)``, the runner's
curves)."""

from __future__ import annotations

import itertools
import tomllib
from dataclasses import dataclass, field, replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pluralguard.attacks import AttackContext, AttackPlan, make_attack, strongest
from pluralguard.attacks.overshoot import Overshoot
from pluralguard.core.mechanism import Mechanism
from pluralguard.eval.provenance import run_key
from pluralguard.eval.run_cache import RunCache
from pluralguard.eval.runner import _batches, _work
from pluralguard.eval.scenario import run_scenario
from pluralguard.eval.suite import parse_suite
from populations import bounded

MECHANISM = Mechanism("agreements", {"bounds": "quantile:0.5"})


@dataclass(frozen=True)
class Timid(Overshoot):
    """``overshoot`` that plans as if it had no budget above 0.1: its raw curve falls."""

    def _plan(self, ctx: AttackContext, budget: float) -> AttackPlan:
        return super()._plan(ctx, budget if budget <= 0.1 else 0.0)


def test_a_falling_recipe_keeps_its_smaller_budgets_plan():
    pop = bounded(n=30, seed=1)
    raw = [Timid().plan(pop, MECHANISM, b) for b in (0.1, 0.3)]
    assert raw[0].goal_value > 1e-3 and raw[1].goal_value == 0.0  # the raw curve falls
    curve = Timid().curve(pop, MECHANISM, budgets=[0.3, 0.1])
    assert [p.goal_value for p in curve] == [raw[0].goal_value, raw[0].goal_value]


@dataclass(frozen=True)
class Hidden(Timid):
    """A recipe with a field its ``repr`` leaves out."""

    secret: float = field(default=0.0, repr=False)


def test_a_plan_is_cached_by_every_field_and_the_class_of_its_recipe():
    pop = bounded(n=30, seed=1)
    plan = Timid().plan(pop, MECHANISM, 0.1)
    cache, made = RunCache(), []

    def plan_of(recipe, tag):
        return cache.plan(recipe, pop, "m", 0, 0.1, lambda: made.append(tag) or plan)

    assert repr(Hidden(secret=1.0)) == repr(Hidden(secret=2.0))
    plan_of(Hidden(secret=1.0), 1)
    plan_of(Hidden(secret=2.0), 2)
    plan_of(Hidden(secret=1.0), 3)
    plan_of(type("Hidden", (Hidden,), {"__module__": __name__})(secret=1.0), 4)
    assert made == [1, 2, 4]


def test_strongest_breaks_ties_toward_the_larger_budget_and_never_prefers_the_unmeasured():
    plan = Timid().plan(bounded(n=30, seed=1), MECHANISM, 0.1)
    at = [replace(plan, goal_value=v) for v in (0.2, 0.5, 0.5)]
    assert strongest(at) == 2
    assert strongest([*at, replace(plan, goal_value=0.7)]) == 3
    assert strongest([at[1], replace(plan, goal_value=None)]) == 1
    assert strongest([replace(plan, goal_value=None), at[0]]) == 1


def test_a_scenario_on_a_curve_plans_at_its_smaller_budgets():
    pop = bounded(n=30, seed=1)
    alone = run_scenario(pop, MECHANISM, Timid(), budget=0.3).row
    low = run_scenario(pop, MECHANISM, Timid(), budget=0.1).row
    cache = RunCache()
    on_curve = run_scenario(pop, MECHANISM, Timid(), budget=0.3, budget_path=(0.1, 0.3, 0.5),
                            cache=cache).row
    assert alone["goal_measure"] == 0.0 and low["goal_measure"] > 1e-3
    assert on_curve["goal_measure"] == low["goal_measure"]
    assert on_curve["plan_budget"] == 0.1 and alone["plan_budget"] == 0.3
    assert on_curve["queries"] == low["queries"] + alone["queries"]
    # the curve's next budget reuses both plans (each budget planned once)
    again = run_scenario(pop, MECHANISM, Timid(), budget=0.5, budget_path=(0.1, 0.3, 0.5),
                         cache=cache).row
    assert len(cache._plans) == 3 and again["plan_budget"] == 0.1


@settings(max_examples=8, deadline=None)
@given(seed=st.integers(0, 10_000), name=st.sampled_from(["overshoot", "infiltrate",
                                                          "best_response"]))
def test_every_curve_is_monotone_in_its_goal(seed: int, name: str) -> None:
    pop = bounded(n=24, seed=seed % 7)
    attack = make_attack(name, queries=12) if name == "best_response" else make_attack(name)
    values = [p.goal_value for p in attack.curve(pop, MECHANISM, [0.02, 0.1, 0.3], seed)]
    assert all(b >= a for a, b in itertools.pairwise(values))


SUITE = """
name = "curves"
seeds = [0, 1]
datasets = ["evs2017", "pve_like"]
mechanisms = ["consensus"]
defenses = ["none", "bound_floor"]
attacks = [{name = "overshoot", budgets = [0.3, 0.05, 0.1]},
           {name = "sybil", budgets = [0.1, 0.3]}]
"""


@pytest.mark.parametrize("size", [1, 3, 8])
def test_tasks_hold_whole_curves_in_ascending_budget(size: int) -> None:
    suite = parse_suite(tomllib.loads(SUITE))
    grid = suite.grid()
    tasks = _batches({run_key(p): p for p in grid}, size, "s", ())
    assert sorted(k for t in tasks for k, _ in t.points) == sorted(run_key(p) for p in grid)
    groups = [t.points[0][1].curve[:3] for t in tasks]
    assert all(g == p.curve[:3] for t, g in zip(tasks, groups, strict=True) for _, p in t.points)
    order = list(dict.fromkeys(groups))  # each group's tasks together, largest group first
    assert groups == sorted(groups, key=order.index)
    work = [sum(_work(t) for t, g in zip(tasks, groups, strict=True) if g == o) for o in order]
    assert work == sorted(work, reverse=True)
    assert order[0][0] == "pve_like"  # the larger population first, unlike grid order
    for task in tasks:
        assert len(task.points) <= max(size, 3)
        curves = [p.curve for _, p in task.points]
        for curve in set(curves):
            budgets = [p.budget for _, p in task.points if p.curve == curve]
            assert budgets == sorted(budgets) and curves.count(curve) == len(
                [p for p in grid if p.curve == curve])


def test_a_run_key_depends_on_the_smaller_budgets_of_its_curve() -> None:
    def key(budgets: str) -> str:
        suite = parse_suite(tomllib.loads(SUITE.replace("budgets = [0.1, 0.3]",
                                                             f"budgets = {budgets}")))
        return next(run_key(p) for p in suite.grid()
                    if p.attack.name == "sybil" and p.budget == 0.3)
    assert key("[0.1, 0.3]") != key("[0.3]")
    assert key("[0.1, 0.3]") == key("[0.3, 0.1, 0.5]")
