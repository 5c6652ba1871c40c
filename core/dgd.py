"""Projected decentralised gradient (``dgd``), the paper's message-passing method.

Nedić, Ozdaglar & Parrilo, *Constrained consensus and optimization in multi-agent
networks*, IEEE TAC 55(4), 2010, as the paper runs it: each agent mixes its
neighbours' estimates with symmetric doubly-stochastic Metropolis weights, steps along
∇u_i with a diminishing step η_t, and projects onto F_i. It converges sublinearly and
is exact only in the limit (its fixed points carry a bias that shrinks with η_t);
:func:`run_dgd` mixes several rounds per step to divide that bias. Robust neighbour
rules (``clip:τ``, ``trimmed:b``, ``median``) replace the plain mixing
(:class:`_Neighbourhood`). The problem on every group, the message hook and the
stopping rules are those of :mod:`~pluralguard.core.message_passing`, which holds the
exact methods (``dual``, ``nids``) and the vocabulary shared with them.
"""

from __future__ import annotations

import time

import numpy as np
from scipy import sparse

from .geometry import (
    project_ball_box,
    project_ball_simplex,
    project_box,
    project_simplex,
    scale_factors,
)
from .message_passing import (
    IterationState,
    MessageHook,
    PassingOutcome,
    degrees,
    laplacian,
    parse_mixing,
)


class _Neighbourhood:
    """Directed copies of the links, for per-link robust rules over joint vectors.

    Rules act on the difference d_ij = y_j − y_i of what i receives from j, in the
    scaled coordinates where ‖·‖ is the normalised distance δ:

    * ``clip:τ`` — self-centred clipping d ← d·min(1, τ/‖d‖) (He, Karimireddy &
      Jaggi, *Byzantine-robust decentralized learning via ClippedGossip*, 2022);
    * ``trimmed:b`` (dgd only) — each agent ignores its b most distant neighbours'
      messages (screening as in BRIDGE, Fang, Yang & Bajwa 2022);
    * ``median`` (dgd only) — each agent moves to the coordinate-wise median of its
      own and its neighbours' messages (BRIDGE-M).
    """

    def __init__(self, n: int, edges: np.ndarray, weight: np.ndarray, kind: str,
                 param: float) -> None:
        i, j = edges[:, 0], edges[:, 1]
        e = i.size
        dst = np.concatenate([i, j])  # receiver
        src = np.concatenate([j, i])  # sender
        order = np.lexsort((src, dst))
        self.dst, self.src = dst[order], src[order]
        self.w = np.concatenate([weight, weight])[order]
        self.n, self.kind, self.param = n, kind, param
        self.start = np.searchsorted(self.dst, np.arange(n + 1))
        # receiver incidence: (S v)_i = Σ over links into i
        self.S = sparse.csr_matrix((np.ones(2 * e), (self.dst, np.arange(2 * e))),
                                   shape=(n, 2 * e))

    def weighted_pull(self, y: np.ndarray) -> np.ndarray:
        """Σ_j w_ij ρ(y_j − y_i) per receiver i, with ρ the robust rule."""
        d = y[self.src] - y[self.dst]
        w = self.w
        if self.kind == "clip":
            norm = np.sqrt((d * d).sum(1))
            w = w * np.minimum(1.0, self.param / np.maximum(norm, 1e-300))
        elif self.kind == "trimmed" and self.param > 0:
            norm = np.sqrt((d * d).sum(1))
            order = np.lexsort((-norm, self.dst))  # per receiver, most distant first
            rank = np.empty(order.size, dtype=np.int64)
            rank[order] = np.arange(order.size) - self.start[self.dst[order]]
            w = np.where(rank < self.param, 0.0, w)
        return self.S @ (w[:, None] * d)

    def median(self, y: np.ndarray) -> np.ndarray:
        """Coordinate-wise median of each agent's own and its neighbours' messages."""
        deg = np.diff(self.start)
        width = int(deg.max(initial=0)) + 1
        pad = np.full((self.n, width, y.shape[1]), np.nan)
        pad[:, 0] = y
        slot = np.arange(self.dst.size) - self.start[self.dst] + 1
        pad[self.dst, slot] = y[self.src]
        return np.nanmedian(pad, axis=1)


def _joint(yx: np.ndarray, yw: np.ndarray) -> np.ndarray:
    return np.concatenate([yx, yw], axis=1)


