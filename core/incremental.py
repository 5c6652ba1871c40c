"""Attack queries near a base population (:meth:`Mechanism.session`): incremental re-solves.

An adaptive attacker queries the mechanism hundreds of times on declarations that
differ from a base population in a few agents' rows (and sometimes a few appended
Sybil rows). A session answers every query as a fresh call would — same labels,
agreements, memberships, utilities, bounds and link counts — recomputing only what
the changed rows can affect. Each step of :func:`~pluralguard.core.solver.solve_agreements`
(``exact``, ``merge`` link rule) is redone incrementally:

* **bounds** — ``declared`` and ``fixed`` bounds are read off the rows. Under
  ``quantile:q`` the base's pairwise distances are kept sorted with their
  multiplicities; a query removes the changed agents' old distances and adds their new
  ones (:func:`scipy.spatial.distance.cdist`, bit for bit the distances the full solve
  takes from :func:`~scipy.spatial.distance.pdist`), and the two order statistics the
  quantile interpolates are found by bisection over the merged counts
  (:func:`~pluralguard.core.bounds.interpolate_rank`, the full solve's own formula);
* **distinct declarations** — unchanged agents keep their points; a changed or
  appended agent's declaration is looked up among the base's points or becomes a new
  point, placed in the full solve's (lexicographic) order;
* **candidate links** — the base's links among surviving points are kept; the new
  points' links are computed against every point; when a quantile threshold moves,
  the pairs whose distance lies between the old and the new threshold (kept sorted
  per part) are re-decided, with the full solve's own distance kernel;
* **link rule** — the walk over the links is replayed from the start (a compiled
  kernel) with the base's *certificates*: every member of a base group accepts its
  agreement with a margin (:data:`~pluralguard.core.linking.PROOF_MARGIN`), so a union
  of points of one base group (and of new points that accept it too) is feasible,
  and a union holding one of the base's infeasible sets
  (:class:`~pluralguard.core.linking.Conflict`, re-checked under the query's bounds
  with the margin) is not. Only unions neither
  certificate settles are checked (the full solve's own check). Merge decisions are
  functions of the union alone (:mod:`~pluralguard.core.linking`), so the replay
  reaches the full solve's partition and accepted links;
* **agreements** — a group equal to a base group keeps the base's agreement bit for
  bit when its members' bounds are unchanged; every other group (all groups under a
  moved quantile — the agreement step returns at once where no bound binds) is solved
  as the full solve solves it, members in the same order;
* **read-out** — as the full solve (:func:`~pluralguard.core.solver.readout`).

Only :attr:`~pluralguard.core.linking.LinkLog.exact_checks` (conic solves the link
rule needed) and the timings may differ from a full solve: they count the session's
own work.

Queries a session cannot answer incrementally are solved in full (same answer):
other mechanism kinds or methods, social graphs, edge filters (network defenses),
``max_links``, custom bound rules, quantiles over more than
:data:`~pluralguard.core.bounds.MAX_EXACT_PAIRS` distinct pairs, fewer agents than
the base, or more than :data:`MAX_CHANGED` changed rows. Transforms (declaration
defenses) run first on every query, as in :meth:`Mechanism.__call__`, and the
changes are taken after them. A session is not thread-safe.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy.spatial.distance import cdist

from .bounds import (
    MAX_EXACT_PAIRS,
    BoundPolicy,
    distance_multiset,
    interpolate_rank,
    pairwise_distance_quantile,
)
from .convex import enclosing_ball
from .errors import InputError
from .geometry import ACCEPT_TOL, D_W, diameter_x, project_box, project_simplex
from .kernels import jit, pick
from .linking import PROOF_MARGIN, Conflict, Found, LinkLog, Merger, canonical_labels
from .model import Population, relative_weights
from .network import _row_sq_distances
from .solver import _exact_group, group_members, readout, solve_agreements

if TYPE_CHECKING:
    from .mechanism import Mechanism, Outcome

#: Most changed or appended rows answered incrementally (beyond it, a full solve).
MAX_CHANGED = 64
#: Parameters whose default the incremental path needs.
_DEFAULTS = {"method": "exact", "link_rule": "merge", "social_graph": None,
             "edge_filter": None, "max_links": None, "deduplicate": True, "mixing": None}


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


class Session:
    """Answers hook-free queries like ``mechanism(population)``, reusing a base solve.

    Hold one per attack plan and call it on many populations near ``base``; see the
    module doc for what is reused. The base is solved at the first call.
    """

    def __init__(self, mechanism: Mechanism, base: Population) -> None:
        from .mechanism import registered_kind

        self.mechanism = mechanism
        self.function = registered_kind(mechanism.kind).function
        self.base_input = base
        self._base: _Base | None = None
        self._memo: tuple[str, Outcome | None] | None = None
        self.incremental = mechanism.kind == "agreements" and all(
            mechanism.params.get(k, v) is v or mechanism.params.get(k, v) == v
            for k, v in _DEFAULTS.items())
        if self.incremental:
            try:
                policy = BoundPolicy.parse(mechanism.params.get("bounds", "declared"))
            except InputError:  # reported by the solve itself, at the first call
                policy = None
            self.incremental = isinstance(policy, BoundPolicy)

    def __call__(self, population: Population) -> Outcome:
        declared = self.mechanism.declare(population)
        if self.incremental and self._base is None:
            self._base = _Base(self.mechanism.params, self.mechanism.declare(self.base_input))
            self.incremental = self._base.supported
        if self.incremental:
            answer = self._base.answer(declared)
            if answer is not None:
                return answer
            return self.function(declared, **self.mechanism.params)
        # no incremental path: the base answer is kept, every other query is solved
        key = declared.fingerprint()
        if self._memo is None:
            base_key = self.mechanism.declare(self.base_input).fingerprint()
            self._memo = (base_key, None)
        if key != self._memo[0]:
            return self.function(declared, **self.mechanism.params)
        if self._memo[1] is None:
            self._memo = (key, self.function(declared, **self.mechanism.params))
        return self._memo[1]


# ---------------------------------------------------------------- bounds
class _Quantile:
    """The pairwise distances of one part's rows, kept sorted, for exact updates."""

    def __init__(self, rows: np.ndarray, q: float, random_state: int) -> None:
        self.rows, self.q, self.random_state = rows, q, random_state
        uniq, counts = np.unique(rows, axis=0, return_counts=True)
        self.exact = uniq.shape[0] * (uniq.shape[0] - 1) // 2 <= MAX_EXACT_PAIRS
        self.values, self.cum = distance_multiset(uniq, counts) if self.exact else (None, None)

    def value(self, rows: np.ndarray, changed: np.ndarray, touched: np.ndarray) -> float:
        """The quantile over ``rows`` (a query): base rows ``changed`` were replaced and
        ``touched`` (changed plus appended) hold the new rows."""
        n, n0 = rows.shape[0], self.rows.shape[0]
        distinct_bound = (n0 + touched.size) * (n0 + touched.size - 1) // 2
        if not self.exact or distinct_bound > MAX_EXACT_PAIRS or n < 2:
            return pairwise_distance_quantile(rows, self.q, random_state=self.random_state)
        keep0 = np.ones(n0, dtype=bool)
        keep0[changed] = False
        keep = np.ones(n, dtype=bool)
        keep[touched] = False
        old, new = self.rows[changed], rows[touched]
        removed = np.sort(np.concatenate([cdist(old, self.rows[keep0]).ravel(),
                                          _within(old)]))
        added = np.sort(np.concatenate([cdist(new, rows[keep]).ravel(), _within(new)]))
        values, cum = self.values, self.cum

        def order_statistics(ranks: list[int]) -> list[float]:
            # the r-th smallest (0-based) is the smallest v with count_le(v) >= r + 1;
            # among base values it lies where the base's own count is within the
            # removed / added counts of r + 1, or else it is an added value
            lo = int(np.searchsorted(cum, min(ranks) + 1 - added.size, side="left"))
            hi = int(np.searchsorted(cum, max(ranks) + 1 + removed.size, side="left")) + 1
            cand = np.sort(np.concatenate([values[lo:hi], added]))
            at = np.searchsorted(values, cand, side="right") - 1
            count = (np.where(at >= 0, cum[np.maximum(at, 0)], 0.0)
                     - np.searchsorted(removed, cand, side="right")
                     + np.searchsorted(added, cand, side="right"))
            return [float(cand[np.argmax(count >= r + 1)]) for r in ranks]

        return interpolate_rank(order_statistics, n * (n - 1) // 2, self.q)

def _within(rows: np.ndarray) -> np.ndarray:
    """Distances between pairs of ``rows`` (pdist's values)."""
    if rows.shape[0] < 2:
        return np.zeros(0)
    i, j = np.triu_indices(rows.shape[0], k=1)
    return cdist(rows, rows)[i, j]


def _lex_less(rows: np.ndarray, key: np.ndarray) -> np.ndarray:
    """Which rows sort before ``key`` lexicographically (as :func:`numpy.unique` sorts)."""
    differ = rows != key
    first = np.argmax(differ, axis=1)
    at = np.arange(rows.shape[0])
    return differ[at, first] & (rows[at, first] < key[first])


@jit
def _merge_edges(bi: np.ndarray, bj: np.ndarray, gone: np.ndarray, ni: np.ndarray,
                 nj: np.ndarray, at: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The base links without positions ``gone`` (sorted), with new links (i, j)
    inserted before base positions ``at`` (non-decreasing), in one pass."""
    size = bi.size - gone.size + ni.size
    ei, ej = np.empty(size, dtype=np.int64), np.empty(size, dtype=np.int64)
    out, g, k = 0, 0, 0
    for p in range(bi.size + 1):
        while k < ni.size and at[k] == p:
            ei[out], ej[out] = ni[k], nj[k]
            out += 1
            k += 1
        if p == bi.size:
            break
        if g < gone.size and gone[g] == p:
            g += 1
            continue
        ei[out], ej[out] = bi[p], bj[p]
        out += 1
    return ei, ej


def _pair_index(i: np.ndarray, j: np.ndarray, u: int) -> np.ndarray:
    """Position of pairs i < j among ``np.triu_indices(u, k=1)``."""
    return i * u - i * (i + 1) // 2 + (j - i - 1)


def _key_bytes(row: np.ndarray) -> bytes:
    return (row + 0.0).tobytes()  # +0.0: −0.0 and 0.0 are one key, as np.unique has it


# ---------------------------------------------------------------- the base
class _Base:
    """The base population's solve and what queries reuse from it."""

    def __init__(self, params: dict[str, Any], declared: Population) -> None:
        self.params = dict(params)
        self.population = declared
        capture: dict = {}
        self.result = solve_agreements(declared, capture=capture, **self.params)
        self.key = declared.fingerprint()
        self.policy: BoundPolicy = capture["policy"]
        self.utility = self.params.get("utility", "quadratic")
        self.random_state = self.params.get("random_state", 0)
        n, k, m = declared.X.shape
        self.n, self.k, self.m = n, k, m
        self.rows = (declared.X.reshape(n, -1), declared.W)
        self.given = np.ones(n) if declared.weights is None else declared.weights
        self.uniform = self.policy.kind != "declared"
        self.gamma = (capture["gamma_x"], capture["gamma_w"])  # per agent, in force
        reduced: Population = capture["reduced"]
        self.index, self.inverse = capture["index"], capture["inverse"]
        u = reduced.n
        self.u = u
        self.points = (reduced.X.reshape(u, -1).copy(), reduced.W.copy())
        self.point_gamma = (reduced.gamma_x.copy(), reduced.gamma_w.copy())
        self.keys = {_key_bytes(r): p for p, r in enumerate(self._key_rows(
            self.points[0], self.points[1], *self.point_gamma))}
        self.key_rows = self._key_rows(self.points[0], self.points[1], *self.point_gamma)
        edges = capture["edges"]
        self.edges = (edges.i, edges.j, edges.distance)
        ends = np.concatenate([edges.i, edges.j])  # each point's links (positions)
        self.point_edges = np.tile(np.arange(edges.i.size), 2)[np.argsort(ends,
                                                                         kind="stable")]
        self.point_ptr = np.searchsorted(np.sort(ends), np.arange(u + 1))
        partition = capture["partition"]
        self.labels = partition.labels  # per point
        self.AX, self.AW, self.ok = capture["AX"], capture["AW"], capture["ok"]
        G = self.AX.shape[0]
        self.sizes = np.bincount(self.labels, minlength=G)
        # certificates: a point every member of a base group accepts with a margin —
        # its agreement, or under a quantile (whose threshold moves) the centre of the
        # group's smallest enclosing ball, the most robust common point
        self.cert = (self.AX.reshape(G, -1).copy(), self.AW.copy())
        if self.uniform and self.policy.kind == "quantile":
            for g, idx in enumerate(group_members(self.labels)):
                if idx.size > 1:
                    for part in (0, 1):
                        self.cert[part][g] = enclosing_ball(self.points[part][idx])[0]
        # per part: the farthest member from the certificate, and the smallest slack of
        # a member's ball around it (with the base's bounds)
        self.reach = np.zeros((2, G))
        self.slack = np.full((2, G), np.inf)
        for part in (0, 1):
            d = np.sqrt(((self.points[part] - self.cert[part][self.labels]) ** 2).sum(axis=1))
            finite = np.isfinite(self.point_gamma[part])
            slack = np.where(finite, self.point_gamma[part] + ACCEPT_TOL / 2 - d, np.inf)
            np.maximum.at(self.reach[part], self.labels, np.where(finite, d, 0.0))
            np.minimum.at(self.slack[part], self.labels, slack)
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
        self.supported = True
        if self.policy.kind == "quantile":
            self.quantiles = (_Quantile(self.rows[0], self.policy.q, self.random_state),
                              _Quantile(self.rows[1], self.policy.q, self.random_state))
            self.supported = self.quantiles[0].exact and self.quantiles[1].exact \
                and u * (u - 1) // 2 <= MAX_EXACT_PAIRS
            if self.supported:
                self._index_pairs()
        if self.policy.kind == "declared" and not declared.has_bounds:
            self.supported = False

    def _key_rows(self, X: np.ndarray, W: np.ndarray, gx: np.ndarray,
                  gw: np.ndarray) -> np.ndarray:
        """The keys points are told apart and ordered by (their bounds only when they
        differ between agents)."""
        if self.uniform:
            return np.concatenate([X, W], axis=1)
        return np.concatenate([X, W, gx[:, None], gw[:, None]], axis=1)

    def _index_pairs(self) -> None:
        """Every pair of points with its squared distance per part, sorted per part."""
        u = self.u
        i, j = np.triu_indices(u, k=1)
        self.pair_i, self.pair_j = i, j
        self.pair_d2 = (_row_sq_distances(self.points[0], i, j),
                        _row_sq_distances(self.points[1], i, j))
        self.pair_order = tuple(np.argsort(d, kind="stable") for d in self.pair_d2)
        self.pair_sorted = tuple(d[o] for d, o in zip(self.pair_d2, self.pair_order,
                                                       strict=True))
        # the base link of each pair (its position), or -1
        bi, bj, _ = self.edges
        self.pair_edge = np.full(i.size, -1, dtype=np.int64)
        self.pair_edge[_pair_index(bi, bj, u)] = np.arange(bi.size)

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
        differ = (rows[0][:n0] != self.rows[0]).any(axis=1) \
            | (rows[1][:n0] != self.rows[1]).any(axis=1) | (given[:n0] != self.given)
        if query.has_bounds:
            differ |= (query.gamma_x[:n0] != self.population.gamma_x) \
                | (query.gamma_w[:n0] != self.population.gamma_w)
        changed = np.flatnonzero(differ)
        touched = np.concatenate([changed, np.arange(n0, n)])
        if touched.size == 0 and query.agents == self.population.agents:
            return self.result
        if touched.size > MAX_CHANGED:
            return None
        return _Query(self, query, rows, changed, touched).solve()


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
                 changed: np.ndarray, touched: np.ndarray) -> None:
        self.base, self.population, self.rows = base, query, rows
        self.changed, self.touched = changed, touched
        self.timings: dict[str, float] = {}

    def solve(self) -> Outcome:
        base, pop = self.base, self.population
        clock = time.perf_counter()
        gx, gw = self._bounds()
        self.timings["bounds"] = time.perf_counter() - clock
        clock = time.perf_counter()
        self._points(gx, gw)
        ei, ej = self._edges()
        t1 = time.perf_counter()
        self.timings["network"] = t1 - clock
        merger = self._link(ei, ej)
        self.timings["linking"] = time.perf_counter() - t1
        clock = time.perf_counter()
        roots = merger.roots()
        labels = canonical_labels(roots[self.qslots])  # per query point
        # the distinct points, as the full solve's reduced population holds them
        reduced = (pop.X[self.index], pop.W[self.index], gx[self.index], gw[self.index])
        AX, AW, ok = self._agreements(labels, reduced, relative_weights(self.wsum))
        self.timings["optimisation"] = time.perf_counter() - clock
        tree = merger.tree[: merger.counts[0]]
        network = self.qrank[tree] if tree.size else tree.reshape(-1, 2)
        log = LinkLog("merge", int(ei.size), int(merger.counts[0]), merger.rejected,
                      merger.exact_checks)
        return readout(pop, reduced, self.index, self.inverse, gx, gw, labels, AX, AW, ok,
                       np.zeros(AX.shape[0], dtype=bool), None, None, n_iter=0,
                       capped=False, method="exact", utility=base.utility,
                       bounds=str(base.policy), link_rule="merge", links=log,
                       network=network, history=[], timings=self.timings)

    # ------------------------------------------------------------ steps
    def _bounds(self) -> tuple[np.ndarray, np.ndarray]:
        base, pop, n = self.base, self.population, self.population.n
        policy = base.policy
        if policy.kind == "declared":
            return np.array(pop.gamma_x), np.array(pop.gamma_w)
        if policy.kind == "fixed":
            return np.full(n, policy.gamma_x), np.full(n, policy.gamma_w)
        values = [quantile.value(rows, self.changed, self.touched)
                  for quantile, rows in zip(base.quantiles, self.rows, strict=True)]
        return np.full(n, values[0]), np.full(n, values[1])

    def _points(self, gx: np.ndarray, gw: np.ndarray) -> None:
        """Slots: the base's points (0..u-1), then the query's new points."""
        base, pop, n = self.base, self.population, self.population.n
        u = base.u
        self.gamma_now = (float(gx[0]), float(gw[0])) if base.uniform else None
        aslot = np.empty(n, dtype=np.int64)
        aslot[: base.n] = base.inverse
        keyrows = base._key_rows(self.rows[0][self.touched], self.rows[1][self.touched],
                                 gx[self.touched], gw[self.touched])
        new_keys: dict[bytes, int] = {}
        new_rows: list[int] = []
        for agent, row in zip(self.touched.tolist(), keyrows, strict=True):
            kb = _key_bytes(row)
            slot = base.keys.get(kb)
            if slot is None:
                slot = new_keys.get(kb)
                if slot is None:
                    slot = new_keys[kb] = u + len(new_rows)
                    new_rows.append(agent)
            aslot[agent] = slot
        self.first_new = u
        nslots = u + len(new_rows)
        new_rows_a = np.array(new_rows, dtype=np.int64)
        self.slot_rows = (np.concatenate([base.points[0], self.rows[0][new_rows_a]]),
                          np.concatenate([base.points[1], self.rows[1][new_rows_a]]))
        if base.uniform:
            self.slot_gamma = (np.full(nslots, gx[0]), np.full(nslots, gw[0]))
        else:
            self.slot_gamma = (np.concatenate([base.point_gamma[0], gx[new_rows_a]]),
                               np.concatenate([base.point_gamma[1], gw[new_rows_a]]))
        count = np.bincount(aslot, minlength=nslots)
        self.alive = count > 0
        # the full solve's order: lexicographic in the keys
        order = np.arange(nslots, dtype=float)
        if new_rows:
            new_key_rows = base._key_rows(self.slot_rows[0][u:], self.slot_rows[1][u:],
                                          self.slot_gamma[0][u:], self.slot_gamma[1][u:])
            pos = np.array([int(_lex_less(base.key_rows, r).sum()) for r in new_key_rows])
            among = np.lexsort(new_key_rows.T[::-1])
            rank = np.empty(len(new_rows), dtype=np.int64)
            rank[among] = np.arange(len(new_rows))
            for p in np.unique(pos):
                share = np.flatnonzero(pos == p)
                within = share[np.argsort(rank[share])]
                order[u + within] = p - 1 + (np.arange(within.size) + 1) / (within.size + 1)
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

    def _edges(self) -> tuple[np.ndarray, np.ndarray]:
        """Candidate links in slots, sorted as the full solve sorts them: the base's
        (less those of points gone, and those a moved threshold re-decides) with the
        new ones merged in."""
        base, u = self.base, self.base.u
        bi, bj, bd = base.edges
        dead = np.flatnonzero(~self.alive[:u])
        removed = [base.point_edges[base.point_ptr[p]:base.point_ptr[p + 1]] for p in dead]
        add_i, add_j = [], []
        if base.uniform and base.policy.kind == "quantile":
            flip_i, flip_j, flipped = self._band()
            removed.append(flipped)
            add_i.append(flip_i)
            add_j.append(flip_j)
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
        if add_i:
            ni, nj, nd = self._linkable(np.concatenate(add_i), np.concatenate(add_j))
            ni, nj, at = self._positions(bi, bj, bd, ni, nj, nd)
        if gone.size == 0 and ni.size == 0:
            return bi, bj
        return pick(_merge_edges)(bi, bj, gone, ni, nj, at)

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
        k, m = self.base.k, self.base.m
        dist = np.sqrt(0.5 * (dx2[keep] / diameter_x(k, m) ** 2 + dw2[keep] / D_W**2))
        return i[keep], j[keep], dist

    def _band(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Base pairs whose link a moved quantile threshold may flip: those between the
        old and the new threshold in either part. Returns the pairs to re-decide as new
        candidates and the base links (positions) they replace."""
        base = self.base
        pairs: list[np.ndarray] = []
        for part in (0, 1):
            old = (float(base.gamma[part][0]) + ACCEPT_TOL) ** 2
            now = (self.gamma_now[part] + ACCEPT_TOL) ** 2
            if old == now:
                continue
            lo, hi = min(old, now), max(old, now)
            ordered = base.pair_sorted[part]
            start = np.searchsorted(ordered, lo, side="left")
            stop = np.searchsorted(ordered, hi, side="right")
            pairs.append(base.pair_order[part][start:stop])
        if not pairs:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64), \
                np.zeros(0, dtype=np.int64)
        p = np.unique(np.concatenate(pairs))
        # the base links among them are dropped and every one of them re-decided
        removed = base.pair_edge[p]
        removed = removed[removed >= 0]
        i, j = base.pair_i[p], base.pair_j[p]
        live = self.alive[i] & self.alive[j]
        return i[live], j[live], removed

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
        return ni, nj, at

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
        """Per part and base group: the slack of its certificate with the query's bounds."""
        base = self.base
        if base.policy.kind != "quantile":
            return base.slack
        now = np.array(self.gamma_now)[:, None] + ACCEPT_TOL / 2
        return np.where(np.isfinite(now), now - base.reach, np.inf)

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
            moved = base.policy.kind == "quantile" and self.gamma_now != (
                float(base.gamma[0][0]), float(base.gamma[1][0]))
            if _conflict_holds(c, merger.points[c.part], merger.radii[c.part]) if moved \
                    else base.holds[id(c)]:
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
        # points whose weight may have changed: the old and new points of the changed
        # agents (a group keeps its agreement only with the same weights, up to scale)
        slot_label[base.inverse[self.changed]] = -1
        slot_label[self.aslot[self.touched]] = -1
        for g, idx in enumerate(members):
            slots = self.qslots[idx]
            same = slot_label[slots]
            R = int(same[0])
            if R >= 0 and (same == R).all() and idx.size == base.sizes[R] \
                    and self._unchanged(R):
                AX[g], AW[g], ok[g] = base.AX[R], base.AW[R], base.ok[R]
            else:
                AX[g], AW[g], ok[g] = _exact_group(X, W, gx, gw, wts, idx, base.utility)
        return AX, AW, ok

    def _unchanged(self, group: int) -> bool:
        """Whether a base group's agreement is the same under the query's bounds: the
        same members with the same bounds (a moved quantile re-solves every group; the
        agreement step returns at once where no bound binds)."""
        base = self.base
        if base.policy.kind != "quantile" or base.sizes[group] == 1:
            return True
        return self.gamma_now == (float(base.gamma[0][0]), float(base.gamma[1][0]))


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


