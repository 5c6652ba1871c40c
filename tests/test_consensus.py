"""Tests of the single-consensus ℓp baseline (pluralguard.core.consensus).

Reference fixtures (provenance in tests/data/README.md): outputs of Lera-Leri et al.'s
own pipeline on the EVS-2017 table and exact per-entry minimisers, shipped in
tests/data/lera_evs2017; J. Trevorrow's stored Julia pIRLS sweeps on the ESS-8 table,
read from $PLURALGUARD_SHARED_DATA (skipped without it). Lera's conventions are
converted here, in the tests, never in the library:

* their ``preferences`` vector is the 2×2 matrix [[0, W0], [W1, 0]] row-major (the
  diagonal is 0 in every agent, hence in every consensus), so its U_p equals our U_p_W;
* their ``action_judgements`` vector is J⁺ = X.T row-major ([value][action]) followed by
  J⁻ = −J⁺, so their U_p = 2^{1/p}·U_p_X for finite p and U_∞ = U_∞_X.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
from functools import lru_cache

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy import sparse
from scipy.special import logsumexp

from pluralguard.core import datasets
from pluralguard.core.consensus import ConsensusResult, limit_p, lp_consensus, transition_p
from pluralguard.core.datasets.lera import read_lera_csv
from pluralguard.core.errors import InputError
from pluralguard.core.geometry import accepts, utility
from pluralguard.core.model import Population
from populations import TEST_DATA, shared_file

EVS = TEST_DATA / "lera_evs2017"
ESS = "trevorrow_ess8"
MODES = {"none(w_i=1)": "none", "respondents(normalised)": "respondents",
         "population(normalised)": "population"}
INF = math.inf


@lru_cache
def evs(weights: str = "none") -> Population:
    """The EVS-2017 table shipped with the package (LERA's data.csv, byte for byte)."""
    return datasets.evs2017(weights=weights)


def ess() -> Population:
    return read_lera_csv(shared_file(f"{ESS}/ess8_country_value_systems.csv"))


def lera_p(text: str) -> float:
    return INF if str(text).strip() == "inf" else float(text)


def lera_x(res: ConsensusResult, target: str) -> np.ndarray:
    """Our consensus in Lera's layout (module doc)."""
    if target == "preferences":
        return np.array([0.0, *res.agreement_W, 0.0])
    jp = res.agreement_X.T.ravel()
    return np.concatenate([jp, -jp])


def lera_u(res: ConsensusResult, target: str, p: float) -> float:
    if target == "preferences":
        return res.U_p_W
    return res.U_p_X * (1.0 if math.isinf(p) else 2.0 ** (1.0 / p))


def lera_interval(res: ConsensusResult, target: str) -> tuple[np.ndarray, np.ndarray]:
    """Our optimal intervals in Lera's layout; NaN on the preference diagonal."""
    if target == "preferences":
        lo, hi = res.interval_W
        return np.array([np.nan, *lo, np.nan]), np.array([np.nan, *hi, np.nan])
    lo, hi = (a.T.ravel() for a in res.interval_X)
    return np.concatenate([lo, -hi]), np.concatenate([hi, -lo])


def objective(x: np.ndarray, B: np.ndarray, w: np.ndarray, p: float) -> np.ndarray:
    """Per-coordinate Σ_i w_i |x − B[i]|^p (B of shape (n, d), x of shape (d,))."""
    return w @ np.abs(x - B) ** p


def log_objective(x: np.ndarray, B: np.ndarray, w: np.ndarray, p: float) -> np.ndarray:
    """log of :func:`objective`, computed as a log-sum-exp: for large p, |x − B|^p
    under- or overflows where its logarithm does not."""
    with np.errstate(divide="ignore"):
        return logsumexp(p * np.log(np.abs(x - B)), b=w[:, None], axis=0)


def derivative_sign(x: np.ndarray, B: np.ndarray, w: np.ndarray, p: float) -> np.ndarray:
    """sign of Σ_i w_i |x − B[i]|^{p−1} sign(x − B[i]), evaluated scaled (no overflow)."""
    r = x - B
    scale = np.abs(r).max(axis=0)
    scale = np.where(scale > 0, scale, 1.0)
    return np.sign(w @ (np.abs(r / scale) ** (p - 1) * np.sign(r)))


def weights_of(pop: Population) -> np.ndarray:
    """The agent weights as given (ones when none), the scale U_p is reported in."""
    return np.ones(pop.n) if pop.weights is None else np.asarray(pop.weights)


def parts(pop: Population) -> tuple[np.ndarray, np.ndarray]:
    return pop.X.reshape(pop.n, -1), pop.W


def consensus_parts(res: ConsensusResult) -> tuple[np.ndarray, np.ndarray]:
    return res.agreement_X.ravel(), res.agreement_W


# ------------------------------------------------------------------ strategies
GRID_VALUES = [-1.0, -0.5, -0.25, 0.0, 0.25, 0.5, 1.0]  # provokes ties and medians on data


@st.composite
def populations(draw, max_n: int = 9, weighted: bool | None = None, x_abs: float = 1.0
                ) -> Population:
    n = draw(st.integers(1, max_n))
    k = draw(st.integers(1, 3))
    m = draw(st.integers(1, 3))
    elem = st.one_of(st.sampled_from([v * x_abs for v in GRID_VALUES]),
                     st.floats(-x_abs, x_abs, allow_nan=False, allow_subnormal=False))
    X = draw(arrays(float, (n, k, m), elements=elem))
    raw = draw(arrays(float, (n, m), elements=st.one_of(
        st.sampled_from([0.0, 1.0, 2.0]), st.floats(0.0, 1.0, allow_subnormal=False))))
    raw[:, 0] += 1e-3  # every row has positive mass
    W = raw / raw.sum(axis=1, keepdims=True)
    if weighted is None:
        weighted = draw(st.booleans())
    w = None
    if weighted:
        w = draw(arrays(float, n, elements=st.one_of(
            st.sampled_from([1.0, 2.0, 3.0]), st.floats(0.1, 10.0))))
    return Population(X, W, weights=w)


P_SAMPLE = st.sampled_from([1.0, 1.5, 2.0, 3.7, 10.0, INF])
FAST = settings(max_examples=60, deadline=None,
                suppress_health_check=[HealthCheck.too_slow])


# ----------------------------------------------------- references: Lera-Leri et al.
@pytest.mark.parametrize("p", ["1", "2", "inf"])
@pytest.mark.parametrize("target", ["preferences", "action_judgements"])
@pytest.mark.parametrize("mode", list(MODES))
def test_reference_single_consensus(mode: str, target: str, p: str) -> None:
    ref = pd.read_csv(EVS / "reference_single_consensus.csv", dtype={"p": str})
    row = ref[(ref.weights == mode) & (ref.target == target) & (ref.p == p)]
    assert len(row) == 1
    row = row.iloc[0]
    pv = lera_p(p)
    res = lp_consensus(evs(MODES[mode]), p=pv)
    d = 4 if target == "preferences" else 8
    x_ref = row[[f"x{j}" for j in range(d)]].to_numpy(float)
    x = lera_x(res, target)

    assert lera_u(res, target, pv) == pytest.approx(row.U_p, abs=1e-6)
    if row.unique_minimiser == "yes":
        np.testing.assert_allclose(x, x_ref, atol=1e-6)

    sets = pd.read_csv(EVS / "reference_minimiser_sets.csv", dtype={"p": str})
    key = sets.weights.isin([mode, "any (ignored at p=inf)"])
    box = sets[key & (sets.target == target) & (sets.p == p)].sort_values("entry")
    if row.unique_minimiser == "no":
        assert len(box) == d  # every tied case has its exact optimal set
    if len(box):
        lo, hi = box.lo.to_numpy(float), box.hi.to_numpy(float)
        assert np.all(x >= lo - 1e-9) and np.all(x <= hi + 1e-9)
        np.testing.assert_allclose(x, 0.5 * (lo + hi), atol=1e-9)  # midpoint tie-break
        our_lo, our_hi = lera_interval(res, target)
        inner = ~np.isnan(our_lo)
        np.testing.assert_allclose(our_lo[inner], lo[inner], atol=1e-9)
        np.testing.assert_allclose(our_hi[inner], hi[inner], atol=1e-9)


def test_reference_exact_pmeans() -> None:
    ref = pd.read_csv(EVS / "reference_exact_pmeans_w0.csv")
    assert len(ref) == 14
    for _, row in ref.iterrows():
        res = lp_consensus(evs("none"), p=row.p)
        d = 4 if row.target == "preferences" else 8
        x_ref = row[[f"x{j}" for j in range(d)]].to_numpy(float)
        np.testing.assert_allclose(lera_x(res, row.target), x_ref, atol=1e-9,
                                   err_msg=f"{row.target} p={row.p}")
        assert lera_u(res, row.target, row.p) == pytest.approx(row.U_p, abs=1e-6)


@pytest.mark.parametrize("name, target, columns", [
    ("reference_sweep_preferences_w0.csv", "preferences",
     ["Rel-Rel", "Rel-Nonrel", "Nonrel-Rel", "Nonrel-Nonrel"]),
    ("reference_sweep_actions_w0.csv", "action_judgements",
     ["Rel_adp_p", "Rel_div_p", "Nonrel_adp_p", "Nonrel_div_p",
      "Rel_adp_n", "Rel_div_n", "Nonrel_adp_n", "Nonrel_div_n"]),
])
def test_reference_evs_sweep(name: str, target: str, columns: list[str]) -> None:
    """LERA's -g sweep, rows p >= 2 (a conic stand-in for Julia's pIRLS).

    The stand-in stops at a solver tolerance: its U_p agrees with ours to 1e-9, its x
    to 2e-6, and where they differ ours has the lower objective in every coordinate.
    """
    sweep = pd.read_csv(EVS / name)
    sweep = sweep[sweep.p >= 2]
    assert len(sweep) >= 80
    pop = evs("none")
    d = len(columns) // (2 if target == "action_judgements" else 1)
    B = (pop.X.transpose(0, 2, 1).reshape(pop.n, -1) if target == "action_judgements"
         else np.column_stack([np.zeros(pop.n), pop.W, np.zeros(pop.n)]))
    for _, row in sweep.iterrows():
        res = lp_consensus(pop, p=row.p)
        x, x_ref = lera_x(res, target), row[columns].to_numpy(float)
        assert lera_u(res, target, row.p) == pytest.approx(row.Up, abs=1e-9)
        np.testing.assert_allclose(x, x_ref, atol=2e-6, err_msg=f"p={row.p}")
        ones = np.ones(pop.n)
        assert np.all(objective(x[:d], B, ones, row.p)
                      <= objective(x_ref[:d], B, ones, row.p) * (1 + 1e-12) + 1e-15)


@pytest.mark.parametrize("name, target, columns", [
    ("ess8_sweep_preferences_julia.csv", "preferences",
     ["Rel-Rel", "Rel-Nonrel", "Nonrel-Rel", "Nonrel-Nonrel"]),
    ("ess8_sweep_actions_julia.csv", "action_judgements",
     ["Rel_div_p", "Nonrel_div_p", "Rel_div_n", "Nonrel_div_n"]),
])
def test_reference_ess8_julia_sweep(name: str, target: str, columns: list[str]) -> None:
    sweep = pd.read_csv(shared_file(f"{ESS}/{name}"))
    sweep = sweep[sweep.p >= 2]
    assert len(sweep) >= 80
    ours_x, ours_u = [], []
    for p in sweep.p:  # as written, e.g. 2.000000000000001
        res = lp_consensus(ess(), p=p)
        ours_x.append(lera_x(res, target))
        ours_u.append(lera_u(res, target, p))
    np.testing.assert_allclose(np.array(ours_x), sweep[columns].to_numpy(float), atol=1e-6)
    np.testing.assert_allclose(ours_u, sweep.Up.to_numpy(float), atol=1e-6)


# ------------------------------------------------------------------ closed forms
@FAST
@given(populations(weighted=False))
def test_p1_unit_weights_is_the_median(pop: Population) -> None:
    res = lp_consensus(pop, p=1)
    np.testing.assert_allclose(res.agreement_X, np.median(pop.X, axis=0), atol=1e-15)
    np.testing.assert_allclose(res.agreement_W, np.median(pop.W, axis=0), atol=1e-15)


def test_p1_even_n_gives_the_midpoint_of_the_middle_values() -> None:
    X = np.array([0.9, -0.2, 0.6, 0.1]).reshape(4, 1, 1)
    res = lp_consensus(Population(X, np.ones((4, 1))), p=1)
    assert res.agreement_X[0, 0] == pytest.approx(0.35, abs=1e-15)
    lo, hi = res.interval_X
    assert (lo[0, 0], hi[0, 0]) == (0.1, 0.6)
    # a weight moving the half-way point onto a data value makes the median unique
    res = lp_consensus(Population(X, np.ones((4, 1))), p=1, weights=[1, 1, 1, 1.5])
    assert res.agreement_X[0, 0] == 0.1 and res.interval_X[0][0, 0] == 0.1


@FAST
@given(populations(weighted=True))
def test_p1_weighted_is_the_midpoint_of_the_optimal_interval(pop: Population) -> None:
    res = lp_consensus(pop, p=1)
    w = weights_of(pop)
    for B, x, (lo, hi) in zip(parts(pop), consensus_parts(res),
                              (tuple(a.ravel() for a in res.interval_X), res.interval_W),
                              strict=True):
        assert np.all(lo <= hi)
        np.testing.assert_allclose(x, 0.5 * (lo + hi), atol=1e-15)
        best = np.min([objective(b, B, w, 1.0) for b in B], axis=0)  # optimum is at data
        tol = 1e-12 * (1.0 + best)
        for point in (x, lo, hi):
            assert np.all(objective(point, B, w, 1.0) <= best + tol)
        for outside in (lo - 1e-3, hi + 1e-3):
            assert np.all(objective(outside, B, w, 1.0) >= best - tol)


@FAST
@given(populations())
def test_p2_is_the_weighted_mean(pop: Population) -> None:
    res = lp_consensus(pop, p=2)
    np.testing.assert_allclose(res.agreement_X, np.average(pop.X, axis=0, weights=weights_of(pop)),
                               atol=1e-14)
    np.testing.assert_allclose(res.agreement_W, np.average(pop.W, axis=0, weights=weights_of(pop)),
                               atol=1e-14)
    assert res.on_simplex
    assert res.interval_X is None and res.interval_W is None
    U = math.sqrt(np.sum(weights_of(pop)[:, None] * (pop.W - res.agreement_W) ** 2))
    assert res.U_p_W == pytest.approx(U, rel=1e-12, abs=1e-15)


@FAST
@given(populations())
def test_pinf_is_the_midrange_inside_the_optimal_box(pop: Population) -> None:
    res = lp_consensus(pop, p=INF)
    for B, x, (lo, hi), U in zip(
            parts(pop), consensus_parts(res),
            (tuple(a.ravel() for a in res.interval_X), res.interval_W),
            (res.U_p_X, res.U_p_W), strict=True):
        np.testing.assert_allclose(x, 0.5 * (B.max(axis=0) + B.min(axis=0)), atol=1e-15)
        t_star = np.max(B.max(axis=0) - B.min(axis=0)) / 2
        assert U == pytest.approx(t_star, abs=1e-15)
        np.testing.assert_allclose(lo, np.minimum(B.max(axis=0) - t_star, x), atol=1e-15)
        np.testing.assert_allclose(hi, np.maximum(B.min(axis=0) + t_star, x), atol=1e-15)
        # every point of the box attains t*, and the weights do not enter
        for corner in (lo, hi):
            assert np.max(np.abs(corner - B)) <= t_star + 1e-15
    unweighted = lp_consensus(pop.replace(weights=None), p=INF)
    np.testing.assert_array_equal(unweighted.X, res.X)
    assert unweighted.U_p_X == res.U_p_X


@FAST
@given(populations(), st.one_of(st.floats(1.01, 60.0), st.sampled_from([1.0001, 300.0])))
def test_general_p_is_a_first_order_optimum(pop: Population, p: float) -> None:
    res = lp_consensus(pop, p=p)
    w = weights_of(pop)
    for B, x in zip(parts(pop), consensus_parts(res), strict=True):
        spread = B.max(axis=0) > B.min(axis=0)
        # the derivative changes sign across x: x is within 1e-9 of the root
        assert np.all(derivative_sign(x - 1e-9, B, w, p)[spread] <= 0)
        assert np.all(derivative_sign(x + 1e-9, B, w, p)[spread] >= 0)
        np.testing.assert_array_equal(x[~spread], B[0, ~spread])
        f = log_objective(x, B, w, p)
        for h in (1e-6, 1e-3):
            assert np.all(f <= log_objective(x + h, B, w, p) + 1e-12)
            assert np.all(f <= log_objective(x - h, B, w, p) + 1e-12)
    assert res.interval_X is None


@pytest.mark.parametrize("mode", list(MODES.values()))
def test_limits_p_to_1_and_p_to_infinity(mode: str) -> None:
    pop = evs(mode)
    one = lp_consensus(pop, p=1)
    near_one = lp_consensus(pop, p=1.0001)
    for x, (lo, hi) in ((near_one.agreement_X, one.interval_X),
                        (near_one.agreement_W, one.interval_W)):
        assert np.all(x >= lo - 1e-6) and np.all(x <= hi + 1e-6)
    # p → ∞: balancing the extreme residuals, w_min (h + δ)^{p−1} ≤ n w_max (h − δ)^{p−1}
    # bounds the offset δ from the mid-range of a coordinate with half-range h
    w = weights_of(pop)
    gaps = []
    for p in (10, 50, 200, 1000):
        c = (pop.n * w.max() / w.min()) ** (1.0 / (p - 1))
        res = lp_consensus(pop, p=p)
        gap = 0.0
        for B, x in zip(parts(pop), consensus_parts(res), strict=True):
            h = 0.5 * (B.max(axis=0) - B.min(axis=0))
            delta = np.abs(x - 0.5 * (B.max(axis=0) + B.min(axis=0)))
            assert np.all(delta <= h * (c - 1) / (c + 1) + 1e-12)
            gap = max(gap, delta.max())
        gaps.append(gap)
    assert all(a > b for a, b in itertools.pairwise(gaps))
    if mode == "none":
        assert gaps[-1] < 1e-8


@pytest.mark.parametrize("p", [1.001, 1.37, 2.5, 8.0, 120.0])
def test_general_p_solution_lies_between_the_ends_in_the_data_range(p: float) -> None:
    pop = evs("population")
    res = lp_consensus(pop, p=p)
    for B, x in zip(parts(pop), consensus_parts(res), strict=True):
        assert np.all(x >= B.min(axis=0)) and np.all(x <= B.max(axis=0))
    assert res.on_simplex  # m = 2: symmetric under w ↦ 1 − w


# ------------------------------------------------------------------ invariances
@FAST
@given(populations(), P_SAMPLE, st.randoms(use_true_random=False))
def test_permuting_agents_leaves_the_consensus_unchanged(pop, p, rnd) -> None:
    perm = list(range(pop.n))
    rnd.shuffle(perm)
    a, b = lp_consensus(pop, p=p), lp_consensus(pop.subset(perm), p=p)
    np.testing.assert_allclose(b.X, a.X, atol=1e-12)
    np.testing.assert_allclose(b.W, a.W, atol=1e-12)
    assert b.U_p_X == pytest.approx(a.U_p_X, rel=1e-12, abs=1e-14)
    np.testing.assert_allclose(b.utilities, a.utilities[perm], atol=1e-12)


@FAST
@given(populations(), P_SAMPLE, st.floats(0.01, 100.0))
def test_scaling_weights_keeps_x_and_scales_U_p(pop, p, c) -> None:
    a = lp_consensus(pop, p=p)
    b = lp_consensus(pop, p=p, weights=c * weights_of(pop))
    np.testing.assert_allclose(b.X, a.X, atol=1e-12)
    np.testing.assert_allclose(b.W, a.W, atol=1e-12)
    factor = 1.0 if math.isinf(p) else c ** (1.0 / p)
    assert b.U_p_X == pytest.approx(factor * a.U_p_X, rel=1e-10, abs=1e-13)
    assert b.U_p_W == pytest.approx(factor * a.U_p_W, rel=1e-10, abs=1e-13)


@FAST
@given(populations(weighted=False), P_SAMPLE)
def test_duplicating_every_agent_equals_doubling_weights(pop, p) -> None:
    twice = pop.append(pop.replace(agents=[f"{a}'" for a in pop.agents]))
    a, b = lp_consensus(pop, p=p, weights=np.full(pop.n, 2.0)), lp_consensus(twice, p=p)
    np.testing.assert_allclose(b.X, a.X, atol=1e-12)
    assert b.U_p_X == pytest.approx(a.U_p_X, rel=1e-10, abs=1e-13)


@FAST
@given(populations(weighted=False), st.data())
def test_integer_weights_equal_repeated_agents_at_p1(pop, data) -> None:
    """The weighted median (cumulative weights) equals the order statistics of the
    population with each agent repeated w_i times (equal weights)."""
    reps = np.array(data.draw(st.lists(st.integers(1, 4), min_size=pop.n, max_size=pop.n)))
    idx = np.repeat(np.arange(pop.n), reps)
    repeated = Population(pop.X[idx], pop.W[idx])
    a, b = lp_consensus(pop, p=1, weights=reps), lp_consensus(repeated, p=1)
    np.testing.assert_array_equal(a.interval_X[0], b.interval_X[0])
    np.testing.assert_array_equal(a.interval_X[1], b.interval_X[1])
    np.testing.assert_array_equal(a.interval_W[0], b.interval_W[0])
    np.testing.assert_array_equal(a.interval_W[1], b.interval_W[1])


@FAST
@given(populations(x_abs=0.5), P_SAMPLE, st.floats(-0.5, 0.5))
def test_translating_judgements_translates_x(pop, p, shift) -> None:
    # valid only while X + shift stays in [-1, 1] (the strategy keeps |X| <= 0.5)
    a = lp_consensus(pop, p=p)
    b = lp_consensus(pop.replace(X=pop.X + shift), p=p)
    np.testing.assert_allclose(b.agreement_X, a.agreement_X + shift, atol=1e-12)
    np.testing.assert_allclose(b.W, a.W, atol=1e-15)
    assert b.U_p_X == pytest.approx(a.U_p_X, rel=1e-9, abs=1e-12)


@FAST
@given(populations(), P_SAMPLE)
def test_reflecting_judgements_reflects_x(pop, p) -> None:
    # the tie-breaks (midpoint, mid-range) are symmetric, so x(−X) = −x(X) exactly
    a = lp_consensus(pop, p=p)
    b = lp_consensus(pop.replace(X=-pop.X), p=p)
    np.testing.assert_allclose(b.agreement_X, -a.agreement_X, atol=1e-12)
    assert b.U_p_X == pytest.approx(a.U_p_X, rel=1e-10, abs=1e-13)


# --------------------------------------------------------- limit and transition p
def pnorm(v: np.ndarray, p: float) -> float:
    """‖v‖_p scaled by max|v| (np.linalg.norm underflows to 0 for small v and large p)."""
    scale = np.abs(v).max()
    return 0.0 if scale == 0 else scale * np.linalg.norm(v / scale, p)


def sweep_vector(pop: Population, target: str, p: float) -> np.ndarray:
    res = lp_consensus(pop, p=p)
    return res.agreement_W if target == "W" else res.agreement_X.ravel()


def on_grid(p: float, step: float = 0.1) -> bool:
    j = round((p - 1.0) / step)
    return j >= 1 and p == np.round(1.0 + step * j, 10)


@pytest.mark.parametrize("target, p_max", [("W", 100.0), ("X", 1000.0)])
def test_limit_p_is_the_first_grid_point_meeting_the_criterion(target, p_max) -> None:
    pop, eps = evs("none"), 1e-4
    p_lim = limit_p(pop, target=target, epsilon=eps, p_max=p_max)
    assert on_grid(p_lim) and p_lim <= p_max
    x1, xinf = sweep_vector(pop, target, 1), sweep_vector(pop, target, INF)
    den = np.sum(np.abs(x1 - xinf))
    assert den > 0

    def ratio(p: float) -> float:
        return pnorm(sweep_vector(pop, target, p) - xinf, p) / den

    assert ratio(p_lim) < eps
    previous = float(np.round(p_lim - 0.1, 10))
    assert ratio(previous) >= eps
    for p in np.round(1 + 0.1 * np.arange(1, round((p_lim - 1) / 0.1)), 10)[::7]:
        assert ratio(p) >= eps, p


def test_limit_p_edge_cases() -> None:
    pop = evs("none")
    # on EVS the judgements approach x_inf too slowly to meet 1e-4 by p = 100
    assert limit_p(pop, target="X") == INF
    # two agents: the median midpoint is the mid-range, the ends coincide
    assert limit_p(pop.subset([0, 1]), target="X") == 1.0
    assert limit_p(pop, target="W", epsilon=1.0) == 1.1
    assert on_grid(limit_p(evs("respondents"), target="W"))


@pytest.mark.parametrize("mode", ["none", "population"])
@pytest.mark.parametrize("target", ["W", "X"])
def test_transition_p_is_the_first_point_below_epsilon_or_the_best(mode, target) -> None:
    pop, eps = evs(mode), 1e-4
    p_t = transition_p(pop, target=target, epsilon=eps)
    assert on_grid(p_t) and p_t < 10.0
    x1, xinf = sweep_vector(pop, target, 1), sweep_vector(pop, target, INF)
    grid = np.round(1 + 0.1 * np.arange(1, 90), 10)
    gap = []
    for p in grid:
        xp = sweep_vector(pop, target, p)
        gap.append(abs(pnorm(x1 - xp, p) - pnorm(xinf - xp, p)))
    gap = np.array(gap)
    j = int(np.flatnonzero(grid == p_t)[0])
    if gap[j] < eps:
        assert np.all(gap[:j] >= eps)
    else:
        assert np.all(gap >= eps) and j == int(np.argmin(gap))


def test_transition_p_grid_excludes_p_max() -> None:
    p_t = transition_p(evs("none"), target="W", p_max=1.3, epsilon=1e-12)
    assert p_t in (1.1, 1.2)


# ------------------------------------------------------------------ result object
def test_result_mirrors_the_agreement_solver_read_out() -> None:
    pop = evs("respondents")
    res = lp_consensus(pop, p=3)
    n, k, m = pop.X.shape
    assert res.X.shape == (1, k, m) and res.W.shape == (1, m)
    assert res.agreement_X.shape == (k, m) and res.agreement_W.shape == (m,)
    np.testing.assert_array_equal(res.labels, np.zeros(n, dtype=int))
    assert res.n_groups == 1 and res.group_sizes.tolist() == [n]
    np.testing.assert_array_equal(res.members(0), np.arange(n))
    assert res.agent_X.shape == (n, k, m) and res.agent_W.shape == (n, m)
    np.testing.assert_array_equal(res.agent_X[5], res.agreement_X)
    assert res.consensus.tolist() == [True] and res.residual.tolist() == [0.0]
    assert res.converged is True and res.n_iter == 0 and res.method == "lp:3"
    assert sparse.issparse(res.membership) and res.membership.format == "csr"
    assert res.membership.shape == (n, 1) and res.membership.dtype == bool
    assert res.membership.toarray().all()  # no bounds declared
    np.testing.assert_array_equal(res.weights, pop.weights)
    with pytest.raises(dataclasses.FrozenInstanceError):
        res.p = 2.0  # type: ignore[misc]
    from pluralguard.core.mechanism import Outcome
    from pluralguard.core.result import AgreementResult
    for name in ("labels", "X", "W", "consensus", "residual", "membership", "utilities",
                 "converged", "n_iter", "method", "utility", "n_groups", "group_sizes",
                 "agent_X", "agent_W", "members"):
        assert hasattr(res, name), name
    assert isinstance(res, Outcome)
    assert isinstance(solve_agreements_like(pop), AgreementResult)


@pytest.mark.parametrize("kind", ["quadratic", "linear"])
def test_utilities_and_membership_use_the_geometry(kind: str) -> None:
    pop = evs("none")
    res = lp_consensus(pop, p=1.5, utility=kind)
    np.testing.assert_allclose(
        res.utilities, utility(res.agreement_X, res.agreement_W, pop.X, pop.W, kind))
    assert res.utility == kind
    dx = np.sqrt(((pop.X - res.agreement_X) ** 2).sum(axis=(1, 2)))
    bounded = pop.with_bounds(np.median(dx), np.full(pop.n, np.inf))
    res_b = lp_consensus(bounded, p=1.5, utility=kind)
    got = res_b.membership.toarray().ravel()
    np.testing.assert_array_equal(got, accepts(res_b.agreement_X, res_b.agreement_W, pop.X,
                                               pop.W, bounded.gamma_x, bounded.gamma_w))
    assert 0 < got.sum() < pop.n
    np.testing.assert_array_equal(got, dx <= np.median(dx) + 1e-6)


def test_on_simplex_is_reported_not_forced() -> None:
    W = np.eye(3)
    X = np.zeros((3, 1, 3))
    pop = Population(X, W)
    res = lp_consensus(pop, p=1)
    np.testing.assert_array_equal(res.agreement_W, [0.0, 0.0, 0.0])  # not projected
    assert not res.on_simplex and "off the simplex" in res.message
    assert lp_consensus(pop, p=2).on_simplex
    assert not lp_consensus(pop, p=INF).on_simplex  # mid-range (0.5, 0.5, 0.5)
    for p in (1, 1.3, 2, 7, INF):
        assert lp_consensus(evs("population"), p=p).on_simplex  # m = 2


@pytest.mark.parametrize("given_p, value, label", [
    (INF, INF, "inf"), (np.inf, INF, "inf"), ("inf", INF, "inf"), ("2.5", 2.5, "2.5"),
    (np.float32(3.0), 3.0, "3"), (np.int64(1), 1.0, "1"), (2, 2.0, "2")])
def test_p_forms(given_p, value: float, label: str) -> None:
    res = lp_consensus(evs("none"), p=given_p)
    assert res.p == value and res.method == f"lp:{label}"


def test_to_dict_is_json_ready() -> None:
    pop = evs("none")
    for p in (1, 2.5, INF):
        res = lp_consensus(pop, p=p)
        d = json.loads(json.dumps(res.to_dict(), allow_nan=False))
        assert d["X"] == res.agreement_X.tolist() and d["W"] == res.agreement_W.tolist()
        assert d["U_p"] == {"X": res.U_p_X, "W": res.U_p_W}
        assert d["p"] == ("inf" if p == INF else p)
        assert d["on_simplex"] is True and d["n_groups"] == 1
        assert set(d["utilities"]) == set(pop.agents)
        assert d["utilities"]["ES"] == pytest.approx(res.utilities[pop.agents.index("ES")])
        assert (d["interval"]["X"] is None) == (p == 2.5)


# ------------------------------------------------------------------ bad input
@pytest.mark.parametrize("call, field", [
    (lambda pop: lp_consensus(pop, p=0.5), "p"),
    (lambda pop: lp_consensus(pop, p=float("nan")), "p"),
    (lambda pop: lp_consensus(pop, p="abc"), "p"),
    (lambda pop: lp_consensus(pop, p=None), "p"),
    (lambda pop: lp_consensus(pop, p=True), "p"),
    (lambda pop: lp_consensus(pop, p=-INF), "p"),
    (lambda pop: lp_consensus(pop, weights=np.ones(pop.n - 1)), "weights"),
    (lambda pop: lp_consensus(pop, weights=-np.ones(pop.n)), "weights"),
    (lambda pop: lp_consensus(pop, weights=np.r_[0.0, np.ones(pop.n - 1)]), "weights"),
    (lambda pop: lp_consensus(pop, weights=np.r_[np.nan, np.ones(pop.n - 1)]), "weights"),
    (lambda pop: lp_consensus(pop, weights="heavy"), "weights"),
    (lambda pop: lp_consensus(pop, utility="cubic"), "utility"),
    (lambda pop: lp_consensus(pop.X, p=2), "population"),
    (lambda pop: limit_p(pop, target="Z"), "target"),
    (lambda pop: limit_p(pop, epsilon=0.0), "epsilon"),
    (lambda pop: limit_p(pop, step=float("nan")), "step"),
    (lambda pop: limit_p(pop, step=1e-9), "step"),
    (lambda pop: limit_p(pop, p_max=1.05), "p_max"),
    (lambda pop: transition_p(pop, p_max=1.1), "p_max"),
    (lambda pop: transition_p(pop, weights=[1.0, 2.0]), "weights"),
])
def test_bad_input_names_the_field(call, field: str) -> None:
    with pytest.raises(InputError) as err:
        call(evs("none"))
    assert err.value.field == field
    assert str(err.value).startswith(f"{field}: ")


def solve_agreements_like(pop: Population):
    """The agreement solver's result on the same population (its read-out is the model)."""
    from pluralguard.core.solver import solve_agreements

    return solve_agreements(pop, "quantile:0.5")
