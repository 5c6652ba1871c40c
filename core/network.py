"""The homophily network (DESIGN §3.1).

Agents i and j are linked iff each accepts the other's proposal. Initially proposals
are the declarations, so the rule is

    ‖X̂_i − X̂_j‖_F ≤ min(γᵢˣ, γⱼˣ)  and  ‖Ŵ_i − Ŵ_j‖₂ ≤ min(γᵢʷ, γⱼʷ)

(each up to the acceptance tolerance). An optional social graph restricts which
pairs may ever link. Candidate pairs come from a k-d tree in low dimension and from
blocked matrix products in high dimension (trees prune nothing in ~35 dimensions);
no dense n×n matrix is ever formed.
"""

from __future__ import annotations

from dataclasses import dataclass

import networkx as nx
import numpy as np
from scipy.spatial import cKDTree

from .errors import InputError
from .geometry import ACCEPT_TOL, normalised_distance
from .model import Population

#: Up to this many coordinates a k-d tree finds candidate pairs.
KDTREE_MAX_DIM = 8
#: Entries per block of the blocked distance computation.
BLOCK_ENTRIES = 4_000_000


@dataclass(frozen=True)
class Edges:
    """Undirected edges i < j, sorted by (distance, i, j).

    Attributes
    ----------
    i, j : ndarray of int
        Endpoints.
    distance : ndarray of float
        Normalised distance δ between the endpoints' declarations.
    n : int
        Number of agents.
    """

    i: np.ndarray
    j: np.ndarray
    distance: np.ndarray
    n: int

    def __len__(self) -> int:
        return int(self.i.size)

    def to_networkx(self) -> nx.Graph:
        """The network as a :class:`networkx.Graph` on agent indices 0..n-1."""
        g = nx.Graph()
        g.add_nodes_from(range(self.n))
        g.add_edges_from(zip(self.i.tolist(), self.j.tolist(), strict=True))
        return g


def _pairs_within(points: np.ndarray, radius: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pairs i < j with ‖p_i − p_j‖ ≤ radius_i (superset filter, refined by the caller)."""
    n, d = points.shape
    if d <= KDTREE_MAX_DIM:
        tree = cKDTree(points)
        r = np.minimum(radius, np.sqrt(d) * 2 + 1.0)  # finite search radius
        hits = tree.query_ball_point(points, r=r, return_sorted=False)
        sizes = np.fromiter((len(h) for h in hits), dtype=np.int64, count=n)
        i = np.repeat(np.arange(n), sizes)
        j = np.fromiter((x for h in hits for x in h), dtype=np.int64, count=int(sizes.sum()))
        keep = i < j
        return i[keep], j[keep]
    sq = np.einsum("ij,ij->i", points, points)
    block = max(1, BLOCK_ENTRIES // max(n, 1))
    out_i, out_j = [], []
    for start in range(0, n, block):
        stop = min(n, start + block)
        d2 = sq[start:stop, None] + sq[None, :] - 2.0 * points[start:stop] @ points.T
        r = radius[start:stop, None]
        mask = d2 <= (r + 1e-9) ** 2
        rows, cols = np.nonzero(mask)
        rows = rows + start
        keep = rows < cols
        out_i.append(rows[keep])
        out_j.append(cols[keep])
    return np.concatenate(out_i), np.concatenate(out_j)


def _social_pairs(population: Population, social_graph: nx.Graph) -> tuple[np.ndarray,
                                                                            np.ndarray]:
    index = {name: t for t, name in enumerate(population.agents)}
    ii, jj = [], []
    for a, b in social_graph.edges():
        ia = index.get(a, a if isinstance(a, int | np.integer) else None)
        ib = index.get(b, b if isinstance(b, int | np.integer) else None)
        if ia is None or ib is None or not (0 <= ia < population.n and 0 <= ib < population.n):
            raise InputError("social_graph", f"edge ({a!r}, {b!r}) names an unknown agent",
                             "label social-graph nodes by agent name or index 0..n-1")
        if ia != ib:
            ii.append(min(ia, ib))
            jj.append(max(ia, ib))
    if not ii:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    pairs = np.unique(np.array([ii, jj]).T, axis=0)
    return pairs[:, 0], pairs[:, 1]


def homophily_edges(population: Population, gamma_x: np.ndarray, gamma_w: np.ndarray, *,
                    social_graph: nx.Graph | None = None,
                    tol: float = ACCEPT_TOL) -> Edges:
    """Initial homophily network on the declarations.

    Parameters
    ----------
    population : Population
        Declared value systems.
    gamma_x, gamma_w : ndarray, shape (n,)
        Bounds in force (see :func:`~pluralguard.core.bounds.resolve_bounds`).
    social_graph : networkx.Graph, optional
        If given, only its edges may link (nodes: agent names or indices).
    tol : float
        Acceptance tolerance.

    Returns
    -------
    Edges
        Mutually acceptable pairs, sorted by (δ, i, j).
    """
    n = population.n
    Xf = population.X.reshape(n, -1)
    W = population.W
    if social_graph is not None:
        i, j = _social_pairs(population, social_graph)
    else:
        # candidates from the higher-dimensional block, refined on both blocks below
        i, j = _pairs_within(Xf, np.asarray(gamma_x) + tol)
    dx = np.sqrt(((Xf[i] - Xf[j]) ** 2).sum(axis=1))
    dw = np.sqrt(((W[i] - W[j]) ** 2).sum(axis=1))
    keep = (dx <= np.minimum(gamma_x[i], gamma_x[j]) + tol) & \
           (dw <= np.minimum(gamma_w[i], gamma_w[j]) + tol)
    i, j = i[keep], j[keep]
    dist = normalised_distance(population.X[i], W[i], population.X[j], W[j])
    order = np.lexsort((j, i, dist))
    return Edges(i=i[order].astype(np.int64), j=j[order].astype(np.int64),
                 distance=dist[order], n=n)
