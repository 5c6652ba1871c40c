"""Small seeded test populations, and where the shared fixtures live."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from pluralguard.core import Population


def clustered(n: int = 60, k: int = 2, m: int = 3, centers: int = 3, spread: float = 0.2,
              seed: int = 0, weights: bool = False) -> Population:
    """Gaussian clusters in X (clipped to [-1, 1]) and Dirichlet clusters in W."""
    rng = np.random.default_rng(seed)
    cx = rng.uniform(-0.7, 0.7, (centers, k, m))
    cw = rng.dirichlet(np.ones(m), centers)
    lab = rng.integers(0, centers, n)
    X = np.clip(cx[lab] + rng.normal(0, spread, (n, k, m)), -1, 1)
    W = np.stack([rng.dirichlet(40 * cw[c] + 0.5) for c in lab])
    w = rng.uniform(0.5, 3.0, n) if weights else None
    return Population(X, W, weights=w, name=f"clustered{seed}")


def _shared_data() -> Path:
    """../shared/data next to the checkout, or $PLURALGUARD_SHARED_DATA."""
    candidates = [os.environ.get("PLURALGUARD_SHARED_DATA", ""),
                  Path(__file__).resolve().parents[1].parent / "shared" / "data",
                  "/work/shared/data"]
    for c in candidates:
        if c and Path(c).is_dir():
            return Path(c)
    return Path(candidates[1])


SHARED_DATA = _shared_data()


def bounded(n: int = 30, seed: int = 3, q: float = 0.3) -> Population:
    """A clustered population with declared bounds around the q-quantile distance."""
    pop = clustered(n=n, seed=seed)
    flat = pop.X.reshape(n, -1)
    i, j = np.triu_indices(n, 1)
    gx = np.quantile(np.linalg.norm(flat[i] - flat[j], axis=1), q)
    gw = np.quantile(np.linalg.norm(pop.W[i] - pop.W[j], axis=1), q)
    rng = np.random.default_rng(seed)
    return pop.with_bounds(gx * rng.uniform(0.6, 1.4, n), gw * rng.uniform(0.6, 1.4, n))
