"""The contract every defense follows (DESIGN §5).

A defense turns a mechanism into a defended mechanism. It acts on one of three
things:

* **declarations** — a transform applied to the declared population before solving
  (bound floors and caps, outlier filtering, Sybil weight caps);
* **the network rule** — how agents link (mutual-kNN or k-core linking, robust or
  randomised thresholds);
* **the aggregation** — how a group's agreement is computed (robust mixing, linear
  utility).

Defenses compose in a chain (applied left to right). Each states which attacks it
targets (:attr:`Defense.targets`) and what it assumes (:attr:`Defense.assumes`); a
defense whose assumption is a tolerated attacker fraction has an ``assumed_fraction``
field, and the suite can run it with an assumption that differs from the actual
attack (:meth:`Defense.with_assumption`), as ByzFL separates the declared from the
actual number of Byzantine nodes.

A defense acts through what the mechanism declares it is
(:attr:`~pluralguard.core.mechanism.Mechanism.capabilities`): a bound rule to wrap
(``links``), declared bounds to floor (``declared_bounds``), an ``edge_filter`` to
compose, ``mixing``, ``utility`` or ``p`` to set. Where a defense has nothing to act on
(e.g. a bound floor under a quantile bound policy, robust mixing on the single
consensus, which has no message passing, a network rule on a user's mechanism without
a network), :meth:`Defense.apply` returns the mechanism *unchanged* — an explicit no-op
whose measured cost and benefit are zero, and which :meth:`Defense.acts_on` reports.
A defense that would act but cannot (a weight defense against explicit mechanism
weights) raises :class:`~pluralguard.core.errors.NotApplicable`.

**Certificates.** A defense may carry a certificate of its own: :meth:`Defense.certify`
says what the defended mechanism lets *any* attack within a threat model reach, given
what the mechanism it defends lets it reach (a :class:`Reach`, which the certifier of
:mod:`pluralguard.eval.certify` builds and reads). A defense that does not implement it
carries none, and the certifier then relies only on what holds after any declaration
transform: every agreement is a valid value system.

The helpers at the end of this module are shared by the recipes: the bound rule in
force, composition of bound-rule wrappers and edge filters, and normalised
coordinates.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from typing import Any, ClassVar, Protocol

import numpy as np

from pluralguard.core.bounds import BoundPolicy, BoundRule
from pluralguard.core.errors import NotApplicable
from pluralguard.core.geometry import scaled_points
from pluralguard.core.mechanism import Mechanism
from pluralguard.core.model import Population
from pluralguard.core.network import Edges
from pluralguard.core.params import Constraint, OrNone, Real, Validated

LAYERS = ("declarations", "network", "aggregation")


class Reach(Protocol):
    """What a certifier has proved about the declarations a mechanism solves under any
    attack of one threat model (implemented by :class:`pluralguard.eval.reach.Reach`).

    Attributes
    ----------
    truth : Population
        The honest declarations (every agent's true value system and bounds).
    honest : ndarray of int
        The agents that do not attack.
    sybils : int
        Most Sybil identities an attack adds.
    bounds : (ndarray, ndarray) or None
        Upper bounds (γˣ, γʷ), one per agent, on the bounds in force of the honest
        agents; None when none is proved.
    weight_low, weight_high : ndarray
        Bounds on each agent's weight as the mechanism weighs it.
    sybil_weight : (float, float)
        Bounds on the weight of a Sybil identity, when it is declared at all.
    """

    truth: Population
    honest: np.ndarray
    sybils: int
    bounds: tuple[np.ndarray, np.ndarray] | None
    weight_low: np.ndarray
    weight_high: np.ndarray
    sybil_weight: tuple[float, float]

    def quantile(self, q: float, removed: Callable[[int], int] | None = None
                 ) -> tuple[float, float] | None:
        """Upper bounds (X, W) on the q-quantile of the pairwise declared distances under
        any attack, over the identities left after any ``removed(N)`` of the N declared
        ones are left out; None when it cannot be proved."""
        ...

    def replace(self, **changes: Any) -> Reach:
        """A copy with some attributes changed."""
        ...


@dataclass(frozen=True)
class Defense(Validated):
    """Base class of defenses (subclass as a frozen dataclass).

    A defense declares its parameters' constraints in ``PARAMS``
    (:mod:`~pluralguard.core.params`); they are checked when it is built.

    Class attributes
    ----------------
    name : str
        Registry name.
    summary : str
        One line for ``pluralguard list defenses``.
    layer : str
        ``declarations``, ``network`` or ``aggregation``.
    targets : tuple of str
        Names of the attacks it is designed against (registry names of
        :mod:`pluralguard.attacks`).
    assumes : str
        Its assumption in one sentence. When the assumption is a tolerated attacker
        fraction, the defense has an ``assumed_fraction`` field.
    """

    name: ClassVar[str] = ""
    summary: ClassVar[str] = ""
    layer: ClassVar[str] = "declarations"
    targets: ClassVar[tuple[str, ...]] = ()
    assumes: ClassVar[str] = ""

    def __call__(self, mechanism: Mechanism) -> Mechanism:
        """The defended mechanism."""
        return self.apply(mechanism)

    def apply(self, mechanism: Mechanism) -> Mechanism:
        """Default for declaration defenses: append :meth:`transform` to the chain."""
        return mechanism.with_transform(self)

    def transform(self, population: Population) -> Population:
        """Declaration defenses: declared population → declared population (same agents)."""
        raise NotImplementedError(f"{type(self).__name__} does not transform declarations")

    def acts_on(self, mechanism: Mechanism) -> bool:
        """Whether the defense changes this mechanism (False: a documented no-op)."""
        return self.apply(mechanism) is not mechanism

    def certify(self, mechanism: Mechanism, reach: Reach) -> Reach | None:
        """What ``self(mechanism)`` lets any attack reach, given what ``mechanism`` lets
        it reach (module doc, *Certificates*).

        Parameters
        ----------
        mechanism : Mechanism
            The mechanism this defense is applied to (possibly already defended).
        reach : Reach
            What is proved for ``mechanism``.

        Returns
        -------
        Reach or None
            What is proved for the defended mechanism: ``reach`` itself when the defense
            changes nothing a certificate reads; None when the defense carries no
            certificate (the default).
        """
        return None

    def params(self) -> dict[str, Any]:
        """The defense's parameters."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @property
    def randomized(self) -> bool:
        """Whether the defense draws randomness (it then has a ``seed`` field)."""
        return "seed" in {f.name for f in fields(self)}

    def redraw(self, seed: int) -> Defense:
        """The same defense with another draw of its randomness (itself when it draws
        none): its ``seed`` replaced by one derived from the configured seed and
        ``seed``, so configured seeds still give different distributions."""
        if not self.randomized:
            return self
        derived = np.random.SeedSequence([int(self.seed), int(seed)]).generate_state(1)[0]
        return replace(self, seed=int(derived))

    def with_assumption(self, assumed_fraction: float) -> Defense:
        """Copy assuming a different tolerated attacker fraction.

        Defenses without an ``assumed_fraction`` field assume no fraction and are
        returned unchanged.
        """
        if "assumed_fraction" not in {f.name for f in fields(self)}:
            return self
        return replace(self, assumed_fraction=assumed_fraction)


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

    @property
    def randomized(self) -> bool:
        """Whether any defense of the chain draws randomness."""
        return any(d.randomized for d in self.defenses)

    def redraw(self, seed: int) -> DefenseChain:
        """The chain with another draw of every randomized defense's randomness (each
        defense's draw derived from ``seed`` and its position)."""
        return DefenseChain(tuple(d.redraw(int(np.random.SeedSequence([seed, i])
                                                   .generate_state(1)[0]))
                                  for i, d in enumerate(self.defenses)))

    def with_assumption(self, assumed_fraction: float) -> DefenseChain:
        """Every defense of the chain with a different tolerated attacker fraction."""
        return DefenseChain(tuple(d.with_assumption(assumed_fraction) for d in self.defenses))

    def __bool__(self) -> bool:
        return bool(self.defenses)


# ------------------------------------------------------------------- helpers
#: The constraint of an ``assumed_fraction`` field: a tolerated share of attackers,
#: in (0, 0.5] (a defense cannot tolerate a majority).
FRACTION = Real(0, 0.5, closed="right", sample=0.1)
#: The same, or None (the defense then estimates it).
OPTIONAL_FRACTION: Constraint = OrNone(FRACTION)


def check_weights_param(defense: Defense, mechanism: Mechanism) -> None:
    """Weight-changing defenses cannot act when the mechanism is given explicit weights
    (its ``weights`` parameter overrides the population's)."""
    if mechanism.params.get("weights") is not None:
        raise NotApplicable("weights", f"mechanism {mechanism.kind!r} is given explicit "
                            f"weights, which override the population's, so "
                            f"{defense.name!r} cannot change them",
                            "put the weights on the population (Population(weights=...)) "
                            "instead of the mechanism")


def bound_rule(mechanism: Mechanism) -> Any:
    """The agreement mechanism's bound rule in force (``declared`` by default)."""
    return BoundPolicy.parse(mechanism.params.get("bounds", "declared"))


def plain_policy(mechanism: Mechanism) -> BoundPolicy | None:
    """The mechanism's bound rule when it is a bare policy (no wrapper around it), else
    None. Certificates that replace or feed the innermost rule need it bare: a wrapper
    left around it would act on the new bounds too."""
    rule = bound_rule(mechanism)
    return rule if isinstance(rule, BoundPolicy) else None


def base_rule(rule: BoundPolicy | BoundRule) -> BoundPolicy | BoundRule:
    """The innermost rule of a chain of bound-rule wrappers (each has ``inner``,
    :class:`~pluralguard.core.bounds.WrappingBoundRule`)."""
    while hasattr(rule, "inner"):
        rule = rule.inner
    return rule


def uses_declared_bounds(mechanism: Mechanism) -> bool:
    """Whether the agents' declared bounds decide whom they accept (capability
    ``declared_bounds``: the agreement mechanism under ``declared`` or a custom rule; not
    the consensus, where bounds only decide membership, never the agreement)."""
    return "declared_bounds" in mechanism.capabilities


def wraps_bounds(mechanism: Mechanism) -> bool:
    """Whether the mechanism takes a bound rule a defense can wrap (capability ``links``)."""
    return "links" in mechanism.capabilities


def with_bound_rule(mechanism: Mechanism,
                    wrap: Callable[[BoundPolicy | BoundRule], BoundPolicy | BoundRule]
                    ) -> Mechanism:
    """``mechanism`` with its bound rule in force replaced by ``wrap(rule)`` (a defense's
    wrapper around it, or a rebased chain); itself when it takes no bound rule (no
    capability ``links``, e.g. the consensus)."""
    if not wraps_bounds(mechanism):
        return mechanism
    return mechanism.with_params(bounds=wrap(bound_rule(mechanism)))


def rebase(rule: BoundPolicy | BoundRule,
           change: Callable[[BoundPolicy | BoundRule], BoundPolicy | BoundRule]
           ) -> BoundPolicy | BoundRule:
    """Apply ``change`` to the innermost rule of a wrapper chain, keeping the wrappers."""
    if hasattr(rule, "inner"):
        return replace(rule, inner=rebase(rule.inner, change))
    return change(rule)


@dataclass(frozen=True)
class EdgeFilters:
    """Several edge filters applied in order (how network defenses compose)."""

    filters: tuple[Callable[[Population, Edges], Edges], ...]

    def __call__(self, population: Population, edges: Edges) -> Edges:
        for f in self.filters:
            edges = f(population, edges)
        return edges


def with_edge_filter(mechanism: Mechanism,
                     edge_filter: Callable[[Population, Edges], Edges]) -> Mechanism:
    """Add a network rule after any the mechanism already has."""
    current = mechanism.params.get("edge_filter")
    if current is None:
        return mechanism.with_params(edge_filter=edge_filter)
    previous = current.filters if isinstance(current, EdgeFilters) else (current,)
    return mechanism.with_params(edge_filter=EdgeFilters((*previous, edge_filter)))


def keep_edges(edges: Edges, keep: np.ndarray) -> Edges:
    """The sub-network of the links where ``keep`` is True (order preserved)."""
    return Edges(i=edges.i[keep], j=edges.j[keep], distance=edges.distance[keep], n=edges.n)


def normalised_points(population: Population) -> np.ndarray:
    """Rows ``[vec(X_i)/(√2 D_X), W_i/(√2 D_W)]``: their Euclidean distance is δ."""
    return scaled_points(population.X.reshape(population.n, -1), population.W)


def parts(population: Population) -> tuple[np.ndarray, np.ndarray]:
    """The two parts bounds act on: flattened X (Frobenius) and W (Euclidean)."""
    return population.X.reshape(population.n, -1), population.W
