"""Small seeded test populations, and where the test fixtures live.

Two kinds of fixtures (see ``tests/data/README.md``):

* shipped with the tests, under ``tests/data/`` (:data:`TEST_DATA`): reference outputs
  computed for this project, which may be redistributed;
* read in place from a folder laid out like the project's shared data folder, named by
  the environment variable :data:`SHARED_DATA_VAR` (ESS-8 tables, CC BY-NC-SA, which
  may not be redistributed). :func:`shared_file` skips the calling test with a
  one-line reason naming that variable when it is unset or the file is not there, and
  fails it instead when :data:`REQUIRE_DATA_VAR` is ``1`` (CI sets it, so nothing is
  skipped silently there).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from pluralguard.core import Population

#: Fixtures shipped with the tests.
TEST_DATA = Path(__file__).resolve().parent / "data"
#: Environment variable naming the shared data folder (laid out like tests/data/README.md says).
SHARED_DATA_VAR = "PLURALGUARD_SHARED_DATA"
#: Environment variable that turns a missing shared fixture from a skip into a failure.
REQUIRE_DATA_VAR = "PLURALGUARD_REQUIRE_DATA"


def shared_file(relative: str) -> Path:
    """The file ``relative`` of the folder named by ``$PLURALGUARD_SHARED_DATA``.

    Skips the calling test (one-line reason naming the variable) when the variable is
    unset or the folder does not hold the file; fails it instead when
    ``$PLURALGUARD_REQUIRE_DATA`` is ``1``.
    """
    folder = os.environ.get(SHARED_DATA_VAR, "")
    if folder and (Path(folder) / relative).is_file():
        return Path(folder) / relative
    why = "is unset" if not folder else f"names {folder}, which does not hold it"
    reason = f"needs shared fixture {relative}: ${SHARED_DATA_VAR} {why}"
    if os.environ.get(REQUIRE_DATA_VAR) == "1":
        pytest.fail(f"{reason} (and ${REQUIRE_DATA_VAR}=1)", pytrace=False)
    pytest.skip(reason)


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


def bounded(n: int = 30, seed: int = 3, q: float = 0.3) -> Population:
    """A clustered population with declared bounds around the q-quantile distance."""
    pop = clustered(n=n, seed=seed)
    flat = pop.X.reshape(n, -1)
    i, j = np.triu_indices(n, 1)
    gx = np.quantile(np.linalg.norm(flat[i] - flat[j], axis=1), q)
    gw = np.quantile(np.linalg.norm(pop.W[i] - pop.W[j], axis=1), q)
    rng = np.random.default_rng(seed)
    return pop.with_bounds(gx * rng.uniform(0.6, 1.4, n), gw * rng.uniform(0.6, 1.4, n))
