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
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Protocol, runtime_checkable

import numpy as np
from scipy import sparse

from .consensus import lp_consensus
from .errors import InputError
from .model import Population
from .solver import solve_agreements


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


#: A declaration transform: a callable, or an object with a ``transform`` method,
#: mapping a declared population to a declared population with the same agents.
Transform = Any

#: kind → (function(population, **params) → Outcome, accepts a message hook, description)
_KINDS: dict[str, tuple[Callable[..., Outcome], bool, str]] = {
    "agreements": (solve_agreements, True,
                   "value agreements by homophily and decentralised optimisation "
                   "(Hernández-Sánchez et al. 2026)"),
    "consensus": (lp_consensus, False,
                  "single ℓp consensus by regression (Lera-Leri et al. 2022/2024)"),
}


def register_mechanism(kind: str, function: Callable[..., Outcome], *,
                       accepts_hook: bool = False, description: str = "") -> None:
    """Register a mechanism kind: ``function(population, **params) -> Outcome``."""
    if not kind or not kind.replace("_", "").isalnum():
        raise InputError("kind", f"invalid mechanism name {kind!r}",
                         "use letters, digits and underscores")
    _KINDS[kind] = (function, accepts_hook, description)


def mechanism_kinds() -> list[tuple[str, str]]:
    """``(kind, description)`` of every registered mechanism."""
    return [(k, d) for k, (_, _, d) in _KINDS.items()]


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
    def accepts_hook(self) -> bool:
        """Whether a message hook (protocol deviation) can be passed."""
        return _KINDS[self.kind][1]

    def __call__(self, population: Population, *, hook: Any = None) -> Outcome:
        declared = self.declare(population)
        function = _KINDS[self.kind][0]
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

        Transforms run first on every query, as in :meth:`__call__`; what is reused
        across queries lives in :func:`~pluralguard.core.incremental.open_session`
        (kinds and parameters without an incremental path are answered by ``self``).
        """
        from .incremental import open_session

        return open_session(self, base)

    def declare(self, population: Population) -> Population:
        """The declarations the mechanism actually solves (after the transforms)."""
        for transform in self.transforms:
            apply = getattr(transform, "transform", transform)
            out = apply(population)
            if out.n != population.n:
                raise InputError("transform", f"{_stable(transform)} changed the number of "
                                 "agents", "transforms must keep every agent (use bound 0 "
                                 "or a tiny weight to silence one)")
            population = out
        return population

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
