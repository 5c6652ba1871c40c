"""Attack-query sessions answer exactly as a fresh call of the mechanism, incrementally."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pluralguard.core import Population, datasets, incremental, kernels, solve_agreements
from pluralguard.core.bounds import PairwiseQuantile, pairwise_distance_quantile
from pluralguard.core.incremental import MAX_CHANGED
from pluralguard.core.mechanism import Mechanism
from pluralguard.defenses import DEFENSES, make_defense
from populations import bounded

POLICIES = ["declared", "quantile:0.3", "quantile:0.5", "fixed:1.0,0.3"]


def assert_same(a, b) -> None:
    """Every field of two agreement results, bit for bit (the link rule's count of
    conic solves and the timings count each run's own work)."""
    for name in ("labels", "X", "W", "consensus", "residual", "utilities", "estimates_X",
                 "estimates_W", "gamma_x", "gamma_w", "network"):
        assert np.array_equal(getattr(a, name), getattr(b, name)), name
    assert (a.membership != b.membership).nnz == 0
    assert a.membership.shape == b.membership.shape
    for name in ("converged", "n_iter", "method", "utility", "bounds", "link_rule", "message"):
        assert getattr(a, name) == getattr(b, name), name
    for name in ("rule", "candidate_edges", "merges", "rejected"):
        assert getattr(a.links, name) == getattr(b.links, name), name


def discrete(n: int, seed: int) -> Population:
    """Survey-like answers on a coarse grid: many agents share a declaration."""
    rng = np.random.default_rng(seed)
    X = rng.integers(-2, 3, (n, 2, 3)) / 2.0
    W = rng.dirichlet(np.ones(3) * 4, 5)[rng.integers(0, 5, n)]
    g = rng.choice([0.8, 1.2, 1.6], n)
    return Population(X, W, gamma_x=g, gamma_w=g / 4, name=f"discrete{seed}")


def moved(pop: Population, rng: np.random.Generator, agents: int, sybils: int,
          copy: bool) -> Population:
    """``agents`` agents change their declarations (onto another agent's when ``copy``),
    ``sybils`` identities are appended (copies of declarations when ``copy``)."""
    X, W = pop.X.copy(), pop.W.copy()
    gx, gw = pop.gamma_x.copy(), pop.gamma_w.copy()
    for a in rng.choice(pop.n, agents, replace=False):
        if copy:
            b = int(rng.integers(pop.n))
            X[a], W[a], gx[a], gw[a] = X[b], W[b], gx[b], gw[b]
        else:
            X[a] = np.clip(X[a] + rng.normal(0, 0.3, X[a].shape), -1, 1)
            W[a] = rng.dirichlet(np.ones(pop.m))
            gx[a] *= rng.uniform(0.5, 1.5)
    out = pop.replace(X=X, W=W, gamma_x=gx, gamma_w=gw)
    if sybils:
        who = rng.integers(0, pop.n, sybils)
        shift = 0.0 if copy else rng.normal(0, 0.2, (sybils, pop.k, pop.m))
        out = out.append(Population(np.clip(X[who] + shift, -1, 1), W[who],
                                    gamma_x=gx[who], gamma_w=gw[who],
                                    agents=[f"sybil{s}" for s in range(sybils)]))
    return out


def counted(session):
    """The session with its full-solve path counted (``session.full``)."""
    inner = session.function
    session.full = 0

    def function(*args, **kwargs):
        session.full += 1
        return inner(*args, **kwargs)

    session.function = function
    return session


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(0, 3), st.integers(0, 3), st.booleans(),
       st.sampled_from(POLICIES), st.booleans())
def test_session_answers_like_a_full_solve(seed, agents, sybils, copy, bounds, survey):
    base = discrete(60, seed % 5) if survey else bounded(n=50, seed=seed % 7)
    mech = Mechanism("agreements", {"bounds": bounds})
    ask = counted(mech.session(base))
    query = moved(base, np.random.default_rng(seed), agents, sybils, copy)
    assert_same(ask(query), solve_agreements(query, bounds))
    assert_same(ask(base), solve_agreements(base, bounds))
    assert ask.full == 0  # both answered without a full solve


@pytest.mark.parametrize("bounds", ["quantile:0.5", "declared"])
def test_session_on_pve_like_after_one_agent_moves(bounds):
    pop = datasets.load("pve_like")
    mech = Mechanism("agreements", {"bounds": bounds})
    ask = counted(mech.session(pop))
    rng = np.random.default_rng(1)
    for _ in range(3):
        a = int(rng.integers(pop.n))
        X = pop.X.copy()
        X[a] = np.clip(X[a] + rng.normal(0, 0.3, X[a].shape), -1, 1)
        query = pop.replace(X=X)
        assert_same(ask(query), solve_agreements(query, bounds))
    assert ask.full == 0


def test_the_python_path_answers_the_same(monkeypatch):
    """Without numba, sessions and full solves agree just the same (and reach the
    compiled path's partition)."""
    base = bounded(n=40, seed=2)
    query = moved(base, np.random.default_rng(5), 2, 1, False)
    for bounds in ("quantile:0.4", "declared"):
        compiled = Mechanism("agreements", {"bounds": bounds}).session(base)(query)
        with monkeypatch.context() as patch:
            patch.setattr(kernels, "COMPILED", False)
            plain = Mechanism("agreements", {"bounds": bounds}).session(base)(query)
            assert_same(plain, solve_agreements(query, bounds))
        assert np.array_equal(plain.labels, compiled.labels)
        assert np.allclose(plain.X, compiled.X, atol=1e-9)


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(0, 4), st.integers(0, 4),
       st.sampled_from([0.0, 0.1, 0.5, 0.77, 1.0]), st.booleans())
