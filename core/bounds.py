"""Bound policies: who sets the homophily threshold (DESIGN §2).

* ``declared`` — each agent's own declared bounds (γ̂ᵢˣ, γ̂ᵢʷ);
* ``quantile:q`` — everyone gets γˣ = the q-quantile of all pairwise declared
  distances ‖X̂_i − X̂_j‖_F (i < j), and γʷ likewise for W. The paper's experiments use
  Q1, Q2, Q3 and the maximum (q = 0.25, 0.5, 0.75, 1);
* ``fixed:gX,gW`` — everyone gets the given bounds.

The quantile setter is an attack surface: declarations move the quantiles.

Quantiles follow :func:`numpy.quantile`'s default (linear interpolation between
order statistics) over the multiset of all n(n−1)/2 pairwise distances. Identical
declarations are counted with their multiplicity, which makes the quantile exact
and cheap on survey data with few distinct value systems; when even the distinct
pairs are too many, the quantile is estimated from a seeded uniform sample of pairs.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from scipy.spatial.distance import pdist

from .errors import InputError
from .model import Population
from .numbers import DECIMAL

#: Above this many distinct pairs the quantile is estimated from a sample of pairs.
MAX_EXACT_PAIRS = 4_000_000
#: Size of that sample.
SAMPLE_PAIRS = 2_000_000

#: A number in a policy string: plain decimal notation (ASCII digits only), or inf.
_FLOAT = rf"{DECIMAL.pattern}|[-+]?inf"


class BoundRule(Protocol):
    """A custom threshold setter: anything with ``resolve`` (and a readable ``str``)."""

    def resolve(self, population: Population, random_state: int = 0
                ) -> tuple[np.ndarray, np.ndarray]: ...


@dataclass(frozen=True)
class BoundPolicy:
    """A parsed bound policy; build it with :meth:`parse`.

    Attributes
    ----------
    kind : {"declared", "quantile", "fixed"}
    q : float or None
        Quantile level for ``quantile``.
    gamma_x, gamma_w : float or None
        Bounds for ``fixed``.
    """

    kind: str
    q: float | None = None
    gamma_x: float | None = None
    gamma_w: float | None = None

    @classmethod
    def parse(cls, spec: str | BoundPolicy | BoundRule) -> BoundPolicy | BoundRule:
        """Parse ``declared``, ``quantile:q`` or ``fixed:gX,gW``.

        Any object with a ``resolve(population, random_state)`` method (a custom
        bound rule, e.g. a robust threshold) is returned unchanged. Numbers are in
        plain decimal notation (:mod:`~pluralguard.core.numbers`); ``inf`` is allowed
        as a fixed bound (no limit).
        """
        if isinstance(spec, BoundPolicy) or (not isinstance(spec, str)
                                             and hasattr(spec, "resolve")):
            return spec
        fix = "use 'declared', 'quantile:Q' with Q in [0, 1], or 'fixed:GX,GW' with GX, GW >= 0"
        if not isinstance(spec, str):
            raise InputError("bounds", f"expected a string, got {type(spec).__name__}", fix)
        text = spec.strip().lower()
        if text == "declared":
            return cls("declared")
        m = re.fullmatch(rf"quantile:({_FLOAT})", text)
        if m:
            q = float(m.group(1))
            if not 0.0 <= q <= 1.0:
                raise InputError("bounds", f"quantile level {q} is outside [0, 1]", fix)
            return cls("quantile", q=q)
        m = re.fullmatch(rf"fixed:({_FLOAT}),({_FLOAT})", text)
        if m:
            gx, gw = float(m.group(1)), float(m.group(2))
            if gx < 0 or gw < 0:
                raise InputError("bounds", f"negative bound in {spec!r}", fix)
            return cls("fixed", gamma_x=gx, gamma_w=gw)
        raise InputError("bounds", f"cannot parse {spec!r}", fix)

    def resolve(self, population: Population, random_state: int = 0
                ) -> tuple[np.ndarray, np.ndarray]:
        """Per-agent bounds (γˣ, γʷ) for these declarations."""
        n = population.n
        if self.kind == "declared":
            if not population.has_bounds:
                raise InputError("bounds", f"population {population.name!r} declares no "
                                 "bounds", "pass bounds='quantile:0.5' or 'fixed:GX,GW', or "
                                 "give the population gamma_x and gamma_w")
            return np.array(population.gamma_x), np.array(population.gamma_w)
        if self.kind == "fixed":
            return np.full(n, self.gamma_x), np.full(n, self.gamma_w)
        gx = pairwise_distance_quantile(population.X.reshape(n, -1), self.q,
                                        random_state=random_state)
        gw = pairwise_distance_quantile(population.W, self.q, random_state=random_state)
        return np.full(n, gx), np.full(n, gw)

    def __str__(self) -> str:
        if self.kind == "quantile":
            return f"quantile:{self.q:g}"
        if self.kind == "fixed":
            return f"fixed:{self.gamma_x:g},{self.gamma_w:g}"
        return "declared"


@dataclass(frozen=True, eq=False)
class GivenBounds:
    """A bound rule that returns fixed per-agent bounds (e.g. a result's bounds in force)."""

    gamma_x: np.ndarray
    gamma_w: np.ndarray

    def resolve(self, population: Population, random_state: int = 0
                ) -> tuple[np.ndarray, np.ndarray]:
        return np.array(self.gamma_x, dtype=float), np.array(self.gamma_w, dtype=float)

    def __str__(self) -> str:
        return "given"


def pairwise_distance_quantile(points: np.ndarray, q: float, *,
                               max_exact_pairs: int = MAX_EXACT_PAIRS,
                               sample_pairs: int = SAMPLE_PAIRS,
                               random_state: int = 0) -> float:
    """q-quantile of the Euclidean distances over all pairs i < j of rows of ``points``.

    Linear interpolation between order statistics, as :func:`numpy.quantile`'s default
    (equal to ``np.quantile(pdist(points), q)`` up to rounding; always computed by
    :func:`interpolate_rank`, which incremental re-solves reproduce bit for bit). With
    repeated rows it is computed on the distinct rows weighted by multiplicity. When
    the distinct rows have more than ``max_exact_pairs`` pairs, the quantile of
    ``sample_pairs`` uniformly drawn pairs (seeded) is returned instead.
    """
    n = points.shape[0]
    if n < 2:
        return 0.0
    uniq, counts = np.unique(points, axis=0, return_counts=True)
    u = uniq.shape[0]
    if u * (u - 1) // 2 > max_exact_pairs:
        rng = np.random.default_rng(random_state)
        i = rng.integers(0, n, sample_pairs)
        j = rng.integers(0, n - 1, sample_pairs)
        j = j + (j >= i)  # uniform over j != i
        d = np.sqrt(((points[i] - points[j]) ** 2).sum(axis=1))
        return float(np.quantile(d, q))
    total = n * (n - 1) // 2
    if u == n:
        distances = pdist(points)

        def order_statistics(ranks: list[int]) -> list[float]:
            part = np.partition(distances, ranks)
            return [float(part[r]) for r in ranks]

        return interpolate_rank(order_statistics, total, q)
    values, cum = distance_multiset(uniq, counts)

    def order_statistics(ranks: list[int]) -> list[float]:
        return [float(values[np.searchsorted(cum, r + 1)]) for r in ranks]

    return interpolate_rank(order_statistics, total, q)


def distance_multiset(uniq: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The pairwise distances of points ``uniq`` repeated ``counts`` times, as sorted
    distinct values and the number of pairs at or below each (cumulative counts)."""
    iu, ju = np.triu_indices(uniq.shape[0], k=1)  # pdist's order
    values = np.concatenate([[0.0], pdist(uniq)])
    weights = np.concatenate([[float((counts * (counts - 1) // 2).sum())],
                              counts[iu].astype(float) * counts[ju]])
    order = np.argsort(values, kind="stable")
    return values[order], np.cumsum(weights[order])


def interpolate_rank(order_statistics: Callable[[list[int]], list[float]], total: int,
                     q: float) -> float:
    """The q-quantile of ``total`` sorted values by linear interpolation,
    a + f·(b − a) between order statistics a = v_⌊r⌋, b = v_⌊r⌋+1 at r = q(total − 1);
    ``order_statistics(ranks)`` returns the values at 0-based ranks."""
    rank = q * (total - 1)
    lo = int(np.floor(rank))
    frac = rank - lo
    if frac == 0.0:
        return order_statistics([lo])[0]
    a, b = order_statistics([lo, min(lo + 1, total - 1)])
    return a + frac * (b - a)


def resolve_bounds(population: Population, bounds: str | BoundPolicy | BoundRule = "declared",
                   *, random_state: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Per-agent bounds (γˣ, γʷ) under a bound policy.

    Parameters
    ----------
    population : Population
        The declarations.
    bounds : str, BoundPolicy or BoundRule
        ``declared``, ``quantile:q``, ``fixed:gX,gW``, or a custom rule object.
    random_state : int
        Seed for the sampled quantile on very large populations.

    Returns
    -------
    gamma_x, gamma_w : ndarray, shape (n,)
    """
    gx, gw = BoundPolicy.parse(bounds).resolve(population, random_state)
    gx, gw = np.asarray(gx, dtype=float), np.asarray(gw, dtype=float)
    n = population.n
    if gx.shape != (n,) or gw.shape != (n,) or (gx < 0).any() or (gw < 0).any():
        raise InputError("bounds", f"rule {bounds!s} returned invalid bounds",
                         f"a bound rule must return two arrays of {n} non-negative bounds")
    return gx, gw
