"""Link rules: how the dynamic homophily network settles into groups (DESIGN §3.3).

``merge`` (default) — *feasible agglomeration*. Start from singletons (every agent
is its own group and its declaration is a point of its own acceptable set). Visit
the edges of the initial homophily network closest first (by δ, ties by index);
for an edge joining two different groups A and B, link them — merge the groups —
iff the union's acceptable sets still intersect, ∩_{i∈A∪B} F_i ≠ ∅ (a convex
feasibility check).

*Termination and validity.* Each accepted link merges two groups, so there are at
most n − 1 merges, and every edge is visited once: the rule settles after at most
|E| checks, whatever the data (the prototype's free re-linking never did). Every
group has a common acceptable point at every step (valid by construction). If A ∪ B
is infeasible then so is every A' ∪ B' with A' ⊇ A, B' ⊇ B (intersections only
shrink), so a rejected pair never becomes mergeable later: the final partition is
*maximal along the links* — no two groups joined by a homophily edge can merge. That
is all it guarantees: groups only merge along edges, so two groups with no edge
between their members may still have a common acceptable point (on ``pve_like`` at
``quantile:0.5``, 104 of the 113 such pairs do; DESIGN §3.3). Link changes are the
accepted merges and the rejected (cut) candidate links, reported in :class:`LinkLog`.

The feasibility check runs its tests cheapest first: (0) the larger group's known
common point may already suit every member of the smaller group; (1) the segment
between the two groups' known common points (each constraint ‖x(t) − c_i‖ ≤ γ_i is a
quadratic in t, so the feasible t form an interval) — success proves feasibility;
(2) two members whose balls are disjoint, ‖c_i − c_j‖ > γ_i + γ_j — proves
infeasibility; (3) the dual projection of the union's weighted mean onto its
intersection (:mod:`~pluralguard.core.projection`), which either finds a common point
or certifies that there is none; (4) in the rare case it can tell neither, an exact
conic solve (:func:`~pluralguard.core.convex.solve_group`).

``static`` — the initial homophily components, never cut. Kept to reproduce the
prototype's finding that those components need not have a common acceptable point;
such groups are reported as not having reached consensus.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from .convex import solve_group
from .errors import InputError
from .geometry import ACCEPT_TOL, project_box, project_simplex
from .model import Population
from .network import Edges, homophily_edges
from .projection import FEASIBLE, INFEASIBLE, project_intersection

LINK_RULES = ("merge", "static")

#: A network rule: (declarations with bounds in force, candidate edges) -> kept edges.
EdgeFilter = Callable[[Population, Edges], Edges]

#: Candidate links screened together for already-merged endpoints.
CHUNK = 4096
#: Largest |A|·|B| for which the pairwise disjoint-ball test is tried.
PAIRWISE_TEST_MAX = 2_000_000


def check_link_rule(rule: str) -> str:
    """Return ``rule`` if known, else raise :class:`InputError`."""
    if rule not in LINK_RULES:
        raise InputError("link_rule", f"unknown link rule {rule!r}",
                         f"use one of {', '.join(LINK_RULES)}")
    return rule


@dataclass(frozen=True)
class LinkLog:
    """What the link rule did.

    Attributes
    ----------
    rule : str
    candidate_edges : int
        Edges of the initial homophily network.
    merges : int
        Links accepted (groups merged).
    rejected : int
        Candidate links cut because the union had no common acceptable point.
    exact_checks : int
        Feasibility checks the dual projection left undecided (solved by the conic
        solver).
    """

    rule: str
    candidate_edges: int
    merges: int
    rejected: int
    exact_checks: int


@dataclass(frozen=True)
class Partition:
    """Groups produced by a link rule.

    Attributes
    ----------
    labels : ndarray of int, shape (n,)
        Group of each agent, numbered in order of each group's smallest member.
    tree : ndarray of int, shape (n_links, 2)
        Links of the final network used for message passing: a spanning forest of
        the groups (the accepted merges; the candidate edges for ``static``).
    log : LinkLog
    """

    labels: np.ndarray
    tree: np.ndarray
    log: LinkLog

    @property
    def n_groups(self) -> int:
        return int(self.labels.max()) + 1 if self.labels.size else 0


def canonical_labels(labels: np.ndarray) -> np.ndarray:
    """Renumber groups 0, 1, … in order of their smallest member index."""
    uniq, first, inverse = np.unique(labels, return_index=True, return_inverse=True)
    rank = np.empty(uniq.size, dtype=np.int64)
    rank[np.argsort(first)] = np.arange(uniq.size)
    return rank[inverse.ravel()]


def static_partition(edges: Edges) -> Partition:
    """Connected components of the initial homophily network."""
    n = edges.n
    graph = coo_matrix((np.ones(len(edges)), (edges.i, edges.j)), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    tree = np.stack([edges.i, edges.j], axis=1)
    log = LinkLog("static", len(edges), 0, 0, 0)
    return Partition(canonical_labels(labels), tree, log)


def _segment_point(p0: np.ndarray, p1: np.ndarray, centers: np.ndarray,
                   radii: np.ndarray) -> tuple[float, float]:
    """Interval [lo, hi] ⊆ [0, 1] of t with ‖p0 + t(p1 − p0) − c_i‖ ≤ r_i for all i."""
    delta = p1 - p0
    a = float(delta @ delta)
    off = p0[None, :] - centers
    b = off @ delta
    c = np.einsum("ij,ij->i", off, off) - radii * radii
    finite = np.isfinite(radii)
    b, c = b[finite], c[finite]
    if a <= 1e-300:
        return (0.0, 1.0) if (c <= 0).all() else (1.0, 0.0)
    disc = b * b - a * c
    if (disc < 0).any():
        return 1.0, 0.0
    root = np.sqrt(disc)
    lo = max(0.0, float(((-b - root) / a).max(initial=-np.inf)))
    hi = min(1.0, float(((-b + root) / a).min(initial=np.inf)))
    return lo, hi


class _Merger:
    """State of the feasible agglomeration (union–find with group data)."""

    def __init__(self, Xf: np.ndarray, W: np.ndarray, gx: np.ndarray, gw: np.ndarray,
                 weights: np.ndarray, k: int, m: int, tol: float) -> None:
        n = Xf.shape[0]
        self.Xf, self.W, self.k, self.m = Xf, W, k, m
        self.rx, self.rw = gx + tol, gw + tol
        self.weights, self.tol = weights, tol
        self.parent = np.arange(n)
        self.members: dict[int, np.ndarray] = {i: np.array([i]) for i in range(n)}
        self.wx: dict[int, np.ndarray] = {i: Xf[i] for i in range(n)}
        self.ww: dict[int, np.ndarray] = {i: W[i] for i in range(n)}
        self.failed: dict[int, set[int]] = {}
        self.exact_checks = 0

    def find(self, i: int) -> int:
        root = i
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[i] != root:
            self.parent[i], i = root, self.parent[i]
        return root

    def roots(self) -> np.ndarray:
        """Root of every agent (vectorised pointer jumping)."""
        root = self.parent.copy()
        while True:
            nxt = root[root]
            if np.array_equal(nxt, root):
                return root
            root = nxt

    def _inside(self, group: int, x: np.ndarray, w: np.ndarray) -> bool:
        """Whether the point (x, w) lies in every member's (tolerance-widened) set."""
        idx = self.members[group]
        return bool((((self.Xf[idx] - x) ** 2).sum(axis=1) <= self.rx[idx] ** 2).all()
                    and (((self.W[idx] - w) ** 2).sum(axis=1) <= self.rw[idx] ** 2).all())

    def _feasible(self, a: int, b: int) -> tuple[np.ndarray, np.ndarray] | None:
        if self.members[a].size < self.members[b].size:
            a, b = b, a
        # cheapest first: the larger group's known common point suits the smaller one
        if self._inside(b, self.wx[a], self.ww[a]):
            return self.wx[a], self.ww[a]
        idx = np.concatenate([self.members[a], self.members[b]])
        lo_x, hi_x = _segment_point(self.wx[a], self.wx[b], self.Xf[idx], self.rx[idx])
        lo_w, hi_w = _segment_point(self.ww[a], self.ww[b], self.W[idx], self.rw[idx])
        lo, hi = max(lo_x, lo_w), min(hi_x, hi_w)
        if lo <= hi:
            t = 0.5 * (lo + hi)
            return (self.wx[a] + t * (self.wx[b] - self.wx[a]),
                    self.ww[a] + t * (self.ww[b] - self.ww[a]))
        ma, mb = self.members[a], self.members[b]
        if ma.size * mb.size <= PAIRWISE_TEST_MAX:
            for centers, radii in ((self.Xf, self.rx), (self.W, self.rw)):
                gap = (np.sqrt(((centers[ma][:, None, :] - centers[mb][None, :, :]) ** 2)
                               .sum(-1)) - radii[ma][:, None] - radii[mb][None, :])
                if (gap > 0).any():
                    return None
        # bounds widened by half the tolerance: points on the widened boundary still
        # pass the tolerance test
        w = self.weights[idx] / self.weights[idx].sum()
        px = project_intersection(w @ self.Xf[idx], self.Xf[idx], self.rx[idx] - self.tol / 2,
                                  project_box, tol=self.tol)
        if px.status == INFEASIBLE:
            return None
        pw = project_intersection(w @ self.W[idx], self.W[idx], self.rw[idx] - self.tol / 2,
                                  project_simplex, tol=self.tol)
        if pw.status == INFEASIBLE:
            return None
        if px.status == FEASIBLE and pw.status == FEASIBLE:
            return px.x, pw.x
        self.exact_checks += 1
        sol = solve_group(self.Xf[idx].reshape(-1, self.k, self.m), self.W[idx],
                          self.weights[idx], self.rx[idx] - self.tol,
                          self.rw[idx] - self.tol, inflate=self.tol / 2, tol=self.tol)
        if not sol.feasible:
            return None
        return sol.X.ravel(), sol.W

    def try_merge(self, i: int, j: int) -> bool | None:
        """Merge the groups of i and j if feasible; None if already together/known."""
        a, b = self.find(i), self.find(j)
        if a == b or b in self.failed.get(a, ()):
            return None
        witness = self._feasible(a, b)
        if witness is None:
            self.failed.setdefault(a, set()).add(b)
            self.failed.setdefault(b, set()).add(a)
            return False
        if self.members[a].size < self.members[b].size:
            a, b = b, a
        self.parent[b] = a
        self.members[a] = np.concatenate([self.members.pop(a), self.members.pop(b)])
        self.wx[a], self.ww[a] = witness
        del self.wx[b], self.ww[b]
        fb = self.failed.pop(b, set())
        fa = self.failed.setdefault(a, set())
        for c in fb:
            other = self.failed[c]
            other.discard(b)
            other.add(a)
            fa.add(c)
        return True


