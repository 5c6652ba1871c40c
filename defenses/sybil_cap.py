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

from .base import Defense, check_weights_param, normalised_points


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

    def transform(self, population: Population) -> Population:
        labels = tight_clusters(population, self.radius)
        w = population.weight
        total = np.bincount(labels, weights=w)
        limit = self.cap * float(np.median(w))
        scale = np.minimum(1.0, limit / total)[labels]
        if (scale >= 1.0).all():
            return population
        return population.replace(weights=w * scale)
