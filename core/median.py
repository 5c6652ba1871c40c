"""A group's agreement under the linear utility: the weighted geometric median of its
members' declarations over the intersection of their acceptable sets (DESIGN §3.2).

With u_i = 1 − δ(x, v_i) the group maximises Σ w_i u_i, i.e. it solves

    min_{x ∈ C} f(x),   f(x) = Σ_i w_i ‖S(x − v_i)‖,   C = ∩_i F_i,

S scaling the X part by 1/(√2 D_X) and the W part by 1/(√2 D_W) (so ‖S(x − v)‖ = δ),
C the box (X), the simplex (W) and every member's two balls. f is convex, smooth away
from the points v_i, and its Hessian is Σ_i w_i (S² − z_i z_iᵀ)/d_i with d_i = δ(x, v_i)
and z_i = S²(x − v_i)/d_i. The solver:

1. **The median without the balls.** The geometric median lies in the convex hull of
   the points, so the box and the simplex hold it. Newton's method with backtracking
   on f from the weighted mean (Weiszfeld's iteration is the fixed-point form of the
   same stationarity condition; Newton converges quadratically where f is smooth),
   with the exact test for a median *at* a point: v_j is the median iff
   ‖Σ_{i: v_i ≠ v_j} w_i S(v_j − v_i)/d_ij‖ ≤ Σ_{i: v_i = v_j} w_i (Vardi & Zhang,
   *The multivariate L1-median and associated data depth*, PNAS 2000).
2. If it lies in every member's balls it is the agreement — whatever the bounds.
3. Otherwise a **primal active-set method**: start at the projection of the median
   onto C (:func:`~pluralguard.core.projection.project_intersection`, exact), whose
   binding balls and clipped coordinates are the first guess of the active set;
   solve the KKT equations of the problem with those constraints held as equalities
   by Newton's method; then check the KKT conditions of the full problem — every
   other ball and bound satisfied, every multiplier of the active ones non-negative,
   the Lagrangian's gradient zero — adding the most violated constraint or releasing
   the most negative multiplier until they hold. A KKT point of a convex problem is
   its optimum, so a point that passes is *certified* (to :data:`STATIONARITY_TOL` on
   the Lagrangian's gradient in δ units, :data:`FEASIBILITY_TOL` on the balls).

The optimum is unique unless every point lies on one line (f is strictly convex along
any other segment), where a whole segment may be optimal (two members of equal
weight); such groups are left to the conic solver, which the oracle also is, so both
pick the same point. What the method cannot certify — a constrained optimum at a
member's own declaration (where f has a kink), degenerate active sets — is reported
``undecided`` and left to the conic solver
(:func:`~pluralguard.core.convex.solve_group`); an empty intersection is certified by
the projection's dual bound. Medians without the balls are kept by the
content of their group (bounded), so re-solving a group whose members and weights are
unchanged under other bounds (attack queries) starts at step 2.

The sums over members run as a compiled kernel when numba is installed
(:mod:`~pluralguard.core.kernels`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import kernels
from .geometry import project_box, project_simplex, scale_factors
from .kernels import jit
from .memo import BoundedMemo, content_key
from .projection import FEASIBLE, INFEASIBLE, project_intersection

OPTIMAL, UNDECIDED = "optimal", "undecided"
#: A certified point's Lagrangian gradient, in δ units (the weights sum to one; the
#: gradient's rounding floor is ~1e-10 on hundreds of members).
STATIONARITY_TOL = 1e-9
#: A certified point exceeds no ball by more than this (times 1 + the radius).
FEASIBILITY_TOL = 1e-12
#: Newton iterations per solve; active-set rounds.
MAX_NEWTON, MAX_ROUNDS = 80, 16
#: Medians without the balls kept by content (a bounded memo).
_MEDIANS: BoundedMemo[np.ndarray | None] = BoundedMemo(256)


@dataclass(frozen=True)
class MedianSolution:
    """Outcome of :func:`median_agreement`.

    Attributes
    ----------
    X : ndarray, shape (k, m) or None
    W : ndarray, shape (m,) or None
    status : {"optimal", "infeasible", "undecided"}
    """

    X: np.ndarray | None
    W: np.ndarray | None
    status: str


@jit
def _terms(x: np.ndarray, P: np.ndarray, w: np.ndarray, s2: np.ndarray, hessian: bool
           ) -> tuple[float, np.ndarray, np.ndarray, int, float]:
    """f(x), ∇f(x), ∇²f(x) (if ``hessian``), and the nearest point and its distance
    (points at distance 0 are left out of f's derivatives)."""
    p, D = P.shape
    f = 0.0
    g = np.zeros(D)
    H = np.zeros((D, D))
    z = np.empty(D)
    near, dmin = -1, np.inf
    for i in range(p):
        d2 = 0.0
        for t in range(D):
            u = x[t] - P[i, t]
            d2 += s2[t] * u * u
        d = np.sqrt(d2)
        if d < dmin:
            near, dmin = i, d
        if d == 0.0:
            continue
        f += w[i] * d
        for t in range(D):
            z[t] = s2[t] * (x[t] - P[i, t]) / d
            g[t] += w[i] * z[t]
        if hessian:
            c = w[i] / d
            for a in range(D):
                H[a, a] += c * s2[a]
                for b in range(D):
                    H[a, b] -= c * z[a] * z[b]
    return f, g, H, near, dmin


def _terms_numpy(x: np.ndarray, P: np.ndarray, w: np.ndarray, s2: np.ndarray,
                 hessian: bool) -> tuple[float, np.ndarray, np.ndarray, int, float]:
    """:func:`_terms` vectorised."""
    diff = x - P
    d = np.sqrt((s2 * diff * diff).sum(axis=1))
    near = int(np.argmin(d))
    live = d > 0
    dl, wl = d[live], w[live]
    z = s2 * diff[live] / dl[:, None]
    H = np.zeros((x.size, x.size))
    if hessian:
        H = np.diag(s2) * float((wl / dl).sum()) - np.einsum("i,ij,ik->jk", wl / dl, z, z)
    return float(wl @ dl), wl @ z, H, near, float(d[near])


def _evaluate(x: np.ndarray, P: np.ndarray, w: np.ndarray, s2: np.ndarray,
              hessian: bool = True) -> tuple[float, np.ndarray, np.ndarray, int, float]:
    if kernels.COMPILED:
        return _terms(x, P, w, s2, hessian)
    return _terms_numpy(x, P, w, s2, hessian)


def _pull(j: int, P: np.ndarray, w: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, float]:
    """At point j: Σ w_i S(v_j − v_i)/d_ij over the points elsewhere (in δ units), and
    the weight of the points at v_j."""
    diff = (P[j] - P) * s
    d = np.sqrt((diff * diff).sum(axis=1))
    at = d == 0
    return ((w[~at] / d[~at]) @ diff[~at]), float(w[at].sum())


def unconstrained_median(P: np.ndarray, weights: np.ndarray, s: np.ndarray
                         ) -> np.ndarray | None:
    """The weighted geometric median of the rows of P in the metric ‖S·‖, S = diag(s)
    (step 1 of the module doc), kept by content; None when Newton's method cannot
    certify it (a gradient above :data:`STATIONARITY_TOL` that no step reduces)."""
    w = weights / weights.sum()
    found = _MEDIANS.get(content_key(P, w, s), lambda: _median(P, w, s))
    return None if found is None else found.copy()


def _collinear(Q: np.ndarray) -> bool:
    """Whether the rows of Q lie on one line (to rounding)."""
    a = Q[0]
    far = int(np.argmax(((Q - a) ** 2).sum(axis=1)))
    u = Q[far] - a
    length = np.sqrt(u @ u)
    if length == 0.0:
        return True
    u /= length
    off = (Q - a) - np.outer((Q - a) @ u, u)
    return bool(np.sqrt((off * off).sum(axis=1)).max() <= 1e-12 * (1.0 + length))


def _median(P: np.ndarray, w: np.ndarray, s: np.ndarray) -> np.ndarray | None:
    s2 = s * s
    heavy = int(np.argmax(w))
    pull, at = _pull(heavy, P, w, s)
    if np.sqrt(pull @ pull) <= at:
        return P[heavy].copy()
    x = w @ P
    for _ in range(MAX_NEWTON):
        f, g, H, near, dmin = _evaluate(x, P, w, s2)
        if dmin <= 1e-9:  # at (or next to) a point: is it the median?
            pull, at = _pull(near, P, w, s)
            if np.sqrt(pull @ pull) <= at:
                return P[near].copy()
            if dmin == 0.0:  # leave it downhill along the pull's excess
                x = x - (pull / np.sqrt(pull @ pull)) * 1e-6 / s
                continue
        stationary = np.sqrt(((g / s) ** 2).sum()) <= STATIONARITY_TOL
        H[np.diag_indices_from(H)] += 1e-14 * max(float(np.trace(H)), 1e-300)
        step = np.linalg.solve(H, -g)
        if stationary or np.sqrt(((step * s) ** 2).sum()) <= 1e-15:
            return x if stationary else None
        slope = float(g @ step)
        t = 1.0
        while t > 1e-10:
            if _evaluate(x + t * step, P, w, s2, False)[0] <= f + 1e-4 * t * slope:
                break
            t *= 0.5
        if t <= 1e-10:  # no decrease left
            return None
        x = x + t * step
    return None


def _kkt(x: np.ndarray, P: np.ndarray, w: np.ndarray, s2: np.ndarray, dX: int,
         balls: list[tuple[int, int]], fixed: np.ndarray, radii: tuple[np.ndarray, ...]
         ) -> tuple[np.ndarray, np.ndarray, float, bool]:
    """Newton's method on the KKT equations of min f with the balls ``balls`` (part,
    member) on their spheres, the coordinates ``fixed`` at their current values and
    ΣW = 1: the point, the balls' multipliers, the simplex's, and whether it settled."""
    D = x.size
    free = ~fixed
    nf, nb = int(free.sum()), len(balls)
    inW = np.zeros(D, dtype=bool)
    inW[dX:] = True
    parts = [slice(0, dX), slice(dX, D)]
    mu, nu = np.zeros(nb), 0.0

    def residual(x: np.ndarray, mu: np.ndarray, nu: float, want: bool
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        _, g, H, _, _ = _evaluate(x, P, w, s2, want)
        grad = g.copy()
        normals = np.zeros((nb, D))
        for b, (part, i) in enumerate(balls):
            normals[b, parts[part]] = x[parts[part]] - P[i, parts[part]]
        grad += mu @ normals
        grad[dX:] += nu
        F = np.concatenate([grad[free],
                            [0.5 * (normals[b] @ normals[b] - radii[part][i] ** 2)
                             for b, (part, i) in enumerate(balls)],
                            [x[dX:].sum() - 1.0]])
        return F, H, normals

    # multipliers by least squares on the stationarity equations
    F, H, normals = residual(x, mu, nu, True)
    A = np.concatenate([normals[:, free], inW[free][None, :].astype(float)]).T
    if A.shape[1]:
        sol = np.linalg.lstsq(A, -F[:nf], rcond=None)[0]
        mu, nu = sol[:nb], float(sol[nb])
    F, H, normals = residual(x, mu, nu, True)
    scale = np.concatenate([1.0 / np.sqrt(s2[free]), np.ones(nb + 1)])
    for _ in range(MAX_NEWTON):
        norm = float(np.abs(F * scale).max())
        if norm <= STATIONARITY_TOL * 1e-2:
            return x, mu, nu, True
        J = np.zeros((nf + nb + 1, nf + nb + 1))
        Hf = H[np.ix_(free, free)].copy()
        for b, (part, _) in enumerate(balls):
            on = np.zeros(D, dtype=bool)
            on[parts[part]] = True
            Hf[np.diag_indices(nf)] += mu[b] * on[free]
        J[:nf, :nf] = Hf
        J[:nf, nf:nf + nb] = normals[:, free].T
        J[nf:nf + nb, :nf] = normals[:, free]
        J[:nf, -1] = inW[free]
        J[-1, :nf] = inW[free]
        try:
            step = np.linalg.solve(J, -F)
        except np.linalg.LinAlgError:
            return x, mu, nu, False
        t = 1.0
        while True:
            trial = x.copy()
            trial[free] += t * step[:nf]
            t_mu, t_nu = mu + t * step[nf:nf + nb], nu + t * step[-1]
            t_F, t_H, t_normals = residual(trial, t_mu, t_nu, True)
            t_norm = float(np.abs(t_F * scale).max())
            if t_norm <= (1 - 1e-4 * t) * norm or t < 1e-6:
                break
            t *= 0.5
        if t_norm >= norm:  # no progress: settled to rounding, or stuck
            return x, mu, nu, norm <= STATIONARITY_TOL
        x, mu, nu, F, H, normals = trial, t_mu, t_nu, t_F, t_H, t_normals
    return x, mu, nu, float(np.abs(F * scale).max()) <= STATIONARITY_TOL


class _Group:
    """One group's problem in the solver's coordinates: x = (vec X, W), the points P,
    weights summing to one, the metric's scales s and the balls' radii per part."""

    def __init__(self, X: np.ndarray, W: np.ndarray, weights: np.ndarray,
                 gamma_x: np.ndarray, gamma_w: np.ndarray) -> None:
        p, k, m = X.shape
        self.k, self.m, self.dX = k, m, k * m
        self.P = np.concatenate([X.reshape(p, self.dX), W], axis=1)
        sx, sw = scale_factors(k, m)
        self.s = np.concatenate([np.full(self.dX, sx), np.full(m, sw)])
        self.weights = weights
        self.w = weights / weights.sum()
        self.radii = (np.asarray(gamma_x, dtype=float), np.asarray(gamma_w, dtype=float))
        self.parts = (slice(0, self.dX), slice(self.dX, self.dX + m))

    def excess(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per part, how far x lies outside each member's ball."""
        return tuple(np.sqrt(((x[c] - self.P[:, c]) ** 2).sum(axis=1)) - r
                     for c, r in zip(self.parts, self.radii, strict=True))

    def solution(self, x: np.ndarray) -> MedianSolution:
        return MedianSolution(project_box(x[:self.dX]).reshape(self.k, self.m),
                              project_simplex(x[self.dX:]), OPTIMAL)

    def active_set(self, x: np.ndarray, balls: list[tuple[int, int]]) -> np.ndarray | None:
        """Step 3 of the module doc from x with the balls ``balls`` (part, member) and the
        coordinates at their bounds held: the certified optimum, or None."""
        P, w, s, dX = self.P, self.w, self.s, self.dX
        x = x.copy()
        fixed = np.concatenate([np.abs(x[:dX]) >= 1.0, x[dX:] <= 0.0])
        x[:dX][fixed[:dX]] = np.sign(x[:dX][fixed[:dX]])
        x[dX:][fixed[dX:]] = 0.0
        s2 = s * s
        for _ in range(MAX_ROUNDS):
            x, mu, nu, settled = _kkt(x, P, w, s2, dX, balls, fixed, self.radii)
            if not settled:
                return None
            # the full problem's KKT conditions, each violation in units of its tolerance
            _, g, _, _, dmin = _evaluate(x, P, w, s2, False)
            if dmin <= 1e-9:  # at a member's declaration: f has a kink there
                return None
            grad = g.copy()
            pulls = np.zeros(len(balls))  # each active ball's pull, in δ units
            for b, (part, i) in enumerate(balls):
                cols = self.parts[part]
                grad[cols] += mu[b] * (x[cols] - P[i, cols])
                pulls[b] = mu[b] * np.sqrt(((x[cols] - P[i, cols]) ** 2).sum()) / s[cols][0]
            grad[dX:] += nu
            # a fixed coordinate's multiplier: −∂L at an upper bound, ∂L at a lower one
            kappa = np.where(x > 0, -grad, grad) / s
            kappa[~fixed] = np.inf
            out = np.concatenate([np.abs(x[:dX]) - 1.0, -x[dX:]])
            out[fixed] = -np.inf
            candidates = []
            for part, e in enumerate(self.excess(x)):
                over = e / (1.0 + self.radii[part])
                for b_part, i in balls:
                    if b_part == part:
                        over[i] = -np.inf
                i = int(np.argmax(over))
                candidates.append((over[i] / FEASIBILITY_TOL, "ball", (part, i)))
            j = int(np.argmax(out))
            candidates.append((out[j] / FEASIBILITY_TOL, "bound", j))
            if balls:
                b = int(np.argmin(pulls))
                candidates.append((-pulls[b] / STATIONARITY_TOL, "release", b))
            j = int(np.argmin(kappa))
            candidates.append((-kappa[j] / STATIONARITY_TOL, "free", j))
            worst, kind, what = max(candidates, key=lambda item: item[0])
            if worst <= 1.0:
                return x
            if kind == "ball":
                balls.append(what)
            elif kind == "bound":
                fixed[what] = True
                x[what] = 0.0 if what >= dX else np.sign(x[what])
            elif kind == "release":
                balls.pop(what)
            else:
                fixed[what] = False
        return None


def median_agreement(X: np.ndarray, W: np.ndarray, weights: np.ndarray, gamma_x: np.ndarray,
                     gamma_w: np.ndarray) -> MedianSolution:
    """The group's agreement under the linear utility (module doc).

    Parameters
    ----------
    X : ndarray, shape (p, k, m)
    W : ndarray, shape (p, m)
        The members' declarations.
    weights : ndarray, shape (p,)
    gamma_x, gamma_w : ndarray, shape (p,)
        Their bounds (balls of these radii; ``inf``: no ball).

    Returns
    -------
    MedianSolution
        ``optimal`` with the certified agreement, ``infeasible`` when the acceptable
        sets have no common point, or ``undecided`` (left to the conic solver).
    """
    group = _Group(X, W, weights, gamma_x, gamma_w)
    if _collinear(group.P * group.s):
        return MedianSolution(None, None, UNDECIDED)
    x = unconstrained_median(group.P, weights, group.s)
    if x is None:
        return MedianSolution(None, None, UNDECIDED)
    if all((e <= 0).all() for e in group.excess(x)):
        return group.solution(x)
    # step 3 from the projection of the median onto C, with its binding balls
    start = []
    balls: list[tuple[int, int]] = []
    for part, project in enumerate((project_box, project_simplex)):
        cols = group.parts[part]
        proj = project_intersection(x[cols], group.P[:, cols], group.radii[part], project)
        if proj.status == INFEASIBLE:
            return MedianSolution(None, None, INFEASIBLE)
        if proj.status != FEASIBLE:
            return MedianSolution(None, None, UNDECIDED)
        start.append(proj.x)
        balls += [(part, int(i)) for i in np.flatnonzero(proj.multipliers > 0)]
    found = group.active_set(np.concatenate(start), balls)
    return MedianSolution(None, None, UNDECIDED) if found is None else group.solution(found)


def polish(X: np.ndarray, W: np.ndarray, weights: np.ndarray, gamma_x: np.ndarray,
           gamma_w: np.ndarray, near_X: np.ndarray, near_W: np.ndarray
           ) -> MedianSolution:
    """The certified optimum of a group's linear-utility problem (module doc, step 3)
    started from an approximate one (an interior-point solution): the balls within
    1e-7 of binding, and the coordinates within 1e-9 of a bound, held first.
    ``undecided`` when it cannot certify."""
    group = _Group(X, W, weights, gamma_x, gamma_w)
    if _collinear(group.P * group.s):
        return MedianSolution(None, None, UNDECIDED)
    x = np.concatenate([np.asarray(near_X, dtype=float).ravel(), near_W])
    x[:group.dX] = np.where(np.abs(x[:group.dX]) >= 1 - 1e-9, np.sign(x[:group.dX]),
                            x[:group.dX])
    x[group.dX:] = np.where(x[group.dX:] <= 1e-9, 0.0, x[group.dX:])
    balls = [(part, int(i)) for part, e in enumerate(group.excess(x))
             for i in np.flatnonzero(e >= -1e-7 * (1.0 + group.radii[part]))]
    found = group.active_set(x, balls)
    return MedianSolution(None, None, UNDECIDED) if found is None else group.solution(found)
