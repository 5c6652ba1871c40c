"""Overshoot: exaggerate away from the current agreement (mean manipulation)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from pluralguard.core.params import Constraint, OrNone, Real

from .base import Attack, path_budgets
from .context import AttackContext
from .geometry import project_budget
from .plan import AttackPlan


@dataclass(frozen=True)
class Overshoot(Attack):
    """Exaggerate: declare past one's truth, away from the agreement one wants to move.

    Idea: a mean is moved by every report in proportion to its weight, so an agent
    whose truth v differs from its group's agreement a declares v̂ beyond v, on the
    far side from a. Under the ℓ2 single consensus (the weighted mean, Lera-Leri et al.
    2022) the agreement after a misreport is a' = a + (w_i / Σ_j w_j)(v̂ − v), so the
    best misreport within the budget is the δ-projection of

        v + λ (t − a),   λ = Σ_j w_j / w_i,

    onto {v̂ valid : δ(v̂, v) ≤ ε}, with t = v for a selfish agent: exactly what this
    recipe declares (a coalition in one group uses the coalition's weight and its mean
    truth, which is exact when no box or simplex face binds). The median (p = 1,
    odd n) is immune: it is strategyproof for single-peaked preferences (Moulin, *On
    strategy-proofness and single peakedness*, Public Choice 1980), and the utility
    here is separable per coordinate. In the agreement mechanism the same
    exaggeration pulls the projected mean of the attacker's group, as long as the
    exaggerated declaration keeps its links; where the whole budget would carry the
    attackers out of their groups, the recipe goes only as far along the path as
    serves the goal best (shares of the budget and the smaller budgets of its curve,
    :func:`~.base.path_budgets`), and says so: ``info["keeps_group"]`` is whether every
    attacker kept its clean co-members, ``info["budget_used"]`` how far it went.

    Parameters
    ----------
    factor : float, optional
        Exaggeration λ; default Σ_{j∈C} w_j / Σ_{a∈A∩C} w_a for the attackers A in
        group C (the ℓ2-optimal factor).

    Budget
    ------
    ε on δ(v̂_a, v_a) per attacker. Default 0.1; curve (0.02, 0.05, 0.1, 0.2, 0.4).

    Goal
    ----
    ``selfish`` (default: t = the coalition's mean truth within each group) or
    ``capture`` (t = the goal's point; under the agreement mechanism only attackers
    inside the target group move it).
    """

    name = "overshoot"
    summary = "declare past one's truth, away from the agreement (mean manipulation)"
    goals = ("selfish", "capture")
    default_budgets = (0.02, 0.05, 0.1, 0.2, 0.4)

    factor: float | None = None

    PARAMS: ClassVar[dict[str, Constraint]] = {
        "factor": OrNone(Real(0, closed="neither", sample=2.0))}

    def _plan(self, ctx: AttackContext, budget: float) -> AttackPlan:
        A, n = ctx.attackers, ctx.truth.n
        out = ctx.clean
        labels = out.labels[:n]
        G = out.n_groups
        w = ctx.declared.weight
        group_w = np.bincount(labels, weights=w, minlength=G)
        coalition_w = np.bincount(labels[A], weights=w[A], minlength=G)
        vX, vW = ctx.truth.X[A], ctx.truth.W[A]
        if ctx.threat.goal.kind == "selfish":  # the coalition's optimum in each group
            sum_X = np.zeros((G, ctx.truth.k, ctx.truth.m))
            sum_W = np.zeros((G, ctx.truth.m))
            np.add.at(sum_X, labels[A], w[A, None, None] * vX)
            np.add.at(sum_W, labels[A], w[A, None] * vW)
            tX = sum_X[labels[A]] / coalition_w[labels[A], None, None]
            tW = sum_W[labels[A]] / coalition_w[labels[A], None]
        else:
            tX, tW = ctx.target_point()
        lam = (np.full(A.size, self.factor) if self.factor is not None
               else group_w[labels[A]] / coalition_w[labels[A]])
        aX, aW = out.X[labels[A]], out.W[labels[A]]
        aimX, aimW = vX + lam[:, None, None] * (tX - aX), vW + lam[:, None] * (tW - aW)
        info: dict = {"factor": lam.tolist()}
        if "groups" not in ctx.mechanism.capabilities:  # one agreement: go all the way
            X, W = project_budget(vX, vW, aimX, aimW, budget)
            return ctx.plan(ctx.with_declarations(X, W), info=info)
        # in a group, going all the way may break the attackers' links: go as far along
        # the path as serves the goal best, and say whether the group was kept
        budgets = path_budgets(budget, self.default_budgets)
        candidates = [ctx.with_declarations(*project_budget(vX, vW, aimX, aimW, b))
                      for b in budgets]
        best, _ = ctx.best_of(candidates)
        mates = [frozenset(np.flatnonzero(labels == labels[a]).tolist()) - {int(a)}
                 for a in A]
        after = ctx.query(candidates[best]).labels
        kept = all(frozenset(np.flatnonzero(after[:n] == after[a]).tolist()) - {int(a)}
                   >= m for a, m in zip(A, mates, strict=True))
        info |= {"budget_used": budgets[best], "keeps_group": kept}
        return ctx.plan(candidates[best], info=info)
