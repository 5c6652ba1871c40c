"""The agreement solver against the exact oracle and the validity contract."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest

from pluralguard.core import InputError, Population, solve_agreements
from pluralguard.core.geometry import normalised_distance
from pluralguard.core.message_passing import IterationState
from pluralguard.core.oracle import solve_oracle
from pluralguard.core.validity import check_result
from populations import clustered

ACTIVE_CASES = [  # (population, bounds): seeded cases where bounds bind
    (clustered(60, seed=0), "quantile:0.15"),
    (clustered(50, k=3, m=2, seed=1, weights=True), "quantile:0.3"),
    (clustered(40, k=1, m=2, seed=2, spread=0.3), "fixed:0.35,0.12"),
]


def group_means(pop, labels):
    G = labels.max() + 1
    w = pop.weight
    X = np.stack([np.tensordot(w[labels == g], pop.X[labels == g], 1) / w[labels == g].sum()
                  for g in range(G)])
    W = np.stack([w[labels == g] @ pop.W[labels == g] / w[labels == g].sum() for g in range(G)])
    return X, W


@pytest.mark.parametrize("pop, bounds", ACTIVE_CASES)
def test_methods_match_the_oracle_where_bounds_are_active(pop, bounds):
    exact = solve_agreements(pop, bounds, method="exact")
    oracle = solve_oracle(pop, bounds, labels=exact.labels)
    assert oracle.feasible.all()
    # the bounds bind somewhere: some agreement is not its members' weighted mean
    mx, mw = group_means(pop, exact.labels)
    assert normalised_distance(mx, mw, oracle.X, oracle.W).max() > 1e-3
    for method, tol in [("exact", 1e-6), ("dual", 1e-6), ("nids", 1e-6), ("dgd", 1e-3)]:
        # the message-passing methods from their real start (no warm start)
        res = exact if method == "exact" else solve_agreements(pop, bounds, method=method,
                                                               warm_start=False)
        # same link rule, same partition, whatever the method
        assert np.array_equal(res.labels, exact.labels), method
        assert res.converged, (method, res.message)
        d = normalised_distance(res.X, res.W, oracle.X, oracle.W)
        assert d.max() <= tol, (method, d.max())
        report = check_result(res, pop, tol=tol)
        assert report.ok, (method, report.problems)


def test_unbounded_agents_reproduce_the_weighted_mean():
    pop = clustered(30, seed=4, weights=True)
    for method, tol in [("exact", 1e-9), ("dual", 1e-6), ("nids", 1e-6), ("dgd", 1e-3)]:
        res = solve_agreements(pop, "fixed:inf,inf", method=method, warm_start=False)
        assert res.n_groups == 1
        d = normalised_distance(res.X[0], res.W[0],
                                np.tensordot(pop.weight, pop.X, 1) / pop.weight.sum(),
                                pop.weight @ pop.W / pop.weight.sum())
        assert d <= tol, method


def test_full_quantile_gives_one_group_at_the_weighted_mean():
    # with γ = the largest pairwise distance every declaration lies in every F_i
    pop = clustered(40, seed=5, weights=True)
    res = solve_agreements(pop, "quantile:1")
    assert res.n_groups == 1 and res.converged
    assert np.allclose(res.W[0], pop.weight @ pop.W / pop.weight.sum(), atol=1e-9)


def test_groups_are_maximal_and_the_rule_settles():
    pop = clustered(80, seed=6)
    res = solve_agreements(pop, "quantile:0.1")
    assert res.links.merges == pop.n - res.n_groups  # one merge per link, n − 1 at most
    assert res.links.merges + res.links.rejected <= res.links.candidate_edges
    report = check_result(res, pop)
    assert report.ok and report.mergeable == []


def test_static_rule_reports_groups_without_a_common_point():
    pop = clustered(60, seed=1)
    res = solve_agreements(pop, "quantile:0.3", link_rule="static")
    oracle = solve_oracle(pop, "quantile:0.3", labels=res.labels)
    assert not oracle.feasible.all()  # the initial components do not all intersect
    assert np.array_equal(res.consensus, oracle.feasible)
    assert not res.converged and "did not reach consensus" in res.message
    report = check_result(res, pop, maximality=False)
    assert not report.ok
    dual = solve_agreements(pop, "quantile:0.3", method="dual", link_rule="static",
                            max_iter=4000)
    # the dual's disagreement stalls on the infeasible components and is reported
    assert not dual.consensus[~oracle.feasible].any()
    assert (dual.residual[~oracle.feasible] > 1e-4).all()
    # the merge rule splits them into valid groups instead
    merged = solve_agreements(pop, "quantile:0.3")
    assert merged.converged and merged.n_groups > res.n_groups


def test_deduplication_is_exact():
    base = clustered(30, seed=7)
    pop = base.append(base.replace(agents=[f"copy{i}" for i in range(30)]))
    a = solve_agreements(pop, "quantile:0.2")
    b = solve_agreements(pop, "quantile:0.2", deduplicate=False)
    assert np.array_equal(a.labels, b.labels)
    assert np.abs(a.X - b.X).max() < 1e-7 and np.abs(a.W - b.W).max() < 1e-7
    assert np.array_equal(a.labels[:30], a.labels[30:])


def test_membership_is_acceptance_of_each_agreement():
    pop = clustered(50, seed=8)
    res = solve_agreements(pop, "quantile:0.2")
    M = res.membership.toarray()
    assert M[np.arange(pop.n), res.labels].all()  # everyone accepts their own agreement
    dx = np.sqrt(((pop.X[:, None] - res.X[None]) ** 2).sum((2, 3)))
    dw = np.sqrt(((pop.W[:, None] - res.W[None]) ** 2).sum(2))
    expect = (dx <= res.gamma_x[:, None] + 1e-6) & (dw <= res.gamma_w[:, None] + 1e-6)
    assert np.array_equal(M, expect)


def test_social_graph_splits_groups():
    pop = clustered(20, seed=9)
    free = solve_agreements(pop, "fixed:inf,inf")
    assert free.n_groups == 1
    social = nx.Graph()
    social.add_nodes_from(pop.agents)
    social.add_edges_from(zip(pop.agents[:9], pop.agents[1:10], strict=True))
    res = solve_agreements(pop, "fixed:inf,inf", social_graph=social)
    assert res.n_groups == 11  # one chain of 10 plus 10 singletons


@pytest.mark.parametrize("method", ["dual", "nids"])
def test_protocol_hook_can_drag_a_group(method):
    pop = clustered(30, seed=10)
    honest = solve_agreements(pop, "fixed:inf,inf", method=method)
    target_X, target_W = np.full((pop.k, pop.m), 0.9), np.eye(pop.m)[0]
    seen = []

    def stubborn(state: IterationState):
        seen.append(state.iteration)
        return {0: (target_X, target_W)}

    res = solve_agreements(pop, "fixed:inf,inf", method=method, hook=stubborn, max_iter=3000)
    assert seen[:3] == [1, 2, 3]
    before = normalised_distance(honest.X[0], honest.W[0], target_X, target_W)
    after = normalised_distance(res.X[0], res.W[0], target_X, target_W)
    assert after < 0.5 * before  # a stubborn messenger pulls the consensus toward itself


def test_same_input_same_output():
    pop = clustered(40, seed=11)
    for method in ("exact", "dual"):
        a = solve_agreements(pop, "quantile:0.2", method=method)
        b = solve_agreements(pop, "quantile:0.2", method=method)
        assert np.array_equal(a.labels, b.labels)
        assert np.array_equal(a.X, b.X) and np.array_equal(a.W, b.W)


@pytest.mark.parametrize("kwargs, field", [
    ({"method": "newton"}, "method"),
    ({"utility": "cubic"}, "utility"),
    ({"link_rule": "free"}, "link_rule"),
    ({"method": "dual", "utility": "linear"}, "method"),
    ({"hook": lambda s: None}, "hook"),
    ({"bounds": "quantile:2"}, "bounds"),
    ({"bounds": "declared"}, "bounds"),
    ({"neighbors": -1}, "neighbors"),
    ({"tol": 0.0}, "tol"),
    ({"tol": "a"}, "tol"),
    ({"method": "dual", "step": -1}, "step"),
    ({"method": "dual", "step": 5}, "step"),
    ({"method": "nids", "step": 2.0}, "step"),
    ({"method": "dgd", "step": 0}, "step"),
    ({"method": "nids", "utility": "linear"}, "method"),
    ({"method": "nids", "mixing": "median"}, "mixing"),
    ({"method": "dual", "warm_start": "yes"}, "warm_start"),
])
def test_bad_arguments_name_the_field(kwargs, field):
    pop = clustered(10)
    kwargs = {"bounds": "quantile:0.5", **kwargs}
    with pytest.raises(InputError) as err:
        solve_agreements(pop, **kwargs)
    assert err.value.field == field


def test_rejects_non_population():
    with pytest.raises(InputError, match="Population"):
        solve_agreements(np.zeros((3, 2, 2)))


def test_linear_utility_agrees_with_the_oracle():
    pop = clustered(30, seed=12)
    res = solve_agreements(pop, "quantile:0.4", utility="linear")
    oracle = solve_oracle(pop, "quantile:0.4", "linear", labels=res.labels)
    assert normalised_distance(res.X, res.W, oracle.X, oracle.W).max() < 1e-6
    dgd = solve_agreements(pop, "quantile:0.4", method="dgd", utility="linear")
    assert normalised_distance(dgd.X, dgd.W, oracle.X, oracle.W).max() < 1e-2
    assert isinstance(pop, Population)


@pytest.mark.parametrize("bounds", ["quantile:0.25", "quantile:0.5"])
def test_fast_path_reaches_the_dual_fixed_point(bounds):
    # the suites' fast path ('exact') against message passing ('dual') on a seeded
    # PVE-shaped population: same partition, same agreements
    from sklearn.metrics import adjusted_rand_score

    from pluralguard.core import datasets

    pop = datasets.load("pve_like", n=150, seed=4)
    fast = solve_agreements(pop, bounds)
    dual = solve_agreements(pop, bounds, method="dual", warm_start=False)
    assert dual.converged
    assert adjusted_rand_score(fast.labels, dual.labels) >= 0.99
    assert np.array_equal(fast.labels, dual.labels)
    assert normalised_distance(fast.X, fast.W, dual.X, dual.W).max() <= 1e-6


def test_plain_nids_with_a_smaller_step_reaches_the_same_fixed_point():
    # θ ≠ 1: NIDS's own recursion with its gradient corrections, no extrapolation
    pop, bounds = ACTIVE_CASES[2]
    exact = solve_agreements(pop, bounds)
    res = solve_agreements(pop, bounds, method="nids", step=0.5, tol=1e-6, warm_start=False)
    assert res.converged and np.array_equal(res.labels, exact.labels)
    assert normalised_distance(res.X, res.W, exact.X, exact.W).max() <= 1e-4


def test_the_dual_reports_a_deviating_member_as_not_converged():
    # a constant message outside its group's acceptable region: the group can never
    # agree, and must be reported so (stall detection), never averaged into consensus
    pop = clustered(30, seed=10)
    far_X, far_W = np.full((pop.k, pop.m), -1.0), np.eye(pop.m)[-1]
    res = solve_agreements(pop, "quantile:0.4", method="dual", max_iter=20000,
                           hook=lambda state: {0: (far_X, far_W)})
    g = res.labels[0]
    assert not res.consensus[g] and not res.converged
    assert res.n_iter < 20000  # detected as a stall, not run to the cap


@pytest.mark.parametrize("method", ["dual", "nids"])
@pytest.mark.parametrize("pop, bounds", ACTIVE_CASES[:2])
def test_honest_solves_start_at_the_fixed_point(method, pop, bounds):
    """Without a hook the methods start from the fast path's optimum with the
    multipliers of the binding balls: message passing confirms it at once, and lands
    where the protocol's own run from its real start lands."""
    warm = solve_agreements(pop, bounds, method=method, mixing="clip:0.05")
    cold = solve_agreements(pop, bounds, method=method, warm_start=False)
    oracle = solve_oracle(pop, bounds, labels=warm.labels)
    assert warm.converged and warm.n_iter <= 30 < cold.n_iter
    assert np.array_equal(warm.labels, cold.labels)
    assert normalised_distance(warm.X, warm.W, oracle.X, oracle.W).max() <= 1e-9
    assert normalised_distance(warm.X, warm.W, cold.X, cold.W).max() <= 1e-6


