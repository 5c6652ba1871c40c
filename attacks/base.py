"""The contract every attack recipe follows (DESIGN §4), and what recipes share.

An **attack** = who (attacker agents and Sybil identities) × knowledge (white-box:
all declarations and the configuration; black-box: outcome queries only, within a
query budget) × capability (budget ε on δ(declared_i, true_i) per attacker, a legal
range for declared bounds, a Sybil count, protocol deviation or not) × goal.

A recipe is a small frozen dataclass with a :meth:`Attack.plan` method:

    plan(truth, mechanism, budget, seed) -> AttackPlan

``truth`` holds every agent's true value system and true bounds (honest agents
declare exactly that); ``mechanism`` is the — possibly defended — mechanism the
attackers face, as an object they may query. The plan is the declared population
(the n original agents, attackers' declarations replaced, then the Sybils), who
attacked, the targets of the goal, an optional message hook (protocol deviation) and
the number of mechanism queries spent.

The threat model is :mod:`~.threat`, the plan :mod:`~.plan`, the helper a recipe
plans with :mod:`~.context`; this module holds the recipe base class :class:`Attack`
and the helpers recipes share (applicability, path budgets, legal bounds, the
strongest plan of a security curve).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from pluralguard.core.errors import InputError, NotApplicable
from pluralguard.core.mechanism import CAPABILITIES, Mechanism, bound_rule_kind
from pluralguard.core.model import Population
from pluralguard.core.params import Constraint, Instance, Validated

from .context import AttackContext
from .goals import GOALS
from .plan import AttackPlan
from .threat import ThreatModel

#: Shares of its budget a path-following recipe tries (``path_budgets``).
PATH_SHARES = tuple(k / 8 for k in range(1, 9))


# ------------------------------------------------------------- applicability
def bound_policy_kind(mechanism: Mechanism) -> str | None:
    """``declared``, ``quantile``, ``fixed`` or ``custom``: the kind of the bound rule of a
    mechanism that links agents under one (capability ``links``), looking through
    wrappers; None for mechanisms without one."""
    if "links" not in mechanism.capabilities:
        return None
    return bound_rule_kind(mechanism.params.get("bounds", "declared"))


def require_capabilities(recipe: str, mechanism: Mechanism, needs: dict[str, str],
                         hint: str) -> None:
    """Raise :class:`NotApplicable` unless the mechanism has every capability of ``needs``.

    Parameters
    ----------
    recipe : str
        The attack's name.
    mechanism : Mechanism
    needs : dict
        capability → what the recipe does with it (completes "it ...").
    hint : str
        What to do instead (e.g. the built-in setting that has the capability).
    """
    have = mechanism.capabilities
    for capability, why in needs.items():
        if capability not in have:
            raise NotApplicable(
                "mechanism", f"attack {recipe!r} does not apply to mechanism "
                f"{mechanism.title}: it {why}, and the mechanism lacks capability "
                f"{capability!r}",
                f"{hint}; a registered mechanism that has it declares it with "
                f"register_mechanism(..., capabilities=[{capability!r}, ...]) "
                f"({capability}: {CAPABILITIES[capability]})")


def path_budgets(budget: float, curve: Sequence[float]) -> list[float]:
    """The budgets ≤ ``budget`` a recipe moving along a fixed path tries: shares
    :data:`PATH_SHARES` of it and the points of its default curve below it, ascending.
    The curve's points make its security curve monotone: every budget of the curve
    tries every smaller one."""
    if math.isinf(budget):
        return [budget, *sorted(b for b in curve if not math.isinf(b))]
    shares = {budget * s for s in PATH_SHARES}
    return sorted(shares | {float(b) for b in curve if b < budget})


def strongest(plans: Sequence[AttackPlan]) -> int:
    """Index of the plan that serves its goal best among plans of one attack at nested
    budgets, listed by ascending budget.

    An attacker allowed budget ε may spend any ε' ≤ ε (every budget of the threat
    model bounds a distance, so the plans legal at ε' are legal at ε): the attack at ε
    is the best of its own plan and those at the smaller budgets, which makes a
    security curve monotone in the budget *by construction* rather than by an
    envelope drawn afterwards. Plans are compared by their measured goal value
    (:attr:`AttackPlan.goal_value`, on the mechanism they were planned against); a
    smaller budget's plan replaces the last one only when it is strictly better (ties
    go to the largest budget); an unmeasured plan (no query left to measure it) is
    never chosen over the last one, nor replaced when it is the last.
    """
    last = len(plans) - 1
    if plans[last].goal_value is None:  # nothing to compare it with
        return last
    measured = [i for i, plan in enumerate(plans) if plan.goal_value is not None]
    return max(measured, key=lambda i: (plans[i].goal_value, i))


def clip_bounds(threat: ThreatModel, gx: np.ndarray | float, gw: np.ndarray | float
                ) -> tuple[np.ndarray, np.ndarray]:
    """Declared bounds clipped into the threat model's legal range."""
    lo, hi = threat.bound_range
    return np.clip(gx, lo, hi), np.clip(gw, lo, hi)


