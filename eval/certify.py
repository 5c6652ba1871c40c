"""Certified bounds: next to the worst attack found, the worst any attack could do.

An attack found is a lower bound on the risk; a proof gives the upper bound, and the
gap between the two says how much an evaluation may still be missing (Curry, Chiang,
Goldstein & Dickerson, *Certifying strategyproof auction networks*, NeurIPS 2020,
found sampled regret underestimating the certified one many times over; SVVAMP answers
manipulation questions with bounds and says "undecided" where it cannot decide).
For a scenario — a population, a (defended) mechanism, a threat model with its budget
ε, its attackers and Sybils — :func:`prove` establishes what every attack can make
the mechanism solve (:class:`~pluralguard.eval.reach.Reach`: any declaration within
δ ≤ min(ε, 1) of each attacker's truth and any legal bounds, up to s Sybils anywhere
valid), and :meth:`Proof.bound` turns it into upper bounds on the metrics against a
clean outcome:

=======================  ===============================================================
metric                   certificate
=======================  ===============================================================
``utility_loss_max``     max over honest i of u_i(clean) − (1 − d_i²), d_i ≥ δ(a'_i, v_i)
                         the farthest the attacked agreement can be from v_i
``utility_loss_p90``     the 90th percentile of the same per-agent bounds (percentiles
                         are monotone in every value)
``attacker_gain``        1 − mean_a u_a(clean) − (least mean_a δ(x', v_a)² any reachable
                         x' allows); 1 − mean_a u_a(clean) under the agreement mechanism
``capture``              mean over G's honest members of clip((δ(a_G, t) − e_i)/δ(a_G, t)),
                         e_i ≤ δ(a'_i, t) the nearest the agreement can come to t
=======================  ===============================================================

(1 − d for the linear utility.) Where the agreement can be:

* **agreement mechanism** — in the honest agent's own acceptable set, centred at its
  truth, with radii at most the proved bounds in force (:mod:`~pluralguard.eval.fence`;
  ``declared``: its own bounds; ``fixed``: the policy's; ``quantile:q``: the
  order-statistic bound of :mod:`~pluralguard.eval.reach`; defenses refine them);
* **ℓp consensus** — in the regions of :mod:`~pluralguard.eval.lp_bounds`: for p = 2
  with known weights the ball the attackers' weight share × ε and the Sybils' share of
  the valid set span (for one attacker without Sybils its exact reachable set, so its
  certified gain is attained), and for every p, with weights in intervals, the box of
  per-coordinate order statistics the coalition can reach;
* **valid set only** — where a defense carries no certificate, or the threshold may be
  sampled: every agreement is still a valid value system (the solver's lie in the box
  and the simplex, the consensus within the range of valid declarations).

**Undecided** (every certificate empty, the reason in ``certificate_basis``): protocol
deviation (the attack is a message stream, not declarations), a mechanism kind that is
not built in (its outcome has no structure a proof can use), the ``static`` link rule
(its groups may have no common point, so agreements may leave members' sets).
Certificates of the message-passing methods hold for runs that converge.

On populations small enough for the exhaustive reference
(:func:`pluralguard.attacks.is_small`) the worst case of the goal's own metric is also
*found*: ``gap_exhaustive`` = certified − exhaustive optimum is the width of the
interval that holds the true worst case (exact up to the search's lattice: it is a
found attack, a lower bound); 0 means the worst case is known exactly. Every other
metric is bounded only.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

from pluralguard.attacks import GOAL_SPECS, AttackContext, AttackPlan, Targets, ThreatModel
from pluralguard.core.bounds import BoundPolicy
from pluralguard.core.consensus import check_p
from pluralguard.core.geometry import normalised_distance
from pluralguard.core.mechanism import Mechanism
from pluralguard.core.model import Population
from pluralguard.core.solver import TOL as SOLVER_TOL
from pluralguard.defenses import DefenseChain

from . import fence
from .certificate_table import CERTIFIED, UNDECIDED
from .lp_bounds import BoxRegion, Region, coordinate_box, mean_regions, scaled, valid_range
from .reach import Reach

#: Mechanism kinds with a proof.
BUILT_IN = ("agreements", "consensus")


@dataclass(frozen=True)
class Certificate:
    """Upper bounds on the metrics of every attack of a scenario.

    Attributes
    ----------
    bounds : dict
        metric (:data:`CERTIFIED`) → upper bound; NaN where the metric is undefined
        (no attacker, no target) or nothing is proved.
    basis : str
        How it was proved, or ``"undecided: <why>"``.
    """

    bounds: Mapping[str, float]
    basis: str

    @property
    def decided(self) -> bool:
        """Whether anything is proved."""
        return not self.basis.startswith(UNDECIDED)


@dataclass(frozen=True, eq=False)
class Proof:
    """What is proved about every attack of a threat model on a (defended) mechanism;
    build it with :func:`prove`, turn it into bounds with :meth:`bound`.

    Attributes
    ----------
    basis : str
        How (module doc), or ``"undecided: <why>"``.
    kind : str or None
        ``agreements`` or ``consensus`` (None: undecided).
    reach : Reach or None
        None where a defense carries no certificate (the valid set only).
    shape : (int, int)
        (k, m) of the value systems.
    p : float
        The consensus exponent.
    slack : float
        Consensus tolerance of a message-passing agreement method (δ).
    """

    basis: str
    kind: str | None = None
    reach: Reach | None = None
    shape: tuple[int, int] = (1, 1)
    p: float = 2.0
    slack: float = 0.0

    @property
    def decided(self) -> bool:
        return not self.basis.startswith(UNDECIDED)

    @cached_property
    def box(self) -> BoxRegion:
        """The consensus's coordinate box (the valid range without a reach)."""
        if self.reach is None:
            return BoxRegion(*valid_range(*self.shape))
        return coordinate_box(self.reach, self.p)

    @cached_property
    def balls(self) -> list[list[Region]]:
        """For p = 2 with known weights, the mean's regions per Sybil count
        (:func:`~pluralguard.eval.lp_bounds.mean_regions`)."""
        if self.reach is None or self.p != 2 or not self.reach.weights_exact:
            return []
        return mean_regions(self.reach)

    def bound(self, targets: Targets) -> Certificate:
        """Upper bounds on the metrics against one clean outcome (``targets.clean``,
        the attackers, the capture target; module doc)."""
        nan = dict.fromkeys(CERTIFIED, math.nan)
        if not self.decided:
            return Certificate(nan, self.basis)
        truth, honest, attackers = targets.truth, targets.honest, targets.attackers
        members, point = targets.target_group, targets.target_point
        has_capture = bool(members is not None and members.size and point is not None)
        target = point if has_capture else None
        if self.kind == "agreements":
            bounds = self.reach.bounds if self.reach is not None else None
            far = fence.farthest(truth, honest, bounds, self.slack)
            near = (fence.nearest(truth, members, bounds, target, self.slack)
                    if target is not None else None)
            least = None  # an attacker's utility is at most 1: nothing better proved
        else:
            far, near, least = self._consensus(truth, honest, attackers, target)
        out = dict(nan)
        quadratic = targets.utility == "quadratic"
        if honest.size:
            u = targets.true_utility(targets.clean, honest)
            loss = u - (1.0 - (far ** 2 if quadratic else far))
            out["utility_loss_max"] = float(loss.max())
            out["utility_loss_p90"] = float(np.percentile(loss, 90))
        if attackers.size:
            best = 1.0 - (least(quadratic) if least is not None else 0.0)
            out["attacker_gain"] = best - float(targets.clean_attacker_utility.mean())
        if target is not None:
            g = int(np.bincount(targets.clean.labels[members]).argmax())
            d0 = float(normalised_distance(targets.clean.X[g], targets.clean.W[g], *target))
            if d0 > 0:
                out["capture"] = float(np.mean(np.clip((d0 - near) / d0, -1.0, 1.0)))
        return Certificate(out, self.basis)

    def _consensus(self, truth: Population, honest: np.ndarray, attackers: np.ndarray,
                   target: tuple[np.ndarray, np.ndarray] | None
                   ) -> tuple[np.ndarray, np.ndarray | None, Callable[[bool], float]]:
        """Per honest agent the farthest δ the consensus can reach, per capture member the
        nearest to t, and the least mean_a δ(x', v_a)² (δ, linear utility), each the
        tightest the proved regions allow: every region contains x', so a farthest
        bound is the least over regions and a nearest one the largest; the balls are
        per Sybil count, of which the worst counts (lp_bounds module doc)."""
        y_h = scaled(truth.X[honest], truth.W[honest])
        y_a = scaled(truth.X[attackers], truth.W[attackers])
        y_m = y_a.mean(axis=0, keepdims=True) if attackers.size else y_a
        y_t = scaled(*target)[None] if target is not None else None
        spread = float(((y_a - y_m) ** 2).sum(axis=1).mean()) if attackers.size else 0.0

        def least_of(near_a: np.ndarray, near_m: np.ndarray, quadratic: bool) -> float:
            """Lower bound on mean_a δ(x', v_a)² (δ): mean_a ‖x − v_a‖² = ‖x − v̄‖² +
            spread, mean_a ‖x − v_a‖ ≥ ‖x − v̄‖ (Jensen), and each term ≥ its own bound."""
            if quadratic:
                return max(float(near_m[0]) ** 2 + spread, float(np.mean(near_a ** 2)))
            return max(float(near_m[0]), float(np.mean(near_a)))

        def nearest(regions: list[Region], y: np.ndarray) -> np.ndarray:
            return np.max([r.nearest(y) for r in regions], axis=0)

        box = self.box
        far = box.farthest(y_h)
        near_t = box.nearest(y_t) if y_t is not None else None
        near_a, near_m = box.nearest(y_a), box.nearest(y_m)
        counts = self.balls
        if counts:
            far = np.minimum(far, np.max([np.min([r.farthest(y_h) for r in regions], axis=0)
                                          for regions in counts], axis=0))
            if y_t is not None:
                near_t = np.maximum(near_t, np.min([nearest(regions, y_t)
                                                    for regions in counts], axis=0))

        def least(quadratic: bool) -> float:
            value = least_of(near_a, near_m, quadratic)
            if counts:
                value = max(value, min(least_of(nearest(regions, y_a), nearest(regions, y_m),
                                                quadratic) for regions in counts))
            return value

        return far, near_t, least


