"""Each metric on a hand-built case with a known value, and run_scenario end to end."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
from scipy import sparse

from pluralguard.core import Population
from pluralguard.eval import metrics as M
from pluralguard.eval.scenario import run_scenario
from populations import clustered


@dataclass
class FakeOutcome:
    """The Outcome read-out built by hand."""

    labels: np.ndarray
    X: np.ndarray
    W: np.ndarray
    membership: sparse.csr_matrix | None = None

    @property
    def agent_X(self):
        return self.X[self.labels]

    @property
    def agent_W(self):
        return self.W[self.labels]


def point(x: float, m: int = 2):
    return np.full((1, m), x), np.r_[1.0, np.zeros(m - 1)]


def test_capture_is_the_normalised_displacement_toward_the_target():
    t = point(1.0)
    aX, aW = point(-1.0)
    # member 0 moved halfway (in δ) toward t, member 1 did not move, member 2 overshot
    X = np.stack([point(0.0)[0], aX, point(1.0)[0]])
    W = np.stack([aW] * 3)
    out = FakeOutcome(np.arange(3), X, W)
    members = np.arange(3)
    # δ² is linear in ‖ΔX‖², so moving X from -1 to 0 halves ‖X - t‖: δ goes 1 → 1/2 of it
    expect = np.mean([0.5, 0.0, 1.0])
    assert M.capture(aX, aW, out, members, t) == pytest.approx(expect)
    assert np.isnan(M.capture(aX, aW, out, np.zeros(0, int), t))


def test_join_success_and_exclusion():
    labels = np.array([0, 0, 0, 1, 1, 0])  # agent 5 is a Sybil
    assert M.join_success(labels, np.array([0, 1, 2]), np.array([5])) == 1.0
    assert M.join_success(labels, np.array([3, 4]), np.array([5])) == 0.0
    everyone = sparse.csr_matrix(np.ones((5, 3), dtype=bool))
    clean = FakeOutcome(np.array([0, 0, 0, 0, 1]), np.zeros((2, 1, 2)), np.zeros((2, 2)),
                        everyone[:, :2])
    accept = sparse.csr_matrix(np.array([[1, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 0],
                                         [0, 0, 1]], dtype=bool))
    out = FakeOutcome(np.array([0, 0, 1, 2, 2]), np.zeros((3, 1, 2)), np.zeros((3, 2)),
                      accept)
    honest = np.arange(5)
    # victims 0..3 were together: 0 and 1 keep 1/3 of their mates, 2 and 3 none
    assert M.exclusion_rate(clean, out, np.array([0, 1, 2, 3]), honest) == 1.0
    # agent 4 kept its (no) mates and still accepts its agreement: not excluded
    assert M.exclusion_rate(clean, out, np.array([4]), honest) == 0.0
    # same partition, but agents 2 and 3 no longer accept the agreement they accepted
    same = FakeOutcome(clean.labels, clean.X, clean.W, accept[:, :2])
    assert M.exclusion_rate(clean, same, np.array([0, 1, 2, 3]), honest) == 0.5
    # ... while an agent that never accepted its agreement is not excluded by the attack
    never = FakeOutcome(clean.labels, clean.X, clean.W, accept[:, :2])
    assert M.exclusion_rate(never, same, np.array([3]), honest) == 0.0


def test_partition_metrics():
    a = np.array([0, 0, 1, 1])
    assert M.partition_change(a, a) == 0.0
    assert M.partition_change(a, np.array([5, 5, 7, 7])) == 0.0  # renaming is no change
    b = np.array([0, 1, 0, 1])
    assert M.partition_change(a, b) > 0.9
    # pairs together: a {01, 23}; b {02, 13}: 4 of 6 pairs flip
    assert M.comembership_flips(a, b) == pytest.approx(4 / 6)
    assert M.n_groups(np.array([3, 3, 9])) == 2


def test_goal_success_thresholds():
    from pluralguard.attacks import GOAL_SPECS

    won = {"selfish": (1e-6, 0.0), "capture": (0.5, 0.49), "exclude": (0.5, 0.4),
           "merge": (1.0, 0.0), "split": (1.0, 0.0), "fragment": (1.0, 0.0),
           "consolidate": (2.0, -1.0)}
    assert set(won) == set(GOAL_SPECS)
    for goal, (yes, no) in won.items():
        assert GOAL_SPECS[goal].success(yes) and not GOAL_SPECS[goal].success(no), goal
        assert GOAL_SPECS[goal].column in M.METRICS, goal


def test_every_metric_is_documented():
    for name, info in M.METRICS.items():
        assert info.formula and info.worse in ("higher", "lower", "none"), name


def test_scenario_without_attack_measures_nothing_lost():
    pop = clustered(30, seed=1).with_bounds(1.0, 0.3)
    res = run_scenario(pop, {"kind": "agreements", "bounds": "declared"})
    assert res.row["utility_loss_max"] == 0.0 and res.row["defense_cost"] == 0.0
    assert res.row["partition_change"] == 0.0 and res.row["attack"] == "none"


def test_sybils_inside_a_group_drag_it_and_cost_honest_utility():
    # everyone accepts everyone: one group at the mean; Sybils at the attacker's truth
    pop = clustered(20, seed=2).with_bounds(np.inf, np.inf)
    mech = {"kind": "agreements", "bounds": "declared"}
    small = run_scenario(pop, mech, {"name": "sybil", "sybils": 2, "goal": "capture",
                                     "attackers": (0,)}, budget=np.inf)
    big = run_scenario(pop, mech, {"name": "sybil", "sybils": 20, "goal": "capture",
                                   "attackers": (0,)}, budget=np.inf)
    assert 0 < small.row["capture"] < big.row["capture"] <= 1
    # closed form: agreement = (Σ_i v_i + s t) / (n + s)
    n, s = 20, 20
    expect_W = (pop.W.sum(0) + s * pop.W[0]) / (n + s)
    assert np.allclose(big.attacked.W[big.attacked.labels[1]], expect_W, atol=1e-9)
    assert big.row["utility_loss_mean"] > small.row["utility_loss_mean"] > 0
    assert big.row["attacker_gain"] > 0 and big.row["join_success"] == 1.0


def test_defense_cost_of_a_bound_floor_on_tight_honest_bounds():
    pop = clustered(40, seed=3).with_bounds(0.05, 0.01)  # almost nobody concedes
    res = run_scenario(pop, {"kind": "agreements", "bounds": "declared"},
                       defense={"name": "bound_floor", "gamma_x": 1.5, "gamma_w": 0.4})
    # the floor forces groups, whose agreements are further from each member's truth
    assert res.row["defense_cost"] > 0


def test_scenarios_are_deterministic_and_detailed():
    pop = clustered(30, seed=4).with_bounds(0.8, 0.25)
    args = (pop, {"kind": "agreements", "bounds": "declared"},
            {"name": "sybil", "sybils": 3, "fraction": 0.1})
    a = run_scenario(*args, budget=0.2, seed=5, detail=True)
    b = run_scenario(*args, budget=0.2, seed=5)
    assert a.row.keys() == b.row.keys()
    for key, value in a.row.items():  # bit-identical, NaN included
        same = value == b.row[key] or (value != value and b.row[key] != b.row[key])
        assert same, key
    assert len(a.agents) == 30 and set(a.agents["role"]) == {"honest", "attacker"}
    assert isinstance(a.clean.labels, np.ndarray) and isinstance(pop, Population)


def test_defense_partition_change_sees_what_utilities_miss():
    pop = clustered(40, seed=3).with_bounds(0.8, 0.25)
    mech = {"kind": "agreements", "bounds": "declared"}
    same = run_scenario(pop, mech, defense={"name": "bound_floor", "gamma_x": 0.0,
                                            "gamma_w": 0.0})
    assert same.row["defense_partition_change"] == 0.0
    # a tight cap splits the groups: honest utility goes up (agents alone score 1)
    split = run_scenario(pop, mech, defense={"name": "bound_cap", "k": 1, "factor": 1.0})
    assert split.row["defense_partition_change"] > 0
    assert split.row["defense_cost"] <= 0
