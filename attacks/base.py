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
attacked, the target of the goal, an optional message hook (protocol deviation) and
the number of mechanism queries spent.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, fields, replace
from typing import Any, ClassVar

import numpy as np

from pluralguard.core.errors import InputError
from pluralguard.core.geometry import normalised_distance, project_box, project_simplex
from pluralguard.core.mechanism import Mechanism, Outcome
from pluralguard.core.message_passing import MessageHook
from pluralguard.core.model import Population

GOALS = ("selfish", "capture", "exclude", "merge", "split", "fragment", "consolidate")
KNOWLEDGE = ("white", "black")
SELECTIONS = ("random", "central", "near_target")


@dataclass(frozen=True)
class Goal:
    """What the attackers want.

    Parameters
    ----------
    kind : str
        ``selfish`` (raise their own true utility), ``capture`` (drag group ``group``
        toward ``point``), ``exclude`` (victims lose their group), ``merge`` (join
        ``groups``), ``split`` (break ``group``), ``fragment`` (more groups),
        ``consolidate`` (fewer groups).
    group : int, optional
        Target group in the clean outcome, by rank of size (0 = largest). Default:
        the largest group without an attacker.
    point : tuple (X, W), optional
        Target point t for ``capture``; default the attackers' mean true value system.
    victims : tuple of int, optional
        Agent indices for ``exclude``; default the target group's honest members.
    groups : tuple of two int, optional
        Size ranks of the groups ``merge`` joins; default the two largest.
    """

    kind: str = "selfish"
    group: int | None = None
    point: tuple[Any, Any] | None = None
    victims: tuple[int, ...] | None = None
    groups: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        if self.kind not in GOALS:
            raise InputError("goal", f"unknown goal {self.kind!r}",
                             f"use one of {', '.join(GOALS)}")


@dataclass(frozen=True)
class ThreatModel:
    """Who attacks, what they know and what they may do.

    Parameters
    ----------
    attackers : tuple of int, optional
        Explicit attacker agent indices. Otherwise ``count`` agents or a ``fraction``
        of the agents are chosen by ``select``.
    fraction : float, optional
        Share of agents that attack (rounded, at least one).
    count : int, optional
        Number of attacking agents (default 1 when neither ids nor fraction given).
    select : {"random", "central", "near_target"}
        How attackers are chosen: seeded at random, the most central agents of the
        homophily network (degree), or the agents nearest the target group's clean
        agreement.
    sybils : int
        Extra identities the attackers may create.
    knowledge : {"white", "black"}
        White-box: all declarations and the configuration. Black-box: outcome
        queries only.
    queries : int
        Query budget (black-box search).
    bound_range : (float, float)
        Legal range of declared bounds (both γˣ and γʷ).
    protocol : bool
        Whether attackers may deviate from the protocol during the iterations.
    goal : Goal
    """

    attackers: tuple[int, ...] | None = None
    fraction: float | None = None
    count: int | None = None
    select: str = "random"
    sybils: int = 0
    knowledge: str = "white"
    queries: int = 200
    bound_range: tuple[float, float] = (0.0, math.inf)
    protocol: bool = False
    goal: Goal = field(default_factory=Goal)

    def __post_init__(self) -> None:
        given = sum(x is not None for x in (self.attackers, self.fraction, self.count))
        if given > 1:
            raise InputError("attackers", "give only one of attackers, fraction and count",
                             "e.g. attackers=(3, 7) or fraction=0.05 or count=2")
        if self.fraction is not None and not 0 < self.fraction < 1:
            raise InputError("fraction", f"{self.fraction} is not in (0, 1)",
                             "pass a share of agents such as 0.05")
        if self.count is not None and self.count < 1:
            raise InputError("count", f"{self.count} attackers", "pass at least 1")
        if self.select not in SELECTIONS:
            raise InputError("select", f"unknown selection {self.select!r}",
                             f"use one of {', '.join(SELECTIONS)}")
        if self.knowledge not in KNOWLEDGE:
            raise InputError("knowledge", f"unknown knowledge {self.knowledge!r}",
                             "use 'white' or 'black'")
        if self.sybils < 0:
            raise InputError("sybils", "negative Sybil count", "pass sybils >= 0")
        lo, hi = self.bound_range
        if not 0 <= lo <= hi:
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
        Recipe-specific facts (chosen parameters, search trace).
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

    @property
    def n_honest_slots(self) -> int:
        """Number of original agents (Sybils come after them)."""
        return self.declared.n - self.sybils.size


