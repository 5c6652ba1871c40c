"""The linear utility's certified geometric median against an independent optimiser.

``median_agreement`` claims a KKT point of min Σ w_i δ(x, v_i) over the box, the simplex
and every member's balls — the optimum of a convex problem. SciPy's SLSQP, started from
that point and from the weighted mean, must find no feasible point that is better.
"""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import minimize

from pluralguard.core.geometry import utility
from pluralguard.core.median import OPTIMAL, median_agreement
from pluralguard.core.projection import INFEASIBLE


def group(seed: int, p: int, k: int, m: int, tight: float):
    rng = np.random.default_rng(seed)
    X = rng.uniform(-1, 1, (p, k, m))
    W = rng.dirichlet(np.ones(m), p)
    weights = rng.integers(1, 4, p).astype(float)
    gamma_x = rng.uniform(tight, 2.5 * tight + 1.0, p) * np.sqrt(k * m)
    gamma_w = rng.uniform(tight, 2.5 * tight + 1.0, p) * 0.6
    return X, W, weights, gamma_x, gamma_w


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(3, 12), st.integers(1, 2), st.integers(2, 3),
       st.sampled_from([0.3, 0.6, 1.0]))
def test_no_feasible_point_beats_the_certified_median(seed, p, k, m, tight):
    X, W, weights, gamma_x, gamma_w = group(seed, p, k, m, tight)
    found = median_agreement(X, W, weights, gamma_x, gamma_w)
    dX = k * m

    def loss(z: np.ndarray) -> float:
        return float(weights @ (1 - utility(z[:dX].reshape(k, m), z[dX:], X, W, "linear")))

    def slack(z: np.ndarray) -> np.ndarray:
        gx = gamma_x - np.linalg.norm(z[:dX] - X.reshape(p, dX), axis=1)
        gw = gamma_w - np.linalg.norm(z[dX:] - W, axis=1)
        return np.concatenate([gx, gw, z[dX:]])

    bounds = [(-1, 1)] * dX + [(0, 1)] * m
    def feasible(z: np.ndarray) -> bool:
        """z lies in the box, on the simplex and in every ball (to 1e-9)."""
        return bool(np.all(slack(z) >= -1e-9) and abs(z[dX:].sum() - 1) < 1e-9
                    and np.all(np.abs(z[:dX]) <= 1 + 1e-12))

    if found.status == INFEASIBLE:  # min t such that every ball holds within t
        start = np.concatenate([X.reshape(p, dX).mean(axis=0), W.mean(axis=0), [3.0]])
        least = minimize(lambda z: z[-1], start, method="SLSQP", bounds=[*bounds, (None, None)],
                         constraints=[{"type": "ineq", "fun": lambda z: slack(z[:-1]) + z[-1]},
                                      {"type": "eq", "fun": lambda z: z[dX:-1].sum() - 1.0}],
                         options={"maxiter": 500, "ftol": 1e-12})
        # SLSQP may stop early; whatever it returns must not be a common point
        assert not feasible(np.clip(least.x[:-1], [b[0] for b in bounds],
                                    [b[1] for b in bounds]))
    if found.status != OPTIMAL:
        return

    z_star = np.concatenate([found.X.ravel(), found.W])
    assert np.all(np.abs(found.X) <= 1) and abs(found.W.sum() - 1) < 1e-12
    assert np.all(slack(z_star) >= -1e-9)
    f_star = loss(z_star)
    constraints = [{"type": "ineq", "fun": slack},
                   {"type": "eq", "fun": lambda z: z[dX:].sum() - 1.0}]
    mean = np.concatenate([(weights @ X.reshape(p, dX)) / weights.sum(),
                           weights @ W / weights.sum()])
    for start in (z_star + 1e-3, mean):
        other = minimize(loss, start, method="SLSQP", bounds=bounds,
                         constraints=constraints, options={"maxiter": 300, "ftol": 1e-12})
        if feasible(other.x):
            assert f_star <= loss(other.x) + 1e-8 * weights.sum()


def test_most_groups_are_certified():
    """The certificate is the point of the method: on random bounded groups it decides
    (optimal or infeasible) far more often than it hands over to the conic solver."""
    decided = sum(median_agreement(*group(seed, 8, 1, 3, 0.6)).status != "undecided"
                  for seed in range(40))
    assert decided >= 36
