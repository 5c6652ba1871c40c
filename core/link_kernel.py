"""The link rule's kernels: union–find over groups and the cheap proofs 1–3.

The ``merge`` link rule (:mod:`~pluralguard.core.linking`) walks the candidate links
closest first, keeping groups as a union–find forest with member lists threaded through
``nxt`` (:func:`find`, :func:`union`, :func:`members`, :func:`roots`) and, per pair of
groups, a list of the groups it was refused with (:func:`failed`). Before the canonical
check it tries the cheap proofs of its module doc, each a proof only with the margin
η = :data:`~pluralguard.core.linking.PROOF_MARGIN`:

1. the larger group's known point lies inside every ball of the smaller one
   (:func:`slack_at`);
2. a point of the segment between the two groups' known points lies inside every ball
   of the union — per ball a quadratic in the segment parameter, whose feasible
   interval the lens of the two balls bounds (:func:`lens`, :func:`part_proof`);
3. two members' balls are disjoint (:func:`disjoint_loop`).

:func:`walk` runs the whole screening loop. Everything here is written in the subset
of Python numba compiles (:mod:`~pluralguard.core.kernels`); ``*_numpy`` are the
vectorised equivalents the Python path uses, with the same answers.
"""

from __future__ import annotations

import numpy as np

from .kernels import jit, pick


@jit
def find(parent: np.ndarray, i: int) -> int:
    root = i
    while parent[root] != root:
        root = parent[root]
    while parent[i] != root:  # path compression
        up = parent[i]
        parent[i] = root
        i = up
    return root


@jit
def failed(parent: np.ndarray, fhead: np.ndarray, fnext: np.ndarray, fpart: np.ndarray,
            fcount: np.ndarray, a: int, b: int) -> bool:
    """Whether groups a and b (roots) were found infeasible together before."""
    if fcount[a] > fcount[b]:
        a, b = b, a
    e = fhead[a]
    while e >= 0:
        if find(parent, fpart[e]) == b:
            return True
        e = fnext[e]
    return False


@jit
def union(parent: np.ndarray, size: np.ndarray, nxt: np.ndarray, tail: np.ndarray,
           fhead: np.ndarray, ftail: np.ndarray, fnext: np.ndarray, fcount: np.ndarray,
           a: int, b: int) -> int:
    """Merge groups a and b (roots); the larger keeps its root (a on ties)."""
    if size[a] < size[b]:
        a, b = b, a
    parent[b] = a
    size[a] += size[b]
    nxt[tail[a]] = b
    tail[a] = tail[b]
    if fhead[b] >= 0:
        if fhead[a] < 0:
            fhead[a] = fhead[b]
        else:
            fnext[ftail[a]] = fhead[b]
        ftail[a] = ftail[b]
        fcount[a] += fcount[b]
    return a


@jit
def members(nxt: np.ndarray, root: int, count: int) -> np.ndarray:
    out = np.empty(count, dtype=np.int64)
    i = root
    for t in range(count):
        out[t] = i
        i = nxt[i]
    return out


@jit
def roots(parent: np.ndarray) -> np.ndarray:
    out = np.empty(parent.size, dtype=np.int64)
    for i in range(parent.size):
        out[i] = find(parent, i)
    return out


@jit
def lens(wa: np.ndarray, wb: np.ndarray, sa: float, sb: float,
          point: np.ndarray) -> float:
    """The largest ball inside B(wa, sa) ∩ B(wb, sb): its centre to ``point``, its radius
    returned (−∞ if the balls miss each other)."""
    if sa == np.inf:
        point[:] = wb
        return sb
    if sb == np.inf:
        point[:] = wa
        return sa
    acc = 0.0
    for t in range(wa.size):
        acc += (wa[t] - wb[t]) ** 2
    d = np.sqrt(acc)
    if sb <= sa - d:  # B(wb, sb) inside B(wa, sa)
        point[:] = wb
        return sb
    if sa <= sb - d:
        point[:] = wa
        return sa
    rho = 0.5 * (sa + sb - d)
    if rho < 0 or d == 0.0:
        return -np.inf
    step = (sa - rho) / d
    for t in range(wa.size):
        point[t] = wa[t] + step * (wb[t] - wa[t])
    return rho


@jit
def slack_at(points: np.ndarray, radii: np.ndarray, nxt: np.ndarray, root: int, count: int,
              x: np.ndarray) -> float:
    """min over the members of a group of r_i − ‖x − c_i‖ (∞ without finite radii)."""
    best = np.inf
    i = root
    for _ in range(count):
        if radii[i] != np.inf:
            acc = 0.0
            for d in range(x.size):
                u = x[d] - points[i, d]
                acc += u * u
            gap = radii[i] - np.sqrt(acc)
            if gap < best:
                best = gap
        i = nxt[i]
    return best


