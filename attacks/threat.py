"""The threat model: who attacks, what they know, what they may do, and what they want
(DESIGN §4).

An **attack** = who (attacker agents and Sybil identities) × knowledge (white-box:
all declarations and the configuration; black-box: outcome queries only, within a
query budget) × capability (budget ε on δ(declared_i, true_i) per attacker, a legal
range for declared bounds, a Sybil count, protocol deviation or not) × goal.
:class:`ThreatModel` states the first three and holds a :class:`Goal`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, ClassVar

from pluralguard.core.errors import InputError
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
)

from .goals import GOALS

KNOWLEDGE = ("white", "black")
SELECTIONS = ("random", "central", "near_target", "in_target")
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
