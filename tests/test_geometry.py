"""Distances, utilities and projections onto acceptable sets."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from pluralguard.core import InputError
from pluralguard.core.geometry import (
    normalised_distance,
    project_ball_box,
    project_ball_simplex,
    project_box,
    project_simplex,
    sq_dist_w,
    utility,
)

finite = st.floats(-3, 3, allow_nan=False)


def bisection_reference(Y, C, g, base, iterations=200):
    """Slow, obviously correct projection onto {x in S: |x - c| <= g} (bisection on t)."""
    inside = sq_dist_w(base(Y), C) <= g * g
    lo, hi = np.zeros(len(Y)), np.ones(len(Y))
    for _ in range(iterations):
        t = (lo + hi) / 2
        ok = sq_dist_w(base(Y + t[:, None] * (C - Y)), C) <= g * g
        hi, lo = np.where(ok, t, hi), np.where(ok, lo, t)
    out = base(Y + hi[:, None] * (C - Y))
    out[inside] = base(Y)[inside]
    return out


def test_distance_extremes():
    k, m = 2, 3
    X0, X1 = np.full((k, m), -1.0), np.full((k, m), 1.0)
    W0, W1 = np.eye(m)[0], np.eye(m)[1]
    assert normalised_distance(X0, W0, X0, W0) == 0.0
    assert normalised_distance(X0, W0, X1, W1) == pytest.approx(1.0)
    assert utility(X0, W0, X1, W1, "quadratic") == pytest.approx(0.0)
    assert utility(X0, W0, X0, W0, "linear") == pytest.approx(1.0)


def test_linear_and_quadratic_utilities_relate():
    rng = np.random.default_rng(0)
    X, Y = rng.uniform(-1, 1, (2, 5, 3, 2))
    W, V = rng.dirichlet(np.ones(2), (2, 5))
    d = normalised_distance(X, W, Y, V)
    assert np.allclose(utility(X, W, Y, V, "quadratic"), 1 - d**2)
    assert np.allclose(utility(X, W, Y, V, "linear"), 1 - d)
    assert (d >= 0).all() and (d <= 1).all()


def test_unknown_utility_names_the_field():
    with pytest.raises(InputError, match="utility"):
        utility(np.zeros((1, 1)), np.ones(1), np.zeros((1, 1)), np.ones(1), "cubic")


@settings(max_examples=60, deadline=None)
@given(arrays(float, (6, 4), elements=finite))
def test_simplex_projection_is_the_nearest_simplex_point(Y):
    P = project_simplex(Y)
    assert np.allclose(P.sum(1), 1) and (P >= 0).all()
    rng = np.random.default_rng(0)
    others = rng.dirichlet(np.ones(4), 200)
    for y, p in zip(Y, P, strict=True):
        assert ((others - y) ** 2).sum(1).min() >= ((p - y) ** 2).sum() - 1e-12


@settings(max_examples=60, deadline=None)
@given(arrays(float, (8, 5), elements=finite), st.integers(0, 2**31 - 1))
def test_ball_box_projection_matches_bisection(Y, seed):
    rng = np.random.default_rng(seed)
    C = rng.uniform(-1, 1, Y.shape)
    g = rng.uniform(0, 2, len(Y))
    P = project_ball_box(Y, C, g)
    assert np.abs(P - bisection_reference(Y, C, g, project_box)).max() < 1e-10
    assert (np.sqrt(sq_dist_w(P, C)) <= g + 1e-12).all()
    assert (np.abs(P) <= 1).all()


@settings(max_examples=60, deadline=None)
@given(arrays(float, (8, 4), elements=finite), st.integers(0, 2**31 - 1))
def test_ball_simplex_projection_matches_bisection(Y, seed):
    rng = np.random.default_rng(seed)
    C = rng.dirichlet(np.ones(4), len(Y))
    g = rng.uniform(0, 0.8, len(Y))
    P = project_ball_simplex(Y, C, g)
    assert np.abs(P - bisection_reference(Y, C, g, project_simplex)).max() < 1e-10
    assert np.allclose(P.sum(1), 1) and (P >= 0).all()


def test_projection_with_zero_bound_returns_the_centre():
    rng = np.random.default_rng(1)
    C = rng.uniform(-1, 1, (5, 3))
    assert np.allclose(project_ball_box(rng.normal(size=(5, 3)), C, np.zeros(5)), C)