def test_quantile_updates_exactly(seed, changed, appended, q, repeats):
    rng = np.random.default_rng(seed)
    n = 30
    # on a grid, rows and distances repeat; changed rows land on the grid or off it
    rows = rng.integers(0, 4, (n, 3)) / 3.0 if repeats else rng.normal(size=(n, 3))
    state = PairwiseQuantile(rows, q, 0)
    who = np.sort(rng.choice(n, changed, replace=False))
    new = rows.copy()
    new[who] = rows[rng.integers(0, n, changed)] + rng.choice([0, 0.1], (changed, 1))
    new = np.concatenate([new, rows[rng.integers(0, n, appended)]
                          + rng.choice([0, 0.1], (appended, 1))])
    touched = np.concatenate([who, np.arange(n, n + appended)])
    assert state.update(who, new[touched]) == pairwise_distance_quantile(new, q)


def test_a_defended_mechanism_is_answered_after_its_transforms():
    base = bounded(n=40, seed=4)

    def floor(pop):
        return pop.with_bounds(np.maximum(pop.gamma_x, 0.5), np.maximum(pop.gamma_w, 0.1))

    mech = Mechanism("agreements", {"bounds": "declared"}).with_transform(floor)
    query = moved(base, np.random.default_rng(2), 2, 2, False)
    assert_same(counted(mech.session(base))(query), mech(query))


def test_unsupported_queries_are_solved_in_full():
    base = bounded(n=30, seed=1)
    mech = Mechanism("agreements", {"bounds": "declared"})
    ask = counted(mech.session(base))
    fewer = base.subset(np.arange(base.n - 1))
    assert_same(ask(fewer), solve_agreements(fewer, "declared"))
    many = moved(base, np.random.default_rng(0), 0, MAX_CHANGED + 1, True)
    assert_same(ask(many), solve_agreements(many, "declared"))
    assert ask.full == 2
    dual = Mechanism("agreements", {"bounds": "declared", "method": "dual"})
    query = moved(base, np.random.default_rng(1), 1, 0, False)
    assert_same(dual.session(base)(query), dual(query))


def test_session_tells_a_changed_population_from_its_base():
    base = bounded(n=40, seed=1)
    mech = Mechanism("agreements", {"bounds": "declared"})
    ask = mech.session(base)
    first = ask(base)
    assert ask(base) is first  # the baseline answer is kept for the session
    changed = ask(moved(base, np.random.default_rng(0), 3, 0, False))
    assert not np.array_equal(changed.X, first.X) or changed.n_groups != first.n_groups


def test_session_of_a_consensus_mechanism_calls_it():
    base = bounded(n=20, seed=2)
    mech = Mechanism("consensus", {"p": 2})
    query = moved(base, np.random.default_rng(3), 2, 1, False)
    ask = mech.session(base)
    assert np.array_equal(ask(query).X, mech(query).X)
    assert ask(base) is ask(base)


@pytest.mark.parametrize("name", sorted(DEFENSES))
@pytest.mark.parametrize("bounds", ["declared", "quantile:0.5"])
@pytest.mark.parametrize("compiled", [True, False])
def test_every_defended_session_answers_like_a_fresh_call(name, bounds, compiled,
                                                          monkeypatch):
    """Each defense's session (its transforms, bound rule or edge filter kept across
    queries) answers a moved population and Sybils exactly as the defended mechanism
    called afresh — including after answers to other queries — with and without the
    compiled kernels."""
    monkeypatch.setattr(kernels, "COMPILED", compiled and kernels.COMPILED)
    base = bounded(n=45, seed=3)
    mech = make_defense(name)(Mechanism("agreements", {"bounds": bounds}))
    ask = mech.session(base)
    rng = np.random.default_rng(11)
    for agents, sybils, copy in ((1, 0, False), (2, 2, True), (0, 3, False), (3, 1, False)):
        query = moved(base, rng, agents, sybils, copy)
        assert_same(ask(query), mech(query))
    assert_same(ask(base), mech(base))


@pytest.mark.parametrize("u", [2, 3, 17, 876])
def test_pair_positions_map_back_to_their_points(u):
    i, j = np.triu_indices(u, k=1)
    found = incremental.pair_ends(np.arange(i.size), u)
    assert np.array_equal(found[0], i) and np.array_equal(found[1], j)


def test_a_moved_quantile_examines_only_the_band_between_thresholds(monkeypatch):
    """When the quantile threshold moves for everyone, only the pairs between the old
    and the new threshold can change their link (:func:`band_flips`); the answers stay
    those of full solves."""
    used = []
    band = incremental.band_flips
    monkeypatch.setattr(incremental, "band_flips", lambda *a: used.append(1) or band(*a))
    base = bounded(n=60, seed=3)
    ask = Mechanism("agreements", {"bounds": "quantile:0.5"}).session(base)
    rng = np.random.default_rng(4)
    for agents, sybils in ((1, 0), (2, 1), (0, 2)):
        query = moved(base, rng, agents, sybils, False)
        assert_same(ask(query), solve_agreements(query, "quantile:0.5"))
    assert len(used) == 3
