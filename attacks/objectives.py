"""Goal measures on query outcomes: what an adaptive attack maximises.

Each measure mirrors the metric the evaluation reports for the goal (DESIGN §6),
computed from the clean and the attacked outcome and the attackers' own truths, so an
adaptive search that maximises it maximises what is measured. A measure is a pair
(main, tie-break): the main value is the metric itself; the tie-break is a continuous
companion for discrete metrics (how far victims' agreements moved, how many pieces a
group broke into, how close two groups' agreements came), compared only on ties.
"""

from __future__ import annotations

import numpy as np

from pluralguard.core.geometry import normalised_distance, utility
from pluralguard.core.measures import capture_scores, excluded
from pluralguard.core.mechanism import Outcome

from .base import AttackContext

#: Weight of the tie-break when a search needs one number: main + TIE_WEIGHT · tie.
TIE_WEIGHT = 1e-3


def _majority(labels: np.ndarray) -> int:
    return int(np.bincount(labels).argmax())


class GoalMeasure:
    """The threat model's goal, measured on an attacked outcome (higher is better).

    * ``selfish`` — attackers' mean true-utility change (``attacker_gain``);
    * ``capture`` — mean over the target group's honest members of
      clip((δ(a_G, t) − δ(a'_i, t)) / δ(a_G, t), −1, 1) (``capture``);
    * ``exclude`` — share of victims that kept fewer than half of their clean honest
      co-members or lost an agreement they accepted (``exclusion_rate``); tie-break:
      victims' mean δ from their clean agreement;
    * ``split`` — 1 if the target group's honest members end in several groups;
      tie-break: the number of those groups over the group's size;
    * ``merge`` — 1 if the two groups' honest majorities share a group; tie-break:
      −δ between their majorities' agreements;
    * ``fragment`` / ``consolidate`` — ± the change in the number of groups holding an
      honest agent (``delta_groups``).

    Parameters
    ----------
    ctx : AttackContext
        Supplies the clean outcome (one query), the attackers and the targets.
    """

    def __init__(self, ctx: AttackContext) -> None:
        self.kind = ctx.threat.goal.kind
        self.utility = ctx.utility_kind
        truth, clean = ctx.truth, ctx.clean
        self.n = n = truth.n
        self.truth = truth
        self.clean = clean
        self.attackers = ctx.attackers
        self.honest = np.setdiff1d(np.arange(n), self.attackers)
        self.clean_labels = clean.labels[:n]
        self.u_clean = self._utilities(clean, self.attackers)
        if self.kind in ("capture", "split", "exclude"):
            self.target = ctx.members(ctx.target_group_id())
        if self.kind == "capture":
            self.point = ctx.target_point()
            self.g = g = _majority(self.clean_labels[self.target])
            self.d0 = float(normalised_distance(clean.X[g], clean.W[g], *self.point))
        if self.kind == "exclude":
            self.victims = ctx.victims()
        if self.kind == "merge":
            a, b = ctx.merge_group_ids()
            self.pair = (ctx.members(a), ctx.members(b))
        self.groups_clean = np.unique(self.clean_labels[self.honest]).size

    def _utilities(self, out: Outcome, agents: np.ndarray) -> np.ndarray:
        return utility(out.agent_X[agents], out.agent_W[agents], self.truth.X[agents],
                       self.truth.W[agents], self.utility)

    def __call__(self, out: Outcome) -> tuple[float, float]:
        """(main, tie-break) of the goal on an attacked outcome."""
        labels = out.labels
        if self.kind == "selfish":
            return float(np.mean(self._utilities(out, self.attackers) - self.u_clean)), 0.0
        if self.kind == "capture":
            T = self.target
            if T.size == 0 or self.d0 <= 0:
                return 0.0, 0.0
            return float(capture_scores(self.clean.X[self.g], self.clean.W[self.g], out, T,
                                        self.point).mean()), 0.0
        if self.kind == "exclude":
            return self._exclusion(out)
        if self.kind == "split":
            pieces = np.unique(labels[self.target]).size
            return float(pieces > 1), pieces / max(self.target.size, 1)
        if self.kind == "merge":
            a, b = self.pair
            ga, gb = _majority(labels[a]), _majority(labels[b])
            gap = float(normalised_distance(out.X[ga], out.W[ga], out.X[gb], out.W[gb]))
            return float(ga == gb), -gap
        delta = np.unique(labels[self.honest]).size - self.groups_clean
        return float(delta if self.kind == "fragment" else -delta), 0.0

    def _exclusion(self, out: Outcome) -> tuple[float, float]:
        V = self.victims
        share = float(excluded(self.clean, out, V, self.honest).mean())
        moved = normalised_distance(out.agent_X[V], out.agent_W[V], self.clean.agent_X[V],
                                    self.clean.agent_W[V])
        return share, float(moved.mean())
