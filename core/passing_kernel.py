"""Compiled iterations of the first-order message-passing methods (``dual``, ``nids``).

One iteration of :func:`~pluralguard.core.message_passing._first_order`, per part
(X or W) and for the agents still iterating, fused into loops over agents and their
links with no temporary arrays: each agent projects its value onto its acceptable set
(:func:`ball_box` — the exact clip-and-scale projection of
:func:`~pluralguard.core.geometry.project_ball_box`; :func:`ball_simplex` — the
active-set projection of :func:`~pluralguard.core.geometry.project_ball_simplex`), then
takes the mixing step along its links (with clipped links for ``clip:τ`` mixing) and
the Nesterov extrapolation with per-group gradient restarts. The numpy path of
:mod:`~pluralguard.core.message_passing` computes the same recursion; this one only
runs faster (numba, :mod:`~pluralguard.core.kernels`).
"""

from __future__ import annotations

import numpy as np

from .kernels import jit


@jit
def simplex_into(z: np.ndarray, out: np.ndarray, work: np.ndarray) -> None:
    """Euclidean projection of z onto the probability simplex (sort-based; Held, Wolfe
    & Crowder 1974), written into ``out`` with ``work`` as scratch (no allocation)."""
    d = z.size
    for t in range(d):  # insertion sort, descending
        value = z[t]
        s = t
        while s > 0 and work[s - 1] < value:
            work[s] = work[s - 1]
            s -= 1
        work[s] = value
    css, theta = 0.0, 0.0
    for t in range(d):
        css += work[t]
        if work[t] * (t + 1) > css - 1.0:
            theta = (css - 1.0) / (t + 1.0)
    for t in range(d):
        out[t] = max(z[t] - theta, 0.0)


@jit
def _dist2(a: np.ndarray, b: np.ndarray) -> float:
    acc = 0.0
    for t in range(a.size):
        u = a[t] - b[t]
        acc += u * u
    return acc


@jit
def ball_box(y: np.ndarray, c: np.ndarray, r: float, out: np.ndarray,
             hit: np.ndarray, order: np.ndarray) -> None:
    """Projection of y onto {x ∈ [−1, 1]^d : ‖x − c‖ ≤ r} (c in the box): clip, or
    clip(c + s(y − c)) with s from the sorted breakpoints (geometry.project_ball_box)."""
    d = y.size
    for t in range(d):
        out[t] = min(max(y[t], -1.0), 1.0)
    if r == np.inf or _dist2(out, c) <= r * r:
        return
    for t in range(d):  # breakpoints s_t where coordinate t reaches its bound
        v = y[t] - c[t]
        if v > 0:
            hit[t] = (1.0 - c[t]) / v
        elif v < 0:
            hit[t] = (-1.0 - c[t]) / v
        else:
            hit[t] = np.inf
        s = t
        while s > 0 and hit[order[s - 1]] > hit[t]:
            order[s] = order[s - 1]
            s -= 1
        order[s] = t
    moving = 0.0  # Σ v² over coordinates still moving at the current breakpoint
    for t in range(d):
        moving += (y[t] - c[t]) ** 2
    stopped = 0.0  # Σ (bound − c)² over coordinates already at their bound
    g2 = r * r
    for q in range(d):
        t = order[q]
        if hit[t] == np.inf or hit[t] * hit[t] * moving + stopped >= g2:
            break
        v = y[t] - c[t]
        moving -= v * v
        bound = 1.0 if v > 0 else -1.0
        stopped += (bound - c[t]) ** 2
    s = np.sqrt(max(g2 - stopped, 0.0) / moving) if moving > 0 else 0.0
    for t in range(d):
        out[t] = min(max(c[t] + s * (y[t] - c[t]), -1.0), 1.0)


@jit
def ball_simplex(y: np.ndarray, c: np.ndarray, r: float, out: np.ndarray,
                 work: np.ndarray, trial: np.ndarray, support: np.ndarray,
                 iterations: int = 60) -> None:
    """Projection of y onto {w ∈ Δ : ‖w − c‖ ≤ r} (c on the simplex) by the active-set
    iteration of geometry.project_ball_simplex."""
    d = y.size
    simplex_into(y, out, work)
    if r == np.inf or _dist2(out, c) <= r * r:
        return
    g2 = r * r
    lo, hi, best = 0.0, 1.0, 0.0
    for t in range(d):
        support[t] = out[t] > 0
    for _ in range(iterations):
        size, theta0, vbar, rest = 0.0, 0.0, 0.0, g2
        for t in range(d):
            if support[t]:
                size += 1.0
                theta0 += c[t]
                vbar += y[t] - c[t]
            else:
                rest -= c[t] * c[t]
        theta0 = (theta0 - 1.0) / size
        vbar /= size
        A = 0.0
        for t in range(d):
            if support[t]:
                A += (y[t] - c[t] - vbar) ** 2
        rest -= size * theta0 * theta0
        s = np.sqrt(max(rest, 0.0) / A) if A > 0 else np.inf
        inside = lo < s < hi and np.isfinite(s)
        if not inside:
            s = 0.5 * (lo + hi)
        for t in range(d):
            trial[t] = c[t] + s * (y[t] - c[t])
        simplex_into(trial, out, work)
        f = _dist2(out, c) - g2
        feasible = f <= 0
        if feasible:
            lo = s
        else:
            hi = s
        same = True
        for t in range(d):
            if (out[t] > 0) != support[t]:
                same = False
            support[t] = out[t] > 0
        settled = (same and inside) or abs(f) <= 1e-13 * (1.0 + g2) or hi - lo <= 1e-15
        best = s if settled and not feasible else lo
        if settled:
            break
    for t in range(d):
        trial[t] = c[t] + best * (y[t] - c[t])
    simplex_into(trial, out, work)


