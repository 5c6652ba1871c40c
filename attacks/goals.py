"""What attackers want, defined once: every goal's measure, sign, success and column.

An attack's success is judged by *one* number per goal — the goal's measure on the
attacked outcome against the clean one — and every part of pluralguard reads it from
here: the adaptive search maximises it, the exhaustive reference searches for its
maximum, the scenario reports it (``goal_measure``, ``attack_success`` and the goal's
own metric column), and the runner's and the report's sanity checks compare attacks
by it. A measure is a pair (main, tie-break), larger = better for the attacker; the
main value is the metric itself, the tie-break a continuous companion for discrete
goals, used only to order equal main values.

============  ===================================================  ==================  =====
goal          main value of the measure                            column (sign)       won
============  ===================================================  ==================  =====
selfish       mean over attackers of u_a(attacked) − u_a(clean),   attacker_gain (+)   ≥ 1e-6
              true utilities
capture       mean over G's honest members of clip((δ(a_G, t) −    capture (+)         ≥ 0.5
              δ(a'_i, t)) / δ(a_G, t), −1, 1)
exclude       share of victims that kept < ½ of their clean        exclusion_rate (+)  ≥ 0.5
              honest co-members or lost an agreement they accepted
merge         1 if the two groups' honest majorities share a group attack_success (+)  ≥ 1
split         1 if G's honest members end in several groups        attack_success (+)  ≥ 1
fragment      groups holding an honest agent, attacked − clean     delta_groups (+)    ≥ 1
consolidate   the same, negated                                    delta_groups (−)    ≥ 1
============  ===================================================  ==================  =====

Truth-telling reproduces the clean outcome, so its measure is exactly 0 for every
goal: an attack whose measure is below 0 did worse than telling the truth.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from pluralguard.core.geometry import normalised_distance, utility
from pluralguard.core.measures import capture_scores, excluded
from pluralguard.core.mechanism import Outcome
from pluralguard.core.model import Population

#: Weight of the tie-break when a search needs one number: main + TIE_WEIGHT · tie.
TIE_WEIGHT = 1e-3


@dataclass(frozen=True, eq=False)
class Targets:
    """Everything an attacked outcome is measured against.

    Attributes
    ----------
    truth : Population
        True value systems of the n original agents.
    clean : Outcome
        The outcome of honest play under the same (defended) mechanism.
    attackers : ndarray of int
        Indices (< n) of the attacking agents.
    utility : str
        Utility kind of the metrics (the mechanism's).
    target_group : ndarray of int, optional
        Honest members of the target group in the clean outcome.
    target_point : (ndarray, ndarray), optional
        The point t a capture pulls toward.
    victims : ndarray of int, optional
    merge_groups : tuple of two ndarrays, optional
        Honest members of the two clean groups a merge joins.
    """

    truth: Population
    clean: Outcome
    attackers: np.ndarray
    utility: str = "quadratic"
    target_group: np.ndarray | None = None
    target_point: tuple[np.ndarray, np.ndarray] | None = None
    victims: np.ndarray | None = None
    merge_groups: tuple[np.ndarray, np.ndarray] | None = None

    @cached_property
    def honest(self) -> np.ndarray:
        """Original agents that do not attack (Sybils are never honest)."""
        return np.setdiff1d(np.arange(self.truth.n), self.attackers)

    @cached_property
    def clean_attacker_utility(self) -> np.ndarray:
        return self.true_utility(self.clean, self.attackers)

    @cached_property
    def clean_groups(self) -> int:
        return int(np.unique(self.clean.labels[self.honest]).size)

    def true_utility(self, outcome: Outcome, agents: np.ndarray) -> np.ndarray:
        """u_i of the agreement each of ``agents`` ends with, on its true value system."""
        return utility(outcome.agent_X[agents], outcome.agent_W[agents],
                       self.truth.X[agents], self.truth.W[agents], self.utility)

    @cached_property
    def target_majority(self) -> int:
        """The clean group holding most of the target group's honest members."""
        return _majority(self.clean.labels[self.target_group])


def _majority(labels: np.ndarray) -> int:
    return int(np.bincount(labels).argmax())


# ---------------------------------------------------------------- the measures
def _selfish(t: Targets, out: Outcome) -> tuple[float, float]:
    if t.attackers.size == 0:
        return 0.0, 0.0
    gain = t.true_utility(out, t.attackers) - t.clean_attacker_utility
    return float(gain.mean()), 0.0


def _capture(t: Targets, out: Outcome) -> tuple[float, float]:
    if t.target_group is None or t.target_group.size == 0 or t.target_point is None:
        return 0.0, 0.0
    g = t.target_majority
    scores = capture_scores(t.clean.X[g], t.clean.W[g], out, t.target_group, t.target_point)
    return (float(scores.mean()), 0.0) if scores.size else (0.0, 0.0)


def _exclude(t: Targets, out: Outcome) -> tuple[float, float]:
    V = t.victims
    if V is None or V.size == 0:
        return 0.0, 0.0
    share = float(excluded(t.clean, out, V, t.honest).mean())
    moved = normalised_distance(out.agent_X[V], out.agent_W[V], t.clean.agent_X[V],
                                t.clean.agent_W[V])
    return share, float(moved.mean())


def _merge(t: Targets, out: Outcome) -> tuple[float, float]:
    if t.merge_groups is None or not all(g.size for g in t.merge_groups):
        return 0.0, 0.0
    a, b = t.merge_groups
    ga, gb = _majority(out.labels[a]), _majority(out.labels[b])
    gap = float(normalised_distance(out.X[ga], out.W[ga], out.X[gb], out.W[gb]))
    return float(ga == gb), -gap


def _split(t: Targets, out: Outcome) -> tuple[float, float]:
    G = t.target_group
    if G is None or G.size == 0:
        return 0.0, 0.0
    pieces = np.unique(out.labels[G]).size
    return float(pieces > 1), pieces / G.size


def _delta_groups(t: Targets, out: Outcome) -> float:
    return float(np.unique(out.labels[t.honest]).size - t.clean_groups)


def _fragment(t: Targets, out: Outcome) -> tuple[float, float]:
    return _delta_groups(t, out), 0.0


def _consolidate(t: Targets, out: Outcome) -> tuple[float, float]:
    return -_delta_groups(t, out), 0.0


# ------------------------------------------------------------------- the specs
@dataclass(frozen=True)
class GoalSpec:
    """One goal: its measure, where results record it, and when it counts as won.

    Attributes
    ----------
    name : str
    column : str
        The results column whose value, times ``sign``, is the measure's main value.
    sign : float
        +1 when a larger column value is better for the attacker, −1 otherwise.
    threshold : float
        The goal is reached when the main value is ≥ threshold.
    needs : tuple of str
        Targets the measure reads (``target_group``, ``target_point``, ``victims``,
        ``merge_groups``).
    description : str
    measure : callable
        ``measure(targets, attacked outcome) -> (main, tie-break)``.
    """

    name: str
    column: str
    sign: float
    threshold: float
    needs: tuple[str, ...]
    description: str
    measure: Callable[[Targets, Outcome], tuple[float, float]] = field(repr=False)

    def success(self, main: float) -> bool:
        """Whether a measure's main value reaches the goal."""
        return bool(main >= self.threshold)

    def score(self, main: float, tie: float) -> float:
        """One number for a search: main + TIE_WEIGHT · tie."""
        return main + TIE_WEIGHT * tie


GOAL_SPECS: dict[str, GoalSpec] = {spec.name: spec for spec in (
    GoalSpec("selfish", "attacker_gain", 1.0, 1e-6, (),
             "raise the attackers' own true utility", _selfish),
    GoalSpec("capture", "capture", 1.0, 0.5, ("target_group", "target_point"),
             "drag a target group's agreement toward a point t", _capture),
    GoalSpec("exclude", "exclusion_rate", 1.0, 0.5, ("target_group", "victims"),
             "make victims lose their group or its agreement", _exclude),
    GoalSpec("merge", "attack_success", 1.0, 1.0, ("merge_groups",),
             "join two groups", _merge),
    GoalSpec("split", "attack_success", 1.0, 1.0, ("target_group",),
             "break a group apart", _split),
    GoalSpec("fragment", "delta_groups", 1.0, 1.0, (),
             "make more groups", _fragment),
    GoalSpec("consolidate", "delta_groups", -1.0, 1.0, (),
             "make fewer groups", _consolidate),
)}

#: Goal names, the default (``selfish``) first.
GOALS = tuple(GOAL_SPECS)
