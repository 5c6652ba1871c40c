"""Stricter network rules against bridges: mutual k-nearest-neighbour and k-core linking.

Both act through the solver's ``edge_filter`` hook: they keep a subset of the
candidate links (the initial homophily network on the declarations, with the bounds
in force) before the link rule merges groups along them. The solver hands the filter
the *reduced* population, where identical declarations are one weighted agent, so
duplicates (and identical Sybils) count as one neighbour.

Both run as compiled passes when numba is installed (:mod:`pluralguard.core.kernels`;
the numpy forms stay for ``PLURALGUARD_PURE=1``), and the k-truss also keeps its
triangle counts across the queries of an attack session (:meth:`SharedNeighboursRule.session`):
a query changes a few links, and only the triangles through them change.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from scipy import sparse

from pluralguard.core import kernels
from pluralguard.core.kernels import jit
from pluralguard.core.linking import EdgeFilter
from pluralguard.core.mechanism import Mechanism
from pluralguard.core.model import Population
from pluralguard.core.network import Edges
from pluralguard.core.params import Constraint, Integer

from .base import Defense, Reach, keep_edges, with_edge_filter


@jit
def _mutual_nearest(i: np.ndarray, j: np.ndarray, n: int, k: int) -> np.ndarray:
    """Links (sorted closest first) among the first k of both endpoints' links."""
    seen = np.zeros(n, dtype=np.int64)
    keep = np.zeros(i.size, dtype=np.bool_)
    for e in range(i.size):
        keep[e] = seen[i[e]] < k and seen[j[e]] < k
        seen[i[e]] += 1
        seen[j[e]] += 1
    return keep


@dataclass(frozen=True)
class MutualKNNRule:
    """Edge filter: keep (i, j) iff each is among the other's k nearest candidates
    (the edges come sorted closest first, so a link's rank at a node is the number of
    that node's links before it)."""

    k: int

    def __call__(self, population: Population, edges: Edges) -> Edges:
        m = len(edges)
        if m == 0:
            return edges
        if kernels.COMPILED:
            return keep_edges(edges, _mutual_nearest(edges.i, edges.j, edges.n, int(self.k)))
        ends = np.concatenate([edges.i, edges.j])
        ids = np.concatenate([np.arange(m), np.arange(m)])  # edges are sorted closest first
        order = np.lexsort((ids, ends))  # per node, its links closest first
        sorted_ends = ends[order]
        rank = np.arange(2 * m) - np.searchsorted(sorted_ends, sorted_ends, side="left")
        near = np.zeros(2 * m, dtype=bool)
        near[order] = rank < self.k
        return keep_edges(edges, near[:m] & near[m:])  # rank at i and at j


@jit
def _adjacency(i: np.ndarray, j: np.ndarray, n: int) -> np.ndarray:
    """(n, n) matrix of link ids (−1: no link)."""
    link = np.full((n, n), -1, dtype=np.int64)
    for e in range(i.size):
        link[i[e], j[e]] = e
        link[j[e], i[e]] = e
    return link


@jit
def _supports(i: np.ndarray, j: np.ndarray, n: int) -> np.ndarray:
    """Triangles through every link, by the forward algorithm: nodes ranked by degree,
    each triangle found once from its lowest-ranked node (Schank & Wagner 2005)."""
    m = i.size
    degree = np.zeros(n, dtype=np.int64)
    for e in range(m):
        degree[i[e]] += 1
        degree[j[e]] += 1
    rank = np.empty(n, dtype=np.int64)
    rank[np.argsort(degree * n + np.arange(n))] = np.arange(n)
    ptr = np.zeros(n + 1, dtype=np.int64)  # links oriented from lower to higher rank
    for e in range(m):
        low = i[e] if rank[i[e]] < rank[j[e]] else j[e]
        ptr[low + 1] += 1
    for v in range(n):
        ptr[v + 1] += ptr[v]
    head = np.empty(m, dtype=np.int64)
    ids = np.empty(m, dtype=np.int64)
    fill = ptr[:-1].copy()
    for e in range(m):
        low, high = (i[e], j[e]) if rank[i[e]] < rank[j[e]] else (j[e], i[e])
        head[fill[low]] = high
        ids[fill[low]] = e
        fill[low] += 1
    mark = np.full(n, -1, dtype=np.int64)
    support = np.zeros(m, dtype=np.int64)
    for u in range(n):
        for t in range(ptr[u], ptr[u + 1]):
            mark[head[t]] = ids[t]
        for t in range(ptr[u], ptr[u + 1]):
            v = head[t]
            for s in range(ptr[v], ptr[v + 1]):
                w = head[s]
                if mark[w] >= 0:
                    support[ids[t]] += 1
                    support[ids[s]] += 1
                    support[mark[w]] += 1
        for t in range(ptr[u], ptr[u + 1]):
            mark[head[t]] = -1
    return support


