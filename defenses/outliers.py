"""Outlier filtering of declarations (Local Outlier Factor or Isolation Forest).

The Local Outlier Factor is computed here from exact distances
(:func:`local_outlier_factor`, scikit-learn's formulas, neighbours ordered by distance
then index), so that an attack session can keep every distinct declaration's nearest
neighbours and update the scores exactly from the declarations that changed
(:meth:`OutlierFilter.session`): a changed row moves only its neighbourhood's
scores, and the threshold is a percentile of all of them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from sklearn.ensemble import IsolationForest
from sklearn.neighbors import LocalOutlierFactor

from pluralguard.core.bounds import (
    BoundPolicy,
    BoundRule,
    BoundSession,
    bound_session,
    resolve_bounds,
)
from pluralguard.core.incremental import MAX_CHANGED
from pluralguard.core.mechanism import Mechanism
from pluralguard.core.model import Population
from pluralguard.core.orderstats import NearestRows, RowCounts, nearest_rows
from pluralguard.core.params import Constraint, Integer, Options, Real

from .base import (
    OPTIONAL_FRACTION,
    Defense,
    Reach,
    bound_rule,
    check_weights_param,
    normalised_points,
    plain_policy,
    uses_declared_bounds,
    wraps_bounds,
)

#: Weight multiplier of a dropped agent (weights must stay positive).
DROP_WEIGHT = 1e-6
#: Up to this many distinct declarations the Local Outlier Factor comes from exact
#: distances (:func:`local_outlier_factor`); beyond, from scikit-learn's.
EXACT_ROWS = 4096


def local_outlier_factor(idx: np.ndarray, dist: np.ndarray) -> np.ndarray:
    """Negative Local Outlier Factors (Breunig et al., SIGMOD 2000) from each row's k
    nearest other rows (indices ``idx``, distances ``dist``, nearest first).

    As scikit-learn's :class:`~sklearn.neighbors.LocalOutlierFactor`: reach-dist(p, o) =
    max(d(p, o), k-distance(o)), lrd(p) = 1 / (mean_o reach-dist(p, o) + 1e-10), and the
    score −mean_o lrd(o) / lrd(p) (lower: more anomalous).
    """
    reach = np.maximum(dist, dist[idx, -1])
    lrd = 1.0 / (np.mean(reach, axis=1) + 1e-10)
    return -np.mean(lrd[idx] / lrd[:, np.newaxis], axis=1)

METHODS = ("lof", "iforest")
ACTIONS = ("drop", "downweight")


@dataclass(frozen=True)
class OutlierFilter(Defense):
    """Find anomalous declarations and drop or down-weight their agents.

    Idea: many manipulations need declarations unlike anyone else's — an overshoot
    exaggerates past the group, a bridge fills the empty space between groups, Sybils
    stuff a point nobody holds. A density-based detector on the declared value
    systems (flattened X and W, scaled so that Euclidean distance is δ; identical
    declarations counted once) flags them: Local Outlier Factor (Breunig et al.,
    *LOF: identifying density-based local outliers*, SIGMOD 2000) or Isolation Forest
    (Liu, Ting & Zhou, ICDM 2008), both from scikit-learn. This is the
    anomaly-detection family of Byzantine-robust aggregation; in-distribution attacks
    pass it by design (Baruch et al., *A little is enough*, NeurIPS 2019 —
    ``camouflage``).

    Transforms keep every agent, so *dropping* means: an outlier's weight is
    multiplied by 1e-6 and its bounds are set to 0 — in the agreement mechanism it can
    link with no one else and ends alone, in the consensus it no longer pulls. Under
    a ``quantile``/``fixed`` policy the bounds in force are zeroed too, and the
    quantile threshold is computed from the inliers only. *Down-weighting* multiplies
    an outlier's weight by ``factor`` and leaves its bounds.

    Parameters
    ----------
    method : {"lof", "iforest"}
        Detector (default Local Outlier Factor).
    action : {"drop", "downweight"}
    assumed_fraction : float or None
        Tolerated share of attackers, the detector's contamination: the most
        anomalous ≈ that share of distinct declarations are flagged (default 0.05).
        None uses the detector's own threshold (scikit-learn's ``"auto"``).
    n_neighbors : int
        LOF neighbourhood size (default 20, capped at half the distinct declarations:
        a neighbourhood of everyone has no local density to compare).
    factor : float
        Weight multiplier for ``downweight`` (default 0.1).
    seed : int
        Isolation Forest seed (runs stay deterministic).

    Assumes attackers are at most ``assumed_fraction`` of the agents and their
    declarations are anomalous. Clean cost: honest outliers (pve_like has 18) are
    cut off from their groups, and — with ``assumed_fraction`` set — that share is
    always flagged, attack or not.

    Acts on every mechanism (weights; bounds where they are in force). Not applicable
    when the mechanism is given explicit ``weights``.
    """

    name = "outlier_filter"
    summary = "drop or down-weight anomalous declarations (LOF / Isolation Forest)"
    layer = "declarations"
    targets = ("overshoot", "sybil", "bridge")
    assumes = "attackers are at most assumed_fraction of the agents and declare anomalies"

    method: str = "lof"
    action: str = "drop"
    assumed_fraction: float | None = 0.05
    n_neighbors: int = 20
    factor: float = 0.1
    seed: int = 0

    PARAMS: ClassVar[dict[str, Constraint]] = {
        "method": Options(METHODS), "action": Options(ACTIONS),
        "assumed_fraction": OPTIONAL_FRACTION, "n_neighbors": Integer(1, sample=20),
        "factor": Real(0, 1, closed="right", sample=0.1), "seed": Integer(0)}

    @property
    def randomized(self) -> bool:
        """Only the Isolation Forest draws randomness (LOF is deterministic)."""
        return self.method != "lof"

    def outliers(self, population: Population) -> np.ndarray:
        """Boolean mask of the agents whose declarations are flagged."""
        uniq, inverse = np.unique(normalised_points(population), axis=0, return_inverse=True)
        if uniq.shape[0] < 3:
            return np.zeros(population.n, dtype=bool)
        contamination: Any = self.assumed_fraction if self.assumed_fraction else "auto"
        if self.method == "lof" and uniq.shape[0] <= EXACT_ROWS:
            return self._flag(local_outlier_factor(
                *nearest_rows(uniq, self._neighbours(uniq.shape[0]))))[inverse.ravel()]
        if self.method == "lof":
            detector = LocalOutlierFactor(n_neighbors=self._neighbours(uniq.shape[0]),
                                          contamination=contamination)
        else:
            detector = IsolationForest(contamination=contamination, random_state=self.seed)
        flagged = detector.fit_predict(uniq) < 0
        return flagged[inverse.ravel()]

    def _neighbours(self, distinct: int) -> int:
        """LOF's neighbourhood size for this many distinct declarations."""
        return min(self.n_neighbors, max(1, (distinct - 1) // 2))

    def _flag(self, score: np.ndarray) -> np.ndarray:
        """The rows flagged by their LOF scores: below the ``assumed_fraction``
        percentile, or below −1.5 without one (scikit-learn's ``offset_``)."""
        offset = (np.percentile(score, 100.0 * self.assumed_fraction)
                  if self.assumed_fraction else -1.5)
        return score < offset

    def detector_session(self, base: Population) -> Callable[[Population], np.ndarray]:
        """:meth:`outliers` for populations near ``base``: with LOF, every distinct
        declaration's nearest neighbours kept and updated from the declarations that
        changed (:class:`~pluralguard.core.orderstats.NearestRows`), the scores
        recomputed from them."""
        if self.method != "lof":
            return self.outliers
        counts = RowCounts(normalised_points(base))
        u0 = counts.distinct.shape[0]
        if not 3 <= u0 <= EXACT_ROWS:
            return self.outliers
        k = self._neighbours(u0)
        table = NearestRows(counts.distinct, k, MAX_CHANGED)

        def outliers(population: Population) -> np.ndarray:
            diff = counts.diff(normalised_points(population), MAX_CHANGED)
            if diff is None:
                return self.outliers(population)
            gone, new, which = diff
            u = u0 - gone.size + new.shape[0]
            if not 3 <= u <= EXACT_ROWS or self._neighbours(u) != k:
                return self.outliers(population)
            near = table.update(gone, new)
            if near is None:
                return self.outliers(population)
            position, idx, dist = near
            return self._flag(local_outlier_factor(idx, dist))[position[which]]

        return outliers

    def session(self, base: Population) -> Callable[[Population], Population]:
        """:meth:`transform` for populations near ``base`` (:meth:`detector_session`)."""
        outliers = self.detector_session(base)
        return lambda population: self._silence(population, outliers(population))

    def apply(self, mechanism: Mechanism) -> Mechanism:
        check_weights_param(self, mechanism)
        defended = mechanism.with_transform(self)
        if (self.action == "drop" and wraps_bounds(mechanism)
                and not uses_declared_bounds(mechanism)):
            defended = defended.with_params(bounds=Silenced(bound_rule(mechanism), self))
        return defended

    def certify(self, mechanism: Mechanism, reach: Reach) -> Reach | None:
        """Whoever the detector flags (honest agents included: an attack can make them
        look anomalous), weights only fall: a flagged identity keeps w·1e-6 (drop) or
        w·factor (downweight) of its weight, so lower weight bounds scale by that and
        upper ones stay. Bounds only fall too — a dropped agent gets 0 — except under
        a ``quantile`` policy, where the inliers get the quantile over the inliers
        only, a sub-multiset of the pairwise distances of unknown size: its quantile
        is at most its maximum, at most the bound of the largest distance
        (:meth:`~pluralguard.eval.reach.Reach.quantile` at q = 1). ``fixed`` bounds
        stay; behind another bound-rule wrapper there is no certificate. Holds for
        every draw of a seeded detector."""
        keep = DROP_WEIGHT if self.action == "drop" else float(self.factor)
        low, high = reach.sybil_weight
        reach = reach.replace(weight_low=reach.weight_low * keep,
                              sybil_weight=(low * keep, high))
        silenced = (self.action == "drop" and wraps_bounds(mechanism)
                    and not uses_declared_bounds(mechanism))
        if not silenced or reach.bounds is None:
            return reach
        policy = plain_policy(mechanism)
        if policy is None or policy.kind not in ("quantile", "fixed"):
            return None
        if policy.kind == "fixed":
            return reach
        gamma = reach.quantile(1.0)
        if gamma is None:
            return None
        n = reach.truth.n
        return reach.replace(bounds=(np.full(n, gamma[0]), np.full(n, gamma[1])))

    def transform(self, population: Population) -> Population:
        return self._silence(population, self.outliers(population))

    def _silence(self, population: Population, out: np.ndarray) -> Population:
        """The population with the flagged agents ``out`` dropped or down-weighted."""
        if not out.any():
            return population
        drop = self.action == "drop"
        weights = np.where(out, population.weight * (DROP_WEIGHT if drop else self.factor),
                           population.weight)
        if drop and population.has_bounds:
            return population.replace(weights=weights,
                                      gamma_x=np.where(out, 0.0, population.gamma_x),
                                      gamma_w=np.where(out, 0.0, population.gamma_w))
        return population.replace(weights=weights)


@dataclass(frozen=True)
class Silenced:
    """Bound rule: outliers get bound 0; everyone else gets the inner rule's bounds
    computed on the inliers only (so outliers do not move a quantile either)."""

    inner: BoundPolicy | BoundRule
    detector: OutlierFilter

    def resolve(self, population: Population, random_state: int = 0
                ) -> tuple[np.ndarray, np.ndarray]:
        return self._bounds(population, self.detector.outliers(population),
                            lambda p: resolve_bounds(p, self.inner, random_state=random_state))

    @staticmethod
    def _bounds(population: Population, out: np.ndarray,
                inner: Callable[[Population], tuple[np.ndarray, np.ndarray]]
                ) -> tuple[np.ndarray, np.ndarray]:
        if not out.any():
            return inner(population)
        keep = np.flatnonzero(~out)
        gx, gw = np.zeros(population.n), np.zeros(population.n)
        gx[keep], gw[keep] = inner(population.subset(keep))
        return gx, gw

    def session(self, base: Population, random_state: int = 0) -> BoundSession:
        """:meth:`resolve` for populations near ``base``: the detector's session, and the
        inner rule's session on the inliers (:func:`~pluralguard.core.bounds.bound_session`
        matches agents by name when the inliers change)."""
        outliers = self.detector.detector_session(base)
        out = outliers(base)
        inner = bound_session(self.inner, base.subset(np.flatnonzero(~out)) if out.any()
                              else base, random_state)
        return lambda population: self._bounds(population, outliers(population), inner)

    def __str__(self) -> str:
        return f"{self.inner}|silence:{self.detector.method}"
