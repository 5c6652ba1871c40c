"""Attack queries near a base population (:meth:`Mechanism.session`): incremental re-solves.

An adaptive attacker queries the mechanism hundreds of times on declarations that
differ from a base population in a few agents' rows (and sometimes a few appended
Sybil rows). A session answers every query as a fresh call would — same labels,
agreements, memberships, utilities, bounds and link counts — recomputing only what
the changed rows can affect. Each step of :func:`~pluralguard.core.solver.solve_agreements`
(``merge`` link rule) is redone incrementally:

* **declaration transforms** (declaration defenses) run first, as in
  :meth:`Mechanism.__call__`; a transform with a ``session(base)`` method answers
  through it (an incremental form of itself, e.g. outlier scores updated from the
  changed rows), any other is applied in full;
* **bounds in force** come from the bound rule's session
  (:func:`~pluralguard.core.bounds.bound_session`): a quantile threshold updated from
  the changed rows' distances, a custom rule (a defense) through its own session, or
  resolved in full. Any agent's bound may change, not only a changed agent's;
* **distinct declarations** — unchanged agents keep their points, which keep their
  order even when their bounds change; a changed or appended agent's declaration is
  looked up among the base's points or becomes a new point, placed in the full
  solve's (lexicographic) order;
* **candidate links** — the base's links among surviving points are kept; the new
  points' links are computed against every point; when points' bounds changed, every
  pair of base points with a changed endpoint is re-decided from the pair distances
  kept sorted by pair (one compiled pass), with the full solve's own test. An edge
  filter (a network defense) is applied to the resulting links as the full solve
  applies it;
* **link rule** — the walk over the links is replayed from the start (a compiled
  kernel) with the base's *certificates*: a point every member of a base group
  accepts (its agreement, or, where bounds may move, the deepest point of the group's
  acceptable sets, :func:`~pluralguard.core.convex.deepest_point`), with its slack
  recomputed under the query's bounds, so a union of points of one base group (and of
  new points that accept it too) is feasible; and a union holding one of the base's
  infeasible sets (:class:`~pluralguard.core.linking.Conflict`, re-checked where its
  points' bounds changed) is not. Only unions neither certificate settles are checked
  (the full solve's own check). Merge decisions are functions of the union alone
  (:mod:`~pluralguard.core.linking`), so the replay reaches the full solve's partition
  and accepted links;
* **agreements** — a group equal to a base group keeps the base's agreement bit for
  bit when its members' weights (up to scale) and bounds are unchanged; every other
  group is solved as the full solve solves it, members in the same order;
* **read-out** — as the full solve (:func:`~pluralguard.core.solver.readout`).

Only :attr:`~pluralguard.core.linking.LinkLog.exact_checks` (conic solves the link
rule needed) and the timings may differ from a full solve: they count the session's
own work.

Queries a session cannot answer incrementally are solved in full (same answer):
other mechanism kinds or methods, social graphs, ``max_links``, fewer agents than the
base, more than :data:`MAX_CHANGED` changed rows, agents sharing a point whose bounds
come apart, or changed bounds on populations with more than
:data:`~pluralguard.core.bounds.MAX_EXACT_PAIRS` pairs of points. A session is not
thread-safe.

It is one piece above ~500 lines because every step above reads and extends the same
base solve (:class:`_Base`) and must reproduce
:func:`~pluralguard.core.solver.solve_agreements` bit for bit: the query
(:class:`_Query`) re-decides links, groups and agreements against that shared state,
and splitting it would only move the base's private arrays across a module boundary.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
from scipy.spatial.distance import cdist

from . import kernels
from .bounds import MAX_EXACT_PAIRS, BoundPolicy, bound_session
from .convex import deepest_point
from .errors import InputError
from .geometry import (
    ACCEPT_TOL,
    distance_from_squares,
    project_box,
    project_simplex,
)
from .kernels import jit, pick
from .linking import (
    PROOF_MARGIN,
    Conflict,
    Found,
    LinkLog,
    Merger,
    Partition,
    canonical_labels,
)
from .mechanism import (
    Mechanism,
    Outcome,
    Transform,
    apply_transforms,
    registered_kind,
    transform_function,
)
from .model import Population, relative_weights
from .network import Edges, _row_sq_distances
from .orderstats import changed_rows
from .solver import (
    MAX_ITER,
    _communication_graph,
    _exact_group,
    group_members,
    message_passing,
    readout,
    solve_agreements,
)

#: Most changed or appended rows answered incrementally (beyond it, a full solve).
MAX_CHANGED = 64
#: Parameters whose default the incremental path needs.
_DEFAULTS = {"link_rule": "merge", "social_graph": None, "max_links": None,
             "deduplicate": True, "warm_start": True, "record_history": False}
#: Methods answered incrementally: the fast path, and the honest message passing that
#: starts at its fixed point.
INCREMENTAL_METHODS = ("exact", "dual", "nids")


def open_session(mechanism: Mechanism, base: Population) -> Callable[[Population], Outcome]:
    """``ask(population) -> Outcome``, equal to ``mechanism(population)`` (module doc).

    Parameters
    ----------
    mechanism : Mechanism
        Any mechanism (transforms included).
    base : Population
        The population the queries stay near (declared, before the transforms).
    """
    return Session(mechanism, base)


def transform_session(transform: Transform, base: Population
                      ) -> Callable[[Population], Population]:
    """A declaration transform for populations near ``base``: its own ``session(base)``
    when it has one (same answers, incrementally), else the transform itself."""
    opener = getattr(transform, "session", None)
    if callable(opener):
        return opener(base)
    return transform_function(transform)


class Session:
    """Answers hook-free queries like ``mechanism(population)``, reusing a base solve.

    Hold one per attack plan and call it on many populations near ``base``; see the
    module doc for what is reused. The base is solved at the first call.
    """

    def __init__(self, mechanism: Mechanism, base: Population) -> None:
        self.mechanism = mechanism
        self.function = registered_kind(mechanism.kind).function
        self.base_input = base
        self._stages: list[Callable[[Population], Population]] | None = None
        self._declared_base: Population = base
        self._base: _Base | None = None
        self._memo: tuple[str, Outcome | None] | None = None
        self.incremental = mechanism.kind == "agreements" and all(
            mechanism.params.get(k, v) is v or mechanism.params.get(k, v) == v
            for k, v in _DEFAULTS.items()) \
            and mechanism.params.get("method", "exact") in INCREMENTAL_METHODS

    def declare(self, population: Population) -> Population:
        """The declarations the mechanism solves, as :meth:`Mechanism.declare` (each
        transform through its session)."""
        if self._stages is None:
            self._stages = []
            current = self.base_input
            for transform in self.mechanism.transforms:
                self._stages.append(transform_session(transform, current))
                current = transform_function(transform)(current)
            self._declared_base = current
        return apply_transforms(population, self.mechanism.transforms, self._stages)

    def __call__(self, population: Population) -> Outcome:
        declared = self.declare(population)
        if self.incremental and self._base is None:
            try:
                self._base = _Base(self.mechanism.params, self._declared_base)
            except InputError:  # reported by the full solve below
                self.incremental = False
        if self.incremental:
            answer = self._base.answer(declared)
            if answer is not None:
                return answer
            return self.function(declared, **self.mechanism.params)
        # no incremental path: the base answer is kept, every other query is solved
        key = declared.fingerprint()
        if self._memo is None:
            self._memo = (self._declared_base.fingerprint(), None)
        if key != self._memo[0]:
            return self.function(declared, **self.mechanism.params)
        if self._memo[1] is None:
            self._memo = (key, self.function(declared, **self.mechanism.params))
        return self._memo[1]


def _key_bytes(row: np.ndarray) -> bytes:
    return (row + 0.0).tobytes()  # +0.0: −0.0 and 0.0 are one key, as np.unique has it


def _lex_less(rows: np.ndarray, key: np.ndarray) -> np.ndarray:
    """Which rows sort before ``key`` lexicographically (as :func:`numpy.unique` sorts)."""
    differ = rows != key
    first = np.argmax(differ, axis=1)
    at = np.arange(rows.shape[0])
    return differ[at, first] & (rows[at, first] < key[first])


@jit
def _merge_edges(bi: np.ndarray, bj: np.ndarray, bd: np.ndarray, gone: np.ndarray,
                 ni: np.ndarray, nj: np.ndarray, nd: np.ndarray, at: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The base links without positions ``gone`` (sorted), with new links (i, j, δ)
    inserted before base positions ``at`` (non-decreasing), in one pass; with each
    link's base position (−1: a new link)."""
    size = bi.size - gone.size + ni.size
    ei, ej = np.empty(size, dtype=np.int64), np.empty(size, dtype=np.int64)
    ed = np.empty(size)
    origin = np.empty(size, dtype=np.int64)
    out, g, k = 0, 0, 0
    for p in range(bi.size + 1):
        while k < ni.size and at[k] == p:
            ei[out], ej[out], ed[out], origin[out] = ni[k], nj[k], nd[k], -1
            out += 1
            k += 1
        if p == bi.size:
            break
        if g < gone.size and gone[g] == p:
            g += 1
            continue
        ei[out], ej[out], ed[out], origin[out] = bi[p], bj[p], bd[p], p
        out += 1
    return ei, ej, ed, origin


