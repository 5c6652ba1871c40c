"""Geometry attacks share: the budget ball, acceptance regions, Sybil identities.

All distances are the normalised distance δ of DESIGN §2. In the scaled coordinates
y = (vec(X) / (√2 D_X), W / (√2 D_W)) δ is the Euclidean norm, and each block is
scaled isotropically, so the projection onto the valid set S = [−1, 1]^{k×m} × Δ^m in
the δ geometry is the blockwise box clip and simplex projection.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from pluralguard.core.convex import POLISH_SLACK
from pluralguard.core.feasibility import common_point
from pluralguard.core.geometry import (
    D_W,
    accepts,
    diameter_x,
    normalised_distance,
    project_box,
    project_simplex,
)
from pluralguard.core.model import Population

from .context import AttackContext

#: Bisection steps of :func:`project_budget` (the bracket [0, 1] shrinks to 2^-60).
_BISECTIONS = 60
#: Weight of the anchor agents in :func:`region_point` (relative to the target's 1).
_ANCHOR_WEIGHT = 1e-9


def project_valid(X: np.ndarray, W: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Projection onto S = box × simplex in the δ geometry."""
    return project_box(X), project_simplex(W)


def project_budget(truth_X: np.ndarray, truth_W: np.ndarray, X: np.ndarray, W: np.ndarray,
                   budget: float) -> tuple[np.ndarray, np.ndarray]:
    """Exact δ-projection of (X, W) onto {v̂ ∈ S : δ(v̂, v) ≤ budget}, v the truth.

    KKT: the minimiser of ½δ(x, t)² + ½μ(δ(x, v)² − ε²) over S is
    Π_S((t + μv)/(1 + μ)) = Π_S(v + s(t − v)) with s = 1/(1 + μ) ∈ (0, 1], and
    δ(Π_S(v + s(t − v)), v) is non-decreasing in s (DESIGN §3's argument for one
    ball), so the largest feasible s is found by bisection. For a target inside S the
    answer is the point of the segment [v, t] at distance ε from v (or t itself).
    Broadcasts over leading axes (one row per attacker).

    Parameters
    ----------
    truth_X, truth_W : ndarray, shapes (..., k, m) and (..., m)
        The truths v (points of S).
    X, W : ndarray
        Targets t (broadcast against the truths; need not lie in S).
    budget : float
        ε ≥ 0; ``inf`` projects onto S only.
    """
    vX, vW = np.asarray(truth_X, float), np.asarray(truth_W, float)
    tX = np.broadcast_to(np.asarray(X, float), vX.shape)
    tW = np.broadcast_to(np.asarray(W, float), vW.shape)
    pX, pW = project_valid(tX, tW)
    if math.isinf(budget):
        return pX, pW
    inside = normalised_distance(pX, pW, vX, vW) <= budget
    if np.all(inside):
        return pX, pW
    lo = np.zeros(vW.shape[:-1])
    hi = np.ones(vW.shape[:-1])
    for _ in range(_BISECTIONS):
        s = 0.5 * (lo + hi)
        cX, cW = project_valid(vX + s[..., None, None] * (tX - vX),
                               vW + s[..., None] * (tW - vW))
        ok = normalised_distance(cX, cW, vX, vW) <= budget
        lo, hi = np.where(ok, s, lo), np.where(ok, hi, s)
    lo = np.where(inside, 1.0, lo)
    return project_valid(vX + lo[..., None, None] * (tX - vX), vW + lo[..., None] * (tW - vW))


def block_radii(budget: float, k: int, m: int) -> tuple[float, float]:
    """Per-block radii (‖ΔX‖_F, ‖ΔW‖₂) whose product of balls lies in the δ-ball.

    ‖ΔX‖ ≤ ε D_X and ‖ΔW‖ ≤ ε D_W give δ² = ½(‖ΔX‖²/D_X² + ‖ΔW‖²/D_W²) ≤ ε².
    """
    return budget * diameter_x(k, m), budget * D_W


def region_point(declared: Population, gamma_x: np.ndarray, gamma_w: np.ndarray,
                 members: np.ndarray, target: tuple[np.ndarray, np.ndarray],
                 anchor: tuple[np.ndarray, np.ndarray] | None = None,
                 radius: float = math.inf) -> tuple[np.ndarray, np.ndarray] | None:
    """The point of a group's acceptance region nearest a target, or None if empty.

    The acceptance region of ``members`` is ∩_i F_i (their declarations and bounds in
    force); optionally intersected with the product of per-block balls of
    :func:`block_radii` ``(radius)`` around ``anchor`` (inside the δ-ball of that
    radius). Per block it is the projection of the target onto an intersection of balls
    in the box or the simplex, solved exactly by its dual; when that cannot decide, by
    the exact group solver with a virtual unbounded agent at the target with weight 1
    and the members with weight 10⁻⁹ (:func:`~pluralguard.core.feasibility.common_point`;
    a dual certificate of emptiness is final).
    """
    tX, tW = target
    k, m = declared.k, declared.m
    Xs = [declared.X[members].reshape(members.size, -1), tX.reshape(1, -1)]
    Ws = [declared.W[members], tW[None]]
    gx = [gamma_x[members], [math.inf]]
    gw = [gamma_w[members], [math.inf]]
    wts = [np.full(members.size, _ANCHOR_WEIGHT), [1.0]]
    if anchor is not None and math.isfinite(radius):
        rx, rw = block_radii(radius, k, m)
        Xs.append(anchor[0].reshape(1, -1))
        Ws.append(anchor[1][None])
        gx.append([rx])
        gw.append([rw])
        wts.append([_ANCHOR_WEIGHT])
    Xs, Ws = np.concatenate(Xs), np.concatenate(Ws)
    gx, gw = np.concatenate(gx).astype(float), np.concatenate(gw).astype(float)
    point = common_point(Xs.reshape(-1, k, m), Ws, np.concatenate(wts), gx, gw,
                         dual_tol=POLISH_SLACK, target=(tX, tW))
    return (point.X, point.W) if point.found else None