def _undecided(why: str) -> Proof:
    return Proof(f"{UNDECIDED}: {why}")


def _base_bounds(reach: Reach, mechanism: Mechanism) -> tuple[tuple[np.ndarray, np.ndarray]
                                                              | None, str]:
    """Upper bounds on the honest agents' bounds in force under the undefended policy."""
    rule = BoundPolicy.parse(mechanism.params.get("bounds", "declared"))
    truth, n = reach.truth, reach.truth.n
    if not isinstance(rule, BoundPolicy):
        return None, "a custom bound rule"
    if rule.kind == "declared":
        if not truth.has_bounds:
            return None, "no declared bounds"
        return (np.array(truth.gamma_x, float), np.array(truth.gamma_w, float)), "declared"
    if rule.kind == "fixed":
        return (np.full(n, float(rule.gamma_x)), np.full(n, float(rule.gamma_w))), str(rule)
    gamma = reach.quantile(float(rule.q))
    if gamma is None:
        return None, "a sampled quantile"
    return (np.full(n, gamma[0]), np.full(n, gamma[1])), str(rule)


def prove(truth: Population, mechanism: Mechanism, defenses: DefenseChain | None,
          threat: ThreatModel, budget: float, attackers: np.ndarray, *,
          deviates: bool = False) -> Proof:
    """What every attack of ``threat`` within ``budget`` can do to the defended mechanism.

    Parameters
    ----------
    truth : Population
        True value systems and bounds.
    mechanism : Mechanism
        The undefended mechanism.
    defenses : DefenseChain or None
        Applied to ``mechanism`` in order; each refines the proof through
        :meth:`~pluralguard.defenses.Defense.certify`.
    threat : ThreatModel
        Its Sybil count and whether protocol deviation is allowed are read.
    budget : float
        ε on δ(v̂_a, v_a) per attacker (``inf``: anywhere valid).
    attackers : ndarray of int
        The attacking agents (as the threat model selects them).
    deviates : bool
        The attack sends messages (a message hook): undecided.

    Returns
    -------
    Proof
    """
    if threat.protocol or deviates:
        return _undecided("protocol deviation (the attack is a message stream, not "
                          "declarations)")
    defenses = defenses or DefenseChain()
    defended = defenses(mechanism)
    if defended.kind not in BUILT_IN:
        return _undecided(f"mechanism {defended.kind!r} is not built in (its outcome has "
                          "no structure a proof can use)")
    params = defended.params
    if defended.kind == "agreements" and params.get("link_rule", "merge") != "merge":
        return _undecided("link rule 'static' (its groups may have no common point)")
    radius = min(float(budget), 1.0)
    n = truth.n
    weights = (np.asarray(params["weights"], float) if defended.kind == "consensus"
               and params.get("weights") is not None else truth.weight)
    sybil = float(np.median(truth.weight))
    reach: Reach | None = Reach(
        truth=truth, honest=np.setdiff1d(np.arange(n), attackers), radius=radius,
        sybils=int(threat.sybils), bounds=None, weight_low=np.array(weights, float),
        weight_high=np.array(weights, float), sybil_weight=(sybil, sybil))
    how = ""
    if defended.kind == "agreements":
        bounds, how = _base_bounds(reach, mechanism)
        reach = reach.replace(bounds=bounds)
    missing = ""
    current = mechanism
    for defense in defenses.defenses:
        if reach is not None:
            reach = defense.certify(current, reach)
            if reach is None:
                missing = f"defense {defense.name!r} carries no certificate"
        current = defense(current)
    shape = (truth.k, truth.m)
    if defended.kind == "agreements":
        slack = 0.0
        method = params.get("method", "exact")
        if method != "exact":
            slack = float(params.get("tol") or SOLVER_TOL[method])
        converged = f" (converged {method}, tolerance {slack:g})" if method != "exact" else ""
        if reach is None or reach.bounds is None:
            why = missing or f"no bound on the bounds in force ({how})"
            return Proof(f"valid set only: {why}{converged}", "agreements", reach, shape,
                         slack=slack)
        gx, gw = reach.bounds
        honest = reach.honest
        return Proof(f"acceptable sets, bounds in force ≤ γˣ {gx[honest].max():.4g}, "
                     f"γʷ {gw[honest].max():.4g}{converged}", "agreements", reach, shape,
                     slack=slack)
    p = check_p(params.get("p", 2))
    if reach is None:
        return Proof(f"valid set only: {missing}", "consensus", None, shape, p=p)
    if p == 2 and reach.weights_exact:
        return Proof("ℓ2 mean: weight shares of the budget and of the valid set",
                     "consensus", reach, shape, p=p)
    label = "∞" if math.isinf(p) else f"{p:g}"
    return Proof(f"ℓ{label} coordinate range", "consensus", reach, shape, p=p)


