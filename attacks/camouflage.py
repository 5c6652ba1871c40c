"""Camouflage: in-distribution one-sided shifts ("A little is enough", Baruch et al. 2019)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import partial
from typing import ClassVar

import numpy as np
from scipy.stats import norm

from pluralguard.core.params import Constraint, OrNone, Real

from .base import Attack
from .context import AttackContext
from .geometry import project_budget
from .plan import AttackPlan
from .threat import ThreatModel


def alie_z(n: int, f: int) -> float:
    """Baruch et al.'s z_max for n participants of which f attack.

    s = ⌊n/2 + 1⌋ − f honest reports must sit farther from the mean than the
    attackers' for a median- or trimmed-mean-style filter to keep them, so the
    attackers may go z_max = Φ⁻¹((n − s)/n) standard deviations out (0 when f is too
    small to shift any order statistic).
    """
    s = math.floor(n / 2 + 1) - f
    p = min(max((n - s) / n, 0.5), 1.0 - 1e-9)
    return float(norm.ppf(p))


@dataclass(frozen=True)
class Camouflage(Attack):
    """Every attacker shifts each coordinate by z honest standard deviations toward t.

    Idea: outlier filters (coordinate-wise median, trimmed mean, distance-based
    screening) keep reports that look typical. *A little is enough* (Baruch, Baruch &
    Goldberg, NeurIPS 2019, "ALIE") moves every coordinate of the attackers' report by
    the same small multiple z of the honest spread σ, all in the direction that helps
    them: no coordinate leaves the honest distribution, yet the shift adds up over
    coordinates and attackers. Here the honest distribution is the declarations of
    the manipulated group (the target group for ``capture``, the attackers' own groups
    for ``selfish``), and attacker a declares

        X̂_a = clip(X_a + z σ_X ⊙ sign(t_X − μ_X)),   Ŵ_a = Π_Δ(W_a + z σ_W ⊙ sign(t_W − μ_W)),

    its own truth shifted one-sidedly toward the goal point t (μ the group's mean).
    Declared bounds stay the truth's.

    Parameters
    ----------
    z : float, optional
        Shift in standard deviations; default Baruch et al.'s z_max (:func:`alie_z`)
        for the reference group plus the attackers (0 for a lone attacker: one report
        cannot move an order statistic unseen).

    Budget
    ------
    ε on δ(v̂_a, v_a) per attacker (the shift is cut back to ε). Default 0.1; curve
    (0.02, 0.05, 0.1, 0.2, inf).

    Goal
    ----
    ``capture`` (default) or ``selfish``; 5% of the agents attack by default, chosen
    inside the target group (``select='in_target'``), where they are in-distribution.
    """

    name = "camouflage"
    summary = "in-distribution one-sided shifts (ALIE) that pass outlier filters"
    goals = ("capture", "selfish")
    white_box = "estimates the mean and spread of the honest declarations"
    default_budgets = (0.02, 0.05, 0.1, 0.2, math.inf)

    threat: ThreatModel = field(default_factory=partial(
        ThreatModel, goal="capture", fraction=0.05, select="in_target"))
    z: float | None = None

    PARAMS: ClassVar[dict[str, Constraint]] = {"z": OrNone(Real(0, sample=1.0))}

    def _plan(self, ctx: AttackContext, budget: float) -> AttackPlan:
        A, n = ctx.attackers, ctx.truth.n
        labels = ctx.clean.labels[:n]
        if ctx.threat.goal.kind == "capture":
            ref = ctx.members(ctx.target_group_id())
        else:
            ref = np.setdiff1d(np.flatnonzero(np.isin(labels, labels[A])), A)
        if ref.size == 0:
            ref = np.setdiff1d(np.arange(n), A)
        decl = ctx.declared
        z = self.z if self.z is not None else alie_z(ref.size + A.size, A.size)
        tX, tW = ctx.target_point()
        muX, muW = decl.X[ref].mean(axis=0), decl.W[ref].mean(axis=0)
        vX, vW = ctx.truth.X[A], ctx.truth.W[A]
        X, W = project_budget(vX, vW, vX + z * decl.X[ref].std(axis=0) * np.sign(tX - muX),
                              vW + z * decl.W[ref].std(axis=0) * np.sign(tW - muW), budget)
        return ctx.plan(ctx.with_declarations(X, W),
                        info={"z": z, "reference": int(ref.size)})
