"""Exclude: a coalition drags a group's agreement until its victims no longer accept it."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial

import numpy as np

from pluralguard.core.geometry import ACCEPT_TOL, normalised_distance
from pluralguard.core.model import Population

from .base import Attack, bound_policy_kind, clip_bounds, path_budgets
from .context import AttackContext
from .geometry import project_budget
from .plan import AttackPlan
from .threat import ThreatModel


@dataclass(frozen=True)
class Exclude(Attack):
    """Insiders pull a group's agreement away from chosen victims until they drop out.

    Idea: *control by deleting voters* (Bartholdi, Tovey & Trick, *How hard is it to
    control an election?*, 1992) without deleting anyone: the group's agreement must
    lie in every member's acceptable set, so a coalition that constrains it to the far
    side from the victims V makes their sets incompatible with the rest, and the link
    rule leaves them out (or, under the single consensus, the agreement leaves their
    acceptable sets). Two modes:

    * **wedge** (agreement mechanism, ``declared`` bounds): each attacker copies, within
      its budget, the declaration of the non-victim member j* nearest itself and
      farthest from the victims, with the smallest bound that still accepts j*. Its
      link with j* is the shortest of all, so the link rule grows the group around a
      stubborn point at v_{j*}; victims whose sets miss it are cut off.
    * **drag** (other bound policies, the single consensus): each attacker
      overshoots away from the victims' mean, v̂ = Π(v + λ(a_G − v̄_V)) with λ the
      group's weight over the coalition's (as in ``overshoot``).

    Both move along a path that does not depend on the budget; the recipe tries
    shares of its budget along it (and the smaller budgets of its curve,
    :func:`~.base.path_budgets`) and keeps the one that excludes most
    (``info["budget_used"]``): moving too far can rejoin the victims or break the
    attackers' own links, and an attacker with a larger budget may always stop earlier.

    Budget
    ------
    ε on δ(v̂_a, v_a) per attacker. Default 0.1; curve (0.02, 0.05, 0.1, 0.2, 0.4).

    Goal
    ----
    ``exclude`` (default; victims default to the quarter of the target group's honest
    members farthest from the attackers) or ``split`` (the same cut, measured as the
    group breaking). Attackers default to 3 random members of the largest group
    (``select='in_target'``).
    """

    name = "exclude"
    summary = "a coalition pulls a group's agreement away until its victims drop out"
    goals = ("exclude", "split")
    white_box = "chooses its anchor from the group members' declarations"
    default_budgets = (0.02, 0.05, 0.1, 0.2, 0.4)

    threat: ThreatModel = field(default_factory=partial(
        ThreatModel, goal="exclude", count=3, select="in_target"))

    def _plan(self, ctx: AttackContext, budget: float) -> AttackPlan:
        A, n = ctx.attackers, ctx.truth.n
        g = ctx.target_group_id()
        victims = ctx.victims()
        if victims.size == 0:
            return ctx.plan(ctx.truth, info={"mode": "none", "group": g, "victims": []})
        vX, vW = ctx.truth.X[A], ctx.truth.W[A]
        decl = ctx.declared
        vbarX, vbarW = decl.X[victims].mean(axis=0), decl.W[victims].mean(axis=0)
        if bound_policy_kind(ctx.mechanism) in ("declared", "custom") and decl.has_bounds:
            keep = np.setdiff1d(ctx.members(g), victims)
            if keep.size == 0:
                keep = ctx.members(g)
            # near me, far from the victims
            score = (normalised_distance(vX[:, None], vW[:, None], decl.X[keep][None],
                                         decl.W[keep][None])
                     - normalised_distance(decl.X[keep], decl.W[keep], vbarX, vbarW)[None])
            anchor = keep[np.argmin(score, axis=1)]

            def declare(b: float) -> Population:
                X, W = project_budget(vX, vW, decl.X[anchor], decl.W[anchor], b)
                gx = np.sqrt(((X - decl.X[anchor]) ** 2).reshape(A.size, -1).sum(1))
                gw = np.sqrt(((W - decl.W[anchor]) ** 2).sum(1))
                gx, gw = clip_bounds(ctx.threat, gx + ACCEPT_TOL, gw + ACCEPT_TOL)
                return ctx.with_declarations(X, W, gx, gw)

            info = {"mode": "wedge", "anchors": anchor.tolist(), "group": g}
        else:
            labels = ctx.clean.labels[:n]
            w = decl.weight
            lam = w[labels == g].sum() / max(w[A].sum(), 1e-300)
            aX, aW = ctx.clean.X[g], ctx.clean.W[g]

            def declare(b: float) -> Population:
                return ctx.with_declarations(*project_budget(
                    vX, vW, vX + lam * (aX - vbarX), vW + lam * (aW - vbarW), b))

            info = {"mode": "drag", "factor": float(lam), "group": g}
        # the path is the same at every budget: try how far to go along it (a larger
        # budget may always stop earlier, so the curve over budgets never falls)
        budgets = path_budgets(budget, self.default_budgets)
        candidates = [declare(b) for b in budgets]
        best, _ = ctx.best_of(candidates)
        return ctx.plan(candidates[best], info=info | {"victims": victims.tolist(),
                                                       "budget_used": budgets[best]})