def merge_partition(X: np.ndarray, W: np.ndarray, gamma_x: np.ndarray, gamma_w: np.ndarray,
                    weights: np.ndarray, edges: Edges, tol: float = ACCEPT_TOL) -> Partition:
    """Feasible agglomeration along the homophily edges, closest first (module doc).

    Parameters
    ----------
    X : ndarray, shape (n, k, m)
    W : ndarray, shape (n, m)
    gamma_x, gamma_w : ndarray, shape (n,)
    weights : ndarray, shape (n,)
    edges : Edges
        Candidate links, sorted closest first.
    tol : float
        Acceptance tolerance added to every bound.
    """
    n, k, m = X.shape
    merger = _Merger(X.reshape(n, -1), W, np.asarray(gamma_x, float),
                     np.asarray(gamma_w, float), weights, k, m, tol)
    tree: list[tuple[int, int]] = []
    rejected = 0
    # Edges whose endpoints already share a group at the start of a chunk stay
    # internal (groups only grow), so only the others are visited one by one, in order.
    for start in range(0, len(edges), CHUNK):
        ei, ej = edges.i[start:start + CHUNK], edges.j[start:start + CHUNK]
        roots = merger.roots()
        cross = roots[ei] != roots[ej]
        for i, j in zip(ei[cross].tolist(), ej[cross].tolist(), strict=True):
            outcome = merger.try_merge(i, j)
            if outcome:
                tree.append((i, j))
            elif outcome is False:
                rejected += 1
    roots = np.fromiter((merger.find(i) for i in range(n)), dtype=np.int64, count=n)
    log = LinkLog("merge", len(edges), len(tree), rejected, merger.exact_checks)
    tree_arr = np.array(tree, dtype=np.int64).reshape(-1, 2)
    return Partition(canonical_labels(roots), tree_arr, log)