@jit
def _peel(ends_i: np.ndarray, ends_j: np.ndarray, link: np.ndarray, support: np.ndarray,
          alive: np.ndarray, k: int) -> None:
    """Remove the links with fewer than k triangles among the live links, repeatedly
    (the k-truss peel, Cohen 2008); ``link`` (n × n link ids) and ``support`` are
    updated in place, ``alive`` marks the links kept."""
    n = link.shape[0]
    stack = np.empty(alive.size, dtype=np.int64)
    queued = np.zeros(alive.size, dtype=np.bool_)
    top = 0
    for e in range(alive.size):
        if alive[e] and support[e] < k:
            stack[top] = e
            top += 1
            queued[e] = True
    while top > 0:
        top -= 1
        e = stack[top]
        a, b = ends_i[e], ends_j[e]
        alive[e] = False
        link[a, b] = -1
        link[b, a] = -1
        for w in range(n):
            x, y = link[a, w], link[b, w]
            if x >= 0 and y >= 0:
                for f in (x, y):
                    support[f] -= 1
                    if support[f] < k and not queued[f]:
                        stack[top] = f
                        top += 1
                        queued[f] = True


@jit
def _retriangle(link: np.ndarray, support: np.ndarray, ends_i: np.ndarray,
                ends_j: np.ndarray, lost: np.ndarray, start: int) -> None:
    """Update triangle counts for links ``lost`` leaving, then the links from id
    ``start`` on joining (their ends in ``ends_i``, ``ends_j``), one at a time."""
    n = link.shape[0]
    for t in range(lost.size):
        e = lost[t]
        a, b = ends_i[e], ends_j[e]
        link[a, b] = -1
        link[b, a] = -1
        for w in range(n):
            x, y = link[a, w], link[b, w]
            if x >= 0 and y >= 0:
                support[x] -= 1
                support[y] -= 1
    for e in range(start, ends_i.size):
        a, b = ends_i[e], ends_j[e]
        count = 0
        for w in range(n):
            x, y = link[a, w], link[b, w]
            if x >= 0 and y >= 0:
                support[x] += 1
                support[y] += 1
                count += 1
        support[e] = count
        link[a, b] = e
        link[b, a] = e


@dataclass(frozen=True)
class NetworkRule(Defense):
    """Base class of the network defenses: an edge filter (:meth:`rule`) on the candidate
    links, for mechanisms with capability ``edge_filter`` (composing with other network
    rules); no-op for the others, e.g. the consensus, which has no network."""

    layer = "network"

    def rule(self) -> EdgeFilter:
        """The edge filter ``(population, Edges) -> Edges`` this defense adds."""
        raise NotImplementedError

    def apply(self, mechanism: Mechanism) -> Mechanism:
        if "edge_filter" not in mechanism.capabilities:
            return mechanism
        return with_edge_filter(mechanism, self.rule())

    def certify(self, mechanism: Mechanism, reach: Reach) -> Reach:
        """Unchanged: a network rule only removes candidate links, and the link rule
        still forms groups with a common acceptable point, whose agreement lies in every
        member's set; weights and bounds are untouched."""
        return reach


@dataclass(frozen=True)
class MutualKNN(NetworkRule):
    """A link also needs both endpoints among each other's k nearest acceptable
    neighbours (mutual k-nearest-neighbour linking).

    Idea: a bridge chain (Biggio et al., *Poisoning complete-linkage hierarchical
    clustering*, 2014; *Is data clustering in adversarial settings secure?*, AISec
    2013) joins two groups through identities spaced within the linking threshold in
    the empty space between them. An honest endpoint of the chain has many closer
    neighbours in its own group, so the chain's first link is not among its k
    nearest and is cut; a chain starting *inside* a group is not among the nearest of
    its next identity. The rule also makes the network insensitive to how large the
    threshold is beyond each agent's k nearest — an inflated quantile threshold
    (threshold shift) adds candidate links that mutual kNN drops. Mutual kNN graphs
    are a standard sparse, density-adaptive neighbourhood graph (Maier, Hein & von
    Luxburg, *Optimal construction of k-nearest-neighbor graphs for identifying noisy
    clusters*, TCS 2009).

    Parameters
    ----------
    k : int
        Neighbours each endpoint may link to (default 10).

    Assumes each honest agent's k nearest acceptable neighbours are honest members of
    its own group. Clean cost: fewer links, so groups that were connected only
    through non-mutual links split.

    Acts on mechanisms with capability ``edge_filter`` (the agreement mechanism, any
    policy; composes with other network rules). No-op for the others, e.g. the
    consensus, which has no network.
    """

    name = "mutual_knn"
    summary = "links need both endpoints among each other's k nearest (against bridges)"
    targets = ("bridge", "threshold_shift")
    assumes = "each honest agent's k nearest acceptable neighbours are honest group mates"

    k: int = 10

    PARAMS: ClassVar[dict[str, Constraint]] = {"k": Integer(1, sample=10)}

    def rule(self) -> EdgeFilter:
        return MutualKNNRule(int(self.k))