@jit(fast=True)
def project_rows(v: np.ndarray, y: np.ndarray, y_prev: np.ndarray, rows: np.ndarray,
                 centres: np.ndarray, radii: np.ndarray, box: bool, keep: bool) -> None:
    """y_i = Π_{F_i}(v_i) for the agents ``rows`` (y_prev_i = y_i first if ``keep``)."""
    d = v.shape[1]
    hit, work = np.empty(d), np.empty(d)
    order = np.empty(d, dtype=np.int64)
    support = np.empty(d, dtype=np.bool_)
    for q in range(rows.size):
        i = rows[q]
        if keep:
            y_prev[i] = y[i]
        if box:
            ball_box(v[i], centres[i], radii[i], y[i], hit, order)
        else:
            ball_simplex(v[i], centres[i], radii[i], y[i], work, hit, support)


@jit(fast=True)
def link_spread(y_x: np.ndarray, y_w: np.ndarray, scale_x: float, scale_w: float,
                labels: np.ndarray, counts: np.ndarray, spread: np.ndarray) -> None:
    """Each agent's distance (in δ) from its group's mean message: links whose two
    spreads sum to at most τ cannot need clipping."""
    G = counts.size
    n = labels.size
    mx = np.zeros((G, y_x.shape[1]))
    mw = np.zeros((G, y_w.shape[1]))
    for i in range(n):
        mx[labels[i]] += y_x[i]
        mw[labels[i]] += y_w[i]
    for i in range(n):
        g = labels[i]
        acc = 0.0
        for t in range(y_x.shape[1]):
            u = y_x[i, t] - mx[g, t] / counts[g]
            acc += scale_x * scale_x * u * u
        for t in range(y_w.shape[1]):
            u = y_w[i, t] - mw[g, t] / counts[g]
            acc += scale_w * scale_w * u * u
        spread[i] = np.sqrt(acc)


@jit(fast=True)
def mix_rows(v: np.ndarray, v_prev: np.ndarray, y: np.ndarray, y_prev: np.ndarray,
             rows: np.ndarray, h: np.ndarray, ptr: np.ndarray, nbr: np.ndarray,
             weight: np.ndarray, theta: float, momentum: bool, thetas: np.ndarray,
             w: np.ndarray, labels: np.ndarray, tau: float, spread: np.ndarray,
             y_x: np.ndarray, y_w: np.ndarray, scale_x: float, scale_w: float,
             new: np.ndarray, dots: np.ndarray) -> None:
    """The update of :func:`~pluralguard.core.message_passing._first_order` for the
    agents ``rows`` of one part: v ← v + (1 − θ)(y − y_prev) − h (M u), then Nesterov
    extrapolation with per-group gradient restarts (``thetas``, one per group). With
    τ > 0 (clipped mixing) a link (i, j) weighs w_ij min(1, τ/δ(y_i, y_j)), δ over both
    parts (``y_x``, ``y_w``)."""
    d = v.shape[1]
    for q in range(rows.size):
        i = rows[q]
        for t in range(d):
            new[i, t] = 0.0
        for e in range(ptr[i], ptr[i + 1]):
            j = nbr[e]
            a = weight[e]
            if tau > 0 and spread[i] + spread[j] > tau:
                gap = np.sqrt(scale_x * scale_x * _dist2(y_x[i], y_x[j])
                              + scale_w * scale_w * _dist2(y_w[i], y_w[j]))
                if gap > tau:
                    a *= tau / gap
            if theta == 1.0:
                for t in range(d):
                    new[i, t] += a * (y[i, t] - y[j, t])
            else:
                for t in range(d):
                    new[i, t] += a * (((2 - theta) * y[i, t] - (1 - theta) * y_prev[i, t])
                                      - ((2 - theta) * y[j, t] - (1 - theta) * y_prev[j, t]))
        for t in range(d):
            step = v[i, t] - h[i] * new[i, t]
            if theta != 1.0:
                step += (1 - theta) * (y[i, t] - y_prev[i, t])
            new[i, t] = step
    if not momentum:
        for q in range(rows.size):
            i = rows[q]
            v[i] = new[i]
        return
    dots[:] = 0.0
    for q in range(rows.size):
        i = rows[q]
        acc = 0.0
        for t in range(d):
            acc += y[i, t] * (new[i, t] - v_prev[i, t])
        dots[labels[i]] += w[i] * acc
    for g in range(thetas.size):  # restart where ⟨∇q, Δλ⟩ < 0
        if dots[g] > 0:
            thetas[g] = -1.0  # marks a restart: β = 0, θ back to 1
    for q in range(rows.size):
        i = rows[q]
        th = thetas[labels[i]]
        beta = 0.0 if th < 0 else (th - 1) / (0.5 * (1 + np.sqrt(1 + 4 * th * th)))
        for t in range(d):
            step = new[i, t] - v_prev[i, t]
            v_prev[i, t] = new[i, t]
            v[i, t] = new[i, t] + beta * step
    for g in range(thetas.size):
        th = thetas[g]
        thetas[g] = 1.0 if th < 0 else 0.5 * (1 + np.sqrt(1 + 4 * th * th))