def certify(truth: Population, mechanism: Mechanism, threat: ThreatModel, budget: float,
            *, defenses: DefenseChain | None = None, seed: int = 0) -> Certificate:
    """Upper bounds on what any attack of ``threat`` within ``budget`` can do (module doc).

    The attackers and the capture target are those the threat model selects with
    ``seed`` (as every recipe would); the clean outcome is computed.

    Examples
    --------
    >>> import numpy as np
    >>> from pluralguard.attacks import ThreatModel
    >>> pop = Population(np.array([[[-.6]], [[-.4]], [[.3]], [[.5]]]), np.ones((4, 1)))
    >>> cert = certify(pop, Mechanism("consensus", {"p": 2}), ThreatModel(attackers=(0,)),
    ...                budget=0.1)
    >>> 0 < cert.bounds["attacker_gain"] < 0.01
    True
    """
    defenses = defenses or DefenseChain()
    ctx = AttackContext(truth, defenses(mechanism), threat, seed)
    targets = ctx.targets()
    return prove(truth, mechanism, defenses, threat, budget, targets.attackers).bound(targets)


def certificate_columns(truth: Population, mechanism: Mechanism, chains: list[DefenseChain],
                        cleans: list[Any], plan: AttackPlan | None, threat: ThreatModel | None,
                        budget: float, utility: str, row: Mapping[str, Any]
                        ) -> dict[str, Any]:
    """The ``results.csv`` columns of a scenario: ``certified_<metric>`` (the mean over
    the evaluation's draws of each draw's certificate, as the metrics are means),
    ``gap_<metric>`` = certified − found (from ``row``), ``gap_exhaustive`` and
    ``certificate_basis`` (module doc). Empty for a run without attack."""
    out: dict[str, Any] = {f"certified_{m}": math.nan for m in CERTIFIED}
    out |= {f"gap_{m}": math.nan for m in CERTIFIED}
    out |= {"gap_exhaustive": math.nan, "certificate_basis": ""}
    if plan is None or threat is None:
        return out
    proof = prove(truth, mechanism, chains[0], threat, budget, plan.attackers,
                  deviates=plan.hook is not None)
    certs = [proof.bound(plan.targets(truth, clean, utility)) for clean in cleans]
    for m in CERTIFIED:
        values = np.array([c.bounds[m] for c in certs], float)
        if np.isnan(values).all():
            continue
        out[f"certified_{m}"] = float(values.mean())
        found = row.get(m, math.nan)
        out[f"gap_{m}"] = out[f"certified_{m}"] - float(found)
    spec = GOAL_SPECS[plan.goal.kind]
    optimum = row.get("exhaustive_optimum", math.nan)
    if spec.column in CERTIFIED and spec.sign > 0 and len(cleans) == 1:
        out["gap_exhaustive"] = out[f"certified_{spec.column}"] - float(optimum)
    out["certificate_basis"] = proof.basis
    return out
