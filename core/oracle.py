"""The exact oracle: a centralised convex solve of every group's problem (DESIGN §3.5).

Independent of the solver's fast paths: no merging of identical agents, one conic
program per group on the full membership, solved to interior-point precision
(:func:`~pluralguard.core.convex.solve_group`). Tests hold ``exact``, ``dual`` and
``dgd`` to it.
"""

from __future__ import annotations

from dataclasses import dataclass

import networkx as nx
import numpy as np

from .bounds import BoundPolicy, resolve_bounds
from .convex import solve_group
from .errors import InputError
from .geometry import check_utility
from .linking import canonical_labels, settle
from .model import Population


@dataclass(frozen=True)
class OracleResult:
    """Exact group optima.

    Attributes
    ----------
    labels : ndarray of int, shape (n,)
        The partition solved (given, or the link rule's).
    X : ndarray, shape (n_groups, k, m)
    W : ndarray, shape (n_groups, m)
        Optimal agreements; NaN for groups without a common acceptable point.
    feasible : ndarray of bool, shape (n_groups,)
        Whether ∩_{i∈C} F_i ≠ ∅.
    status : list of str
        The conic solver's status per group.
    """

    labels: np.ndarray
    X: np.ndarray
    W: np.ndarray
    feasible: np.ndarray
    status: list[str]

    @property
    def n_groups(self) -> int:
        return int(self.X.shape[0])


def solve_oracle(population: Population, bounds: str | BoundPolicy = "declared",
                 utility: str = "quadratic", *, labels: np.ndarray | None = None,
                 link_rule: str = "merge", social_graph: nx.Graph | None = None,
                 random_state: int = 0) -> OracleResult:
    """Solve max_{x ∈ ∩_{i∈C} F_i} Σ_{i∈C} w_i u_i(x) exactly for every group C.

    Parameters
    ----------
    population : Population
        Declarations.
    bounds : str or BoundPolicy
        Bound policy, as for :func:`~pluralguard.core.solver.solve_agreements`.
    utility : {"quadratic", "linear"}
    labels : ndarray of int, shape (n,), optional
        The partition to solve (e.g. a solver result's ``labels``). By default the
        link rule's partition of the declarations.
    link_rule : {"merge", "static"}
        Used when ``labels`` is not given.
    social_graph : networkx.Graph, optional
        Used when ``labels`` is not given.
    random_state : int
        Seed of the sampled quantile on very large populations.

    Returns
    -------
    OracleResult
    """
    check_utility(utility)
    gx, gw = resolve_bounds(population, bounds, random_state=random_state)
    n = population.n
    if labels is None:
        _, partition = settle(population.with_bounds(gx, gw), gx, gw, link_rule, social_graph)
        labels = partition.labels
    else:
        labels = np.asarray(labels)
        if labels.shape != (n,) or not np.issubdtype(labels.dtype, np.integer):
            raise InputError("labels", f"expected {n} integer group labels",
                             "pass a result's labels array")
        labels = canonical_labels(labels)
    G = int(labels.max()) + 1
    X = np.full((G, population.k, population.m), np.nan)
    W = np.full((G, population.m), np.nan)
    feasible = np.zeros(G, dtype=bool)
    status: list[str] = []
    wts = population.weight
    for g in range(G):
        idx = np.flatnonzero(labels == g)
        sol = solve_group(population.X[idx], population.W[idx], wts[idx], gx[idx], gw[idx],
                          utility=utility)
        status.append(sol.status)
        if sol.feasible:
            X[g], W[g], feasible[g] = sol.X, sol.W, True
    return OracleResult(labels=labels, X=X, W=W, feasible=feasible, status=status)
