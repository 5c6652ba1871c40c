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
