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
from typing import Any, Protocol

import numpy as np
from scipy.spatial.distance import cdist, pdist

from .errors import InputError
from .memo import BoundedMemo, content_key
from .model import Population
from .numbers import DECIMAL
from .orderstats import changed_rows

#: Above this many distinct pairs the quantile is estimated from a sample of pairs.
MAX_EXACT_PAIRS = 4_000_000
#: Size of that sample.
SAMPLE_PAIRS = 2_000_000
#: Most rows leaving plus joining for which a quantile is updated rather than recomputed.
UPDATE_LIMIT = 64

#: A number in a policy string: plain decimal notation (ASCII digits only), or inf.
_FLOAT = rf"{DECIMAL.pattern}|[-+]?inf"


class BoundRule(Protocol):
    """A custom threshold setter: anything with ``resolve`` (and a readable ``str``).

    Optional members, each read only where present and each declared by a protocol
    below: ``session`` (:class:`SessionBoundRule`), ``inner`` (:class:`WrappingBoundRule`)
    and ``kind`` (:class:`KindedBoundRule`).
    """

    def resolve(self, population: Population, random_state: int = 0
                ) -> tuple[np.ndarray, np.ndarray]: ...


#: ``resolve(population) -> (gamma_x, gamma_w)`` for populations near a base.
BoundSession = Callable[[Population], tuple[np.ndarray, np.ndarray]]


class SessionBoundRule(BoundRule, Protocol):
    """A rule with ``session(base, random_state)``: a function answering
    ``resolve(population, random_state)`` bit for bit for populations near ``base``,
    faster (:func:`bound_session`)."""

    def session(self, base: Population, random_state: int = 0) -> BoundSession: ...


class WrappingBoundRule(BoundRule, Protocol):
    """A rule that acts on another rule's bounds (as defenses add): ``inner`` is that rule,
    looked through to find the policy in force (``bound_rule_kind``) and replaced to
    rebase the chain (a frozen dataclass, so ``dataclasses.replace`` can)."""

    inner: BoundPolicy | BoundRule


class KindedBoundRule(BoundRule, Protocol):
    """A custom rule that says which policy it behaves like: ``kind`` is ``declared``,
    ``quantile`` or ``fixed`` (what attacks and defenses may assume of it)."""

    kind: str


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


#: Distance multisets already sorted, by content (a bounded memo): the suites and the
#: certificates ask for the same population's quantile once per run.
_MULTISETS: BoundedMemo[tuple[np.ndarray, np.ndarray]] = BoundedMemo(8)


