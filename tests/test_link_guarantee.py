"""The merge rule's guarantee, exactly as docs/design.md §3.3 states it.

No two final groups joined by a homophily link could merge — and that is all: two
groups with no link between their members may still share an acceptable point. Both
halves are checked independently of the link rule's own feasibility tests: a pair of
groups is mergeable iff the exact conic solve finds a common acceptable point of their
union, with the bounds in force.
"""

from __future__ import annotations

import itertools

import numpy as np

from pluralguard.core import datasets, solve_agreements
from pluralguard.core.convex import solve_group
from pluralguard.core.geometry import ACCEPT_TOL
from pluralguard.core.network import homophily_edges


def linked_pairs(labels: np.ndarray, i: np.ndarray, j: np.ndarray) -> set[tuple[int, int]]:
    a, b = labels[i], labels[j]
    cross = a != b
    return {(min(g, h), max(g, h)) for g, h in zip(a[cross].tolist(), b[cross].tolist(),
                                                   strict=True)}


def test_groups_are_maximal_along_links_only() -> None:
    pop = datasets.load("pve_like")
    res = solve_agreements(pop, "quantile:0.5")
    gx, gw = res.gamma_x, res.gamma_w
    edges = homophily_edges(pop, gx, gw)
    linked = linked_pairs(res.labels, edges.i, edges.j)
    members = [np.flatnonzero(res.labels == g) for g in range(res.n_groups)]

    def mergeable(g: int, h: int) -> bool:
        idx = np.concatenate([members[g], members[h]])
        sol = solve_group(pop.X[idx], pop.W[idx], np.ones(idx.size), gx[idx], gw[idx],
                          tol=ACCEPT_TOL / 10)
        return sol.feasible

    pairs = list(itertools.combinations(range(res.n_groups), 2))
    unlinked = [p for p in pairs if p not in linked]
    assert linked and unlinked
    assert not any(mergeable(g, h) for g, h in linked)
    assert any(mergeable(g, h) for g, h in unlinked)