class AttackContext:
    """Helper a recipe builds its plan with: queries, the clean outcome, the target.

    Every call of :meth:`query` is counted (and cached by content, so repeating a
    query is free); a black-box recipe must stay within ``threat.queries``.
    """

    def __init__(self, truth: Population, mechanism: Mechanism, threat: ThreatModel,
                 seed: int) -> None:
        if not truth.has_bounds:
            raise InputError("population", "the true population has no bounds",
                             "give agents true bounds (gamma_x, gamma_w) before attacking")
        self.truth = truth
        self.mechanism = mechanism
        self.threat = threat
        self.rng = np.random.default_rng(seed)
        self.queries = 0
        self._cache: dict[str, Outcome] = {}
        self._clean: Outcome | None = None
        self._attackers: np.ndarray | None = None

    # ------------------------------------------------------------ mechanism
    def query(self, declared: Population, hook: MessageHook | None = None) -> Outcome:
        """Run the mechanism on declarations (counted; identical queries are cached)."""
        key = declared.fingerprint()
        if hook is None and key in self._cache:
            return self._cache[key]
        if self.threat.knowledge == "black" and self.queries >= self.threat.queries:
            raise QueryBudgetExhausted(self.threat.queries)
        self.queries += 1
        out = self.mechanism(declared, hook=hook)
        if hook is None:
            self._cache[key] = out
        return out

    @property
    def clean(self) -> Outcome:
        """Outcome of honest play (everyone declares the truth)."""
        if self._clean is None:
            self._clean = self.query(self.truth)
        return self._clean

    # ------------------------------------------------------------- who/what
    def group_by_rank(self, rank: int, exclude: np.ndarray | None = None) -> int:
        """Clean group id with the given size rank (0 = largest), optionally avoiding
        groups that contain any agent of ``exclude``."""
        labels = self.clean.labels[: self.truth.n]
        sizes = np.bincount(labels, minlength=self.clean.n_groups)
        order = np.argsort(-sizes, kind="stable")
        if exclude is not None and exclude.size:
            banned = set(labels[exclude].tolist())
            allowed = [g for g in order if g not in banned]
            order = np.array(allowed or list(order))
        if rank >= order.size:
            raise InputError("goal", f"group rank {rank} but the clean outcome has only "
                             f"{order.size} eligible groups", "target a larger group rank")
        return int(order[rank])

    def target_group_id(self) -> int:
        goal = self.threat.goal
        attackers = self.attackers if self._attackers is not None else None
        return self.group_by_rank(goal.group or 0, exclude=attackers)

    def members(self, group: int, honest_only: bool = True) -> np.ndarray:
        labels = self.clean.labels[: self.truth.n]
        idx = np.flatnonzero(labels == group)
        if honest_only and self._attackers is not None:
            idx = np.setdiff1d(idx, self._attackers)
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
            ids = np.unique(np.asarray(t.attackers, dtype=int))
            if ids.size == 0 or ids.min() < 0 or ids.max() >= n:
                raise InputError("attackers", f"ids must be in [0, {n})",
                                 "pass agent indices of the population")
            return ids
        count = t.count or 1
        if t.fraction is not None:
            count = max(1, round(t.fraction * n))
        count = min(count, n - 1)
        if t.select == "random":
            return np.sort(self.rng.choice(n, size=count, replace=False))
        if t.select == "central":
            deg = np.bincount(self.clean.labels[:n], minlength=self.clean.n_groups)[
                self.clean.labels[:n]]
            accept = np.asarray(self.clean.membership[:n].sum(axis=1)).ravel()
            score = deg + accept + 1e-9 * self.rng.random(n)
            return np.sort(np.argsort(-score, kind="stable")[:count])
        # near_target: closest to the target group's clean agreement
        g = self.group_by_rank(t.goal.group or 0)
        X, W = self.clean.X[g], self.clean.W[g]
        d = normalised_distance(self.truth.X, self.truth.W, X, W)
        members = self.clean.labels[:n] == g
        d = np.where(members, np.inf, d) if (~members).sum() >= count else d
        return np.sort(np.argsort(d, kind="stable")[:count])

    def target_point(self) -> tuple[np.ndarray, np.ndarray]:
        """The goal's point t (default: the attackers' mean true value system)."""
        point = self.threat.goal.point
        if point is not None:
            X = np.asarray(point[0], dtype=float).reshape(self.truth.k, self.truth.m)
            W = np.asarray(point[1], dtype=float)
            return X, W
        a = self.attackers
        return self.truth.X[a].mean(axis=0), self.truth.W[a].mean(axis=0)

    def plan(self, declared: Population, sybils: int = 0, *, hook: MessageHook | None = None,
             info: dict[str, Any] | None = None) -> AttackPlan:
        """Package declarations into an :class:`AttackPlan` with the goal's targets."""
        goal = self.threat.goal
        n = self.truth.n
        target = victims = None
        merge = None
        if goal.kind in ("capture", "exclude", "split"):
            target = self.members(self.target_group_id())
        if goal.kind == "exclude":
            victims = (np.asarray(goal.victims, dtype=int) if goal.victims is not None
                       else target)
        if goal.kind == "merge":
            a, b = goal.groups or (0, 1)
            merge = (self.members(self.group_by_rank(a)), self.members(self.group_by_rank(b)))
        return AttackPlan(
            declared=declared, attackers=self.attackers, goal=goal,
            sybils=np.arange(n, n + sybils), target_group=target,
            target_point=self.target_point() if goal.kind == "capture" else None,
            victims=victims, merge_groups=merge, hook=hook, queries=self.queries,
            info=info or {})


