"""Where an attack can move the single ℓp consensus: regions that contain it, proved.

Coordinates: y = (vec(X) / (√2 D_X), W / (√2 D_W)), in which the normalised distance
δ is the Euclidean norm (DESIGN §2), an attacker's declaration moves by at most ε, and
the valid set S is the box [−c_X, c_X]^{km} times the scaled simplex c_W·Δ^m,
c_X = 1/(√2 D_X), c_W = 1/(√2 D_W). A :class:`Region` answers the two questions every
certificate asks: how far from a point the attacked consensus x' can be
(:meth:`~Region.farthest`) and how near it can come (:meth:`~Region.nearest`).

**ℓ2 consensus, weights known** (:func:`mean_regions`). x' is the weighted mean of all
declarations: with W = Σ_{i≤n} w_i, w_A the attackers' weight and s' Sybils of weight
w_s each (T = W + s'·w_s),

    x' = (Σ_i w_i v_i + Σ_a w_a Δ_a + Σ_s w_s p_s) / T,   ‖Δ_a‖ ≤ ε, p_s ∈ S,

so x' ∈ a₀ + rB + βS (B the unit ball, a Minkowski sum) in two ways: (i) a₀ =
Σ_i w_i v_i / T, r = w_A ε / T, β = s' w_s / T — the attackers' weight share times the
budget, and the Sybils' share of the valid set (the mean moves by at most the
attackers' weight share × budget; Sybils pull it s'w_s/T of the way to their point);
(ii) a₀ = Σ_{h honest} w_h v_h / T, r = 0, β = (w_A + s'w_s)/T — the attackers anywhere
valid. For C = a₀ + rB + βS, max_{x∈C} ‖x − v‖ = r + max_{p∈S} ‖a₀ + βp − v‖, where
the maximum separates over the coordinates of the box and the vertices of the simplex
(a convex function peaks at a vertex); and dist(z, C) = max(dist(z − a₀, βS) − r, 0),
dist(y, βS) = β·dist(y/β, S) by the exact projection onto S. Both are exact for C.
For one attacker without Sybils the exact set x₀ + λ(S ∩ B(v_a, ε) − v_a), λ = w_a/W,
is used too (:class:`OneAttackerRegion`), its nearest points certified by Lagrangian
weak duality: the certified gain is then the attacker's exact best response, which
the overshoot of Lera-Leri et al.'s mean declares (the δ-projection of
v + (W/w_a)(v − a) onto the budget ball within the valid set).

**Any p, weights in intervals** (:func:`coordinate_box`). The consensus separates per
coordinate: x'_e minimises Σ_j w_j |x − b_je|^p, p ∈ [1, ∞]. Its minimiser is
non-decreasing in every b_je (for p > 1, F(x) = Σ_j w_j ψ(x − b_j), ψ(t) = sign(t)|t|^{p−1},
is increasing in x and decreasing in each b_j, so its root rises with b_j; for p = 1
the ends of the weighted-median interval do; for p = ∞ the mid-range does), and a
point's weight pulls it toward that point. So the lowest x'_e any attack reaches is at
least the root of F⁺(x) = Σ_{b_j<x} w⁺_j ψ(x − b_j) + Σ_{b_j>x} w⁻_j ψ(x − b_j) with every
attacker at the bottom of its reach (b − ε), every Sybil at the bottom of the valid
range, and weights at their upper bound below x and lower bound above (F ≤ F⁺
everywhere, F increasing, hence root(F) ≥ root(F⁺)); symmetrically for the highest.
At p = 1 this is the weighted median with the same tie tolerance as the mechanism
(:func:`pluralguard.core.consensus.lp_consensus`); at p = ∞ weights do not matter and
the mid-range of the lowest values is the bound. The box Π_e [lo_e, hi_e] then contains
x'. This is the monotonicity of (generalised) medians behind the strategyproofness of
the median (Moulin, *On strategy-proofness and single peakedness*, Public Choice
1980): an attacker can move a coordinate only toward its own side, within the order
statistics its weight reaches.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from scipy.special import logsumexp

from pluralguard.core.geometry import project_simplex, scale_factors
from pluralguard.core.model import RANGE_TOL

from .reach import Reach

#: Rounding padding of every distance a region reports.
PAD = 1e-12
#: How far the mechanism's root search for 1 < p < ∞ may be from the exact root (its
#: documented accuracy is better than 1e-9), in y units.
ROOT_PAD = 1e-8
#: Bisection steps of the root bound.
BISECTIONS = 100


def scaled(X: np.ndarray, W: np.ndarray) -> np.ndarray:
    """y coordinates (rows) of value systems: δ is their Euclidean distance."""
    X, W = np.asarray(X, float), np.asarray(W, float)
    k, m = X.shape[-2:]
    cx, cw = scale_factors(k, m)
    lead = X.shape[:-2]
    return np.concatenate([X.reshape(*lead, k * m) * cx, W * cw], axis=-1)


class Region(Protocol):
    """A set proved to contain the attacked consensus (module doc)."""

    def farthest(self, points: np.ndarray) -> np.ndarray:
        """Upper bounds on max over the region of δ to each row of ``points`` (y)."""
        ...

    def nearest(self, points: np.ndarray) -> np.ndarray:
        """Lower bounds on min over the region of δ to each row of ``points`` (y)."""
        ...


def _farthest_valid(shift: np.ndarray, beta: float, km: int, cx: float, cw: float
                    ) -> np.ndarray:
    """max over p ∈ S of ‖shift + βp‖ per row (box coordinates, then simplex vertices)."""
    zx, zw = shift[..., :km], shift[..., km:]
    box = ((np.abs(zx) + beta * cx) ** 2).sum(axis=-1)
    simplex = (zw ** 2).sum(axis=-1) + (beta * cw) ** 2 + 2 * beta * cw * zw.max(axis=-1)
    return np.sqrt(np.maximum(box + simplex, 0.0))


def _project_valid(y: np.ndarray, km: int, cx: float, cw: float) -> np.ndarray:
    """Π_S(y) per row: box clip and scaled simplex projection (exact)."""
    return np.concatenate([np.clip(y[..., :km], -cx, cx),
                           cw * project_simplex(y[..., km:] / cw)], axis=-1)


def _distance_to_valid(y: np.ndarray, km: int, cx: float, cw: float) -> np.ndarray:
    """‖y − Π_S(y)‖ per row."""
    return np.linalg.norm(y - _project_valid(y, km, cx, cw), axis=-1)


@dataclass(frozen=True)
class BallRegion:
    """C = a₀ + rB + βS (module doc)."""

    centre: np.ndarray
    radius: float
    beta: float
    k: int
    m: int

    def farthest(self, points: np.ndarray) -> np.ndarray:
        cx, cw = scale_factors(self.k, self.m)
        km = self.k * self.m
        spread = _farthest_valid(self.centre - points, self.beta, km, cx, cw)
        # the ℓ2 consensus is a mean of valid points, so it is valid too
        valid = _farthest_valid(-points, 1.0, km, cx, cw)
        return np.minimum(self.radius + spread, valid) + PAD

    def nearest(self, points: np.ndarray) -> np.ndarray:
        cx, cw = scale_factors(self.k, self.m)
        y = points - self.centre
        if self.beta > 0:
            d = self.beta * _distance_to_valid(y / self.beta, self.k * self.m, cx, cw)
        else:
            d = np.linalg.norm(y, axis=-1)
        return np.maximum(d - self.radius - PAD, 0.0)


@dataclass(frozen=True)
class BoxRegion:
    """C = Π_e [lo_e, hi_e] (y coordinates)."""

    lo: np.ndarray
    hi: np.ndarray

    def farthest(self, points: np.ndarray) -> np.ndarray:
        far = np.maximum((points - self.lo) ** 2, (points - self.hi) ** 2)
        return np.sqrt(far.sum(axis=-1)) + PAD

    def nearest(self, points: np.ndarray) -> np.ndarray:
        d = np.linalg.norm(points - np.clip(points, self.lo, self.hi), axis=-1)
        return np.maximum(d - PAD, 0.0)


def _least_distance(c: np.ndarray, v: np.ndarray, eps: float, k: int, m: int) -> np.ndarray:
    """Per row of ``c``, a lower bound on min ‖b − c‖ over b ∈ S with ‖b − v‖ ≤ ε.

    Weak duality: for every μ ≥ 0, g(μ) = min_{b∈S} ‖b − c‖² + μ(‖b − v‖² − ε²) is at
    most the minimum, and its minimiser is b = Π_S(v + s(c − v)), s = 1/(1 + μ) (the
    Lagrangian is (1 + μ)‖b − that point‖² + const). The best μ makes ‖b − v‖ = ε;
    bisection on s finds it (‖Π_S(v + s(c − v)) − v‖ is non-decreasing in s), and g at
    both ends of the final bracket is evaluated: any μ gives a valid bound, the right
    one an exact one.

    A truth v the model accepted may lie off S by rounding (a weight vector summing to
    1 − 1e-16); declaring it stays possible, so the bound is taken around Π_S(v), the
    radius widened by 2o (o: v's distance to S) and the result lowered by o — a
    declaration accepted within ε of v lies within o of a point of S within ε + 2o of
    Π_S(v).
    """
    cx, cw = scale_factors(k, m)
    km = k * m
    direct = _project_valid(c, km, cx, cw)
    if math.isinf(eps):
        return np.linalg.norm(direct - c, axis=-1)
    on_s = _project_valid(v[None], km, cx, cw)[0]
    off = float(np.linalg.norm(on_s - v))
    v, eps = on_s, eps + 2 * off
    lo, hi = np.zeros(c.shape[0]), np.ones(c.shape[0])
    inside = np.linalg.norm(direct - v, axis=-1) <= eps
    for _ in range(BISECTIONS):
        s = 0.5 * (lo + hi)
        b = _project_valid(v + s[:, None] * (c - v), km, cx, cw)
        ok = np.linalg.norm(b - v, axis=-1) <= eps
        lo, hi = np.where(ok, s, lo), np.where(ok, hi, s)
    best = np.zeros(c.shape[0])
    for s in (lo, hi):
        safe = np.maximum(s, 1e-300)
        mu = 1.0 / safe - 1.0
        b = _project_valid(v + safe[:, None] * (c - v), km, cx, cw)
        g = ((b - c) ** 2).sum(-1) + mu * (((b - v) ** 2).sum(-1) - eps ** 2)
        best = np.maximum(best, np.where(s > 0, g, 0.0))
    exact = np.linalg.norm(direct - c, axis=-1) ** 2  # μ = 0: the minimum when feasible
    return np.maximum(np.sqrt(np.where(inside, exact, best)) - off, 0.0)


@dataclass(frozen=True)
class OneAttackerRegion:
    """x' = x₀ + λ(b − v) with b ∈ S, ‖b − v‖ ≤ ε: one attacker of weight share λ and
    truth v, no Sybil — the exact set of the ℓ2 mean, validity of the declaration
    included (nearest points by :func:`_least_distance`; farthest by the ball)."""

    centre: np.ndarray
    truth: np.ndarray
    share: float
    radius: float
    k: int
    m: int

    def farthest(self, points: np.ndarray) -> np.ndarray:
        return BallRegion(self.centre, self.share * self.radius, 0.0, self.k,
                          self.m).farthest(points)

    def nearest(self, points: np.ndarray) -> np.ndarray:
        if self.share == 0:
            return np.maximum(np.linalg.norm(points - self.centre, axis=-1) - PAD, 0.0)
        aim = self.truth + (points - self.centre) / self.share
        d = self.share * _least_distance(aim, self.truth, self.radius, self.k, self.m)
        return np.maximum(d - PAD * (1.0 + np.abs(d)), 0.0)


# ------------------------------------------------------------ ℓ2, known weights
def mean_regions(reach: Reach) -> list[list[Region]]:
    """For every Sybil count s' = 0 … s, the regions (i) and (ii) of the module doc that
    contain the attacked ℓ2 consensus (weights exactly known: ``reach``'s lower and
    upper weights agree), and for one attacker without Sybils its exact set
    (:class:`OneAttackerRegion`)."""
    truth = reach.truth
    y = scaled(truth.X, truth.W)
    w = reach.weight_high
    honest, attackers = reach.honest, reach.attackers
    w_all, w_att = float(w.sum()), float(w[attackers].sum())
    total = w @ y
    honest_total = w[honest] @ y[honest]
    w_syb = reach.sybil_weight[1]
    out: list[list[Region]] = []
    for s in range(reach.sybils + 1):
        t = w_all + s * w_syb
        out.append([
            BallRegion(total / t, w_att * reach.radius / t, s * w_syb / t, truth.k, truth.m),
            BallRegion(honest_total / t, 0.0, (w_att + s * w_syb) / t, truth.k, truth.m)])
    if attackers.size == 1:
        out[0].append(OneAttackerRegion(total / w_all, y[attackers[0]], w_att / w_all,
                                        reach.radius, truth.k, truth.m))
    return out


# ----------------------------------------------------------- any p, weight intervals
def valid_range(k: int, m: int) -> tuple[np.ndarray, np.ndarray]:
    """Per y coordinate, the range of valid declarations (padded by the model's range
    tolerance)."""
    cx, cw = scale_factors(k, m)
    lo = np.concatenate([np.full(k * m, -cx), np.zeros(m)]) - RANGE_TOL
    hi = np.concatenate([np.full(k * m, cx), np.full(m, cw)]) + RANGE_TOL
    return lo, hi


def _lowest_median(values: np.ndarray, low: np.ndarray, high: np.ndarray, identities: int
                   ) -> np.ndarray:
    """Per column, the smallest value x with Σ_{b≤x} w⁺ ≥ Σ_{b>x} w⁻ − slack: at most the
    lower end of every weighted-median interval the weights allow (module doc). The
    slack covers the mechanism's tie tolerance (4·n·ε_mach·total on each side, n at
    most ``identities``)."""
    order = np.argsort(values, axis=0, kind="stable")
    b = np.take_along_axis(values, order, axis=0)
    below = np.cumsum(high[order], axis=0)
    above = low.sum() - np.cumsum(low[order], axis=0)
    slack = 16.0 * identities * np.finfo(float).eps * (high.sum() + low.sum())
    first = np.argmax(below >= above - slack, axis=0)
    return b[first, np.arange(values.shape[1])]


def _lowest_mean(values: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """Per column, the root of F⁺ for p = 2 in closed form: F⁺ is piecewise linear and
    increasing; on the segment between consecutive sorted values where it changes sign
    the points below weigh w⁺ and those above w⁻, so the root is the weighted mean
    (Σ_{below} w⁺b + Σ_{above} w⁻b) / (Σ_{below} w⁺ + Σ_{above} w⁻) there."""
    order = np.argsort(values, axis=0, kind="stable")
    b = np.take_along_axis(values, order, axis=0)
    hi, lo = high[order], low[order]
    # sums over the points strictly below position t (hi) and from t on (lo)
    below_w = np.concatenate([np.zeros((1, b.shape[1])), np.cumsum(hi, axis=0)[:-1]])
    below_wb = np.concatenate([np.zeros((1, b.shape[1])), np.cumsum(hi * b, axis=0)[:-1]])
    above_w = np.cumsum(lo[::-1], axis=0)[::-1]
    above_wb = np.cumsum((lo * b)[::-1], axis=0)[::-1]
    # F⁺ at b_t (the point itself contributes 0): below at w⁺, strictly above at w⁻
    at = b * below_w - below_wb + (b * (above_w - lo) - (above_wb - lo * b))
    first = np.argmax(at >= 0, axis=0)  # F⁺(largest value) ≥ 0 always
    cols = np.arange(b.shape[1])
    weight = below_w[first, cols] + above_w[first, cols]
    with np.errstate(invalid="ignore", divide="ignore"):
        root = (below_wb[first, cols] + above_wb[first, cols]) / weight
    prev = b[np.maximum(first - 1, 0), cols]
    root = np.where(weight > 0, np.clip(root, prev, b[first, cols]), b[first, cols])
    return np.where(first == 0, b[0, cols], root) - ROOT_PAD


def _lowest_root(values: np.ndarray, low: np.ndarray, high: np.ndarray, p: float
                 ) -> np.ndarray:
    """Per column, a lower bound on the root of F⁺ (module doc), 1 < p < ∞, by bisection
    on the sign of F⁺ computed in log space (no overflow for large p)."""
    lo, hi = values.min(axis=0), values.max(axis=0)
    log_high = np.log(np.where(high > 0, high, 1.0))[:, None]
    log_low = np.log(np.where(low > 0, low, 1.0))[:, None]
    has_high, has_low = (high > 0)[:, None], (low > 0)[:, None]

    def nonnegative(x: np.ndarray) -> np.ndarray:
        gap = x[None, :] - values
        with np.errstate(divide="ignore"):
            mag = (p - 1.0) * np.log(np.abs(gap))
        pos = np.where((gap > 0) & has_high, log_high + mag, -np.inf)
        neg = np.where((gap < 0) & has_low, log_low + mag, -np.inf)
        return logsumexp(pos, axis=0) >= logsumexp(neg, axis=0)

    done = nonnegative(lo)  # F⁺ ≥ 0 already at the smallest value: the bound is there
    a, b = lo.copy(), hi.copy()
    for _ in range(BISECTIONS):
        mid = 0.5 * (a + b)
        up = nonnegative(mid)
        b = np.where(up, mid, b)
        a = np.where(up, a, mid)
    return np.where(done, lo, a) - ROOT_PAD


def _lower_end(values: np.ndarray, low: np.ndarray, high: np.ndarray, p: float,
               present: np.ndarray, identities: int) -> np.ndarray:
    """Per column, a lower bound on the ℓp consensus of rows ``values`` with weights in
    [low, high], among at most ``identities`` declared ones (rows with ``present``
    False may be absent: at p = ∞, where weights do not matter, they are left out)."""
    if math.isinf(p):
        v = values[present]
        return 0.5 * (v.min(axis=0) + v.max(axis=0))
    if p == 1:
        return _lowest_median(values, low, high, identities)
    if p == 2:
        return _lowest_mean(values, low, high)
    return _lowest_root(values, low, high, p)


def coordinate_box(reach: Reach, p: float) -> BoxRegion:
    """The box Π_e [lo_e, hi_e] containing the attacked ℓp consensus (module doc)."""
    truth = reach.truth
    y = scaled(truth.X, truth.W)
    lo_range, hi_range = valid_range(truth.k, truth.m)
    honest, attackers = reach.honest, reach.attackers
    s = reach.sybils
    weights_low = np.concatenate([reach.weight_low[honest], reach.weight_low[attackers],
                                  [0.0]])
    weights_high = np.concatenate([reach.weight_high[honest], reach.weight_high[attackers],
                                   [s * reach.sybil_weight[1]]])
    present = np.concatenate([np.ones(honest.size + attackers.size, bool), [s > 0]])

    def end(sign: float, bound: np.ndarray) -> np.ndarray:
        moved = np.clip(y[attackers] - sign * reach.radius, lo_range, hi_range)
        rows = np.concatenate([y[honest], moved, bound[None]])
        return sign * _lower_end(sign * rows, weights_low, weights_high, p, present,
                                 truth.n + s)

    return BoxRegion(end(1.0, lo_range), end(-1.0, hi_range))
