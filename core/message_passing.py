"""Decentralised optimisation within groups by message passing (DESIGN §3.2).

Every method solves, on every group C with communication graph G_C,

    min_{x_i ∈ F_i} Σ_{i∈C} f_i(x_i)  s.t.  x_i = x_j for (i, j) ∈ G_C,

with f_i = −w_i u_i. Agents talk to graph neighbours only; all groups are simulated
at once with one block-diagonal sparse matrix, so nothing loops over agents or
edges in Python.

``dual`` — projected dual gradient (dual decomposition; Bertsekas & Tsitsiklis 1989,
the mechanism's seed description). Multipliers λ_ij price the edge constraints;
each agent answers x_i = argmin_{x∈F_i} f_i(x) + ⟨μ_i, x⟩ with μ_i = Σ_j ±λ_ij, which
for the quadratic utility is the projection Π_{F_i}(v_i − D²μ_i / w_i); then
λ_ij += α_ij (x_i − x_j). Only the running sum μ_i is stored (identical iterates,
one vector per agent instead of one per edge): μ += L_α x with L_α the
α-weighted Laplacian, α_ij ∝ 1/((D²/w_i + D²/w_j) max(d_i, d_j)) scaled per group by
the exact largest eigenvalue of the dual Hessian bound, so the ascent converges.

``nids`` — NIDS (Li, Shi & Yan 2019), an exact decentralised proximal-gradient method
with constant, uncoordinated steps: its fixed points are the group optima (see
:func:`run_nids`).

``dgd`` — projected decentralised gradient (Nedić, Ozdaglar & Parrilo 2010), as the
paper runs it, lives in :mod:`~pluralguard.core.dgd`: it shares this module's
vocabulary (the hook's :class:`IterationState`, :class:`PassingOutcome`, the
Laplacian and the mixing rules) but none of the exact methods' machinery.

``dual`` and ``nids`` treat the X part and the W part of the value system as the
two independent problems they are (:class:`_Block`).

A *message hook* lets an outside caller observe the state each iteration and
replace chosen agents' messages (protocol deviation). Groups stop individually when
their consensus residual max_i δ(x_i, x̄_C) falls below ``tol`` and x̄_C stops moving;
a group whose residual stops shrinking while its multipliers keep growing is
*stalled* (its members' sets have no common point, or someone deviates) and is
reported as not having reached consensus — never silently averaged.

*Where they start.* From their real start every agent answers its own declaration
(ν = 0). On a group where a few members' bounds bind, the dual is ill-conditioned:
the binding members' multipliers must carry the whole group's pull, which reaches
them through the links at a rate of their degree over the group's size (without
bounds, the groups of ``pve_like`` at Q2 settle in ~200 iterations; with one binding
ball, ~1,200). A solve without a hook (honest agents) may instead start at the fixed
point itself, built from the fast path's optimum and the multipliers of its binding
balls (:func:`warm_start`): message passing then only confirms it — the monitor takes
the start as its first reference and checks after the first iteration too, so a
group already at its fixed point is done after one iteration. A protocol attack (a
hook) always faces the protocol from its real start.

The iterations of ``dual`` and ``nids`` run as compiled kernels when numba is
installed (:mod:`~pluralguard.core.passing_kernel`); the numpy loop below is the
same recursion.

It is one piece above ~500 lines because ``dual`` and ``nids`` are one recursion with
two step rules: they share the scaled blocks (:class:`_Block`), the mixing matrix and
its clipped variant, the per-group monitor, the hook, the warm start and the compiled
loop, and a change to any of them must reach both methods at once. ``dgd``, which
shares none of that machinery, is :mod:`~pluralguard.core.dgd`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np
from scipy import sparse
from scipy.sparse.linalg import eigsh

from . import kernels
from . import passing_kernel as pk
from .geometry import (
    normalised_sq_distance,
    project_ball_box,
    project_ball_simplex,
    project_box,
    project_simplex,
    scale_factors,
)
from .memo import BoundedMemo, content_key


@dataclass(frozen=True)
class IterationState:
    """What a message hook sees at one iteration.

    Attributes
    ----------
    iteration : int
    labels : ndarray, shape (n,)
        Group of each agent.
    X : ndarray, shape (n, k, m)
        Current estimates (read-only), before any replacement.
    W : ndarray, shape (n, m)
    """

    iteration: int
    labels: np.ndarray
    X: np.ndarray
    W: np.ndarray


#: A hook returns ``{agent index: (X message, W message)}`` or ``None``.
MessageHook = Callable[[IterationState], Mapping[int, tuple[np.ndarray, np.ndarray]] | None]


@dataclass
class PassingOutcome:
    """Final state of a message-passing run."""

    X: np.ndarray
    W: np.ndarray
    n_iter: int
    group_done: np.ndarray
    group_stalled: np.ndarray
    history: list[dict] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)


def laplacian(n: int, edges: np.ndarray, edge_weight: np.ndarray) -> sparse.csr_matrix:
    """L = D − A of the links ``edges`` (pairs) weighted by ``edge_weight``, n × n."""
    i, j = edges[:, 0], edges[:, 1]
    adj = sparse.coo_matrix((np.concatenate([edge_weight, edge_weight]),
                             (np.concatenate([i, j]), np.concatenate([j, i]))), shape=(n, n))
    adj = adj.tocsr()
    return (sparse.diags(np.asarray(adj.sum(axis=1)).ravel()) - adj).tocsr()


def degrees(n: int, edges: np.ndarray) -> np.ndarray:
    """Number of links at each of the n agents."""
    return np.bincount(edges.ravel(), minlength=n).astype(float)


MIXINGS = ("mean", "clip", "trimmed", "median")


def parse_mixing(spec: str | None) -> tuple[str, float]:
    """Parse a neighbour-aggregation rule: ``mean`` (default), ``clip:τ``,
    ``trimmed:b`` or ``median``."""
    from .errors import InputError

    fix = "use 'mean', 'clip:TAU' (TAU > 0), 'trimmed:B' (B >= 0 an integer) or 'median'"
    if spec is None or spec == "mean":
        return "mean", 0.0
    kind, _, arg = str(spec).partition(":")
    try:
        value = float(arg) if arg else 0.0
    except ValueError:
        raise InputError("mixing", f"cannot parse {spec!r}", fix) from None
    if kind == "clip" and value > 0:
        return kind, value
    if kind == "trimmed" and value >= 0 and value == int(value):
        return kind, value
    if kind == "median" and not arg:
        return kind, 0.0
    raise InputError("mixing", f"cannot parse {spec!r}", fix)


def _apply_hook_blocks(hook: MessageHook | None, blocks: list, k: int, m: int, t: int,
                       labels: np.ndarray, y: list[np.ndarray]) -> None:
    """Let the hook observe the estimates (read-only) and replace chosen messages."""
    if hook is None:
        return
    X = y[0].reshape(-1, k, m).copy()
    W = y[1].copy()
    X.setflags(write=False)
    W.setflags(write=False)
    replaced = hook(IterationState(t, labels, X, W))
    for agent, (mx, mw) in (replaced or {}).items():
        y[0][agent] = np.asarray(mx, dtype=float).ravel()
        y[1][agent] = np.asarray(mw, dtype=float)


class _BlockMonitor:
    """Per-group, per-part convergence and per-group stall detection (every few steps).

    Part b of group C has settled when max_{i∈C} δ_b(y_i, ȳ_C) ≤ tol/√2 and ȳ_C moved
    less than that since the last check (δ_b the part's share of δ, so a group whose
    two parts settled is within ``tol`` in δ). A group is stalled when its residual
    has not halved for ``stall_checks`` checks while its multipliers (``pressure``,
    per group max_i ‖ν_i‖) grew by over 20%: on an empty intersection the
    multipliers diverge, on a slow but feasible group they settle.
    """

    def __init__(self, labels: np.ndarray, n_groups: int, scales: list[float], tol: float,
                 stall_checks: int, record_history: bool) -> None:
        self.labels, self.G, self.scales = labels, n_groups, scales
        self.tol, self.stall_checks, self.record = tol, stall_checks, record_history
        counts = np.bincount(labels, minlength=n_groups).astype(float)
        self.mean = sparse.csr_matrix((1.0 / counts[labels], (labels, np.arange(labels.size))),
                                      shape=(n_groups, labels.size))
        self.part_done = [np.zeros(n_groups, dtype=bool) for _ in scales]
        self.stalled = np.zeros(n_groups, dtype=bool)
        self.best = np.full(n_groups, np.inf)
        self.since_best = np.zeros(n_groups, dtype=int)
        self.pressure_at_best = np.zeros(n_groups)
        self.prev: list[np.ndarray | None] = [None for _ in scales]
        self.history: list[dict] = []

    @property
    def done(self) -> np.ndarray:
        return np.logical_and.reduce(self.part_done)

    def seed(self, y: list[np.ndarray]) -> None:
        """Take the group means of ``y`` (a warm start) as the reference of the first
        check."""
        self.prev = [self.mean @ yb for yb in y]

    def check(self, t: int, y: list[np.ndarray], pressure: np.ndarray, blocks: list,
              k: int, m: int) -> list[np.ndarray]:
        """Update the flags; return, per part, the mask of groups still iterating."""
        joint = np.zeros(self.labels.size)
        for b, (yb, s) in enumerate(zip(y, self.scales, strict=True)):
            mean = self.mean @ yb
            dev = s * s * np.einsum("ij,ij->i", yb - mean[self.labels], yb - mean[self.labels])
            joint += dev
            res = np.zeros(self.G)
            np.maximum.at(res, self.labels, np.sqrt(dev))
            moved = (np.full(self.G, np.inf) if self.prev[b] is None
                     else s * np.sqrt(((mean - self.prev[b]) ** 2).sum(1)))
            self.prev[b] = mean
            bar = self.tol / np.sqrt(2.0)
            self.part_done[b] |= ~self.stalled & (res <= bar) & (moved <= bar)
        res = np.zeros(self.G)
        np.maximum.at(res, self.labels, np.sqrt(joint))
        active = ~(self.done | self.stalled)
        improved = res < 0.5 * self.best
        self.best = np.where(improved, res, self.best)
        self.since_best = np.where(improved, 0, self.since_best + 1)
        group_pressure = np.zeros(self.G)
        np.maximum.at(group_pressure, self.labels, pressure)
        growing = group_pressure > 1.2 * self.pressure_at_best
        self.pressure_at_best = np.where(improved, group_pressure, self.pressure_at_best)
        self.stalled |= active & growing & (self.since_best >= self.stall_checks)
        if self.record:
            self.history.append({"iteration": t, "residual": res,
                                 "X": y[0].reshape(-1, k, m).copy(), "W": y[1].copy()})
        return [~(d | self.stalled) for d in self.part_done]


#: Largest eigenvalues of blocks already computed, by the block's content (bounded).
_EIGENVALUES: BoundedMemo[float] = BoundedMemo(512)


def _largest_eigenvalue(block: sparse.csr_matrix) -> float:
    """Largest eigenvalue of a symmetric block: dense when small, else Lanczos from a
    fixed start vector (deterministic)."""
    if block.shape[0] <= 150:
        return float(np.linalg.eigvalsh(block.toarray())[-1])
    return float(eigsh(block, k=1, which="LA", tol=1e-8,
                       v0=np.linspace(1.0, 2.0, block.shape[0]))[0][0])


def _largest_eigenvalues(S: sparse.csr_matrix, labels: np.ndarray, n_groups: int
                         ) -> np.ndarray:
    """Largest eigenvalue of each group's diagonal block of the symmetric matrix S.

    Dense for small groups; Lanczos (ARPACK) from a fixed start vector otherwise, so the
    result is deterministic — and kept by the block's content, so re-solving a group
    whose block is unchanged (attack queries near a population) skips it. Groups
    without links get 1.
    """
    out = np.ones(n_groups)
    order = np.argsort(labels, kind="stable")
    bounds = np.searchsorted(labels[order], np.arange(n_groups + 1))
    for g in np.flatnonzero(np.diff(bounds) > 1):
        idx = order[bounds[g]:bounds[g + 1]]
        block = S[idx][:, idx]
        if block.nnz == 0:
            continue
        top = _EIGENVALUES.get(content_key(block.indptr, block.indices, block.data),
                               lambda block=block: _largest_eigenvalue(block))
        out[g] = max(top, 1e-12)
    return out


class _Block:
    """One part of the value system (X or W) for every agent, in its own coordinates.

    Each agent's problem separates into an X part and a W part (u is a sum of the two
    squared distances, F_i a product), and consensus is per part, so the two parts are
    independent problems solved side by side: each with its own momentum, restarts and
    stopping, and with the work of a group's part skipped once that part has settled.
    In a part's own coordinates agent i minimises w_i ‖x − x̂_i‖² (the normalising
    constant of δ scales the whole part and moves no minimiser); ``scale`` converts
    lengths to normalised distance δ.
    """

    def __init__(self, centres: np.ndarray, radii: np.ndarray | None, box: bool,
                 scale: float) -> None:
        self.centres, self.radii, self.box, self.scale = centres, radii, box, scale

    def project(self, z: np.ndarray, rows: slice | np.ndarray) -> np.ndarray:
        """Rows ``rows`` of z projected onto their agents' acceptable sets (this part)."""
        if self.radii is None:
            return project_box(z) if self.box else project_simplex(z)
        ball = project_ball_box if self.box else project_ball_simplex
        return ball(z, self.centres[rows], self.radii[rows])


