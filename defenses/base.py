"""The contract every defense follows (DESIGN §5).

A defense turns a mechanism into a defended mechanism. It acts on one of three
things:

* **declarations** — a transform applied to the declared population before solving
  (bound floors and caps, outlier filtering, Sybil weight caps);
* **the network rule** — how agents link (mutual-kNN or k-core linking, robust or
  randomised thresholds);
* **the aggregation** — how a group's agreement is computed (robust mixing, linear
  utility).

Defenses compose in a chain (applied left to right). Each may state which attacks it
targets and what it assumes (e.g. a tolerated attacker fraction); the suite can run
it with an assumption that differs from the actual attack, as ByzFL separates the
declared from the actual number of Byzantine nodes.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any, ClassVar

from pluralguard.core.mechanism import Mechanism
from pluralguard.core.model import Population

LAYERS = ("declarations", "network", "aggregation")


@dataclass(frozen=True)
class Defense:
    """Base class of defenses (subclass as a frozen dataclass).

    Class attributes
    ----------------
    name : str
        Registry name.
    summary : str
        One line for ``pluralguard list defenses``.
    layer : str
        ``declarations``, ``network`` or ``aggregation``.
    targets : tuple of str
        Names of the attacks it is designed against.
    """

    name: ClassVar[str] = ""
    summary: ClassVar[str] = ""
    layer: ClassVar[str] = "declarations"
    targets: ClassVar[tuple[str, ...]] = ()

    def __call__(self, mechanism: Mechanism) -> Mechanism:
        """The defended mechanism."""
        return self.apply(mechanism)

    def apply(self, mechanism: Mechanism) -> Mechanism:
        """Default for declaration defenses: append :meth:`transform` to the chain."""
        return mechanism.with_transform(self)

    def transform(self, population: Population) -> Population:
        """Declaration defenses: declared population → declared population (same agents)."""
        raise NotImplementedError(f"{type(self).__name__} does not transform declarations")

    def params(self) -> dict[str, Any]:
        """The defense's parameters."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def with_params(self, **changes: Any) -> Defense:
        return replace(self, **changes)


@dataclass(frozen=True)
class DefenseChain:
    """Several defenses applied left to right; the empty chain is no defense."""

    defenses: tuple[Defense, ...] = ()

    def __call__(self, mechanism: Mechanism) -> Mechanism:
        for d in self.defenses:
            mechanism = d(mechanism)
        return mechanism

    @property
    def name(self) -> str:
        return "+".join(d.name for d in self.defenses) or "none"

    def __bool__(self) -> bool:
        return bool(self.defenses)