class _Problem:
    """Arrays shared by both methods, in scaled coordinates y = (x/(√2 D_X), w/(√2 D_W)).

    In these coordinates δ(x, v)² = ‖y_X − ŷ_X‖² + ‖y_W − ŷ_W‖², so both blocks are
    isotropic and every projection is a scaled copy of the original one.
    """

    def __init__(self, X: np.ndarray, W: np.ndarray, gx: np.ndarray | None,
                 gw: np.ndarray | None, weights: np.ndarray, labels: np.ndarray,
                 utility: str) -> None:
        n, k, m = X.shape
        self.n, self.k, self.m = n, k, m
        self.sx, self.sw = scale_factors(k, m)
        self.cx = X.reshape(n, -1) * self.sx
        self.cw = W * self.sw
        self.rx = None if gx is None else gx * self.sx
        self.rw = None if gw is None else gw * self.sw
        self.labels = labels
        self.n_groups = int(labels.max()) + 1
        # weights normalised by their group mean keep steps scale-free
        mean_w = np.bincount(labels, weights) / np.bincount(labels)
        self.w = weights / mean_w[labels]
        self.utility = utility

    def project(self, yx: np.ndarray, yw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        sx, sw = self.sx, self.sw
        if self.rx is None:
            return project_box(yx / sx) * sx, project_simplex(yw / sw) * sw
        px = project_ball_box(yx / sx, self.cx / sx, self.rx / sx) * sx
        pw = project_ball_simplex(yw / sw, self.cw / sw, self.rw / sw) * sw
        return px, pw

    def unscale(self, yx: np.ndarray, yw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return (yx / self.sx).reshape(self.n, self.k, self.m), yw / self.sw

    def group_mean(self, yx: np.ndarray, yw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        counts = np.bincount(self.labels, minlength=self.n_groups)[:, None]
        mx = np.zeros((self.n_groups, yx.shape[1]))
        mw = np.zeros((self.n_groups, yw.shape[1]))
        np.add.at(mx, self.labels, yx)
        np.add.at(mw, self.labels, yw)
        return mx / counts, mw / counts

    def residual(self, yx: np.ndarray, yw: np.ndarray) -> tuple[np.ndarray, np.ndarray,
                                                               np.ndarray]:
        """Per-group max_i δ(x_i, x̄) and the group means."""
        mx, mw = self.group_mean(yx, yw)
        d2 = ((yx - mx[self.labels]) ** 2).sum(1) + ((yw - mw[self.labels]) ** 2).sum(1)
        res = np.zeros(self.n_groups)
        np.maximum.at(res, self.labels, np.sqrt(d2))
        return res, mx, mw


def _apply_hook(hook: MessageHook | None, problem: _Problem, t: int, yx: np.ndarray,
                yw: np.ndarray) -> None:
    if hook is None:
        return
    X, W = problem.unscale(yx, yw)
    X.setflags(write=False)
    W.setflags(write=False)
    replaced = hook(IterationState(t, problem.labels, X, W))
    for agent, (mx, mw) in (replaced or {}).items():
        yx[agent] = np.asarray(mx, dtype=float).ravel() * problem.sx
        yw[agent] = np.asarray(mw, dtype=float) * problem.sw


class _Monitor:
    """Per-group convergence and stall detection, evaluated every ``check_every`` steps."""

    def __init__(self, problem: _Problem, tol: float, stall_checks: int,
                 record_history: bool) -> None:
        self.p, self.tol, self.stall_checks = problem, tol, stall_checks
        g = problem.n_groups
        self.done = np.zeros(g, dtype=bool)
        self.stalled = np.zeros(g, dtype=bool)
        self.best = np.full(g, np.inf)
        self.since_best = np.zeros(g, dtype=int)
        self.pressure_at_best = np.zeros(g)
        self.prev_mx: np.ndarray | None = None
        self.prev_mw: np.ndarray | None = None
        self.history: list[dict] = []
        self.record = record_history

    def check(self, t: int, yx: np.ndarray, yw: np.ndarray,
              pressure: np.ndarray | None = None) -> np.ndarray:
        """Update flags; return the mask of agents still iterating.

        A group is stalled when its residual has not halved for ``stall_checks`` checks
        while its multipliers (``pressure``, per group max_i ‖ν_i‖) grew by over 20%:
        on an empty intersection the multipliers diverge, on a slow but feasible
        group they settle.
        """
        res, mx, mw = self.p.residual(yx, yw)
        moved = np.full(res.shape, np.inf)
        if self.prev_mx is not None:
            moved = np.sqrt(((mx - self.prev_mx) ** 2).sum(1) + ((mw - self.prev_mw) ** 2).sum(1))
        self.prev_mx, self.prev_mw = mx, mw
        active = ~(self.done | self.stalled)
        self.done |= active & (res <= self.tol) & (moved <= self.tol)
        improved = res < 0.5 * self.best
        self.best = np.where(improved, res, self.best)
        self.since_best = np.where(improved, 0, self.since_best + 1)
        growing = np.ones(res.shape, dtype=bool)
        if pressure is not None:
            growing = pressure > 1.2 * self.pressure_at_best
            self.pressure_at_best = np.where(improved, pressure, self.pressure_at_best)
        self.stalled |= active & ~self.done & growing & (self.since_best >= self.stall_checks)
        if self.record:
            X, W = self.p.unscale(yx, yw)
            self.history.append({"iteration": t, "residual": res.copy(), "X": X.copy(),
                                 "W": W.copy()})
        return ~(self.done | self.stalled)[self.p.labels]


def run_dgd(X: np.ndarray, W: np.ndarray, gx: np.ndarray | None, gw: np.ndarray | None,
            weights: np.ndarray, labels: np.ndarray, edges: np.ndarray, *, tol: float,
            max_iter: int, utility: str = "quadratic", step: float | None = None,
            check_every: int = 10, stall_checks: int = 10**9, decay: float = 1.0,
            tau: float = 4.0, rounds: int = 10, mixing: str | None = None,
            hook: MessageHook | None = None, record_history: bool = False) -> PassingOutcome:
    """Projected decentralised gradient with Metropolis mixing (module doc).

    Each iteration mixes ``rounds`` times before the gradient step (multi-round
    consensus, Berahas et al. 2018), which divides DGD's disagreement bias
    η_t·spread/(1 − σ₂) by roughly ``rounds`` on poorly connected groups. The step is
    η_t = η₀ τ / (τ + t)^decay; with decay = 1 the bias and the optimisation error
    both fall as O(1/t).
    """
    p = _Problem(X, W, gx, gw, weights, labels, utility)
    deg = degrees(p.n, edges)
    i, j = edges[:, 0], edges[:, 1]
    mix_w = 1.0 / (1.0 + np.maximum(deg[i], deg[j]))  # Metropolis–Hastings weights
    M = sparse.eye(p.n, format="csr") - laplacian(p.n, edges, mix_w)
    kind, param = parse_mixing(mixing)
    hood = _Neighbourhood(p.n, edges, mix_w, kind, param) if kind != "mean" else None
    dx = p.cx.shape[1]
    eta0 = 0.25 if step is None else step
    monitor = _Monitor(p, tol, stall_checks, record_history)
    active = np.ones(p.n, dtype=bool)
    yx, yw = p.project(p.cx, p.cw)
    t = 0
    clock = {"projection": 0.0, "mixing": 0.0}
    for t in range(1, max_iter + 1):
        _apply_hook(hook, p, t, yx, yw)
        c0 = time.perf_counter()
        gx_, gw_ = yx - p.cx, yw - p.cw
        if utility == "linear":  # ∇δ = (y − ŷ)/‖y − ŷ‖, zero at ŷ
            norm = np.sqrt((gx_**2).sum(1) + (gw_**2).sum(1))
            scale = np.where(norm > 1e-12, 1.0 / np.maximum(norm, 1e-12), 0.0)[:, None]
            gx_, gw_ = gx_ * scale, gw_ * scale
        eta = eta0 / (1.0 + t / tau) ** decay
        wcol = p.w[:, None]
        mx_, mw_ = yx, yw
        for _ in range(rounds):
            if hood is None:
                mx_, mw_ = M @ mx_, M @ mw_
            else:
                y = _joint(mx_, mw_)
                y = hood.median(y) if kind == "median" else y + hood.weighted_pull(y)
                mx_, mw_ = y[:, :dx], y[:, dx:]
        c1 = time.perf_counter()
        clock["mixing"] += c1 - c0
        yx_new, yw_new = p.project(mx_ - eta * wcol * gx_, mw_ - eta * wcol * gw_)
        clock["projection"] += time.perf_counter() - c1
        yx = np.where(active[:, None], yx_new, yx)
        yw = np.where(active[:, None], yw_new, yw)
        if t % check_every == 0:
            active = monitor.check(t, yx, yw)
            if not active.any():
                break
    Xo, Wo = p.unscale(yx, yw)
    return PassingOutcome(Xo, Wo, t, monitor.done, monitor.stalled, monitor.history, clock)