def _mixing_matrix(method: str, n: int, edges: np.ndarray, w: np.ndarray,
                   labels: np.ndarray, n_groups: int, step: float | None
                   ) -> tuple[sparse.csr_matrix, np.ndarray, float]:
    """The linear map M of the update v ← v − h ⊙ (M u) of both first-order methods.

    Returns (M, edge weights of M's off-diagonal entries, θ).
    """
    deg = degrees(n, edges)
    i, j = edges[:, 0], edges[:, 1]
    h = 0.5 / w
    if method == "dual":
        # per-link steps α_ij = 1/((h_i + h_j) max(d_i, d_j)), then one constant per
        # group: c_g = step / λ_max(H^½ L_α H^½), the exact Lipschitz constant of the
        # group's dual gradient (Gershgorin's bound, λ_max ≤ 1, is up to 2× loose)
        alpha = 1.0 / ((h[i] + h[j]) * np.maximum(deg[i], deg[j]))
        L = laplacian(n, edges, alpha)
        root = sparse.diags(np.sqrt(h))
        top = _largest_eigenvalues((root @ L @ root).tocsr(), labels, n_groups)
        c = (1.0 if step is None else step) / top
        alpha = alpha * c[labels[i]]
        return laplacian(n, edges, alpha), alpha, 1.0
    # NIDS: W̃ = I − cΛ(I − W), Λ = diag(α_i), α_i = θ / L_i = θ h_i, c = 1/(2 max α)
    theta = 1.0 if step is None else step
    mix = 1.0 / (1.0 + np.maximum(deg[i], deg[j]))  # Metropolis–Hastings weights
    amax = np.zeros(n_groups)
    np.maximum.at(amax, labels, theta * h)
    coef = theta / (2.0 * amax)  # c θ per group: cΛ(I − W) = h ⊙ (cθ (I − W))
    mix = mix * coef[labels[i]]
    return laplacian(n, edges, mix), mix, theta


