"""Attack-query sessions answer exactly as a fresh call of the mechanism."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from pluralguard.core import Population
from pluralguard.core.mechanism import Mechanism
from populations import bounded


def same_outcome(a, b) -> bool:
    return (np.array_equal(a.labels, b.labels) and np.array_equal(a.X, b.X)
            and np.array_equal(a.W, b.W) and np.array_equal(a.consensus, b.consensus)
            and np.array_equal(a.utilities, b.utilities))


def moved(pop: Population, rng: np.random.Generator, agents: int, sybils: int) -> Population:
    X, W = pop.X.copy(), pop.W.copy()
    gx, gw = pop.gamma_x.copy(), pop.gamma_w.copy()
    for a in rng.choice(pop.n, agents, replace=False):
        X[a] = np.clip(X[a] + rng.normal(0, 0.3, X[a].shape), -1, 1)
        W[a] = rng.dirichlet(np.ones(pop.m))
        gx[a] *= rng.uniform(0.5, 1.5)
    out = pop.replace(X=X, W=W, gamma_x=gx, gamma_w=gw)
    if sybils:
        idx = rng.choice(pop.n, sybils, replace=False)  # names must stay unique
        extra = pop.subset(idx).replace(agents=[f"sybil{s}" for s in range(sybils)])
        out = out.append(extra)
    return out


@settings(max_examples=15, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(0, 3), st.integers(0, 3),
       st.sampled_from(["declared", "quantile:0.3", "quantile:0.5", "fixed:1.0,0.3"]))
def test_session_answers_like_a_fresh_call(seed, agents, sybils, bounds):
    base = bounded(n=40, seed=seed % 7)
    mech = Mechanism("agreements", {"bounds": bounds})
    ask = mech.session(base)
    query = moved(base, np.random.default_rng(seed), agents, sybils)
    assert same_outcome(ask(query), mech(query))
    assert same_outcome(ask(base), mech(base))


def test_session_tells_a_changed_population_from_its_base():
    base = bounded(n=40, seed=1)
    mech = Mechanism("agreements", {"bounds": "declared"})
    ask = mech.session(base)
    first = ask(base)
    assert ask(base) is first  # the baseline answer is kept for the session
    query = moved(base, np.random.default_rng(0), 3, 0)
    changed = ask(query)
    assert same_outcome(changed, mech(query)) and not same_outcome(changed, first)


def test_session_of_a_consensus_mechanism_calls_it():
    base = bounded(n=20, seed=2)
    mech = Mechanism("consensus", {"p": 2})
    query = moved(base, np.random.default_rng(3), 2, 1)
    assert np.array_equal(mech.session(base)(query).X, mech(query).X)
