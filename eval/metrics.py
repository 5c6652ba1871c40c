"""Robustness metrics (DESIGN §6), computed on honest agents' TRUE value systems.

Runs are compared pairwise with the same seed and defense: *clean* (everyone declares
the truth) against *attacked*. H is the set of honest agents (the original agents that
are not attackers; Sybils are never honest). Utilities are the agents' own,
u_i(x) = 1 − δ(x, v_i)² (or 1 − δ for the linear utility), of the agreement of the
group each agent ends in, evaluated on its true value system v_i; every agent counts
once (weights are not applied to these statistics).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.metrics import adjusted_rand_score
from sklearn.metrics.cluster import pair_confusion_matrix

from pluralguard.core.geometry import utility
from pluralguard.core.measures import capture_scores, excluded
from pluralguard.core.mechanism import Outcome
from pluralguard.core.model import Population


@dataclass(frozen=True)
class MetricInfo:
    """Documentation of one metric: its formula and which direction is worse."""

    name: str
    formula: str
    worse: str  # "higher" or "lower"


METRICS: dict[str, MetricInfo] = {m.name: m for m in [
    MetricInfo("honest_utility_mean", "mean_{i∈H} u_i(attacked)", "lower"),
    MetricInfo("honest_utility_p10", "10th percentile over H of u_i(attacked)", "lower"),
    MetricInfo("honest_utility_min", "min_{i∈H} u_i(attacked)", "lower"),
    MetricInfo("utility_loss_mean", "mean_{i∈H} [u_i(clean) − u_i(attacked)]", "higher"),
    MetricInfo("utility_loss_p90", "90th percentile over H of u_i(clean) − u_i(attacked)",
               "higher"),
    MetricInfo("utility_loss_max", "max_{i∈H} [u_i(clean) − u_i(attacked)]", "higher"),
    MetricInfo("attacker_gain", "mean over attackers of u_a(attacked) − u_a(clean), true "
               "utilities (Sybils have none)", "higher"),
    MetricInfo("capture", "mean over the target group G's honest members of "
               "clip((δ(a_G, t) − δ(a'_i, t)) / δ(a_G, t), −1, 1); a_G = G's clean "
               "agreement, a'_i = member i's attacked agreement, t = the attack's target "
               "point (NaN without a target)", "higher"),
    MetricInfo("join_success", "1 if an attacker or Sybil ends in the group holding most of "
               "G's honest members, else 0 (NaN without a target group)", "higher"),
    MetricInfo("exclusion_rate", "share of victims V that kept fewer than half of their "
               "clean honest co-members, or accepted their clean agreement and no longer "
               "accept their attacked one (NaN without victims)", "higher"),
    MetricInfo("partition_change", "1 − ARI(clean labels, attacked labels) over H "
               "(adjusted Rand index, Hubert & Arabie 1985)", "higher"),
    MetricInfo("comembership_flips", "share of pairs of H together in exactly one of the "
               "two partitions", "higher"),
    MetricInfo("n_groups_clean", "groups holding an honest agent, clean run", "none"),
    MetricInfo("n_groups_attacked", "groups holding an honest agent, attacked run", "none"),
    MetricInfo("delta_groups", "n_groups_attacked − n_groups_clean", "none"),
    MetricInfo("defense_cost", "mean_{i} u_i(clean, undefended) − u_i(clean, defended): "
               "what the defense costs with no attack", "higher"),
    MetricInfo("defense_partition_change", "1 − ARI(clean undefended labels, clean "
               "defended labels) over all agents: how much the defense reshapes the groups "
               "with no attack (utilities miss it: an agent left alone scores 1)", "higher"),
    MetricInfo("goal_measure", "the attack goal's own measure, larger = better for the "
               "attacker (pluralguard.attacks.GOAL_SPECS): attacker_gain (selfish), capture, "
               "exclusion_rate (exclude), 1/0 merged or split, ±delta_groups (fragment / "
               "consolidate); 0 = no better than telling the truth", "higher"),
    MetricInfo("attack_success", "1 if goal_measure reached the goal's threshold: selfish "
               "≥ 1e-6; capture ≥ 0.5; exclude ≥ 0.5; merge, split, fragment, consolidate "
               "≥ 1", "higher"),
    MetricInfo("exhaustive_optimum", "the exhaustive best response's goal_measure for the "
               "same attackers and goal (pluralguard.attacks.exhaustive_search; only on "
               "populations small enough, else empty)", "none"),
    MetricInfo("certified_utility_loss_max", "proved upper bound on utility_loss_max over "
               "every attack of the threat model within the budget "
               "(pluralguard.eval.certify; empty where undecided or the attack is none)",
               "none"),
    MetricInfo("certified_utility_loss_p90", "proved upper bound on utility_loss_p90 over "
               "every attack of the threat model within the budget (empty where undecided)",
               "none"),
    MetricInfo("certified_attacker_gain", "proved upper bound on attacker_gain over every "
               "attack of the threat model within the budget (empty where undecided)", "none"),
    MetricInfo("certified_capture", "proved upper bound on capture over every attack of the "
               "threat model within the budget (empty where undecided or without a target)",
               "none"),
    MetricInfo("gap_utility_loss_max", "certified_utility_loss_max − utility_loss_max: how "
               "much worse than the attack found any attack could be", "none"),
    MetricInfo("gap_utility_loss_p90", "certified_utility_loss_p90 − utility_loss_p90",
               "none"),
    MetricInfo("gap_attacker_gain", "certified_attacker_gain − attacker_gain", "none"),
    MetricInfo("gap_capture", "certified_capture − capture", "none"),
    MetricInfo("gap_exhaustive", "certified − exhaustive_optimum for the goal's own metric "
               "(attacker_gain for selfish, capture for capture), where the exhaustive "
               "reference ran: the width of the interval holding the true worst case (0: "
               "known exactly, up to the search's lattice)", "none"),
    MetricInfo("truth_fallback", "1 if the recipe's own declarations served its goal worse "
               "than the truth, so the attackers declared the truth (goal_measure 0)", "none"),
    MetricInfo("queries", "mechanism calls the attack made (at every budget of its curve "
               "up to this one, see plan_budget)", "none"),
    MetricInfo("plan_budget", "the budget ≤ budget the attack's declarations were planned "
               "at: an attacker may spend less than allowed, so each budget of a security "
               "curve keeps the strongest plan of the curve's budgets up to it", "none"),
    MetricInfo("solver_iterations", "message-passing iterations of the attacked run",
               "none"),
    MetricInfo("converged", "1 if every run of the scenario converged", "lower"),
]}


def true_utilities(truth: Population, outcome: Outcome, agents: np.ndarray,
                   kind: str = "quadratic") -> np.ndarray:
    """u_i of the agreement each of ``agents`` ends with, on its true value system."""
    return utility(outcome.agent_X[agents], outcome.agent_W[agents], truth.X[agents],
                   truth.W[agents], kind)


def capture(clean_group_X: np.ndarray, clean_group_W: np.ndarray, attacked: Outcome,
            members: np.ndarray, point: tuple[np.ndarray, np.ndarray]) -> float:
    """Normalised displacement of the target group's agreements toward t (see METRICS)."""
    scores = capture_scores(clean_group_X, clean_group_W, attacked, members, point)
    return float(scores.mean()) if scores.size else float("nan")