class _ClippedMixing:
    """M y with every link's difference clipped to length τ in δ (ClippedGossip).

    Clipping multiplies link (i, j)'s weight by min(1, τ/‖y_i − y_j‖) (symmetric, so
    the update stays a weighted Laplacian and conserves the multipliers' sum). A link
    can only be clipped if r_i + r_j > τ, r the distance of an agent's (joint) message
    from its group's mean message; near consensus no link qualifies and the rule costs
    one pass over the agents, not one over the links.
    """

    def __init__(self, edges: np.ndarray, weight: np.ndarray, labels: np.ndarray,
                 n_groups: int, tau: float) -> None:
        self.i, self.j, self.weight, self.tau = edges[:, 0], edges[:, 1], weight, tau
        n = labels.size
        counts = np.bincount(labels, minlength=n_groups).astype(float)
        self.mean = sparse.csr_matrix((1.0 / counts[labels], (labels, np.arange(n))),
                                      shape=(n_groups, n))
        self.labels = labels

    def correction(self, ys: list[np.ndarray], scales: list[float]
                   ) -> tuple[np.ndarray, np.ndarray]:
        """Links to clip and their weight reductions α_ij (1 − min(1, τ/‖d_ij‖))."""
        r2 = np.zeros(self.labels.size)
        for y, s in zip(ys, scales, strict=True):
            dev = y - (self.mean @ y)[self.labels]
            r2 += s * s * np.einsum("ij,ij->i", dev, dev)
        r = np.sqrt(r2)
        sus = np.flatnonzero(r[self.i] + r[self.j] > self.tau)
        if sus.size == 0:
            return sus, np.zeros(0)
        i, j = self.i[sus], self.j[sus]
        d2 = np.zeros(sus.size)
        for y, s in zip(ys, scales, strict=True):
            d = y[i] - y[j]
            d2 += s * s * np.einsum("ij,ij->i", d, d)
        norm = np.sqrt(d2)
        cut = norm > self.tau
        return sus[cut], self.weight[sus[cut]] * (1.0 - self.tau / norm[cut])

    def apply(self, Mu: np.ndarray, u: np.ndarray, links: np.ndarray,
              reduction: np.ndarray) -> None:
        """Remove the clipped part of the links from M u (in place)."""
        if links.size == 0:
            return
        i, j = self.i[links], self.j[links]
        flow = reduction[:, None] * (u[i] - u[j])
        np.subtract.at(Mu, i, flow)
        np.add.at(Mu, j, flow)


