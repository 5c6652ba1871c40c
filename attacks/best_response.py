"""Adaptive best response: a derivative-free search against the defended mechanism."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np
from scipy.optimize import minimize

from pluralguard.core.errors import InputError
from pluralguard.core.geometry import normalised_distance
from pluralguard.core.message_passing import MessageHook
from pluralguard.core.model import Population

from .base import (
    GOALS,
    Attack,
    AttackContext,
    AttackPlan,
    QueryBudgetExhausted,
    ThreatModel,
    bound_policy_kind,
    clip_bounds,
)
from .geometry import direction_point
from .objectives import TIE_WEIGHT, GoalMeasure
from .overshoot import Overshoot

OPTIMISERS = ("Nelder-Mead", "Powell")
#: Range of the searched log2 bound scale (declared bounds × 2^β).
BOUND_SCALE = (-8.0, 1.0)


@dataclass
class _Candidate:
    """One evaluated attack: its measure, where it came from, and how to rebuild it."""

    score: tuple[float, float]
    source: str
    declared: Population
    sybils: int
    hook: MessageHook | None
    info: dict[str, Any]


class _Stop(Exception):
    """The search ran out of queries."""


def _unit(dX: np.ndarray, dW: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Directions scaled to unit δ-length (zero stays zero)."""
    norm = normalised_distance(dX, dW, np.zeros_like(dX), np.zeros_like(dW))
    inv = 1.0 / np.maximum(norm, 1e-300)
    return dX * inv[..., None, None], dW * inv[..., None]