@jit
def part_proof(points: np.ndarray, radii: np.ndarray, nxt: np.ndarray, size: np.ndarray,
                witness: np.ndarray, slack: np.ndarray, a: int, b: int, margin: float,
                point: np.ndarray) -> float:
    """Cheap tests 1–2 (module doc) for one part of groups a (the larger) and b: a
    common point of their balls (to ``point``) and a lower bound on its slack, or −∞.

    Every group carries a known point and a lower bound on its slack, the smallest
    r_i − ‖x − c_i‖ over its members: the ball of that radius around the point lies
    inside all their balls. (0) If the two groups' balls overlap enough, the largest
    ball in their lens proves the union (constant time); (1) the larger group's point
    may lie inside every ball of the smaller group; (2) a point of the segment between
    the two known points may lie inside every ball of the union.
    """
    wa, wb = witness[a], witness[b]
    if slack[a] >= margin and slack[b] >= margin:
        rho = lens(wa, wb, slack[a], slack[b], point)
        if rho >= margin:
            return rho
    if slack[a] >= margin:
        inner = slack_at(points, radii, nxt, b, size[b], wa)
        if inner >= margin:
            point[:] = wa
            return min(inner, slack[a])
    dims = wa.size
    aa = 0.0
    for d in range(dims):
        aa += (wb[d] - wa[d]) ** 2
    lo, hi = 0.0, 1.0
    for root in (a, b):
        i = root
        for _ in range(size[root]):
            if radii[i] != np.inf:
                r = radii[i] - margin
                if r < 0:
                    return -np.inf
                bb, cc = 0.0, 0.0  # no temporaries: this loop visits every member
                for d in range(dims):
                    off = wa[d] - points[i, d]
                    bb += off * (wb[d] - wa[d])
                    cc += off * off
                cc -= r * r
                if aa <= 1e-300:
                    if cc > 0:
                        return -np.inf
                else:
                    disc = bb * bb - aa * cc
                    if disc < 0:
                        return -np.inf
                    root_ = np.sqrt(disc)
                    lo = max(lo, (-bb - root_) / aa)
                    hi = min(hi, (-bb + root_) / aa)
                    if lo > hi:
                        return -np.inf
            i = nxt[i]
    t = 0.5 * (lo + hi)
    for d in range(dims):
        point[d] = wa[d] + t * (wb[d] - wa[d])
    found = min(slack_at(points, radii, nxt, a, size[a], point),
                slack_at(points, radii, nxt, b, size[b], point))
    return found if found >= margin else -np.inf


@jit
def walk(ei: np.ndarray, ej: np.ndarray, pos: int, parent: np.ndarray, size: np.ndarray,
          nxt: np.ndarray, tail: np.ndarray, fhead: np.ndarray, ftail: np.ndarray,
          fnext: np.ndarray, fpart: np.ndarray, fcount: np.ndarray, label: np.ndarray,
          witness_x: np.ndarray, witness_w: np.ndarray, slack: np.ndarray,
          cert_x: np.ndarray, cert_w: np.ndarray, cert_slack: np.ndarray, tree: np.ndarray,
          counts: np.ndarray, points_x: np.ndarray, points_w: np.ndarray,
          radii_x: np.ndarray, radii_w: np.ndarray, margin: float) -> int:
    """Visit edges from ``pos``; return the first one that needs a decision in Python.

    Edges inside a group, and edges between groups already found infeasible
    together, are skipped. Edges between two groups that carry the same
    non-negative ``label`` L are merged on the spot: every member of such a union
    accepts the point (``cert_x[L]``, ``cert_w[L]``) with slack ``cert_slack[:, L]``
    (see :mod:`~pluralguard.core.incremental`), which becomes the group's known point.
    Between two unlabelled groups (label −1) the cheap feasibility proofs run here
    (:func:`part_proof`), and a proven union is merged. ``counts[0]`` counts the
    accepted links, recorded in ``tree``.
    """
    point_x, point_w = np.empty(points_x.shape[1]), np.empty(points_w.shape[1])
    while pos < ei.size:
        a = find(parent, ei[pos])
        b = find(parent, ej[pos])
        if a != b and not failed(parent, fhead, fnext, fpart, fcount, a, b):
            if label[a] >= 0 and label[a] == label[b]:
                mark = label[a]
                root = union(parent, size, nxt, tail, fhead, ftail, fnext, fcount, a, b)
                witness_x[root] = cert_x[mark]
                witness_w[root] = cert_w[mark]
                slack[0, root] = cert_slack[0, mark]
                slack[1, root] = cert_slack[1, mark]
            elif label[a] == -1 and label[b] == -1:
                big, small = (a, b) if size[a] >= size[b] else (b, a)
                sx = part_proof(points_x, radii_x, nxt, size, witness_x, slack[0], big,
                                 small, margin, point_x)
                if sx < margin:
                    return pos
                sw = part_proof(points_w, radii_w, nxt, size, witness_w, slack[1], big,
                                 small, margin, point_w)
                if sw < margin:
                    return pos
                root = union(parent, size, nxt, tail, fhead, ftail, fnext, fcount, a, b)
                witness_x[root] = point_x
                witness_w[root] = point_w
                slack[0, root] = sx
                slack[1, root] = sw
            else:
                return pos
            tree[counts[0], 0] = ei[pos]
            tree[counts[0], 1] = ej[pos]
            counts[0] += 1
        pos += 1
    return pos


