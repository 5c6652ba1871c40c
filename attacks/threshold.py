"""Threshold shift: move the pairwise-distance quantile that sets everyone's bounds."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial

import numpy as np

from pluralguard.core.mechanism import Mechanism
from pluralguard.core.model import Population
from pluralguard.core.network import link_degrees

from .base import Attack, require_capabilities
from .context import AttackContext
from .geometry import far_point, make_identities, project_budget
from .plan import AttackPlan
from .threat import ThreatModel


@dataclass(frozen=True)
class ThresholdShift(Attack):
    """Declarations that inflate or deflate the quantile bound everyone is given.

    Idea: under ``quantile:q`` every agent's bound is the q-quantile of all pairwise
    declared distances, a statistic of the declarations themselves: each attacker
    contributes n − 1 of the n(n − 1)/2 pairs. To *deflate* the threshold (fewer links,
    smaller acceptable sets: the population fragments) the attackers all declare the
    densest declaration — the honest agent with the most neighbours within the current
    threshold — so as many of their pairs as possible fall below it (and their mutual
    pairs are 0). To *inflate* it (more links, larger sets: groups consolidate) they
    declare a far corner (the box corner opposite the mean judgements, the simplex
    vertex of the least-weighted value), so all their pairs are long; moving toward the
    population mean instead would inflate a low quantile, since it gives up the
    attacker's short within-cluster pairs. It is the poisoning of a data-driven
    threshold, as in Kloft & Laskov, *Security analysis of online centroid anomaly
    detection*, JMLR 2012 (attack points shift a learned radius), applied to the
    mechanism's threshold setter (DESIGN §2).

    Sybils (``threat.sybils``) declare the aim point itself and add n pairs each.

    Budget
    ------
    ε on δ(v̂_a, v_a) per attacker (Sybils have no truth to stay near). Default 0.25
    (about the median distance from an agent to the population mean on ``pve_like``);
    curve (0.05, 0.1, 0.25, 0.5).

    Goal
    ----
    ``fragment`` (default: deflate) or ``consolidate`` (inflate); 5% of the agents
    attack by default.
    """

    name = "threshold_shift"
    summary = "under quantile bounds, declarations that shrink or grow everyone's threshold"
    goals = ("fragment", "consolidate")
    white_box = "aims at the population's distribution of pairwise distances"
    default_budget = 0.25
    default_budgets = (0.05, 0.1, 0.25, 0.5)

    threat: ThreatModel = field(default_factory=partial(
        ThreatModel, goal="fragment", fraction=0.05))

    def _applies(self, truth: Population, mechanism: Mechanism) -> None:
        require_capabilities(self.name, mechanism, {
            "links": "moves the bounds in force, which decide who links",
            "threshold": "moves the pairwise-distance quantile that sets every agent's bound"},
            "use bounds='quantile:Q' for the agreement mechanism")

    def _plan(self, ctx: AttackContext, budget: float) -> AttackPlan:
        A = ctx.attackers
        decl = ctx.declared
        before = ctx.bounds_in_force()
        if ctx.threat.goal.kind == "fragment":
            hub = int(np.argmax(link_degrees(decl, *before)))
            aim = decl.X[hub], decl.W[hub]
        else:
            aim = far_point(decl)
        X, W = project_budget(ctx.truth.X[A], ctx.truth.W[A], aim[0], aim[1], budget)
        declared = ctx.with_declarations(X, W)
        s = ctx.threat.sybils
        if s:
            gx = np.full(s, np.median(ctx.truth.gamma_x)) if ctx.truth.has_bounds else None
            gw = np.full(s, np.median(ctx.truth.gamma_w)) if ctx.truth.has_bounds else None
            declared = declared.append(make_identities(
                ctx.truth, np.repeat(aim[0][None], s, axis=0),
                np.repeat(aim[1][None], s, axis=0), gx, gw, "shift"))
        after = ctx.bounds_in_force(declared)
        return ctx.plan(declared, sybils=s, info={
            "aim": "deflate" if ctx.threat.goal.kind == "fragment" else "inflate",
            "gamma_before": (float(before[0][0]), float(before[1][0])),
            "gamma_after": (float(after[0][0]), float(after[1][0]))})
