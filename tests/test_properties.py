"""Property tests (hypothesis) for the agreement mechanism's mathematics."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from pluralguard.core import Population, solve_agreements
from pluralguard.core.geometry import sq_dist_w, sq_dist_x


@st.composite
def populations(draw, max_n=25):
    n = draw(st.integers(2, max_n))
    k = draw(st.integers(1, 3))
    m = draw(st.integers(2, 4))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    centers = draw(st.integers(1, 4))
    lab = rng.integers(0, centers, n)
    X = np.clip(rng.uniform(-1, 1, (centers, k, m))[lab] + rng.normal(0, 0.3, (n, k, m)), -1, 1)
    W = rng.dirichlet(np.ones(m), centers)[lab] * 0.8 + 0.2 * rng.dirichlet(np.ones(m), n)
    weights = rng.uniform(0.2, 5, n) if draw(st.booleans()) else None
    gx = rng.uniform(0.1, 2.0, n)
    gw = rng.uniform(0.02, 0.6, n)
    return Population(X, W, gamma_x=gx, gamma_w=gw, weights=weights)


bounds = st.sampled_from(["declared", "quantile:0.2", "quantile:0.5", "fixed:0.8,0.3"])
quick = settings(max_examples=40, deadline=None)


@quick
@given(populations(), bounds)
def test_every_agreement_lies_in_every_members_set(pop, policy):
    res = solve_agreements(pop, policy)
    assert res.converged
    dx = np.sqrt(sq_dist_x(res.agent_X, pop.X))
    dw = np.sqrt(sq_dist_w(res.agent_W, pop.W))
    assert (dx <= res.gamma_x + 1e-6).all() and (dw <= res.gamma_w + 1e-6).all()
    assert (np.abs(res.X) <= 1).all() and np.allclose(res.W.sum(1), 1) and (res.W >= 0).all()


@quick
@given(populations(), bounds, st.integers(0, 2**32 - 1))
def test_relabelling_agents_permutes_the_output(pop, policy, seed):
    perm = np.random.default_rng(seed).permutation(pop.n)
    a = solve_agreements(pop, policy)
    b = solve_agreements(pop.subset(perm), policy)
    # same partition up to renaming of groups, same agreement for every agent
    assert np.array_equal(a.labels[perm][:, None] == a.labels[perm][None, :],
                          b.labels[:, None] == b.labels[None, :])
    assert np.abs(a.agent_X[perm] - b.agent_X).max() < 1e-7
    assert np.abs(a.agent_W[perm] - b.agent_W).max() < 1e-7
    assert np.allclose(a.utilities[perm], b.utilities, atol=1e-7)


@quick
@given(populations(), bounds, st.floats(0.01, 100))
def test_scaling_all_weights_changes_nothing(pop, policy, c):
    a = solve_agreements(pop, policy)
    b = solve_agreements(pop.replace(weights=c * pop.weight), policy)
    assert np.array_equal(a.labels, b.labels)
    assert np.abs(a.X - b.X).max() < 1e-7 and np.abs(a.W - b.W).max() < 1e-7


@settings(max_examples=25, deadline=None)
@given(populations(max_n=12), st.integers(2, 4))
def test_an_integer_weight_is_that_many_identical_agents(pop, copies):
    # weight w_i multiplies agent i's utility, exactly as w_i identical copies would
    pop = pop.replace(weights=None)
    heavy = pop.replace(weights=np.r_[copies, np.ones(pop.n - 1)])
    idx = np.r_[np.arange(pop.n), np.zeros(copies - 1, dtype=int)]
    clones = pop.replace(X=pop.X[idx], W=pop.W[idx], gamma_x=pop.gamma_x[idx],
                         gamma_w=pop.gamma_w[idx],
                         agents=[*pop.agents, *(f"clone{i}" for i in range(copies - 1))])
    a = solve_agreements(heavy, "declared")
    b = solve_agreements(clones, "declared")
    assert np.array_equal(a.labels, b.labels[:pop.n])
    assert np.abs(a.agent_X - b.agent_X[:pop.n]).max() < 1e-7


@settings(max_examples=10, deadline=None)
@given(populations(max_n=15), bounds)
def test_solves_are_deterministic(pop, policy):
    for method in ("exact", "dual"):
        a = solve_agreements(pop, policy, method=method)
        b = solve_agreements(pop, policy, method=method)
        assert np.array_equal(a.labels, b.labels)
        assert np.array_equal(a.X, b.X) and np.array_equal(a.W, b.W)
