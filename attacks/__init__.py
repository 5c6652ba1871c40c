"""pluralguard.attacks — threat model, attack recipes and adaptive search.

Recipes are registered by name; :func:`make_attack` builds one from a name and
keyword parameters (recipe parameters, threat-model fields and goal fields mixed, as
on the command line: ``sybil,sybils=10,goal=capture,fraction=0.02``). Every recipe
has a default threat model (who attacks, Sybils, knowledge) that the parameters
refine, and class attributes ``default_budget`` / ``default_budgets`` for suites.
"""

from __future__ import annotations

from dataclasses import fields, replace
from typing import Any

from pluralguard.core.errors import InputError

from .base import (
    SELECTIONS,
    Attack,
    AttackContext,
    AttackPlan,
    Goal,
    QueryBudgetExhausted,
    ThreatModel,
)
from .best_response import BestResponse
from .bridge import Bridge
from .camouflage import Camouflage
from .exclude import Exclude
from .exhaustive import ExhaustiveResult, exhaustive_search, is_small
from .goals import GOAL_SPECS, GOALS, GoalSpec, Targets
from .infiltrate import Infiltrate
from .overshoot import Overshoot
from .protocol import Protocol
from .stubborn import Stubborn
from .sybil import Sybil
from .threshold import ThresholdShift

#: name → recipe class
ATTACKS: dict[str, type[Attack]] = {cls.name: cls for cls in (
    Stubborn, Overshoot, Infiltrate, Exclude, Bridge, Sybil, ThresholdShift, Camouflage,
    Protocol, BestResponse)}

_THREAT_FIELDS = {f.name for f in fields(ThreatModel)} - {"goal"}
_GOAL_FIELDS = {"group", "point", "victims", "groups"}
_WHO = ("attackers", "fraction", "count")


def register_attack(cls: type[Attack]) -> type[Attack]:
    """Register a recipe class under its ``name`` (usable as a decorator)."""
    if not cls.name:
        raise InputError("name", f"{cls.__name__} has no name", "set the class attribute name")
    ATTACKS[cls.name] = cls
    return cls


def list_attacks() -> list[tuple[str, str]]:
    """``(name, one-line summary)`` of every registered recipe."""
    return [(name, cls.summary) for name, cls in ATTACKS.items()]


def make_attack(name: str, **params: Any) -> Attack:
    """Build a recipe from its name and parameters.

    Threat-model fields (``attackers``, ``fraction``, ``count``, ``select``,
    ``sybils``, ``knowledge``, ``queries``, ``bound_range``, ``protocol``) and goal
    fields (``goal`` = kind, ``group``, ``point``, ``victims``, ``groups``) may be mixed
    with the recipe's own parameters; they refine the recipe's default threat model
    (giving one of ``attackers`` / ``fraction`` / ``count`` replaces the default's).
    """
    if name not in ATTACKS:
        raise InputError("attack", f"unknown attack {name!r}",
                         f"use one of {', '.join(ATTACKS)}")
    cls = ATTACKS[name]
    own = {f.name for f in fields(cls)} - {"threat"}
    recipe_kw = {k: params.pop(k) for k in list(params) if k in own}
    goal_kw = {k: params.pop(k) for k in list(params) if k in _GOAL_FIELDS}
    goal_kind = params.pop("goal", None)
    threat_kw = {k: params.pop(k) for k in list(params) if k in _THREAT_FIELDS}
    if params:
        bad = sorted(params)[0]
        raise InputError(bad, f"attack {name!r} has no parameter {bad!r}",
                         "use one of " + ", ".join(sorted(own | _THREAT_FIELDS | _GOAL_FIELDS
                                                          | {"goal"})))
    default = cls().threat
    if any(k in threat_kw for k in _WHO):
        threat_kw = {k: None for k in _WHO} | threat_kw
    goal = Goal(goal_kind or default.goal.kind, **goal_kw)
    return cls(threat=replace(default, goal=goal, **threat_kw), **recipe_kw)


__all__ = ["ATTACKS", "GOALS", "GOAL_SPECS", "SELECTIONS", "Attack", "AttackContext",
           "AttackPlan", "ExhaustiveResult", "Goal", "GoalSpec", "QueryBudgetExhausted",
           "Targets", "ThreatModel", "exhaustive_search", "is_small", "list_attacks", "make_attack",
           "register_attack"]
