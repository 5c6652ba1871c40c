"""What an attack declares and aims at: :class:`AttackPlan`.

The plan is the declared population (the n original agents, attackers' declarations
replaced, then the Sybils), who attacked, the targets of the goal, an optional message
hook (protocol deviation) and the number of mechanism queries spent; with the truth it
says everything a metric needs (:meth:`AttackPlan.to_dict`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pluralguard.core.mechanism import Outcome
from pluralguard.core.message_passing import MessageHook
from pluralguard.core.model import Population

from .goals import GOAL_SPECS, Targets
from .threat import Goal


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
