"""pluralguard.defenses — candidate defenses, registered by name and composable."""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from pluralguard.core.errors import InputError

from .aggregation import MedianAgreement, RobustMixing
from .base import LAYERS, Defense, DefenseChain
from .bound_limits import BoundCap, BoundFloor, ProtocolBounds
from .linking import KCore, MutualKNN
from .outliers import OutlierFilter
from .sybil_cap import SybilCap
from .thresholds import RandomizedThreshold, RobustThreshold

#: name → defense class, by layer: declarations, network rule, aggregation
DEFENSES: dict[str, type[Defense]] = {cls.name: cls for cls in (
    BoundFloor, BoundCap, ProtocolBounds, OutlierFilter, SybilCap,
    MutualKNN, KCore, RobustThreshold, RandomizedThreshold,
    RobustMixing, MedianAgreement)}


def register_defense(cls: type[Defense]) -> type[Defense]:
    """Register a defense class under its ``name`` (usable as a decorator)."""
    if not cls.name:
        raise InputError("name", f"{cls.__name__} has no name", "set the class attribute name")
    DEFENSES[cls.name] = cls
    return cls


def list_defenses() -> list[tuple[str, str]]:
    """``(name, one-line summary)`` of every registered defense."""
    return [(name, cls.summary) for name, cls in DEFENSES.items()]


def make_defense(name: str, **params: Any) -> Defense:
    """Build a defense from its name and parameters."""
    if name not in DEFENSES:
        raise InputError("defense", f"unknown defense {name!r}",
                         f"use one of {', '.join(DEFENSES)}")
    cls = DEFENSES[name]
    own = {f.name for f in fields(cls)}
    unknown = set(params) - own
    if unknown:
        bad = sorted(unknown)[0]
        raise InputError(bad, f"defense {name!r} has no parameter {bad!r}",
                         f"use one of {', '.join(sorted(own)) or '(none)'}")
    return cls(**params)


__all__ = ["DEFENSES", "LAYERS", "BoundCap", "BoundFloor", "Defense", "DefenseChain", "KCore",
           "MedianAgreement", "MutualKNN", "OutlierFilter", "ProtocolBounds",
           "RandomizedThreshold", "RobustMixing", "RobustThreshold", "SybilCap",
           "list_defenses", "make_defense", "register_defense"]
