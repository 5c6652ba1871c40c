"""What any attack of a threat model can make a mechanism see: the envelope certificates
are proved on (:mod:`~pluralguard.eval.certify`).

**The attack space.** Each attacker a declares any valid value system within δ ≤ ε of
its truth v_a (ε = min(budget, 1), δ ≤ 1 on the valid set) and any bounds in the legal
range; up to s Sybil identities declare anything valid, each carrying the population's
median weight (:func:`pluralguard.attacks.geometry.make_identities`). This is the
declaration space of :mod:`pluralguard.attacks.space`, searched by ``best_response``
and the exhaustive reference, and every recipe declares inside it (a recipe whose
budget means something else — stubborn's withheld share, a bridge's share of its
chain, the Sybil point's distance to a group — keeps its attackers within δ ≤ min(ε, 1)
of their truths and its Sybils valid), so a bound proved over it holds for all of them.

:class:`Reach` records what is proved about the declarations the (defended) mechanism
then solves: upper bounds on the honest agents' bounds in force, intervals for every
weight, and, on demand, an upper bound on the pairwise-distance quantile that sets the
threshold under ``quantile:q``. Defenses refine it through
:meth:`pluralguard.defenses.Defense.certify`.

**The quantile threshold, by order statistics.** Let M be the multiset of the
P = N(N − 1)/2 distances ‖X̂_i − X̂_j‖_F between the N = n + s' declared identities (the
same for W). A pair of honest agents keeps its distance. For an attacker a and an
honest h, |‖X̂_a − X_h‖ − ‖X_a − X_h‖| ≤ ‖X̂_a − X_a‖ ≤ r = min(√2·ε·D_X, D_X), because
δ ≤ ε bounds each part (‖ΔX‖²/(2 D_X²) ≤ δ²); two attackers move their distance by 2r;
a Sybil's distances are anything in [0, D_X], and no distance exceeds the diameter
D_X. Replacing every distance by its largest value gives M⁺, and order statistics are
monotone under such a coupling: M_(j) ≤ M⁺_(j). The quantile numpy computes,
(1 − f)·M_(⌊ρ⌋) + f·M_(⌊ρ⌋+1) with ρ = q(P − 1), is non-decreasing in every order
statistic, so Q_q(M) ≤ Q_q(M⁺). When a rule leaves out identities (a trimmed
threshold, an outlier filter), what remains is a sub-multiset M' with K = P − P' fewer
pairs, whichever they are: among the j + K + 1 smallest of M at most K are missing, so
M'_(j) ≤ M_(j+K), and Q_q(M') ≤ M'_(⌈q(P'−1)⌉) ≤ M⁺_(⌈q(P'−1)⌉+K). The bound is taken
over every Sybil count s' ≤ s. This is the classical bias of a quantile under a
share of arbitrary contamination — the contaminated points move it at most between
order statistics (Huber, *Robust Statistics*, 1981, §3.2; Hampel, *A general
qualitative definition of robustness*, Ann. Math. Stat. 1971) — made exact for the
pairs a coalition controls. It holds where the mechanism computes the quantile exactly
(:func:`pluralguard.core.bounds.pairwise_distance_quantile`: at most
``MAX_EXACT_PAIRS`` distinct pairs); where it could sample, nothing is proved (None).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import cached_property
from typing import Any

import numpy as np
from scipy.spatial.distance import cdist, pdist

from pluralguard.core.bounds import MAX_EXACT_PAIRS, sorted_distances
from pluralguard.core.geometry import D_W, diameter_x
from pluralguard.core.model import Population

#: Relative padding of every proved threshold (rounding of the distances).
PAD = 1e-12


@dataclass(frozen=True)
class _Pairs:
    """The multiset M⁺ without Sybils, sorted, with multiplicities; Sybil pairs are
    appended at the diameter on demand."""

    values: np.ndarray
    cumulative: np.ndarray  # pairs with value ≤ values[t]
    diameter: float

    @property
    def size(self) -> int:
        return int(self.cumulative[-1]) if self.cumulative.size else 0

    def order(self, rank: int) -> float:
        """The rank-th smallest (0-based) of M⁺ with any number of Sybil pairs on top."""
        if rank >= self.size:
            return self.diameter
        return float(self.values[np.searchsorted(self.cumulative, rank + 1)])

    def quantile_bound(self, q: float, n: int, removed: int) -> float:
        """Upper bound on the q-quantile of the distances among n identities (this
        multiset's agents and n − its agents Sybils), any ``removed`` of them left out."""
        left = n - removed
        if left < 2:
            return 0.0
        total = n * (n - 1) // 2
        kept = left * (left - 1) // 2
        if removed == 0:
            rank = q * (total - 1)
            lo = int(np.floor(rank))
            frac = rank - lo
            a = self.order(lo)
            return a if frac == 0.0 else a + frac * (self.order(min(lo + 1, total - 1)) - a)
        rank = q * (kept - 1)
        j = int(np.floor(rank))
        j += rank > j
        return self.order(min(j + total - kept, total - 1))


def _pairs(points: np.ndarray, honest: np.ndarray, attackers: np.ndarray, radius: float,
           diameter: float) -> _Pairs:
    """M⁺ for one part (rows of ``points``): honest pairs exact, attacker pairs widened
    by ``radius`` per attacker, all capped at ``diameter``."""
    uniq, counts = np.unique(points[honest], axis=0, return_counts=True)
    v, w = sorted_distances(uniq, counts)  # the honest pairs, sorted once per population
    if attackers.size:
        extra_v = np.concatenate([
            np.minimum(cdist(points[attackers], uniq) + radius, diameter).ravel(),
            np.minimum(pdist(points[attackers]) + 2 * radius, diameter)])
        extra_w = np.concatenate([np.tile(counts.astype(float), attackers.size),
                                  np.ones(attackers.size * (attackers.size - 1) // 2)])
        order = np.argsort(extra_v, kind="stable")
        at = np.searchsorted(v, extra_v[order], side="right")  # merged after equal values
        v, w = np.insert(v, at, extra_v[order]), np.insert(w, at, extra_w[order])
    return _Pairs(v, np.cumsum(w), diameter)


@dataclass(frozen=True, eq=False)
class Reach:
    """What any attack of one threat model can make a mechanism solve (module doc).

    Attributes
    ----------
    truth : Population
        True value systems and bounds (what honest agents declare).
    honest : ndarray of int
        Agents that do not attack.
    radius : float
        ε: how far (δ) each attacker may declare from its truth, at most 1.
    sybils : int
        Most Sybil identities.
    bounds : (ndarray, ndarray) or None
        Upper bounds on every honest agent's bounds in force (γˣ, γʷ); None: unproved.
    weight_low, weight_high : ndarray
        Each agent's weight as the mechanism weighs it lies between these.
    sybil_weight : (float, float)
        A declared Sybil's weight lies between these.
    """

    truth: Population
    honest: np.ndarray
    radius: float
    sybils: int
    bounds: tuple[np.ndarray, np.ndarray] | None
    weight_low: np.ndarray
    weight_high: np.ndarray
    sybil_weight: tuple[float, float]

    @property
    def attackers(self) -> np.ndarray:
        return np.setdiff1d(np.arange(self.truth.n), self.honest)

    @property
    def weights_exact(self) -> bool:
        """Whether every weight is known exactly (no defense changed any)."""
        return bool(np.array_equal(self.weight_low, self.weight_high)
                    and self.sybil_weight[0] == self.sybil_weight[1])

    def replace(self, **changes: Any) -> Reach:
        return replace(self, **changes)

    @cached_property
    def _parts(self) -> tuple[_Pairs, _Pairs] | None:
        truth, n = self.truth, self.truth.n
        points = (truth.X.reshape(n, -1), truth.W)
        distinct = max(np.unique(p[self.honest], axis=0).shape[0] for p in points)
        most = distinct + self.attackers.size + self.sybils
        if most * (most - 1) // 2 > MAX_EXACT_PAIRS:
            return None  # the mechanism may sample the quantile: nothing proved
        dx, dw = diameter_x(truth.k, truth.m), D_W
        scale = math.sqrt(2.0) * self.radius
        return (_pairs(points[0], self.honest, self.attackers, min(scale * dx, dx), dx),
                _pairs(points[1], self.honest, self.attackers, min(scale * dw, dw), dw))

    def quantile(self, q: float, removed: Callable[[int], int] | None = None
                 ) -> tuple[float, float] | None:
        """Upper bounds (X, W) on the q-quantile of the pairwise declared distances under
        any attack, over the identities left after any ``removed(N)`` of the N declared
        ones are left out (module doc); None where the quantile may be sampled."""
        parts = self._parts
        if parts is None:
            return None
        out = []
        for pairs in parts:
            best = 0.0
            for s in range(self.sybils + 1):
                n = self.truth.n + s
                best = max(best, pairs.quantile_bound(q, n, removed(n) if removed else 0))
            out.append(best * (1.0 + PAD) + PAD)
        return out[0], out[1]
