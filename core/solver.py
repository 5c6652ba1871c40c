"""The reference agreement solver (DESIGN §3): ``solve_agreements``.

Pipeline:

1. **Bounds** in force from the bound policy (``declared``, ``quantile:q``,
   ``fixed:gX,gW``).
2. **Reduction.** Agents with identical declarations (value system and bounds) are
   merged into one agent carrying the sum of their weights. This is exact — the
   group problem only sees the weighted sum of utilities and each distinct
   acceptable set once — and makes survey data with few distinct answers cheap.
   It is skipped with a social graph or a message hook (both are per identity).
3. **Homophily network** on the declarations, then the **link rule**
   (:mod:`~pluralguard.core.linking`), which settles by construction into maximal
   groups that each have a common acceptable point.
4. **Optimisation within groups** by one of three methods with the same fixed point:

   * ``exact`` (default, the fast path) — a centralised solve per group
     (:func:`~pluralguard.core.feasibility.common_point`);
   * ``dual`` — projected dual gradient by message passing;
   * ``nids`` — an exact decentralised proximal-gradient method;
   * ``dgd`` — projected decentralised gradient by message passing
     (:mod:`~pluralguard.core.message_passing`, :mod:`~pluralguard.core.dgd`).

   Honest ``dual``/``nids`` solves (no hook) start at the fast path's fixed point
   and confirm it by message passing (``warm_start``).

5. **Read-out**: labels, agreements, overlapping membership (every agreement in each
   agent's F_i), utilities, convergence and residuals (:func:`readout`).

Attack queries near a known population re-run these steps incrementally, with the
same answers (:mod:`~pluralguard.core.incremental`).

It is one piece above ~500 lines because it is the pipeline itself: each function is
one step above (acceptance, communication graph, per-group solve, reduction, read-out)
and :func:`solve_agreements` strings them together; the steps' engines live in their
own modules (:mod:`~pluralguard.core.linking`,
:mod:`~pluralguard.core.feasibility`, :mod:`~pluralguard.core.message_passing`,
:mod:`~pluralguard.core.dgd`), and the incremental session reuses these steps by name.
"""

from __future__ import annotations

import itertools
import time

import networkx as nx
import numpy as np
from scipy import sparse
from scipy.spatial import cKDTree

from . import kernels
from .bounds import BoundPolicy, BoundRule, resolve_bounds
from .convex import POLISH_SLACK
from .dgd import run_dgd
from .errors import InputError
from .feasibility import common_point
from .geometry import (
    ACCEPT_TOL,
    check_utility,
    project_acceptable,
    project_box,
    project_simplex,
    sq_dist_w,
)
from .geometry import (
    utility as utility_fn,
)
from .kernels import jit
from .linking import (
    EdgeFilter,
    LinkLog,
    Partition,
    canonical_labels,
    check_link_rule,
    settle,
)
from .message_passing import (
    MessageHook,
    PassingOutcome,
    WarmStart,
    consensus_residual,
    parse_mixing,
    run_dual,
    run_nids,
    warm_start,
)
from .model import Population
from .network import NEAREST_KDTREE_MAX_DIM, Edges, distinct_declarations
from .projection import FEASIBLE, project_intersection
from .result import AgreementResult

#: The optimisation methods within groups (module doc, step 4); ``exact`` is the default.
METHODS = ("exact", "dual", "dgd", "nids")
#: Above this many agent–agreement pairs, memberships come from a k-d tree (few coordinates).
TREE_PAIRS = 1 << 22
#: Default iteration caps for the message-passing methods.
MAX_ITER = {"dual": 20_000, "dgd": 20_000, "nids": 20_000}
#: Default consensus tolerances (normalised distance δ) for the message-passing methods.
TOL = {"dual": 1e-7, "dgd": 1e-4, "nids": 1e-7}


