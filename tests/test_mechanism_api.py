"""A user's mechanism as a first-class citizen: capabilities, make_outcome, check_outcome."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pluralguard.attacks import make_attack
from pluralguard.core import (
    InputError,
    Mechanism,
    NotApplicable,
    check_outcome,
    datasets,
    lp_consensus,
    make_outcome,
    register_mechanism,
)
from pluralguard.core.geometry import accepts, utility
from pluralguard.defenses import make_defense
from pluralguard.eval.scenario import run_scenario


def halves(population):
    """Two groups by the first value weight; agreements = each group's mean."""
    labels = (population.W[:, 0] > np.median(population.W[:, 0])).astype(int)
    X = np.stack([population.X[labels == g].mean(axis=0) for g in (0, 1)])
    W = np.stack([population.W[labels == g].mean(axis=0) for g in (0, 1)])
    return labels, X, W


def test_make_outcome_fills_membership_utilities_and_consensus():
    pop = datasets.load("evs2017").with_bounds(0.3, 0.2)
    labels, X, W = halves(pop)
    out = make_outcome(pop, labels, X, W)
    check_outcome(out, pop)
    assert out.n_groups == 2 and out.converged and out.n_iter == 0
    assert out.consensus.tolist() == [True, True]
    for g in range(2):  # membership: agreement g lies in F_i
        want = accepts(X[g], W[g], pop.X, pop.W, pop.gamma_x, pop.gamma_w)
        assert np.array_equal(out.membership[:, [g]].toarray().ravel(), want)
    np.testing.assert_allclose(out.utilities, utility(X[labels], W[labels], pop.X, pop.W))
    # without bounds, every agent accepts every agreement
    plain = datasets.load("evs2017")
    assert make_outcome(plain, labels, X, W).membership.toarray().all()
    lin = make_outcome(pop, labels, X, W, utility="linear")
    assert (lin.utilities <= out.utilities + 1e-12).all()  # 1 − δ ≤ 1 − δ²


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 5), st.integers(0, 2**16))
def test_make_outcome_utilities_are_one_minus_squared_distance(groups, seed):
    """u_i = 1 − δ(a_{g(i)}, v̂_i)², so an agent at its own agreement scores 1."""
    pop = datasets.load("blobs", n=12, k=2, m=3, centers=2, seed=seed)
    rng = np.random.default_rng(seed)
    labels = np.arange(pop.n) % groups
    pick = rng.choice(pop.n, size=groups, replace=False)
    labels[pick] = np.arange(groups)
    out = make_outcome(pop, labels, pop.X[pick], pop.W[pick])
    assert np.all((out.utilities >= 0) & (out.utilities <= 1))
    np.testing.assert_allclose(out.utilities[pick], 1.0)


@pytest.mark.parametrize(("change", "field", "needle"), [
    (lambda lab, X, W: (lab[:-1], X, W), "labels", "expected 34 integer group ids"),
    (lambda lab, X, W: (lab + 5, X, W), "labels", "group ids must be in [0, 2)"),
    (lambda lab, X, W: (lab, X[:, 0], W), "X", "expected shape (n_groups, 2, 2)"),
    (lambda lab, X, W: (lab, X, W[:1]), "W", "expected shape (2, 2)"),
    (lambda lab, X, W: (lab, X * 3, W), "X", "outside [-1, 1]"),
    (lambda lab, X, W: (lab, X, W * 2), "W", "not on the simplex"),
    (lambda lab, X, W: (lab, X * np.nan, W), "X", "NaN"),
])
def test_make_outcome_names_the_malformed_argument(change, field, needle):
    pop = datasets.load("evs2017")
    with pytest.raises(InputError) as err:
        make_outcome(pop, *change(*halves(pop)))
    assert err.value.field == field and needle in err.value.problem


def test_check_outcome_names_what_is_missing():
    pop = datasets.load("evs2017")
    res = lp_consensus(pop)
    check_outcome(res, pop)  # the built-in results are outcomes

    class Half:
        labels, X, W = np.zeros(pop.n, int), res.X, res.W

    with pytest.raises(InputError, match="without membership, consensus, utilities, "
                                         "converged, n_iter, n_groups, agent_X, agent_W"):
        check_outcome(Half(), pop, "mechanism 'x'")
    with pytest.raises(InputError, match=r"labels has shape \(33,\), expected \(34,\)"):
        check_outcome(lp_consensus(pop.subset(range(33))), pop)


def test_capabilities_of_the_built_in_mechanisms_follow_their_parameters():
    caps = Mechanism("agreements").capabilities
    assert {"groups", "links", "declared_bounds"} <= caps
    assert not {"threshold", "message_passing", "lp"} & caps
    quantile = Mechanism("agreements", {"bounds": "quantile:0.5", "method": "dual"})
    assert {"threshold", "message_passing"} <= quantile.capabilities
    assert "declared_bounds" not in quantile.capabilities
    assert Mechanism("consensus").capabilities == {"lp"}
    # a defense's wrapper keeps the policy's kind visible
    floor_capped = make_defense("bound_cap")(quantile)
    assert "threshold" in floor_capped.capabilities


def test_register_mechanism_checks_what_it_is_told():
    with pytest.raises(InputError, match="unknown capability 'grups'"):
        register_mechanism("typo_caps", halves, capabilities=["grups"])
    with pytest.raises(InputError, match="invalid mechanism name"):
        register_mechanism("no spaces", halves)
    with pytest.raises(InputError, match="version"):
        register_mechanism("bad_version", halves, version=3)


def _three_groups(population, k=3):
    order = np.argsort(population.W[:, 0], kind="stable")
    labels = np.empty(population.n, dtype=int)
    labels[order] = np.arange(population.n) * k // population.n
    X = np.stack([population.X[labels == g].mean(axis=0) for g in range(k)])
    W = np.stack([population.W[labels == g].mean(axis=0) for g in range(k)])
    return make_outcome(population, labels, X, W)


def test_applicability_reads_a_user_mechanisms_capabilities():
    register_mechanism("three_groups_test", _three_groups, capabilities=["groups"],
                       description="test: three groups by the first weight")
    pop = datasets.load("evs2017").with_bounds(0.5, 0.3)
    mech = Mechanism("three_groups_test", {"k": 3})
    with pytest.raises(NotApplicable) as err:
        make_attack("infiltrate").plan(pop, mech, 0.1)
    problem = err.value.problem
    assert "mechanism 'three_groups_test' (k=3)" in problem
    assert "lacks capability 'links'" in problem and "single consensus" not in problem
    # attacks that need no capability run against it, with a capture target group
    row = run_scenario(pop, mech, make_attack("sybil", goal="capture"), budget=0.2).row
    assert row["n_groups_clean"] == 3 and np.isfinite(row["capture"])
    # a defense with nothing to act on is a no-op, a declaration defense acts
    assert not make_defense("mutual_knn").acts_on(mech)
    assert make_defense("sybil_cap").acts_on(mech)
