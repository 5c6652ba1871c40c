"""Centralised convex solve of one group's problem (the exact oracle's engine).

For a group C of agents with declared value systems v_i = (X_i, W_i), weights w_i and
bounds γ_i, the mechanism's agreement is (DESIGN §3.2)

    x* = argmax_{x ∈ ∩_{i∈C} F_i}  Σ_{i∈C} w_i u_i(x),

a convex program over x = (X, W) with one second-order-cone constraint per bound,
X ∈ [−1, 1]^{k×m} and W ∈ Δ^m. With the quadratic utility it is a QP with SOC
constraints (the projection of the weighted mean onto the intersection); with the
linear utility, a weighted geometric median under the same constraints (SOCP with
one epigraph variable per agent). Both are handed to Clarabel, an interior-point
conic solver (Goulart & Chen 2024), which also certifies infeasibility (∩F_i = ∅).

Interior-point solutions approach a boundary only as √μ where strict complementarity
fails — e.g. a judgement sitting exactly at ±1 with a zero multiplier, common in
clipped survey data. Quadratic-utility solutions are therefore *polished* by the
dual projection of :mod:`~pluralguard.core.projection`, which handles the box and the
simplex by their exact projections; the polished point is kept unless it violates a
bound by more than the interior-point one or :data:`POLISH_SLACK`. Linear-utility
solutions (geometric medians, whose objective is flat near its optimum: an objective
within 1e-11 leaves the point ~1e-6 away) are polished by Newton's method on the KKT
equations of the constraints the interior-point solution holds, kept only when their
KKT conditions are certified (:func:`~pluralguard.core.median.polish`).
"""

from __future__ import annotations

from dataclasses import dataclass

import clarabel
import numpy as np
from scipy import sparse

from .geometry import D_W, diameter_x, project_box, project_simplex
from .median import OPTIMAL, polish
from .projection import project_intersection

_SOLVED = {"Solved", "AlmostSolved"}
#: A polished point may exceed a bound by this much (far below the acceptance tolerance).
POLISH_SLACK = 1e-9


@dataclass(frozen=True)
class GroupSolution:
    """Outcome of one group solve.

    Attributes
    ----------
    X : ndarray, shape (k, m) or None
        Agreement judgements (None when infeasible).
    W : ndarray, shape (m,) or None
        Agreement value weights.
    feasible : bool
        Whether a point of ∩F_i was found (within ``tol`` of every bound).
    status : str
        Clarabel's status.
    max_violation : float
        Largest excess of ‖X − X_i‖ over γᵢˣ (or W over γᵢʷ) at the returned point.
    """

    X: np.ndarray | None
    W: np.ndarray | None
    feasible: bool
    status: str
    max_violation: float


def _violation(Xf: np.ndarray, W_members: np.ndarray, gamma_x: np.ndarray | None,
               gamma_w: np.ndarray | None, X: np.ndarray, W: np.ndarray) -> float:
    """Largest excess of a member's distance over its bound at (X, W), or 0."""
    if gamma_x is None:
        return 0.0
    vx = np.sqrt(((Xf - X) ** 2).sum(axis=1)) - gamma_x
    vw = np.sqrt(((W_members - W) ** 2).sum(axis=1)) - gamma_w
    return float(max(vx.max(), vw.max(), 0.0))


def _settings() -> clarabel.DefaultSettings:
    s = clarabel.DefaultSettings()
    s.verbose = False
    s.tol_gap_abs = 1e-11
    s.tol_gap_rel = 1e-11
    s.tol_feas = 1e-11
    s.tol_infeas_abs = 1e-10
    s.tol_infeas_rel = 1e-10
    s.tol_ktratio = 1e-9
    s.max_iter = 200
    return s