def acceptance_matrix(X: np.ndarray, W: np.ndarray, gamma_x: np.ndarray,
                      gamma_w: np.ndarray, AX: np.ndarray, AW: np.ndarray,
                      tol: float = ACCEPT_TOL, block: int = 2_000_000) -> sparse.csr_matrix:
    """Boolean (n, G) matrix: agent i (centre X_i, W_i, bounds γ_i) accepts agreement g."""
    n, G = X.shape[0], AX.shape[0]
    Xf, Af = X.reshape(n, -1), AX.reshape(G, -1)
    if n * G > TREE_PAIRS and Xf.shape[1] + W.shape[1] <= NEAREST_KDTREE_MAX_DIM:
        return _acceptance_by_tree(Xf, W, np.asarray(gamma_x, float) + tol,
                                   np.asarray(gamma_w, float) + tol, Af, AW)
    if kernels.COMPILED:
        ok = np.zeros((n, G), dtype=np.bool_)
        _accepted(np.ascontiguousarray(Xf, dtype=float), np.ascontiguousarray(W, dtype=float),
                  np.asarray(gamma_x, float) + tol, np.asarray(gamma_w, float) + tol,
                  np.ascontiguousarray(Af, dtype=float), np.ascontiguousarray(AW, dtype=float),
                  ok)
        rows, cols = np.nonzero(ok)  # row-major: already in CSR order
        indptr = np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=n))])
        return sparse.csr_matrix((np.ones(cols.size, dtype=bool), cols, indptr), shape=(n, G))
    rows, cols = [], []
    step = max(1, block // max(G, 1))
    a2 = np.einsum("ij,ij->i", Af, Af)
    for s in range(0, n, step):
        e = min(n, s + step)
        dx2 = np.einsum("ij,ij->i", Xf[s:e], Xf[s:e])[:, None] + a2[None, :] - 2 * Xf[s:e] @ Af.T
        dw2 = sq_dist_w(W[s:e, None, :], AW[None, :, :])
        ok = (np.sqrt(np.maximum(dx2, 0)) <= gamma_x[s:e, None] + tol) & \
             (np.sqrt(dw2) <= gamma_w[s:e, None] + tol)
        r, c = np.nonzero(ok)
        rows.append(r + s)
        cols.append(c)
    r, c = np.concatenate(rows), np.concatenate(cols)
    return sparse.csr_matrix((np.ones(r.size, dtype=bool), (r, c)), shape=(n, G))


def _acceptance_by_tree(Xf: np.ndarray, W: np.ndarray, reach_x: np.ndarray,
                        reach_w: np.ndarray, AX: np.ndarray, AW: np.ndarray
                        ) -> sparse.csr_matrix:
    """:func:`acceptance_matrix` for many agents and agreements in few coordinates:
    candidates from a k-d tree over the agreements' judgements (those within each
    agent's reach in X), then the exact test on both parts."""
    n, G = Xf.shape[0], AX.shape[0]
    finite = np.isfinite(reach_x)
    tree = cKDTree(AX)
    hits = tree.query_ball_point(Xf[finite], r=reach_x[finite] * (1 + 1e-9) + 1e-12,
                                 return_sorted=False, workers=-1)
    agents = np.flatnonzero(finite)
    counts = np.fromiter(map(len, hits), dtype=np.int64, count=agents.size)
    unbounded = np.flatnonzero(~finite)  # every agreement is a candidate
    rows = np.concatenate([np.repeat(agents, counts), np.repeat(unbounded, G)])
    found = np.fromiter(itertools.chain.from_iterable(hits), dtype=np.int64,
                        count=int(counts.sum()))
    cols = np.concatenate([found, np.tile(np.arange(G), unbounded.size)])
    dw2 = _row_sq_distances_between(W, rows, AW, cols)
    near = np.sqrt(dw2) <= reach_w[rows]
    rows, cols = rows[near], cols[near]
    ok = np.sqrt(_row_sq_distances_between(Xf, rows, AX, cols)) <= reach_x[rows]
    return sparse.csr_matrix((np.ones(int(ok.sum()), dtype=bool), (rows[ok], cols[ok])),
                             shape=(n, G))


def _row_sq_distances_between(A: np.ndarray, i: np.ndarray, B: np.ndarray, j: np.ndarray,
                              chunk: int = 1 << 16) -> np.ndarray:
    """‖A_i − B_j‖² for index pairs, in chunks."""
    out = np.empty(i.size)
    for s in range(0, i.size, chunk):
        d = A[i[s:s + chunk]] - B[j[s:s + chunk]]
        out[s:s + chunk] = np.einsum("ij,ij->i", d, d)
    return out


@jit
def _accepted(X: np.ndarray, W: np.ndarray, reach_x: np.ndarray, reach_w: np.ndarray,
              AX: np.ndarray, AW: np.ndarray, ok: np.ndarray) -> None:
    """ok[i, g]: agreement g within agent i's reach in both parts (few pairs: dense)."""
    n, G = X.shape[0], AX.shape[0]
    for i in range(n):
        rw2 = reach_w[i] * reach_w[i] if reach_w[i] != np.inf else np.inf
        rx2 = reach_x[i] * reach_x[i] if reach_x[i] != np.inf else np.inf
        for g in range(G):
            acc = 0.0
            for d in range(W.shape[1]):
                u = W[i, d] - AW[g, d]
                acc += u * u
            if acc > rw2:
                continue
            acc = 0.0
            for d in range(X.shape[1]):
                u = X[i, d] - AX[g, d]
                acc += u * u
                if acc > rx2:
                    break
            ok[i, g] = acc <= rx2


def _communication_graph(partition: Partition, edges: Edges, neighbors: int) -> np.ndarray:
    """Links for message passing: a spanning forest of the groups plus, for every agent,
    its ``neighbors`` nearest in-group links (a sparse spanning subgraph, DESIGN §3).

    Sparse and nearly regular beats dense here: the safe dual steps scale with
    1/max(d_i, d_j), so hubs of a dense, irregular homophily graph slow every
    neighbour down (on ``pve_like`` at Q1 all ~50k links took 10,490 dual iterations,
    16 nearest links 890). A link (i, j), i < j, is among i's nearest when fewer than
    ``neighbors`` in-group links (i, ·) come before it, and among j's when fewer than
    ``neighbors`` links (·, j) do (edges are sorted closest first).
    """
    same = partition.labels[edges.i] == partition.labels[edges.j]
    ei, ej = edges.i[same], edges.j[same]  # already sorted closest first
    keep = (_nearest_links(ei, ej, edges.n, neighbors) if kernels.COMPILED
            else _nearest_links_numpy(ei, ej, neighbors))
    extra = np.stack([ei[keep], ej[keep]], axis=1)
    if partition.log.rule == "static" and ei.size:
        # spanning forest of the components (by δ; a tiny offset keeps zero-length links)
        g = sparse.coo_matrix((edges.distance[same] + 1e-12, (ei, ej)),
                              shape=(edges.n, edges.n))
        forest = sparse.csgraph.minimum_spanning_tree(g).tocoo()
        tree = np.stack([forest.row, forest.col], axis=1)
    else:
        tree = partition.tree
    both = np.concatenate([tree, extra]).reshape(-1, 2).astype(np.int64)
    low, high = both.min(axis=1), both.max(axis=1)
    code = np.unique(low * max(edges.n, 1) + high)  # the pairs once, in (i, j) order
    return np.stack([code // max(edges.n, 1), code % max(edges.n, 1)], axis=1)


@jit
def _nearest_links(ei: np.ndarray, ej: np.ndarray, n: int, neighbors: int) -> np.ndarray:
    """Links among the first ``neighbors`` at their first end or at their second end."""
    first = np.zeros(n, dtype=np.int64)
    second = np.zeros(n, dtype=np.int64)
    keep = np.zeros(ei.size, dtype=np.bool_)
    for e in range(ei.size):
        keep[e] = first[ei[e]] < neighbors or second[ej[e]] < neighbors
        first[ei[e]] += 1
        second[ej[e]] += 1
    return keep


def _nearest_links_numpy(ei: np.ndarray, ej: np.ndarray, neighbors: int) -> np.ndarray:
    """:func:`_nearest_links` vectorised."""
    keep = np.zeros(ei.size, dtype=bool)
    if neighbors > 0 and ei.size:
        for ends in (ei, ej):
            order = np.argsort(ends, kind="stable")
            sorted_ends = ends[order]
            starts = np.searchsorted(sorted_ends, sorted_ends, side="left")
            rank = np.arange(ends.size) - starts
            keep[order[rank < neighbors]] = True
    return keep


def _exact_group(X: np.ndarray, W: np.ndarray, gx: np.ndarray, gw: np.ndarray,
                 wts: np.ndarray, idx: np.ndarray, utility: str
                 ) -> tuple[np.ndarray, np.ndarray, bool]:
    """One group's agreement (members ``idx``, in index order) and whether it exists.

    The group's common point nearest its members (:func:`~pluralguard.core.feasibility.
    common_point`): the dual projection of the weighted mean (quadratic utility) or the
    certified geometric median (linear), else the conic solver, else both retried within
    the tolerance (a single-point intersection). A dual certificate of emptiness is not
    final here: the inflated conic solve may still find the single point. A group with
    no common point keeps its members' weighted mean (flagged).
    """
    if idx.size == 1:
        return X[idx[0]], W[idx[0]], True
    point = common_point(X[idx], W[idx], wts[idx], gx[idx], gw[idx], dual_tol=POLISH_SLACK,
                         utility=utility, inflations=(0.0, ACCEPT_TOL / 2),
                         conic_after_certificate=True)
    if point.found:
        return point.X, point.W, True
    return (np.tensordot(wts[idx], X[idx], axes=1) / wts[idx].sum(),
            wts[idx] @ W[idx] / wts[idx].sum(), False)


def _warm_start(X: np.ndarray, W: np.ndarray, gx: np.ndarray, gw: np.ndarray,
                wts: np.ndarray, labels: np.ndarray) -> WarmStart:
    """A fixed point of the first-order methods from the fast path's group optima
    (:func:`~pluralguard.core.message_passing.warm_start`): each group's dual projection
    gives its optimum, the point projected and the multipliers of the binding balls."""
    n = X.shape[0]
    members = group_members(labels)
    G = len(members)
    centres = (X.reshape(n, -1), W)
    optimum = (np.empty((G, centres[0].shape[1])), np.empty((G, W.shape[1])))
    pre_image = (np.empty_like(optimum[0]), np.empty_like(optimum[1]))
    multipliers = (np.zeros(n), np.zeros(n))
    exact = np.ones(G, dtype=bool)
    for g, idx in enumerate(members):
        w = wts[idx] / wts[idx].sum()
        for part, (radii, project) in enumerate(((gx, project_box), (gw, project_simplex))):
            anchors = centres[part][idx]
            c = w @ anchors
            p = project_intersection(c, anchors, radii[idx], project, tol=POLISH_SLACK)
            exact[g] &= p.status == FEASIBLE
            lam = p.multipliers
            optimum[part][g] = p.x
            pre_image[part][g] = (c + lam @ anchors) / (1.0 + lam.sum())
            multipliers[part][idx] = lam
    return warm_start(centres, wts, labels, optimum, pre_image, multipliers, exact)


def group_members(labels: np.ndarray) -> list[np.ndarray]:
    """Members of every group, each in index order."""
    G = int(labels.max()) + 1 if labels.size else 0
    order = np.argsort(labels, kind="stable")
    bounds = np.searchsorted(labels[order], np.arange(G + 1))
    return [order[bounds[g]:bounds[g + 1]] for g in range(G)]


def _exact(X: np.ndarray, W: np.ndarray, gx: np.ndarray, gw: np.ndarray, wts: np.ndarray,
           labels: np.ndarray, utility: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-group exact solve (:func:`_exact_group`): agreements and existence flags."""
    _, k, m = X.shape
    members = group_members(labels)
    AX, AW = np.empty((len(members), k, m)), np.empty((len(members), m))
    ok = np.ones(len(members), dtype=bool)
    for g, idx in enumerate(members):
        AX[g], AW[g], ok[g] = _exact_group(X, W, gx, gw, wts, idx, utility)
    return AX, AW, ok


def _check_number(name: str, value: object, low: float, high: float, inclusive_high: bool,
                  example: str) -> float:
    """``value`` as a float in (low, high) (or (low, high]); else a clear InputError."""
    ok = isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool)
    number = float(value) if ok else float("nan")
    inside = low < number < high or (inclusive_high and number == high)
    if not (ok and inside):
        span = f"({low:g}, {high:g}{']' if inclusive_high else ')'}"
        raise InputError(name, f"expected a number in {span}, got {value!r}",
                         f"pass e.g. {name}={example}")
    return number


def _check_args(population: Population, method: str, utility: str, link_rule: str,
                hook: MessageHook | None, neighbors: int, tol: float | None,
                max_iter: int | None, mixing: str | None, step: float | None) -> None:
    if not isinstance(population, Population):
        raise InputError("population", f"expected a Population, got {type(population).__name__}",
                         "build one with pluralguard.core.Population or load a dataset")
    if method not in METHODS:
        raise InputError("method", f"unknown method {method!r}",
                         f"use one of {', '.join(METHODS)}")
    check_utility(utility)
    check_link_rule(link_rule)
    parse_mixing(mixing)
    if method in ("dual", "nids") and utility == "linear":
        raise InputError("method", f"'{method}' needs the smooth, strongly concave quadratic "
                         "utility", "use method='dgd' or 'exact' with utility='linear'")
    if mixing is not None and mixing != "mean" and method == "exact":
        raise InputError("mixing", "robust mixing acts on messages",
                         "use method='dual', 'nids' or 'dgd' with a mixing rule")
    if hook is not None and method == "exact":
        raise InputError("hook", "message hooks need a message-passing method",
                         "use method='dual', 'nids' or 'dgd' to observe or deviate from "
                         "messages")
    if not isinstance(neighbors, int | np.integer) or neighbors < 0:
        raise InputError("neighbors", f"expected a non-negative integer, got {neighbors!r}",
                         "pass e.g. neighbors=16")
    if tol is not None:
        _check_number("tol", tol, 0.0, np.inf, False, "1e-8")
    if max_iter is not None and (not isinstance(max_iter, int | np.integer) or max_iter < 1):
        raise InputError("max_iter", f"expected a positive integer, got {max_iter!r}",
                         "pass e.g. max_iter=20000")
    if step is not None:
        if method == "dgd":
            _check_number("step", step, 0.0, np.inf, False, "0.25 (DGD's initial step η₀)")
        else:  # dual: fraction of the safe step; nids: θ in α_i = θ / L_i
            _check_number("step", step, 0.0, 2.0, False,
                          "1.0 (a fraction of the safe step, below 2)")


def solve_agreements(population: Population, bounds: str | BoundPolicy | BoundRule = "declared",
                     method: str = "exact", utility: str = "quadratic", *,
                     link_rule: str = "merge", social_graph: nx.Graph | None = None,
                     tol: float | None = None, max_iter: int | None = None,
                     step: float | None = None, neighbors: int = 16,
                     hook: MessageHook | None = None, mixing: str | None = None,
                     edge_filter: EdgeFilter | None = None, max_links: int | None = None,
                     record_history: bool = False,
                     deduplicate: bool = True, random_state: int = 0,
                     warm_start: bool = True, capture: dict | None = None) -> AgreementResult:
    """Form value agreements among a population by homophily and decentralised optimisation.

    Implements the mechanism of Hernández-Sánchez et al., *Decentralized Value Systems
    Agreements* (AAMAS 2026, arXiv:2603.25811) as fixed in DESIGN §3: agents whose
    declarations are mutually acceptable link; each group C of the settled network
    agrees on

        x_C = argmax_{x ∈ ∩_{i∈C} F_i} Σ_{i∈C} w_i u_i(x).

    Parameters
    ----------
    population : Population
        Declared value systems (and bounds for ``bounds='declared'``).
    bounds : str or BoundPolicy
        ``declared``, ``quantile:q`` (q ∈ [0, 1]) or ``fixed:gX,gW``.
    method : {"exact", "dual", "dgd", "nids"}
        ``exact``: per-group conic solve (fast path); ``dual``: projected dual gradient;
        ``dgd``: projected decentralised gradient with diminishing steps, the paper's
        method (converges only in the limit); ``nids``: NIDS, an exact decentralised
        proximal-gradient method with constant steps (Li, Shi & Yan 2019). Same fixed
        point.
    utility : {"quadratic", "linear"}
        u = 1 − δ² or u = 1 − δ.
    link_rule : {"merge", "static"}
        How the dynamic network settles (:mod:`~pluralguard.core.linking`).
    social_graph : networkx.Graph, optional
        Only pairs adjacent in it may link.
    tol : float, optional
        Consensus tolerance on δ for message passing (default 1e-7 dual and nids,
        1e-4 dgd).
    max_iter : int, optional
        Iteration cap for message passing (default 20,000).
    step : float, optional
        Step constant: dual, the fraction of the safe step, in (0, 2) (default 1);
        nids, θ in the steps α_i = θ/L_i, in (0, 2) (default 1); dgd, η₀ > 0.
        Ignored by ``exact``.
    neighbors : int
        In-group links per agent for message passing, beyond a spanning forest of
        each group (default 16 nearest).
    hook : callable, optional
        ``hook(IterationState) -> {agent: (X, W)} | None``: observe each iteration and
        replace chosen agents' messages (protocol deviation). Message passing only.
    mixing : str, optional
        How agents combine neighbours' messages in ``dual``/``dgd``: ``mean``
        (default), ``clip:τ`` (self-centred clipping), ``trimmed:b`` (ignore the b most
        distant neighbours), ``median`` (dgd only); robust rules are defenses against
        protocol deviation (:mod:`~pluralguard.core.message_passing`).
    edge_filter : callable, optional
        ``edge_filter(population, edges) -> edges``: a stricter network rule applied to
        the candidate links before the link rule (e.g. mutual-kNN linking).
    max_links : int, optional
        Candidate links only among each agent's ``max_links`` nearest others, for
        populations too large for every acceptable pair (documented approximation;
        see :func:`~pluralguard.core.network.homophily_edges`).
    record_history : bool
        Keep per-check residuals and estimates.
    deduplicate : bool
        Merge identical declarations into weighted agents (exact; see module doc).
    random_state : int
        Seed of the sampled quantile on very large populations.
    warm_start : bool
        ``dual`` and ``nids`` without a hook (honest solves): start from the fast
        path's optimum — every agent's multipliers at the fixed point the methods
        converge to (:func:`~pluralguard.core.message_passing.warm_start`) — and let
        message passing confirm it, in a few iterations (default). ``False``, and
        every solve with a ``hook`` or ``record_history``, runs the protocol from its
        real start (every agent at its own declaration). ``dgd`` always starts cold.
    capture : dict, optional
        Receives the intermediate state (bounds, reduction, network, partition,
        per-group agreements) for incremental re-solves
        (:mod:`~pluralguard.core.incremental`).

    Returns
    -------
    AgreementResult

    Raises
    ------
    InputError
        On invalid arguments; the message names the argument and the fix.

    Examples
    --------
    >>> from pluralguard.core import datasets, solve_agreements
    >>> res = solve_agreements(datasets.load("evs2017"), bounds="quantile:0.5")
    >>> res.n_groups >= 1
    True
    """
    _check_args(population, method, utility, link_rule, hook, neighbors, tol, max_iter,
                mixing, step)
    if not isinstance(warm_start, bool | np.bool_):
        raise InputError("warm_start", f"expected True or False, got {warm_start!r}",
                         "pass warm_start=False to run message passing from its real start")
    policy = BoundPolicy.parse(bounds)
    clock = time.perf_counter()
    timings: dict[str, float] = {}
    gx, gw = resolve_bounds(population, policy, random_state=random_state)
    timings["bounds"] = time.perf_counter() - clock
    index, inverse, reduced = reduce_population(
        population, gx, gw, deduplicate and social_graph is None and hook is None)
    X, W, wts = reduced.X, reduced.W, reduced.weight
    rgx, rgw = reduced.gamma_x, reduced.gamma_w
    edges, partition = settle(reduced, rgx, rgw, link_rule, social_graph, edge_filter,
                              max_links, timings, capture)
    labels = partition.labels
    G = partition.n_groups
    network = (_communication_graph(partition, edges, neighbors) if method != "exact"
               else partition.tree)

    history: list[dict] = []
    clock = time.perf_counter()
    if method == "exact":
        AX, AW, ok = _exact(X, W, rgx, rgw, wts, labels, utility)
        EX = EW = None
        n_iter, stalled = 0, np.zeros(G, dtype=bool)
    else:
        AX, AW, ok, out = message_passing(
            method, X, W, rgx, rgw, wts, labels, network, utility=utility, tol=tol,
            max_iter=max_iter, step=step, hook=hook, mixing=mixing,
            record_history=record_history, warm_start=warm_start)
        EX, EW, n_iter, stalled, history = out.X, out.W, out.n_iter, out.group_stalled, \
            out.history
        timings |= out.timings
    timings["optimisation"] = time.perf_counter() - clock
    if capture is not None:
        capture.update(policy=policy, gamma_x=gx, gamma_w=gw, index=index, inverse=inverse,
                       reduced=reduced, edges=edges, partition=partition, AX=AX, AW=AW,
                       ok=ok)
    capped = method != "exact" and n_iter >= (max_iter or MAX_ITER[method])
    return readout(population, (X, W, rgx, rgw), index, inverse, gx, gw, labels, AX, AW, ok,
                   stalled, EX, EW, n_iter=int(n_iter), capped=capped, method=method,
                   utility=utility, bounds=str(policy), link_rule=link_rule,
                   links=partition.log, network=network, history=history, timings=timings)


def message_passing(method: str, X: np.ndarray, W: np.ndarray, gx: np.ndarray,
                    gw: np.ndarray, wts: np.ndarray, labels: np.ndarray, network: np.ndarray,
                    *, utility: str, tol: float | None, max_iter: int | None,
                    step: float | None, hook: MessageHook | None, mixing: str | None,
                    record_history: bool, warm_start: bool
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, PassingOutcome]:
    """Step 4 by message passing (``dual``, ``nids``, ``dgd``) on the settled groups of
    the reduced population (``labels``) along the links ``network``: the agreements
    (each group's mean estimate), whether each group reached consensus, and the run.
    Honest ``dual``/``nids`` solves start at the fast path's fixed point
    (:func:`_warm_start`)."""
    G = int(labels.max()) + 1 if labels.size else 0
    run = {"dual": run_dual, "nids": run_nids, "dgd": run_dgd}[method]
    kwargs: dict = {"mixing": mixing}
    if method == "dgd":
        kwargs["utility"] = utility
    if method != "dgd" and warm_start and hook is None and not record_history:
        kwargs["start"] = _warm_start(X, W, gx, gw, wts, labels)
    out = run(X, W, gx, gw, wts, labels, network, tol=tol or TOL[method],
              max_iter=max_iter or MAX_ITER[method], step=step, hook=hook,
              record_history=record_history, **kwargs)
    counts = np.bincount(labels, minlength=G)
    AX = np.zeros((G, *X.shape[1:]))
    AW = np.zeros((G, W.shape[1]))
    np.add.at(AX, labels, out.X)
    np.add.at(AW, labels, out.W)
    AX /= counts[:, None, None]
    AW /= counts[:, None]
    # every estimate lies in its own F_i, so at consensus the mean is within the
    # residual of every member's set
    return AX, AW, out.group_done, out


def reduce_population(population: Population, gx: np.ndarray, gw: np.ndarray,
                      deduplicate: bool) -> tuple[np.ndarray, np.ndarray, Population]:
    """Identical declarations (and bounds) merged into weighted agents (module doc).

    Returns ``(index, inverse, reduced)``: ``reduced`` holds the distinct points in
    lexicographic order with bounds in force and summed weights, ``index[u]`` the
    first agent of point u and ``inverse[i]`` the point of agent i. Without
    ``deduplicate``, every agent is its own point.
    """
    if deduplicate:
        index, inverse = distinct_declarations(population, gx, gw)
        wsum = np.bincount(inverse, weights=population.weight)
        reduced = population.subset(index).replace(gamma_x=gx[index], gamma_w=gw[index],
                                                   weights=wsum)
        return index, inverse, reduced
    n = population.n
    return np.arange(n), np.arange(n), population.replace(gamma_x=gx, gamma_w=gw,
                                                         weights=population.weight)


def readout(population: Population, reduced: tuple[np.ndarray, ...], index: np.ndarray,
            inverse: np.ndarray, gx: np.ndarray, gw: np.ndarray, labels: np.ndarray,
            AX: np.ndarray, AW: np.ndarray, ok: np.ndarray, stalled: np.ndarray,
            EX: np.ndarray | None, EW: np.ndarray | None, *, n_iter: int, capped: bool,
            method: str, utility: str, bounds: str, link_rule: str, links: LinkLog,
            network: np.ndarray, history: list[dict], timings: dict[str, float]
            ) -> AgreementResult:
    """Step 5 (module doc): the result on the full population from the reduced one.

    ``reduced`` holds the distinct points' (X, W, γˣ, γʷ); ``labels``, ``AX``, ``AW``,
    ``ok`` and ``stalled`` are per point and group; ``EX``, ``EW`` the members' final
    estimates (None: each member's projection of its group's agreement onto its own
    acceptable set, as for ``exact``).
    """
    clock = time.perf_counter()
    X, W, rgx, rgw = reduced
    G = AX.shape[0]
    if EX is None:
        EX, EW = project_acceptable(AX[labels], AW[labels], X, W, rgx, rgw)
    residual = consensus_residual(EX, EW, labels, AX, AW)
    consensus = ok & ~stalled

    # back to the full population, groups renumbered by smallest original member
    full = canonical_labels(labels[inverse])
    perm = np.empty(G, dtype=np.int64)
    perm[full] = labels[inverse]  # new group id -> reduced group id
    membership = acceptance_matrix(X, W, rgx, rgw, AX[perm], AW[perm])[inverse]
    AX, AW = AX[perm], AW[perm]
    consensus, residual = consensus[perm], residual[perm]
    EXf, EWf = EX[inverse], EW[inverse]
    utilities = utility_fn(AX[full], AW[full], population.X, population.W, utility)

    n_bad = int((~consensus).sum())
    if n_bad == 0:
        message = f"{G} groups, all reached consensus"
    else:
        message = f"{n_bad} of {G} groups did not reach consensus"
    if capped:
        message += f"; stopped at the iteration cap ({n_iter})"
    network_full = index[network] if network.size else network
    timings["readout"] = time.perf_counter() - clock
    return AgreementResult(
        labels=full, X=AX, W=AW, consensus=consensus, residual=residual,
        membership=membership.tocsr(), utilities=utilities, estimates_X=EXf, estimates_W=EWf,
        gamma_x=gx, gamma_w=gw, converged=bool(consensus.all()), n_iter=n_iter,
        method=method, utility=utility, bounds=bounds, link_rule=link_rule,
        links=links, network=network_full, message=message, history=history,
        timings=timings)
