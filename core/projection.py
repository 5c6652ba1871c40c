"""Projection onto an intersection of balls within a box or the simplex, by its dual.

For the quadratic utility, a group's agreement separates into an X block and a W
block, each the Euclidean projection of the members' weighted mean c onto

    K = ∩_i B(a_i, r_i) ∩ S,   S = [−1, 1]^d (X) or Δ^m (W).

Dualising the balls only (S keeps its exact projection) gives the concave dual

    g(λ) = min_{x∈S} ½‖x − c‖² + ½ Σ_i λ_i (‖x − a_i‖² − r_i²),
    x(λ) = Π_S((c + Σ_i λ_i a_i) / (1 + Σ_i λ_i)),   ∂g/∂λ_i = ½(‖x(λ) − a_i‖² − r_i²),

maximised over λ ≥ 0 by a projected Newton method (:func:`_dual`). It settles both
questions the mechanism asks:

* **feasible** — x(λ*) violates no ball by more than the tolerance: it is the
  projection, and a central common point of the group;
* **infeasible** — by weak duality g(λ) ≤ p* ≤ U = ½ min_i (‖c − a_i‖ + r_i)² for a
  non-empty K (every point of K lies in each ball), so g(λ) > U certifies K = ∅.

Neither within the iteration cap is reported as ``unknown`` (callers fall back to the
interior-point solver). The method runs as a compiled kernel when numba is installed
(:mod:`~pluralguard.core.kernels`). Exactness on S's boundary is free: a judgement sitting at ±1
with a zero multiplier, where interior-point methods only approach as √μ, is handled
by the exact clip.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from . import kernels
from .geometry import project_simplex
from .kernels import jit
from .passing_kernel import simplex_into

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
        λ (warm start for a later call on a superset of constraints); for
        ``infeasible``, the multipliers whose dual value certifies it.
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


@jit
def _project_set(z: np.ndarray, simplex: bool) -> np.ndarray:
    """Π_S(z): clipping to [−1, 1] or the sort-based simplex projection (geometry)."""
    if not simplex:
        return np.minimum(np.maximum(z, -1.0), 1.0)
    out = np.empty_like(z)
    simplex_into(z, out, np.empty_like(z))
    return out


@jit
def _solve_damped(M: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    """Solve M s = rhs for a symmetric positive definite (damped) M by Cholesky; where
    rounding leaves a pivot non-positive, that direction gets no step."""
    p = rhs.size
    L = np.zeros((p, p))
    for i in range(p):
        for j in range(i + 1):
            acc = M[i, j]
            for q in range(j):
                acc -= L[i, q] * L[j, q]
            if i == j:
                L[i, i] = np.sqrt(acc) if acc > 0 else 0.0
            elif L[j, j] > 0:
                L[i, j] = acc / L[j, j]
    y = np.zeros(p)
    for i in range(p):
        acc = rhs[i]
        for q in range(i):
            acc -= L[i, q] * y[q]
        y[i] = acc / L[i, i] if L[i, i] > 0 else 0.0
    out = np.zeros(p)
    for i in range(p - 1, -1, -1):
        acc = y[i]
        for q in range(i + 1, p):
            acc -= L[q, i] * out[q]
        out[i] = acc / L[i, i] if L[i, i] > 0 else 0.0
    return out


@jit
def _evaluate(c: np.ndarray, a: np.ndarray, r2: np.ndarray, lam: np.ndarray,
              simplex: bool) -> tuple[float, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """g(λ), its gradient, the rows x(λ) − a_i, z and x(λ) (see :func:`_dual`)."""
    p, d = a.shape
    z = c.copy()
    total = 1.0
    for i in range(p):
        total += lam[i]
        for t in range(d):
            z[t] += lam[i] * a[i, t]
    for t in range(d):
        z[t] /= total
    x = _project_set(z, simplex)
    D = np.empty((p, d))
    grad = np.empty(p)
    value = 0.0
    for t in range(d):
        value += 0.5 * (x[t] - c[t]) ** 2
    for i in range(p):
        acc = 0.0
        for t in range(d):
            D[i, t] = x[t] - a[i, t]
            acc += D[i, t] * D[i, t]
        grad[i] = 0.5 * (acc - r2[i])
        value += lam[i] * grad[i]
    return value, grad, D, z, x


@jit
def _gram(D: np.ndarray, z: np.ndarray, x: np.ndarray, simplex: bool) -> np.ndarray:
    """D J Dᵀ (:func:`_jacobian_gram`), compiled."""
    p, d = D.shape
    M = np.zeros((p, p))
    sums = np.zeros(p)
    kept = 0
    for t in range(d):
        if (x[t] > 0) if simplex else (abs(z[t]) < 1.0):
            kept += 1
            for i in range(p):
                sums[i] += D[i, t]
                for j in range(i + 1):
                    M[i, j] += D[i, t] * D[j, t]
    for i in range(p):
        for j in range(i + 1):
            if simplex:
                M[i, j] -= sums[i] * sums[j] / max(kept, 1)
            M[j, i] = M[i, j]
    return M


@jit
def _dual_kernel(c: np.ndarray, a: np.ndarray, r: np.ndarray, simplex: bool,
                 lam0: np.ndarray, max_iter: int) -> tuple[np.ndarray, bool]:
    """:func:`_dual`, compiled: (λ, whether g certified K = ∅ at λ)."""
    r2 = r * r
    upper = 0.5 * np.min(np.sqrt(((a - c) ** 2).sum(axis=1)) + r) ** 2
    scale = max(r2.max(), 1e-300)
    lam = lam0.copy()
    value, grad, D, z, x = _evaluate(c, a, r2, lam, simplex)
    stagnant = 0
    damping = 1e-8
    eps = np.finfo(np.float64).eps
    for _ in range(max_iter):
        if not np.isfinite(value):
            return lam, False
        if value > upper * (1 + 1e-9) + 1e-15:
            return lam, True
        held = (lam <= 0) & (grad <= 0)
        pg = np.where(held, 0.0, grad)
        if np.abs(pg).max() <= 1e-13 * scale or stagnant >= 3:
            return lam, False
        free = np.flatnonzero(~held)
        total = 1.0 + lam.sum()
        Df = D[free]
        M = _gram(Df, z, x, simplex) / total
        floor = 1e-12 * (Df ** 2).sum() / total
        bump = damping * max(np.trace(M), floor, 1e-300)
        for t in range(free.size):
            M[t, t] += bump
        step = _solve_damped(M, grad[free])
        cap = 10.0 * total
        largest = np.abs(step).max() if step.size else 0.0
        if largest > cap:
            step = step * (cap / largest)
        direction = np.zeros_like(lam)
        direction[free] = step
        t = 1.0
        slack = 8 * eps * (abs(value) + scale)
        while True:
            trial = np.maximum(lam + t * direction, 0.0)
            t_value, t_grad, t_D, t_z, t_x = _evaluate(c, a, r2, trial, simplex)
            if t_value >= value + 1e-4 * (grad @ (trial - lam)) - slack or t < 1e-12:
                break
            t *= 0.5
        if t < 1e-12 and t_value <= value:
            trial = np.maximum(lam + grad / max(np.abs(grad).max(), 1e-300) * 1e-3, 0.0)
            t_value, t_grad, t_D, t_z, t_x = _evaluate(c, a, r2, trial, simplex)
            if t_value <= value:
                return lam, False
        damping = max(damping / 4, 1e-12) if t == 1.0 else min(damping * 10, 1e6)
        stagnant = stagnant + 1 if t_value - value <= slack else 0
        lam, value, grad, D, z, x = trial, t_value, t_grad, t_D, t_z, t_x
    return lam, False


@jit
def _project_kernel(c: np.ndarray, a: np.ndarray, r: np.ndarray, simplex: bool, tol: float,
                    max_iter: int, batch: int, warm: np.ndarray
                    ) -> tuple[np.ndarray, int, float, np.ndarray]:
    """Constraint generation around :func:`_dual_kernel` (see
    :func:`project_intersection`); balls all finite. Status 0 feasible, 1 infeasible,
    2 unknown; λ over all balls."""
    p = a.shape[0]
    lam_full = np.zeros(p)
    in_work = warm > 0
    working = np.flatnonzero(in_work)
    lam = warm[working].copy()
    if working.size:
        aw = np.ascontiguousarray(a[working])
        lam, empty = _dual_kernel(c, aw, r[working], simplex, lam, max_iter)
        if empty:
            lam_full[working] = lam
            return _project_set(c, simplex), 1, np.inf, lam_full
        x = _project_set((c + lam @ aw) / (1.0 + lam.sum()), simplex)
    else:
        x = _project_set(c, simplex)
    viol_add = min(tol, 1e-12)
    for _ in range(p):
        excess = np.sqrt(((a - x) ** 2).sum(axis=1)) - r
        new = np.flatnonzero((excess > viol_add) & ~in_work)
        if new.size == 0:
            break
        new = new[np.argsort(-excess[new])[:batch]]
        in_work[new] = True
        working = np.concatenate((working, new))
        lam = np.concatenate((lam, np.zeros(new.size)))
        aw = np.ascontiguousarray(a[working])
        lam, empty = _dual_kernel(c, aw, r[working], simplex, lam, max_iter)
        if empty:
            lam_full[working] = lam
            return x, 1, np.inf, lam_full
        x = _project_set((c + lam @ aw) / (1.0 + lam.sum()), simplex)
    viol = max((np.sqrt(((a - x) ** 2).sum(axis=1)) - r).max(), 0.0)
    lam_full[working] = lam
    return x, 0 if viol <= tol else 2, viol, lam_full


def _dual(c: np.ndarray, a: np.ndarray, r: np.ndarray,
          project: Callable[[np.ndarray], np.ndarray], simplex: bool, lam0: np.ndarray,
          max_iter: int) -> tuple[np.ndarray, bool]:
    """Maximise g over λ ≥ 0 for the given balls by projected Newton: (λ, whether g
    certifies K = ∅ at λ).

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
            return lam, False
        if value > upper * (1 + 1e-9) + 1e-15:
            return lam, True
        held = (lam <= 0) & (grad <= 0)
        pg = np.where(held, 0.0, grad)
        if np.abs(pg).max() <= 1e-13 * scale or stagnant >= 3:
            return lam, False
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
                return lam, False
        damping = max(damping / 4, 1e-12) if t == 1.0 else min(damping * 10, 1e6)
        stagnant = stagnant + 1 if t_value - value <= slack else 0
        lam, value, grad, D, z, x = trial, t_value, t_grad, t_D, t_z, t_x
    return lam, False


