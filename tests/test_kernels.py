"""Compiled kernels against the numpy functions they replace (numba installed)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pluralguard.core import kernels, passing_kernel
from pluralguard.core.geometry import project_ball_box, project_ball_simplex, project_simplex
from pluralguard.core.solver import acceptance_matrix

pytestmark = pytest.mark.skipif(
    not kernels.COMPILED,
    reason="compiled kernels are off (numba not installed, or PLURALGUARD_PURE=1)")


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 2**31), st.integers(1, 35), st.floats(0.0, 3.0), st.floats(0.1, 4.0))
def test_ball_box_projection_matches_geometry(seed, d, radius, scale):
    rng = np.random.default_rng(seed)
    c = rng.uniform(-1, 1, d)
    c[rng.random(d) < 0.2] = 1.0  # centres on the box's faces too
    y = c + rng.normal(0, scale, d)
    out, hit, order = np.empty(d), np.empty(d), np.empty(d, dtype=np.int64)
    passing_kernel.ball_box(y, c, radius, out, hit, order)
    assert np.abs(out - project_ball_box(y[None], c[None], radius)[0]).max() < 1e-12


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 2**31), st.integers(2, 8), st.floats(1e-6, 1.5), st.floats(0.05, 3.0))
def test_ball_simplex_projection_matches_geometry(seed, d, radius, scale):
    # (both stop when ‖x − c‖² is within 1e-13 of r²: below r ~ 1e-6 that absolute
    # stopping rule, not the method, sets where they land)
    rng = np.random.default_rng(seed)
    c = rng.dirichlet(np.ones(d) * rng.uniform(0.2, 3))
    y = c + rng.normal(0, scale, d)
    out, work, trial = np.empty(d), np.empty(d), np.empty(d)
    support = np.empty(d, dtype=bool)
    passing_kernel.ball_simplex(y, c, radius, out, work, trial, support)
    assert np.abs(out - project_ball_simplex(y[None], c[None], radius)[0]).max() < 1e-10
    assert abs(out.sum() - 1) < 1e-12 and (out >= 0).all()
    plain = np.empty(d)
    passing_kernel.simplex_into(y, plain, work)
    assert np.abs(plain - project_simplex(y)).max() < 1e-12


@pytest.mark.parametrize("agents, agreements", [(300, 40), (3000, 2000)])
def test_memberships_are_the_same_on_every_path(monkeypatch, agents, agreements):
    """The compiled loop, the k-d tree (many pairs) and the numpy blocks agree."""
    from pluralguard.core import solver

    rng = np.random.default_rng(agents)
    X, W = rng.uniform(-1, 1, (agents, 2, 3)), rng.dirichlet(np.ones(3), agents)
    gx, gw = rng.uniform(0.5, 2, agents), rng.uniform(0.1, 0.5, agents)
    gx[3] = gw[3] = np.inf  # accepts everything
    AX, AW = rng.uniform(-1, 1, (agreements, 2, 3)), rng.dirichlet(np.ones(3), agreements)
    first = acceptance_matrix(X, W, gx, gw, AX, AW)
    monkeypatch.setattr(solver, "TREE_PAIRS", 1 << 40)
    compiled = acceptance_matrix(X, W, gx, gw, AX, AW)
    monkeypatch.setattr(kernels, "COMPILED", False)
    plain = acceptance_matrix(X, W, gx, gw, AX, AW)
    assert (first != compiled).nnz == 0 and (compiled != plain).nnz == 0
    assert first[3].nnz == agreements and 0 < first.nnz < agents * agreements
