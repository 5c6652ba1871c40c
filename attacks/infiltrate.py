"""Infiltrate: declare inside a target group's acceptance region, then pull."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import partial
from typing import ClassVar

import numpy as np

from pluralguard.core.mechanism import Mechanism
from pluralguard.core.model import Population
from pluralguard.core.params import Constraint, OrNone, Real

from .base import Attack, bound_policy_kind, clip_bounds, require_capabilities
from .context import AttackContext
from .geometry import accepting_bounds, fit_region, project_budget, region_point
from .plan import AttackPlan
from .threat import ThreatModel


@dataclass(frozen=True)
class Infiltrate(Attack):
    """Outsiders declare a point every member of a target group accepts, nearest t.

    Idea: the agreement mechanism links agents that accept each other and lets a
    group grow while its members keep a common acceptable point. An outsider that
    declares a point p inside the target group's acceptance region ∩_{i∈G} F_i, with
    a bound accepting every member, links with all of them and keeps the union
    feasible: it joins G. Taking p as the region's point nearest the goal point t
    then pulls G's projected mean toward t with the attacker's weight — the attacker
    hides inside the cluster it manipulates, as in the *obfuscation* and poisoning
    attacks on clustering of Biggio, Pillai, Rota Bulò, Ariu, Pelillo & Roli, *Is
    data clustering in adversarial settings secure?* (AISec 2013).

    Each attacker a declares the region point nearest t within its budget (the
    region is intersected with per-block balls of radius ε around v_a, inside the
    δ-ball); if the region is farther than the budget it moves as far as it may
    toward the region's nearest point. Under ``quantile:q`` the infiltrators' own
    declarations move the bound everyone gets, so the points are re-placed until they
    sit in the region under the bounds they cause (:func:`~.geometry.fit_region`);
    ``info["in_region"]`` says, per attacker, whether every member accepts its point.
    Merge-rule groups are maximal, so their regions are thin: infiltrators that move
    closer to a group shrink the quantile and can break the group instead of joining
    it.

    Parameters
    ----------
    bound : float, optional
        Bound declared for both γˣ and γʷ under the ``declared`` policy; default the
        smallest bounds that accept every member of G (clipped to the legal range).

    Budget
    ------
    ε on δ(v̂_a, v_a) per attacker. Default 0.2; curve (0.05, 0.1, 0.2, 0.3, inf).

    Goal
    ----
    ``capture`` (default) or ``selfish``; attackers default to the 3 outsiders
    nearest the largest group (``select='near_target'``).
    """

    name = "infiltrate"
    summary = "declare inside a target group's acceptance region, then pull it toward t"
    goals = ("capture", "selfish")
    white_box = "computes the target group's acceptance region from its members' declarations"
    default_budget = 0.2
    default_budgets = (0.05, 0.1, 0.2, 0.3, math.inf)

    threat: ThreatModel = field(default_factory=partial(
        ThreatModel, goal="capture", count=3, select="near_target"))
    bound: float | None = None

    PARAMS: ClassVar[dict[str, Constraint]] = {
        "bound": OrNone(Real(0, inf=True, sample=0.5))}

    def _applies(self, truth: Population, mechanism: Mechanism) -> None:
        require_capabilities(self.name, mechanism, {
            "groups": "joins a target group",
            "links": "declares inside the group's acceptance region, which the bounds in "
                     "force define"},
            "against a single consensus use 'overshoot'")

    def _plan(self, ctx: AttackContext, budget: float) -> AttackPlan:
        A = ctx.attackers
        g = ctx.target_group_id()
        members = ctx.members(g)
        a_G = ctx.clean.X[g], ctx.clean.W[g]  # in the region (under the honest bounds)
        t = ctx.target_point()
        own_bounds = (bound_policy_kind(ctx.mechanism) in ("declared", "custom")
                      and ctx.truth.has_bounds)

        def propose(gx: np.ndarray, gw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            X, W = np.array(ctx.truth.X[A]), np.array(ctx.truth.W[A])
            # the region's point nearest t (None: the region is empty, for everyone)
            nearest_t = region_point(ctx.declared, gx, gw, members, t)
            for r, a in enumerate(A):
                v = ctx.truth.X[a], ctx.truth.W[a]
                if nearest_t is None:  # no common point: head for the clean agreement
                    p = project_budget(v[0], v[1], a_G[0], a_G[1], budget)
                elif math.isinf(budget):  # every attacker can afford the same point
                    p = nearest_t
                else:
                    p = region_point(ctx.declared, gx, gw, members, t, anchor=v,
                                     radius=budget)
                if p is None:  # out of reach: move toward the region's nearest point
                    q = region_point(ctx.declared, gx, gw, members, v) or nearest_t
                    p = project_budget(v[0], v[1], q[0], q[1], budget)
                X[r], W[r] = p
            return X, W

        def declare(X: np.ndarray, W: np.ndarray) -> Population:
            if not own_bounds:
                return ctx.with_declarations(X, W)
            if self.bound is not None:
                bx = bw = np.full(A.size, self.bound)
            else:
                bx, bw = np.array([accepting_bounds(ctx.declared, members, X[r], W[r])
                                   for r in range(A.size)]).T
            bx, bw = clip_bounds(ctx.threat, bx, bw)
            return ctx.with_declarations(X, W, bx, bw)

        declared, inside = fit_region(ctx, members, propose, declare)
        return ctx.plan(declared, info={"group": g, "in_region": inside.tolist()})
