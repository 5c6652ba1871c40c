"""Limits on confidence bounds: floors, local caps, and ignoring declared bounds.

A declared bound γ̂ᵢ is how far agent i says it concedes. Small bounds are leverage
(a stubborn agent forces every group it joins onto its own point); large thresholds
are leverage too, for whoever can inflate them (everyone links with everyone and the
groups consolidate). The defenses here bound that leverage from below
(:class:`BoundFloor`), from above (:class:`BoundCap`), or take the bounds out of the
agents' hands (:class:`ProtocolBounds`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from scipy.spatial.distance import cdist
from sklearn.neighbors import NearestNeighbors

from pluralguard.core.bounds import (
    BoundPolicy,
    BoundRule,
    BoundSession,
    PairwiseQuantile,
    bound_session,
    pairwise_distance_quantile,
    resolve_bounds,
    row_changes,
)
from pluralguard.core.errors import InputError
from pluralguard.core.incremental import MAX_CHANGED
from pluralguard.core.mechanism import Mechanism
from pluralguard.core.model import Population
from pluralguard.core.orderstats import DistanceRows, RowCounts
from pluralguard.core.params import Constraint, Integer, OrNone, Real

from .base import (
    Defense,
    Reach,
    parts,
    plain_policy,
    rebase,
    uses_declared_bounds,
    with_bound_rule,
)


def _joined(base: Population, population: Population,
            part: Callable[[Population], np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """The base rows that leave and the rows that join, for a quantile update."""
    gone, joined = row_changes(base, population, part)
    return gone, part(population)[joined]


@dataclass(frozen=True)
class BoundFloor(Defense):
    """Raise every declared bound to at least a floor: γ̂ᵢ ← max(γ̂ᵢ, γ_min).

    Idea: a tiny declared bound (a *stubborn* agent, γ̂ ≈ 0) forces every group it
    joins onto its own point, since the agreement must lie in its acceptable set.
    A floor caps that leverage; it is the value-system analogue of the minimum
    concession rules of negotiation protocols, and of clipping a client's influence
    in robust aggregation (Karimireddy et al., *Byzantine-robust learning on
    heterogeneous datasets via bucketing*, 2022).

    Parameters
    ----------
    quantile : float
        Floor as the q-quantile of all pairwise declared distances, computed separately
        for X and W (default 0.1). Ignored when ``gamma_x`` and ``gamma_w`` are given.
    gamma_x, gamma_w : float, optional
        Absolute floors.

    Assumes honest agents concede at least the floor; the quantile floor is computed
    from the declarations, so attackers can lower it (threshold shift).

    Acts only where declared bounds are in force (capability ``declared_bounds``): the
    agreement mechanism under the ``declared`` bound policy, and registered mechanisms
    that declare it. Under ``quantile``/``fixed``
    policies and for the consensus (where bounds only decide membership) it is a
    no-op: the mechanism is returned unchanged. Cost: honest agents who really concede
    less than the floor are forced to accept more (larger groups, agreements further
    from them).
    """

    name = "bound_floor"
    summary = "raise every declared bound to at least a floor (against stubborn bounds)"
    layer = "declarations"
    targets = ("stubborn", "exclude", "infiltrate")
    assumes = "honest agents concede at least the floor"

    quantile: float = 0.1
    gamma_x: float | None = None
    gamma_w: float | None = None

    PARAMS: ClassVar[dict[str, Constraint]] = {
        "quantile": Real(0, 1, sample=0.1),
        "gamma_x": OrNone(Real(0, sample=0.1)),
        "gamma_w": OrNone(Real(0, sample=0.1))}

    def _check_together(self) -> None:
        if (self.gamma_x is None) != (self.gamma_w is None):
            raise InputError("gamma_x", "give both absolute floors or neither",
                             "pass gamma_x and gamma_w, or use quantile")

    def apply(self, mechanism: Mechanism) -> Mechanism:
        if not uses_declared_bounds(mechanism):
            return mechanism
        return mechanism.with_transform(self)

    def certify(self, mechanism: Mechanism, reach: Reach) -> Reach | None:
        """Bounds in force ≤ max(Γ, f⁺), Γ the mechanism's proved bound.

        Under a bare ``declared`` policy the bound in force is max(γ̂ᵢ, f), and the
        floor f — the q-quantile of the pairwise declared distances, which attackers
        move — is at most the reach's order-statistic bound f⁺
        (:meth:`~pluralguard.eval.reach.Reach.quantile`); an absolute floor is itself.
        Behind a bound-rule wrapper the floor would feed the wrapper, whose effect the
        reach has already counted on the unfloored bounds: no certificate there.
        """
        if not self.acts_on(mechanism):
            return reach
        if reach.bounds is None or plain_policy(mechanism) is None:
            return None
        if self.gamma_x is not None:
            fx, fw = float(self.gamma_x), float(self.gamma_w)
        else:
            floor = reach.quantile(self.quantile)
            if floor is None:
                return None
            fx, fw = floor
        bx, bw = reach.bounds
        return reach.replace(bounds=(np.maximum(bx, fx), np.maximum(bw, fw)))

    def floors(self, population: Population) -> tuple[float, float]:
        """The floors (γˣ_min, γʷ_min) for these declarations."""
        if self.gamma_x is not None:
            return float(self.gamma_x), float(self.gamma_w)
        px, pw = parts(population)
        return (pairwise_distance_quantile(px, self.quantile),
                pairwise_distance_quantile(pw, self.quantile))

    def transform(self, population: Population) -> Population:
        if not population.has_bounds:
            return population
        fx, fw = self.floors(population)
        return self._floored(population, fx, fw)

    @staticmethod
    def _floored(population: Population, fx: float, fw: float) -> Population:
        return population.with_bounds(np.maximum(population.gamma_x, fx),
                                      np.maximum(population.gamma_w, fw))

    def session(self, base: Population) -> Callable[[Population], Population]:
        """:meth:`transform` for populations near ``base``: the quantile floors updated
        from the declarations that changed
        (:class:`~pluralguard.core.bounds.PairwiseQuantile`)."""
        if self.gamma_x is not None:
            return self.transform
        quantiles = tuple(PairwiseQuantile(p, self.quantile) for p in parts(base))
        getters: tuple[Callable[[Population], np.ndarray], ...] = (
            lambda p: parts(p)[0], lambda p: parts(p)[1])

        def transform(population: Population) -> Population:
            if not population.has_bounds:
                return population
            fx, fw = (quantile.update(*_joined(base, population, get))
                      for quantile, get in zip(quantiles, getters, strict=True))
            return self._floored(population, fx, fw)

        return transform


#: Up to this many distinct rows the local scale is computed from exact pairwise
#: distances (and updated exactly in attack sessions); beyond, by scikit-learn's
#: neighbour search.
EXACT_ROWS = 4096
#: Rows per block of the exact computation.
BLOCK = 512


def local_scale(points: np.ndarray, k: int) -> np.ndarray:
    """Distance from each row to its k-th nearest *distinct* other row (inf if none).

    Distinct rows, so that identical declarations (survey answers, or Sybils) neither
    shrink each other's scale to zero nor count as neighbours. The distance is the
    min(k, u − 1)-th smallest of the row's distances to the u distinct rows (itself
    at 0 first), from :func:`~scipy.spatial.distance.cdist` up to :data:`EXACT_ROWS`
    distinct rows, by scikit-learn's neighbour search beyond.
    """
    uniq, inverse = np.unique(points, axis=0, return_inverse=True)
    inverse = inverse.ravel()
    u = uniq.shape[0]
    if u < 2:
        return np.full(points.shape[0], np.inf)
    kk = min(k, u - 1)
    if u > EXACT_ROWS:
        dist, _ = NearestNeighbors(n_neighbors=kk + 1).fit(uniq).kneighbors(uniq)
        return dist[:, kk][inverse]
    scale = np.concatenate([np.partition(cdist(uniq[s:s + BLOCK], uniq), kk, axis=1)[:, kk]
                            for s in range(0, u, BLOCK)])
    return scale[inverse]


class _LocalScale:
    """:func:`local_scale` for tables near a base's: the base's distinct rows keep their
    sorted distances, and each scale is updated exactly from the distinct rows that
    left and joined (:class:`~pluralguard.core.orderstats.DistanceRows`)."""

    def __init__(self, points: np.ndarray, k: int) -> None:
        self.k = k
        self.counts = RowCounts(points)
        u = self.counts.distinct.shape[0]
        self.rank = min(k, u - 1)
        self.table = DistanceRows(self.counts.distinct) if 2 <= u <= EXACT_ROWS else None

    def __call__(self, points: np.ndarray) -> np.ndarray:
        diff = self.counts.diff(points, MAX_CHANGED) if self.table is not None else None
        if diff is None:
            return local_scale(points, self.k)
        gone, new, which = diff
        u0 = self.counts.distinct.shape[0]
        u = u0 - gone.size + new.shape[0]
        if u < 2 or u > EXACT_ROWS or min(self.k, u - 1) != self.rank:
            return local_scale(points, self.k)
        kept, joined = self.table.order_statistics(np.array([self.rank]), gone, new)
        scale = np.empty(u0 + new.shape[0])
        stay = np.ones(u0, dtype=bool)
        stay[gone] = False
        scale[np.flatnonzero(stay)] = kept[:, 0]
        scale[u0:] = joined[:, 0]
        return scale[which]


@dataclass(frozen=True)
class LocalCap:
    """Bound rule: the inner rule's bounds, each capped at ``factor`` × the agent's
    local scale (:func:`local_scale`), separately for X and W."""

    inner: BoundPolicy | BoundRule
    k: int
    factor: float

    def resolve(self, population: Population, random_state: int = 0
                ) -> tuple[np.ndarray, np.ndarray]:
        gx, gw = resolve_bounds(population, self.inner, random_state=random_state)
        cx, cw = (self.factor * local_scale(p, self.k) for p in parts(population))
        return np.minimum(gx, cx), np.minimum(gw, cw)

    def session(self, base: Population, random_state: int = 0) -> BoundSession:
        """:meth:`resolve` for populations near ``base``: the inner rule's session, and
        local scales updated from the declarations that changed."""
        inner = bound_session(self.inner, base, random_state)
        scales = tuple(_LocalScale(p, self.k) for p in parts(base))

        def resolve(population: Population) -> tuple[np.ndarray, np.ndarray]:
            gx, gw = inner(population)
            cx, cw = (self.factor * scale(p)
                      for scale, p in zip(scales, parts(population), strict=True))
            return np.minimum(gx, cx), np.minimum(gw, cw)

        return resolve

    def __str__(self) -> str:
        return f"{self.inner}|cap:{self.k}x{self.factor:g}"


@dataclass(frozen=True)
class BoundCap(Defense):
    """Cap every bound in force at a multiple of the agent's local scale:
    γᵢ ← min(γᵢ, c · d_k(i)), with d_k(i) the distance from i's declaration to its k-th
    nearest distinct declaration (X and W separately).

    Idea: a threshold only needs to reach an agent's neighbourhood. Whoever can make
    thresholds large — by inflating a ``quantile:q`` threshold with far-away
    declarations (threshold shift), or by declaring huge bounds — links distant
    groups and consolidates them. A cap relative to each agent's *own* neighbourhood
    cannot be inflated by anyone: adding declarations never increases an honest
    agent's k-nearest distance. It can only be deflated, by placing declarations
    near honest agents, which then count as their neighbours. Local scaling of
    affinities follows Zelnik-Manor & Perona, *Self-tuning spectral clustering*
    (NIPS 2004); the k-nearest-neighbour distance as a density scale is the core
    distance of DBSCAN/HDBSCAN (Campello et al. 2013).

    Parameters
    ----------
    k : int
        Neighbour rank of the local scale (default 10).
    factor : float
        Cap as a multiple of the local scale (default 2).

    Assumes an honest agent's acceptable partners lie within ``factor`` times its
    k-th neighbour distance; groups that are far apart relative to their own spread
    are not merged, even when the policy's threshold would merge them (that is the
    clean cost: more, smaller groups).

    Acts on mechanisms with capability ``links`` (the agreement mechanism) under any
    bound policy (it wraps the rule in force). No-op for the others, e.g. the
    consensus, which has no threshold.
    """

    name = "bound_cap"
    summary = "cap every bound at a multiple of the agent's k-nearest distance (against " \
              "threshold inflation)"
    layer = "declarations"
    targets = ("threshold_shift", "bridge")
    assumes = "honest partners lie within factor x the k-th nearest-neighbour distance"

    k: int = 10
    factor: float = 2.0

    PARAMS: ClassVar[dict[str, Constraint]] = {
        "k": Integer(1, sample=10), "factor": Real(0, closed="neither", sample=2.0)}

    def apply(self, mechanism: Mechanism) -> Mechanism:
        return with_bound_rule(mechanism,
                               lambda rule: LocalCap(rule, int(self.k), float(self.factor)))

    def certify(self, mechanism: Mechanism, reach: Reach) -> Reach:
        """Unchanged: the cap is the outermost rule, min(γ, c·d_k) ≤ γ, so every bound
        proved for the mechanism still holds (whatever d_k the attack makes)."""
        return reach


@dataclass(frozen=True)
class ProtocolBounds(Defense):
    """Ignore the declared bounds: everyone gets the ``quantile:q`` threshold.

    Idea: the agents' own bounds are the cheapest attack surface — a stubborn agent
    declares γ̂ ≈ 0, a coalition shapes who can join whom. Taking the threshold out of
    the agents' hands, as the paper's experiments do (Hernández-Sánchez et al. 2026,
    Q1–Q3 thresholds), removes that surface; the quantile of the pairwise declared
    distances is then the attack surface instead (threshold shift).

    Parameters
    ----------
    q : float
        Quantile level of the pairwise declared distances (default 0.5, the median).

    Assumes one threshold suits every honest agent (their true bounds are ignored:
    the clean cost is the change from their own bounds to the common one).

    Acts on the agreement mechanism under the ``declared`` policy (wrappers other
    defenses put around it are kept). Under ``quantile``/``fixed`` policies the
    declared bounds are already ignored, and the consensus has no threshold: no-op.
    """

    name = "protocol_bounds"
    summary = "ignore declared bounds, use the quantile:q threshold (against stubborn " \
              "bounds)"
    layer = "declarations"
    targets = ("stubborn", "exclude", "infiltrate")
    assumes = "one common threshold suits every honest agent"

    q: float = 0.5

    PARAMS: ClassVar[dict[str, Constraint]] = {"q": Real(0, 1, sample=0.5)}

    def apply(self, mechanism: Mechanism) -> Mechanism:
        if not uses_declared_bounds(mechanism):
            return mechanism
        policy = BoundPolicy("quantile", q=float(self.q))
        return with_bound_rule(mechanism, lambda rule: rebase(rule, lambda _: policy))

    def certify(self, mechanism: Mechanism, reach: Reach) -> Reach | None:
        """Everyone's bound becomes the q-quantile threshold: at most its order-statistic
        bound (:meth:`~pluralguard.eval.reach.Reach.quantile`). Only a bare policy is
        replaced with a certificate (a wrapper kept around it would act on the new
        threshold, which the reach has not counted)."""
        if not self.acts_on(mechanism):
            return reach
        gamma = reach.quantile(float(self.q)) if plain_policy(mechanism) else None
        if gamma is None:
            return None
        n = reach.truth.n
        return reach.replace(bounds=(np.full(n, gamma[0]), np.full(n, gamma[1])))
