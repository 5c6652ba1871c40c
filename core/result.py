"""Result objects for mechanisms (modelled on :class:`scipy.optimize.OptimizeResult`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import sparse

from .linking import LinkLog


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
