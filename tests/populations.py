"""Small seeded test populations."""

from __future__ import annotations

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