def join_success(attacked_labels: np.ndarray, members: np.ndarray,
                 intruders: np.ndarray) -> float:
    """1 if an intruder shares the group holding most of ``members`` (see METRICS)."""
    if members.size == 0:
        return float("nan")
    majority = np.bincount(attacked_labels[members]).argmax()
    return float(np.any(attacked_labels[intruders] == majority)) if intruders.size else 0.0


def exclusion_rate(clean: Outcome, attacked: Outcome, victims: np.ndarray,
                   honest: np.ndarray) -> float:
    """Share of victims that lost their clean co-members or their agreement (METRICS)."""
    if victims.size == 0:
        return float("nan")
    return float(excluded(clean, attacked, victims, honest).mean())


def partition_change(a: np.ndarray, b: np.ndarray) -> float:
    """1 − adjusted Rand index of two labelings of the same agents."""
    if a.size < 2:
        return 0.0
    return float(1.0 - adjusted_rand_score(a, b))


def comembership_flips(a: np.ndarray, b: np.ndarray) -> float:
    """Share of agent pairs that are together in exactly one of two labelings."""
    if a.size < 2:
        return 0.0
    c = pair_confusion_matrix(a, b).astype(float)
    return float((c[0, 1] + c[1, 0]) / c.sum())


def n_groups(labels: np.ndarray) -> int:
    """Number of distinct groups among the given labels."""
    return int(np.unique(labels).size)


def summary(values: np.ndarray, prefix: str, stats: tuple[str, ...]) -> dict[str, float]:
    """Named statistics of a vector: mean, p10, p90, min, max."""
    if values.size == 0:
        return {f"{prefix}_{s}": float("nan") for s in stats}
    funcs = {"mean": np.mean, "min": np.min, "max": np.max,
             "p10": lambda v: np.percentile(v, 10), "p90": lambda v: np.percentile(v, 90)}
    return {f"{prefix}_{s}": float(funcs[s](values)) for s in stats}
