"""pluralguard.attacks — threat model, attack recipes and adaptive search.

Recipes are registered by name; :func:`make_attack` builds one from a name and
keyword parameters (recipe parameters and threat-model fields mixed, as on the
command line: ``sybil,count=10,goal=capture,fraction=0.02``).
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from pluralguard.core.errors import InputError

from .base import (
    GOALS,
    Attack,
    AttackContext,
    AttackPlan,
    Goal,
    QueryBudgetExhausted,
    ThreatModel,
)
from .sybil import Sybil

#: name → recipe class
ATTACKS: dict[str, type[Attack]] = {cls.name: cls for cls in (Sybil,)}

_THREAT_FIELDS = {f.name for f in fields(ThreatModel)}
_GOAL_FIELDS = {"group", "point", "victims", "groups"}


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
    with the recipe's own parameters.
    """
    if name not in ATTACKS:
        raise InputError("attack", f"unknown attack {name!r}",
                         f"use one of {', '.join(ATTACKS)}")
    cls = ATTACKS[name]
    own = {f.name for f in fields(cls)} - {"threat"}
    recipe_kw = {k: params.pop(k) for k in list(params) if k in own}
    goal_kw = {k: params.pop(k) for k in list(params) if k in _GOAL_FIELDS}
    goal_kind = params.pop("goal", None) or cls.goals[0]
    threat_kw = {k: params.pop(k) for k in list(params) if k in _THREAT_FIELDS}
    if params:
        bad = sorted(params)[0]
        raise InputError(bad, f"attack {name!r} has no parameter {bad!r}",
                         f"use one of {', '.join(sorted(own | _THREAT_FIELDS | _GOAL_FIELDS))}")
    threat = ThreatModel(goal=Goal(goal_kind, **goal_kw), **threat_kw)
    return cls(threat=threat, **recipe_kw)


__all__ = ["ATTACKS", "GOALS", "Attack", "AttackContext", "AttackPlan", "Goal",
           "QueryBudgetExhausted", "ThreatModel", "list_attacks", "make_attack",
           "register_attack"]
