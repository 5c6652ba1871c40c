"""A common point of a group's acceptable sets: the one feasibility cascade.

A group C has a common point when ∩_{i∈C} F_i ≠ ∅, F_i the agent's acceptable set:
the balls B(X_i, γᵢˣ) in [−1, 1]^{k×m} and B(W_i, γᵢʷ) in Δ^m (DESIGN §3.2). The
mechanism, its link rule and the attacks all ask for such a point, and all answer in
the same order, cheapest first (:func:`common_point`):

1. **dual projection** (quadratic utility) — per block, the projection of a target
   point (by default the members' weighted mean) onto the intersection by its dual
   (:func:`~pluralguard.core.projection.project_intersection`), which either finds the
   projection or certifies the intersection empty (weak duality); or the **certified
   geometric median** (linear utility, :func:`~pluralguard.core.median.median_agreement`);
2. **conic solve** — what the first stage leaves undecided goes to the interior-point
   solver (:func:`~pluralguard.core.convex.solve_group`), which also certifies
   infeasibility;
3. **retry inflated** — an intersection that is a single point is empty at a solver's
   tolerance yet non-empty once every bound grows by a fraction of the acceptance
   tolerance: the conic solve (and the median) is repeated at each of the given
   ``inflations`` in turn until one finds a point.

Callers differ only in their tolerances, their target, and whether a dual certificate
of emptiness is final (the link rule and the attacks) or is handed to the inflated
conic solve as well (the mechanism's own agreement); those are the parameters.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .convex import solve_group
from .geometry import project_box, project_simplex
from .median import OPTIMAL, median_agreement
from .projection import FEASIBLE, INFEASIBLE, Projection, project_intersection


@dataclass(frozen=True)
class CommonPoint:
    """Outcome of :func:`common_point`.

    Attributes
    ----------
    X : ndarray, shape (k, m), or None
        The point's judgements (None when no point was found).
    W : ndarray, shape (m,), or None
        The point's value weights.
    projections : tuple of Projection
        The dual projections of stage 1, block X then block W; it stops at a block whose
        intersection the dual certified empty (empty for the linear utility).
    centres : tuple of ndarray
        The points projected, one per entry of ``projections``.
    conic : bool
        Whether the conic solver was consulted.
    """

    X: np.ndarray | None
    W: np.ndarray | None
    projections: tuple[Projection, ...] = ()
    centres: tuple[np.ndarray, ...] = ()
    conic: bool = False

    @property
    def found(self) -> bool:
        """Whether a common point was found."""
        return self.X is not None

    @property
    def empty_block(self) -> int | None:
        """0 (X) or 1 (W) when that block's dual projection certified the intersection
        empty, else None."""
        if self.projections and self.projections[-1].status == INFEASIBLE:
            return len(self.projections) - 1
        return None


def _dual_stage(centres: Sequence[np.ndarray], Xf: np.ndarray, W: np.ndarray,
                gamma_x: np.ndarray, gamma_w: np.ndarray, tol: float
                ) -> tuple[Projection, ...]:
    """Project each block's centre onto its balls; stop at a certified empty block."""
    found: list[Projection] = []
    for c, anchors, radii, project in ((centres[0], Xf, gamma_x, project_box),
                                       (centres[1], W, gamma_w, project_simplex)):
        found.append(project_intersection(c, anchors, radii, project, tol=tol))
        if found[-1].status == INFEASIBLE:
            break
    return tuple(found)


def common_point(X: np.ndarray, W: np.ndarray, weights: np.ndarray, gamma_x: np.ndarray,
                 gamma_w: np.ndarray, *, dual_tol: float,
                 target: tuple[np.ndarray, np.ndarray] | None = None,
                 utility: str = "quadratic", inflations: Sequence[float] = (0.0,),
                 conic_tol: float = 1e-6, conic_after_certificate: bool = False
                 ) -> CommonPoint:
    """A point of ∩_i F_i by the cascade of the module doc: dual projection (or certified
    median), else conic solve, else conic solve with inflated bounds.

    Parameters
    ----------
    X : ndarray, shape (p, k, m)
        The members' judgements (ball centres of block X).
    W : ndarray, shape (p, m)
        Their value weights (ball centres of block W).
    weights : ndarray, shape (p,)
        Their weights: the target is their weighted mean, and the conic solve maximises
        the weighted utility.
    gamma_x, gamma_w : ndarray, shape (p,)
        Their bounds (radii; ``np.inf`` = no constraint).
    dual_tol : float
        A ball may be exceeded by this much for the dual projection's point.
    target : (ndarray (k, m), ndarray (m,)), optional
        The point projected in stage 1 (default the weighted mean).
    utility : {"quadratic", "linear"}
        Quadratic: stage 1 is the dual projection; linear: the certified geometric
        median (its target is the median itself).
    inflations : sequence of float
        Added to every bound for the successive conic solves (and medians), in turn,
        until one finds a point.
    conic_tol : float
        A conic solution counts if it exceeds no bound by more than this.
    conic_after_certificate : bool
        Whether a certified empty intersection in stage 1 still goes to the conic
        solves (which may find a point within an inflation); else it is final.

    Returns
    -------
    CommonPoint
    """
    p, k, m = X.shape
    Xf = X.reshape(p, -1)
    projections: tuple[Projection, ...] = ()
    centres: tuple[np.ndarray, ...] = ()
    certified_empty = False
    if utility == "quadratic":
        if target is None:
            w = weights / weights.sum()
            centres = (w @ Xf, w @ W)
        else:
            centres = (target[0].reshape(-1), target[1])
        projections = _dual_stage(centres, Xf, W, gamma_x, gamma_w, dual_tol)
        centres = centres[:len(projections)]
        if all(pr.status == FEASIBLE for pr in projections) and len(projections) == 2:
            return CommonPoint(projections[0].x.reshape(k, m), projections[1].x,
                               projections, centres)
        certified_empty = projections[-1].status == INFEASIBLE
    else:
        for inflation in inflations:
            med = median_agreement(X, W, weights, gamma_x + inflation if inflation else gamma_x,
                                   gamma_w + inflation if inflation else gamma_w)
            if med.status != INFEASIBLE:
                break
        if med.status == OPTIMAL:
            return CommonPoint(med.X, med.W)
        certified_empty = med.status == INFEASIBLE
    if certified_empty and not conic_after_certificate:
        return CommonPoint(None, None, projections, centres)
    for inflation in inflations:
        sol = solve_group(X, W, weights, gamma_x, gamma_w, utility=utility,
                          inflate=inflation, tol=conic_tol)
        if sol.feasible:
            return CommonPoint(sol.X, sol.W, projections, centres, conic=True)
    return CommonPoint(None, None, projections, centres, conic=True)