@dataclass(frozen=True)
class BestResponse(Attack):
    """Search the attackers' declarations for the best answer to the defended mechanism.

    Idea: a defense is only as good as its worst case against an attacker who knows
    it (Tramèr, Carlini, Brendel & Madry, *On adaptive attacks to adversarial example
    defenses*, NeurIPS 2020). This recipe treats the defended mechanism as a black box
    and maximises the goal's own measure (:class:`~.objectives.GoalMeasure`: the
    attackers' true utility gain, the capture of the target group toward t, the
    exclusion rate, …) computed from query outcomes:

    1. **white-box shortcut** — under the ℓ2 single consensus without transforms, a
       selfish or capture misreport has a closed form (``overshoot``: the
       δ-projection of v + (Σw/w_i)(t − a) onto the budget ball), optimal for one
       attacker, so the search is skipped;
    2. **seeds** — every applicable fixed recipe, run with the same threat model
       (so the same attackers and targets), is evaluated: the answer is never weaker
       than any of them;
    3. **search** — a derivative-free optimiser from scipy (Nelder–Mead, Nelder &
       Mead 1965, or Powell 1964; deterministic from a fixed start) over a
       low-dimensional parametrisation shared by the coalition: weights α of three
       unit directions per attacker — (t − a) push the current agreement toward the
       goal, (t − v) move toward the goal, (v − c) spread away from the population
       mean c — a step s ∈ [0, 1] of the budget along the mixed direction (the
       farthest valid point, :func:`~.geometry.direction_point`), and under declared
       bounds a log₂ bound scale β ∈ [−8, 1].

    The goal point t is the goal's: the coalition's mean truth (``selfish``), the
    target point (``capture``), the reflection of the victims' mean through the
    group's agreement (``exclude``, ``split``), the midpoint of the two agreements
    (``merge``), the population mean (``fragment``, ``consolidate``). Mechanism calls
    are cached by the declarations, so revisited points are free; the plan reports
    the queries used, which never exceed ``threat.queries`` (default 40, black-box).

    Parameters
    ----------
    recipes : tuple of str, optional
        Fixed recipes to seed with; default every registered recipe.
    optimiser : {"Nelder-Mead", "Powell"}

    Budget
    ------
    ε on δ(v̂_a, v_a) per attacker (``inf`` = anywhere valid), passed to the seeds
    too. Default 0.1; curve (0.02, 0.05, 0.1, 0.2, 0.4).

    Goal
    ----
    Any. ``info`` holds every seed's measure (and why skipped ones do not apply),
    the best search point, and which candidate won.
    """

    name = "best_response"
    summary = "adaptive black-box search of the declarations, seeded with every recipe"
    goals = GOALS
    min_queries = 2
    default_budgets = (0.02, 0.05, 0.1, 0.2, 0.4)

    threat: ThreatModel = field(default_factory=partial(
        ThreatModel, knowledge="black", queries=40))
    recipes: tuple[str, ...] | None = None
    optimiser: str = "Nelder-Mead"

    def __post_init__(self) -> None:
        if self.optimiser not in OPTIMISERS:
            raise InputError("optimiser", f"unknown optimiser {self.optimiser!r}",
                             f"use one of {', '.join(OPTIMISERS)}")

    # -------------------------------------------------------------- planning
    def _plan(self, ctx: AttackContext, budget: float) -> AttackPlan:
        if ctx.ledger.limit is None:  # white-box: the search still stops at its budget
            ctx.ledger.limit = ctx.threat.queries
        measure = GoalMeasure(ctx)
        found: list[_Candidate] = []

        def evaluate(declared: Population, sybils: int, hook: MessageHook | None,
                     source: str, info: dict[str, Any]) -> tuple[float, float]:
            score = measure(ctx.query(declared, hook))
            found.append(_Candidate(score, source, declared, sybils, hook, info))
            return score

        seeds: dict[str, float] = {}
        skipped: dict[str, str] = {}
        closed = self._closed_form(ctx)
        try:
            if closed:
                plan = Overshoot(threat=ctx.threat)._plan(ctx, budget)
                evaluate(plan.declared, 0, None, "closed_form", plan.info)
            for name, seed_plan in self._seed_plans(ctx, budget, skipped):
                score = evaluate(seed_plan.declared, seed_plan.sybils.size, seed_plan.hook,
                                 name, seed_plan.info)
                seeds[name] = score[0]
            if not closed:
                self._search(ctx, budget, evaluate)
        except QueryBudgetExhausted:
            pass  # keep the best found within the budget
        if not found:
            raise InputError("queries", f"best_response spent its {ctx.threat.queries} "
                             "queries before evaluating a single candidate",
                             "raise the query budget")
        best = max(found, key=lambda c: c.score)
        search = [c.score[0] for c in found if c.source == "search"]
        info = {"source": best.source, "score": best.score[0], "tie": best.score[1],
                "seeds": seeds, "skipped": skipped, "closed_form": closed,
                "search_best": max(search) if search else None,
                "evaluations": len(found), "candidate": best.info}
        return ctx.plan(best.declared, sybils=best.sybils, hook=best.hook, info=info)

    @staticmethod
    def _closed_form(ctx: AttackContext) -> bool:
        """Whether the ℓ2 consensus shortcut is exact here (one attacker, white-box)."""
        p = ctx.mechanism.params.get("p", 2)
        return (ctx.mechanism.kind == "consensus" and not ctx.mechanism.transforms
                and ctx.threat.knowledge == "white" and ctx.attackers.size == 1
                and ctx.threat.goal.kind in ("selfish", "capture")
                and float(p) == 2.0)

    def _seed_plans(self, ctx: AttackContext, budget: float, skipped: dict[str, str]):
        """Plans of the applicable fixed recipes (inapplicable ones go to ``skipped``)."""
        from . import ATTACKS  # the registry imports this module

        for name in self.recipes or tuple(ATTACKS):
            if name == self.name:
                continue
            if name not in ATTACKS:
                raise InputError("recipes", f"unknown attack {name!r}",
                                 f"use names from {', '.join(ATTACKS)}")
            recipe = ATTACKS[name](threat=ctx.threat)
            try:
                recipe.check(ctx.truth, ctx.mechanism)
            except InputError as err:
                skipped[name] = f"{err.field}: {err.problem}"
                continue
            sub = AttackContext(ctx.truth, ctx.mechanism, ctx.threat, ctx.seed, ctx.ledger)
            yield name, recipe._plan(sub, budget)

    # ---------------------------------------------------------------- search
    def _goal_point(self, ctx: AttackContext) -> tuple[np.ndarray, np.ndarray]:
        kind, clean, decl = ctx.threat.goal.kind, ctx.clean, ctx.declared
        if kind in ("exclude", "split"):
            g = ctx.target_group_id()
            victims = ctx.victims() if kind == "exclude" else ctx.members(g)
            return (2 * clean.X[g] - decl.X[victims].mean(axis=0),
                    2 * clean.W[g] - decl.W[victims].mean(axis=0))
        if kind == "merge":
            a, b = ctx.merge_group_ids()
            return 0.5 * (clean.X[a] + clean.X[b]), 0.5 * (clean.W[a] + clean.W[b])
        if kind in ("fragment", "consolidate"):
            return decl.X.mean(axis=0), decl.W.mean(axis=0)
        return ctx.target_point()

    def _search(self, ctx: AttackContext, budget: float, evaluate: Any) -> None:
        A, n = ctx.attackers, ctx.truth.n
        vX, vW = ctx.truth.X[A], ctx.truth.W[A]
        tX, tW = self._goal_point(ctx)
        labels = ctx.clean.labels[:n]
        aX, aW = ctx.clean.X[labels[A]], ctx.clean.W[labels[A]]
        cX, cW = ctx.declared.X.mean(axis=0), ctx.declared.W.mean(axis=0)
        basis = [_unit(tX - aX, tW - aW), _unit(tX - vX, tW - vW), _unit(vX - cX, vW - cW)]
        radius = min(budget, 1.0)  # δ ≤ 1 on the valid set: inf and 1 coincide
        with_bounds = (bound_policy_kind(ctx.mechanism) in ("declared", "custom")
                       and ctx.truth.has_bounds)
        gx0 = np.asarray(ctx.truth.gamma_x)[A] if with_bounds else None
        gw0 = np.asarray(ctx.truth.gamma_w)[A] if with_bounds else None
        lower = [-1.0, -1.0, -1.0, 0.0] + ([BOUND_SCALE[0]] if with_bounds else [])
        upper = [1.0, 1.0, 1.0, 1.0] + ([BOUND_SCALE[1]] if with_bounds else [])

        def declare(theta: np.ndarray) -> Population:
            dX = sum(a * b[0] for a, b in zip(theta[:3], basis, strict=True))
            dW = sum(a * b[1] for a, b in zip(theta[:3], basis, strict=True))
            X, W = direction_point(vX, vW, dX, dW, float(theta[3]) * radius)
            if not with_bounds:
                return ctx.with_declarations(X, W)
            gx, gw = clip_bounds(ctx.threat, gx0 * 2.0 ** theta[4], gw0 * 2.0 ** theta[4])
            return ctx.with_declarations(X, W, gx, gw)

        def objective(theta: np.ndarray) -> float:
            theta = np.clip(theta, lower, upper)
            if ctx.ledger.left <= 0:
                raise _Stop
            main, tie = evaluate(declare(theta), 0, None, "search",
                                 {"theta": [round(float(x), 6) for x in theta]})
            return -(main + TIE_WEIGHT * tie)

        x0 = np.array([1.0, 0.0, 0.0, 1.0] + ([0.0] if with_bounds else []))
        steps = np.array([-0.5, 0.5, 0.5, -0.5] + ([-2.0] if with_bounds else []))
        options: dict[str, Any] = {"maxfev": max(int(ctx.ledger.left), 1)}
        if self.optimiser == "Nelder-Mead":
            options["initial_simplex"] = np.vstack([x0, x0 + np.diag(steps)])
        try:
            minimize(objective, x0, method=self.optimiser, bounds=list(zip(lower, upper,
                                                                            strict=True)),
                     options=options)
        except _Stop:
            pass
