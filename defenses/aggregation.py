"""Aggregation defenses: robust mixing of messages, and median agreements."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from pluralguard.core.errors import InputError
from pluralguard.core.mechanism import Mechanism
from pluralguard.core.message_passing import parse_mixing
from pluralguard.core.params import Constraint, Parsed

from .base import Defense, Reach


@dataclass(frozen=True)
class RobustMixing(Defense):
    """Combine neighbours' messages robustly inside the solver's message passing.

    Idea: protocol deviation — an agent that declares honestly but sends manipulated
    estimates during the iterations (a constant signal, a gradual nudge) — drags its
    neighbours through the averaging step. Robust neighbour aggregation bounds each
    neighbour's pull: ``clip:τ`` clips every received difference to length τ
    (self-centred clipping, He, Karimireddy & Jaggi, *Byzantine-robust decentralized
    learning via ClippedGossip*, 2022); ``trimmed:b`` ignores each agent's b most
    distant neighbours and ``median`` moves to the coordinate-wise median of the
    neighbourhood (screening, Fang, Yang & Bajwa, *BRIDGE: Byzantine-resilient
    decentralized gradient descent*, 2022).

    It only acts in message passing: an ``exact`` agreement mechanism (a centralised
    per-group solve, with no messages to manipulate) is switched to ``dual`` (``dgd``
    for the linear utility, ``trimmed`` or ``median`` mixing, which the dual cannot
    do: ignoring a neighbour on one side breaks its multipliers' antisymmetry). Same fixed
    point in theory, so the clean cost is the message-passing residual, but the run
    is far slower.

    Parameters
    ----------
    mixing : str
        ``clip:τ`` (τ in normalised distance δ), ``trimmed:b`` or ``median``
        (default ``clip:0.05``).

    Assumes (clip) honest neighbours' estimates differ by little once they near
    consensus; (trimmed:b) at most b Byzantine neighbours per agent; (median) an
    honest majority in every neighbourhood.

    Acts on mechanisms with capability ``mixing`` (the agreement mechanism). No-op for
    the others, e.g. the consensus, computed in closed form with no message passing.
    """

    name = "robust_mixing"
    summary = "clipped / trimmed / median mixing of neighbours' messages (against " \
              "protocol deviation)"
    layer = "aggregation"
    targets = ("protocol",)
    assumes = "few Byzantine neighbours per agent (b for trimmed, a minority for median)"

    mixing: str = "clip:0.05"

    PARAMS: ClassVar[dict[str, Constraint]] = {"mixing": Parsed(
        parse_mixing, what="a mixing rule clip:TAU, trimmed:B or median",
        example="clip:0.05")}

    def _check_together(self) -> None:
        if parse_mixing(self.mixing)[0] == "mean":
            raise InputError("mixing", "'mean' is the undefended rule",
                             "use 'clip:TAU', 'trimmed:B' or 'median'")

    def apply(self, mechanism: Mechanism) -> Mechanism:
        if "mixing" not in mechanism.capabilities:
            return mechanism
        method = mechanism.params.get("method", "exact")
        linear = mechanism.params.get("utility", "quadratic") == "linear"
        if parse_mixing(self.mixing)[0] in ("median", "trimmed") or linear:
            method = "dgd"
        elif method == "exact":
            method = "dual"
        return mechanism.with_params(method=method, mixing=self.mixing)

    def certify(self, mechanism: Mechanism, reach: Reach) -> Reach:
        """Unchanged: every honest estimate is still projected onto the agent's own
        acceptable set each iteration, and bounds and weights are untouched; the
        certifier reads the message-passing method (and its tolerance) from the
        defended mechanism."""
        return reach


@dataclass(frozen=True)
class MedianAgreement(Defense):
    """Median agreements: the linear utility, so each group agrees on a geometric
    median; for the single consensus, p = 1 (the coordinate-wise weighted median).

    Idea: with the quadratic utility a group's agreement is a (projected) weighted
    mean, which one member moves in proportion to how far it declares — overshooting
    pays. With u = 1 − δ the group optimum is a (projected) geometric median, whose
    pull per member is a unit vector whatever the distance, and which has breakdown
    point 1/2 (Lopuhaä & Rousseeuw 1991); at p = 1 the ℓp consensus is a weighted
    median per coordinate, strategyproof when the median is unique (Moulin 1980;
    Lera-Leri et al. 2022). Geometric-median aggregation is the classic robust
    aggregator of Byzantine-robust learning (RFA, Pillutla, Kakade & Harchaoui 2022).

    No parameters.

    Assumes attackers are a minority of every group. Clean cost: the metrics keep
    the mechanism's own (quadratic) utility, for which the mean is optimal, so honest
    utility falls by the distance between each group's mean and median.

    Acts on both built-in mechanisms: capability ``lp`` (the consensus) gets ``p=1``;
    capability ``utility`` (agreements) gets ``utility="linear"`` (``dual`` switches to
    ``dgd``, which the linear utility needs). No-op for mechanisms with neither.
    """

    name = "median_agreement"
    summary = "linear utility / p = 1: geometric-median agreements (against overshoot)"
    layer = "aggregation"
    targets = ("overshoot", "infiltrate")
    assumes = "attackers are a minority of every group"

    def apply(self, mechanism: Mechanism) -> Mechanism:
        capabilities = mechanism.capabilities
        if "lp" in capabilities:
            return mechanism.with_params(p=1)
        if "utility" not in capabilities:
            return mechanism
        if mechanism.params.get("method") == "dual":
            return mechanism.with_params(utility="linear", method="dgd")
        return mechanism.with_params(utility="linear")

    def certify(self, mechanism: Mechanism, reach: Reach) -> Reach:
        """Unchanged: bounds and weights are untouched; the certifier reads ``p`` and the
        utility from the defended mechanism."""
        return reach
