"""Stricter network rules against bridges: mutual k-nearest-neighbour and k-core linking.

Both act through the solver's ``edge_filter`` hook: they keep a subset of the
candidate links (the initial homophily network on the declarations, with the bounds
in force) before the link rule merges groups along them. The solver hands the filter
the *reduced* population, where identical declarations are one weighted agent, so
duplicates (and identical Sybils) count as one neighbour.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from scipy import sparse

from pluralguard.core.mechanism import Mechanism
from pluralguard.core.model import Population
from pluralguard.core.network import Edges
from pluralguard.core.params import Constraint, Integer

from .base import Defense, Reach, keep_edges, with_edge_filter


@dataclass(frozen=True)
class MutualKNNRule:
    """Edge filter: keep (i, j) iff each is among the other's k nearest candidates."""

    k: int

    def __call__(self, population: Population, edges: Edges) -> Edges:
        m = len(edges)
        if m == 0:
            return edges
        ends = np.concatenate([edges.i, edges.j])
        ids = np.concatenate([np.arange(m), np.arange(m)])  # edges are sorted closest first
        order = np.lexsort((ids, ends))  # per node, its links closest first
        sorted_ends = ends[order]
        rank = np.arange(2 * m) - np.searchsorted(sorted_ends, sorted_ends, side="left")
        near = np.zeros(2 * m, dtype=bool)
        near[order] = rank < self.k
        return keep_edges(edges, near[:m] & near[m:])  # rank at i and at j


@dataclass(frozen=True)
class MutualKNN(Defense):
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
    layer = "network"
    targets = ("bridge", "threshold_shift")
    assumes = "each honest agent's k nearest acceptable neighbours are honest group mates"

    k: int = 10

    PARAMS: ClassVar[dict[str, Constraint]] = {"k": Integer(1, sample=10)}

    def apply(self, mechanism: Mechanism) -> Mechanism:
        if "edge_filter" not in mechanism.capabilities:
            return mechanism
        return with_edge_filter(mechanism, MutualKNNRule(int(self.k)))

    def certify(self, mechanism: Mechanism, reach: Reach) -> Reach:
        """Unchanged: a network rule only removes candidate links, and the link rule
        still forms groups with a common acceptable point, whose agreement lies in every
        member's set; weights and bounds are untouched."""
        return reach


@dataclass(frozen=True)
class SharedNeighboursRule:
    """Edge filter: keep (i, j) iff i and j have at least k common neighbours among the
    kept links, removing links until that holds for every link (the (k+2)-truss)."""

    k: int

    def __call__(self, population: Population, edges: Edges) -> Edges:
        keep = np.ones(len(edges), dtype=bool)
        n = edges.n
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


@dataclass(frozen=True)
class KCore(Defense):
    """A link also needs k shared neighbours: only links of the (k+2)-truss survive.

    Idea: the edge analogue of the k-core (Seidman 1983; the k-truss, Cohen 2008).
    Links inside a group sit in many triangles — both endpoints accept many common
    neighbours — while a bridge chain, spaced at the linking threshold, has links in
    no triangle. Links with fewer than k common neighbours are removed, repeatedly,
    until every remaining link has k; a chain survives only if its identities are
    packed densely enough to share k neighbours, which multiplies the identities it
    needs by about k. Computed with sparse matrix products (scipy), cheap on the
    reduced population the solver works on.

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
    layer = "network"
    targets = ("bridge",)
    assumes = "honest links lie in at least k triangles of the homophily network"

    k: int = 2

    PARAMS: ClassVar[dict[str, Constraint]] = {"k": Integer(1, sample=2)}

    def apply(self, mechanism: Mechanism) -> Mechanism:
        if "edge_filter" not in mechanism.capabilities:
            return mechanism
        return with_edge_filter(mechanism, SharedNeighboursRule(int(self.k)))

    def certify(self, mechanism: Mechanism, reach: Reach) -> Reach:
        """Unchanged: a network rule only removes candidate links, and the link rule
        still forms groups with a common acceptable point, whose agreement lies in every
        member's set; weights and bounds are untouched."""
        return reach