def _first_order(method: str, X: np.ndarray, W: np.ndarray, gx: np.ndarray | None,
                 gw: np.ndarray | None, weights: np.ndarray, labels: np.ndarray,
                 edges: np.ndarray, *, tol: float, max_iter: int, step: float | None,
                 accelerate: bool, mixing: str | None, check_every: int,
                 stall_checks: int | None, hook: MessageHook | None,
                 record_history: bool, start: WarmStart | None = None) -> PassingOutcome:
    """The projected dual gradient and NIDS, written as one recursion (module doc).

    Per part (X or W), agent i keeps v_i and answers y_i = Π_{F_i}(v_i);

        v ← v + (1 − θ)(y − y_prev) − h ⊙ (M u),   u = (2 − θ) y − (1 − θ) y_prev,

    with h_i = 1/(2w_i). ``dual``: θ = 1, M = c L_α, and v = x̂ − h ⊙ ν is the agent's
    answer to its running multiplier sum ν (Lagrangian step λ += α(y_i − y_j)).
    ``nids``: M = cθ(I − W) (Li, Shi & Yan 2019, with α_i = θ/L_i). At θ = 1 the step
    is a gradient step on a concave dual, accelerated by Nesterov extrapolation of v
    with per-group gradient restarts (O'Donoghue & Candès 2015): restart when
    Σ_{i∈C} w_i ⟨y_i, v_i^{t+1} − v_i^t⟩ > 0, i.e. ⟨∇q, λ_{t+1} − λ_t⟩ < 0.
    Extrapolation vanishes at a fixed point, so the limit is the method's.
    """
    n, k, m = X.shape
    G = int(labels.max()) + 1 if n else 0
    w = weights / (np.bincount(labels, weights) / np.bincount(labels))[labels]
    h = (0.5 / w)[:, None]
    sx, sw = scale_factors(k, m)
    blocks = [_Block(X.reshape(n, -1), gx, True, sx), _Block(W, gw, False, sw)]
    kind, param = parse_mixing(mixing)
    if kind in ("median", "trimmed"):
        from .errors import InputError

        raise InputError("mixing", f"'{kind}' mixing has no form in '{method}' (ignoring "
                         "a neighbour on one side breaks the multipliers' antisymmetry, "
                         "and the method never settles)", f"use method='dgd' with "
                         f"mixing='{mixing}', or mixing='clip:TAU' with '{method}'")
    M, link_weight, theta = _mixing_matrix(method, n, edges, w, labels, G, step)
    clipper = (_ClippedMixing(edges, link_weight, labels, G, param) if kind == "clip"
               else None)
    momentum = accelerate and theta == 1.0
    # a deviating messenger is the common cause of a stall, so look sooner
    monitor = _BlockMonitor(labels, G, [b.scale for b in blocks], tol,
                       stall_checks or (50 if hook is not None else 200), record_history)
    if start is None:
        v = [b.centres.copy() for b in blocks]
        y = [b.centres.copy() for b in blocks]  # x̂_i ∈ F_i: Π(v) = x̂ at the start
    else:  # a warm start (honest solves): v, and y = Π(v)
        v = [np.array(start[0], dtype=float), np.array(start[1], dtype=float)]
        y = [np.array(start[2], dtype=float), np.array(start[3], dtype=float)]
        monitor.seed(y)
    y_prev = [yb.copy() for yb in y]
    v_prev = [vb.copy() for vb in v]
    thetas = [np.ones(G), np.ones(G)]
    first = 1 if start is not None else check_every  # warm starts: check at once
    if kernels.COMPILED:
        t, clock = _compiled_loop(blocks, v, y, y_prev, v_prev, thetas, edges, link_weight,
                                  h[:, 0], w, labels, theta, momentum, param if clipper else 0.0,
                                  monitor, hook, k, m, max_iter, check_every, first)
        return PassingOutcome(y[0].reshape(n, k, m), y[1], t, monitor.done, monitor.stalled,
                              monitor.history, clock)
    everyone = slice(None)
    rows: list[slice | np.ndarray] = [everyone, everyone]  # agents still iterating, per part
    sub = [M, M]
    clock = {"projection": 0.0, "mixing": 0.0}
    t = 0
    for t in range(1, max_iter + 1):
        c0 = time.perf_counter()
        for b, block in enumerate(blocks):
            r = rows[b]
            if theta != 1.0:
                y_prev[b][r] = y[b][r]
            y[b][r] = block.project(v[b][r], r)
        c1 = time.perf_counter()
        clock["projection"] += c1 - c0
        _apply_hook_blocks(hook, blocks, k, m, t, labels, y)
        clipped = (clipper.correction(y, [b.scale for b in blocks])
                   if clipper is not None else None)
        for b in range(2):
            r = rows[b]
            yr = y[b][r]
            u = yr if theta == 1.0 else (2 - theta) * yr - (1 - theta) * y_prev[b][r]
            Mu = sub[b] @ u
            if clipped is not None and clipped[0].size:
                full = np.zeros_like(y[b])
                full[r] = Mu
                clipper.apply(full, (2 - theta) * y[b] - (1 - theta) * y_prev[b], *clipped)
                Mu = full[r]
            Mu *= h[r]
            new = v[b][r]
            new -= Mu
            if theta != 1.0:
                new += (1 - theta) * (yr - y_prev[b][r])
            if momentum:
                g = labels[r]
                step_ = new - v_prev[b][r]
                dot = np.bincount(g, w[r] * np.einsum("ij,ij->i", yr, step_), minlength=G)
                restart = dot > 0
                th = thetas[b]
                th_next = np.where(restart, 1.0, 0.5 * (1 + np.sqrt(1 + 4 * th**2)))
                beta = np.where(restart, 0.0, (th - 1) / th_next)
                thetas[b] = th_next
                v_prev[b][r] = new
                step_ *= beta[g, None]
                new += step_
            v[b][r] = new
        clock["mixing"] += time.perf_counter() - c1
        if t % check_every == 0 or t == first:
            live = monitor.check(t, y, _pressure(blocks, v, h), blocks, k, m)
            if not (live[0].any() or live[1].any()):
                break
            for b in range(2):
                now = np.flatnonzero(live[b][labels])
                if now.size == 0:
                    rows[b], sub[b] = now, M[now][:, now]
                elif now.size != (n if rows[b] is everyone else rows[b].size):
                    rows[b], sub[b] = now, M[now][:, now]
    Xo = y[0].reshape(n, k, m)
    return PassingOutcome(Xo, y[1], t, monitor.done, monitor.stalled, monitor.history, clock)