# ---------------------------------------------------------------- the recipe
@dataclass(frozen=True)
class Attack(Validated):
    """Base class of attack recipes (subclass as a frozen dataclass).

    A recipe declares its parameters' constraints in ``PARAMS``
    (:mod:`~pluralguard.core.params`); they are checked when it is built.

    Class attributes
    ----------------
    name : str
        Registry name.
    summary : str
        One line for ``pluralguard list attacks``.
    goals : tuple of str
        Goals the recipe serves (its default goal first).
    white_box : str
        Why the recipe needs white-box knowledge ("" when outcome queries suffice).
    min_queries : int
        Mechanism queries the recipe needs at least (the clean outcome).
    needs_sybils : bool
        Whether the recipe acts through Sybil identities (``threat.sybils`` ≥ 1).
    default_budget : float
        The budget a suite uses for a single measurement.
    default_budgets : tuple of float
        The budgets of a default security curve.
    mechanism_defaults : dict
        Agreement-mechanism settings the recipe needs to apply at all (e.g.
        ``{"method": "dual"}`` for message manipulation); :meth:`mechanism_settings`
        reads them (``pluralguard attack`` uses them when the command line leaves them
        unset).
    """

    name: ClassVar[str] = ""
    summary: ClassVar[str] = ""
    goals: ClassVar[tuple[str, ...]] = GOALS
    white_box: ClassVar[str] = ""
    min_queries: ClassVar[int] = 1
    needs_sybils: ClassVar[bool] = False
    default_budget: ClassVar[float] = 0.1
    default_budgets: ClassVar[tuple[float, ...]] = (0.02, 0.05, 0.1, 0.2)
    mechanism_defaults: ClassVar[Mapping[str, str]] = {}

    threat: ThreatModel = field(default_factory=ThreatModel)

    PARAMS: ClassVar[dict[str, Constraint]] = {
        "threat": Instance((ThreatModel,), what="a ThreatModel",
                           example="ThreatModel(count=2)")}

    def plan(self, truth: Population, mechanism: Mechanism, budget: float,
             seed: int = 0) -> AttackPlan:
        """Build the attack at one budget (see the recipe for what ``budget`` bounds)."""
        if not budget >= 0:
            raise InputError("budget", f"{budget!r} is not a non-negative number",
                             "pass a budget such as 0.1 (normalised distance)")
        self.check(truth, mechanism)
        ctx = AttackContext(truth, mechanism, self.threat, seed)
        return ctx.rational(self._plan(ctx, budget))

    def curve(self, truth: Population, mechanism: Mechanism,
              budgets: Sequence[float] | None = None, seed: int = 0) -> list[AttackPlan]:
        """One plan per budget (default :attr:`default_budgets`), in ascending budget: a
        security curve, monotone because each budget keeps the :func:`strongest` of its
        own plan and those of the smaller budgets."""
        plans = [self.plan(truth, mechanism, b, seed)
                 for b in sorted(budgets or self.default_budgets)]
        return [plans[strongest(plans[:i + 1])] for i in range(len(plans))]

    def check(self, truth: Population, mechanism: Mechanism) -> None:
        """Raise :class:`~pluralguard.core.errors.NotApplicable` saying why the attack
        does not apply to this threat model, population and mechanism, if it does not."""
        t = self.threat
        if t.goal.kind not in self.goals:
            raise NotApplicable("goal", f"attack {self.name!r} does not pursue goal "
                                f"{t.goal.kind!r}", f"use one of {', '.join(self.goals)}")
        if t.knowledge == "black" and self.white_box:
            raise NotApplicable("knowledge", f"attack {self.name!r} needs white-box "
                                f"knowledge: it {self.white_box}", "use knowledge='white', "
                                "or the black-box 'best_response'")
        if t.knowledge == "black" and t.queries < self.min_queries:
            raise NotApplicable("queries", f"black-box attack {self.name!r} needs at least "
                                f"{self.min_queries} mechanism queries, the budget is "
                                f"{t.queries}", f"pass queries>={self.min_queries}")
        if self.needs_sybils and t.sybils < 1:
            raise NotApplicable("sybils", f"attack {self.name!r} acts through Sybil "
                                "identities and the threat model allows none (sybils=0)",
                                "pass sybils>=1")
        self._applies(truth, mechanism)

    def _applies(self, truth: Population, mechanism: Mechanism) -> None:
        """Recipe-specific applicability: raise :class:`NotApplicable` saying why not
        (read :attr:`Mechanism.capabilities`, e.g. with :func:`require_capabilities`)."""

    def _plan(self, ctx: AttackContext, budget: float) -> AttackPlan:
        raise NotImplementedError

    @classmethod
    def mechanism_settings(cls, kind: str, given: Mapping[str, Any]) -> dict[str, str]:
        """The settings of a mechanism of ``kind`` the recipe needs to apply at all
        (:attr:`mechanism_defaults`, for the agreement mechanism) that ``given`` leaves
        unset."""
        if kind != "agreements":
            return {}
        return {k: v for k, v in cls.mechanism_defaults.items() if k not in given}