@jit
def _flips(d2x: np.ndarray, d2w: np.ndarray, link: np.ndarray, gx: np.ndarray,
           gw: np.ndarray, alive: np.ndarray, moved: np.ndarray, tol: float
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pairs i < j of base points (``d2x``, ``d2w``, ``link`` in row-major pair order:
    squared distances and the base link's position or −1) whose link the bounds
    ``gx``, ``gw`` decide differently from the base, among live points with a ``moved``
    endpoint: the base links lost (positions) and the pairs linked anew (i, j)."""
    u = alive.size
    lost = np.empty(link.size, dtype=np.int64)
    new_i = np.empty(link.size, dtype=np.int64)
    new_j = np.empty(link.size, dtype=np.int64)
    n_lost, n_new, p = 0, 0, 0
    for i in range(u):
        for j in range(i + 1, u):
            if alive[i] and alive[j] and (moved[i] or moved[j]):
                rx = min(gx[i], gx[j]) + tol
                rw = min(gw[i], gw[j]) + tol
                now = d2x[p] <= rx * rx and d2w[p] <= rw * rw
                if now and link[p] < 0:
                    new_i[n_new], new_j[n_new] = i, j
                    n_new += 1
                elif not now and link[p] >= 0:
                    lost[n_lost] = link[p]
                    n_lost += 1
            p += 1
    return lost[:n_lost], new_i[:n_new], new_j[:n_new]


def _flips_numpy(d2x: np.ndarray, d2w: np.ndarray, link: np.ndarray, gx: np.ndarray,
                 gw: np.ndarray, alive: np.ndarray, moved: np.ndarray, tol: float
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`_flips` vectorised."""
    i, j = np.triu_indices(alive.size, k=1)
    live = alive[i] & alive[j] & (moved[i] | moved[j])
    now = (d2x <= (np.minimum(gx[i], gx[j]) + tol) ** 2) & \
          (d2w <= (np.minimum(gw[i], gw[j]) + tol) ** 2)
    was = link >= 0
    lost = live & was & ~now
    gained = live & now & ~was
    return link[lost], i[gained], j[gained]


class _Bands:
    """Pair positions sorted by squared distance, per part (X, W), for bounds shared by
    every point: a pair's link can change with the bounds only when one of its two
    distances lies between the old and the new threshold (:func:`band_flips`)."""

    def __init__(self, d2x: np.ndarray, d2w: np.ndarray, gamma: tuple[float, float]
                 ) -> None:
        self.gamma = gamma
        self.order = tuple(np.argsort(d, kind="stable") for d in (d2x, d2w))
        self.sorted = tuple(d[o] for d, o in zip((d2x, d2w), self.order, strict=True))

    def between(self, old: tuple[float, float], new: tuple[float, float]) -> np.ndarray:
        """Positions of the pairs with a squared distance between the two thresholds
        (a superset: the band is widened by 1e-9 relative)."""
        found = []
        for part in (0, 1):
            lo, hi = sorted((old[part] + ACCEPT_TOL, new[part] + ACCEPT_TOL))
            a = np.searchsorted(self.sorted[part], lo * lo * (1 - 1e-9), side="left")
            b = np.searchsorted(self.sorted[part], hi * hi * (1 + 1e-9), side="right")
            found.append(self.order[part][a:b])
        return np.unique(np.concatenate(found))


def pair_ends(p: np.ndarray, u: int) -> tuple[np.ndarray, np.ndarray]:
    """The points (i, j), i < j, of row-major pair positions p among u points.

    Row i starts at s(i) = i·u − i(i + 1)/2; i is the largest with s(i) ≤ p, read off
    the quadratic and corrected by one where rounding puts it off.
    """
    b = 2 * u - 1
    i = np.floor((b - np.sqrt(np.maximum(b * b - 8.0 * p, 0.0))) / 2).astype(np.int64)

    def start(r: np.ndarray) -> np.ndarray:
        return r * u - r * (r + 1) // 2

    i = np.where(start(i) > p, i - 1, i)
    i = np.where(start(i + 1) <= p, i + 1, i)
    return i, p - start(i) + i + 1


def band_flips(bands: _Bands, pairs: tuple[np.ndarray, np.ndarray, np.ndarray],
               gx: np.ndarray, gw: np.ndarray, alive: np.ndarray, tol: float
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`_flips` when every live point's bounds moved from the base's shared
    ``bands.gamma`` to shared new ones: only the pairs in the band between the two
    thresholds are examined (same answer, same order)."""
    d2x, d2w, link = pairs
    live_points = np.flatnonzero(alive)
    new = (float(gx[live_points[0]]), float(gw[live_points[0]]))
    p = bands.between(bands.gamma, new)
    i, j = pair_ends(p, alive.size)
    keep = alive[i] & alive[j]
    p, i, j = p[keep], i[keep], j[keep]
    rx = np.minimum(gx[i], gx[j]) + tol
    rw = np.minimum(gw[i], gw[j]) + tol
    now = (d2x[p] <= rx * rx) & (d2w[p] <= rw * rw)
    was = link[p] >= 0
    lost, gained = was & ~now, now & ~was
    return link[p[lost]], i[gained], j[gained]


# ---------------------------------------------------------------- the base
class _Base:
    """The base population's solve and what queries reuse from it."""

    def __init__(self, params: dict[str, Any], declared: Population) -> None:
        self.params = dict(params)
        self.population = declared
        capture: dict = {}
        self.result = solve_agreements(declared, capture=capture, **self.params)
        rule = capture["policy"]
        self.rule_name = str(rule)
        self.utility = self.params.get("utility", "quadratic")
        self.method = self.params.get("method", "exact")
        self.edge_filter = self.params.get("edge_filter")
        random_state = self.params.get("random_state", 0)
        self.bounds = bound_session(rule, declared, random_state)
        # only quantiles and custom rules move the bounds of unchanged agents
        self.moving = not (isinstance(rule, BoundPolicy) and rule.kind in ("declared", "fixed"))
        n, k, m = declared.X.shape
        self.n, self.k, self.m = n, k, m
        self.rows = (declared.X.reshape(n, -1), declared.W)
        self.given = np.ones(n) if declared.weights is None else declared.weights
        reduced: Population = capture["reduced"]
        self.index, self.inverse = capture["index"], capture["inverse"]
        u = reduced.n
        self.u = u
        self.points = (reduced.X.reshape(u, -1).copy(), reduced.W.copy())
        self.point_gamma = (reduced.gamma_x.copy(), reduced.gamma_w.copy())
        # points by declaration (bounds are compared apart: they may move)
        self.xw: dict[bytes, list[int]] = {}
        for p, row in enumerate(np.concatenate(self.points, axis=1)):
            self.xw.setdefault(_key_bytes(row), []).append(p)
        self.xw_shared = np.zeros(u, dtype=bool)  # points whose declaration another has
        for slots in self.xw.values():
            if len(slots) > 1:
                self.xw_shared[slots] = True
        edges: Edges = capture["candidates"]
        self.edges = (edges.i, edges.j, edges.distance)
        # an edge filter with a session of its own answers from the links that changed
        opener = getattr(self.edge_filter, "session", None)
        self.filter_session = opener(reduced, edges) if callable(opener) else None
        ends = np.concatenate([edges.i, edges.j])  # each point's links (positions)
        self.point_edges = np.tile(np.arange(edges.i.size), 2)[np.argsort(ends,
                                                                         kind="stable")]
        self.point_ptr = np.searchsorted(np.sort(ends), np.arange(u + 1))
        partition = capture["partition"]
        self.labels = partition.labels  # per point
        self.AX, self.AW, self.ok = capture["AX"], capture["AW"], capture["ok"]
        G = self.AX.shape[0]
        self.sizes = np.bincount(self.labels, minlength=G)
        # certificates: a point every member of a base group accepts — its agreement,
        # or where bounds may move the deepest point of the members' acceptable sets
        self.cert = (self.AX.reshape(G, -1).copy(), self.AW.copy())
        if self.moving:
            for g, idx in enumerate(group_members(self.labels)):
                if idx.size > 1:
                    for part in (0, 1):
                        self.cert[part][g] = deepest_point(
                            self.points[part][idx], self.point_gamma[part][idx])[0]
        # each point's distance to its group's certificate, per part
        self.cert_dist = tuple(
            np.sqrt(((self.points[part] - self.cert[part][self.labels]) ** 2).sum(axis=1))
            for part in (0, 1))
        # the base's infeasibility certificates, by the pair of base groups they
        # separate; with the base's bounds, whether each holds with the margin
        self.conflicts: dict[tuple[int, int], list[Conflict]] = {}
        radii = (self.point_gamma[0] + ACCEPT_TOL / 2, self.point_gamma[1] + ACCEPT_TOL / 2)
        self.holds: dict[int, bool] = {}
        for c in partition.conflicts:
            groups = np.unique(self.labels[c.points])
            if groups.size == 2:
                self.conflicts.setdefault((int(groups[0]), int(groups[1])), []).append(c)
                self.holds[id(c)] = _conflict_holds(c, self.points[c.part], radii[c.part])
        self.pairs: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        self.bands: _Bands | None = None

    def pair_index(self) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """Every pair of points i < j (row-major): squared distances per part and the
        base link's position (or −1); None beyond :data:`MAX_EXACT_PAIRS` pairs."""
        u = self.u
        if self.pairs is None and u * (u - 1) // 2 <= MAX_EXACT_PAIRS:
            i, j = np.triu_indices(u, k=1)
            d2 = (_row_sq_distances(self.points[0], i, j),
                  _row_sq_distances(self.points[1], i, j))
            link = np.full(i.size, -1, dtype=np.int64)
            bi, bj, _ = self.edges
            link[bi * u - bi * (bi + 1) // 2 + (bj - bi - 1)] = np.arange(bi.size)
            self.pairs = (d2[0], d2[1], link)
        return self.pairs

    def pair_bands(self) -> _Bands | None:
        """The pairs sorted by each part's squared distance, when one bound per part
        holds for every base point and decides the base links (quantile and fixed
        bounds); None otherwise (or beyond :data:`MAX_EXACT_PAIRS` pairs)."""
        if self.bands is None:
            pairs = self.pair_index()
            gx, gw = self.point_gamma
            if pairs is None or self.u < 2 or np.any(gx != gx[0]) or np.any(gw != gw[0]):
                return None
            d2x, d2w, link = pairs
            rx, rw = gx[0] + ACCEPT_TOL, gw[0] + ACCEPT_TOL
            if not np.array_equal((d2x <= rx * rx) & (d2w <= rw * rw), link >= 0):
                return None  # the base links are not the threshold's alone
            self.bands = _Bands(d2x, d2w, (float(gx[0]), float(gw[0])))
        return self.bands

    # ------------------------------------------------------------ queries
    def answer(self, query: Population) -> Outcome | None:
        """The query's outcome, or None when it needs a full solve."""
        n0 = self.n
        if (query.k, query.m) != (self.k, self.m) or query.n < n0 \
                or query.has_bounds != self.population.has_bounds:
            return None
        n = query.n
        rows = (query.X.reshape(n, -1), query.W)
        given = np.ones(n) if query.weights is None else query.weights
        declared = (*rows, given[:, None])
        before = (*self.rows, self.given[:, None])
        if query.has_bounds:
            declared += (query.gamma_x[:, None], query.gamma_w[:, None])
            before += (self.population.gamma_x[:, None], self.population.gamma_w[:, None])
        changed = changed_rows(before, declared)
        touched = np.concatenate([changed, np.arange(n0, n)])
        if touched.size == 0 and query.agents == self.population.agents:
            return self.result
        if touched.size > MAX_CHANGED:
            return None
        try:
            gx, gw = self.bounds(query)
        except InputError:  # the full solve reports it
            return None
        return _Query(self, query, rows, changed, touched, gx, gw).solve()


class _SessionMerger(Merger):
    """The link rule replayed with the base's certificates (module doc)."""

    #: labels of groups that are not one base group's points: new points only, or mixed
    NEW, MIXED = -2, -1

    def __init__(self, query: _Query, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.q = query
        self._label_next = self.MIXED

    def decide(self, a: int, b: int) -> Found | None:
        q = self.q
        la, lb = int(self.label[a]), int(self.label[b])
        self._label_next = self.NEW if la == lb == self.NEW else self.MIXED
        for x, y in ((a, b), (b, a)):
            lx = int(self.label[x])
            if lx >= 0 and self.label[y] == self.NEW:
                slack = q.accepts(self.members(y) - q.first_new, lx)
                if slack is not None:
                    self._label_next = lx
                    return (self.cert[0][lx].copy(), self.cert[1][lx].copy(),
                            min(slack[0], self.cert_slack[0, lx]),
                            min(slack[1], self.cert_slack[1, lx]))
        if la >= 0 and lb >= 0 and q.conflicting(self, a, b, la, lb):
            return None
        return super().decide(a, b)

    def merged(self, a: int, b: int, root: int) -> None:
        self.label[root] = self._label_next


class _Query:
    """One incremental re-solve (module doc)."""

    def __init__(self, base: _Base, query: Population, rows: tuple[np.ndarray, np.ndarray],
                 changed: np.ndarray, touched: np.ndarray, gx: np.ndarray,
                 gw: np.ndarray) -> None:
        self.base, self.population, self.rows = base, query, rows
        self.changed, self.touched = changed, touched
        self.gx, self.gw = gx, gw
        self.timings: dict[str, float] = {}

    def solve(self) -> Outcome | None:
        base, pop, gx, gw = self.base, self.population, self.gx, self.gw
        clock = time.perf_counter()
        if not self._points():
            return None
        edges = self._edges()
        if edges is None:
            return None
        ei, ej, ed, origin = edges
        reduced = (pop.X[self.index], pop.W[self.index], gx[self.index], gw[self.index])
        if base.edge_filter is not None:
            ei, ej, ed = self._filter(ei, ej, ed, origin)
        t1 = time.perf_counter()
        self.timings["network"] = t1 - clock
        merger = self._link(ei, ej)
        self.timings["linking"] = time.perf_counter() - t1
        clock = time.perf_counter()
        roots = merger.roots()
        labels = canonical_labels(roots[self.qslots])  # per query point
        tree = merger.tree[: merger.counts[0]]
        network = self.qrank[tree] if tree.size else tree.reshape(-1, 2)
        log = LinkLog("merge", int(ei.size), int(merger.counts[0]), merger.rejected,
                      merger.exact_checks)
        wts = relative_weights(self.wsum)
        G = int(labels.max()) + 1
        stalled = np.zeros(G, dtype=bool)
        EX = EW = None
        n_iter, capped = 0, False
        if base.method == "exact":
            AX, AW, ok = self._agreements(labels, reduced, wts)
        else:  # as the full solve: message passing from the fast path's fixed point
            params = base.params
            links = Edges(self.qrank[ei], self.qrank[ej], ed, self.index.size)
            network = _communication_graph(Partition(labels, network, log), links,
                                           params.get("neighbors", 16))
            AX, AW, ok, out = message_passing(
                base.method, *reduced, wts, labels, network, utility=base.utility,
                tol=params.get("tol"), max_iter=params.get("max_iter"),
                step=params.get("step"), hook=None, mixing=params.get("mixing"),
                record_history=False, warm_start=True)
            EX, EW, n_iter, stalled = out.X, out.W, out.n_iter, out.group_stalled
            capped = n_iter >= (params.get("max_iter") or MAX_ITER[base.method])
            self.timings |= out.timings
        self.timings["optimisation"] = time.perf_counter() - clock
        return readout(pop, reduced, self.index, self.inverse, gx, gw, labels, AX, AW, ok,
                       stalled, EX, EW, n_iter=int(n_iter), capped=capped,
                       method=base.method, utility=base.utility, bounds=base.rule_name,
                       link_rule="merge", links=log, network=network, history=[],
                       timings=self.timings)

    # ------------------------------------------------------------ steps
    def _points(self) -> bool:
        """Slots: the base's points (0..u-1), with the query's bounds, then the query's
        new points. False when the query's points cannot be matched to the base's."""
        base, pop, n = self.base, self.population, self.population.n
        gx, gw = self.gx, self.gw
        u = base.u
        # the bounds of each base point, from its unchanged agents (which must agree)
        stay = np.ones(base.n, dtype=bool)
        stay[self.changed] = False
        kept = np.flatnonzero(stay)
        at = base.inverse[kept]
        now = (base.point_gamma[0].copy(), base.point_gamma[1].copy())
        now[0][at], now[1][at] = gx[kept], gw[kept]
        if not ((now[0][at] == gx[kept]).all() and (now[1][at] == gw[kept]).all()):
            return False
        alive = np.zeros(u, dtype=bool)
        alive[at] = True
        aslot = np.empty(n, dtype=np.int64)
        aslot[: base.n] = base.inverse
        new_keys: dict[bytes, int] = {}
        new_rows: list[int] = []
        for agent in self.touched.tolist():
            xw = _key_bytes(np.concatenate([self.rows[0][agent], self.rows[1][agent]]))
            bounds = (gx[agent], gw[agent])
            slot = -1
            for s in base.xw.get(xw, ()):
                if not alive[s]:  # a base point no one else holds now: revived
                    alive[s] = True
                    now[0][s], now[1][s] = bounds
                if (now[0][s], now[1][s]) == bounds:
                    slot = s
                    break
            if slot < 0:
                key = xw + np.array(bounds, dtype=float).tobytes()
                slot = new_keys.get(key, -1)
                if slot < 0:
                    slot = new_keys[key] = u + len(new_rows)
                    new_rows.append(agent)
            aslot[agent] = slot
        moved = alive & ((now[0] != base.point_gamma[0]) | (now[1] != base.point_gamma[1]))
        if (moved & base.xw_shared).any():  # their order among themselves may change
            return False
        self.moved = np.concatenate([moved, np.zeros(len(new_rows), dtype=bool)])
        self.first_new = u
        nslots = u + len(new_rows)
        new_rows_a = np.array(new_rows, dtype=np.int64)
        self.slot_rows = (np.concatenate([base.points[0], self.rows[0][new_rows_a]]),
                          np.concatenate([base.points[1], self.rows[1][new_rows_a]]))
        self.slot_gamma = (np.concatenate([now[0], gx[new_rows_a]]),
                           np.concatenate([now[1], gw[new_rows_a]]))
        count = np.bincount(aslot, minlength=nslots)
        self.alive = count > 0
        # the full solve's order: lexicographic in (declaration, bounds)
        order = np.arange(nslots, dtype=float)
        if new_rows:
            keys = np.concatenate([*self.slot_rows, self.slot_gamma[0][:, None],
                                   self.slot_gamma[1][:, None]], axis=1)
            new_key_rows = keys[u:]
            live = self.alive[:u]
            pos = np.array([int((_lex_less(keys[:u], r) & live).sum()) for r in new_key_rows])
            among = np.lexsort(new_key_rows.T[::-1])
            rank = np.empty(len(new_rows), dtype=np.int64)
            rank[among] = np.arange(len(new_rows))
            live_pos = np.flatnonzero(live)
            for p in np.unique(pos):
                share = np.flatnonzero(pos == p)
                within = share[np.argsort(rank[share])]
                before = live_pos[p - 1] if p > 0 else -1
                order[u + within] = before + (np.arange(within.size) + 1) / (within.size + 1)
        self.order = order
        qslots = np.flatnonzero(self.alive)
        self.qslots = qslots[np.argsort(order[qslots], kind="stable")]
        self.qrank = np.full(nslots, -1, dtype=np.int64)
        self.qrank[self.qslots] = np.arange(self.qslots.size)
        self.aslot = aslot
        self.inverse = self.qrank[aslot]
        first = np.full(nslots, n, dtype=np.int64)
        np.minimum.at(first, aslot, np.arange(n))
        self.index = first[self.qslots]
        self.wsum = np.bincount(self.inverse, weights=pop.weight)
        slot_w = np.zeros(nslots)
        slot_w[self.qslots] = self.wsum
        self.slot_weight = relative_weights(slot_w)
        return True

    def _edges(self) -> tuple[np.ndarray, ...] | None:
        """Candidate links in slots with their δ and base position (−1: new), sorted as
        the full solve sorts them: the base's (less those of points gone, and those
        changed bounds cut) with the new ones merged in. None when changed bounds need
        a pair index too large."""
        base, u = self.base, self.base.u
        bi, bj, bd = base.edges
        dead = np.flatnonzero(~self.alive[:u])
        removed = [base.point_edges[base.point_ptr[p]:base.point_ptr[p + 1]] for p in dead]
        add_i, add_j = [], []
        if self.moved.any():
            pairs = base.pair_index()
            if pairs is None:
                return None
            gx, gw = self.slot_gamma[0][:u], self.slot_gamma[1][:u]
            alive, moved = self.alive[:u], self.moved[:u]
            bands = base.pair_bands()
            if bands is not None and alive.any() and np.array_equal(moved, alive) \
                    and np.all(gx[alive] == gx[alive][0]) and np.all(gw[alive] == gw[alive][0]):
                lost, gain_i, gain_j = band_flips(bands, pairs, gx, gw, alive, ACCEPT_TOL)
            else:
                flips = _flips if kernels.COMPILED else _flips_numpy
                lost, gain_i, gain_j = flips(*pairs, gx, gw, alive, moved, ACCEPT_TOL)
            removed.append(lost)
            add_i.append(gain_i)
            add_j.append(gain_j)
        nslots = self.alive.size
        new = np.arange(u, nslots)[self.alive[u:]]
        if new.size:
            others = np.flatnonzero(self.alive)
            ii = np.repeat(new, others.size)
            jj = np.tile(others, new.size)
            pair = (ii != jj) & ~((jj >= u) & (jj < ii))  # new–new pairs once
            add_i.append(ii[pair])
            add_j.append(jj[pair])
        gone = np.unique(np.concatenate(removed)) if removed else np.zeros(0, np.int64)
        ni = nj = at = np.zeros(0, dtype=np.int64)
        nd = np.zeros(0)
        if add_i:
            ni, nj, nd = self._linkable(np.concatenate(add_i), np.concatenate(add_j))
            ni, nj, nd, at = self._positions(bi, bj, bd, ni, nj, nd)
        if gone.size == 0 and ni.size == 0:
            return bi, bj, bd, np.arange(bi.size)
        return pick(_merge_edges)(bi, bj, bd, gone, ni, nj, nd, at)

    def _linkable(self, i: np.ndarray, j: np.ndarray
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The mutually acceptable pairs among (i, j), oriented in the full solve's order,
        with their normalised distance (:func:`~pluralguard.core.network.homophily_edges`)."""
        swap = self.order[i] > self.order[j]
        i, j = np.where(swap, j, i), np.where(swap, i, j)
        (X, W), (gx, gw) = self.slot_rows, self.slot_gamma
        dx2, dw2 = _row_sq_distances(X, i, j), _row_sq_distances(W, i, j)
        keep = (dx2 <= (np.minimum(gx[i], gx[j]) + ACCEPT_TOL) ** 2) & \
               (dw2 <= (np.minimum(gw[i], gw[j]) + ACCEPT_TOL) ** 2)
        dist = distance_from_squares(dx2[keep], dw2[keep], self.base.k, self.base.m)
        return i[keep], j[keep], dist

    def _positions(self, bi: np.ndarray, bj: np.ndarray, bd: np.ndarray, ni: np.ndarray,
                   nj: np.ndarray, nd: np.ndarray) -> tuple[np.ndarray, ...]:
        """New links sorted by (δ, i, j) in the full solve's order, and the base
        position each goes before."""
        order = self.order
        srt = np.lexsort((order[nj], order[ni], nd))
        ni, nj, nd = ni[srt], nj[srt], nd[srt]
        at = np.searchsorted(bd, nd, side="left")
        end = np.searchsorted(bd, nd, side="right")
        for t in np.flatnonzero(end > at):  # equal distances: resolve by (i, j)
            key = (order[ni[t]], order[nj[t]])
            s = at[t]
            while s < end[t] and (order[bi[s]], order[bj[s]]) < key:
                s += 1
            at[t] = s
        return ni, nj, nd, at

    def _filter(self, ei: np.ndarray, ej: np.ndarray, ed: np.ndarray, origin: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The edge filter applied as the full solve applies it: to the candidate links
        of the reduced population (identical declarations merged), in its indices
        (through the filter's session, told each point's slot and each link's base
        position, when it has one)."""
        pop, index, base = self.population, self.index, self.base
        reduced = pop.subset(index).replace(gamma_x=self.gx[index], gamma_w=self.gw[index],
                                            weights=self.wsum)
        edges = Edges(self.qrank[ei], self.qrank[ej], ed, index.size)
        if base.filter_session is not None:
            kept = base.filter_session(reduced, edges, self.qslots, origin)
        else:
            kept = base.edge_filter(reduced, edges)
        return self.qslots[kept.i], self.qslots[kept.j], kept.distance

    def _link(self, ei: np.ndarray, ej: np.ndarray) -> _SessionMerger:
        base, u = self.base, self.base.u
        nslots = self.alive.size
        merger = _SessionMerger(
            self, X=self.slot_rows[0], W=self.slot_rows[1], gamma_x=self.slot_gamma[0],
            gamma_w=self.slot_gamma[1], weights=self.slot_weight, k=base.k, m=base.m,
            order=self.order)
        slack = self._certificate_slack()
        merger.cert, merger.cert_slack = base.cert, slack
        valid = (slack >= PROOF_MARGIN).all(axis=0)
        label = np.full(nslots, _SessionMerger.NEW, dtype=np.int64)
        label[:u] = np.where(valid[base.labels], base.labels, _SessionMerger.MIXED)
        merger.label = label
        if nslots > u:
            # each new point's slack around each base certificate, per part
            self.accept_slack = np.stack([
                merger.radii[part][u:, None] - cdist(self.slot_rows[part][u:], base.cert[part])
                for part in (0, 1)])
            self.accept_slack[:, :, ~valid] = -np.inf
        merger.run(ei, ej)
        return merger

    def _certificate_slack(self) -> np.ndarray:
        """Per part and base group: the slack of its certificate under the query's
        bounds, the smallest r_i + τ/2 − ‖cert − c_i‖ over its members (points gone
        included, which only makes it smaller)."""
        base, u = self.base, self.base.u
        G = base.AX.shape[0]
        slack = np.full((2, G), np.inf)
        for part in (0, 1):
            gamma = self.slot_gamma[part][:u]
            finite = np.isfinite(gamma)
            np.minimum.at(slack[part], base.labels[finite],
                          gamma[finite] + ACCEPT_TOL / 2 - base.cert_dist[part][finite])
        return slack

    def accepts(self, new: np.ndarray, group: int) -> tuple[float, float] | None:
        """The slack of new points (offsets from the first new slot) around a base
        certificate, per part, if they all accept it with the margin; else None."""
        slack = self.accept_slack[:, new, group].min(axis=1)
        return (float(slack[0]), float(slack[1])) if (slack >= PROOF_MARGIN).all() else None

    def conflicting(self, merger: Merger, a: int, b: int, la: int, lb: int) -> bool:
        """Whether a base certificate proves groups a ∪ b (of base groups la, lb)
        infeasible under the query's bounds."""
        base = self.base
        for c in base.conflicts.get((min(la, lb), max(la, lb)), ()):
            if not self.alive[c.points].all():
                continue
            if not all(merger.find(int(p)) in (a, b) for p in c.points):
                continue
            if _conflict_holds(c, merger.points[c.part], merger.radii[c.part]) \
                    if self.moved[c.points].any() else base.holds[id(c)]:
                return True
        return False

    def _agreements(self, labels: np.ndarray, reduced: tuple[np.ndarray, ...],
                    wts: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per query group: the base's agreement where provably unchanged, else solved."""
        base = self.base
        X, W, gx, gw = reduced
        members = group_members(labels)
        G = len(members)
        AX, AW = np.empty((G, base.k, base.m)), np.empty((G, base.m))
        ok = np.ones(G, dtype=bool)
        slot_label = np.full(self.alive.size, -1, dtype=np.int64)
        slot_label[: base.u] = base.labels
        # points whose weight may have changed (the old and new points of the changed
        # agents: a group keeps its agreement only with the same weights, up to scale),
        # and points whose bounds changed
        slot_label[base.inverse[self.changed]] = -1
        slot_label[self.aslot[self.touched]] = -1
        slot_label[self.moved] = -1
        for g, idx in enumerate(members):
            slots = self.qslots[idx]
            same = slot_label[slots]
            R = int(same[0])
            if R >= 0 and (same == R).all() and idx.size == base.sizes[R]:
                AX[g], AW[g], ok[g] = base.AX[R], base.AW[R], base.ok[R]
            else:
                AX[g], AW[g], ok[g] = _exact_group(X, W, gx, gw, wts, idx, base.utility)
        return AX, AW, ok


def _conflict_holds(c: Conflict, points: np.ndarray, radii: np.ndarray) -> bool:
    """Whether an infeasibility certificate still holds, with the proof margin."""
    eta = PROOF_MARGIN
    if c.kind == "pair":
        i, j = c.points
        reach = radii[i] + radii[j] + eta
        return bool(np.sqrt(((points[i] - points[j]) ** 2).sum()) > reach)
    a, r, lam = points[c.points], radii[c.points] + eta, c.multipliers
    project = project_box if c.part == 0 else project_simplex
    x = project((c.c + lam @ a) / (1.0 + lam.sum()))
    value = 0.5 * float(((x - c.c) ** 2).sum()) + float(
        lam @ (0.5 * (((x - a) ** 2).sum(axis=1) - r * r)))
    upper = 0.5 * float(np.min(np.sqrt(((a - c.c) ** 2).sum(axis=1)) + r)) ** 2
    return value > upper * (1 + 1e-9) + 1e-15
