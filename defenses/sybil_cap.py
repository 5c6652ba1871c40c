"""Sybil weight caps: near-identical identities share one weight."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from scipy.sparse.csgraph import connected_components
from sklearn.neighbors import radius_neighbors_graph

from pluralguard.core.mechanism import Mechanism
from pluralguard.core.model import Population
from pluralguard.core.params import Constraint, Real

from .base import Defense, Reach, check_weights_param, normalised_points


def tight_clusters(population: Population, radius: float) -> np.ndarray:
    """Cluster label of each agent: declarations within normalised distance ``radius``
    of each other (single linkage) *and* with identical declared bounds."""
    points = normalised_points(population)
    if population.has_bounds:
        bounds = np.stack([population.gamma_x, population.gamma_w], axis=1)
        _, key = np.unique(bounds, axis=0, return_inverse=True)
    else:
        key = np.zeros(population.n, dtype=np.int64)
    key = key.ravel()
    if radius == 0:
        _, labels = np.unique(np.column_stack([points, key]), axis=0, return_inverse=True)
        return labels.ravel()
    graph = radius_neighbors_graph(points, radius, mode="connectivity").tocoo()
    same = key[graph.row] == key[graph.col]
    graph.data = graph.data * same
    graph.eliminate_zeros()
    return connected_components(graph, directed=False)[1]


@dataclass(frozen=True)
class SybilCap(Defense):
    """Near-identical declarations with identical bounds share one capped weight.

    Idea: identities are free, so s Sybils declaring one point t add weight s at t —
    in the agreement objective Σᵢ wᵢ uᵢ(x) and in the weighted ℓp consensus alike
    (Douceur, *The Sybil Attack*, IPTPS 2002). Honest agents rarely declare *exactly*
    the same value system *and* the same bounds as many others, Sybils must (or
    nearly, to stay cheap). Each tight cluster — declarations within normalised
    distance ``radius`` of each other by single linkage, with identical bounds — has
    its total weight capped at ``cap`` × the median agent weight; its members' weights
    are scaled down proportionally. With the defaults, exact duplicates share one
    median weight. This is the similarity-based reweighting of FoolsGold (Fung, Yoon &
    Beschastnikh, *The limitations of federated learning in Sybil settings*, RAID 2020),
    applied to declarations.

    Parameters
    ----------
    radius : float
        Normalised distance δ under which declarations count as the same identity
        (default 0: exact duplicates). Larger radii also catch jittered Sybils, and
        may merge honest agents of a dense cluster.
    cap : float
        Largest total weight of one tight cluster, in median agent weights (default 1).

    Assumes honest agents do not share identical declarations and bounds. Clean cost
    0 on populations without duplicates; on survey data where many respondents give
    the same answer (merged into weighted agents), those agents lose weight.

    Acts on every mechanism (weights; not applicable when the mechanism is given
    explicit ``weights``). Note: the agreement solver merges identical
    declarations into one weighted agent itself, so Sybils would otherwise count s
    times there too.
    """

    name = "sybil_cap"
    summary = "near-identical declarations with identical bounds share one weight " \
              "(against Sybils)"
    layer = "declarations"
    targets = ("sybil",)
    assumes = "honest agents do not share identical declarations and bounds"

    radius: float = 0.0
    cap: float = 1.0

    PARAMS: ClassVar[dict[str, Constraint]] = {
        "radius": Real(0, sample=0.01), "cap": Real(0, closed="neither", sample=1.0)}

    def apply(self, mechanism: Mechanism) -> Mechanism:
        check_weights_param(self, mechanism)
        return mechanism.with_transform(self)

    def certify(self, mechanism: Mechanism, reach: Reach) -> Reach:
        """The cap's own certificate: a cluster of identical declarations carries at most
        L = cap × the median weight, and no weight grows.

        With ``radius`` 0 a cluster is one point. An aggregation sees each point with
        the total weight declared there, so an attacker or Sybil that copies an honest
        declaration leaves that point with min(w_H + w_I, L) ≥ min(w_H, L): as if the
        honest agents kept their capped weight and the intruders added between 0 and
        their own weight at that point. So honest weights stay at least
        w⁻_j · min(1, L⁻ / w⁺(H_j)), H_j the honest agents declaring exactly v_j (a
        coarser cluster than the cap's, which also needs equal bounds: a smaller
        factor), L ≥ L⁻ = cap × min over Sybil counts s' ≤ s of the median of the lower
        weights (the median is monotone in every weight; Sybils' weights are pre-cap
        medians); intruders' weights lie in [0, w⁺]. The cap does not bound what s
        Sybils add when they spread out (or declare different bounds): each is then
        its own cluster and keeps its weight, so upper weights stay. With ``radius`` > 0
        single linkage can chain every agent into one cluster through Sybils: every
        lower weight is scaled by min(1, L⁻ / the total upper weight).
        """
        truth, honest = reach.truth, reach.honest
        low, high = reach.weight_low, reach.weight_high
        s = reach.sybils
        s_low, s_high = reach.sybil_weight
        limit = self.cap * min(float(np.median(np.concatenate([low, np.full(k, s_low)])))
                               for k in range(s + 1))
        if self.radius > 0:
            everyone = min(1.0, limit / float(high.sum() + s * s_high))
            return reach.replace(weight_low=low * everyone,
                                 sybil_weight=(s_low * everyone, s_high))
        _, same = np.unique(normalised_points(truth)[honest], axis=0, return_inverse=True)
        same = same.ravel()
        cluster = np.bincount(same, weights=high[honest])[same]
        new_low = np.zeros_like(low)
        new_low[honest] = low[honest] * np.minimum(1.0, limit / cluster)
        return reach.replace(weight_low=new_low, sybil_weight=(0.0, s_high))

    def transform(self, population: Population) -> Population:
        labels = tight_clusters(population, self.radius)
        w = population.weight
        total = np.bincount(labels, weights=w)
        limit = self.cap * float(np.median(w))
        scale = np.minimum(1.0, limit / total)[labels]
        if (scale >= 1.0).all():
            return population
        return population.replace(weights=w * scale)
