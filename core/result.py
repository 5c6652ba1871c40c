"""Result objects for mechanisms (modelled on :class:`scipy.optimize.OptimizeResult`).

:func:`make_outcome` is the public way for a user's mechanism to return a valid
outcome: give the groups (labels) and their agreements, it fills the rest.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import sparse

from .errors import InputError
from .geometry import accepts, check_utility
from .geometry import utility as utility_fn
from .linking import LinkLog
from .model import Population

#: Slack on the box [−1, 1] and the simplex when checking agreements.
_RANGE_TOL = 1e-6


class GroupReadout:
    """Read-out shared by every mechanism result (``labels``, ``X``, ``W`` fields)."""

    labels: np.ndarray
    X: np.ndarray
    W: np.ndarray

    @property
    def n_groups(self) -> int:
        """Number of groups."""
        return int(self.X.shape[0])

    @property
    def group_sizes(self) -> np.ndarray:
        """Members per group."""
        return np.bincount(self.labels, minlength=self.n_groups)

    @property
    def agent_X(self) -> np.ndarray:
        """The agreement each agent ends with (its group's), shape (n, k, m)."""
        return self.X[self.labels]

    @property
    def agent_W(self) -> np.ndarray:
        """The value weights each agent ends with, shape (n, m)."""
        return self.W[self.labels]

    def members(self, group: int) -> np.ndarray:
        """Indices of the members of a group."""
        return np.flatnonzero(self.labels == group)


@dataclass(frozen=True, repr=False)
class AgreementResult(GroupReadout):
    """Outcome of :func:`~pluralguard.core.solver.solve_agreements`.

    Attributes
    ----------
    labels : ndarray of int, shape (n,)
        Group of each agent (connected component of the final network), numbered in
        order of each group's smallest member.
    X : ndarray, shape (n_groups, k, m)
        Agreement judgements per group.
    W : ndarray, shape (n_groups, m)
        Agreement value weights per group.
    consensus : ndarray of bool, shape (n_groups,)
        Whether the group's members reached a common estimate inside every member's
        acceptable set. A group without consensus still reports the mean of its
        members' estimates, flagged here; it is never silently averaged.
    residual : ndarray, shape (n_groups,)
        max over members of δ(member's final estimate, group agreement).
    membership : scipy.sparse.csr_matrix of bool, shape (n, n_groups)
        Overlapping membership: entry (i, g) is true iff agreement g lies in F_i.
    utilities : ndarray, shape (n,)
        Each agent's (unweighted) utility of its own group's agreement, on the
        declarations the mechanism saw.
    estimates_X, estimates_W : ndarray
        Each agent's final estimate (equal to its group's agreement at consensus).
    gamma_x, gamma_w : ndarray, shape (n,)
        Bounds in force (after the bound policy).
    converged : bool
        Every group reached consensus.
    n_iter : int
        Message-passing iterations (0 for ``exact``).
    method, utility, bounds, link_rule : str
        The configuration that produced this result.
    links : LinkLog
        What the link rule did (accepted merges, cut candidate links).
    network : ndarray of int, shape (n_links, 2)
        Links of the final network used for message passing.
    message : str
        Human-readable summary of termination.
    history : list of dict
        Per-check residuals and estimates, when requested.
    timings : dict
        Wall-clock seconds per phase: ``bounds``, ``network`` (homophily network),
        ``linking`` (the link rule), ``optimisation`` (within groups; for message
        passing split further into ``mixing`` and ``projection``), ``readout``.
    """

    labels: np.ndarray
    X: np.ndarray
    W: np.ndarray
    consensus: np.ndarray
    residual: np.ndarray
    membership: sparse.csr_matrix
    utilities: np.ndarray
    estimates_X: np.ndarray
    estimates_W: np.ndarray
    gamma_x: np.ndarray
    gamma_w: np.ndarray
    converged: bool
    n_iter: int
    method: str
    utility: str
    bounds: str
    link_rule: str
    links: LinkLog
    network: np.ndarray
    message: str
    history: list[dict[str, Any]] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)

    def __repr__(self) -> str:
        sizes = np.sort(self.group_sizes)[::-1]
        head = ", ".join(str(s) for s in sizes[:8]) + (", …" if sizes.size > 8 else "")
        return (f"AgreementResult(method={self.method!r}, bounds={self.bounds!r}, "
                f"n_groups={self.n_groups}, sizes=[{head}], converged={self.converged}, "
                f"n_iter={self.n_iter}, message={self.message!r})")

    def to_dict(self, agents: tuple[str, ...] | None = None) -> dict[str, Any]:
        """JSON-ready summary (the CLI's ``solve --json`` object)."""
        names = agents if agents is not None else tuple(str(i) for i in range(self.labels.size))
        membership = [[int(g) for g in self.membership[i].indices]
                      for i in range(self.labels.size)]
        return {
            "n_groups": self.n_groups,
            "labels": {names[i]: int(g) for i, g in enumerate(self.labels)},
            "agreements": [
                {"group": g, "X": self.X[g].tolist(), "W": self.W[g].tolist(),
                 "members": [names[i] for i in self.members(g)],
                 "consensus": bool(self.consensus[g]), "residual": float(self.residual[g])}
                for g in range(self.n_groups)],
            "membership": {names[i]: membership[i] for i in range(len(names))},
            "utilities": {names[i]: float(u) for i, u in enumerate(self.utilities)},
            "converged": bool(self.converged),
            "n_iter": int(self.n_iter),
            "method": self.method,
            "utility": self.utility,
            "bounds": self.bounds,
            "link_rule": self.link_rule,
            "links": {"candidates": self.links.candidate_edges, "merges": self.links.merges,
                      "cut": self.links.rejected},
            "message": self.message,
        }


