"""Threshold rules: a quantile a minority cannot move, and a seeded random threshold.

Both replace or wrap the agreement mechanism's bound rule (``bounds=`` accepts any
object with ``resolve(population, random_state) -> (gamma_x, gamma_w)``), so they
compose with the other bound defenses: wrappers are kept, the innermost policy is
what a robust threshold replaces.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from scipy.spatial.distance import cdist

from pluralguard.core.bounds import (
    BoundPolicy,
    BoundRule,
    BoundSession,
    PairwiseQuantile,
    bound_session,
    pairwise_distance_quantile,
    resolve_bounds,
)
from pluralguard.core.incremental import MAX_CHANGED
from pluralguard.core.mechanism import Mechanism
from pluralguard.core.model import Population
from pluralguard.core.orderstats import DistanceRows, changed_rows
from pluralguard.core.params import Constraint, Integer, OrNone, Real

from .base import (
    FRACTION,
    Defense,
    Reach,
    base_rule,
    bound_rule,
    parts,
    plain_policy,
    rebase,
    with_bound_rule,
    wraps_bounds,
)

#: Above this many agents, depths are medians of distances to a seeded sample.
REFERENCE = 2000
#: Rows per block of the depth computation.
BLOCK = 1024


def median_distance(points: np.ndarray, random_state: int = 0) -> np.ndarray:
    """Each row's median distance to all rows (to a seeded sample of ``REFERENCE`` rows
    when there are more): the middle order statistic, or the mean of the two middle
    ones (:func:`_middle`)."""
    n = points.shape[0]
    ref = points
    if n > REFERENCE:
        ref = points[np.random.default_rng(random_state).choice(n, REFERENCE, replace=False)]
    ranks = _middle_ranks(ref.shape[0])
    return np.concatenate([_middle(np.partition(cdist(points[s:s + BLOCK], ref), ranks,
                                                axis=1)[:, ranks])
                           for s in range(0, n, BLOCK)])


def _middle_ranks(size: int) -> np.ndarray:
    """The ranks (0-based) whose values make the median of ``size`` values."""
    return np.array(sorted({(size - 1) // 2, size // 2}), dtype=np.int64)


def _middle(values: np.ndarray) -> np.ndarray:
    """Medians from the middle order statistics (columns of ``values``), as
    :func:`numpy.median` forms them: the middle value, or the mean (a + b) / 2."""
    return values[:, 0] if values.shape[1] == 1 else (values[:, 0] + values[:, 1]) / 2


class _Depths:
    """:func:`median_distance` for tables near a base's, updated exactly from the rows
    that changed (:class:`~pluralguard.core.orderstats.DistanceRows`); in full beyond
    ``REFERENCE`` rows (a sample) or :data:`MAX_CHANGED` changes."""

    def __init__(self, points: np.ndarray, random_state: int) -> None:
        self.points, self.random_state = np.array(points, dtype=float), random_state
        self.table = DistanceRows(points) if points.shape[0] <= REFERENCE else None

    def __call__(self, points: np.ndarray) -> np.ndarray:
        n0, n = self.points.shape[0], points.shape[0]
        changed = changed_rows((self.points,), (points,)) if self.table is not None else None
        if changed is None or n > REFERENCE or n - n0 + changed.size > MAX_CHANGED:
            return median_distance(points, self.random_state)
        joined = np.concatenate([changed, np.arange(n0, n)])
        kept, fresh = self.table.order_statistics(_middle_ranks(n), changed, points[joined])
        depth = np.empty(n)
        stay = np.ones(n, dtype=bool)
        stay[joined] = False
        depth[stay] = _middle(kept)
        depth[joined] = _middle(fresh)
        return depth


def trimmed(n: int, trim: float) -> int:
    """Declarations :class:`TrimmedQuantile` drops at *each* end of the depth order, of n:
    ⌈trim·n⌉, at most (n − 2) // 2 (two always stay), none for n ≤ 2."""
    return min(math.ceil(trim * n), (n - 2) // 2) if n > 2 else 0


@dataclass(frozen=True)
class TrimmedQuantile:
    """Bound rule: the q-quantile of the pairwise distances among the agents left after
    trimming the ⌈trim·n⌉ most central and ⌈trim·n⌉ most peripheral declarations
    (by median distance to the others), for X and W separately; everyone gets it."""

    q: float
    trim: float
    #: Acts like a quantile threshold (attacks on the quantile apply to it).
    kind: ClassVar[str] = "quantile"

    def resolve(self, population: Population, random_state: int = 0
                ) -> tuple[np.ndarray, np.ndarray]:
        n = population.n
        gammas = []
        for points in parts(population):
            kept = points[self._kept(median_distance(points, random_state))]
            gammas.append(np.full(n, pairwise_distance_quantile(kept, self.q,
                                                                random_state=random_state)))
        return gammas[0], gammas[1]

    def _kept(self, depth: np.ndarray) -> np.ndarray:
        """The agents left after trimming both ends of the depth order."""
        n = depth.size
        t = trimmed(n, self.trim)
        return np.argsort(depth, kind="stable")[t:n - t]

    def session(self, base: Population, random_state: int = 0) -> BoundSession:
        """:meth:`resolve` for populations near ``base``: depths updated from the rows
        that changed (:class:`_Depths`), and the quantile of the kept agents' distances
        from the agents that left and joined the kept set
        (:class:`~pluralguard.core.bounds.PairwiseQuantile`)."""
        states = []
        for points in parts(base):
            depths = _Depths(points, random_state)
            kept = self._kept(median_distance(points, random_state))
            states.append((points, depths, kept,
                           PairwiseQuantile(points[kept], self.q, random_state)))

        def resolve(population: Population) -> tuple[np.ndarray, np.ndarray]:
            n = population.n
            gammas = []
            for (old, depths, kept0, quantile), points in zip(states, parts(population),
                                                              strict=True):
                kept = self._kept(depths(points))
                changed = changed_rows((old,), (points,))
                if changed is None:  # not a query near the base
                    gammas.append(pairwise_distance_quantile(
                        points[kept], self.q, random_state=random_state))
                    continue
                # an agent counts as the same row if it stayed kept and unchanged
                moved = np.zeros(n, dtype=bool)
                moved[changed] = True
                moved[old.shape[0]:] = True
                now = np.zeros(n, dtype=bool)
                now[kept] = True
                before = np.zeros(n, dtype=bool)
                before[kept0] = True
                gone = np.flatnonzero(~now[kept0] | moved[kept0])  # positions in kept0
                joined = kept[~before[kept] | moved[kept]]
                gammas.append(quantile.update(gone, points[joined]))
            return np.full(n, gammas[0]), np.full(n, gammas[1])

        return resolve

    def __str__(self) -> str:
        return f"trimmed-quantile:{self.q:g},{self.trim:g}"


@dataclass(frozen=True)
class RobustThreshold(Defense):
    """Compute the ``quantile:q`` threshold after trimming the most central and the most
    peripheral declarations.

    Idea: under ``quantile:q`` every declaration moves the threshold; a minority
    holding a share f of the agents controls a share ≈ 2f of the pairwise distances,
    so it can shift the quantile level by ≈ 2f — declaring far away inflates the
    threshold and consolidates everyone, declaring one central point deflates it and
    fragments everyone (threshold shift). Both need declarations at an extreme of
    *depth*: far-away points have the largest median distance to the others, a
    stuffed centre the smallest. Trimming ⌈f·n⌉ agents at each end of the depth
    order before taking the quantile removes them; what survives sits where honest
    agents sit and moves the quantile about as much as f·n extra honest agents would.
    This is the trimmed estimator of robust statistics (Tukey 1960; Huber & Ronchetti,
    *Robust Statistics*, 2009), ordering by depth (median distance, a
    Weber/medoid-type depth) instead of by value.

    Parameters
    ----------
    q : float, optional
        Quantile level; default the mechanism's own ``quantile:q``.
    assumed_fraction : float
        Tolerated share of attackers, trimmed at each end (default 0.1).

    Assumes attackers are at most ``assumed_fraction`` of the agents. Clean cost:
    the trimmed quantile of honest declarations differs a little from the plain one,
    so the threshold and the groups change a little.

    Acts on mechanisms with capability ``links`` (the agreement mechanism) under a
    ``quantile`` policy (wrappers kept). Under ``declared``/``fixed`` policies there is
    no quantile to shift, and the consensus has no threshold: no-op.
    """

    name = "robust_threshold"
    summary = "quantile threshold after trimming extreme declarations (against " \
              "threshold shift)"
    layer = "network"
    targets = ("threshold_shift",)
    assumes = "attackers are at most assumed_fraction of the agents"

    q: float | None = None
    assumed_fraction: float = 0.1

    PARAMS: ClassVar[dict[str, Constraint]] = {
        "q": OrNone(Real(0, 1, sample=0.5)), "assumed_fraction": FRACTION}

    def apply(self, mechanism: Mechanism) -> Mechanism:
        if not wraps_bounds(mechanism):
            return mechanism
        policy = base_rule(bound_rule(mechanism))
        if not (isinstance(policy, BoundPolicy) and policy.kind == "quantile"):
            return mechanism
        q = float(policy.q if self.q is None else self.q)
        rule = TrimmedQuantile(q, float(self.assumed_fraction))
        return mechanism.with_params(bounds=rebase(bound_rule(mechanism), lambda _: rule))

    def certify(self, mechanism: Mechanism, reach: Reach) -> Reach | None:
        """The trimmed threshold is a quantile over N − 2t of the N declared identities,
        whichever the trimming keeps: at most the order-statistic bound with 2t
        identities left out (:meth:`~pluralguard.eval.reach.Reach.quantile`; leaving out
        identities can raise a quantile, and the bound says by how much at most). Only
        a bare quantile policy is replaced with a certificate."""
        if not self.acts_on(mechanism):
            return reach
        policy = plain_policy(mechanism)
        if policy is None:
            return None
        q = float(policy.q if self.q is None else self.q)
        trim = float(self.assumed_fraction)
        gamma = reach.quantile(q, lambda n: 2 * trimmed(n, trim))
        if gamma is None:
            return None
        n = reach.truth.n
        return reach.replace(bounds=(np.full(n, gamma[0]), np.full(n, gamma[1])))


@dataclass(frozen=True)
class Jittered:
    """Bound rule: the inner rule's bounds, agent i's multiplied by 1 + a(2Uᵢ − 1) with
    Uᵢ ~ U(0, 1) drawn from ``seed`` in agent order."""

    inner: BoundPolicy | BoundRule
    amplitude: float
    seed: int

    def resolve(self, population: Population, random_state: int = 0
                ) -> tuple[np.ndarray, np.ndarray]:
        gx, gw = resolve_bounds(population, self.inner, random_state=random_state)
        factor = self._factors(population.n)
        return gx * factor, gw * factor

    def _factors(self, n: int) -> np.ndarray:
        u = np.random.default_rng(self.seed).random(n)
        return 1.0 + self.amplitude * (2.0 * u - 1.0)

    def session(self, base: Population, random_state: int = 0) -> BoundSession:
        """:meth:`resolve` for populations near ``base``: the inner rule's session, and
        the factors drawn once per population size."""
        inner = bound_session(self.inner, base, random_state)
        factors: dict[int, np.ndarray] = {}

        def resolve(population: Population) -> tuple[np.ndarray, np.ndarray]:
            gx, gw = inner(population)
            n = population.n
            if n not in factors:
                factors[n] = self._factors(n)
            return gx * factors[n], gw * factors[n]

        return resolve

    def __str__(self) -> str:
        return f"{self.inner}|jitter:{self.amplitude:g}"


@dataclass(frozen=True)
class RandomizedThreshold(Defense):
    """Jitter every agent's bound in force by a seeded random factor in [1 − a, 1 + a].

    Idea: attacks tuned to the exact threshold — a bridge chain spaced at the linking
    distance, an infiltrator declared just inside a group's acceptance region — rely
    on knowing it. A per-agent random factor makes every link at the margin succeed
    only by chance (a link needs *both* endpoints' bounds), so a chain of L marginal
    links survives only if all its L + 1 endpoints draw a factor ≥ 1, with
    probability about 2^−(L+1), while links well inside the threshold are unaffected.
    Randomised decision thresholds against evasion follow Barreno et al., *Can machine
    learning be secure?* (ASIACCS 2006) and the randomised-classifier defenses since;
    the attacker's answer is a margin (chains spaced at (1 − a) times the threshold,
    costing more identities).

    Parameters
    ----------
    amplitude : float
        a in [0, 1): relative jitter (default 0.2).
    seed : int
        Seed of the factors (runs stay deterministic; an attacker who knows it can
        plan around it, so a deployment would keep it secret).

    Assumes the attacker does not know the seed. Clean cost: honest links at the
    margin change too (some gained, some lost).

    Acts on mechanisms with capability ``links`` (the agreement mechanism) under any
    bound policy (wraps the rule in force). No-op for the others, e.g. the consensus,
    which has no threshold.
    """

    name = "randomized_threshold"
    summary = "seeded per-agent jitter on the bounds in force (against threshold-tuned " \
              "bridges)"
    layer = "network"
    targets = ("bridge", "infiltrate")
    assumes = "the attacker does not know the seed"

    amplitude: float = 0.2
    seed: int = 0

    PARAMS: ClassVar[dict[str, Constraint]] = {
        "amplitude": Real(0, 1, closed="left", sample=0.2), "seed": Integer(0)}

    def apply(self, mechanism: Mechanism) -> Mechanism:
        return with_bound_rule(mechanism, lambda rule: Jittered(rule, float(self.amplitude),
                                                                int(self.seed)))

    def certify(self, mechanism: Mechanism, reach: Reach) -> Reach | None:
        """Bounds in force ≤ (1 + a) Γ: the jitter is the outermost rule and its factor
        1 + a(2U − 1) ≤ 1 + a in every draw, so the certificate holds for each draw and
        for their mean."""
        if not self.acts_on(mechanism):
            return reach
        if reach.bounds is None:
            return reach
        factor = 1.0 + float(self.amplitude)
        return reach.replace(bounds=(reach.bounds[0] * factor, reach.bounds[1] * factor))
