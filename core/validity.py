"""The validity contract of an agreement result (DESIGN §3.4), checkable by anyone.

Whatever the method, in every group:

1. *consensus* — the members' final estimates agree: max_i δ(x_i, x_C) ≤ tol;
2. *acceptability* — the agreement lies in every member's acceptable set F_i
   (each norm within its bound plus the acceptance tolerance);
3. *optimality* — the agreement is the oracle's optimum over ∩_{i∈C} F_i,
   δ(x_C, x*_C) ≤ tol;

and, across groups, 4. *maximality* — no two groups joined by an edge of the initial
homophily network could merge (their union has no common acceptable point).

A group that did not reach consensus must be reported as such by the result; the
check flags it either way.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .bounds import GivenBounds
from .convex import solve_group
from .geometry import ACCEPT_TOL, normalised_distance, sq_dist_w, sq_dist_x
from .model import Population
from .network import homophily_edges
from .oracle import solve_oracle
from .result import AgreementResult


@dataclass(frozen=True)
class ValidityReport:
    """Outcome of :func:`check_result`.

    Attributes
    ----------
    groups : pandas.DataFrame
        One row per group: size, reported consensus, residual, max bound violation
        over members, distance to the oracle optimum, and whether each check passed.
    mergeable : list of (int, int)
        Pairs of groups adjacent in the homophily network whose union still has a
        common acceptable point (maximality violations).
    problems : list of str
        Human-readable list of every failed check.
    """

    groups: pd.DataFrame
    mergeable: list[tuple[int, int]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Every check passed."""
        return not self.problems

    def __repr__(self) -> str:
        head = "valid" if self.ok else f"{len(self.problems)} problems"
        return f"ValidityReport({head}, {len(self.groups)} groups)"


def _violations(result: AgreementResult, population: Population) -> np.ndarray:
    labels = result.labels
    vx = np.sqrt(sq_dist_x(result.X[labels], population.X)) - result.gamma_x
    vw = np.sqrt(sq_dist_w(result.W[labels], population.W)) - result.gamma_w
    worst = np.zeros(result.n_groups)
    np.maximum.at(worst, labels, np.maximum(vx, vw))
    return worst


def _mergeable(result: AgreementResult, population: Population) -> list[tuple[int, int]]:
    gx, gw = result.gamma_x, result.gamma_w
    edges = homophily_edges(population, gx, gw)
    a, b = result.labels[edges.i], result.labels[edges.j]
    cross = a != b
    pairs = np.unique(np.sort(np.stack([a[cross], b[cross]], axis=1), axis=1), axis=0)
    found = []
    for g, h in pairs.tolist():
        idx = np.flatnonzero((result.labels == g) | (result.labels == h))
        # exact bounds and a tenth of the tolerance: a margin below the link rule's
        # (bounds + tolerance), so decisions at the tolerance's edge are not flagged
        sol = solve_group(population.X[idx], population.W[idx], population.weight[idx],
                          gx[idx], gw[idx], tol=ACCEPT_TOL / 10)
        if sol.feasible:
            found.append((g, h))
    return found


def check_result(result: AgreementResult, population: Population, *, tol: float = 1e-6,
                 oracle: bool = True, maximality: bool = True) -> ValidityReport:
    """Check a result against the validity contract (module doc).

    Parameters
    ----------
    result : AgreementResult
        Output of :func:`~pluralguard.core.solver.solve_agreements` on ``population``.
    population : Population
        The declarations that were solved.
    tol : float
        Tolerance on δ for consensus and optimality (use ~1e-3 for ``dgd``, which
        converges sublinearly).
    oracle : bool
        Compare every agreement with the exact oracle's optimum on the same groups.
    maximality : bool
        Check that no two adjacent groups could merge (one conic solve per adjacent
        pair).

    Returns
    -------
    ValidityReport
    """
    sizes = result.group_sizes
    viol = _violations(result, population)
    frame = pd.DataFrame({
        "size": sizes,
        "reported_consensus": result.consensus,
        "residual": result.residual,
        "max_violation": viol,
    })
    frame["consensus_ok"] = frame["residual"] <= tol
    # at consensus the mean may sit up to the residual outside a member's set
    slack = ACCEPT_TOL + np.sqrt(2.0) * 2 * np.sqrt(population.k * population.m) * \
        frame["residual"].to_numpy()
    frame["acceptable_ok"] = viol <= slack
    problems: list[str] = []
    if oracle:
        ref = solve_oracle(population, GivenBounds(result.gamma_x, result.gamma_w),
                           result.utility, labels=result.labels)
        dist = normalised_distance(result.X, result.W, ref.X, ref.W)
        frame["oracle_distance"] = np.where(ref.feasible, dist, np.nan)
        frame["oracle_feasible"] = ref.feasible
        frame["optimal_ok"] = ref.feasible & (np.nan_to_num(dist, nan=np.inf) <= tol)
    for g, row in frame.iterrows():
        if row["reported_consensus"] and not row["consensus_ok"]:
            problems.append(f"group {g}: reported consensus but residual {row['residual']:.3g}"
                            f" > {tol:g}")
        if not row["reported_consensus"]:
            problems.append(f"group {g}: no consensus (residual {row['residual']:.3g})")
        if not row["acceptable_ok"]:
            problems.append(f"group {g}: agreement violates a member's bound by "
                            f"{row['max_violation']:.3g}")
        if oracle and not row["optimal_ok"]:
            if not row["oracle_feasible"]:
                problems.append(f"group {g}: members have no common acceptable point")
            else:
                problems.append(f"group {g}: agreement is {row['oracle_distance']:.3g} from "
                                f"the oracle optimum (> {tol:g})")
    mergeable = _mergeable(result, population) if maximality else []
    problems += [f"groups {g} and {h} are linked and could still merge" for g, h in mergeable]
    return ValidityReport(groups=frame, mergeable=mergeable, problems=problems)