def project_intersection(c: np.ndarray, anchors: np.ndarray, radii: np.ndarray,
                         project: Callable[[np.ndarray], np.ndarray], *,
                         tol: float = 1e-6, max_iter: int = 200,
                         batch: int = 32, warm: np.ndarray | None = None) -> Projection:
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
    warm : ndarray, shape (p,), optional
        Multipliers to start from (e.g. a previous call's on nearby radii); the balls
        with a positive one start in the working set.
    """
    finite = np.isfinite(radii)
    a, r = anchors[finite], radii[finite]
    simplex = project is project_simplex
    lam_full = np.zeros(radii.shape[0])
    if a.shape[0] == 0:
        return Projection(project(c), FEASIBLE, 0.0, lam_full)
    start = np.zeros(a.shape[0]) if warm is None else np.asarray(warm, float)[finite]
    if kernels.COMPILED:
        x, code, viol, lam = _project_kernel(np.ascontiguousarray(c, dtype=float),
                                             np.ascontiguousarray(a, dtype=float),
                                             np.ascontiguousarray(r, dtype=float), simplex,
                                             float(tol), int(max_iter), int(batch), start)
        lam_full[finite] = lam
        return Projection(x, (FEASIBLE, INFEASIBLE, UNKNOWN)[code], float(viol), lam_full)
    working = np.flatnonzero(start > 0)
    lam = start[working]
    x = project(c)
    if working.size:
        lam, empty = _dual(c, a[working], r[working], project, simplex, lam, max_iter)
        if empty:
            lam_full[np.flatnonzero(finite)[working]] = lam
            return Projection(x, INFEASIBLE, float("inf"), lam_full)
        x = project((c + lam @ a[working]) / (1.0 + lam.sum()))
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
        lam, empty = _dual(c, a[working], r[working], project, simplex, lam, max_iter)
        if empty:
            lam_full[np.flatnonzero(finite)[working]] = lam
            return Projection(x, INFEASIBLE, float("inf"), lam_full)
        x = project((c + lam @ a[working]) / (1.0 + lam.sum()))
    viol = float(max((np.sqrt(((a - x) ** 2).sum(axis=1)) - r).max(), 0.0))
    lam_full[np.flatnonzero(finite)[working]] = lam
    return Projection(x, FEASIBLE if viol <= tol else UNKNOWN, viol, lam_full)