@dataclass(frozen=True, repr=False)
class GroupOutcome(GroupReadout):
    """A mechanism outcome built by :func:`make_outcome` (the fields of
    :class:`~pluralguard.core.mechanism.Outcome`, plus ``utility`` and ``message``)."""

    labels: np.ndarray
    X: np.ndarray
    W: np.ndarray
    membership: sparse.csr_matrix
    consensus: np.ndarray
    utilities: np.ndarray
    converged: bool = True
    n_iter: int = 0
    utility: str = "quadratic"
    message: str = ""

    def __repr__(self) -> str:
        return (f"GroupOutcome(n_groups={self.n_groups}, "
                f"sizes={np.sort(self.group_sizes)[::-1].tolist()[:8]}, "
                f"converged={self.converged})")


def make_outcome(population: Population, labels: Any, X: Any, W: Any, *,
                 utility: str = "quadratic", consensus: Any = None,
                 converged: bool = True, n_iter: int = 0, message: str = "") -> GroupOutcome:
    """A valid mechanism outcome from groups and their agreements.

    Parameters
    ----------
    population : Population
        The declared population the mechanism was called on (n agents).
    labels : array_like of int, shape (n,)
        Group of each agent, ids 0 … G − 1.
    X : array_like, shape (G, k, m)
        Each group's agreed judgements, in [−1, 1].
    W : array_like, shape (G, m)
        Each group's agreed value weights, on the simplex.
    utility : {"quadratic", "linear"}
        Utility of :attr:`~GroupOutcome.utilities`: u_i = 1 − δ(a_{g(i)}, v̂_i)² or
        1 − δ(a_{g(i)}, v̂_i), on the declarations.
    consensus : array_like of bool, shape (G,), optional
        Whether each group reached agreement (default: all did).
    converged : bool
        Whether the mechanism converged (default True).
    n_iter : int
        Iterations it took (default 0).
    message : str
        Free text.

    Returns
    -------
    GroupOutcome
        With ``membership`` (agent i accepts agreement g iff g lies in its acceptable
        set F_i: ‖X_g − X̂_i‖_F ≤ γˣ_i and ‖W_g − Ŵ_i‖₂ ≤ γʷ_i, up to 1e-6; every
        agreement when the population declares no bounds) and ``utilities`` filled.

    Raises
    ------
    InputError
        Naming the argument that is malformed (shape, ids, range, simplex).

    Examples
    --------
    >>> import numpy as np
    >>> from pluralguard.core import datasets
    >>> pop = datasets.load("evs2017")
    >>> labels = (pop.W[:, 0] > np.median(pop.W[:, 0])).astype(int)
    >>> X = np.stack([pop.X[labels == g].mean(axis=0) for g in (0, 1)])
    >>> W = np.stack([pop.W[labels == g].mean(axis=0) for g in (0, 1)])
    >>> make_outcome(pop, labels, X, W).n_groups
    2
    """
    if not isinstance(population, Population):
        raise InputError("population", f"expected a Population, got "
                         f"{type(population).__name__}",
                         "pass the declared population the mechanism was called on")
    n, k, m = population.n, population.k, population.m
    labels = np.asarray(labels)
    if labels.shape != (n,) or not (np.issubdtype(labels.dtype, np.integer) or labels.size == 0):
        raise InputError("labels", f"expected {n} integer group ids, got shape "
                         f"{labels.shape} of {labels.dtype}", "pass one group id per agent")
    try:
        X = np.asarray(X, dtype=float)
        W = np.asarray(W, dtype=float)
    except (TypeError, ValueError) as err:
        raise InputError("X", f"agreements are not numeric ({err})",
                         "pass arrays of shape (G, k, m) and (G, m)") from None
    G = X.shape[0] if X.ndim == 3 else -1
    if X.shape != (G, k, m) or G < 1:
        raise InputError("X", f"expected shape (n_groups, {k}, {m}), got {X.shape}",
                         "pass one (k, m) judgement matrix per group")
    if W.shape != (G, m):
        raise InputError("W", f"expected shape ({G}, {m}) to match X, got {W.shape}",
                         "pass one weight vector per group")
    if labels.min() < 0 or labels.max() >= G:
        raise InputError("labels", f"group ids must be in [0, {G}) (one per agreement), "
                         f"got {int(labels.min())} … {int(labels.max())}",
                         "number the groups 0 … G − 1 in the order of X and W")
    if not (np.isfinite(X).all() and np.isfinite(W).all()):
        raise InputError("X", "agreements contain NaN or infinite values",
                         "give finite agreements")
    if np.abs(X).max() > 1 + _RANGE_TOL:
        raise InputError("X", f"a judgement {np.abs(X).max():.6g} is outside [-1, 1]",
                         "clip the agreements to [-1, 1]")
    off = np.flatnonzero((W.min(axis=1) < -_RANGE_TOL)
                         | (np.abs(W.sum(axis=1) - 1.0) > _RANGE_TOL))
    if off.size:
        g = int(off[0])
        raise InputError("W", f"the weights of group {g} are not on the simplex (sum "
                         f"{W[g].sum():.6g}, min {W[g].min():.6g})",
                         "project them, e.g. pluralguard.core.geometry.project_simplex")
    check_utility(utility)
    X, W = np.clip(X, -1.0, 1.0), np.maximum(W, 0.0)
    if consensus is None:
        consensus = np.ones(G, dtype=bool)
    consensus = np.asarray(consensus, dtype=bool)
    if consensus.shape != (G,):
        raise InputError("consensus", f"expected {G} flags, got shape {consensus.shape}",
                         "pass one flag per group")
    member = np.column_stack([accepts(X[g], W[g], population.X, population.W,
                                      population.gamma_x, population.gamma_w)
                              for g in range(G)])
    return GroupOutcome(
        labels=labels.astype(int), X=X, W=W, membership=sparse.csr_matrix(member),
        consensus=consensus,
        utilities=utility_fn(X[labels], W[labels], population.X, population.W, utility),
        converged=bool(converged), n_iter=int(n_iter), utility=utility, message=message)
