"""Bound policies and pairwise-distance quantiles."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial.distance import pdist

from pluralguard.core import BoundPolicy, InputError, resolve_bounds
from pluralguard.core.bounds import pairwise_distance_quantile
from populations import clustered


@pytest.mark.parametrize("spec, kind", [("declared", "declared"), ("quantile:0.25", "quantile"),
                                        ("Quantile:1", "quantile"), ("fixed:0.5,inf", "fixed")])
def test_parse(spec, kind):
    assert BoundPolicy.parse(spec).kind == kind
    assert BoundPolicy.parse(str(BoundPolicy.parse(spec))) == BoundPolicy.parse(spec)


@pytest.mark.parametrize("spec", ["quantile:1.5", "quantile:-0.1", "fixed:1", "fixed:-1,2",
                                  "median", ""])
def test_bad_policies_name_bounds(spec):
    with pytest.raises(InputError) as err:
        BoundPolicy.parse(spec)
    assert err.value.field == "bounds"


@settings(max_examples=40, deadline=None)
@given(st.integers(2, 40), st.floats(0, 1), st.integers(0, 10**6), st.booleans())
def test_quantile_equals_numpy_over_all_pairs(n, q, seed, duplicates):
    rng = np.random.default_rng(seed)
    pts = rng.normal(size=(n, 3))
    if duplicates:  # survey-like data: few distinct rows
        pts = pts[rng.integers(0, max(1, n // 4), n)]
    assert pairwise_distance_quantile(pts, q) == pytest.approx(np.quantile(pdist(pts), q),
                                                               abs=1e-12)


def test_sampled_quantile_is_seeded_and_close():
    pts = np.random.default_rng(0).normal(size=(3000, 4))
    exact = np.quantile(pdist(pts), 0.5)
    a = pairwise_distance_quantile(pts, 0.5, max_exact_pairs=1000, sample_pairs=200_000)
    b = pairwise_distance_quantile(pts, 0.5, max_exact_pairs=1000, sample_pairs=200_000)
    assert a == b
    assert abs(a - exact) / exact < 0.01


def test_resolve_bounds():
    pop = clustered(20)
    gx, gw = resolve_bounds(pop, "quantile:1")
    assert np.allclose(gx, pdist(pop.X.reshape(20, -1)).max())
    assert np.allclose(gw, pdist(pop.W).max())
    gx, gw = resolve_bounds(pop, "fixed:0.3,0.1")
    assert (gx == 0.3).all() and (gw == 0.1).all()
    with pytest.raises(InputError, match="declares no bounds"):
        resolve_bounds(pop, "declared")