@dataclass(frozen=True)
class SharedNeighboursRule:
    """Edge filter: keep (i, j) iff i and j have at least k common neighbours among the
    kept links, removing links until that holds for every link (the (k+2)-truss)."""

    k: int

    def __call__(self, population: Population, edges: Edges) -> Edges:
        n = edges.n
        if kernels.COMPILED:
            link = _adjacency(edges.i, edges.j, n)
            support = _supports(edges.i, edges.j, n)
            keep = np.ones(len(edges), dtype=np.bool_)
            _peel(edges.i, edges.j, link, support, keep, int(self.k))
            return keep_edges(edges, keep)
        keep = np.ones(len(edges), dtype=bool)
        while keep.any():
            i, j = edges.i[keep], edges.j[keep]
            adj = sparse.coo_matrix((np.ones(2 * i.size, dtype=np.int64),
                                     (np.concatenate([i, j]), np.concatenate([j, i]))),
                                    shape=(n, n)).tocsr()
            common = np.asarray((adj @ adj)[i, j]).ravel()
            weak = common < self.k
            if not weak.any():
                break
            keep[np.flatnonzero(keep)[weak]] = False
        return keep_edges(edges, keep)

    def session(self, population: Population, edges: Edges) -> _TrussSession:
        """The filter for the queries of an attack session near (``population``,
        ``edges``): triangle counts kept and updated from the links that changed."""
        return _TrussSession(self, population, edges)


class _TrussSession:
    """:class:`SharedNeighboursRule` on candidate links near a base's: the base's
    triangle counts (before peeling) are updated for the links that left and joined,
    one link at a time (a link's triangles are its endpoints' common neighbours), then
    the peel runs on the query's links. Same links kept as the rule on the query."""

    def __init__(self, rule: SharedNeighboursRule, population: Population,
                 edges: Edges) -> None:
        self.rule = rule
        self.base = edges
        if kernels.COMPILED:
            self.link = _adjacency(edges.i, edges.j, edges.n)
            self.support = _supports(edges.i, edges.j, edges.n)

    def __call__(self, population: Population, edges: Edges, ids: np.ndarray,
                 origin: np.ndarray) -> Edges:
        """The rule on ``edges`` of the query's points, point q being base point
        ``ids[q]`` (ids from the base's count on are new points), edge e the base's
        edge ``origin[e]`` (−1: a new one)."""
        if not kernels.COMPILED:
            return self.rule(population, edges)
        base, m0 = self.base, len(self.base)
        size = max(base.n, int(ids.max(initial=-1)) + 1)
        link = np.full((size, size), -1, dtype=np.int64)
        link[: base.n, : base.n] = self.link
        stays = np.zeros(m0, dtype=bool)
        stays[origin[origin >= 0]] = True
        fresh = np.flatnonzero(origin < 0)
        ends_i = np.concatenate([base.i, ids[edges.i[fresh]]])
        ends_j = np.concatenate([base.j, ids[edges.j[fresh]]])
        support = np.concatenate([self.support, np.zeros(fresh.size, dtype=np.int64)])
        _retriangle(link, support, ends_i, ends_j, np.flatnonzero(~stays), m0)
        alive = np.concatenate([stays, np.ones(fresh.size, dtype=np.bool_)])
        _peel(ends_i, ends_j, link, support, alive, int(self.rule.k))
        which = origin.copy()
        which[fresh] = m0 + np.arange(fresh.size)
        return keep_edges(edges, alive[which])


@dataclass(frozen=True)
class KCore(NetworkRule):
    """A link also needs k shared neighbours: only links of the (k+2)-truss survive.

    Idea: the edge analogue of the k-core (Seidman 1983; the k-truss, Cohen 2008).
    Links inside a group sit in many triangles — both endpoints accept many common
    neighbours — while a bridge chain, spaced at the linking threshold, has links in
    no triangle. Links with fewer than k common neighbours are removed, repeatedly,
    until every remaining link has k; a chain survives only if its identities are
    packed densely enough to share k neighbours, which multiplies the identities it
    needs by about k. Computed by counting triangles and peeling (compiled), or with
    sparse matrix products (scipy), on the reduced population the solver works on.

    Parameters
    ----------
    k : int
        Common neighbours a link needs (default 2).

    Assumes honest group mates are densely linked (every honest link lies in k
    triangles). Clean cost: thinly connected honest agents — outliers, or members
    of small or elongated groups — lose their links and may end alone.

    Acts on mechanisms with capability ``edge_filter`` (the agreement mechanism, any
    policy; composes with other network rules). No-op for the others, e.g. the
    consensus, which has no network.
    """

    name = "kcore"
    summary = "links need k shared neighbours, repeatedly (k-truss; against bridges)"
    targets = ("bridge",)
    assumes = "honest links lie in at least k triangles of the homophily network"

    k: int = 2

    PARAMS: ClassVar[dict[str, Constraint]] = {"k": Integer(1, sample=2)}

    def rule(self) -> EdgeFilter:
        return SharedNeighboursRule(int(self.k))
