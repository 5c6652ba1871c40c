"""The registry of attack recipes: name → recipe class, and building a recipe by name.

It imports only the recipe contract (:mod:`~.base`), never a recipe, so a recipe that
reads the registry — the adaptive search seeds itself with every registered recipe
(:mod:`~.best_response`) — imports it without a cycle. The package
(:mod:`pluralguard.attacks`) registers the built-in recipes; plugins register more with
:func:`register_attack`.
"""

from __future__ import annotations

from dataclasses import fields, replace
from typing import Any

from pluralguard.core.errors import InputError

from .base import Attack
from .threat import Goal, ThreatModel

#: name → recipe class
ATTACKS: dict[str, type[Attack]] = {}

_THREAT_FIELDS = {f.name for f in fields(ThreatModel)} - {"goal"}
_GOAL_FIELDS = {"group", "point", "victims", "groups"}
_WHO = ("attackers", "fraction", "count")


def register_attack(cls: type[Attack]) -> type[Attack]:
    """Register a recipe class under its ``name`` (usable as a decorator)."""
    if not cls.name:
        raise InputError("name", f"{cls.__name__} has no name", "set the class attribute name")
    ATTACKS[cls.name] = cls
    return cls


def recipe_names() -> list[str]:
    """Names of the registered recipes, in registration order (read when called, so
    recipes that plugins register later count)."""
    return list(ATTACKS)


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