@jit
def disjoint_loop(points: np.ndarray, radii: np.ndarray, ma: np.ndarray, mb: np.ndarray,
                   margin: float) -> tuple[int, int]:
    """The pair i ∈ A, j ∈ B whose balls are farthest apart, if ‖c_i − c_j‖ > r_i + r_j +
    margin, else (−1, −1) (the widest gap makes the most robust certificate)."""
    best, bi, bj = margin, -1, -1
    for s in range(ma.size):
        i = ma[s]
        if radii[i] == np.inf:
            continue
        for t in range(mb.size):
            j = mb[t]
            if radii[j] == np.inf:
                continue
            acc = 0.0
            for d in range(points.shape[1]):
                u = points[i, d] - points[j, d]
                acc += u * u
            gap = np.sqrt(acc) - radii[i] - radii[j]
            if gap > best:
                best, bi, bj = gap, i, j
    return bi, bj


# ------------------------------------------------------------------ Python paths
def slack_numpy(points: np.ndarray, radii: np.ndarray, idx: np.ndarray,
                 x: np.ndarray) -> float:
    """min over ``idx`` of r_i − ‖x − c_i‖ (∞ without finite radii)."""
    r = radii[idx]
    finite = np.isfinite(r)
    if not finite.any():
        return np.inf
    d = points[idx[finite]] - x
    return float((r[finite] - np.sqrt(np.einsum("ij,ij->i", d, d))).min())


def part_proof_numpy(points: np.ndarray, radii: np.ndarray, ma: np.ndarray,
                      mb: np.ndarray, wa: np.ndarray, wb: np.ndarray, sa: float, sb: float,
                      margin: float) -> tuple[np.ndarray | None, float]:
    """:func:`part_proof` vectorised: (point, slack) or (None, −∞)."""
    if sa >= margin and sb >= margin:
        point = np.empty_like(wa)
        rho = pick(lens)(wa, wb, sa, sb, point)
        if rho >= margin:
            return point, rho
    if sa >= margin:
        inner = slack_numpy(points, radii, mb, wa)
        if inner >= margin:
            return wa.copy(), min(inner, sa)
    idx = np.concatenate([ma, mb])
    r = radii[idx]
    finite = np.isfinite(r)
    r = r[finite] - margin
    if (r < 0).any():
        return None, -np.inf
    delta = wb - wa
    a = float(delta @ delta)
    off = wa[None, :] - points[idx[finite]]
    b = off @ delta
    c = np.einsum("ij,ij->i", off, off) - r * r
    if a <= 1e-300:
        if (c > 0).any():
            return None, -np.inf
        lo, hi = 0.0, 1.0
    else:
        disc = b * b - a * c
        if (disc < 0).any():
            return None, -np.inf
        root = np.sqrt(disc)
        lo = max(0.0, float(((-b - root) / a).max(initial=-np.inf)))
        hi = min(1.0, float(((-b + root) / a).min(initial=np.inf)))
    if lo > hi:
        return None, -np.inf
    point = wa + (0.5 * (lo + hi)) * delta
    found = slack_numpy(points, radii, idx, point)
    return (point, found) if found >= margin else (None, -np.inf)


def disjoint_numpy(points: np.ndarray, radii: np.ndarray, ma: np.ndarray, mb: np.ndarray,
                    margin: float) -> tuple[int, int]:
    dist = np.sqrt(((points[ma][:, None, :] - points[mb][None, :, :]) ** 2).sum(-1))
    with np.errstate(invalid="ignore"):
        gap = np.nan_to_num(dist - radii[ma][:, None] - radii[mb][None, :], nan=-np.inf,
                            neginf=-np.inf)
    s, t = np.unravel_index(int(np.argmax(gap)), gap.shape)
    if not gap[s, t] > margin:
        return -1, -1
    return int(ma[s]), int(mb[t])

