"""What a recipe builds its plan with: :class:`AttackContext` — counted and cached
mechanism queries (:class:`QueryLedger`), the clean outcome, the attackers and the
goal's targets.

Targets are a function of the truth, the mechanism, the threat model and the seed
only (never of the recipe), so two recipes run with the same threat model attack
with the same agents toward the same targets and their measurements compare.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from pluralguard.core.bounds import resolve_bounds
from pluralguard.core.errors import InputError
from pluralguard.core.geometry import normalised_distance
from pluralguard.core.mechanism import Mechanism, Outcome
from pluralguard.core.message_passing import MessageHook
from pluralguard.core.model import Population
from pluralguard.core.network import link_degrees
from pluralguard.core.params import agent_indices

from .goals import GOAL_SPECS, Targets
from .plan import AttackPlan
from .threat import ThreatModel

#: Default share of the target group's honest members an ``exclude`` goal aims at.
VICTIM_SHARE = 0.25
#: A plan whose goal measure is below −RATIONAL_TOL is replaced by the truth.
RATIONAL_TOL = 1e-12


class QueryBudgetExhausted(RuntimeError):
    """A black-box search asked the mechanism more often than its budget allows."""

    def __init__(self, budget: int) -> None:
        super().__init__(f"query budget of {budget} exhausted")
        self.budget = budget


class QueryLedger:
    """Counted, content-cached mechanism queries, shareable between contexts.

    Attributes
    ----------
    count : int
        Queries that reached the mechanism (cache hits are free).
    limit : int or None
        Budget enforced by :meth:`AttackContext.query` (black-box), else None.
    """

    def __init__(self, limit: int | None) -> None:
        self.count = 0
        self.limit = limit
        self.cache: dict[str, Outcome] = {}

    @property
    def left(self) -> float:
        """Queries left (``inf`` without a limit)."""
        return math.inf if self.limit is None else self.limit - self.count


class AttackContext:
    """Helper a recipe builds its plan with: queries, the clean outcome, the targets.

    Every call of :meth:`query` is counted (and cached by content, so repeating a
    query is free); a black-box recipe must stay within ``threat.queries``.
    Contexts built with the same ``ledger`` share the count and the cache (the
    adaptive search runs the fixed recipes that way).
    """

    def __init__(self, truth: Population, mechanism: Mechanism, threat: ThreatModel,
                 seed: int, ledger: QueryLedger | None = None) -> None:
        self.truth = truth
        self.mechanism = mechanism
        self.threat = threat
        self.seed = seed
        self.rng = np.random.default_rng(seed)
        self.ledger = ledger or QueryLedger(threat.queries if threat.knowledge == "black"
                                            else None)
        self._attackers: np.ndarray | None = None
        self._declared: Population | None = None
        self._targets: Targets | None = None
        self._draw_targets: dict[int, Targets] = {}
        self._sessions: dict[int, Callable[[Population], Outcome]] = {}

    # ------------------------------------------------------------ mechanism
    @property
    def queries(self) -> int:
        """Mechanism queries spent so far (on this context's ledger)."""
        return self.ledger.count

    @property
    def draws(self) -> tuple[Mechanism, ...]:
        """The mechanism's draws: several for a randomized one
        (:class:`~pluralguard.core.draws.Draws`), else the mechanism itself."""
        return tuple(getattr(self.mechanism, "draws", ())) or (self.mechanism,)

    def query(self, declared: Population, hook: MessageHook | None = None,
              draw: int = 0) -> Outcome:
        """Run one draw of the mechanism on declarations (counted; identical queries
        are cached)."""
        key = f"{draw}:{declared.fingerprint()}"
        if hook is None and key in self.ledger.cache:
            return self.ledger.cache[key]
        if self.ledger.left <= 0:
            raise QueryBudgetExhausted(self.ledger.limit or 0)
        self.ledger.count += 1
        if hook is not None:
            return self.draws[draw](declared, hook=hook)
        if draw not in self._sessions:  # queries stay near the truth: solve incrementally
            self._sessions[draw] = self.draws[draw].session(self.truth)
        out = self.ledger.cache[key] = self._sessions[draw](declared)
        return out

    def evaluate(self, declared: Population, hook: MessageHook | None = None
                 ) -> tuple[float, float, Outcome]:
        """The goal's measure (main, tie-break) of declarations and their outcome.

        For a randomized mechanism the measure is the mean over its draws, each against
        the clean outcome of the same draw (expectation over transformation; one
        counted query per draw); the outcome returned is the first draw's.
        """
        spec = GOAL_SPECS[self.threat.goal.kind]
        outcomes = [self.query(declared, hook, d) for d in range(len(self.draws))]
        main, tie = np.mean([spec.measure(self.targets(d), out)
                             for d, out in enumerate(outcomes)], axis=0)
        return float(main), float(tie), outcomes[0]

    def measure(self, declared: Population, hook: MessageHook | None = None
                ) -> tuple[float, float]:
        """The goal's measure (main, tie-break) of declarations (:meth:`evaluate`)."""
        return self.evaluate(declared, hook)[:2]

    @property
    def clean(self) -> Outcome:
        """Outcome of honest play (everyone declares the truth)."""
        return self.query(self.truth)

    @property
    def has_links(self) -> bool:
        """Whether the mechanism links agents under bounds in force (capability
        ``links``), so that acceptance regions exist."""
        return "links" in self.mechanism.capabilities

    @property
    def utility_kind(self) -> str:
        """The utility the mechanism optimises (and the metrics use)."""
        return str(self.mechanism.params.get("utility", "quadratic"))

    @property
    def declared(self) -> Population:
        """Honest declarations as the mechanism sees them (after its transforms)."""
        if self._declared is None:
            self._declared = self.mechanism.declare(self.truth)
        return self._declared

    def bounds_in_force(self, declared: Population | None = None
                        ) -> tuple[np.ndarray, np.ndarray] | None:
        """Bounds (γˣ, γʷ) the agreement mechanism applies to ``declared`` (default the
        honest declarations); None for mechanisms without acceptable sets."""
        if not self.has_links:
            return None
        pop = self.declared if declared is None else self.mechanism.declare(declared)
        return resolve_bounds(pop, self.mechanism.params.get("bounds", "declared"),
                              random_state=self.mechanism.params.get("random_state", 0))

    # ------------------------------------------------------------- who/what
    def group_by_rank(self, rank: int, exclude: np.ndarray | None = None) -> int:
        """Clean group id with the given size rank (0 = largest), optionally avoiding
        groups that contain any agent of ``exclude``."""
        labels = self.clean.labels[: self.truth.n]
        sizes = np.bincount(labels, minlength=self.clean.n_groups)
        order = np.argsort(-sizes, kind="stable")
        order = order[sizes[order] > 0]
        if exclude is not None and exclude.size:
            banned = set(labels[exclude].tolist())
            allowed = [g for g in order if g not in banned]
            order = np.array(allowed or list(order))
        if rank >= order.size:
            raise InputError("goal", f"group rank {rank} but the clean outcome has only "
                             f"{order.size} eligible groups", "target a larger group rank")
        return int(order[rank])

    def target_group_id(self) -> int:
        """The clean group the goal targets (see :class:`Goal`)."""
        goal, select = self.threat.goal, self.threat.select
        if goal.group is not None:
            return self.group_by_rank(goal.group)
        if select in ("near_target", "in_target"):
            return self.group_by_rank(0)
        return self.group_by_rank(0, exclude=self.attackers)

    def members(self, group: int, honest_only: bool = True) -> np.ndarray:
        """Clean members of a group (without the attackers by default)."""
        labels = self.clean.labels[: self.truth.n]
        idx = np.flatnonzero(labels == group)
        if honest_only:
            idx = np.setdiff1d(idx, self.attackers)
        return idx

    @property
    def attackers(self) -> np.ndarray:
        """Indices of the attacking agents under the threat model."""
        if self._attackers is None:
            self._attackers = self._select()
        return self._attackers

    def _select(self) -> np.ndarray:
        t, n = self.threat, self.truth.n
        if t.attackers is not None:
            return agent_indices(t.attackers, self.truth.agents, "attackers")
        count = t.count or 1
        if t.fraction is not None:
            count = max(1, round(t.fraction * n))
        count = min(count, n - 1)
        if t.select == "random":
            return np.sort(self.rng.choice(n, size=count, replace=False))
        if t.select == "central":
            return np.sort(np.argsort(-self._centrality(), kind="stable")[:count])
        g = self.group_by_rank(t.goal.group or 0)
        inside = self.clean.labels[:n] == g
        if t.select == "in_target":
            pool = np.flatnonzero(inside) if inside.sum() >= count else np.arange(n)
            return np.sort(self.rng.choice(pool, size=count, replace=False))
        d = normalised_distance(self.truth.X, self.truth.W, self.clean.X[g], self.clean.W[g])
        if (~inside).sum() >= count:  # else fall back to everyone, nearest first
            d = np.where(inside, np.inf, d)
        return np.sort(np.argsort(d, kind="stable")[:count])

    def _centrality(self) -> np.ndarray:
        """Degree in the homophily network plus a closeness tie-break in [0, 0.5]."""
        decl = self.declared
        bounds = self.bounds_in_force()
        if bounds is None and decl.has_bounds:
            bounds = (np.asarray(decl.gamma_x), np.asarray(decl.gamma_w))
        close = 0.5 * (1.0 - normalised_distance(decl.X, decl.W, np.median(decl.X, axis=0),
                                                 np.median(decl.W, axis=0)))
        if bounds is None:
            return close
        return link_degrees(decl, *bounds) + close

    def target_point(self) -> tuple[np.ndarray, np.ndarray]:
        """The goal's point t (default: the attackers' mean true value system)."""
        point = self.threat.goal.point
        if point is not None:
            k, m = self.truth.k, self.truth.m
            try:
                X = np.asarray(point[0], dtype=float).reshape(k, m)
                W = np.asarray(point[1], dtype=float).reshape(m)
            except (TypeError, ValueError, IndexError):
                raise InputError("point", f"is not a value system (X of shape ({k}, {m}), "
                                 f"W of shape ({m},))", "pass point=(X, W)") from None
            return X, W
        a = self.attackers
        w = self.truth.weight[a]
        return np.tensordot(w, self.truth.X[a], axes=1) / w.sum(), w @ self.truth.W[a] / w.sum()

    def victims(self) -> np.ndarray:
        """Agents an ``exclude`` goal aims at (see :class:`Goal`)."""
        goal = self.threat.goal
        if goal.victims is not None:
            return agent_indices(goal.victims, self.truth.agents, "victims")
        g = self.members(self.target_group_id())
        tX, tW = self.target_point()
        d = normalised_distance(self.truth.X[g], self.truth.W[g], tX, tW)
        count = max(1, math.ceil(VICTIM_SHARE * g.size))
        return np.sort(g[np.argsort(-d, kind="stable")[:count]])

    def merge_group_ids(self) -> tuple[int, int]:
        """Clean group ids a ``merge`` goal joins."""
        a, b = self.threat.goal.groups or (0, 1)
        return self.group_by_rank(a), self.group_by_rank(b)

    def targets(self, draw: int = 0) -> Targets:
        """What the goal is measured against (:class:`~.goals.Targets`), computed once:
        the clean outcome (of one draw of a randomized mechanism), the attackers, and
        the targets the goal needs (always from the first draw's clean outcome)."""
        if self._targets is None:
            needs = GOAL_SPECS[self.threat.goal.kind].needs
            group = self.members(self.target_group_id()) if "target_group" in needs else None
            merge = None
            if "merge_groups" in needs:
                a, b = self.merge_group_ids()
                merge = (self.members(a), self.members(b))
            self._targets = Targets(
                truth=self.truth, clean=self.clean, attackers=self.attackers,
                utility=self.utility_kind, target_group=group,
                target_point=self.target_point() if "target_point" in needs else None,
                victims=self.victims() if "victims" in needs else None, merge_groups=merge)
        if draw == 0:
            return self._targets
        if draw not in self._draw_targets:
            self._draw_targets[draw] = replace(self._targets,
                                               clean=self.query(self.truth, draw=draw))
        return self._draw_targets[draw]

    def best_of(self, candidates: Sequence[Population]) -> tuple[int, float]:
        """Index and goal measure of the candidate declarations that serve the goal best
        (score = main + TIE_WEIGHT · tie; ties go to the earliest): one counted query
        each. Recipes that move along a path use it to pick how far to go, so that a
        larger budget — which may always spend less — never does worse on the path."""
        spec = GOAL_SPECS[self.threat.goal.kind]
        scores = [self.measure(c) for c in candidates]
        best = max(range(len(candidates)), key=lambda i: (spec.score(*scores[i]), -i))
        return best, scores[best][0]

    def rational(self, plan: AttackPlan) -> AttackPlan:
        """The plan, or telling the truth if the plan serves the goal worse.

        An attacker who can evaluate its declarations does not make them when they
        serve its goal worse than the truth: the plan's outcome is measured (one
        counted query, free when already made) and, when its goal measure is below the
        truth's 0, the attackers declare the truth instead (``info["fallback"] =
        "truth"``, ``info["plan_measure"]`` the recipe's own value). Without a query
        left the plan is kept unchecked (``info["checked"] = False``).
        """
        if plan.goal_value is not None and plan.outcome is not None:
            main, out = plan.goal_value, plan.outcome
        else:
            try:
                main, _, out = self.evaluate(plan.declared, plan.hook)
            except QueryBudgetExhausted:
                return replace(plan, info={**plan.info, "checked": False})
        if main >= -RATIONAL_TOL:
            return replace(plan, outcome=out, goal_value=main, queries=self.queries)
        truth = self.plan(self.truth, info={**plan.info, "fallback": "truth",
                                            "plan_measure": main})
        return replace(truth, outcome=self.clean, goal_value=self.measure(self.truth)[0])

    def plan(self, declared: Population, sybils: int = 0, *, hook: MessageHook | None = None,
             info: dict[str, Any] | None = None) -> AttackPlan:
        """Package declarations into an :class:`AttackPlan` with the goal's targets."""
        t = self.targets()
        n = self.truth.n
        return AttackPlan(
            declared=declared, attackers=self.attackers, goal=self.threat.goal,
            sybils=np.arange(n, n + sybils), target_group=t.target_group,
            target_point=t.target_point, victims=t.victims, merge_groups=t.merge_groups,
            hook=hook, queries=self.queries, info=info or {})

    def with_declarations(self, X: np.ndarray, W: np.ndarray, gamma_x: np.ndarray | None = None,
                          gamma_w: np.ndarray | None = None) -> Population:
        """The truth with the attackers' rows replaced (bounds too when given)."""
        a = self.attackers
        X2, W2 = np.array(self.truth.X), np.array(self.truth.W)
        X2[a], W2[a] = X, W
        changes: dict[str, Any] = {"X": X2, "W": W2}
        if gamma_x is not None and self.truth.has_bounds:
            gx, gw = np.array(self.truth.gamma_x), np.array(self.truth.gamma_w)
            gx[a], gw[a] = gamma_x, gamma_w
            changes |= {"gamma_x": gx, "gamma_w": gw}
        return self.truth.replace(**changes)
