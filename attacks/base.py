"""The threat model and the contract every attack recipe follows (DESIGN §4).

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

Targets are a function of the truth, the mechanism, the threat model and the seed
only (never of the recipe), so two recipes run with the same threat model attack
with the same agents toward the same targets and their measurements compare.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar

import numpy as np

from pluralguard.core.bounds import resolve_bounds
from pluralguard.core.errors import InputError, NotApplicable
from pluralguard.core.geometry import normalised_distance
from pluralguard.core.mechanism import CAPABILITIES, Mechanism, Outcome, bound_rule_kind
from pluralguard.core.message_passing import MessageHook
from pluralguard.core.model import Population
from pluralguard.core.network import link_degrees
from pluralguard.core.params import (
    AgentIds,
    Boolean,
    Constraint,
    Instance,
    Integer,
    Options,
    OrNone,
    Pair,
    Real,
    Validated,
    ValueSystem,
    agent_indices,
)

from .goals import GOAL_SPECS, GOALS, Targets

KNOWLEDGE = ("white", "black")
SELECTIONS = ("random", "central", "near_target", "in_target")
#: Default share of the target group's honest members an ``exclude`` goal aims at.
VICTIM_SHARE = 0.25
#: A plan whose goal measure is below −RATIONAL_TOL is replaced by the truth.
RATIONAL_TOL = 1e-12
#: Shares of its budget a path-following recipe tries (``path_budgets``).
PATH_SHARES = tuple(k / 8 for k in range(1, 9))
#: Most Sybil identities a threat model may create: the declared population grows by
#: that many agents (100,000 Sybils of 6 × 5 judgements take ~0.3 GB per copy).
MAX_SYBILS = 100_000


@dataclass(frozen=True)
class Goal(Validated):
    """What the attackers want.

    Parameters
    ----------
    kind : str
        ``selfish`` (raise their own true utility), ``capture`` (drag group ``group``
        toward ``point``), ``exclude`` (victims lose their group or its agreement),
        ``merge`` (join ``groups``), ``split`` (break ``group``), ``fragment`` (more
        groups), ``consolidate`` (fewer groups).
    group : int, optional
        Target group in the clean outcome, by rank of size (0 = largest). Default:
        the largest group when attackers are chosen relative to it (``select`` =
        ``near_target`` / ``in_target``), else the largest group without an attacker.
    point : tuple (X, W), optional
        Target point t for ``capture``; default the attackers' mean true value system
        (which is also the coalition's own optimum, the point ``selfish`` pulls to).
    victims : tuple of int or str, optional
        Agents for ``exclude``, by index (from 0) or name; default the quarter of the target group's
        honest members farthest from t (the coalition keeps the near side).
    groups : tuple of two int, optional
        Size ranks of the groups ``merge`` joins; default the two largest.
    """

    kind: str = "selfish"
    group: int | None = None
    point: tuple[Any, Any] | None = None
    victims: tuple[int | str, ...] | None = None
    groups: tuple[int, int] | None = None

    PARAMS: ClassVar[dict[str, Constraint]] = {
        "kind": Options(GOALS),
        "group": OrNone(Integer(0, sample=0)),
        "point": OrNone(ValueSystem()),
        "victims": OrNone(AgentIds()),
        "groups": OrNone(Pair(Integer(0), Integer(0), what="two different group ranks",
                              example="0+1 (command line) or [0, 1] (suite)")),
    }
    #: Names the parameters have where users write them (``goal=capture``).
    PARAM_LABELS: ClassVar[dict[str, str]] = {"kind": "goal"}

    def _check_together(self) -> None:
        if self.groups is not None and self.groups[0] == self.groups[1]:
            raise InputError("groups", f"{self.groups!r} is not two different group ranks",
                             "pass e.g. groups=(0, 1)")


@dataclass(frozen=True)
class ThreatModel(Validated):
    """Who attacks, what they know and what they may do.

    Parameters
    ----------
    attackers : tuple of int or str, optional
        Explicit attackers, by index (from 0) or agent name. Otherwise ``count``
        agents or a ``fraction`` of the agents are chosen by ``select``.
    fraction : float, optional
        Share of agents that attack (rounded, at least one).
    count : int, optional
        Number of attacking agents (default 1 when neither ids nor fraction given).
    select : {"random", "central", "near_target", "in_target"}
        How attackers are chosen: seeded at random; the most central agents (degree
        in the initial homophily network under the mechanism's bounds in force — for
        a mechanism without a network, such as the single consensus, the network the
        agents' own declared bounds would form — ties broken by closeness to the
        coordinate-wise median declaration); the agents outside the target group
        nearest its clean agreement (outsiders, for infiltration); or members of the
        target group, seeded at random (insiders).
    sybils : int
        Extra identities the attackers may create (at most :data:`MAX_SYBILS`).
    knowledge : {"white", "black"}
        White-box: all declarations and the configuration. Black-box: outcome
        queries only, at most ``queries`` of them.
    queries : int
        Query budget (black-box; the adaptive search also stops there in white-box).
    bound_range : (float, float)
        Legal range of declared bounds (both γˣ and γʷ).
    protocol : bool
        Whether attackers may deviate from the protocol during the iterations.
    goal : Goal or str
    """

    attackers: tuple[int | str, ...] | None = None
    fraction: float | None = None
    count: int | None = None
    select: str = "random"
    sybils: int = 0
    knowledge: str = "white"
    queries: int = 200
    bound_range: tuple[float, float] = (0.0, math.inf)
    protocol: bool = False
    goal: Goal = field(default_factory=Goal)

    PARAMS: ClassVar[dict[str, Constraint]] = {
        "attackers": OrNone(AgentIds()),
        "fraction": OrNone(Real(0, 1, closed="neither", sample=0.05)),
        "count": OrNone(Integer(1, sample=2)),
        "select": Options(SELECTIONS),
        "sybils": Integer(0, MAX_SYBILS, sample=5),
        "knowledge": Options(KNOWLEDGE),
        "queries": Integer(0, sample=200),
        "bound_range": Pair(Real(0, inf=True), Real(0, inf=True),
                            what="a range (low, high) of bounds, 0 <= low <= high",
                            example="0+0.5 (command line) or [0, 0.5] (suite)"),
        "protocol": Boolean(),
        "goal": Instance((Goal, str), what="a goal kind or a Goal",
                         example="capture"),
    }

    def _check_together(self) -> None:
        given = sum(x is not None for x in (self.attackers, self.fraction, self.count))
        if given > 1:
            raise InputError("attackers", "give only one of attackers, fraction and count",
                             "e.g. attackers=(3, 7) or fraction=0.05 or count=2")
        lo, hi = self.bound_range
        if not lo <= hi:
            raise InputError("bound_range", f"({lo}, {hi}) is not a range of bounds",
                             "pass (low, high) with 0 <= low <= high")
        if isinstance(self.goal, str):
            object.__setattr__(self, "goal", Goal(self.goal))


@dataclass(frozen=True)
class AttackPlan:
    """What an attack declares, and what it aims at.

    Attributes
    ----------
    declared : Population
        n original agents (attackers' declarations replaced) followed by the Sybils.
    attackers : ndarray of int
        Indices (< n) of the attacking agents.
    sybils : ndarray of int
        Indices (≥ n) of the Sybil identities.
    goal : Goal
    target_group : ndarray of int or None
        Honest members of the target group in the clean outcome.
    target_point : (ndarray, ndarray) or None
        The point t the attack pulls toward.
    victims : ndarray of int or None
        Agents the attack wants excluded.
    merge_groups : tuple of two ndarrays or None
        Honest members of the two clean groups a ``merge`` joins.
    hook : callable or None
        Message hook for protocol deviation.
    queries : int
        Mechanism queries spent building the plan.
    info : dict
        Recipe-specific facts (chosen parameters, search trace); ``fallback = "truth"``
        when the recipe's own declarations served the goal worse than the truth
        (:meth:`AttackContext.rational`).
    outcome : Outcome or None
        The outcome of the declarations (and hook) on the mechanism the plan was built
        against (its first draw), when the planning measured it.
    goal_value : float or None
        The goal's measure of the plan on that mechanism (the mean over its draws),
        when the planning measured it.
    """

    declared: Population
    attackers: np.ndarray
    sybils: np.ndarray
    goal: Goal
    target_group: np.ndarray | None = None
    target_point: tuple[np.ndarray, np.ndarray] | None = None
    victims: np.ndarray | None = None
    merge_groups: tuple[np.ndarray, np.ndarray] | None = None
    hook: MessageHook | None = None
    queries: int = 0
    info: dict[str, Any] = field(default_factory=dict)
    outcome: Outcome | None = field(default=None, repr=False)
    goal_value: float | None = None

    def to_dict(self, truth: Population, clean: Outcome | None = None) -> dict[str, Any]:
        """What the attack did and aimed at, JSON-ready, so that every metric can be
        recomputed from it with the truth: attackers (index and name) with their
        declarations, Sybils with theirs, the goal and its targets (the target group's
        clean label and honest members, the target point, victims, merged groups),
        queries and the recipe's ``info``."""
        names = truth.agents
        decl = self.declared

        def declaration(i: int) -> dict[str, Any]:
            entry: dict[str, Any] = {"index": int(i), "name": decl.agents[i],
                                     "X": decl.X[i].tolist(), "W": decl.W[i].tolist()}
            if decl.has_bounds:
                entry |= {"gamma_x": float(decl.gamma_x[i]), "gamma_w": float(decl.gamma_w[i])}
            return entry

        def agents(idx: np.ndarray | None) -> list[dict[str, Any]] | None:
            return None if idx is None else [{"index": int(i), "name": names[i]} for i in idx]

        group = None
        if self.target_group is not None:
            group = {"honest_members": agents(self.target_group)}
            if clean is not None and self.target_group.size:
                group["clean_group"] = int(np.bincount(clean.labels[self.target_group])
                                           .argmax())
        return {
            "goal": self.goal.kind,
            "attackers": [declaration(i) for i in self.attackers],
            "sybils": {"count": int(self.sybils.size),
                       "declarations": [declaration(i) for i in self.sybils]},
            "target_group": group,
            "target_point": None if self.target_point is None else {
                "X": np.asarray(self.target_point[0]).tolist(),
                "W": np.asarray(self.target_point[1]).tolist()},
            "victims": agents(self.victims),
            "merge_groups": None if self.merge_groups is None else [
                agents(g) for g in self.merge_groups],
            "protocol_deviation": self.hook is not None,
            "queries": int(self.queries),
            "info": self.info,
        }

    def targets(self, truth: Population, clean: Outcome, utility: str = "quadratic"
                ) -> Targets:
        """The plan's targets against a clean outcome, for :mod:`~.goals` measures."""
        return Targets(truth=truth, clean=clean, attackers=self.attackers, utility=utility,
                       target_group=self.target_group, target_point=self.target_point,
                       victims=self.victims, merge_groups=self.merge_groups)

    def measure(self, truth: Population, clean: Outcome, attacked: Outcome,
                utility: str = "quadratic") -> tuple[float, float]:
        """The goal's measure (main, tie-break) of an attacked outcome (:mod:`~.goals`)."""
        return GOAL_SPECS[self.goal.kind].measure(self.targets(truth, clean, utility),
                                                  attacked)


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
        """One plan per budget (default :attr:`default_budgets`): a security curve."""
        return [self.plan(truth, mechanism, b, seed) for b in budgets or self.default_budgets]

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
