"""The initial homophily network against a brute-force reference."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest

from pluralguard.core import InputError, Population, homophily_edges
from populations import clustered


def brute_force(pop, gx, gw):
    n = pop.n
    Xf = pop.X.reshape(n, -1)
    out = set()
    for i in range(n):
        for j in range(i + 1, n):
            if (np.linalg.norm(Xf[i] - Xf[j]) <= min(gx[i], gx[j]) + 1e-6
                    and np.linalg.norm(pop.W[i] - pop.W[j]) <= min(gw[i], gw[j]) + 1e-6):
                out.add((i, j))
    return out


@pytest.mark.parametrize("k, m", [(1, 2), (6, 5)])  # k-d tree path and blocked path
def test_edges_match_brute_force(k, m):
    pop = clustered(80, k=k, m=m, seed=3)
    rng = np.random.default_rng(0)
    gx = rng.uniform(0.2, 1.5, pop.n)
    gw = rng.uniform(0.05, 0.5, pop.n)
    e = homophily_edges(pop, gx, gw)
    assert set(zip(e.i.tolist(), e.j.tolist(), strict=True)) == brute_force(pop, gx, gw)
    assert (np.diff(e.distance) >= 0).all()


def test_social_graph_restricts_links():
    pop = clustered(30, seed=1)
    g = np.full(pop.n, 10.0)
    full = homophily_edges(pop, g, g)
    assert len(full) == 30 * 29 // 2
    social = nx.path_graph(pop.agents)
    e = homophily_edges(pop, g, g, social_graph=social)
    assert set(zip(e.i.tolist(), e.j.tolist(), strict=True)) == {(i, i + 1) for i in range(29)}
    with pytest.raises(InputError, match="unknown agent"):
        homophily_edges(pop, g, g, social_graph=nx.Graph([("nobody", "agent0")]))


def test_link_degrees_count_repeated_declarations_once_each():
    """Degrees computed on the distinct points equal the agent-level network's."""
    from pluralguard.core.network import link_degrees

    base = clustered(n=40, seed=4)
    rng = np.random.default_rng(1)
    idx = rng.integers(0, base.n, 90)  # many repeated declarations
    pop = Population(X=base.X[idx], W=base.W[idx])
    gx = np.full(pop.n, 0.5)
    gw = np.where(np.arange(pop.n) % 3 == 0, 0.2, 0.3)  # same point, other bounds
    edges = homophily_edges(pop, gx, gw)
    expected = np.bincount(edges.i, minlength=pop.n) + np.bincount(edges.j, minlength=pop.n)
    degrees = link_degrees(pop, gx, gw)
    assert np.array_equal(degrees, expected)
    assert degrees.max() > 0


@pytest.mark.parametrize("dim", [3, 9, 14])  # the k-d tree path, up to 16 coordinates
def test_nearest_pairs_match_brute_force(dim):
    from pluralguard.core.network import NEAREST_KDTREE_MAX_DIM, _nearest_pairs

    assert dim <= NEAREST_KDTREE_MAX_DIM
    rng = np.random.default_rng(dim)
    points = rng.normal(size=(300, dim))
    i, j = _nearest_pairs(points, 5)
    d2 = ((points[:, None] - points[None]) ** 2).sum(-1)
    np.fill_diagonal(d2, np.inf)
    nbr = np.argsort(d2, axis=1)[:, :5]
    expect = {(min(a, b), max(a, b)) for a in range(300) for b in nbr[a]}
    assert set(zip(i.tolist(), j.tolist(), strict=True)) == expect
