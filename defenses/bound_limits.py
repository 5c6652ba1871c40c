"""Bound floors: nobody may declare less concession than a minimum."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pluralguard.core.bounds import pairwise_distance_quantile
from pluralguard.core.errors import InputError
from pluralguard.core.model import Population

from .base import Defense


@dataclass(frozen=True)
class BoundFloor(Defense):
    """Raise every declared bound to at least a floor: γ̂ᵢ ← max(γ̂ᵢ, γ_min).

    Idea: a tiny declared bound (a *stubborn* agent, γ̂ ≈ 0) forces every group it
    joins onto its own point, since the agreement must lie in its acceptable set.
    A floor caps that leverage; it is the value-system analogue of the minimum
    concession rules of negotiation protocols, and of clipping a client's influence
    in robust aggregation (Karimireddy et al., *Byzantine-robust learning on
    heterogeneous datasets via bucketing*, 2022).

    Parameters
    ----------
    quantile : float
        Floor as the q-quantile of all pairwise declared distances, computed separately
        for X and W (default 0.1). Ignored when ``gamma_x`` and ``gamma_w`` are given.
    gamma_x, gamma_w : float, optional
        Absolute floors.

    Cost: honest agents who really concede little are forced to accept more. Only
    acts under the ``declared`` bound policy (other policies ignore declared bounds).
    """

    name = "bound_floor"
    summary = "raise every declared bound to at least a floor (against stubborn bounds)"
    layer = "declarations"
    targets = ("stubborn", "exclude", "infiltrate")

    quantile: float = 0.1
    gamma_x: float | None = None
    gamma_w: float | None = None

    def __post_init__(self) -> None:
        if not 0 <= self.quantile <= 1:
            raise InputError("quantile", f"{self.quantile} is outside [0, 1]",
                             "pass a quantile level such as 0.1")
        if (self.gamma_x is None) != (self.gamma_w is None):
            raise InputError("gamma_x", "give both absolute floors or neither",
                             "pass gamma_x and gamma_w, or use quantile")
        for name in ("gamma_x", "gamma_w"):
            v = getattr(self, name)
            if v is not None and not v >= 0:
                raise InputError(name, f"floor {v!r} is negative", "pass a floor >= 0")

    def floors(self, population: Population) -> tuple[float, float]:
        """The floors (γˣ_min, γʷ_min) for these declarations."""
        if self.gamma_x is not None:
            return float(self.gamma_x), float(self.gamma_w)
        n = population.n
        return (pairwise_distance_quantile(population.X.reshape(n, -1), self.quantile),
                pairwise_distance_quantile(population.W, self.quantile))

    def transform(self, population: Population) -> Population:
        if not population.has_bounds:
            return population
        fx, fw = self.floors(population)
        return population.with_bounds(np.maximum(population.gamma_x, fx),
                                      np.maximum(population.gamma_w, fw))
