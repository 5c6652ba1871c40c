"""Sybil stuffing (Douceur 2002): fake identities declare one chosen point."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from typing import ClassVar

import numpy as np

from pluralguard.core.model import Population
from pluralguard.core.params import Constraint, OrNone, Real

from .base import Attack, clip_bounds
from .context import AttackContext
from .geometry import (
    accepting_bounds,
    fit_region,
    make_identities,
    project_budget,
    region_point,
)
from .plan import AttackPlan
from .threat import ThreatModel


@dataclass(frozen=True)
class Sybil(Attack):
    """Sybil stuffing: s fake identities all declare one point p.

    Idea: an agreement weighs every *identity*; identities cost nothing, so s Sybils
    declaring p add weight s at p. Inside a group whose members all accept p, the
    quadratic agreement moves to Π_{∩F}((Σ_i w_i v_i + s·p) / (Σ_i w_i + s)) — the
    projection of the weighted mean with the Sybils (Douceur, *The Sybil Attack*,
    IPTPS 2002; in federated aggregation, Fung, Yoon & Beschastnikh, *Mitigating
    Sybils in federated learning poisoning* (FoolsGold), 2018).

    To *join* the target group G, p is taken inside G's acceptance region ∩_{i∈G} F_i
    (declarations and bounds in force): the point of the region nearest the goal point
    t within the budget of G's clean agreement. The Sybils declare bounds that accept
    every member, so every member links with them and G ∪ Sybils keeps a common
    acceptable point. Under the single consensus there is no region: p is the budget
    point from the consensus toward t.

    The number of Sybils s is the threat model's ``sybils`` (default 5).

    Parameters
    ----------
    bound : float, optional
        Bound each Sybil declares for both γˣ and γʷ (clipped to the legal range);
        default the smallest bounds that accept every member of G.

    Budget
    ------
    δ between p and G's clean agreement a_G (per block: ‖ΔX‖ ≤ ε D_X, ‖ΔW‖ ≤ ε D_W,
    inside the δ-ball): small budgets keep the Sybils camouflaged next to the
    agreement, ``inf`` lets them declare the region point nearest t (t itself when
    every member accepts t). Default 0.1; curve (0.02, 0.05, 0.1, 0.2, inf).

    Goal
    ----
    ``capture`` (default; t defaults to the attackers' mean true value system) and
    ``selfish`` (the same point serves the attackers).
    """

    name = "sybil"
    summary = "fake identities declare one point inside a group, adding their weight to it"
    goals = ("capture", "selfish")
    white_box = "computes the target group's acceptance region from its members' declarations"
    needs_sybils = True
    default_budgets = (0.02, 0.05, 0.1, 0.2, float("inf"))

    threat: ThreatModel = field(default_factory=partial(
        ThreatModel, goal="capture", sybils=5))
    bound: float | None = None

    PARAMS: ClassVar[dict[str, Constraint]] = {
        "bound": OrNone(Real(0, inf=True, sample=0.5))}

    def _plan(self, ctx: AttackContext, budget: float) -> AttackPlan:
        s = ctx.threat.sybils
        g = ctx.target_group_id()
        a_G = ctx.clean.X[g], ctx.clean.W[g]
        t = ctx.target_point()
        members = ctx.members(g, honest_only=False)

        def declare(X: np.ndarray, W: np.ndarray) -> Population:
            if self.bound is not None:
                gx = gw = self.bound
            else:
                gx, gw = accepting_bounds(ctx.declared, members, X[0], W[0])
            gx, gw = clip_bounds(ctx.threat, gx, gw)
            return ctx.truth.append(make_identities(
                ctx.truth, np.repeat(X, s, axis=0), np.repeat(W, s, axis=0),
                np.full(s, float(gx)), np.full(s, float(gw)), "sybil"))

        def propose(gx: np.ndarray, gw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            p = region_point(ctx.declared, gx, gw, members, t, anchor=a_G, radius=budget)
            pX, pW = p or a_G  # a_G: in the region, if its boundary defeats the solver
            return pX[None], pW[None]

        if ctx.has_links:
            declared, inside = fit_region(ctx, members, propose, declare)
        else:  # no acceptance region to respect
            pX, pW = project_budget(a_G[0], a_G[1], t[0], t[1], budget)
            declared, inside = declare(pX[None], pW[None]), np.zeros(1, dtype=bool)
        n = ctx.truth.n
        return ctx.plan(declared, sybils=s, info={
            "point": (declared.X[n].tolist(), declared.W[n].tolist()), "sybils": s,
            "group": g, "in_region": bool(inside[0])})