#: A warm start of :func:`run_dual` / :func:`run_nids`: per part (X flattened, then W)
#: each agent's value v_i, and its answer Π_{F_i}(v_i).
WarmStart = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def warm_start(centres: tuple[np.ndarray, np.ndarray], weights: np.ndarray,
               labels: np.ndarray, optimum: tuple[np.ndarray, np.ndarray],
               pre_image: tuple[np.ndarray, np.ndarray],
               multipliers: tuple[np.ndarray, np.ndarray],
               exact: np.ndarray) -> WarmStart:
    """A fixed point of :func:`run_dual` and :func:`run_nids` built from the group optima.

    For a group with optimum x* = Π_S(z), z = (c + Σ_b λ_b a_b)/(1 + Σλ) the dual
    projection of its weighted mean c (λ_b ≥ 0 on the binding balls,
    :mod:`~pluralguard.core.projection`), every member answers x* from

        v_i = x* + (1 + Σλ)(z − x*) + (W λ_i / w_i)(x* − a_i),   W = Σ_{j∈C} w_j,

    (z − x* is normal to S at x*, x* − a_i to member i's ball), and the running
    multiplier sums ν_i = 2w_i(x̂_i − v_i) add up to zero, as a sum of edge multipliers
    must: optimality of x*. Groups whose optimum came without multipliers (``exact``
    false) start cold, at v_i = x̂_i.

    Parameters
    ----------
    centres : (ndarray (n, k·m), ndarray (n, m))
        The agents' declarations x̂_i per part.
    weights : ndarray, shape (n,)
        Weights as the methods normalise them (by the group mean).
    labels : ndarray of int, shape (n,)
    optimum, pre_image : (ndarray (G, k·m), ndarray (G, m))
        x* and z per group and part.
    multipliers : (ndarray (n,), ndarray (n,))
        λ_i of each agent's ball in its group's projection, per part.
    exact : ndarray of bool, shape (G,)
        Groups with an optimum and multipliers.
    """
    G = exact.size
    total = np.bincount(labels, weights, minlength=G)
    out: list[np.ndarray] = []
    answers: list[np.ndarray] = []
    for part in (0, 1):
        lam = multipliers[part]
        lam_sum = np.bincount(labels, lam, minlength=G)
        x, z = optimum[part][labels], pre_image[part][labels]
        v = x + (1.0 + lam_sum[labels])[:, None] * (z - x) \
            + (total[labels] * lam / weights)[:, None] * (x - centres[part])
        cold = ~exact[labels]
        v[cold] = centres[part][cold]
        out.append(v)
        answers.append(np.where(cold[:, None], centres[part], x))
    return out[0], out[1], answers[0], answers[1]


