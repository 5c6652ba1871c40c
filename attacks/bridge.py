"""Bridge: a chain of Sybil identities linking two groups (Biggio et al. 2013/2014)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import partial

import numpy as np
from scipy.spatial.distance import cdist

from pluralguard.core.mechanism import Mechanism
from pluralguard.core.model import Population

from .base import Attack, clip_bounds, require_capabilities
from .context import AttackContext
from .geometry import make_identities
from .plan import AttackPlan
from .threat import ThreatModel

#: Rounds of re-placing the chain when its own declarations move the quantile bounds.
_QUANTILE_ROUNDS = 6
#: Pairs per block when searching the closest pair of two groups.
_PAIR_BLOCK = 1 << 22


def chain_ratio(decl: Population, gx: np.ndarray, gw: np.ndarray, A: np.ndarray,
                B: np.ndarray) -> tuple[float, int, int]:
    """min over i ∈ A, j ∈ B of r_ij = max(‖X_i − X_j‖ / min(γˣ_i, γˣ_j),
    ‖W_i − W_j‖ / min(γʷ_i, γʷ_j)), with the minimising pair.

    i and j link iff r_ij ≤ 1; a straight chain of s evenly spaced identities links
    them iff (s + 1) ≥ r_ij, so ⌈r⌉ − 1 identities are needed. The |A| × |B| ratios
    are computed in row blocks of at most ``_PAIR_BLOCK`` pairs, so two large groups
    never need a dense |A| × |B| × k × m array.
    """
    XB, WB = decl.X[B].reshape(len(B), -1), decl.W[B]
    step = max(1, _PAIR_BLOCK // max(len(B), 1))
    best, best_i, best_j = np.inf, int(A[0]), int(B[0])
    for start in range(0, len(A), step):
        rows = A[start:start + step]
        dX = cdist(decl.X[rows].reshape(len(rows), -1), XB)
        dW = cdist(decl.W[rows], WB)
        with np.errstate(divide="ignore", invalid="ignore"):
            r = np.maximum(
                np.nan_to_num(dX / np.minimum(gx[rows][:, None], gx[B][None]), nan=0.0),
                np.nan_to_num(dW / np.minimum(gw[rows][:, None], gw[B][None]), nan=0.0))
        a, b = np.unravel_index(int(np.argmin(r)), r.shape)
        if r[a, b] < best:
            best, best_i, best_j = float(r[a, b]), int(rows[a]), int(B[b])
    return best, best_i, best_j


@dataclass(frozen=True)
class Bridge(Attack):
    """A chain of Sybils spaced within the linking threshold between two groups.

    Idea: single-linkage-like clustering joins two clusters as soon as a path of
    close points connects them; a few injected points placed along the segment between
    the clusters' nearest members, each within the linking threshold of the next, merge
    them (Biggio, Pillai, Rota Bulò, Ariu, Pelillo & Roli, *Is data clustering in
    adversarial settings secure?*, AISec 2013, bridging attack on single linkage; and
    Biggio et al., *Poisoning complete-linkage hierarchical clustering*, S+SSPR 2014).
    Here agents i, j link iff r_ij = max(‖ΔX‖/min(γˣ_i, γˣ_j), ‖ΔW‖/min(γʷ_i, γʷ_j)) ≤ 1,
    so the chain between the pair (i*, j*) of the two groups with the smallest r needs
    ⌈r⌉ − 1 identities, evenly spaced. The Sybils declare the larger of the two
    endpoints' bounds. Under ``quantile:q`` the chain itself moves the threshold, so
    it is re-placed until the count settles.

    The chain always joins the groups in the *initial* homophily network; the ``merge``
    link rule then merges them only if the union keeps a common acceptable point
    (Sybils add no constraint that helps), so groups split by infeasibility resist
    bridging while groups split by distance do not.

    Budget
    ------
    The share of a complete chain the attackers build: ⌈min(b, 1)·(⌈r⌉ − 1)⌉
    identities, at most ``threat.sybils`` (default 20), spaced evenly, so any shortfall
    leaves every gap above the threshold. Default 1 (the complete chain); curve
    (0.25, 0.5, 0.75, 1).

    Goal
    ----
    ``merge`` (default; the two largest groups, or ``groups``) or ``consolidate``.
    """

    name = "bridge"
    summary = "a chain of Sybils spaced within the linking threshold joins two groups"
    goals = ("merge", "consolidate")
    white_box = "places the chain from the declarations and the bounds in force"
    needs_sybils = True
    default_budget = 1.0
    default_budgets = (0.25, 0.5, 0.75, 1.0)

    threat: ThreatModel = field(default_factory=partial(
        ThreatModel, goal="merge", sybils=20))

    def _applies(self, truth: Population, mechanism: Mechanism) -> None:
        require_capabilities(self.name, mechanism, {
            "groups": "joins two groups",
            "links": "spaces its Sybils within the linking threshold the bounds in force set"},
            "against a mechanism without a linking threshold use 'sybil'")

    def _plan(self, ctx: AttackContext, budget: float) -> AttackPlan:
        ga, gb = ctx.merge_group_ids()
        A, B = ctx.members(ga), ctx.members(gb)
        if A.size == 0 or B.size == 0:  # a group of attackers only: nothing honest to join
            return ctx.plan(ctx.truth, info={"groups": (ga, gb), "sybils": 0,
                                             "reason": "a group to merge has no honest member"})
        decl = ctx.declared
        gx, gw = ctx.bounds_in_force()
        ratio, i, j = chain_ratio(decl, gx, gw, A, B)
        share = min(budget, 1.0)
        declared = ctx.truth
        needed = used = 0
        for _ in range(_QUANTILE_ROUNDS):
            needed = max(math.ceil(ratio) - 1, 0)
            used = min(ctx.threat.sybils, math.ceil(share * needed))
            frac = np.arange(1, used + 1) / (used + 1)
            X = decl.X[i] + frac[:, None, None] * (decl.X[j] - decl.X[i])
            W = decl.W[i] + frac[:, None] * (decl.W[j] - decl.W[i])
            bx, bw = clip_bounds(ctx.threat, np.full(used, max(gx[i], gx[j])),
                                 np.full(used, max(gw[i], gw[j])))
            declared = (ctx.truth.append(make_identities(ctx.truth, X, W, bx, bw, "bridge"))
                        if used else ctx.truth)
            nx, nw = ctx.bounds_in_force(declared)
            if nx[i] == gx[i] and nx[j] == gx[j] and nw[i] == gw[i] and nw[j] == gw[j]:
                break  # the chain did not move the bounds in force: it is final
            gx, gw = nx[: decl.n], nw[: decl.n]
            ratio = chain_ratio(decl, gx, gw, np.array([i]), np.array([j]))[0]
        return ctx.plan(declared, sybils=used,
                        info={"groups": (ga, gb), "ends": (i, j), "ratio": ratio,
                              "needed": needed, "sybils": used})
