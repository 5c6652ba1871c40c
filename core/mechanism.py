"""Mechanisms as objects: declared population in → agreements out.

Every mechanism — the agreement solver, the ℓp single consensus, or one a user
registers — is a :class:`Mechanism`: a kind, keyword parameters, and an optional
chain of declaration transforms applied before solving (how declaration-level
defenses act). Calling it on a declared :class:`~pluralguard.core.model.Population`
returns an :class:`Outcome`, the read-out both ``AgreementResult`` and
``ConsensusResult`` provide, so every attack, defense and metric works on any
mechanism. Adaptive attacks receive the (defended) mechanism as such an object.

A transform must keep the agents (same n, same order): it may change declarations,
bounds or weights, never drop anyone (a filtered agent gets bound 0 or a tiny
weight instead, so every agent still ends with an agreement).

**Capabilities.** A kind declares what it is (:data:`CAPABILITIES`: forms groups? links
agents by bounds? uses declared bounds? a data-driven threshold? message passing?),
statically or as a function of its parameters, and attack and defense applicability
reads :attr:`Mechanism.capabilities` — never the kind's name. A kind may also declare a
``version``: suite run keys then use it instead of the source of its function.
**Outcomes.** :func:`check_outcome` checks what a mechanism returned against
:class:`Outcome` (run once when a suite loads); :func:`~pluralguard.core.result.make_outcome`
builds a valid one from labels and agreements.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np
from scipy import sparse

from .consensus import lp_consensus
from .errors import InputError
from .model import Population
from .solver import solve_agreements

if TYPE_CHECKING:
    from .bounds import BoundPolicy, BoundRule


@runtime_checkable
class Outcome(Protocol):
    """What a mechanism returns (satisfied by ``AgreementResult`` and ``ConsensusResult``).

    Attributes
    ----------
    labels : ndarray of int, shape (n,)
        Group of each agent.
    X : ndarray, shape (n_groups, k, m)
    W : ndarray, shape (n_groups, m)
        Agreements.
    membership : scipy.sparse matrix of bool, shape (n, n_groups)
        Agent i accepts agreement g.
    consensus : ndarray of bool, shape (n_groups,)
    utilities : ndarray, shape (n,)
        Utilities on the declarations.
    converged : bool
    n_iter : int
    """

    labels: np.ndarray
    X: np.ndarray
    W: np.ndarray
    membership: sparse.spmatrix
    consensus: np.ndarray
    utilities: np.ndarray
    converged: bool
    n_iter: int

    @property
    def n_groups(self) -> int: ...

    @property
    def agent_X(self) -> np.ndarray: ...

    @property
    def agent_W(self) -> np.ndarray: ...


class HasTransform(Protocol):
    """An object-style declaration transform (e.g. a defense): ``transform(population)``."""

    def transform(self, population: Population) -> Population: ...


#: A declaration transform: a callable, or an object with a ``transform`` method,
#: mapping a declared population to a declared population with the same agents.
Transform = Callable[[Population], Population] | HasTransform


def transform_function(transform: Transform) -> Callable[[Population], Population]:
    """The function a :data:`Transform` applies (its ``transform`` method, or itself)."""
    return getattr(transform, "transform", transform)


def apply_transforms(population: Population, transforms: Iterable[Transform],
                     functions: Iterable[Callable[[Population], Population]] | None = None
                     ) -> Population:
    """``population`` through each transform in turn, each checked to keep every agent.

    ``functions`` (one per transform, e.g. their sessions) answer in their stead when
    given; the transforms then only name the culprit of an error.
    """
    transforms = tuple(transforms)
    applied = [transform_function(t) for t in transforms] if functions is None else functions
    for transform, apply in zip(transforms, applied, strict=True):
        out = apply(population)
        if out.n != population.n:
            raise InputError("transform", f"{_stable(transform)} changed the number of "
                             "agents", "transforms must keep every agent (use bound 0 "
                             "or a tiny weight to silence one)")
        population = out
    return population

#: What a mechanism may declare it is or accepts (``register_mechanism(capabilities=...)``),
#: name → meaning. Attacks and defenses read these to decide whether they apply.
CAPABILITIES: dict[str, str] = {
    "groups": "forms several groups, each with its own agreement, not one agreement for "
              "everyone",
    "links": "links agents whose declarations are mutually acceptable under the bounds in "
             "force, set by its `bounds` parameter (a bound policy or an object with "
             "resolve()); groups form along links",
    "declared_bounds": "the agents' declared bounds (gamma_x, gamma_w) decide whom they "
                       "accept",
    "threshold": "a data-driven threshold: every agent's bound is a statistic of all "
                 "declarations (quantile:q), so declarations move everyone's bound",
    "message_passing": "computes by message passing between agents and accepts a "
                       "per-iteration message hook (protocol deviation)",
    "edge_filter": "takes `edge_filter`, a callable (population, Edges) -> Edges "
                   "restricting the candidate links (network defenses)",
    "mixing": "takes `mixing` (robust neighbour mixing) and `method` (message passing)",
    "utility": "takes `utility`; 'linear' makes every agreement a geometric median",
    "lp": "takes `p`, the exponent of an lp aggregation (p = 1: coordinate-wise median)",
}

#: Capabilities as registered: fixed names, or a function of the parameters.
CapabilitySpec = Iterable[str] | Callable[[Mapping[str, Any]], Iterable[str]]


def bound_rule_kind(rule: str | BoundPolicy | BoundRule) -> str:
    """``declared``, ``quantile``, ``fixed`` or ``custom``: the kind of a bound rule,
    looking through wrappers (rules with an ``inner`` rule, as defenses add:
    :class:`~pluralguard.core.bounds.WrappingBoundRule`) and honouring a custom rule's own
    ``kind`` attribute (:class:`~pluralguard.core.bounds.KindedBoundRule`)."""
    from .bounds import BoundPolicy

    rule = BoundPolicy.parse(rule) if isinstance(rule, str) else rule
    while not isinstance(rule, BoundPolicy) and hasattr(rule, "inner"):
        rule = rule.inner
    return str(getattr(rule, "kind", "custom"))


def _agreement_capabilities(params: Mapping[str, Any]) -> set[str]:
    """The agreement solver: groups formed along links under a bound rule; declared
    bounds matter under ``declared`` (or a custom rule), a threshold under
    ``quantile:q``, messages unless ``method="exact"``."""
    caps = {"groups", "links", "edge_filter", "mixing", "utility"}
    rule = bound_rule_kind(params.get("bounds", "declared"))
    if rule in ("declared", "custom"):
        caps.add("declared_bounds")
    if rule == "quantile":
        caps.add("threshold")
    if params.get("method", "exact") != "exact":
        caps.add("message_passing")
    return caps


def _check_capabilities(kind: str, names: Iterable[str]) -> frozenset[str]:
    if isinstance(names, str):
        names = (names,)
    try:
        caps = frozenset(names)
    except TypeError:
        raise InputError("capabilities", f"mechanism {kind!r}: expected names of "
                         f"capabilities, got {type(names).__name__}",
                         f"pass some of {', '.join(CAPABILITIES)}") from None
    unknown = sorted(c for c in caps if c not in CAPABILITIES)
    if unknown:
        raise InputError("capabilities", f"mechanism {kind!r} declares unknown "
                         f"capability {unknown[0]!r}", f"use {', '.join(CAPABILITIES)}")
    return caps


@dataclass(frozen=True)
class MechanismKind:
    """A registered kind: its function and what it declares (see :func:`register_mechanism`)."""

    function: Callable[..., Outcome]
    description: str = ""
    capabilities: CapabilitySpec = frozenset()
    accepts_hook: bool | None = None
    version: str | None = None

    def capabilities_for(self, kind: str, params: Mapping[str, Any]) -> frozenset[str]:
        """The capabilities under these parameters."""
        spec = self.capabilities
        return _check_capabilities(kind, spec(params) if callable(spec) else spec)


_KINDS: dict[str, MechanismKind] = {
    "agreements": MechanismKind(
        solve_agreements, "value agreements by homophily and decentralised optimisation "
        "(Hernández-Sánchez et al. 2026)", _agreement_capabilities, accepts_hook=True),
    "consensus": MechanismKind(
        lp_consensus, "single ℓp consensus by regression (Lera-Leri et al. 2022/2024)",
        frozenset({"lp"}), accepts_hook=False),
}


def register_mechanism(kind: str, function: Callable[..., Outcome], *,
                       capabilities: CapabilitySpec = (), version: str | None = None,
                       accepts_hook: bool | None = None, description: str = "") -> None:
    """Register a mechanism kind: ``function(population, **params) -> Outcome``.

    Parameters
    ----------
    kind : str
        Its name (letters, digits, underscores); registering it again replaces it.
    function : callable
        ``function(declared_population, **params)`` returning an :class:`Outcome`, e.g.
        built with :func:`~pluralguard.core.result.make_outcome`.
    capabilities : iterable of str, or callable
        What it is (names from :data:`CAPABILITIES`), or a function of the parameters
        returning them. Attacks and defenses that need a capability it lacks refuse it
        (:class:`~pluralguard.core.errors.NotApplicable`) or do nothing. Declare none
        and it is treated as one opaque aggregation of the declarations.
    version : str, optional
        Declared version: suite run keys use it instead of the function's source code
        (bump it when results change).
    accepts_hook : bool, optional
        Whether ``function`` takes ``hook=`` (default: it declares ``message_passing``).
    description : str
        One line for ``pluralguard list mechanisms``.

    Examples
    --------
    >>> from pluralguard.core import lp_consensus
    >>> register_mechanism("median", lambda pop: lp_consensus(pop, p=1),
    ...                    capabilities=["lp"], version="1", description="ℓ1 consensus")
    """
    if not isinstance(kind, str) or not kind or not kind.replace("_", "").isalnum():
        raise InputError("kind", f"invalid mechanism name {kind!r}",
                         "use letters, digits and underscores")
    if not callable(function):
        raise InputError("function", f"mechanism {kind!r}: {function!r} is not callable",
                         "pass function(population, **params) -> Outcome")
    if version is not None and not isinstance(version, str):
        raise InputError("version", f"mechanism {kind!r}: version {version!r} is not a "
                         "string", "pass e.g. version=\"2\"")
    if not callable(capabilities):
        capabilities = _check_capabilities(kind, capabilities)
    _KINDS[kind] = MechanismKind(function, description, capabilities, accepts_hook, version)


def mechanism_kinds() -> list[tuple[str, str]]:
    """``(kind, description)`` of every registered mechanism."""
    return [(k, spec.description) for k, spec in _KINDS.items()]


def registered_kind(kind: str) -> MechanismKind:
    """The registration of a kind (function, capabilities, version)."""
    if kind not in _KINDS:
        raise InputError("mechanism", f"unknown mechanism {kind!r}",
                         f"use one of {', '.join(_KINDS)} or register_mechanism()")
    return _KINDS[kind]


#: Attributes every outcome has (:class:`Outcome`).
OUTCOME_FIELDS = ("labels", "X", "W", "membership", "consensus", "utilities", "converged",
                  "n_iter", "n_groups", "agent_X", "agent_W")


def check_outcome(outcome: Any, population: Population, source: str = "mechanism") -> None:
    """Check that ``outcome`` is a valid :class:`Outcome` for ``population``.

    Raises
    ------
    InputError
        Naming ``source``, the attributes missing or of the wrong shape, and the fix
        (:func:`~pluralguard.core.result.make_outcome`).
    """
    fix = ("build the outcome with pluralguard.core.make_outcome(population, labels, X, W), "
           "which fills membership, utilities and consensus")
    missing = [name for name in OUTCOME_FIELDS if not hasattr(outcome, name)]
    if missing:
        raise InputError(source, f"returned {type(outcome).__name__}, an outcome without "
                         f"{', '.join(missing)}", fix)
    n, k, m = population.n, population.k, population.m
    try:
        G = int(outcome.n_groups)
        shapes = {"labels": (n,), "X": (G, k, m), "W": (G, m), "membership": (n, G),
                  "consensus": (G,), "utilities": (n,)}
        wrong = [f"{name} has shape {tuple(np.shape(getattr(outcome, name)))}, expected "
                 f"{shape}" for name, shape in shapes.items()
                 if tuple(getattr(outcome, name).shape) != shape]
    except (TypeError, ValueError, AttributeError) as err:
        raise InputError(source, f"returned a malformed outcome ({err})", fix) from None
    if wrong:
        raise InputError(source, f"returned a malformed outcome: {'; '.join(wrong)} "
                         f"(n={n} agents, {G} groups, k={k}, m={m})", fix)
    labels = np.asarray(outcome.labels)
    if labels.size and (not np.issubdtype(labels.dtype, np.integer) or labels.min() < 0
                        or labels.max() >= G):
        raise InputError(source, f"returned labels that are not group ids in [0, {G})", fix)
    if not (np.isfinite(outcome.X).all() and np.isfinite(outcome.W).all()):
        raise InputError(source, "returned agreements with NaN or infinite entries", fix)


def _stable(value: Any) -> str:
    """A deterministic text form of a parameter (callables by qualified name / repr)."""
    if isinstance(value, float):
        return repr(value)
    if callable(value) and not hasattr(value, "__dataclass_fields__"):
        name = f"{getattr(value, '__module__', '')}.{getattr(value, '__qualname__', value)}"
        owner = getattr(value, "__self__", None)  # a bound method: its object matters
        return name if owner is None else f"{name}<{owner!r}>"
    return repr(value)


@dataclass(frozen=True)
class Mechanism:
    """A configured mechanism.

    Parameters
    ----------
    kind : str
        ``agreements``, ``consensus``, or a registered kind.
    params : mapping
        Keyword arguments of the kind's function (e.g. ``bounds``, ``method``, ``p``).
    transforms : tuple of callables
        Declaration transforms applied in order before solving.

    Examples
    --------
    >>> from pluralguard.core import datasets
    >>> mech = Mechanism("agreements", {"bounds": "quantile:0.5"})
    >>> out = mech(datasets.load("evs2017"))
    >>> out.labels.shape
    (34,)
    """

    kind: str
    params: Mapping[str, Any] = field(default_factory=dict)
    transforms: tuple[Transform, ...] = ()

    def __post_init__(self) -> None:
        if self.kind not in _KINDS:
            raise InputError("mechanism", f"unknown mechanism {self.kind!r}",
                             f"use one of {', '.join(_KINDS)} or register_mechanism()")
        object.__setattr__(self, "params", dict(self.params))

    @property
    def capabilities(self) -> frozenset[str]:
        """What this mechanism is under its parameters (names from :data:`CAPABILITIES`)."""
        return _KINDS[self.kind].capabilities_for(self.kind, self.params)

    @property
    def accepts_hook(self) -> bool:
        """Whether a message hook (protocol deviation) can be passed."""
        spec = _KINDS[self.kind]
        if spec.accepts_hook is not None:
            return spec.accepts_hook
        return "message_passing" in self.capabilities

    @property
    def title(self) -> str:
        """``'kind' (param=value, ...)`` with its plain parameters, for messages."""
        plain = ", ".join(f"{k}={v!r}" for k, v in sorted(self.params.items())
                          if isinstance(v, (str, int, float, bool)))
        return f"{self.kind!r}" + (f" ({plain})" if plain else "")

    def __call__(self, population: Population, *, hook: Any = None) -> Outcome:
        declared = self.declare(population)
        function = _KINDS[self.kind].function
        if hook is None:
            return function(declared, **self.params)
        if not self.accepts_hook:
            raise InputError("hook", f"mechanism {self.kind!r} has no message passing to "
                             "deviate from", "use the 'agreements' mechanism with method "
                             "'dual' or 'dgd' for protocol deviations")
        return function(declared, hook=hook, **self.params)

    def session(self, base: Population) -> Callable[[Population], Outcome]:
        """A function answering hook-free calls exactly like ``self(population)``, for
        the many queries an adaptive attacker makes on populations near ``base``.

        Transforms run first on every query, as in :meth:`__call__`. For the agreement
        mechanism (``exact``, ``merge``; declared, fixed or quantile bounds) a query
        that changes a few rows of ``base`` or appends a few is re-solved
        incrementally, with the same answer as a full solve
        (:mod:`~pluralguard.core.incremental`); other kinds and parameters get the
        base answer kept and every other query solved in full. Hold one session per
        attack plan; it is not thread-safe.

        Examples
        --------
        >>> from pluralguard.core import datasets
        >>> pop = datasets.load("evs2017")
        >>> mech = Mechanism("agreements", {"bounds": "quantile:0.5"})
        >>> ask = mech.session(pop)
        >>> moved = pop.replace(W=pop.W[::-1])
        >>> bool((ask(moved).labels == mech(moved).labels).all())
        True
        """
        from .incremental import open_session

        return open_session(self, base)

    def declare(self, population: Population) -> Population:
        """The declarations the mechanism actually solves (after the transforms)."""
        return apply_transforms(population, self.transforms)

    def with_params(self, **changes: Any) -> Mechanism:
        """Copy with some parameters changed."""
        return replace(self, params={**self.params, **changes})

    def with_transform(self, transform: Transform) -> Mechanism:
        """Copy with one more declaration transform at the end of the chain."""
        return replace(self, transforms=(*self.transforms, transform))

    @property
    def key(self) -> str:
        """Deterministic description, for tables and content-addressed caching."""
        params = ",".join(f"{k}={_stable(v)}" for k, v in sorted(self.params.items()))
        chain = "|".join(_stable(t) for t in self.transforms)
        return f"{self.kind}({params})" + (f"[{chain}]" if chain else "")

    @property
    def digest(self) -> str:
        """Short hash of :attr:`key`."""
        return hashlib.sha256(self.key.encode()).hexdigest()[:16]

    def __repr__(self) -> str:
        return f"Mechanism({self.key})"
