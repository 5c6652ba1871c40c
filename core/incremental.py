"""Attack queries near a base population (:meth:`Mechanism.session`).

An adaptive attacker queries the mechanism hundreds of times on declarations that
differ from a base population in a few agents' rows (and sometimes a few appended
Sybil rows). A session answers every hook-free query exactly as a fresh call would
(same labels, same agreements, bit for bit), reusing what a query provably cannot
change.

What it reuses today: the base population's answer, which a query whose
declarations (after the mechanism's transforms) equal the base's gets back without
solving — the attacker's baseline query, repeated by every recipe. Every other query
is a full solve. Exact reuse of the agreement mechanism's unchanged initial-network
components (the link rule visits each component's links independently of every
other component, and a group's agreement depends only on its members) is the next
step; it is not implemented, so no query result can differ from a full solve.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from .model import Population

if TYPE_CHECKING:
    from .mechanism import Mechanism, Outcome


def open_session(mechanism: Mechanism, base: Population) -> Callable[[Population], Outcome]:
    """``ask(population) -> Outcome``, equal to ``mechanism(population)`` (module doc).

    Parameters
    ----------
    mechanism : Mechanism
        Any mechanism (transforms included).
    base : Population
        The population the queries stay near (declared, before the transforms).
    """
    key = base.fingerprint()
    memo: dict[str, Outcome] = {}

    def ask(population: Population) -> Outcome:
        if population.fingerprint() != key:
            return mechanism(population)
        if key not in memo:
            memo[key] = mechanism(population)
        return memo[key]

    return ask