def settle(population: Population, gamma_x: np.ndarray, gamma_w: np.ndarray,
           link_rule: str = "merge", social_graph: object | None = None,
           edge_filter: EdgeFilter | None = None, max_links: int | None = None,
           timings: dict[str, float] | None = None) -> tuple[Edges, Partition]:
    """Initial homophily network and the partition the link rule settles into.

    Parameters
    ----------
    population : Population
        Declarations (weights are used by the feasibility solves' objective only).
    gamma_x, gamma_w : ndarray, shape (n,)
        Bounds in force.
    link_rule : {"merge", "static"}
    social_graph : networkx.Graph, optional
        Restricts which pairs may link.
    edge_filter : callable, optional
        ``edge_filter(population, edges) -> edges``: a stricter network rule (e.g.
        mutual-kNN or k-core linking) that keeps a subset of the candidate links.
    max_links : int, optional
        Sparse candidate graph for very large populations
        (:func:`~pluralguard.core.network.homophily_edges`).
    timings : dict, optional
        Receives the seconds spent building the network and settling it.
    """
    check_link_rule(link_rule)
    t0 = time.perf_counter()
    edges = homophily_edges(population, gamma_x, gamma_w, social_graph=social_graph,
                            max_links=max_links)
    if edge_filter is not None:
        edges = edge_filter(population, edges)
    t1 = time.perf_counter()
    if link_rule == "static":
        partition = static_partition(edges)
    else:
        partition = merge_partition(population.X, population.W, gamma_x, gamma_w,
                                    population.weight, edges)
    if timings is not None:
        timings["network"] = t1 - t0
        timings["linking"] = time.perf_counter() - t1
    return edges, partition
