"""Sybil stuffing (Douceur 2002): fake identities declare one chosen point."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .base import Attack, AttackContext, AttackPlan, clip_bounds, toward


@dataclass(frozen=True)
class Sybil(Attack):
    """Sybil stuffing: s fake identities all declare one point.

    Idea: an agreement weighs every *identity*; identities cost nothing, so s Sybils
    declaring t add weight s at t. Inside a group whose members all accept t, the
    quadratic agreement moves to Π_{∩F}((Σ_i w_i v_i + s·t) / (Σ_i w_i + s)) — the
    projection of the weighted mean with the Sybils (Douceur, *The Sybil Attack*,
    IPTPS 2002; in federated aggregation, Fung et al., *FoolsGold*, 2018).

    The number of Sybils s is the threat model's ``sybils`` (5 when it is 0).

    Parameters
    ----------
    bound : float, optional
        Bound each Sybil declares for both γˣ and γʷ (clipped to the legal range);
        default the largest declared bound of the target group's members, so the
        Sybils accept whoever accepts them.

    Budget
    ------
    The Sybils' point is t itself when ``budget`` is infinite, else the point at
    normalised distance ``budget`` from the target group's clean agreement toward t
    (a camouflaged, in-group point for small budgets).

    Goal
    ----
    ``capture`` (default target point: the attackers' mean true value system),
    ``selfish`` (the same point serves the attackers), ``consolidate``.
    """

    name = "sybil"
    summary = "fake identities all declare one point, adding its weight to a group"
    goals = ("capture", "selfish", "consolidate")

    bound: float | None = None

    def _plan(self, ctx: AttackContext, budget: float) -> AttackPlan:
        s = ctx.threat.sybils or 5
        truth = ctx.truth
        g = ctx.target_group_id()
        tX, tW = ctx.target_point()
        if math.isinf(budget):
            pX, pW = tX, tW
        else:
            pX, pW = toward(ctx.clean.X[g], ctx.clean.W[g], tX, tW, budget)
        members = ctx.members(g, honest_only=False)
        if self.bound is not None:
            gx = gw = self.bound
        else:
            gx, gw = truth.gamma_x[members].max(), truth.gamma_w[members].max()
        gx, gw = clip_bounds(ctx.threat, gx, gw)
        sybils = truth.replace(
            X=np.repeat(pX[None], s, axis=0), W=np.repeat(pW[None], s, axis=0),
            gamma_x=np.full(s, float(gx)), gamma_w=np.full(s, float(gw)),
            weights=None if truth.weights is None else np.full(s, float(np.median(
                truth.weights))),
            agents=[f"sybil{i}" for i in range(s)])
        declared = truth.append(sybils)
        return ctx.plan(declared, sybils=s, info={"point": (pX.tolist(), pW.tolist()),
                                                  "sybils": s, "group": g})