def distance_multiset(uniq: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The pairwise distances of points ``uniq`` repeated ``counts`` times, as sorted
    distinct values and the number of pairs at or below each (cumulative counts)."""
    values, weights = sorted_distances(uniq, counts)
    return values, np.cumsum(weights)


def sorted_distances(uniq: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The pairwise distances of points ``uniq`` repeated ``counts`` times, sorted (0
    first, for the pairs of equal points), with the number of pairs at each; kept by
    content for the next call (read-only arrays)."""
    uniq = np.asarray(uniq, dtype=float)
    counts = np.asarray(counts, dtype=np.int64)
    return _MULTISETS.get(content_key(uniq, counts), lambda: _sorted_distances(uniq, counts))


def _sorted_distances(uniq: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    iu, ju = np.triu_indices(uniq.shape[0], k=1)  # pdist's order
    values = np.concatenate([[0.0], pdist(uniq)])
    weights = np.concatenate([[float((counts * (counts - 1) // 2).sum())],
                              counts[iu].astype(float) * counts[ju]])
    order = np.argsort(values, kind="stable")
    values, weights = values[order], weights[order]
    values.setflags(write=False)
    weights.setflags(write=False)
    return values, weights


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


class PairwiseQuantile:
    """The q-quantile of the pairwise distances of a multiset of rows
    (:func:`pairwise_distance_quantile`), updated exactly when rows leave and join.

    The base's distances are kept sorted with their multiplicities
    (:func:`distance_multiset`); an update removes the leaving rows' distances and adds
    the joining rows' (:func:`scipy.spatial.distance.cdist`, bit for bit the values
    :func:`~scipy.spatial.distance.pdist` gives), and finds the two order statistics the
    quantile interpolates by bisection over the merged counts (:func:`interpolate_rank`,
    the full computation's own formula).

    Parameters
    ----------
    rows : ndarray, shape (n, d)
    q : float
    random_state : int
        Seed of the sampled quantile (:func:`pairwise_distance_quantile`).
    """

    def __init__(self, rows: np.ndarray, q: float, random_state: int = 0) -> None:
        self.rows = np.array(rows, dtype=float)
        self.q, self.random_state = q, random_state
        uniq, counts = np.unique(self.rows, axis=0, return_counts=True)
        self.distinct = uniq.shape[0]
        self.exact = self.distinct * (self.distinct - 1) // 2 <= MAX_EXACT_PAIRS
        self.value = (pairwise_distance_quantile(self.rows, q, random_state=random_state)
                      if self.rows.shape[0] else 0.0)
        self.values, self.cum = distance_multiset(uniq, counts) if self.exact else (None, None)

    def update(self, gone: np.ndarray, new: np.ndarray) -> float:
        """The quantile over the base rows without rows ``gone`` (indices) and with rows
        ``new``."""
        n0 = self.rows.shape[0]
        n = n0 - gone.size + new.shape[0]
        keep = np.ones(n0, dtype=bool)
        keep[gone] = False
        bound = self.distinct + new.shape[0]
        if not self.exact or n < 2 or bound * (bound - 1) // 2 > MAX_EXACT_PAIRS \
                or gone.size + new.shape[0] > UPDATE_LIMIT:
            return pairwise_distance_quantile(np.concatenate([self.rows[keep], new]), self.q,
                                              random_state=self.random_state)
        if gone.size == 0 and new.shape[0] == 0:
            return self.value
        old = self.rows[gone]
        removed = np.sort(np.concatenate([cdist(old, self.rows[keep]).ravel(), _within(old)]))
        added = np.sort(np.concatenate([cdist(new, self.rows[keep]).ravel(), _within(new)]))
        values, cum = self.values, self.cum

        def order_statistics(ranks: list[int]) -> list[float]:
            # the r-th smallest (0-based) is the smallest v with count_le(v) >= r + 1;
            # among base values it lies where the base's own count is within the
            # removed / added counts of r + 1, or else it is an added value
            lo = int(np.searchsorted(cum, min(ranks) + 1 - added.size, side="left"))
            hi = int(np.searchsorted(cum, max(ranks) + 1 + removed.size, side="left")) + 1
            cand = np.sort(np.concatenate([values[lo:hi], added]))
            at = np.searchsorted(values, cand, side="right") - 1
            count = (np.where(at >= 0, cum[np.maximum(at, 0)], 0.0)
                     - np.searchsorted(removed, cand, side="right")
                     + np.searchsorted(added, cand, side="right"))
            return [float(cand[np.argmax(count >= r + 1)]) for r in ranks]

        return interpolate_rank(order_statistics, n * (n - 1) // 2, self.q)


def _within(rows: np.ndarray) -> np.ndarray:
    """Distances between pairs of ``rows`` (pdist's values)."""
    if rows.shape[0] < 2:
        return np.zeros(0)
    i, j = np.triu_indices(rows.shape[0], k=1)
    return cdist(rows, rows)[i, j]


def row_changes(base: Population, population: Population, part: Callable[[Population],
                np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """How the rows ``part(population)`` differ from ``part(base)`` as multisets: the
    base positions that leave and the indices of ``population``'s rows that join.

    Agents are matched by position when ``population`` keeps ``base``'s agents first (an
    attack query: changed rows and appended Sybils), else by name (a subset).
    """
    old, new = part(base), part(population)
    n0 = old.shape[0]
    if population.n >= n0 and population.agents[:n0] == base.agents:
        changed = changed_rows((old,), (new,))
        return changed, np.concatenate([changed, np.arange(n0, population.n)])
    where = {name: p for p, name in enumerate(base.agents)}
    at = np.array([where.get(name, -1) for name in population.agents], dtype=np.int64)
    same = at >= 0
    same[same] = (new[same] == old[at[same]]).all(axis=1)
    stay = np.zeros(n0, dtype=bool)
    stay[at[same]] = True
    return np.flatnonzero(~stay), np.flatnonzero(~same)


class _PolicySession:
    """:func:`bound_session` of a :class:`BoundPolicy`: quantiles updated per part by
    :class:`PairwiseQuantile`, the other policies read off the rows."""

    def __init__(self, policy: BoundPolicy, base: Population, random_state: int) -> None:
        self.policy, self.base, self.random_state = policy, base, random_state
        self.parts: tuple[Callable[[Population], np.ndarray], ...] = (
            lambda p: p.X.reshape(p.n, -1), lambda p: p.W)
        if policy.kind == "quantile":
            self.quantiles = tuple(PairwiseQuantile(part(base), policy.q, random_state)
                                   for part in self.parts)

    def __call__(self, population: Population) -> tuple[np.ndarray, np.ndarray]:
        if self.policy.kind != "quantile":
            return self.policy.resolve(population, self.random_state)
        n = population.n
        values = []
        for quantile, part in zip(self.quantiles, self.parts, strict=True):
            gone, joined = row_changes(self.base, population, part)
            values.append(quantile.update(gone, part(population)[joined]) if n >= 2 else 0.0)
        return np.full(n, values[0]), np.full(n, values[1])


def bound_session(bounds: str | BoundPolicy | BoundRule, base: Population,
                  random_state: int = 0) -> BoundSession:
    """``resolve(population) -> (γˣ, γʷ)``, equal to ``resolve_bounds(population, bounds,
    random_state=random_state)`` bit for bit, for the many populations an attacker
    queries near ``base``.

    A :class:`BoundPolicy` updates its quantiles from the rows that changed
    (:class:`PairwiseQuantile`); a custom rule with a ``session(base, random_state)``
    method answers through it (defense rules wrap inner rules' sessions this way);
    any other rule is resolved in full at every call.
    """
    rule = BoundPolicy.parse(bounds)
    if isinstance(rule, BoundPolicy):
        inner: BoundSession = _PolicySession(rule, base, random_state)
    elif hasattr(rule, "session"):
        inner = rule.session(base, random_state)
    else:
        def inner(population: Population) -> tuple[np.ndarray, np.ndarray]:
            return rule.resolve(population, random_state)

    def resolve(population: Population) -> tuple[np.ndarray, np.ndarray]:
        return _checked(rule, population, *inner(population))

    return resolve


def _checked(rule: Any, population: Population, gx: np.ndarray, gw: np.ndarray
             ) -> tuple[np.ndarray, np.ndarray]:
    """A rule's bounds as float arrays, or the :class:`InputError` of a malformed answer."""
    gx, gw = np.asarray(gx, dtype=float), np.asarray(gw, dtype=float)
    n = population.n
    if gx.shape != (n,) or gw.shape != (n,) or (gx < 0).any() or (gw < 0).any():
        raise InputError("bounds", f"rule {rule!s} returned invalid bounds",
                         f"a bound rule must return two arrays of {n} non-negative bounds")
    return gx, gw


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
    rule = BoundPolicy.parse(bounds)
    return _checked(rule, population, *rule.resolve(population, random_state))
