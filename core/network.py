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
from .geometry import ACCEPT_TOL, distance_from_squares, scaled_points
from .model import Population

#: Up to this many coordinates a k-d tree finds candidate pairs within a radius.
KDTREE_MAX_DIM = 8
#: Up to this many coordinates a k-d tree finds each point's nearest others (a k-nearest
#: query prunes well further than a radius query, which must visit every point within
#: the radius; 100,000 blobs in 9 coordinates took 80 s by blocked products).
NEAREST_KDTREE_MAX_DIM = 16
#: Most candidate links materialised without ``max_links``.
MAX_CANDIDATES = 50_000_000
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


def _row_sq_distances(points: np.ndarray, i: np.ndarray, j: np.ndarray,
                      chunk: int = 16384) -> np.ndarray:
    """‖p_i − p_j‖² for index pairs, in chunks (exact differences, cache-sized)."""
    out = np.empty(i.size)
    for s in range(0, i.size, chunk):
        d = points[i[s:s + chunk]] - points[j[s:s + chunk]]
        out[s:s + chunk] = np.einsum("ij,ij->i", d, d)
    return out


def _too_many(count: int) -> InputError:
    return InputError("max_links", f"the homophily network would have {count:,} candidate "
                      f"links (over {MAX_CANDIDATES:,})",
                      "pass max_links=K to keep each agent's K nearest acceptable "
                      "neighbours (e.g. 32)")


