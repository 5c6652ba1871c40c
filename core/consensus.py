"""The single-consensus ℓp baseline of Lera-Leri et al. (DESIGN §3.6).

One agreement x = (X, W) for the whole population, chosen by ℓp regression on the
declared value systems b_i = (X_i, W_i) with agent weights w_i > 0:

    minimise  U_p(x) = (Σ_i w_i Σ_e |x_e − b_{i,e}|^p)^{1/p},   1 ≤ p < ∞,
              U_∞(x) = max_{i,e} |x_e − b_{i,e}|,

where e runs over the k·m entries of X and, separately, the m entries of W. This is
Lera-Leri et al.'s ‖A x − b‖_p with the rows of agent i scaled by w_i^{1/p}
(w_i^{1/p} → 1 as p → ∞, so weights do not enter U_∞). p = 1 is their utilitarian
end (the sum of disagreements), p = ∞ the egalitarian end (the worst-off agent).

For p < ∞ the objective separates per coordinate, so every entry e is a 1-D convex
problem min_x Σ_i w_i |x − b_{i,e}|^p, solved exactly:

* p = 1: a weighted median. The optimal set is an interval [lo, hi] (a segment between
  two data points when the weight below a point equals exactly half the total);
  **tie-break: the midpoint (lo + hi)/2**.
* p = 2: the weighted mean (unique).
* 1 < p < ∞, p ≠ 2: the root of the strictly increasing derivative
  g(x) = Σ_i w_i |x − b_i|^{p−1} sign(x − b_i), by a safeguarded Newton iteration
  (Newton inside a bisection bracket, "rtsafe" of Press et al., *Numerical Recipes*,
  §9.4), vectorised over all coordinates (and over many p at once for the p-sweeps).
  Each coordinate is first mapped affinely onto [−1, 1] and each evaluation of g is
  divided by (max_i |x − b_i|)^{p−1}, so no power overflows or underflows for p in
  the hundreds; the root is located to 1e-14 in the rescaled coordinate, far below the
  1e-9 this module promises.
* p = ∞: the joint problem has the optimal value t* = max_e (max_i b_{i,e} −
  min_i b_{i,e}) / 2 and a *box* of minimisers, x_e ∈ [max_i b_{i,e} − t*,
  min_i b_{i,e} + t*]. **Tie-break: the per-coordinate mid-range
  (max_i b_{i,e} + min_i b_{i,e}) / 2**, which lies in that box and is the limit of
  the (unique) ℓp minimisers as p → ∞: per coordinate, the optimality condition
  Σ_i w_i |x − b_i|^{p−1} sign(x − b_i) = 0 is dominated by the largest residual on
  each side, which forces max_i (x − b_i) = max_i (b_i − x) in the limit (at rate
  O(log(n·w_max/w_min)/p)).

The X part and the W part are solved and scored separately (U_p_X, U_p_W). The
per-coordinate W solution is not projected: for p = 2 it is a convex combination of
points of Δ^m and for m = 2 every tie-break above is symmetric under w ↦ 1 − w, so it
lies on the simplex, but for m ≥ 3 and p ≠ 2 it generally does not
(:attr:`ConsensusResult.on_simplex` says which).

"Limit p" and "transition p" (Lera-Leri et al. 2024) locate where the ℓp consensus
stops moving towards the egalitarian end and where it is equidistant from both ends;
see :func:`limit_p` and :func:`transition_p`.

References
----------
R. X. Lera-Leri, F. Bistaffa, M. Serramia, M. Lopez-Sanchez, J. A. Rodríguez-Aguilar.
Towards pluralistic value alignment: aggregating value systems through ℓp-regression.
AAMAS 2022; and Aggregating value systems for decision support, Knowledge-Based
Systems, 2024 (code: github.com/RogerXLera/ValueSystemsAggregation, ``solve.py``).

It is one piece above ~500 lines because the three entry points (:func:`lp_consensus`,
:func:`limit_p`, :func:`transition_p`) are one computation — the per-coordinate ℓp
minimisers above, swept over p — and share its tie-breaks, its argument checks and its
result type; the sweeps are a few dozen lines on top of the solver.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import sparse

from .errors import InputError
from .geometry import accepts, check_utility
from .geometry import utility as utility_fn
from .model import RANGE_TOL, Population, check_weights, relative_weights
from .numbers import real_number
from .result import GroupReadout

#: Parts of a value system a p-sweep can target.
TARGETS = ("W", "X")

#: The root search stops when its bracket (rescaled to [−1, 1]) is below twice this.
_XTOL = 1e-14
#: Iteration cap of the safeguarded Newton search (bisection alone needs ~50).
_MAX_ITER = 300
#: Floor on scaled residuals, so t^{p−2} stays finite for p < 2 (it multiplies 0).
_TINY = 1e-300
#: Entries (problems × agents) handled per vectorised block of the root search.
_BLOCK = 1 << 21
#: p values per block of a p-sweep (blocks end the sweep early once it is decided).
_SWEEP_BLOCK = 256
#: Largest p-grid a sweep accepts.
_MAX_GRID = 1_000_000


# ------------------------------------------------------------------ validation
def check_p(p: Any) -> float:
    """Return p as a float in [1, ∞], or raise :class:`InputError` naming ``p``.

    Accepts numbers, ``float('inf')`` / ``np.inf`` and numeric strings such as
    ``"inf"`` or ``"2.5"``.
    """
    fix = "give a number p >= 1, or float('inf') / 'inf' for the minimax consensus"
    value = real_number("p", p, fix, allow_inf=True)
    if value < 1:
        raise InputError("p", f"{value:g} is below 1 (U_p is not a norm there and the "
                         "problem is not convex)", fix)
    return value


def _check_population(population: Any) -> Population:
    if not isinstance(population, Population):
        raise InputError("population", f"expected a Population, got "
                         f"{type(population).__name__}",
                         "build one with pluralguard.core.Population(X, W, ...)")
    return population


def _check_weights(population: Population, weights: Any) -> np.ndarray:
    """The agent weights as given (the population's when None; ones if it has none)."""
    if weights is None:
        n = population.n
        return np.ones(n) if population.weights is None else np.array(population.weights)
    return check_weights(weights, population.n)


def _check_positive(name: str, value: Any, fix: str) -> float:
    v = real_number(name, value, fix)
    if not v > 0:
        raise InputError(name, f"must be a finite number > 0, got {value!r}", fix)
    return v


def _target(population: Population, target: Any) -> np.ndarray:
    if not isinstance(target, str) or target not in TARGETS:
        raise InputError("target", f"unknown target {target!r}",
                         "use 'W' (value weights) or 'X' (judgements)")
    return population.W if target == "W" else population.X.reshape(population.n, -1)


def _grid(step: float, p_max: float, inclusive: bool) -> np.ndarray:
    """p = 1 + step·j, j = 1, 2, …, rounded to 10 decimals, up to p_max."""
    count = math.floor((p_max - 1.0) / step) + 1
    if count > _MAX_GRID:
        raise InputError("step", f"gives {count} grid points up to p_max={p_max:g}",
                         f"use a step of at least {(p_max - 1.0) / _MAX_GRID:.3g}")
    grid = np.round(1.0 + step * np.arange(1, count + 1), 10)
    grid = grid[grid <= p_max] if inclusive else grid[grid < p_max]
    if grid.size == 0:
        bound = "at least" if inclusive else "above"
        raise InputError("p_max", f"{p_max:g} leaves no grid point 1 + step·j",
                         f"use p_max {bound} {1.0 + step:g}")
    return grid


# ------------------------------------------------------------------ 1-D solvers
def _median_interval(B: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per column e, the optimal interval [lo, hi] of min_x Σ_i w_i |x − B[i, e]|.

    With the column sorted and C_j the cumulative weight of the j smallest entries,
    x is optimal iff the weight strictly below x and strictly above x are both at
    most half the total T: lo is the first entry with C_j ≥ T/2, hi the first with
    C_j > T/2. A cumulative weight within 4·n·ε·T of T/2 counts as a tie, so the
    result does not depend on summation order (agents' order, weight scale). With
    equal weights this is [B_((n+1)/2), B_((n+1)/2)] for odd n and
    [B_(n/2), B_(n/2+1)] for even n (order statistics), read off a plain sort.
    """
    n = B.shape[0]
    if np.all(w == w[0]):  # equal weights: the middle order statistic(s)
        Bs = np.sort(B, axis=0)
        return Bs[(n - 1) // 2], Bs[n // 2]
    cols = np.arange(B.shape[1])
    order = np.argsort(B, axis=0, kind="stable")
    C = np.cumsum(w[order], axis=0)
    total = C[-1]
    tol = 4.0 * n * np.finfo(float).eps * total
    j_lo = np.argmax(C >= 0.5 * total - tol, axis=0)
    j_hi = np.argmax(C > 0.5 * total + tol, axis=0)
    return B[order[j_lo, cols], cols], B[order[j_hi, cols], cols]


def _minimax_box(bmin: np.ndarray, bmax: np.ndarray
                 ) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray], float]:
    """Mid-range, box of minimisers and optimal value of max_{i,e} |x_e − B[i, e]|.

    From the column minima and maxima of B: the optimal value is t*, the largest
    half-range, attained by the mid-range; the minimisers form the box
    [max_i B − t*, min_i B + t*], widened by rounding so it always contains the
    mid-range.
    """
    mid = 0.5 * (bmin + bmax)
    t_star = float(np.max(0.5 * (bmax - bmin)))
    return mid, (np.minimum(bmax - t_star, mid), np.maximum(bmin + t_star, mid)), t_star


def _minimax_interval(B: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mid-range per column and the box of minimisers (:func:`_minimax_box`)."""
    mid, (lo, hi), _ = _minimax_box(B.min(axis=0), B.max(axis=0))
    return mid, lo, hi


def _newton_roots(Y: np.ndarray, w: np.ndarray, p: np.ndarray, y: np.ndarray
                  ) -> np.ndarray:
    """Roots of g_k(y) = Σ_i w_i |y − Y[k, i]|^{p_k−1} sign(y − Y[k, i]), one per row k.

    Rows of Y lie in [−1, 1] (so the root does too), p_k > 1, ``y`` holds starting
    points. g_k is evaluated as g_k / R^{p_k−1} with R = 1 + |y| = max_i |y − Y[k, i]|,
    so every scaled residual t = |y − Y|/R is in [0, 1] and nothing overflows.

    Safeguarded Newton ("rtsafe", Numerical Recipes §9.4) on a bracket [lo, hi] with
    g(lo) ≤ 0 ≤ g(hi), initially [−1, 1]: the Newton step is taken when it lands
    strictly inside the bracket and is at most half the step before the last,
    otherwise the bracket is bisected. A Newton step shorter than the tolerance is
    lengthened by the tolerance, so the next evaluation lands past the root and
    closes the bracket (as in Brent's zeroin); if it does not, the following step is
    a bisection. A root is only returned when g = 0 exactly or the bracket is
    narrower than 2·1e-14, so a tiny Newton step at a kink of g (p < 2 at a data
    point) never passes for convergence.
    """
    K = y.size
    out = np.empty(K)
    idx = np.arange(K)
    lo, hi = np.full(K, -1.0), np.full(K, 1.0)
    dx, dx_old = np.full(K, 2.0), np.full(K, 2.0)
    force = np.zeros(K, dtype=bool)
    Y, p, y = Y.copy(), p.copy(), y.copy()
    for _ in range(_MAX_ITER):
        R = 1.0 + np.abs(y)
        s = (y[:, None] - Y) / R[:, None]
        # t^{p−2}; t ≤ 1 exactly, clipped so that rounding cannot overflow t^p (p ~ 1e30)
        a = np.clip(np.abs(s), _TINY, 1.0) ** (p - 2.0)[:, None]
        g = (a * s) @ w  # Σ w t^{p−1} sign, = g / R^{p−1}
        gp = (p - 1.0) / R * (a @ w)  # its derivative in y
        lo = np.where(g < 0, y, lo)
        hi = np.where(g > 0, y, hi)
        exact = g == 0
        done = exact | (hi - lo <= 2.0 * _XTOL)
        if done.any():
            out[idx[done]] = np.where(exact, y, 0.5 * (lo + hi))[done]
            keep = ~done
            idx, Y, p, y, g, gp, lo, hi, dx, dx_old, force = (
                v[keep] for v in (idx, Y, p, y, g, gp, lo, hi, dx, dx_old, force))
            if idx.size == 0:
                return out
        step = -g / gp
        ok = ((y + step > lo) & (y + step < hi) & (np.abs(step) <= 0.5 * np.abs(dx_old))
              & ~force)
        step = np.where(ok, step, 0.5 * (lo + hi) - y)
        force = ok & (np.abs(step) < _XTOL)
        step = np.where(force, step + np.copysign(_XTOL, step), step)
        dx_old, dx = dx, step
        y = np.clip(y + step, lo, hi)
    raise RuntimeError(f"ℓp root search did not converge in {_MAX_ITER} iterations for "
                       f"{idx.size} coordinates (p = {np.unique(p)[:5]}); please report")


def _lp_minimisers(B: np.ndarray, w: np.ndarray, ps: np.ndarray) -> np.ndarray:
    """argmin_x Σ_i w_i |x − B[i, e]|^p for every p in ``ps`` (finite, > 1) and column e.

    Returns shape (len(ps), B.shape[1]). Columns are mapped onto [−1, 1] by their
    mid-range and half-range (a constant column is its own answer); starting points
    interpolate between the known ends: the weighted median (p = 1) and mean (p = 2)
    for p < 2, the mean and the mid-range (p = ∞) as 2/p for p > 2.
    """
    n, d = B.shape
    bmin, bmax = B.min(axis=0), B.max(axis=0)
    centre, half = 0.5 * (bmin + bmax), 0.5 * (bmax - bmin)
    out = np.broadcast_to(centre, (ps.size, d)).copy()
    cols = np.flatnonzero(half > 0)
    if cols.size == 0:
        return out
    Y = ((B[:, cols] - centre[cols]) / half[cols]).T  # (d', n), entries in [−1, 1]
    wn = w / w.max()
    mean = Y @ wn / wn.sum()
    med = 0.5 * np.sum(_median_interval(Y.T, wn), axis=0)
    P = ps[:, None]
    start = np.where(P < 2, med + (P - 1.0) * (mean - med), mean * (2.0 / P)).ravel()
    prob_p = np.repeat(ps, cols.size)
    prob_c = np.tile(np.arange(cols.size), ps.size)
    y = np.empty(prob_p.size)
    chunk = max(1, _BLOCK // n)
    for a in range(0, y.size, chunk):
        sl = slice(a, a + chunk)
        y[sl] = _newton_roots(Y[prob_c[sl]], wn, prob_p[sl], start[sl])
    x = centre[cols] + half[cols] * np.clip(y.reshape(ps.size, cols.size), -1.0, 1.0)
    out[:, cols] = np.clip(x, bmin[cols], bmax[cols])
    return out


def _minimiser(B: np.ndarray, w: np.ndarray, p: float) -> np.ndarray:
    """Per-column ℓp minimiser with this module's tie-breaks (module doc)."""
    if p == 1:
        return 0.5 * np.sum(_median_interval(B, w), axis=0)
    if p == 2:
        return (w @ B) / w.sum()
    if math.isinf(p):
        return _minimax_interval(B)[0]
    return _lp_minimisers(B, w, np.array([p]))[0]


def _optimal_set(B: np.ndarray, w: np.ndarray, p: float
                 ) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray] | None]:
    """Minimiser and, for p ∈ {1, ∞} (where ties occur), the per-coordinate interval."""
    if p == 1:
        lo, hi = _median_interval(B, w)
        return 0.5 * (lo + hi), (lo, hi)
    if math.isinf(p):
        mid, lo, hi = _minimax_interval(B)
        return mid, (lo, hi)
    return _minimiser(B, w, p), None


def lp_value(x: np.ndarray, B: np.ndarray, w: np.ndarray, p: float) -> float:
    """U_p = (Σ_i w_i Σ_e |x_e − B[i, e]|^p)^{1/p}, or max_{i,e} |x_e − B[i, e]| for p = ∞.

    Computed as M·(Σ_i w_i Σ_e (|x_e − B[i, e]| / M)^p)^{1/p} with M the largest
    residual, so it neither overflows nor underflows for large p.
    """
    r = np.abs(np.asarray(B) - np.asarray(x))
    M = float(r.max(initial=0.0))
    if M == 0.0:
        return 0.0
    if math.isinf(p):
        return M
    return M * float(np.sum(w @ (r / M) ** p)) ** (1.0 / p)


def _target_values(x: np.ndarray, B: np.ndarray, w: np.ndarray, p: float, split: int
                   ) -> tuple[float, float]:
    """:func:`lp_value` of the X part (columns before ``split``) and of the W part.

    At p = 1 and 2 one pass over the residuals serves both parts: they are at most 2,
    so neither sum can overflow and no scaling is needed.
    """
    if p in (1.0, 2.0):
        r = np.abs(B - x)
        col = w @ (r if p == 1.0 else r * r)
        a, b = float(col[:split].sum()), float(col[split:].sum())
        return (a, b) if p == 1.0 else (math.sqrt(a), math.sqrt(b))
    return (lp_value(x[:split], B[:, :split], w, p),
            lp_value(x[split:], B[:, split:], w, p))


def _row_pnorms(V: np.ndarray, ps: np.ndarray) -> np.ndarray:
    """‖V[j]‖_{p_j} per row, scaled by the row's largest entry."""
    A = np.abs(V)
    M = A.max(axis=1)
    safe = np.where(M > 0, M, 1.0)
    return M * np.sum((A / safe[:, None]) ** ps[:, None], axis=1) ** (1.0 / ps)


def _json_number(x: float) -> float | str:
    """``x``, or ``"inf"`` when it is infinite (U_p beyond the float range)."""
    return "inf" if math.isinf(x) else x


def _p_label(p: float) -> str:
    return "inf" if math.isinf(p) else (str(int(p)) if p.is_integer() else repr(p))


# ---------------------------------------------------------------------- result
@dataclass(frozen=True, repr=False)
class ConsensusResult(GroupReadout):
    """Outcome of :func:`lp_consensus`: one agreement for the whole population.

    The read-out mirrors :class:`~pluralguard.core.result.AgreementResult` (one group
    holding every agent), so the baseline can stand wherever the agreement solver
    stands.

    Attributes
    ----------
    labels : ndarray of int, shape (n,)
        Group of each agent: all zeros.
    X : ndarray, shape (1, k, m)
        Consensus judgements, batched like the solver's agreements
        (:attr:`agreement_X` is the unbatched (k, m) array).
    W : ndarray, shape (1, m)
        Consensus value weights, batched (:attr:`agreement_W` is the (m,) array). Not
        projected onto the simplex; see :attr:`on_simplex`.
    consensus : ndarray of bool, shape (1,)
        ``[True]``: the agreement is computed centrally, nothing to reach.
    residual : ndarray, shape (1,)
        ``[0.0]``.
    accepted : ndarray of bool, shape (n,)
        Whether each agent accepts the consensus (inside its F_i); all true without
        bounds. :attr:`membership` is the same as an (n, 1) sparse matrix.
    membership : scipy.sparse.csr_matrix of bool, shape (n, 1)
        Entry (i, 0) is true iff the consensus lies in agent i's acceptable set F_i
        (within :data:`~pluralguard.core.geometry.ACCEPT_TOL`); all true when the
        population declares no bounds.
    utilities : ndarray, shape (n,)
        Each agent's (unweighted) utility of the consensus, on its declared value
        system, with the chosen utility kind.
    converged : bool
        ``True`` (closed forms and a root search that stops at 1e-14).
    n_iter : int
        ``0`` (no message passing).
    method : str
        ``"lp:<p>"``, e.g. ``"lp:1"``, ``"lp:2.5"``, ``"lp:inf"``.
    utility : str
        Utility kind of :attr:`utilities` (``"quadratic"`` or ``"linear"``).
    p : float
        The norm exponent, in [1, ∞].
    U_p_X, U_p_W : float
        Optimal value of the X part and of the W part,
        (Σ_i w_i Σ_e |x_e − b_{i,e}|^p)^{1/p}, or max_{i,e} |x_e − b_{i,e}| at p = ∞,
        with the weights as given; ``inf`` only when that value exceeds the float range
        (weights near 1e308). The agreement itself depends only on the weights' ratios:
        it is computed with relative weights, so no sum overflows.
    on_simplex : bool
        Whether W lies on the simplex (non-negative, summing to 1, within 1e-9). Always
        true for p = 2 and for m = 2; generally false for m ≥ 3.
    weights : ndarray, shape (n,)
        Agent weights w_i used.
    agents : tuple of str
        Agent names (keys of :meth:`to_dict`).
    interval_X : tuple of two ndarrays of shape (k, m), or None
        For p = 1 and p = ∞, the per-coordinate optimal intervals (lo, hi): the
        weighted-median interval at p = 1; at p = ∞ the per-entry feasible interval at
        the optimal value t* = U_p_X. Any X with lo ≤ X ≤ hi entrywise is optimal.
        ``None`` for 1 < p < ∞ (the minimiser is unique).
    interval_W : tuple of two ndarrays of shape (m,), or None
        The same for W.
    message : str
        Human-readable summary.
    """

    labels: np.ndarray
    X: np.ndarray
    W: np.ndarray
    consensus: np.ndarray
    residual: np.ndarray
    accepted: np.ndarray
    utilities: np.ndarray
    converged: bool
    n_iter: int
    method: str
    utility: str
    p: float
    U_p_X: float
    U_p_W: float
    on_simplex: bool
    weights: np.ndarray
    agents: tuple[str, ...]
    interval_X: tuple[np.ndarray, np.ndarray] | None
    interval_W: tuple[np.ndarray, np.ndarray] | None
    message: str

    @property
    def membership(self) -> sparse.csr_matrix:
        """Overlapping membership, shape (n, 1): agent i accepts the consensus."""
        rows = np.flatnonzero(self.accepted)
        return sparse.csr_matrix((np.ones(rows.size, dtype=bool),
                                  (rows, np.zeros(rows.size, dtype=np.int64))),
                                 shape=(self.accepted.size, 1))

    @property
    def agreement_X(self) -> np.ndarray:
        """Consensus judgements, shape (k, m)."""
        return self.X[0]

    @property
    def agreement_W(self) -> np.ndarray:
        """Consensus value weights, shape (m,)."""
        return self.W[0]

    def __repr__(self) -> str:
        return (f"ConsensusResult(method={self.method!r}, n_agents={self.labels.size}, "
                f"U_p_X={self.U_p_X:.6g}, U_p_W={self.U_p_W:.6g}, "
                f"on_simplex={self.on_simplex})")

    def to_dict(self, agents: tuple[str, ...] | None = None) -> dict[str, Any]:
        """JSON-ready summary (p = ∞ is written as the string ``"inf"``)."""
        names = agents if agents is not None else self.agents

        def interval(iv: tuple[np.ndarray, np.ndarray] | None) -> dict[str, Any] | None:
            return None if iv is None else {"lo": iv[0].tolist(), "hi": iv[1].tolist()}

        accepted = self.accepted
        return {
            "n_groups": 1,
            "X": self.agreement_X.tolist(),
            "W": self.agreement_W.tolist(),
            "p": "inf" if math.isinf(self.p) else self.p,
            "U_p": {"X": _json_number(self.U_p_X), "W": _json_number(self.U_p_W)},
            "on_simplex": self.on_simplex,
            "interval": {"X": interval(self.interval_X), "W": interval(self.interval_W)},
            "labels": {name: 0 for name in names},
            "agreements": [{"group": 0, "X": self.agreement_X.tolist(),
                            "W": self.agreement_W.tolist(), "members": list(names),
                            "consensus": True, "residual": 0.0}],
            "membership": {name: [0] if accepted[i] else [] for i, name in enumerate(names)},
            "utilities": {name: float(u) for name, u in zip(names, self.utilities,
                                                            strict=True)},
            "weights": {name: float(v) for name, v in zip(names, self.weights, strict=True)},
            "converged": True,
            "n_iter": 0,
            "method": self.method,
            "utility": self.utility,
            "message": self.message,
        }


# ------------------------------------------------------------------ public API
def lp_consensus(population: Population, p: float | str = 2, weights: Any = None,
                 utility: str = "quadratic") -> ConsensusResult:
    """Single ℓp consensus of the whole population (Lera-Leri et al. 2022, 2024).

    Minimises U_p(x) = (Σ_i w_i Σ_e |x_e − b_{i,e}|^p)^{1/p} (U_∞ = max_{i,e}
    |x_e − b_{i,e}|) separately over the judgements X and the value weights W, with
    exact per-coordinate solutions (module doc): weighted median at p = 1 (tie-break:
    midpoint of the optimal interval), weighted mean at p = 2, mid-range at p = ∞
    (tie-break: per-coordinate mid-range, the p → ∞ limit), and a safeguarded Newton
    root search otherwise (accurate to better than 1e-9, robust for p up to the
    hundreds).

    Parameters
    ----------
    population : Population
        Declared value systems (and optional bounds, used only for membership).
    p : float or str
        Exponent in [1, ∞]; ``float('inf')``, ``np.inf`` and ``"inf"`` select the
        minimax consensus.
    weights : array_like, shape (n,), optional
        Positive agent weights w_i; default the population's weights (1 each if none).
    utility : {"quadratic", "linear"}
        Utility kind for :attr:`ConsensusResult.utilities`.

    Returns
    -------
    ConsensusResult

    Raises
    ------
    InputError
        For p < 1, NaN or non-numeric p, malformed weights, or an unknown utility.
    """
    population = _check_population(population)
    pv = check_p(p)
    w = _check_weights(population, weights)
    check_utility(utility)
    n, k, m = population.X.shape
    km = k * m
    B = population.flat()
    if math.isinf(pv):  # the optimal value t* is joint within a target
        bmin, bmax = B.min(axis=0), B.max(axis=0)
        xX, ivX, U_X = _minimax_box(bmin[:km], bmax[:km])
        xW, ivW, U_W = _minimax_box(bmin[km:], bmax[km:])
    else:  # separable per coordinate: X and W in one pass
        # with weights scaled by 2^-e (exact) no sum overflows; U_p scales by 2^(e/p)
        rel = relative_weights(w)
        both, interval = _optimal_set(B, rel, pv)
        xX, xW = both[:km], both[km:]
        ivX = ivW = None
        if interval is not None:
            ivX = (interval[0][:km], interval[1][:km])
            ivW = (interval[0][km:], interval[1][km:])
        factor = float(w.max() / rel.max()) ** (1.0 / pv)  # a power of two ** (1/p)
        U_X, U_W = (float(u) * factor for u in _target_values(both, B, rel, pv, km))
    X, W = xX.reshape(k, m), xW
    on_simplex = bool(W.min() >= -RANGE_TOL and abs(W.sum() - 1.0) <= RANGE_TOL)
    accepted = accepts(X, W, population.X, population.W, population.gamma_x,
                       population.gamma_w)
    label = _p_label(pv)
    return ConsensusResult(
        labels=np.zeros(n, dtype=int), X=X[None], W=W[None],
        consensus=np.array([True]), residual=np.zeros(1), accepted=accepted,
        utilities=utility_fn(X, W, population.X, population.W, utility),
        converged=True, n_iter=0, method=f"lp:{label}", utility=utility, p=pv,
        U_p_X=U_X, U_p_W=U_W,
        on_simplex=on_simplex, weights=w, agents=population.agents,
        interval_X=None if ivX is None else (ivX[0].reshape(k, m), ivX[1].reshape(k, m)),
        interval_W=ivW,
        message=f"single ℓ{label} consensus of {n} agents; W "
                f"{'on' if on_simplex else 'off'} the simplex")


def _sweep(population: Population, target: str, weights: Any, epsilon: float, step: float,
           p_max: float, inclusive: bool) -> tuple[np.ndarray, np.ndarray, float, np.ndarray]:
    """The checked arguments of a sweep over p (:func:`limit_p`, :func:`transition_p`):
    the target's coordinates, the relative weights, epsilon and the grid of p."""
    population = _check_population(population)
    B = _target(population, target)
    w = relative_weights(_check_weights(population, weights))
    eps = _check_positive("epsilon", epsilon, "give a small positive tolerance, e.g. 1e-4")
    stp = _check_positive("step", step, "give a positive grid step, e.g. 0.1")
    end = "the largest p to try, e.g. 100" if inclusive else "the grid's (excluded) end, e.g. 10"
    pmx = _check_positive("p_max", p_max, f"give {end}")
    return B, w, eps, _grid(stp, pmx, inclusive=inclusive)


def limit_p(population: Population, target: str = "W", epsilon: float = 1e-4,
            step: float = 0.1, p_max: float = 100.0, weights: Any = None) -> float:
    """Limit p (Lera-Leri et al. 2024): where the ℓp consensus has reached the ℓ∞ one.

    On the grid p = 1 + step·j, j = 1, 2, … (computed exactly as
    ``np.round(1 + step*j, 10)``, up to and including p_max), returns the first p with

        ‖x_p − x_∞‖_p / ‖x_1 − x_∞‖_1 < epsilon,

    the norms taken over the target's coordinates (``"W"``: m entries, ``"X"``: k·m
    entries). Returns 1.0 when ‖x_1 − x_∞‖_1 = 0 (the two ends coincide), and
    ``math.inf`` when no grid point up to p_max meets the criterion (raise p_max).

    x_1 and x_∞ use this module's tie-breaks (midpoint of the weighted-median
    interval, per-coordinate mid-range); Lera-Leri et al.'s code used whichever
    minimiser ECOS returned, so on tied data the two can differ. Their action target
    also stacks J⁺ and J⁻ = −J⁺, which scales this ratio by 2^{1/p − 1} relative to the
    ``"X"`` target here; for ``"W"`` (their preference target, whose diagonal entries
    are 0 at every p) the ratio is the same. ‖·‖_p is computed scaled by the largest
    entry: the unscaled (Σ|v_e|^p)^{1/p} of their code underflows to 0 once |v_e|^p
    drops below the smallest double (e.g. |v_e| ≈ 1e-5 at p ≈ 65), which ends such a
    sweep early. All grid points are solved in vectorised blocks.

    Raises
    ------
    InputError
        On an unknown target, non-positive epsilon or step, a p_max leaving no grid
        point, or malformed weights.
    """
    B, w, eps, grid = _sweep(population, target, weights, epsilon, step, p_max,
                             inclusive=True)
    x_inf = _minimiser(B, w, math.inf)
    den = float(np.sum(np.abs(_minimiser(B, w, 1.0) - x_inf)))
    if den == 0.0:
        return 1.0
    for a in range(0, grid.size, _SWEEP_BLOCK):
        ps = grid[a:a + _SWEEP_BLOCK]
        ratio = _row_pnorms(_lp_minimisers(B, w, ps) - x_inf, ps) / den
        hit = np.flatnonzero(ratio < eps)
        if hit.size:
            return float(ps[hit[0]])
    return math.inf


def transition_p(population: Population, target: str = "W", epsilon: float = 1e-4,
                 step: float = 0.1, p_max: float = 10.0, weights: Any = None) -> float:
    """Transition p (Lera-Leri et al. 2024): where x_p is equidistant from x_1 and x_∞.

    On the grid p = 1 + step·j, j = 1, 2, … (``np.round(1 + step*j, 10)``, p_max
    excluded, as in their code), evaluates

        D(p) = | ‖x_1 − x_p‖_p − ‖x_∞ − x_p‖_p |

    over the target's coordinates (``"W"`` or ``"X"``) and returns the first p with
    D(p) < epsilon; if there is none, the p minimising D (the first one on ties).

    x_1 and x_∞ use this module's tie-breaks (midpoint of the weighted-median
    interval, per-coordinate mid-range), where Lera-Leri et al. used ECOS's arbitrary
    pick among ties; and their action target stacks J⁺ and J⁻ = −J⁺, which multiplies
    D by 2^{1/p} (same zero, different threshold) relative to ``"X"`` here.

    Raises
    ------
    InputError
        As :func:`limit_p`.
    """
    B, w, eps, grid = _sweep(population, target, weights, epsilon, step, p_max,
                             inclusive=False)
    x_1 = _minimiser(B, w, 1.0)
    x_inf = _minimiser(B, w, math.inf)
    best_p, best = float(grid[0]), math.inf
    for a in range(0, grid.size, _SWEEP_BLOCK):
        ps = grid[a:a + _SWEEP_BLOCK]
        xp = _lp_minimisers(B, w, ps)
        gap = np.abs(_row_pnorms(x_1 - xp, ps) - _row_pnorms(x_inf - xp, ps))
        hit = np.flatnonzero(gap < eps)
        if hit.size:
            return float(ps[hit[0]])
        j = int(np.argmin(gap))
        if gap[j] < best:
            best_p, best = float(ps[j]), float(gap[j])
    return best_p