def _pressure(blocks: list[_Block], v: list[np.ndarray], h: np.ndarray) -> np.ndarray:
    """Per agent, the size of its running multiplier sum (in δ), for stall detection."""
    return np.sqrt(sum(b.scale**2 * np.einsum("ij,ij->i", (b.centres - vb) / h,
                                               (b.centres - vb) / h)
                       for b, vb in zip(blocks, v, strict=True)))


def _compiled_loop(blocks: list[_Block], v: list[np.ndarray], y: list[np.ndarray],
                   y_prev: list[np.ndarray], v_prev: list[np.ndarray],
                   thetas: list[np.ndarray], edges: np.ndarray, link_weight: np.ndarray,
                   h: np.ndarray, w: np.ndarray, labels: np.ndarray, theta: float,
                   momentum: bool, tau: float, monitor: _BlockMonitor,
                   hook: MessageHook | None, k: int, m: int, max_iter: int,
                   check_every: int, first: int) -> tuple[int, dict[str, float]]:
    """The loop of :func:`_first_order` with compiled iterations
    (:mod:`~pluralguard.core.passing_kernel`); same recursion, same stopping (checks
    every ``check_every`` iterations and at iteration ``first``)."""
    n = labels.size
    i, j = edges[:, 0], edges[:, 1]
    src = np.concatenate([i, j]).astype(np.int64)
    dst = np.concatenate([j, i]).astype(np.int64)
    order = np.argsort(src, kind="stable")
    nbr, weight = dst[order], np.concatenate([link_weight, link_weight])[order]
    ptr = np.searchsorted(src[order], np.arange(n + 1)).astype(np.int64)
    radii = [np.full(n, np.inf) if b.radii is None else np.asarray(b.radii, float)
             for b in blocks]
    rows = [np.arange(n, dtype=np.int64), np.arange(n, dtype=np.int64)]
    counts = np.bincount(labels, minlength=thetas[0].size).astype(float)
    spread = np.zeros(n)
    new = [np.empty_like(vb) for vb in v]
    dots = np.zeros(thetas[0].size)
    scales = [b.scale for b in blocks]
    clock = {"projection": 0.0, "mixing": 0.0}
    t = 0
    for t in range(1, max_iter + 1):
        c0 = time.perf_counter()
        for b, block in enumerate(blocks):
            pk.project_rows(v[b], y[b], y_prev[b], rows[b], block.centres, radii[b],
                            block.box, theta != 1.0)
        c1 = time.perf_counter()
        clock["projection"] += c1 - c0
        _apply_hook_blocks(hook, blocks, k, m, t, labels, y)
        if tau > 0:
            pk.link_spread(y[0], y[1], scales[0], scales[1], labels, counts, spread)
        for b in range(2):
            pk.mix_rows(v[b], v_prev[b], y[b], y_prev[b], rows[b], h, ptr, nbr, weight,
                        theta, momentum, thetas[b], w, labels, tau, spread, y[0], y[1],
                        scales[0], scales[1], new[b], dots)
        clock["mixing"] += time.perf_counter() - c1
        if t % check_every == 0 or t == first:
            live = monitor.check(t, y, _pressure(blocks, v, h[:, None]), blocks, k, m)
            if not (live[0].any() or live[1].any()):
                break
            rows = [np.flatnonzero(live[b][labels]) for b in range(2)]
    return t, clock


