"""Projection onto an intersection of balls within a box or the simplex, by its dual.

For the quadratic utility, a group's agreement separates into an X block and a W
block, each the Euclidean projection of the members' weighted mean c onto

    K = ∩_i B(a_i, r_i) ∩ S,   S = [−1, 1]^d (X) or Δ^m (W).

Dualising the balls only (S keeps its exact projection) gives the concave dual

    g(λ) = min_{x∈S} ½‖x − c‖² + ½ Σ_i λ_i (‖x − a_i‖² − r_i²),
    x(λ) = Π_S((c + Σ_i λ_i a_i) / (1 + Σ_i λ_i)),   ∂g/∂λ_i = ½(‖x(λ) − a_i‖² − r_i²),

maximised over λ ≥ 0 by L-BFGS-B (Byrd, Lu, Nocedal & Zhu 1995). It settles both
questions the mechanism asks:

* **feasible** — x(λ*) violates no ball by more than the tolerance: it is the
  projection, and a central common point of the group;
* **infeasible** — by weak duality g(λ) ≤ p* ≤ U = ½ min_i (‖c − a_i‖ + r_i)² for a
  non-empty K (every point of K lies in each ball), so g(λ) > U certifies K = ∅.

Neither within the iteration cap is reported as ``unknown`` (callers fall back to the
interior-point solver). Exactness on S's boundary is free: a judgement sitting at ±1
with a zero multiplier, where interior-point methods only approach as √μ, is handled
by the exact clip.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .geometry import project_simplex

FEASIBLE, INFEASIBLE, UNKNOWN = "feasible", "infeasible", "unknown"


@dataclass(frozen=True)
class Projection:
    """Outcome of :func:`project_intersection`.

    Attributes
    ----------
    x : ndarray
        x(λ) at the final multipliers (the projection when ``status == "feasible"``).
    status : {"feasible", "infeasible", "unknown"}
    violation : float
        max_i (‖x − a_i‖ − r_i), at least 0.
    multipliers : ndarray
        λ (warm start for a later call on a superset of constraints).
    """

    x: np.ndarray
    status: str
    violation: float
    multipliers: np.ndarray


def _jacobian_gram(D: np.ndarray, z: np.ndarray, x: np.ndarray, simplex: bool
                   ) -> np.ndarray:
    """D J Dᵀ with J the Jacobian of Π_S at z (box: free coordinates; simplex: the
    centring projector on the support)."""
    if simplex:
        Ds = D[:, x > 0]
        s = Ds.sum(axis=1)
        return Ds @ Ds.T - np.outer(s, s) / max(Ds.shape[1], 1)
    Df = D[:, np.abs(z) < 1.0]
    return Df @ Df.T


def _dual(c: np.ndarray, a: np.ndarray, r: np.ndarray,
          project: Callable[[np.ndarray], np.ndarray], simplex: bool, lam0: np.ndarray,
          max_iter: int) -> np.ndarray | None:
    """Maximise g over λ ≥ 0 for the given balls by projected Newton; None once g
    certifies K = ∅.

    The Hessian of g is −D J Dᵀ / (1 + Σλ), D the rows x(λ) − a_i and J the Jacobian
    of Π_S: a projected Newton method with Armijo steps along the projection arc
    (Bertsekas 1982), on the constraints not held at λ_i = 0 by a negative gradient,
    converges in a few steps when few balls bind. The Hessian has rank at most the
    dimension, so more binding balls than dimensions make it singular: a
    Levenberg–Marquardt damping, shrunk after full steps and grown after backtracking,
    keeps those steps bounded, and steps are capped at ten times 1 + Σλ (where Π_S
    clips every moving coordinate, g is locally linear in λ and the Hessian vanishes).
    It stops at a vanishing projected gradient, or after three steps that no longer
    raise g beyond rounding.
    """
    r2 = r * r
    upper = 0.5 * float(np.min(np.sqrt(((a - c) ** 2).sum(axis=1)) + r)) ** 2
    scale = max(float(r2.max()), 1e-300)

    def evaluate(lam: np.ndarray) -> tuple[float, np.ndarray, np.ndarray, np.ndarray,
                                          np.ndarray]:
        z = (c + lam @ a) / (1.0 + lam.sum())
        x = project(z)
        D = x[None, :] - a
        grad = 0.5 * (np.einsum("ij,ij->i", D, D) - r2)
        value = 0.5 * float(((x - c) ** 2).sum()) + float(lam @ grad)
        return value, grad, D, z, x

    lam = lam0.copy()
    value, grad, D, z, x = evaluate(lam)
    stagnant = 0
    damping = 1e-8  # Levenberg–Marquardt factor, adapted to the line search
    for _ in range(max_iter):
        if not np.isfinite(value):
            return lam
        if value > upper * (1 + 1e-9) + 1e-15:
            return None
        held = (lam <= 0) & (grad <= 0)
        pg = np.where(held, 0.0, grad)
        if np.abs(pg).max() <= 1e-13 * scale or stagnant >= 3:
            return lam
        free = ~held
        total = 1.0 + lam.sum()
        M = _jacobian_gram(D[free], z, x, simplex) / total
        # where S's projection clips every moving coordinate, g is locally linear in λ
        # (M = 0): the floor keeps the system regular, the cap keeps the step finite
        floor = 1e-12 * float((D[free] ** 2).sum()) / total
        M[np.diag_indices_from(M)] += damping * max(float(np.trace(M)), floor, 1e-300)
        try:
            step = np.linalg.solve(M, grad[free])
        except np.linalg.LinAlgError:
            step = np.linalg.lstsq(M, grad[free], rcond=None)[0]
        cap = 10.0 * total
        largest = float(np.abs(step).max(initial=0.0))
        if largest > cap:
            step = step * (cap / largest)
        direction = np.zeros_like(lam)
        direction[free] = step
        t = 1.0
        slack = 8 * np.finfo(float).eps * (abs(value) + scale)  # rounding of g itself
        while True:
            trial = np.maximum(lam + t * direction, 0.0)
            t_value, t_grad, t_D, t_z, t_x = evaluate(trial)
            if t_value >= value + 1e-4 * float(grad @ (trial - lam)) - slack or t < 1e-12:
                break
            t *= 0.5
        if t < 1e-12 and t_value <= value:
            # no progress along Newton: a projected gradient step instead
            trial = np.maximum(lam + grad / max(np.abs(grad).max(), 1e-300) * 1e-3, 0.0)
            t_value, t_grad, t_D, t_z, t_x = evaluate(trial)
            if t_value <= value:
                return lam
        damping = max(damping / 4, 1e-12) if t == 1.0 else min(damping * 10, 1e6)
        stagnant = stagnant + 1 if t_value - value <= slack else 0
        lam, value, grad, D, z, x = trial, t_value, t_grad, t_D, t_z, t_x
    return lam


def project_intersection(c: np.ndarray, anchors: np.ndarray, radii: np.ndarray,
                         project: Callable[[np.ndarray], np.ndarray], *,
                         tol: float = 1e-6, max_iter: int = 200,
                         batch: int = 32) -> Projection:
    """Project ``c`` onto ∩_i B(anchors_i, radii_i) ∩ S by the dual (module doc).

    Balls are brought in by *constraint generation*: the dual is solved over the
    balls violated so far (at most ``batch`` new ones per round, most violated
    first) until x(λ) violates none. Balls that do not bind leave the projection
    unchanged, so the result is the full problem's; and a subset of balls with an
    empty intersection certifies the whole is empty. Only a handful of balls bind in
    practice, which keeps the dual tiny however large the group.

    Parameters
    ----------
    c : ndarray, shape (d,)
        Point to project (a point of S).
    anchors : ndarray, shape (p, d)
        Ball centres (points of S).
    radii : ndarray, shape (p,)
        Ball radii (``np.inf`` = no constraint).
    project : callable
        Exact projection onto S: :func:`~pluralguard.core.geometry.project_box` or
        :func:`~pluralguard.core.geometry.project_simplex`.
    tol : float
        A ball may be exceeded by this much for ``feasible``.
    max_iter : int
        Newton iteration cap per round.
    batch : int
        Most balls added per round.
    """
    finite = np.isfinite(radii)
    a, r = anchors[finite], radii[finite]
    simplex = project is project_simplex
    x = project(c)
    lam_full = np.zeros(radii.shape[0])
    if a.shape[0] == 0:
        return Projection(x, FEASIBLE, 0.0, lam_full)
    working = np.zeros(0, dtype=np.int64)
    lam = np.zeros(0)
    viol_add = min(tol, 1e-12)
    for _ in range(a.shape[0]):
        excess = np.sqrt(((a - x) ** 2).sum(axis=1)) - r
        excess[working] = -np.inf
        new = np.flatnonzero(excess > viol_add)
        if new.size == 0:
            break
        new = new[np.argsort(-excess[new], kind="stable")[:batch]]
        working = np.concatenate([working, new])
        lam = np.concatenate([lam, np.zeros(new.size)])
        lam = _dual(c, a[working], r[working], project, simplex, lam, max_iter)
        if lam is None:
            return Projection(x, INFEASIBLE, float("inf"), lam_full)
        x = project((c + lam @ a[working]) / (1.0 + lam.sum()))
    viol = float(max((np.sqrt(((a - x) ** 2).sum(axis=1)) - r).max(), 0.0))
    lam_full[np.flatnonzero(finite)[working]] = lam
    return Projection(x, FEASIBLE if viol <= tol else UNKNOWN, viol, lam_full)