def accepting_bounds(declared: Population, members: np.ndarray, X: np.ndarray,
                     W: np.ndarray, slack: float = 1e-6) -> tuple[float, float]:
    """Smallest bounds (γˣ, γʷ) with which a declaration (X, W) accepts every member."""
    n = members.size
    if n == 0:
        return 0.0, 0.0
    dx = np.sqrt(((declared.X[members] - X) ** 2).reshape(n, -1).sum(axis=1)).max()
    dw = np.sqrt(((declared.W[members] - W) ** 2).sum(axis=1)).max()
    return float(dx + slack), float(dw + slack)


def far_point(declared: Population) -> tuple[np.ndarray, np.ndarray]:
    """A valid point far from the whole population: the box corner opposite the mean
    judgements and the simplex vertex of the least-weighted value."""
    mean_X = declared.X.mean(axis=0)
    X = np.where(mean_X > 0, -1.0, 1.0)
    W = np.zeros(declared.m)
    W[int(np.argmin(declared.W.mean(axis=0)))] = 1.0
    return X, W


def make_identities(truth: Population, X: np.ndarray, W: np.ndarray,
                    gamma_x: np.ndarray | None, gamma_w: np.ndarray | None,
                    prefix: str) -> Population:
    """Sybil identities declaring rows of (X, W) with bounds, named ``prefix0…``.

    They carry the population's median weight when it is weighted (a Sybil claims to
    be a typical agent) and no bounds when the population declares none.
    """
    s = X.shape[0]
    weights = None if truth.weights is None else np.full(s, float(np.median(truth.weights)))
    return truth.replace(
        X=X, W=W, gamma_x=np.asarray(gamma_x, float) if truth.has_bounds else None,
        gamma_w=np.asarray(gamma_w, float) if truth.has_bounds else None,
        weights=weights, agents=[f"{prefix}{i}" for i in range(s)])


def _all_accept(X: np.ndarray, W: np.ndarray, cx: np.ndarray, cw: np.ndarray,
                gx: np.ndarray, gw: np.ndarray) -> np.ndarray:
    """Per point (row of X, W): whether every member (centres cx, cw) accepts it.

    Identical points are checked once (an unlimited coalition declares one point).
    """
    flat = np.concatenate([X.reshape(X.shape[0], -1), W], axis=1)
    uniq, inverse = np.unique(flat, axis=0, return_inverse=True)
    k = X.shape[1] * X.shape[2]
    ok = np.array([accepts(u[:k].reshape(X.shape[1:]), u[k:], cx, cw, gx, gw).all()
                   for u in uniq])
    return ok[inverse.ravel()]


def fit_region(ctx: AttackContext, members: np.ndarray,
               propose: Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]],
               declare: Callable[[np.ndarray, np.ndarray], Population],
               rounds: int = 6) -> tuple[Population, np.ndarray]:
    """Place points in a group's acceptance region under the bounds they themselves cause.

    Under ``quantile:q`` the attack's own declarations move everyone's bound, so a point
    placed in the region under the honest bounds may fall outside it once declared.
    ``propose(gx, gw)`` places the points (rows of X, W) for members' bounds
    (γˣ, γʷ) (arrays over the population); ``declare(X, W)`` builds the attacked
    declarations. Each round checks the points against the bounds in force *with* them
    and, if a member rejects one, re-places them in the region shrunk to those bounds
    (a hair tighter). Returns the first declarations whose points every member accepts,
    else those placed under the honest bounds; and, per point, whether every member
    accepts it.
    """
    gx, gw = ctx.bounds_in_force()
    cx, cw = ctx.declared.X[members], ctx.declared.W[members]
    scale = 1.0
    first: tuple[Population, np.ndarray] | None = None
    for _ in range(rounds):
        X, W = propose(gx * scale, gw * scale)
        declared = declare(X, W)
        fx, fw = ctx.bounds_in_force(declared)
        inside = _all_accept(X, W, cx, cw, fx[members], fw[members])
        first = first or (declared, inside)
        if inside.all():
            return declared, inside
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.nanmin(np.concatenate([fx[members] / gx[members],
                                              fw[members] / gw[members]]))
        scale *= 0.995 * min(1.0, float(ratio) if np.isfinite(ratio) else 1.0)
    return first
