"""Measures of an attacked outcome against the clean one, shared by attack objectives
(:mod:`pluralguard.attacks`) and evaluation metrics (:mod:`pluralguard.eval.metrics`).
"""

from __future__ import annotations

import numpy as np

from .geometry import normalised_distance
from .mechanism import Outcome


def capture_scores(clean_X: np.ndarray, clean_W: np.ndarray, attacked: Outcome,
                   members: np.ndarray, point: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """Per member: clip((δ(a_G, t) − δ(a'_i, t)) / δ(a_G, t), −1, 1).

    a_G = (clean_X, clean_W) is the group's clean agreement, a'_i member i's attacked
    agreement and t the target point; 1 means the member now sits at t, 0 unmoved,
    negative pushed away. Empty when a_G is already t.
    """
    tX, tW = point
    d0 = float(normalised_distance(clean_X, clean_W, tX, tW))
    if members.size == 0 or d0 <= 0:
        return np.zeros(0)
    d1 = normalised_distance(attacked.agent_X[members], attacked.agent_W[members], tX, tW)
    return np.clip((d0 - d1) / d0, -1.0, 1.0)


def excluded(clean: Outcome, attacked: Outcome, victims: np.ndarray,
             honest: np.ndarray) -> np.ndarray:
    """Per victim: lost its group, or lost its agreement.

    A victim v is excluded when it keeps fewer than half of its clean honest
    co-members in its attacked group, or when it accepted its clean agreement and no
    longer accepts its attacked one (acceptance as the mechanism reports it in
    ``membership``). A victim that never accepted its agreement is not excluded by
    the attack.
    """
    n = clean.labels.size
    c_lab, a_lab = clean.labels, attacked.labels
    before = np.asarray(clean.membership[victims, c_lab[victims]]).ravel().astype(bool)
    after = np.asarray(attacked.membership[victims, a_lab[victims]]).ravel().astype(bool)
    is_honest = np.zeros(n, dtype=bool)
    is_honest[honest] = True
    out = np.zeros(victims.size, dtype=bool)
    for t, v in enumerate(victims.tolist()):
        mates = np.flatnonzero((c_lab == c_lab[v]) & is_honest)
        mates = mates[mates != v]
        kept = np.mean(a_lab[mates] == a_lab[v]) if mates.size else 1.0
        out[t] = kept < 0.5 or (before[t] and not after[t])
    return out