class QueryBudgetExhausted(RuntimeError):
    """A black-box search asked the mechanism more often than its budget allows."""

    def __init__(self, budget: int) -> None:
        super().__init__(f"query budget of {budget} exhausted")
        self.budget = budget


# ------------------------------------------------------------------ geometry
def within_budget(truth_X: np.ndarray, truth_W: np.ndarray, X: np.ndarray, W: np.ndarray,
                  budget: float) -> tuple[np.ndarray, np.ndarray]:
    """Move declarations (X, W) back toward the truths until δ(declared, true) ≤ budget.

    Points are moved along the segment from the truth, which stays inside the box and
    the simplex (both convex), so the result is a valid value system.
    """
    d = normalised_distance(X, W, truth_X, truth_W)
    scale = np.where(d > budget, budget / np.maximum(d, 1e-300), 1.0)
    Xs = truth_X + scale[..., None, None] * (X - truth_X)
    Ws = truth_W + scale[..., None] * (W - truth_W)
    return project_box(Xs), project_simplex(Ws)


def toward(truth_X: np.ndarray, truth_W: np.ndarray, X: np.ndarray, W: np.ndarray,
           budget: float) -> tuple[np.ndarray, np.ndarray]:
    """The point at normalised distance ``budget`` from the truth toward (X, W) (or (X, W)
    itself when closer)."""
    return within_budget(truth_X, truth_W, np.broadcast_to(X, np.shape(truth_X)),
                         np.broadcast_to(W, np.shape(truth_W)), budget)


def clip_bounds(threat: ThreatModel, gx: np.ndarray | float, gw: np.ndarray | float
                ) -> tuple[np.ndarray, np.ndarray]:
    """Declared bounds clipped into the threat model's legal range."""
    lo, hi = threat.bound_range
    return np.clip(gx, lo, hi), np.clip(gw, lo, hi)


# ---------------------------------------------------------------- the recipe
@dataclass(frozen=True)
class Attack:
    """Base class of attack recipes (subclass as a frozen dataclass).

    Class attributes
    ----------------
    name : str
        Registry name.
    summary : str
        One line for ``pluralguard list attacks``.
    goals : tuple of str
        Goals the recipe serves (its default goal first).
    """

    name: ClassVar[str] = ""
    summary: ClassVar[str] = ""
    goals: ClassVar[tuple[str, ...]] = GOALS

    threat: ThreatModel = field(default_factory=ThreatModel)

    def plan(self, truth: Population, mechanism: Mechanism, budget: float,
             seed: int = 0) -> AttackPlan:
        """Build the attack at one budget (ε on δ(declared, true) per attacker)."""
        if not budget >= 0:
            raise InputError("budget", f"{budget!r} is not a non-negative number",
                             "pass a budget such as 0.1 (normalised distance)")
        self.check(truth, mechanism)
        return self._plan(AttackContext(truth, mechanism, self.threat, seed), budget)

    def curve(self, truth: Population, mechanism: Mechanism, budgets: Sequence[float],
              seed: int = 0) -> list[AttackPlan]:
        """One plan per budget: a security curve in one call."""
        return [self.plan(truth, mechanism, b, seed) for b in budgets]

    def check(self, truth: Population, mechanism: Mechanism) -> None:
        """Raise :class:`InputError` saying why the attack does not apply, if it does not."""
        if self.threat.goal.kind not in self.goals:
            raise InputError("goal", f"attack {self.name!r} does not pursue goal "
                             f"{self.threat.goal.kind!r}",
                             f"use one of {', '.join(self.goals)}")

    def _plan(self, ctx: AttackContext, budget: float) -> AttackPlan:
        raise NotImplementedError

    def params(self) -> dict[str, Any]:
        """Recipe parameters (without the threat model)."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "threat"}

    def with_threat(self, **changes: Any) -> Attack:
        """Copy with some threat-model fields changed."""
        return replace(self, threat=replace(self.threat, **changes))
