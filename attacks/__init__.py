"""pluralguard.attacks — threat model, attack recipes and adaptive search.

Recipes are registered by name (:mod:`~.registry`, which the package fills with the
built-in recipes); :func:`make_attack` builds one from a name and
keyword parameters (recipe parameters, threat-model fields and goal fields mixed, as
on the command line: ``sybil,sybils=10,goal=capture,fraction=0.02``). Every recipe
has a default threat model (who attacks, Sybils, knowledge) that the parameters
refine, and class attributes ``default_budget`` / ``default_budgets`` for suites.
"""

from __future__ import annotations

from .base import Attack, strongest
from .best_response import BestResponse
from .bridge import Bridge
from .camouflage import Camouflage
from .context import AttackContext, QueryBudgetExhausted
from .exclude import Exclude
from .exhaustive import ExhaustiveResult, exhaustive_search, is_small
from .goals import GOAL_SPECS, GOALS, GoalSpec, Targets
from .infiltrate import Infiltrate
from .overshoot import Overshoot
from .plan import AttackPlan
from .protocol import Protocol
from .registry import ATTACKS, list_attacks, make_attack, recipe_names, register_attack
from .stubborn import Stubborn
from .sybil import Sybil
from .threat import SELECTIONS, Goal, ThreatModel
from .threshold import ThresholdShift

for _recipe in (Stubborn, Overshoot, Infiltrate, Exclude, Bridge, Sybil, ThresholdShift,
                Camouflage, Protocol, BestResponse):
    register_attack(_recipe)
del _recipe

__all__ = ["ATTACKS", "GOALS", "GOAL_SPECS", "SELECTIONS", "Attack", "AttackContext",
           "AttackPlan", "ExhaustiveResult", "Goal", "GoalSpec", "QueryBudgetExhausted",
           "Targets", "ThreatModel", "exhaustive_search", "is_small", "list_attacks", "make_attack",
           "recipe_names", "register_attack", "strongest"]
