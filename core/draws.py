"""A randomized mechanism as the distribution of its draws.

A defense or mechanism that draws randomness (a jittered threshold, a seeded outlier
detector) is a different deterministic mechanism for every draw of its seed. An
attacker facing it knows the distribution, not the draw the deployment will use, so
an attack must be judged — and an adaptive attack must optimise — the *expectation*
over draws of its effect: expectation over transformation (Athalye, Carlini & Wagner,
*Obfuscated gradients give a false sense of security*, ICML 2018). :class:`Draws`
carries independent draws of one mechanism: calling it runs the first (what a recipe
that plans against one outcome sees); :mod:`pluralguard.attacks` measures goals as the
mean over all of them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .errors import InputError
from .mechanism import Mechanism, Outcome
from .model import Population


@dataclass(frozen=True, repr=False)
class Draws(Mechanism):
    """Independent draws of one randomized mechanism (module doc).

    Build it with :meth:`of`. ``kind``, ``params`` and ``transforms`` are the first
    draw's, so capability checks and declared populations are those of the mechanism.
    """

    draws: tuple[Mechanism, ...] = ()

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.draws:
            raise InputError("draws", "no draw of the mechanism", "pass at least one draw")

    @classmethod
    def of(cls, draws: Sequence[Mechanism]) -> Draws:
        """The distribution of these draws (the first also answers plain calls)."""
        if not draws:
            raise InputError("draws", "no draw of the mechanism", "pass at least one draw")
        first = draws[0]
        return cls(first.kind, first.params, first.transforms, tuple(draws))

    def __call__(self, population: Population, *, hook: Any = None) -> Outcome:
        return self.draws[0](population, hook=hook)

    @property
    def key(self) -> str:
        return "draws(" + ";".join(d.key for d in self.draws) + ")"
