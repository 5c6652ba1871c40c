"""Link rules: how the dynamic homophily network settles into groups (DESIGN §3.3).

``merge`` (default) — *feasible agglomeration*. Start from singletons (every agent
is its own group and its declaration is a point of its own acceptable set). Visit
the edges of the initial homophily network closest first (by δ, ties by index);
for an edge joining two different groups A and B, link them — merge the groups —
iff the union's acceptable sets still intersect, ∩_{i∈A∪B} F_i ≠ ∅ (a convex
feasibility check).

*Termination and validity.* Each accepted link merges two groups, so there are at
most n − 1 merges, and every edge is visited once: the rule settles after at most
|E| checks, whatever the data (the prototype's free re-linking never did). Every
group has a common acceptable point at every step (valid by construction). If A ∪ B
is infeasible then so is every A' ∪ B' with A' ⊇ A, B' ⊇ B (intersections only
shrink), so a rejected pair never becomes mergeable later: the final partition is
*maximal along the links* — no two groups joined by a homophily edge can merge. That
is all it guarantees: groups only merge along edges, so two groups with no edge
between their members may still have a common acceptable point (on ``pve_like`` at
``quantile:0.5``, 104 of the 113 such pairs do; DESIGN §3.3). Link changes are the
accepted merges and the rejected (cut) candidate links, reported in :class:`LinkLog`.

*The check.* A and B merge iff the balls B(c_i, γ_i + τ/2), i ∈ A ∪ B, have a common
point, τ the acceptance tolerance: a point of that intersection is accepted by every
member with a margin of τ/2, and the agreement step (which first tries the bounds
themselves, then the same widening) always finds one. (The box and the simplex never
matter: projecting onto them moves no point farther from a centre inside them.) The
decision is a *function of the union*, whatever the order in which the groups were
built — which is what lets a query near a known population re-decide only what
changed (:mod:`~pluralguard.core.incremental`). Tests run cheapest first, and the
cheap ones only count when they prove the answer with a margin of
:data:`PROOF_MARGIN`:

1. the larger group's known common point lies inside every ball of the smaller one;
2. a point of the segment between the two groups' known points lies inside every
   ball of the union (each constraint is a quadratic in the segment parameter);
3. two members' balls are disjoint (for unions with few pairs);
4. otherwise the *canonical* check: the dual projection of the union's weighted mean,
   members in index order, onto the intersection
   (:mod:`~pluralguard.core.projection`), which finds a common point or certifies that
   there is none, and in the rare case it can tell neither an exact conic solve
   (:func:`~pluralguard.core.convex.solve_group`) — the cascade of
   :func:`~pluralguard.core.feasibility.common_point`.

A proof with that margin and the canonical check agree whenever the union's
feasibility margin exceeds the canonical check's accuracy (far below
:data:`PROOF_MARGIN`), and within the margin only the canonical check decides; so
every decision depends on the union alone.

The walk over the edges, union–find and the proofs 1–3 run as compiled kernels when
numba is installed (:mod:`~pluralguard.core.link_kernel`).

``static`` — the initial homophily components, never cut. Kept to reproduce the
prototype's finding that those components need not have a common acceptable point;
such groups are reported as not having reached consensus.

It stays one piece (a little over 500 lines) because the rule's module doc, its
decision procedure (:class:`Merger`: walk, proofs, canonical check, certificates of
refusal) and its result types are one contract: the incremental session replays the
same decisions and reads the same certificates. Its compiled kernels are
:mod:`~pluralguard.core.link_kernel`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from . import kernels, link_kernel
from .errors import InputError
from .feasibility import common_point
from .geometry import ACCEPT_TOL, project_box, project_simplex
from .kernels import pick
from .model import Population
from .network import Edges, homophily_edges
from .projection import FEASIBLE, Projection, project_intersection

LINK_RULES = ("merge", "static")

#: A network rule: (declarations with bounds in force, candidate edges) -> kept edges.
EdgeFilter = Callable[[Population, Edges], Edges]

#: A cheap test proves feasibility (or infeasibility) only with this margin on every
#: ball (module doc).
PROOF_MARGIN = 1e-8
#: The canonical check accepts a common point that exceeds a ball by at most this.
SOLVE_TOL = PROOF_MARGIN / 2
#: Candidate links screened together by the Python walk.
CHUNK = 4096
#: Largest |A|·|B| for which the pairwise disjoint-ball test is tried.
PAIRWISE_TEST_MAX = 65_536


def check_link_rule(rule: str) -> str:
    """Return ``rule`` if known, else raise :class:`InputError`."""
    if rule not in LINK_RULES:
        raise InputError("link_rule", f"unknown link rule {rule!r}",
                         f"use one of {', '.join(LINK_RULES)}")
    return rule


@dataclass(frozen=True)
class LinkLog:
    """What the link rule did.

    Attributes
    ----------
    rule : str
    candidate_edges : int
        Edges of the initial homophily network.
    merges : int
        Links accepted (groups merged).
    rejected : int
        Candidate links cut because the union had no common acceptable point.
    exact_checks : int
        Feasibility checks the dual projection left undecided (solved by the conic
        solver).
    """

    rule: str
    candidate_edges: int
    merges: int
    rejected: int
    exact_checks: int


@dataclass(frozen=True)
class Conflict:
    """A certificate that some balls have no common point (one part, X or W).

    Any union holding all of ``points`` is infeasible. ``kind`` is ``pair`` (two
    disjoint balls) or ``dual`` (the dual projection's certificate: multipliers
    ``multipliers`` on the balls of ``points`` whose dual value, from centre ``c``,
    exceeds every value a non-empty intersection allows).
    """

    part: int
    kind: str
    points: np.ndarray
    multipliers: np.ndarray | None = None
    c: np.ndarray | None = None


@dataclass(frozen=True)
class Partition:
    """Groups produced by a link rule.

    Attributes
    ----------
    labels : ndarray of int, shape (n,)
        Group of each agent, numbered in order of each group's smallest member.
    tree : ndarray of int, shape (n_links, 2)
        Links of the final network used for message passing: a spanning forest of
        the groups (the accepted merges; the candidate edges for ``static``).
    log : LinkLog
    conflicts : list of Conflict
        Infeasibility certificates of the rejected links (``merge`` only), for
        incremental re-solves.
    """

    labels: np.ndarray
    tree: np.ndarray
    log: LinkLog
    conflicts: list[Conflict] = field(default_factory=list)

    @property
    def n_groups(self) -> int:
        return int(self.labels.max()) + 1 if self.labels.size else 0


def canonical_labels(labels: np.ndarray) -> np.ndarray:
    """Renumber groups 0, 1, … in order of their smallest member index."""
    uniq, first, inverse = np.unique(labels, return_index=True, return_inverse=True)
    rank = np.empty(uniq.size, dtype=np.int64)
    rank[np.argsort(first)] = np.arange(uniq.size)
    return rank[inverse.ravel()]


def static_partition(edges: Edges) -> Partition:
    """Connected components of the initial homophily network."""
    n = edges.n
    graph = coo_matrix((np.ones(len(edges)), (edges.i, edges.j)), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    tree = np.stack([edges.i, edges.j], axis=1)
    log = LinkLog("static", len(edges), 0, 0, 0)
    return Partition(canonical_labels(labels), tree, log)


# ------------------------------------------------------------------ kernels
# Union–find over agents: ``parent`` pointers, group ``size``, the members of a group
# as a linked list from its root (``nxt``, ``tail``), and each group's rejected
# partners as a linked list of entries (``fhead``, ``ftail``, ``fnext``, ``fpart``: a
# point of the partner group at rejection time; ``fcount`` entries per group).


# ------------------------------------------------------------------ the merge rule
#: A merge decision: the union's known point per part and lower bounds on its slack.
Found = tuple[np.ndarray, np.ndarray, float, float]


class Merger:
    """State of the feasible agglomeration: union–find with group witnesses.

    Parameters
    ----------
    X : ndarray, shape (n, k·m)
    W : ndarray, shape (n, m)
        Declarations (flattened judgements and value weights).
    gamma_x, gamma_w : ndarray, shape (n,)
        Bounds in force.
    weights : ndarray, shape (n,)
        Utility weights (the canonical check projects the union's weighted mean).
    k, m : int
    order : ndarray, shape (n,), optional
        Rank of each agent in the canonical order of the canonical check (default:
        index order).
    tol : float
        Acceptance tolerance; the balls have radii γ + tol/2 (module doc).
    """

    def __init__(self, X: np.ndarray, W: np.ndarray, gamma_x: np.ndarray,
                 gamma_w: np.ndarray, weights: np.ndarray, k: int, m: int,
                 order: np.ndarray | None = None, tol: float = ACCEPT_TOL) -> None:
        n = X.shape[0]
        self.points = (np.ascontiguousarray(X, dtype=float),
                       np.ascontiguousarray(W, dtype=float))
        self.gamma = (np.asarray(gamma_x, float), np.asarray(gamma_w, float))
        self.radii = (self.gamma[0] + tol / 2, self.gamma[1] + tol / 2)
        self.weights, self.k, self.m, self.tol = np.asarray(weights, float), k, m, tol
        self.order = None if order is None else np.asarray(order)
        self.parent = np.arange(n, dtype=np.int64)
        self.size = np.ones(n, dtype=np.int64)
        self.nxt = np.full(n, -1, dtype=np.int64)
        self.tail = np.arange(n, dtype=np.int64)
        self.fhead = np.full(n, -1, dtype=np.int64)
        self.ftail = np.full(n, -1, dtype=np.int64)
        self.fcount = np.zeros(n, dtype=np.int64)
        self.fnext = np.full(64, -1, dtype=np.int64)
        self.fpart = np.zeros(64, dtype=np.int64)
        self.n_fail = 0
        # each group's known common point, and per part a lower bound on its slack
        # (a singleton's centre has its whole radius)
        self.witness = (self.points[0].copy(), self.points[1].copy())
        self.slack = np.stack(self.radii).copy()
        # certified merges (incremental re-solves): groups with the same label L >= 0
        # merge without a check, their members all accepting point L of ``cert`` with
        # slack ``cert_slack[:, L]``
        self.label = np.full(n, -1, dtype=np.int64)
        self.cert = (np.zeros((0, self.points[0].shape[1])),
                     np.zeros((0, self.points[1].shape[1])))
        self.cert_slack = np.zeros((2, 0))
        self.tree = np.zeros((max(n - 1, 0), 2), dtype=np.int64)
        self.counts = np.zeros(1, dtype=np.int64)
        self.rejected = 0
        self.exact_checks = 0
        self.conflicts: list[Conflict] = []

    # ---------------------------------------------------------------- state
    def find(self, i: int) -> int:
        return int(pick(link_kernel.find)(self.parent, i))

    def members(self, root: int) -> np.ndarray:
        return pick(link_kernel.members)(self.nxt, root, int(self.size[root]))

    def roots(self) -> np.ndarray:
        return pick(link_kernel.roots)(self.parent)

    def merge(self, a: int, b: int, i: int, j: int, found: Found) -> int:
        """Merge groups a and b along edge (i, j) with the union's known point."""
        root = int(pick(link_kernel.union)(self.parent, self.size, self.nxt, self.tail,
                                           self.fhead, self.ftail, self.fnext, self.fcount, a,
                                           b))
        self.witness[0][root], self.witness[1][root] = found[0], found[1]
        self.slack[:, root] = found[2], found[3]
        self.tree[self.counts[0]] = (i, j)
        self.counts[0] += 1
        return root

    def reject(self, a: int, b: int) -> None:
        """Record that groups a and b (roots) have no common point."""
        if self.n_fail + 2 > self.fnext.size:
            grow = self.fnext.size
            self.fnext = np.concatenate([self.fnext, np.full(grow, -1, dtype=np.int64)])
            self.fpart = np.concatenate([self.fpart, np.zeros(grow, dtype=np.int64)])
        for owner, partner in ((a, b), (b, a)):
            e = self.n_fail
            self.n_fail += 1
            self.fpart[e] = partner
            if self.fhead[owner] < 0:
                self.fhead[owner] = e
            else:
                self.fnext[self.ftail[owner]] = e
            self.ftail[owner] = e
            self.fcount[owner] += 1
        self.rejected += 1

    # ---------------------------------------------------------------- checks
    def prove(self, a: int, b: int, ma: np.ndarray, mb: np.ndarray, cheap: bool = True
              ) -> Found | bool | None:
        """Tests 1–3 (module doc; 1–2 only if ``cheap``) on groups a (the larger) and b:
        the union's point (proven), False (a disjoint pair) or None (undecided)."""
        eta = PROOF_MARGIN
        if cheap:
            parts = []
            for part in (0, 1):
                w = self.witness[part]
                parts.append(link_kernel.part_proof_numpy(
                    self.points[part], self.radii[part], ma, mb, w[a], w[b],
                    float(self.slack[part, a]), float(self.slack[part, b]), eta))
                if parts[-1][0] is None:
                    break
            else:
                return parts[0][0], parts[1][0], parts[0][1], parts[1][1]
        if ma.size * mb.size <= PAIRWISE_TEST_MAX:
            disjoint = (link_kernel.disjoint_loop if kernels.COMPILED
                        else link_kernel.disjoint_numpy)
            for part in (0, 1):
                i, j = disjoint(self.points[part], self.radii[part], ma, mb, eta)
                if i >= 0:
                    self.conflicts.append(Conflict(part, "pair", np.array([i, j])))
                    return False
        return None

    def canonical(self, idx: np.ndarray) -> Found | None:
        """The canonical check of the union ``idx`` (module doc): None if the balls have
        no common point, else a common point and its slack per part.

        Members are taken in :attr:`order`, so the answer depends on the set alone. Per
        part, the projection of the union's weighted mean onto the balls decides; a
        point found there lies on the boundary of some, so the projection is repeated
        onto the balls shrunk to γ + τ/4 (from the same multipliers, a step or two): a
        point found there lies τ/4 inside every ball, a known point later checks can
        rely on.
        """
        idx = np.sort(idx) if self.order is None else \
            idx[np.argsort(self.order[idx], kind="stable")]
        k, m = self.k, self.m
        point = common_point(self.points[0][idx].reshape(-1, k, m), self.points[1][idx],
                             self.weights[idx], self.radii[0][idx], self.radii[1][idx],
                             dual_tol=SOLVE_TOL, inflations=(SOLVE_TOL / 2,),
                             conic_tol=SOLVE_TOL)
        part = point.empty_block
        if part is not None:
            # the balls with a multiplier, and the one giving the best bound on any point
            # of the intersection, ½ min_i (‖c − a_i‖ + r_i)² (module
            # :mod:`~pluralguard.core.projection`), carry the certificate
            p, c = point.projections[part], point.centres[part]
            anchors, radii = self.points[part][idx], self.radii[part][idx]
            reach = np.sqrt(((anchors - c) ** 2).sum(axis=1)) + radii
            used = p.multipliers > 0
            used[int(np.argmin(reach))] = True
            self.conflicts.append(Conflict(part, "dual", idx[used], p.multipliers[used], c))
            return None
        if point.conic:
            self.exact_checks += 1
            if not point.found:
                return None
            found = [point.X.ravel(), point.W]
        else:
            found = [self._inside(part, idx, point.projections[part], point.centres[part])
                     for part in (0, 1)]
        slack = [link_kernel.slack_numpy(self.points[part], self.radii[part], idx, found[part])
                 for part in (0, 1)]
        return found[0], found[1], slack[0], slack[1]

    def _inside(self, part: int, idx: np.ndarray, p: Projection, c: np.ndarray
                ) -> np.ndarray:
        """The projection ``p`` of ``c`` moved τ/4 inside every ball when it lies on the
        boundary of some: projected again onto the balls shrunk to γ + τ/4, from the same
        multipliers (a step or two); kept where that cannot settle."""
        if not p.multipliers.any():
            return p.x
        project = (project_box, project_simplex)[part]
        inner = project_intersection(c, self.points[part][idx],
                                     self.gamma[part][idx] + self.tol / 4, project,
                                     tol=SOLVE_TOL, warm=p.multipliers)
        return inner.x if inner.status == FEASIBLE else p.x

    def decide(self, a: int, b: int) -> Found | None:
        """Whether groups a and b (roots) can merge: the union's point, or None."""
        if self.size[a] < self.size[b]:
            a, b = b, a
        # the compiled walk already tried tests 1–2 between unlabelled groups
        tried = kernels.COMPILED and self.label[a] == -1 and self.label[b] == -1
        ma, mb = self.members(a), self.members(b)
        verdict = self.prove(a, b, ma, mb, cheap=not tried)
        if verdict is False:
            return None
        if verdict is not None:
            return verdict
        return self.canonical(np.concatenate([ma, mb]))

    def merged(self, a: int, b: int, root: int) -> None:
        """After a decided merge of a and b into ``root``: the union carries no label."""
        self.label[root] = -1

    def run(self, edges_i: np.ndarray, edges_j: np.ndarray) -> None:
        """Visit the edges closest first (module doc), deciding with :meth:`decide`."""
        for pos in self._visits(edges_i, edges_j):
            i, j = int(edges_i[pos]), int(edges_j[pos])
            a, b = self.find(i), self.find(j)
            found = self.decide(a, b)
            if found is None:
                self.reject(a, b)
            else:
                self.merged(a, b, self.merge(a, b, i, j, found))

    def _visits(self, ei: np.ndarray, ej: np.ndarray) -> Iterator[int]:
        """Positions of the edges that need a decision, in order (the state may change
        between two of them)."""
        if kernels.COMPILED:
            pos = 0
            while True:  # the arrays are read anew: rejections may have grown some
                pos = int(link_kernel.walk(
                    ei, ej, pos, self.parent, self.size, self.nxt, self.tail, self.fhead,
                    self.ftail, self.fnext, self.fpart, self.fcount, self.label,
                    self.witness[0], self.witness[1], self.slack, self.cert[0], self.cert[1],
                    self.cert_slack, self.tree, self.counts, self.points[0], self.points[1],
                    self.radii[0], self.radii[1], PROOF_MARGIN))
                if pos >= ei.size:
                    return
                yield pos
                pos += 1
        # Python: an edge inside one group at the start of a chunk stays inside (groups
        # only grow), so only the others are visited one by one, in order
        find, failed = pick(link_kernel.find), pick(link_kernel.failed)
        for start in range(0, ei.size, CHUNK):
            roots = self.parent.copy()
            while not np.array_equal(up := roots[roots], roots):
                roots = up
            stop = min(ei.size, start + CHUNK)
            cross = np.flatnonzero(roots[ei[start:stop]] != roots[ej[start:stop]]) + start
            for pos in cross.tolist():
                a, b = find(self.parent, ei[pos]), find(self.parent, ej[pos])
                if a == b or failed(self.parent, self.fhead, self.fnext, self.fpart,
                                    self.fcount, a, b):
                    continue
                mark = self.label[a]
                if mark >= 0 and mark == self.label[b]:
                    self.merge(a, b, int(ei[pos]), int(ej[pos]),
                               (self.cert[0][mark], self.cert[1][mark],
                                self.cert_slack[0, mark], self.cert_slack[1, mark]))
                    continue
                yield pos

    def partition(self, candidate_edges: int) -> Partition:
        log = LinkLog("merge", candidate_edges, int(self.counts[0]), self.rejected,
                      self.exact_checks)
        return Partition(canonical_labels(self.roots()), self.tree[: self.counts[0]].copy(),
                         log, self.conflicts)


def merge_partition(X: np.ndarray, W: np.ndarray, gamma_x: np.ndarray, gamma_w: np.ndarray,
                    weights: np.ndarray, edges: Edges, tol: float = ACCEPT_TOL) -> Partition:
    """Feasible agglomeration along the homophily edges, closest first (module doc).

    Parameters
    ----------
    X : ndarray, shape (n, k, m)
    W : ndarray, shape (n, m)
    gamma_x, gamma_w : ndarray, shape (n,)
    weights : ndarray, shape (n,)
    edges : Edges
        Candidate links, sorted closest first.
    tol : float
        Acceptance tolerance (the balls have radii γ + tol/2).
    """
    n, k, m = X.shape
    merger = Merger(X.reshape(n, -1), W, gamma_x, gamma_w, weights, k, m, tol=tol)
    merger.run(edges.i, edges.j)
    return merger.partition(len(edges))


def settle(population: Population, gamma_x: np.ndarray, gamma_w: np.ndarray,
           link_rule: str = "merge", social_graph: object | None = None,
           edge_filter: EdgeFilter | None = None, max_links: int | None = None,
           timings: dict[str, float] | None = None, capture: dict | None = None
           ) -> tuple[Edges, Partition]:
    """Initial homophily network and the partition the link rule settles into.

    Parameters
    ----------
    population : Population
        Declarations (weights are used by the feasibility solves' objective only).
    gamma_x, gamma_w : ndarray, shape (n,)
        Bounds in force.
    link_rule : {"merge", "static"}
    social_graph : networkx.Graph, optional
        Restricts which pairs may link.
    edge_filter : callable, optional
        ``edge_filter(population, edges) -> edges``: a stricter network rule (e.g.
        mutual-kNN or k-core linking) that keeps a subset of the candidate links.
    max_links : int, optional
        Sparse candidate graph for very large populations
        (:func:`~pluralguard.core.network.homophily_edges`).
    timings : dict, optional
        Receives the seconds spent building the network and settling it.
    capture : dict, optional
        Receives the candidate links before the edge filter (``candidates``).
    """
    check_link_rule(link_rule)
    t0 = time.perf_counter()
    edges = homophily_edges(population, gamma_x, gamma_w, social_graph=social_graph,
                            max_links=max_links)
    if capture is not None:
        capture["candidates"] = edges
    if edge_filter is not None:
        edges = edge_filter(population, edges)
    t1 = time.perf_counter()
    if link_rule == "static":
        partition = static_partition(edges)
    else:
        partition = merge_partition(population.X, population.W, gamma_x, gamma_w,
                                    population.weight, edges)
    if timings is not None:
        timings["network"] = t1 - t0
        timings["linking"] = time.perf_counter() - t1
    return edges, partition
