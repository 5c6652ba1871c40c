"""The dual projection onto an intersection of balls, against the conic solver."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pluralguard.core import kernels
from pluralguard.core.convex import solve_group
from pluralguard.core.geometry import project_box, project_simplex
from pluralguard.core.projection import FEASIBLE, INFEASIBLE, project_intersection


@pytest.fixture(autouse=True, params=["compiled", "numpy"])
def path(request, monkeypatch):
    """Every test on both implementations: the compiled kernel and the numpy one."""
    if request.param == "numpy":
        monkeypatch.setattr(kernels, "COMPILED", False)
    elif not kernels.COMPILED:
        pytest.skip("compiled kernels are off (numba not installed, or PLURALGUARD_PURE=1)")
    return request.param


def random_group(seed: int, p: int, spread: float, radius: float):
    rng = np.random.default_rng(seed)
    k, m = 2, 4
    X = np.clip(rng.uniform(-0.6, 0.6, (k, m)) + rng.normal(0, spread, (p, k, m)), -1, 1)
    cw = rng.dirichlet(np.ones(m))
    W = project_simplex(cw + rng.normal(0, spread / 3, (p, m)))
    gx = rng.uniform(0.5, 1.5, p) * radius
    gw = rng.uniform(0.5, 1.5, p) * radius / 4
    return X, W, gx, gw


@settings(max_examples=80, deadline=None)
@given(st.integers(0, 2**31), st.integers(2, 30), st.floats(0.1, 0.6), st.floats(0.3, 2.5))
def test_decisions_and_points_match_the_conic_solver(seed, p, spread, radius):
    X, W, gx, gw = random_group(seed, p, spread, radius)
    Xf = X.reshape(p, -1)
    px = project_intersection(Xf.mean(0), Xf, gx, project_box, tol=1e-9)
    pw = project_intersection(W.mean(0), W, gw, project_simplex, tol=1e-9)
    ref = solve_group(X, W, np.ones(p), gx, gw)
    ours_feasible = px.status == FEASIBLE and pw.status == FEASIBLE
    assert INFEASIBLE in (px.status, pw.status) or ours_feasible  # never undecided here
    assert ours_feasible == ref.feasible
    if ref.feasible:
        assert np.abs(px.x - ref.X.ravel()).max() < 1e-7
        assert np.abs(pw.x - ref.W).max() < 1e-7


def test_known_projection_onto_two_balls():
    # two unit-radius balls whose lens is crossed by the segment from c: the
    # projection of c lies on the nearer ball's sphere, on the line through its centre
    a = np.array([[0.0, 0.0], [0.8, 0.0]])
    c = np.array([-0.9, 0.0])
    r = np.array([0.5, 0.5])
    out = project_intersection(c, a, r, project_box)
    assert out.status == FEASIBLE
    assert np.allclose(out.x, [0.3, 0.0], atol=1e-12)


def test_disjoint_balls_are_certified_infeasible():
    a = np.array([[0.0, 0.0], [0.9, 0.0]])
    out = project_intersection(np.zeros(2), a, np.array([0.4, 0.4]), project_box)
    assert out.status == INFEASIBLE


@pytest.mark.parametrize("project", [project_box, project_simplex])
def test_unbounded_and_inside_cases_return_the_projection_of_c(project):
    c = np.array([0.2, 0.3, 0.5])
    a = np.array([[0.25, 0.25, 0.5]])
    assert np.allclose(project_intersection(c, a, np.array([np.inf]), project).x, project(c))
    assert np.allclose(project_intersection(c, a, np.array([1.0]), project).x, project(c))


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**31), st.integers(2, 25), st.floats(0.8, 2.5))
def test_far_targets_onto_a_feasible_region(seed, p, radius):
    # a corner of the box and a vertex of the simplex: S's projection clips every
    # coordinate, where the dual is locally linear (a regression: steps overflowed)
    X, W, gx, gw = random_group(seed, p, 0.2, radius)
    Xf = X.reshape(p, -1)
    ref = solve_group(X, W, np.ones(p), gx, gw)
    if not ref.feasible:
        return
    cx, cw = np.ones(Xf.shape[1]), np.eye(W.shape[1])[0]
    px = project_intersection(cx, Xf, gx, project_box, tol=1e-9)
    pw = project_intersection(cw, W, gw, project_simplex, tol=1e-9)
    assert px.status == pw.status == FEASIBLE
    # the projection is the region's point nearest the target, so it is at least as
    # near as the group's optimum (another point of the region)
    assert np.linalg.norm(px.x - cx) <= np.linalg.norm(ref.X.ravel() - cx) + 1e-9
    assert np.linalg.norm(pw.x - cw) <= np.linalg.norm(ref.W - cw) + 1e-9


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**31), st.integers(2, 30), st.floats(0.2, 0.6), st.floats(0.3, 2.0))
def test_a_warm_start_lands_on_the_same_projection(seed, p, spread, radius):
    X, _, gx, _ = random_group(seed, p, spread, radius)
    Xf = X.reshape(p, -1)
    cold = project_intersection(Xf.mean(0), Xf, gx, project_box, tol=1e-9)
    if cold.status != FEASIBLE:
        return
    # from the multipliers of slightly wider balls, as the link rule's check does
    wide = project_intersection(Xf.mean(0), Xf, gx * 1.01, project_box, tol=1e-9)
    warm = project_intersection(Xf.mean(0), Xf, gx, project_box, tol=1e-9,
                                warm=wide.multipliers)
    assert warm.status == FEASIBLE
    assert np.abs(warm.x - cold.x).max() < 1e-8


def test_an_infeasible_answer_carries_its_certificate():
    a = np.array([[0.0, 0.0], [0.9, 0.0], [0.45, 0.6]])
    r = np.array([0.5, 0.5, 0.2])
    c = a.mean(axis=0)
    out = project_intersection(c, a, r, project_box)
    assert out.status == INFEASIBLE
    lam = out.multipliers
    assert (lam > 0).any()
    # weak duality: the dual value at λ exceeds ½ min_i (‖c − a_i‖ + r_i)²
    x = project_box((c + lam @ a) / (1 + lam.sum()))
    value = 0.5 * ((x - c) ** 2).sum() + lam @ (0.5 * (((x - a) ** 2).sum(axis=1) - r**2))
    assert value > 0.5 * (np.sqrt(((a - c) ** 2).sum(axis=1)) + r).min() ** 2
