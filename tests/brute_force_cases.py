"""Tiny seeded scenarios on which attacks are held to the exhaustive best response.

Each case is small enough (a handful of agents, one to three searched coordinates per
identity) for :func:`pluralguard.attacks.exhaustive_search` to find the exact best
response up to its refinement, and is chosen so that the optimum is *not* the obvious
move: leaving or switching group through the second judgement, joining a group from
outside, the median's tie at even n, the box edge under the mean, coalitions and
Sybils. Used by tests/test_brute_force.py and benchmarks/brute_force.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pluralguard.attacks import Goal, ThreatModel
from pluralguard.core import Population
from pluralguard.core.mechanism import Mechanism


@dataclass(frozen=True)
class Case:
    """A scenario: population, mechanism, who attacks toward what, at which budget."""

    name: str
    population: Population
    mechanism: Mechanism
    threat: dict[str, Any]
    budget: float
    kind: str = ""  # what the optimum does (documentation: leave, switch, join, …)
    slow: bool = False
    tags: tuple[str, ...] = field(default=())

    def threat_model(self, knowledge: str = "white", queries: int = 200) -> ThreatModel:
        params = dict(self.threat)
        goal = Goal(params.pop("goal", "selfish"), **params.pop("goal_params", {}))
        return ThreatModel(knowledge=knowledge, queries=queries, goal=goal, **params)


def line(seed: int, n: int = 8, m: int = 2) -> Population:
    """n agents judging one alternative on m values, every W uniform (Lera-Leri et al.'s
    'two values, one action' shape): only the judgements differ."""
    rng = np.random.default_rng(seed)
    X = rng.uniform(-1, 1, (n, 1, m))
    return Population(X, np.full((n, m), 1.0 / m), name=f"line{seed}")


def scalar(values: list[float], bounds: float | None = None) -> Population:
    """One judgement per agent, one value (W = [1]): a 1-D population."""
    X = np.asarray(values, float).reshape(-1, 1, 1)
    n = X.shape[0]
    if bounds is None:
        return Population(X, np.ones((n, 1)), name="scalar")
    return Population(X, np.ones((n, 1)), gamma_x=bounds, gamma_w=1.0, name="scalar")


FIXED = Mechanism("agreements", {"bounds": "fixed:0.3,1.0"})
QUANTILE = Mechanism("agreements", {"bounds": "quantile:0.5"})
DECLARED = Mechanism("agreements", {"bounds": "declared"})
MEDIAN = Mechanism("consensus", {"p": 1})
MEAN = Mechanism("consensus", {"p": 2})
SCALAR_FIXED = Mechanism("agreements", {"bounds": "fixed:0.25,1.0"})

#: Two clusters on a line and a middle agent (index 4) that can choose a side.
_TWO_SIDES = [-0.9, -0.75, -0.6, -0.45, -0.05, 0.35, 0.5, 0.65, 0.8]
#: Six agents at even n for the median's tie.
_EVEN = [-0.8, -0.3, -0.1, 0.2, 0.45, 0.9]
#: An agent (3) that gains by switching to the group on its right.
_MIDDLE = [-0.84, -0.34, -0.23, -0.05, 0.2, 0.52, 0.72]
#: A victim (3) between a far group and its own; one at the end of a chain (0).
_FAR = [-0.99, -0.93, 0.09, 0.46, 0.63, 0.71, 0.87]
_GAP = [-0.88, -0.7, -0.52, -0.33, 0.57, 0.67, 0.75]
#: Agents near the box edge: the mean's overshoot is cut by the box.
_EDGE = [0.97, 0.9, 0.1, -0.2, -0.5]


CASES: list[Case] = [
    # one attacker, selfish, the agreement mechanism, fixed bounds: leave / switch / stay
    Case("line0-a0-eps0.05", line(0), FIXED, {"attackers": (0,)}, 0.05, "leave"),
    Case("line0-a0-eps0.1", line(0), FIXED, {"attackers": (0,)}, 0.1, "leave"),
    Case("line4-a4-eps0.05", line(4), FIXED, {"attackers": (4,)}, 0.05),
    Case("line5-a5-eps0.1", line(5), FIXED, {"attackers": (5,)}, 0.1),
    Case("line7-a3-eps0.1", line(7), FIXED, {"attackers": (3,)}, 0.1, "truth"),
    Case("middle-switch-eps0.05", scalar(_MIDDLE), SCALAR_FIXED, {"attackers": (3,)}, 0.05,
         "switch"),
    Case("line11-a2-eps0.1", line(11), FIXED, {"attackers": (2,)}, 0.1),
    # one attacker, selfish, quantile bounds (the attacker's declaration moves them)
    Case("line3-q-a1-eps0.1", line(3), QUANTILE, {"attackers": (1,)}, 0.1),
    Case("line8-q-a6-eps0.1", line(8), QUANTILE, {"attackers": (6,)}, 0.1),
    # capture: an outsider joins the largest group and drags it toward its own truth
    Case("line2-capture-eps0.2", line(2), FIXED,
         {"count": 1, "select": "near_target", "goal": "capture"}, 0.2, "join"),
    Case("line6-capture-eps0.1", line(6), FIXED,
         {"count": 1, "select": "near_target", "goal": "capture"}, 0.1, "join"),
    Case("sides-capture-eps0.15", scalar(_TWO_SIDES), SCALAR_FIXED,
         {"attackers": (4,), "goal": "capture", "goal_params": {"group": 0}}, 0.15),
    # exclude: an insider makes the victims lose their group or agreement
    Case("far-exclude-eps0.1", scalar(_FAR), SCALAR_FIXED,
         {"attackers": (4,), "goal": "exclude", "goal_params": {"victims": (3,)}}, 0.1),
    Case("gap-exclude-eps0.03", scalar(_GAP), SCALAR_FIXED,
         {"attackers": (1,), "goal": "exclude", "goal_params": {"victims": (0,)}}, 0.03),
    Case("line21-exclude-eps0.05", line(21), FIXED,
         {"count": 1, "select": "in_target", "goal": "exclude"}, 0.05),
    # the median at even n (mid-point tie-break) and the mean at the box edge
    Case("median-even-a2", scalar(_EVEN), MEDIAN, {"attackers": (2,)}, 0.1, "tie"),
    Case("median-even-a3", scalar(_EVEN), MEDIAN, {"attackers": (3,)}, 0.05, "tie"),
    Case("mean-edge-a0", scalar(_EDGE), MEAN, {"attackers": (0,)}, 0.1, "box edge"),
    Case("mean-edge-line", line(12, n=5), MEAN, {"attackers": (1,)}, 0.1),
    Case("mean-capture-line", line(13, n=6), MEAN,
         {"attackers": (2,), "goal": "capture"}, 0.1),
    # declared bounds: the bound is part of the declaration
    Case("declared-selfish", scalar(_TWO_SIDES, bounds=0.3), DECLARED, {"attackers": (3,)},
         0.05, "stubborn"),
    Case("declared-capture", scalar(_TWO_SIDES, bounds=0.3), DECLARED,
         {"attackers": (4,), "goal": "capture", "goal_params": {"group": 0}}, 0.1),
    # coalitions and Sybils
    Case("sides-coalition-capture", scalar(_TWO_SIDES), SCALAR_FIXED,
         {"attackers": (3, 4), "goal": "capture", "goal_params": {"group": 1}}, 0.1,
         "coalition"),
    Case("mean-coalition", scalar(_EDGE), MEAN, {"attackers": (2, 3)}, 0.1, "coalition"),
    Case("sides-sybil-capture", scalar(_TWO_SIDES), SCALAR_FIXED,
         {"attackers": (4,), "sybils": 1, "goal": "capture", "goal_params": {"group": 1}},
         0.05, "sybil"),
    Case("median-sybils", scalar(_EVEN), MEDIAN, {"attackers": (0,), "sybils": 2}, 0.1,
         "sybil"),
]
