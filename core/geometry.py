"""Distances, utilities and exact projections onto acceptable sets (DESIGN §2–3).

Notation: a value system is (X, W) with X ∈ [−1, 1]^{k×m}, W ∈ Δ^m. Distances are
the Frobenius norm ‖X − X'‖_F and the Euclidean norm ‖W − W'‖₂; the *normalised
squared distance* is

    δ(x, y)² = ½ (‖X − Y‖²_F / D_X² + ‖W − W'‖²₂ / D_W²),  D_X = 2√(km),  D_W = √2,

so δ ∈ [0, 1] (D_X and D_W are the diameters of [−1, 1]^{k×m} and Δ^m). Utilities:

* ``quadratic`` (default): u(x) = 1 − δ(x, v)²; a group's optimum is a projected mean;
* ``linear``: u(x) = 1 − δ(x, v); a group's optimum is a projected geometric median.

All functions broadcast over leading axes, so they work on one value system or on
arrays of them; X arrays have shape (..., k, m) and W arrays (..., m).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from . import kernels
from .errors import InputError

UTILITIES = ("quadratic", "linear")

#: Agent i accepts x iff x ∈ F_i up to this slack on each norm (DESIGN §2).
ACCEPT_TOL = 1e-6

#: Diameter of the simplex Δ^m in the Euclidean norm.
D_W = float(np.sqrt(2.0))


def check_utility(utility: str) -> str:
    """Return ``utility`` if it names a known utility, else raise :class:`InputError`."""
    if not isinstance(utility, str) or utility not in UTILITIES:
        raise InputError("utility", f"unknown utility {utility!r}",
                         f"use one of {', '.join(UTILITIES)}")
    return utility


def diameter_x(k: int, m: int) -> float:
    """D_X = 2√(km), the Frobenius diameter of [−1, 1]^{k×m}."""
    return 2.0 * math.sqrt(k * m)


def scaled_diameters(k: int, m: int) -> tuple[float, float]:
    """(√2 D_X, √2 D_W): in the *scaled coordinates* y = (vec(X)/(√2 D_X), W/(√2 D_W))
    the normalised distance δ is the Euclidean distance, both blocks isotropic."""
    return math.sqrt(2.0) * diameter_x(k, m), math.sqrt(2.0) * D_W


def scale_factors(k: int, m: int) -> tuple[float, float]:
    """(c_X, c_W) = (1/(√2 D_X), 1/(√2 D_W)), the factors of :func:`scaled_diameters`'
    coordinates (y = (c_X vec(X), c_W W))."""
    sx, sw = scaled_diameters(k, m)
    return 1.0 / sx, 1.0 / sw


def scaled_points(Xf: np.ndarray, W: np.ndarray) -> np.ndarray:
    """Rows ``[vec(X_i)/(√2 D_X), W_i/(√2 D_W)]`` of flattened judgements ``Xf`` (n, km)
    and value weights ``W`` (n, m): their Euclidean distance is δ
    (:func:`scaled_diameters`)."""
    m = W.shape[1]
    sx, sw = scaled_diameters(Xf.shape[1] // m, m)
    return np.concatenate([Xf / sx, W / sw], axis=1)


def distance_from_squares(dx2: np.ndarray, dw2: np.ndarray, k: int, m: int) -> np.ndarray:
    """δ = √(½(dx2/D_X² + dw2/D_W²)) from the squared block distances
    ``dx2`` = ‖ΔX‖²_F and ``dw2`` = ‖ΔW‖²₂."""
    return np.sqrt(0.5 * (dx2 / diameter_x(k, m) ** 2 + dw2 / D_W**2))


def sq_dist_x(XA: np.ndarray, XB: np.ndarray) -> np.ndarray:
    """‖XA − XB‖²_F over the last two axes."""
    d = np.asarray(XA) - np.asarray(XB)
    return np.einsum("...ij,...ij->...", d, d)


def sq_dist_w(WA: np.ndarray, WB: np.ndarray) -> np.ndarray:
    """‖WA − WB‖²₂ over the last axis."""
    d = np.asarray(WA) - np.asarray(WB)
    return np.einsum("...i,...i->...", d, d)


def normalised_sq_distance(XA: np.ndarray, WA: np.ndarray,
                           XB: np.ndarray, WB: np.ndarray) -> np.ndarray:
    """δ² = ½(‖XA − XB‖²_F / D_X² + ‖WA − WB‖² / D_W²) ∈ [0, 1]."""
    k, m = np.shape(XA)[-2:]
    return (0.5 / diameter_x(k, m) ** 2) * sq_dist_x(XA, XB) + (0.5 / D_W**2) * sq_dist_w(WA, WB)


def normalised_distance(XA: np.ndarray, WA: np.ndarray,
                        XB: np.ndarray, WB: np.ndarray) -> np.ndarray:
    """δ(x, y) ∈ [0, 1], see :func:`normalised_sq_distance`."""
    return np.sqrt(normalised_sq_distance(XA, WA, XB, WB))


def utility(X: np.ndarray, W: np.ndarray, X_ref: np.ndarray, W_ref: np.ndarray,
            kind: str = "quadratic") -> np.ndarray:
    """Utility of agreement (X, W) for agents whose value systems are (X_ref, W_ref).

    ``quadratic``: 1 − δ²; ``linear``: 1 − δ. Unweighted: multiply by the agents'
    weights for weighted welfare.
    """
    d2 = normalised_sq_distance(X, W, X_ref, W_ref)
    return 1.0 - (d2 if check_utility(kind) == "quadratic" else np.sqrt(d2))


# ----------------------------------------------------------------- projections
def project_box(Y: np.ndarray) -> np.ndarray:
    """Projection onto [−1, 1]^d (coordinate-wise clipping)."""
    return np.clip(Y, -1.0, 1.0)


def project_simplex(Y: np.ndarray) -> np.ndarray:
    """Euclidean projection of each row onto the probability simplex.

    Sort-based algorithm (Held, Wolfe & Crowder 1974; Duchi et al. 2008):
    Π_Δ(y) = max(y − θ, 0) with θ chosen so the result sums to one.
    """
    Y = np.asarray(Y, dtype=float)
    shape = Y.shape
    m = shape[-1]
    Y2 = Y.reshape(-1, m)
    u = np.sort(Y2, axis=1)[:, ::-1]
    css = np.cumsum(u, axis=1)
    css -= 1.0
    # the support is a prefix of the sorted entries: count where u_k > css_k / k
    rho = np.count_nonzero(u * np.arange(1, m + 1) > css, axis=1) - 1
    theta = css[np.arange(Y2.shape[0]), rho] / (rho + 1.0)
    return np.maximum(Y2 - theta[:, None], 0.0).reshape(shape)


def _outside_ball(Y: np.ndarray, C: np.ndarray, gamma: np.ndarray,
                  project: Callable[[np.ndarray], np.ndarray]
                  ) -> tuple[tuple[int, ...], np.ndarray, np.ndarray, np.ndarray, np.ndarray,
                             np.ndarray]:
    """The set's projection of the rows of Y, and the rows it leaves outside their ball.

    Returns Y's shape, X = Π_S(rows of Y), the indices of the rows with
    ‖X − c‖ > γ, and for those rows c, v = y − c and γ² (the start of
    :func:`project_ball_box` and :func:`project_ball_simplex`).
    """
    Y = np.asarray(Y, dtype=float)
    C = np.asarray(C, dtype=float)
    shape = Y.shape
    d = shape[-1]
    Yf = Y.reshape(-1, d)
    Cf = np.broadcast_to(C, shape).reshape(-1, d)
    g = np.broadcast_to(np.asarray(gamma, dtype=float), shape[:-1]).reshape(-1)
    X = project(Yf)
    out = np.flatnonzero(sq_dist_w(X, Cf) > g * g)
    return shape, X, out, Cf[out], Yf[out] - Cf[out], g[out] ** 2


def project_ball_box(Y: np.ndarray, C: np.ndarray, gamma: np.ndarray) -> np.ndarray:
    """Projection of rows of Y onto {x ∈ [−1, 1]^d : ‖x − c‖ ≤ γ} (c in the box).

    The solution is x(s) = clip(c + s(y − c), −1, 1) with s = 1/(1 + μ) ∈ (0, 1]
    (DESIGN §3). Coordinate j moves linearly, s·v_j with v = y − c, until it hits
    its bound b_j at s_j = (b_j − c_j)/v_j, then stays at b_j − c_j, so

        ‖x(s) − c‖² = s² Σ_{s_j ≥ s} v_j² + Σ_{s_j < s} (b_j − c_j)²

    is piecewise quadratic in s. Sorting the breakpoints gives the segment where it
    crosses γ² and the root s = √((γ² − B)/A) in closed form — exact, no iteration.
    """
    shape, X, out, c, v, g2 = _outside_ball(Y, C, gamma, project_box)
    if out.size == 0:
        return X.reshape(shape)
    bound = np.where(v > 0, 1.0, -1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        s_hit = np.where(v != 0, (bound - c) / v, np.inf)
    s_hit = np.minimum(s_hit, np.inf)
    order = np.argsort(s_hit, axis=1)
    s_sorted = np.take_along_axis(s_hit, order, axis=1)
    lin = np.take_along_axis(v * v, order, axis=1)
    sat = np.take_along_axis((bound - c) ** 2, order, axis=1)
    # A_t = Σ_{u ≥ t} lin_u (still moving at s_t), B_t = Σ_{u < t} sat_u (stopped)
    A = np.cumsum(lin[:, ::-1], axis=1)[:, ::-1]
    B = np.concatenate([np.zeros((out.size, 1)), np.cumsum(sat, axis=1)[:, :-1]], axis=1)
    finite = np.isfinite(s_sorted)
    reach = np.where(finite, np.where(finite, s_sorted, 0.0) ** 2 * A + B, np.inf) \
        >= g2[:, None]
    t = np.argmax(reach, axis=1)  # first breakpoint at or beyond the radius
    At = np.take_along_axis(A, t[:, None], axis=1)[:, 0]
    Bt = np.take_along_axis(B, t[:, None], axis=1)[:, 0]
    s = np.sqrt(np.maximum(g2 - Bt, 0.0) / At)
    X[out] = project_box(c + s[:, None] * v)
    return X.reshape(shape)


def project_ball_simplex(Y: np.ndarray, C: np.ndarray, gamma: np.ndarray,
                         iterations: int = 60) -> np.ndarray:
    """Projection of rows of Y onto {w ∈ Δ^m : ‖w − c‖ ≤ γ} (c on the simplex).

    KKT (DESIGN §3): the solution is Π_Δ((y + μc)/(1 + μ)), μ ≥ 0, i.e.
    x(s) = Π_Δ(c + s(y − c)) with s = 1/(1 + μ) ∈ (0, 1], and ‖x(s) − c‖ is
    non-decreasing in s. On an interval of s where the support S of x(s) is fixed,
    x_k(s) − c_k = s(v_k − v̄_S) − θ₀ on S (v = y − c, v̄_S the mean of v over S,
    θ₀ = (Σ_S c − 1)/|S|) and −c_k off S, so

        ‖x(s) − c‖² = s² Σ_S (v_k − v̄_S)² + |S| θ₀² + Σ_{k∉S} c_k²

    (the cross term vanishes: Σ_S (v_k − v̄_S) = 0) and its root in s is closed-form.
    Active-set iteration: solve on the current support, recompute the support there,
    repeat until it no longer changes (exact; a handful of rounds), safeguarded by a
    bracket [feasible, infeasible] and bisection. The feasible end of the bracket is
    returned if the cap is hit.
    """
    shape, X, out, c, v, g2 = _outside_ball(Y, C, gamma, project_simplex)
    if out.size == 0:
        return X.reshape(shape)
    lo, hi = np.zeros(out.size), np.ones(out.size)
    support = X[out] > 0
    best = np.zeros(out.size)
    todo = np.arange(out.size)
    for _ in range(iterations):
        S, cc, vv = support[todo], c[todo], v[todo]
        size = S.sum(axis=1)
        theta0 = ((cc * S).sum(axis=1) - 1.0) / size
        vbar = (vv * S).sum(axis=1) / size
        A = (((vv - vbar[:, None]) * S) ** 2).sum(axis=1)
        rest = g2[todo] - size * theta0**2 - ((cc * ~S) ** 2).sum(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            s = np.sqrt(np.maximum(rest, 0.0) / A)
        inside = (s > lo[todo]) & (s < hi[todo]) & np.isfinite(s)
        s = np.where(inside, s, 0.5 * (lo[todo] + hi[todo]))
        x = project_simplex(cc + s[:, None] * vv)
        f = sq_dist_w(x, cc) - g2[todo]
        feasible = f <= 0
        lo[todo] = np.where(feasible, s, lo[todo])
        hi[todo] = np.where(feasible, hi[todo], s)
        new_support = x > 0
        settled = (np.all(new_support == S, axis=1) & inside) | \
            (np.abs(f) <= 1e-13 * (1.0 + g2[todo])) | (hi[todo] - lo[todo] <= 1e-15)
        best[todo] = np.where(settled & ~feasible, s, lo[todo])
        support[todo] = new_support
        todo = todo[~settled]
        if todo.size == 0:
            break
    X[out] = project_simplex(c + best[:, None] * v)
    return X.reshape(shape)


def project_acceptable(X: np.ndarray, W: np.ndarray, X_center: np.ndarray,
                       W_center: np.ndarray, gamma_x: np.ndarray | None,
                       gamma_w: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Project each agent's point (X_i, W_i) onto its acceptable set F_i.

    F_i is a product set, so the X part and the W part are projected separately.
    ``gamma_x = None`` means no bound (projection onto the box / simplex only).
    """
    n = X.shape[0]
    Xf = X.reshape(n, -1)
    Cf = X_center.reshape(n, -1)
    if gamma_x is None:
        Xp, Wp = project_box(Xf), project_simplex(W)
    elif kernels.COMPILED:  # the same projections, row by row (passing_kernel)
        from .passing_kernel import project_rows

        rows = np.arange(n, dtype=np.int64)
        Xp, Wp = np.empty_like(Xf, dtype=float), np.empty_like(W, dtype=float)
        for out, y, c, g, box in ((Xp, Xf, Cf, gamma_x, True), (Wp, W, W_center, gamma_w,
                                                                 False)):
            project_rows(np.ascontiguousarray(y, dtype=float), out, out, rows,
                         np.ascontiguousarray(c, dtype=float),
                         np.asarray(g, dtype=float), box, False)
    else:
        Xp = project_ball_box(Xf, Cf, gamma_x)
        Wp = project_ball_simplex(W, W_center, gamma_w)
    return Xp.reshape(X.shape), Wp


def accepts(X: np.ndarray, W: np.ndarray, X_center: np.ndarray, W_center: np.ndarray,
            gamma_x: np.ndarray | None, gamma_w: np.ndarray | None,
            tol: float = ACCEPT_TOL) -> np.ndarray:
    """Whether agents with centres (X_center, W_center) and bounds accept (X, W).

    Broadcasts: ``X`` may be one agreement (k, m) or one per agent (n, k, m).
    Membership in the box / simplex is not re-checked (agreements are produced
    inside them).
    """
    if gamma_x is None:
        return np.ones(np.shape(X_center)[0], dtype=bool)
    dx = np.sqrt(sq_dist_x(X, X_center))
    dw = np.sqrt(sq_dist_w(W, W_center))
    return (dx <= gamma_x + tol) & (dw <= gamma_w + tol)
