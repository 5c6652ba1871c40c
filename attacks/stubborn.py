"""Stubborn bounds: declare the truth with (almost) no concession."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import ClassVar

import numpy as np

from pluralguard.core.errors import NotApplicable
from pluralguard.core.mechanism import Mechanism
from pluralguard.core.model import Population

from .base import Attack, clip_bounds, require_capabilities
from .context import AttackContext
from .plan import AttackPlan
from .threat import ThreatModel


@dataclass(frozen=True)
class Stubborn(Attack):
    """Declare one's true value system with a shrunken confidence bound, γ̂ → 0.

    Idea: an agreement must lie in every member's acceptable set, so an agent that
    concedes nothing either drags its group's agreement to within γ̂ of its own point
    or is left alone with an agreement equal to its truth — both raise its own utility
    at the others' expense. It is the *stubborn agent* of opinion dynamics, who never
    updates and pulls every connected agent toward itself (Acemoglu, Como, Fagnani &
    Ozdaglar, *Opinion fluctuations and disagreement in social networks*, Math. of
    OR 2013), in a bounded-confidence network (Hegselmann & Krause, JASSS 2002).

    Applies only where declared bounds matter: the agreement mechanism under the
    ``declared`` bound policy (or a custom bound rule).

    Budget
    ------
    The share b of the true bound the attacker withholds: γ̂ = (1 − min(b, 1))·γ
    (both γˣ and γʷ), clipped to the legal ``bound_range``; b = 1 declares the lower
    end of the range (0 by default). δ(v̂, v) = 0. Default 0.9; curve (0.5, 0.75,
    0.9, 0.99, 1).

    Goal
    ----
    ``selfish`` (default) or ``capture`` (the pull is toward the attackers' truths).
    By default the single most central agent is stubborn (``select='central'``): an
    agent that links with nobody has no group to hold hostage.
    """

    name = "stubborn"
    mechanism_defaults: ClassVar[Mapping[str, str]] = {"bounds": "declared"}
    summary = "declare the truth with a tiny bound, so agreements must come to you"
    goals = ("selfish", "capture")
    default_budget = 0.9
    default_budgets = (0.5, 0.75, 0.9, 0.99, 1.0)

    threat: ThreatModel = field(default_factory=partial(ThreatModel, select="central"))

    def _applies(self, truth: Population, mechanism: Mechanism) -> None:
        require_capabilities(self.name, mechanism, {
            "declared_bounds": "acts through a declared bound (a stubborn agent declares a "
                               "tiny one)"},
            "use bounds='declared' for the agreement mechanism, or 'overshoot' against a "
            "mechanism that ignores declared bounds")
        if not truth.has_bounds:
            raise NotApplicable("population", "attack 'stubborn' shrinks the attackers' true "
                                "bounds and the population has none",
                                "give agents bounds (gamma_x, gamma_w)")

    def _plan(self, ctx: AttackContext, budget: float) -> AttackPlan:
        A = ctx.attackers
        keep = 1.0 - min(budget, 1.0)
        gx, gw = clip_bounds(ctx.threat, keep * np.asarray(ctx.truth.gamma_x)[A],
                             keep * np.asarray(ctx.truth.gamma_w)[A])
        declared = ctx.with_declarations(ctx.truth.X[A], ctx.truth.W[A], gx, gw)
        return ctx.plan(declared, info={"bound_x": gx.tolist(), "bound_w": gw.tolist()})
