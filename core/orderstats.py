"""Order statistics of distances, kept exact when a few rows change.

Attack queries differ from a known population in a few rows. Statistics the
mechanism and its defenses compute from *all* distances — each row's median
distance to the others (a depth), its distance to its k-th nearest other row (a
local scale), its k nearest neighbours (outlier scores) — then change in a few
places only. :class:`DistanceRows` keeps every row's distances to all rows sorted
once, and answers those statistics for the rows after some rows *leave* and others
*join*, exactly: the r-th smallest value of a sorted multiset from which R values
leave and to which A values join lies between the old (r − A)-th and (r + R)-th, and
is the smallest candidate whose count of values at or below it reaches r + 1 (counts
by binary search in the sorted row). The answer is the value a fresh computation
returns, bit for bit, because every distance is the same
:func:`scipy.spatial.distance.cdist` value either way.

The kernels are compiled when numba is installed (:mod:`~pluralguard.core.kernels`);
the Python path runs the same loops.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial.distance import cdist

from . import kernels
from .kernels import jit, pick


def changed_rows(base: tuple[np.ndarray, ...], rows: tuple[np.ndarray, ...]
                 ) -> np.ndarray | None:
    """Positions among the first ``len(base[0])`` rows where any array of ``rows``
    differs from ``base`` (rows beyond them are appended ones), or None when ``rows``
    has fewer rows than ``base``."""
    n0 = base[0].shape[0]
    if rows[0].shape[0] < n0:
        return None
    differ = np.zeros(n0, dtype=bool)
    for b, r in zip(base, rows, strict=True):
        head = r[:n0] != b
        differ |= head.any(axis=1) if head.ndim > 1 else head
    return np.flatnonzero(differ)


@jit
def _order_statistics(S: np.ndarray, rows: np.ndarray, removed: np.ndarray,
                      added: np.ndarray, ranks: np.ndarray, out: np.ndarray) -> None:
    """out[q, t]: the ranks[t]-th smallest (0-based) of the sorted row S[rows[q]] without
    the values removed[q] and with the values added[q] (both sorted ascending), by the
    candidate walk of the module doc."""
    n0 = S.shape[1]
    R, A = removed.shape[1], added.shape[1]
    for q in range(rows.size):
        s = S[rows[q]]
        rem, add = removed[q], added[q]
        for t in range(ranks.size):
            r = ranks[t]
            w, hi, a = max(r - A, 0), min(r + R + 1, n0), 0
            best = np.inf
            while w < hi or a < A:
                if a >= A or (w < hi and s[w] <= add[a]):
                    v = s[w]
                    w += 1
                else:
                    v = add[a]
                    a += 1
                count = (np.searchsorted(s, v, side="right")
                         - np.searchsorted(rem, v, side="right")
                         + np.searchsorted(add, v, side="right"))
                if count >= r + 1:
                    best = v
                    break
            out[q, t] = best


class DistanceRows:
    """Every row's Euclidean distances to all rows (itself included), sorted, for exact
    order statistics after rows leave and join (module doc).

    Parameters
    ----------
    rows : ndarray, shape (n, d)
        The base rows (repeats allowed).

    Attributes
    ----------
    rows : ndarray, shape (n, d)
    sorted : ndarray, shape (n, n)
        Row i's distances to rows 0..n−1, ascending.
    """

    def __init__(self, rows: np.ndarray) -> None:
        self.rows = np.array(rows, dtype=float)
        self.sorted = np.sort(cdist(self.rows, self.rows), axis=1)

    def order_statistics(self, ranks: np.ndarray, gone: np.ndarray, new: np.ndarray
                         ) -> tuple[np.ndarray, np.ndarray]:
        """The ``ranks``-th smallest distances of every row after base rows ``gone``
        (indices) leave and rows ``new`` join.

        Returns
        -------
        kept : ndarray, shape (n − |gone|, len(ranks))
            For the base rows that stay, in base order.
        joined : ndarray, shape (|new|, len(ranks))
            For the new rows.
        """
        n0 = self.rows.shape[0]
        ranks = np.asarray(ranks, dtype=np.int64)
        stay = np.ones(n0, dtype=bool)
        stay[gone] = False
        keep = np.flatnonzero(stay)
        base = self.rows
        removed = np.sort(cdist(base[keep], base[gone]), axis=1)
        added = np.sort(cdist(base[keep], new), axis=1)
        kept = np.empty((keep.size, ranks.size))
        pick(_order_statistics)(self.sorted, keep, np.ascontiguousarray(removed),
                                np.ascontiguousarray(added), ranks, kept)
        everyone = np.concatenate([base[keep], new])
        fresh = np.sort(cdist(new, everyone), axis=1)
        joined = fresh[:, ranks] if new.shape[0] else np.empty((0, ranks.size))
        return kept, joined


def _key(row: np.ndarray) -> bytes:
    return (row + 0.0).tobytes()  # +0.0: −0.0 and 0.0 are one row, as np.unique has it


class RowCounts:
    """The distinct rows of a table (as :func:`numpy.unique` finds them) and how often
    each occurs, for telling which distinct rows a few changed rows remove and add.

    Parameters
    ----------
    rows : ndarray, shape (n, d)
        One row per agent.

    Attributes
    ----------
    distinct : ndarray, shape (u, d)
        The distinct rows, in lexicographic order.
    inverse : ndarray, shape (n,)
        Each agent's distinct row.
    """

    def __init__(self, rows: np.ndarray) -> None:
        self.rows = np.array(rows, dtype=float)
        self.distinct, inverse, self.counts = np.unique(
            self.rows, axis=0, return_inverse=True, return_counts=True)
        self.inverse = inverse.ravel()
        self.ids = {_key(r): t for t, r in enumerate(self.distinct)}

    def diff(self, rows: np.ndarray, limit: int
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """How the distinct rows of ``rows`` (the base's agents first, changed or not,
        then appended ones) differ from the base's.

        Returns
        -------
        gone : ndarray of int
            Base distinct rows no agent holds any more.
        new : ndarray, shape (a, d)
            Distinct rows the base does not have.
        which : ndarray of int, shape (len(rows),)
            Each agent's row: a base distinct row, or ``u + t`` for ``new[t]``.

        None when ``rows`` is shorter than the base or more than ``limit`` agents
        changed.
        """
        changed = changed_rows((self.rows,), (rows,))
        if changed is None or changed.size + rows.shape[0] - self.rows.shape[0] > limit:
            return None
        u = self.distinct.shape[0]
        counts = self.counts.copy()
        np.subtract.at(counts, self.inverse[changed], 1)
        which = np.concatenate([self.inverse, np.zeros(rows.shape[0] - self.rows.shape[0],
                                                       dtype=np.int64)])
        fresh: dict[bytes, int] = {}
        new: list[np.ndarray] = []
        for agent in np.concatenate([changed, np.arange(self.rows.shape[0], rows.shape[0])]):
            key = _key(rows[agent])
            t = self.ids.get(key)
            if t is None:
                t = fresh.get(key)
                if t is None:
                    t = fresh[key] = u + len(new)
                    new.append(rows[agent])
            else:
                counts[t] += 1
            which[agent] = t
        joined = np.array(new, dtype=float).reshape(len(new), rows.shape[1])
        return np.flatnonzero(counts == 0), joined, which


@jit
def _nearest_rows(D: np.ndarray, first: int, k: int, idx: np.ndarray,
                  dist: np.ndarray) -> None:
    """For row q of the block D (row ``first + q`` of the table; D holds its distances to
    every row): the k nearest other rows by (distance, index), into idx[q], dist[q]."""
    for q in range(D.shape[0]):
        me = first + q
        count = 0
        for j in range(D.shape[1]):
            if j == me:
                continue
            d = D[q, j]
            if count == k and d >= dist[q, k - 1]:  # a tie comes after: j is larger
                continue
            pos = count if count < k else k - 1
            while pos > 0 and dist[q, pos - 1] > d:
                dist[q, pos] = dist[q, pos - 1]
                idx[q, pos] = idx[q, pos - 1]
                pos -= 1
            dist[q, pos] = d
            idx[q, pos] = j
            if count < k:
                count += 1


def nearest_rows(rows: np.ndarray, k: int, block: int = 512) -> tuple[np.ndarray, np.ndarray]:
    """Each row's k nearest *other* rows, ordered by (distance, index) (ties by index),
    from exact :func:`~scipy.spatial.distance.cdist` distances.

    Returns
    -------
    idx : ndarray of int, shape (n, k)
    dist : ndarray, shape (n, k)
    """
    n = rows.shape[0]
    idx = np.empty((n, k), dtype=np.int64)
    dist = np.empty((n, k))
    for s in range(0, n, block):
        D = cdist(rows[s:s + block], rows)
        if kernels.COMPILED:
            _nearest_rows(D, s, k, idx[s:s + block], dist[s:s + block])
            continue
        D[np.arange(D.shape[0]), np.arange(s, s + D.shape[0])] = np.inf  # not itself
        order = np.argsort(D, axis=1, kind="stable")[:, :k]
        idx[s:s + block] = order
        dist[s:s + block] = np.take_along_axis(D, order, axis=1)
    return idx, dist


@jit
def _merge_nearest(base_idx: np.ndarray, base_dist: np.ndarray, rows: np.ndarray,
                   gone: np.ndarray, key: np.ndarray, add_dist: np.ndarray,
                   add_order: np.ndarray, first_new: int, k: int, full: bool,
                   idx: np.ndarray, dist: np.ndarray) -> bool:
    """For base rows ``rows``: the k nearest by (distance, key) among their kept base
    neighbours (lists ``base_idx``/``base_dist``, without rows ``gone``) and the new rows
    (distances ``add_dist[q]``, visited in the order ``add_order[q]``; new row t has
    id ``first_new + t``). False when a truncated base list (``full`` False) runs out."""
    A = add_dist.shape[1]
    K = base_idx.shape[1]
    for q in range(rows.size):
        r = rows[q]
        b, a = 0, 0
        for t in range(k):
            while b < K and gone[base_idx[r, b]]:
                b += 1
            if b >= K and not full and a < A:
                # the next base neighbour is beyond the kept list: is a new row closer?
                return False
            take_base = b < K
            if take_base and a < A:
                j = add_order[q, a]
                da, db = add_dist[q, j], base_dist[r, b]
                take_base = db < da or (db == da and key[base_idx[r, b]] < key[first_new + j])
            if take_base:
                idx[q, t] = base_idx[r, b]
                dist[q, t] = base_dist[r, b]
                b += 1
            elif a < A:
                j = add_order[q, a]
                idx[q, t] = first_new + j
                dist[q, t] = add_dist[q, j]
                a += 1
            else:
                return False
    return True


class NearestRows:
    """Each distinct row's nearest other rows (:func:`nearest_rows`), kept for exact
    updates when distinct rows leave and join.

    Every row keeps its ``k + spare`` nearest, so up to ``spare`` of them may leave;
    a query's neighbours are the kept ones merged with the new rows by (distance,
    position in the query's lexicographic order of rows).

    Parameters
    ----------
    rows : ndarray, shape (u, d)
        Distinct rows in lexicographic order (:class:`RowCounts`).
    k : int
    spare : int
    """

    def __init__(self, rows: np.ndarray, k: int, spare: int) -> None:
        self.rows, self.k = rows, k
        self.K = min(k + spare, rows.shape[0] - 1)
        self.idx, self.dist = nearest_rows(rows, self.K)

    def update(self, gone: np.ndarray, new: np.ndarray
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """The k nearest of every row of the query's distinct rows (the base's without
        ``gone``, with ``new``), in the query's lexicographic order.

        Returns
        -------
        position : ndarray of int, shape (u + len(new),)
            Query index of each base row (−1 if gone) and then of each new row.
        idx, dist : ndarray, shape (u', k)
            Neighbours (query indices) and distances, by query index.

        None when a base row lost more kept neighbours than it had spare.
        """
        u0, k = self.rows.shape[0], self.k
        stay = np.ones(u0, dtype=bool)
        stay[gone] = False
        keep = np.flatnonzero(stay)
        # the query's order: new rows between the base rows around them
        key = np.concatenate([np.arange(u0, dtype=float), np.zeros(new.shape[0])])
        if new.shape[0]:
            below = np.array([int((_lex_less(self.rows[keep], r)).sum()) for r in new])
            rank = np.empty(new.shape[0], dtype=np.int64)
            rank[np.lexsort(new.T[::-1])] = np.arange(new.shape[0])
            for p in np.unique(below):
                share = np.flatnonzero(below == p)
                within = share[np.argsort(rank[share])]
                before = keep[p - 1] if p > 0 else -1
                key[u0 + within] = before + (np.arange(within.size) + 1) / (within.size + 1)
        alive = np.concatenate([keep, u0 + np.arange(new.shape[0])])
        order = alive[np.argsort(key[alive], kind="stable")]
        position = np.full(key.size, -1, dtype=np.int64)
        position[order] = np.arange(order.size)
        gone_mask = np.concatenate([~stay, np.zeros(new.shape[0], dtype=bool)])
        idx = np.empty((order.size, k), dtype=np.int64)
        dist = np.empty((order.size, k))
        # base rows: their kept lists merged with the new rows
        add = cdist(self.rows[keep], new)
        add_order = np.lexsort((np.broadcast_to(key[u0:], add.shape), add), axis=1) \
            if new.shape[0] else np.zeros(add.shape, dtype=np.int64)
        merged_idx = np.empty((keep.size, k), dtype=np.int64)
        merged_dist = np.empty((keep.size, k))
        ok = pick(_merge_nearest)(self.idx, self.dist, keep, gone_mask, key, add,
                                  np.ascontiguousarray(add_order), u0, k,
                                  self.K == u0 - 1, merged_idx, merged_dist)
        if not ok:
            return None
        idx[position[keep]] = position[merged_idx]
        dist[position[keep]] = merged_dist
        # new rows: against every row of the query
        if new.shape[0]:
            rows_now = np.concatenate([self.rows, new])[order]
            at = position[u0:]
            D = cdist(new, rows_now)
            D[np.arange(new.shape[0]), at] = np.inf  # not itself
            near = np.lexsort((np.broadcast_to(np.arange(order.size), D.shape), D),
                              axis=1)[:, :k]
            idx[at] = near
            dist[at] = np.take_along_axis(D, near, axis=1)
        return position, idx, dist


def _lex_less(rows: np.ndarray, key: np.ndarray) -> np.ndarray:
    """Which rows sort before ``key`` lexicographically (as :func:`numpy.unique` sorts)."""
    differ = rows != key
    first = np.argmax(differ, axis=1)
    at = np.arange(rows.shape[0])
    return differ[at, first] & (rows[at, first] < key[first])