def run_dual(X: np.ndarray, W: np.ndarray, gx: np.ndarray | None, gw: np.ndarray | None,
             weights: np.ndarray, labels: np.ndarray, edges: np.ndarray, *, tol: float,
             max_iter: int, step: float | None = None, accelerate: bool = True,
             mixing: str | None = None, check_every: int = 10, stall_checks: int | None = None,
             hook: MessageHook | None = None, record_history: bool = False,
             start: WarmStart | None = None) -> PassingOutcome:
    """Projected dual gradient on every group at once (module doc). Quadratic utility.

    ``step`` is the fraction of the safe step 1/λ_max of each group's dual gradient
    (default 1; plain ascent converges below 2). With ``accelerate`` the multipliers
    take Nesterov steps (FISTA, Beck & Teboulle 2009) with per-group gradient restarts
    (O'Donoghue & Candès 2015). Same fixed point, far fewer iterations.
    """
    return _first_order("dual", X, W, gx, gw, weights, labels, edges, tol=tol,
                        max_iter=max_iter, step=step, accelerate=accelerate, mixing=mixing,
                        check_every=check_every, stall_checks=stall_checks, hook=hook,
                        record_history=record_history, start=start)


def run_nids(X: np.ndarray, W: np.ndarray, gx: np.ndarray | None, gw: np.ndarray | None,
             weights: np.ndarray, labels: np.ndarray, edges: np.ndarray, *, tol: float,
             max_iter: int, step: float | None = None, accelerate: bool = True,
             mixing: str | None = None, check_every: int = 10, stall_checks: int | None = None,
             hook: MessageHook | None = None, record_history: bool = False,
             start: WarmStart | None = None) -> PassingOutcome:
    """NIDS, a decentralised proximal-gradient method with constant steps.

    Li, Shi & Yan, *A decentralized proximal-gradient method with network independent
    step-sizes and separated convergence rates*, IEEE TSP 67(17), 2019. With smooth
    parts s_i = −w_i u_i (quadratic utility; L_i = 2w_i in each part's coordinates),
    non-smooth parts r_i = the indicator of F_i (prox = projection onto F_i) and
    Metropolis weights W, each agent runs

        z^{k+1} = z^k − x^k + W̃(2x^k − x^{k−1} − α∇s(x^k) + α∇s(x^{k−1})),
        x^{k+1} = Π_{F_i}(z^{k+1}),   W̃ = I − cΛ(I − W),  c = 1/(2 max_i α_i),

    from z^1 = x̂_i − α_i∇s_i(x̂_i) = x̂_i, with uncoordinated constant steps
    α_i = θ/L_i, θ = ``step`` ∈ (0, 2) (default 1). Unlike DGD its fixed points are
    exactly the group optima (the gradient correction cancels DGD's bias), with
    constant steps. At θ = 1 the gradient terms cancel (the recursion is then a
    gradient step on a dual function) and ``accelerate`` adds Nesterov extrapolation
    with gradient restarts; other θ run the plain recursion.
    """
    return _first_order("nids", X, W, gx, gw, weights, labels, edges, tol=tol,
                        max_iter=max_iter, step=step, accelerate=accelerate, mixing=mixing,
                        check_every=check_every, stall_checks=stall_checks, hook=hook,
                        record_history=record_history, start=start)


def consensus_residual(X: np.ndarray, W: np.ndarray, labels: np.ndarray,
                       AX: np.ndarray, AW: np.ndarray) -> np.ndarray:
    """Per group: max over members of δ(member estimate, group agreement)."""
    d = np.sqrt(normalised_sq_distance(X, W, AX[labels], AW[labels]))
    res = np.zeros(AX.shape[0])
    np.maximum.at(res, labels, d)
    return res
