"""A group-decision mechanism of our own: k-means clusters, each agreeing on its median.

Registered with pluralguard as the mechanism kind ``median_clusters`` (loaded by the
suite's ``plugins = ["median_clusters.py"]``, or ``pluralguard ... --plugin
median_clusters.py``). Residents are clustered by k-means on their declared value
systems (judgements X and value weights W, flattened; weighted by their weights); each
cluster's agreement is the coordinate-wise weighted median of its members'
declarations, W renormalised onto the simplex. The median is why overshooting does not
pay here: a member that exaggerates moves the median no further than one that does not.
"""

from __future__ import annotations

import numpy as np
from sklearn.cluster import KMeans

from pluralguard.core import Population, make_outcome, register_mechanism

#: How each cluster aggregates its members' declarations.
AGGREGATE = "median"


def weighted_median(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Per column, the smallest value whose cumulative weight reaches half the total."""
    order = np.argsort(values, axis=0, kind="stable")
    cumulative = np.cumsum(weights[order], axis=0)
    half = cumulative[-1] / 2.0
    index = np.argmax(cumulative >= half, axis=0)
    return np.take_along_axis(values, order, axis=0)[index, np.arange(values.shape[1])]


def aggregate(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    if AGGREGATE == "median":
        return weighted_median(values, weights)
    return weights @ values / weights.sum()


def median_clusters(population: Population, k: int = 4, seed: int = 0):
    """Cluster the declarations into ``k`` groups; each agrees on its weighted median."""
    n, km = population.n, population.k * population.m
    points = np.concatenate([population.X.reshape(n, km), population.W], axis=1)
    labels = KMeans(n_clusters=min(k, n), n_init=4, random_state=seed).fit_predict(
        points, sample_weight=population.weight)
    labels = np.unique(labels, return_inverse=True)[1].ravel()  # ids 0 … G − 1
    agreements = np.stack([aggregate(points[labels == g], population.weight[labels == g])
                           for g in range(labels.max() + 1)])
    X = np.clip(agreements[:, :km], -1.0, 1.0).reshape(-1, population.k, population.m)
    W = np.maximum(agreements[:, km:], 0.0)
    return make_outcome(population, labels, X, W / W.sum(axis=1, keepdims=True))


register_mechanism("median_clusters", median_clusters, capabilities=["groups"],
                   description="k-means clusters agreeing on their weighted medians")