def _pairs_within(points: np.ndarray, radius: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pairs i < j with ‖p_i − p_j‖ ≤ radius_i (superset filter, refined by the caller)."""
    n, d = points.shape
    if d <= KDTREE_MAX_DIM:
        tree = cKDTree(points)
        r = np.minimum(radius, np.sqrt(d) * 2 + 1.0)  # finite search radius
        total = int(tree.query_ball_point(points, r=r, return_length=True, workers=-1).sum())
        if total // 2 > MAX_CANDIDATES:
            raise _too_many(total // 2)
        hits = tree.query_ball_point(points, r=r, return_sorted=False, workers=-1)
        sizes = np.fromiter((len(h) for h in hits), dtype=np.int64, count=n)
        i = np.repeat(np.arange(n), sizes)
        j = np.fromiter((x for h in hits for x in h), dtype=np.int64, count=int(sizes.sum()))
        keep = i < j
        return i[keep], j[keep]
    sq = np.einsum("ij,ij->i", points, points)
    block = max(1, BLOCK_ENTRIES // max(n, 1))
    out_i, out_j = [], []
    total = 0
    for start in range(0, n, block):
        stop = min(n, start + block)
        d2 = sq[start:stop, None] + sq[None, :] - 2.0 * points[start:stop] @ points.T
        r = radius[start:stop, None]
        rows, cols = np.nonzero(d2 <= (r + 1e-9) ** 2)
        rows = rows + start
        keep = rows < cols
        total += int(keep.sum())
        if total > MAX_CANDIDATES:
            raise _too_many(total)
        out_i.append(rows[keep])
        out_j.append(cols[keep])
    return np.concatenate(out_i), np.concatenate(out_j)


def _nearest_pairs(points: np.ndarray, limit: int) -> tuple[np.ndarray, np.ndarray]:
    """Each point's ``limit`` nearest others, as pairs i < j (k-d tree or blocked)."""
    n, d = points.shape
    k = min(limit, n - 1)
    if d <= NEAREST_KDTREE_MAX_DIM:
        _, nbr = cKDTree(points).query(points, k=k + 1, workers=-1)
        nbr = nbr[:, 1:]
    else:
        sq = np.einsum("ij,ij->i", points, points)
        block = max(1, BLOCK_ENTRIES // max(n, 1))
        parts = []
        for start in range(0, n, block):
            stop = min(n, start + block)
            d2 = sq[start:stop, None] + sq[None, :] - 2.0 * points[start:stop] @ points.T
            d2[np.arange(stop - start), np.arange(start, stop)] = np.inf
            # a copy: a view would keep the block's whole argpartition alive
            parts.append(np.argpartition(d2, k - 1, axis=1)[:, :k].copy())
        nbr = np.concatenate(parts)
    i = np.repeat(np.arange(n, dtype=np.int64), k)
    j = nbr.ravel().astype(np.int64)
    code = np.sort(np.minimum(i, j) * n + np.maximum(i, j))  # pairs i < j, sorted
    code = code[np.concatenate([[True], code[1:] != code[:-1]])]
    i, j = code // n, code % n
    keep = i != j
    return i[keep], j[keep]


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
                    social_graph: nx.Graph | None = None, max_links: int | None = None,
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
    max_links : int, optional
        Keep only links among each agent's ``max_links`` nearest others (by δ): a
        sparse candidate graph for very large populations, where every mutually
        acceptable pair would not fit in memory (groups stay valid; maximality then
        holds with respect to this graph). Default: every acceptable pair, with an
        error suggesting ``max_links`` beyond :data:`MAX_CANDIDATES` candidates.
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
    elif max_links is not None:
        if max_links < 1:
            raise InputError("max_links", f"{max_links} is not a positive number of links",
                             "pass e.g. max_links=32")
        i, j = _nearest_pairs(scaled_points(Xf, W), int(max_links))
    else:
        # candidates from the higher-dimensional block, refined on both blocks below
        i, j = _pairs_within(Xf, np.asarray(gamma_x) + tol)
    dx2, dw2 = _row_sq_distances(Xf, i, j), _row_sq_distances(W, i, j)
    keep = (dx2 <= (np.minimum(gamma_x[i], gamma_x[j]) + tol) ** 2) & \
           (dw2 <= (np.minimum(gamma_w[i], gamma_w[j]) + tol) ** 2)
    i, j = i[keep], j[keep]
    dist = distance_from_squares(dx2[keep], dw2[keep], population.k, population.m)
    order = np.lexsort((j, i, dist))
    return Edges(i=i[order].astype(np.int64), j=j[order].astype(np.int64),
                 distance=dist[order], n=n)


def distinct_declarations(population: Population, gamma_x: np.ndarray,
                          gamma_w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Agents with identical declarations and bounds, as one representative each.

    Returns ``(index, inverse)``: ``index[u]`` is the first agent of distinct point u
    (points in lexicographic order) and ``inverse[i]`` the point of agent i, so
    ``index[inverse]`` maps every agent to its representative.
    """
    n = population.n
    key = np.concatenate([population.X.reshape(n, -1), population.W,
                          np.asarray(gamma_x, float)[:, None],
                          np.asarray(gamma_w, float)[:, None]], axis=1)
    _, index, inverse = np.unique(key, axis=0, return_index=True, return_inverse=True)
    return index, inverse.ravel()


def link_degrees(population: Population, gamma_x: np.ndarray, gamma_w: np.ndarray, *,
                 tol: float = ACCEPT_TOL) -> np.ndarray:
    """Each agent's degree in the initial homophily network (no social graph).

    Agents with identical declarations and bounds are one point u of multiplicity c_u
    (identical agents always link), so the network is built on the distinct points
    only and agent i at point u has degree Σ_{v ~ u} c_v + c_u − 1. Populations of
    survey answers repeat themselves (39,939 ESS-8 respondents hold a few hundred
    distinct value systems), where the agent-level network would not fit in memory.

    Parameters
    ----------
    population : Population
        Declared value systems.
    gamma_x, gamma_w : ndarray, shape (n,)
        Bounds in force.
    tol : float
        Acceptance tolerance.

    Returns
    -------
    ndarray of float, shape (n,)
        Degrees.
    """
    gamma_x, gamma_w = np.asarray(gamma_x, float), np.asarray(gamma_w, float)
    index, inverse = distinct_declarations(population, gamma_x, gamma_w)
    count = np.bincount(inverse).astype(float)
    edges = homophily_edges(population.subset(index), gamma_x[index], gamma_w[index], tol=tol)
    u = index.size
    degree = (np.bincount(edges.i, weights=count[edges.j], minlength=u)
              + np.bincount(edges.j, weights=count[edges.i], minlength=u) + count - 1)
    return degree[inverse]

