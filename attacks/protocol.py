"""Protocol deviation: honest declarations, manipulated messages during the iterations."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import ClassVar

import numpy as np

from pluralguard.core.errors import NotApplicable
from pluralguard.core.mechanism import Mechanism
from pluralguard.core.message_passing import IterationState
from pluralguard.core.model import Population
from pluralguard.core.params import Constraint, Integer, Options

from .base import Attack, require_capabilities
from .context import AttackContext
from .geometry import project_budget
from .plan import AttackPlan
from .threat import ThreatModel

MODES = ("constant", "nudge")


@dataclass(frozen=True, eq=False)
class MessageDeviation:
    """A message hook: the attackers' messages replaced at every iteration.

    ``constant`` sends the fixed points (``X``, ``W``) (one row per attacker);
    ``nudge`` sends each attacker's honest estimate moved toward its aim (``X``,
    ``W``) by at most ``budget · min(1, iteration / ramp)``.
    """

    attackers: tuple[int, ...]
    mode: str
    X: np.ndarray
    W: np.ndarray
    budget: float
    ramp: int

    def __call__(self, state: IterationState) -> Mapping[int, tuple[np.ndarray, np.ndarray]]:
        A = list(self.attackers)
        if self.mode == "constant":
            X, W = self.X, self.W
        else:
            step = self.budget * min(1.0, state.iteration / self.ramp)
            X, W = project_budget(state.X[A], state.W[A], self.X, self.W, step)
        return {a: (X[r], W[r]) for r, a in enumerate(A)}


@dataclass(frozen=True)
class Protocol(Attack):
    """Declare honestly, then send manipulated estimates while the group iterates.

    Idea: the decentralised solver only works if every agent reports the estimate the
    protocol prescribes. A Byzantine agent (Lamport, Shostak & Pease, *The Byzantine
    generals problem*, 1982) that passes the declaration stage honestly can still send
    other estimates: a *constant* signal — the stubborn agent of consensus dynamics,
    which linear iterations cannot tell from an honest one and which drags every
    connected agent toward it (Sundaram & Hadjicostis, *Distributed function
    calculation via linear iterative strategies in the presence of malicious agents*,
    IEEE TAC 2011; in distributed optimisation, Sundaram & Gharesifard, IEEE TAC 2019)
    — or a *gradual nudge* of its honest estimate toward its aim, growing over
    ``ramp`` iterations so that no single message looks abnormal. It uses the solver's
    per-iteration message hook, so it needs the agreement mechanism with a
    message-passing method (``dual`` or ``dgd``) and a threat model that allows
    protocol deviation.

    Parameters
    ----------
    mode : {"constant", "nudge"}
    ramp : int
        Iterations over which the nudge grows to the full budget.

    Budget
    ------
    ε on δ(message, honest value): the constant message is the budget point from the
    attacker's truth toward t; the nudge is at most ε from the attacker's honest
    estimate of that iteration. Default 0.1; curve (0.02, 0.05, 0.1, 0.2, inf).

    Goal
    ----
    ``capture`` (default) or ``selfish``; by default 3 random members of the largest
    group deviate (``select='in_target'``, ``protocol=True``).
    """

    name = "protocol"
    mechanism_defaults: ClassVar[Mapping[str, str]] = {"method": "dual"}
    summary = "honest declarations, manipulated messages during the solver's iterations"
    goals = ("capture", "selfish")
    default_budgets = (0.02, 0.05, 0.1, 0.2, math.inf)

    threat: ThreatModel = field(default_factory=partial(
        ThreatModel, goal="capture", count=3, select="in_target", protocol=True))
    mode: str = "constant"
    ramp: int = 200

    PARAMS: ClassVar[dict[str, Constraint]] = {"mode": Options(MODES),
                                               "ramp": Integer(1, sample=200)}

    def _applies(self, truth: Population, mechanism: Mechanism) -> None:
        if not self.threat.protocol:
            raise NotApplicable("protocol", "attack 'protocol' deviates from the "
                                "message-passing protocol and the threat model does not "
                                "allow it (protocol=False)", "pass protocol=True")
        require_capabilities(self.name, mechanism, {
            "message_passing": "manipulates the messages agents exchange while the "
                               "mechanism iterates"},
            "use method='dual' or 'dgd' for the agreement mechanism ('exact' solves each "
            "group centrally, without messages)")
        if not mechanism.accepts_hook:
            raise NotApplicable("mechanism", f"attack 'protocol' sends its messages through "
                                f"a message hook, and mechanism {mechanism.title} accepts "
                                "none", "register the mechanism with accepts_hook=True")

    def _plan(self, ctx: AttackContext, budget: float) -> AttackPlan:
        A = ctx.attackers
        tX, tW = ctx.target_point()
        if self.mode == "constant":
            X, W = project_budget(ctx.truth.X[A], ctx.truth.W[A], tX, tW, budget)
        else:
            X = np.repeat(tX[None], A.size, axis=0)
            W = np.repeat(tW[None], A.size, axis=0)
        hook = MessageDeviation(tuple(int(a) for a in A), self.mode, X, W, budget, self.ramp)
        return ctx.plan(ctx.truth, hook=hook, info={"mode": self.mode, "ramp": self.ramp})
