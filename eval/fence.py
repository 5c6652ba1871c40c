"""The fence: under the agreement mechanism every agreement lies in its members'
acceptable sets, whatever the attack.

By the validity contract (DESIGN §3.4) the agreement a'_i that an honest agent i ends
with in the attacked run lies in its acceptable set F_i — within the acceptance
tolerance τ = 1e-6 on each norm — and an agent left alone gets its own point, which lies
there too. An honest agent declares its truth, so F_i is centred at v_i = (X_i, W_i)
whatever the attackers declare; the attack moves only its radii, the bounds in force
γ_i, and :class:`~pluralguard.eval.reach.Reach` bounds them, γ_i ≤ Γ_i. So, with
S = [−1, 1]^{k×m} × Δ^m:

* **farthest point** (:func:`farthest`). F_i is a product, and in a convex set
  containing the centre c the largest distance to c within a ball of radius ρ is
  min(ρ, R) — the ray from c to the farthest point of the set, at distance R, stays in
  it. The farthest point of the box from X_i is the opposite corner,
  Rˣ_i = ‖1 + |X_i|‖_F; of the simplex from W_i a vertex,
  Rʷ_i = max_j ‖e_j − W_i‖ = √(‖W_i‖² + 1 − 2 min_j W_ij). Hence
  δ(a'_i, v_i)² ≤ ½ (min(Γˣ_i + τ, Rˣ_i)² / D_X² + min(Γʷ_i + τ, Rʷ_i)² / D_W²), and
  u_i(a'_i) is at least 1 minus that (or minus its root, for the linear utility).
* **nearest point to a target t** (:func:`nearest`). Per part the ball of radius Γ + τ
  around the centre contains F_i's part, so its distance to t is at least
  max(‖t − c‖ − Γ − τ, 0) — exactly that when t ∈ S, since the nearest point of the
  ball then lies on the segment from c to t, inside S.

With message passing (``dual``, ``dgd``, ``nids``) every honest estimate is projected
onto its own F_i and the agreement is the members' mean, within the consensus residual
(≤ the solver's tolerance, in δ) of each estimate once the group has converged: the
tolerance is added to the farthest distance and taken off the nearest. Certificates
then hold for runs that converge; the ``non_convergence`` sanity flag names the rest.
"""

from __future__ import annotations

import numpy as np

from pluralguard.core.geometry import ACCEPT_TOL, distance_from_squares
from pluralguard.core.model import Population

#: Rounding padding of every distance reported.
PAD = 1e-12


def _radii(truth: Population, agents: np.ndarray, bounds: tuple[np.ndarray, np.ndarray] | None
           ) -> tuple[np.ndarray, np.ndarray]:
    """The radii Γ + τ of the agents' acceptable sets (∞ where nothing is proved)."""
    if bounds is None:
        return np.full(agents.size, np.inf), np.full(agents.size, np.inf)
    return bounds[0][agents] + ACCEPT_TOL, bounds[1][agents] + ACCEPT_TOL


def farthest(truth: Population, agents: np.ndarray,
             bounds: tuple[np.ndarray, np.ndarray] | None, slack: float = 0.0) -> np.ndarray:
    """Upper bound on δ(a'_i, v_i) for each of ``agents`` (module doc).

    Parameters
    ----------
    truth : Population
        True value systems (the honest agents' declarations).
    agents : ndarray of int
        Honest agents.
    bounds : (ndarray, ndarray) or None
        Upper bounds Γ on the bounds in force, per agent; None: unbounded (the
        acceptable set is then all of S).
    slack : float
        Consensus tolerance of a message-passing method, in δ.
    """
    k, m = truth.k, truth.m
    gx, gw = _radii(truth, agents, bounds)
    X = truth.X[agents].reshape(agents.size, -1)
    W = truth.W[agents]
    rx = np.sqrt(((1.0 + np.abs(X)) ** 2).sum(axis=1))
    rw = np.sqrt(np.maximum((W ** 2).sum(axis=1) + 1.0 - 2.0 * W.min(axis=1), 0.0))
    return distance_from_squares(np.minimum(gx, rx) ** 2, np.minimum(gw, rw) ** 2, k, m) \
        + slack + PAD


def nearest(truth: Population, agents: np.ndarray,
            bounds: tuple[np.ndarray, np.ndarray] | None,
            point: tuple[np.ndarray, np.ndarray], slack: float = 0.0) -> np.ndarray:
    """Lower bound on δ(a'_i, t) for each of ``agents`` and the point t (module doc)."""
    k, m = truth.k, truth.m
    gx, gw = _radii(truth, agents, bounds)
    tX, tW = np.asarray(point[0], float).ravel(), np.asarray(point[1], float)
    dx = np.linalg.norm(truth.X[agents].reshape(agents.size, -1) - tX, axis=1)
    dw = np.linalg.norm(truth.W[agents] - tW, axis=1)
    ex = np.maximum(dx - gx, 0.0)
    ew = np.maximum(dw - gw, 0.0)
    d = distance_from_squares(ex ** 2, ew ** 2, k, m)
    return np.maximum(d - slack - PAD, 0.0)