def test_a_hook_always_faces_the_protocol_from_its_real_start():
    pop, bounds = ACTIVE_CASES[0]
    seen = []

    def watch(state: IterationState) -> None:
        if state.iteration == 1:
            seen.append((state.X.copy(), state.W.copy()))

    solve_agreements(pop, bounds, method="dual", hook=watch)
    res = solve_agreements(pop, bounds, method="dual")
    first_X, _ = seen[0]
    # at the first message every agent still answers with its own declaration
    assert np.allclose(first_X, pop.X) and not np.allclose(first_X, res.agent_X)


@pytest.mark.parametrize("method, mixing", [("dual", None), ("nids", None),
                                            ("dual", "clip:0.02")])
def test_compiled_and_numpy_iterations_agree(monkeypatch, method, mixing):
    """The compiled iterations (numba) and the numpy ones run the same recursion:
    same fixed point, about the same number of iterations."""
    from pluralguard.core import kernels

    pop, bounds = ACTIVE_CASES[1]
    kwargs = {"method": method, "mixing": mixing, "warm_start": False}
    compiled = solve_agreements(pop, bounds, **kwargs)
    monkeypatch.setattr(kernels, "COMPILED", False)
    plain = solve_agreements(pop, bounds, **kwargs)
    assert compiled.converged and plain.converged
    assert normalised_distance(compiled.X, compiled.W, plain.X, plain.W).max() <= 1e-6
    assert abs(compiled.n_iter - plain.n_iter) <= 0.2 * plain.n_iter + 20