def _unique_constraints(centers: np.ndarray, radii: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    finite = np.isfinite(radii)
    stacked = np.concatenate([centers[finite], radii[finite, None]], axis=1)
    if stacked.shape[0] == 0:
        return centers[:0], radii[:0]
    uniq = np.unique(stacked, axis=0)
    return uniq[:, :-1], uniq[:, -1]


def _ball_block(centers: np.ndarray, radii: np.ndarray, offset: int, n_var: int
                ) -> tuple[sparse.csc_matrix, np.ndarray, list[int]]:
    """Rows of A z + s = b with s ∈ SOC: s = (γ_i, c_i − z[offset:offset+d])."""
    p, d = centers.shape
    rows = (np.arange(p)[:, None] * (d + 1) + 1 + np.arange(d)[None, :]).ravel()
    cols = np.tile(offset + np.arange(d), p)
    A = sparse.csc_matrix((np.ones(p * d), (rows, cols)), shape=(p * (d + 1), n_var))
    b = np.concatenate([radii[:, None], centers], axis=1).ravel()
    return A, b, [d + 1] * p


def solve_group(X_members: np.ndarray, W_members: np.ndarray, weights: np.ndarray,
                gamma_x: np.ndarray | None, gamma_w: np.ndarray | None,
                utility: str = "quadratic", inflate: float = 0.0,
                tol: float = 1e-6) -> GroupSolution:
    """Maximise the group's weighted utility over the intersection of acceptable sets.

    Parameters
    ----------
    X_members : ndarray, shape (p, k, m)
    W_members : ndarray, shape (p, m)
    weights : ndarray, shape (p,)
    gamma_x, gamma_w : ndarray, shape (p,), or None for unbounded agents
    utility : {"quadratic", "linear"}
    inflate : float
        Added to every bound (a fraction of the acceptance tolerance decides
        feasibility robustly when the intersection is a single point; keep it below
        ``tol``, since a projection lands on the widened boundary).
    tol : float
        A returned point counts as feasible if it violates no bound by more than this.

    Returns
    -------
    GroupSolution
    """
    p, k, m = X_members.shape
    dx = k * m
    Xf = X_members.reshape(p, dx)
    wsum = float(weights.sum())
    Dx2, Dw2 = diameter_x(k, m) ** 2, D_W**2
    linear = utility == "linear"
    n_var = dx + m + (p if linear else 0)

    blocks_A: list[sparse.spmatrix] = []
    blocks_b: list[np.ndarray] = []
    cones: list = []
    # simplex: sum(W) = 1, W >= 0 ; box: -1 <= X <= 1
    blocks_A.append(sparse.csc_matrix((np.ones(m), (np.zeros(m, int), dx + np.arange(m))),
                                      shape=(1, n_var)))
    blocks_b.append(np.ones(1))
    cones.append(clarabel.ZeroConeT(1))
    eye_x = sparse.eye(dx, n_var, format="csc")
    eye_w = sparse.eye(m, n_var, k=dx, format="csc")
    blocks_A += [eye_x, -eye_x, -eye_w]
    blocks_b += [np.ones(dx), np.ones(dx), np.zeros(m)]
    cones.append(clarabel.NonnegativeConeT(2 * dx + m))

    if gamma_x is not None:
        for centers, radii, offset in ((Xf, gamma_x, 0), (W_members, gamma_w, dx)):
            c, r = _unique_constraints(centers, np.asarray(radii, float) + inflate)
            if c.shape[0]:
                A, b, dims = _ball_block(c, r, offset, n_var)
                blocks_A.append(A)
                blocks_b.append(b)
                cones += [clarabel.SecondOrderConeT(d) for d in dims]

    if linear:
        # t_i >= ‖((X - X_i)/(√2 D_X), (W - W_i)/(√2 D_W))‖ ; minimise Σ w_i t_i / Σw
        sx, sw = 1.0 / np.sqrt(2 * Dx2), 1.0 / np.sqrt(2 * Dw2)
        d = dx + m
        rows_t = np.arange(p) * (d + 1)
        rows_v = (np.arange(p)[:, None] * (d + 1) + 1 + np.arange(d)[None, :]).ravel()
        scale = np.concatenate([np.full(dx, sx), np.full(m, sw)])
        A = sparse.csc_matrix(
            (np.concatenate([-np.ones(p), np.tile(scale, p)]),
             (np.concatenate([rows_t, rows_v]),
              np.concatenate([dx + m + np.arange(p), np.tile(np.arange(d), p)]))),
            shape=(p * (d + 1), n_var))
        b = np.concatenate([np.zeros((p, 1)),
                            np.concatenate([Xf, W_members], axis=1) * scale], axis=1).ravel()
        blocks_A.append(A)
        blocks_b.append(b)
        cones += [clarabel.SecondOrderConeT(d + 1)] * p
        P = sparse.csc_matrix((n_var, n_var))
        q = np.concatenate([np.zeros(dx + m), weights / wsum])
    else:
        # Σ w_i δ_i² / Σw = ½ z'Pz + q'z + const
        P = sparse.diags(np.concatenate([np.full(dx, 1.0 / Dx2), np.full(m, 1.0 / Dw2)]),
                         format="csc")
        xbar = weights @ Xf / wsum
        wbar = weights @ W_members / wsum
        q = -np.concatenate([xbar / Dx2, wbar / Dw2])

    A = sparse.vstack(blocks_A, format="csc")
    b = np.concatenate(blocks_b)
    solver = clarabel.DefaultSolver(sparse.triu(P, format="csc"), q, A, b, cones, _settings())
    sol = solver.solve()
    status = str(sol.status).split(".")[-1]
    z = np.asarray(sol.x, dtype=float)
    if z.size < dx + m or not np.isfinite(z[: dx + m]).all():
        return GroupSolution(None, None, False, status, float("inf"))
    X = project_box(z[:dx])
    W = project_simplex(z[dx:dx + m])
    viol = _violation(Xf, W_members, gamma_x, gamma_w, X, W)
    if not linear and gamma_x is not None and status in _SOLVED:
        rx, rw = np.asarray(gamma_x, float) + inflate, np.asarray(gamma_w, float) + inflate
        PX = project_intersection(xbar, Xf, rx, project_box).x
        PW = project_intersection(wbar, W_members, rw, project_simplex).x
        pviol = _violation(Xf, W_members, gamma_x, gamma_w, PX, PW)
        if pviol <= max(viol, POLISH_SLACK):
            X, W, viol = PX, PW, pviol
    if linear and gamma_x is not None and status in _SOLVED and p > 1:
        rx, rw = np.asarray(gamma_x, float) + inflate, np.asarray(gamma_w, float) + inflate
        sharp = polish(X_members, W_members, weights, rx, rw, X, W)
        if sharp.status == OPTIMAL:
            X, W = sharp.X.ravel(), sharp.W
            viol = _violation(Xf, W_members, gamma_x, gamma_w, X, W)
    feasible = viol <= tol and (status in _SOLVED or "Infeasible" not in status)
    if not feasible:
        return GroupSolution(None, None, False, status, viol)
    return GroupSolution(X.reshape(k, m), W, True, status, viol)


def deepest_point(points: np.ndarray, radii: np.ndarray) -> tuple[np.ndarray, float]:
    """The point farthest inside the intersection of the balls B(p_i, r_i), and its depth.

    The second-order cone program max t s.t. ‖x − p_i‖ + t ≤ r_i (Chebyshev's centre of
    the intersection), solved by Clarabel: the most robust common point of a group's
    acceptable sets, which stays common when the bounds shrink by less than t. With
    equal radii it is the centre of the smallest ball enclosing the points. Balls with
    an infinite radius constrain nothing; a negative depth means the balls have no
    common point.
    """
    finite = np.isfinite(radii)
    points, radii = points[finite], np.asarray(radii, float)[finite]
    p, d = points.shape
    if p == 0:
        return np.zeros(d), float("inf")
    rows = (np.arange(p)[:, None] * (d + 1) + 1 + np.arange(d)[None, :]).ravel()
    # s_i = (r_i − t, p_i − x) in the second-order cone: s = b − A z, z = (x, t)
    A_x = sparse.csc_matrix((np.ones(p * d), (rows, np.tile(np.arange(d), p))),
                            shape=(p * (d + 1), d + 1))
    A_t = sparse.csc_matrix((np.ones(p), (np.arange(p) * (d + 1), np.full(p, d))),
                            shape=(p * (d + 1), d + 1))
    b = np.concatenate([radii[:, None], points], axis=1).ravel()
    q = np.zeros(d + 1)
    q[d] = -1.0
    solver = clarabel.DefaultSolver(sparse.csc_matrix((d + 1, d + 1)), q, (A_x + A_t).tocsc(),
                                    b, [clarabel.SecondOrderConeT(d + 1)] * p, _settings())
    centre = np.asarray(solver.solve().x, dtype=float)[:d]
    if not np.isfinite(centre).all():  # pragma: no cover - a degenerate solve
        centre = points.mean(axis=0)
    return centre, float((radii - np.sqrt(((points - centre) ** 2).sum(axis=1))).min())
