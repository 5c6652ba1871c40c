"""The cache a worker keeps between scenarios: mechanism runs, attack-query sessions
and the plans of a security curve's budgets.

Every entry is keyed by what it is computed from, in full, and every computation it
stands for is deterministic, so a hit changes no result — it only saves time: the clean
runs of a (dataset, mechanism, defense) are shared by all its attacks, a session
(:meth:`~pluralguard.core.mechanism.Mechanism.session`) by all its attack queries, and
a curve's plans by its larger budgets (:func:`~pluralguard.eval.scenario.run_scenario`'s
``budget_path``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import pickle
from collections.abc import Callable
from dataclasses import dataclass, field

from pluralguard.attacks import Attack, AttackPlan
from pluralguard.core.mechanism import Mechanism, Outcome
from pluralguard.core.memo import BoundedMemo
from pluralguard.core.message_passing import MessageHook
from pluralguard.core.model import Population


class RunCache:
    """Content-addressed cache of mechanism runs (hook-free runs only), of the
    attack-query sessions opened on a population (:meth:`session`) and of the plans of
    the budgets of a security curve (:meth:`plan`), each a
    :class:`~pluralguard.core.memo.BoundedMemo` (least recently used dropped)."""

    #: Sessions kept: the runs of one dataset × mechanism × defense (every attack and
    #: budget of a suite) query the same clean population. One session on
    #: ``pve_like`` holds ~30 MB, so few are kept (joblib restarts a worker that grew
    #: by 300 MB, and a randomized defense's planning draws are not kept).
    SESSIONS_KEPT = 2

    #: Plans kept: the budgets of the curves a worker runs one after the other.
    PLANS_KEPT = 8

    def __init__(self, size: int = 64) -> None:
        self._runs: BoundedMemo[Outcome] = BoundedMemo(size)
        self._sessions: BoundedMemo[Callable[[Population], Outcome]] = BoundedMemo(
            self.SESSIONS_KEPT)
        self._plans: BoundedMemo[AttackPlan] = BoundedMemo(self.PLANS_KEPT)

    def run(self, mechanism: Mechanism, declared: Population,
            hook: MessageHook | None = None) -> Outcome:
        """``mechanism(declared, hook=hook)``, from the cache when hook-free."""
        if hook is not None:
            return mechanism(declared, hook=hook)
        return self._runs.get(self._key(mechanism, declared), lambda: mechanism(declared))

    def session(self, mechanism: Mechanism, base: Population
                ) -> Callable[[Population], Outcome]:
        """``mechanism.session(base)``, kept for the next attack on the same population.

        A session answers every query exactly like a fresh call of the mechanism,
        whatever it answered before (:meth:`Mechanism.session`), so sharing it between
        attacks changes no result; it saves rebuilding the session's state (links,
        bound and defense state, certificates) once per attack and budget.
        """
        return self._sessions.get(self._key(mechanism, base),
                                  lambda: mechanism.session(base))

    def plan(self, recipe: Attack, truth: Population, against: str, seed: int,
             budget: float, make: Callable[[], AttackPlan]) -> AttackPlan:
        """The plan of ``recipe`` on ``truth`` against the mechanism ``against`` names,
        at ``seed`` and ``budget``: stored, else ``make()``, stored. A plan is a
        deterministic function of these, so a hit changes no result: it saves planning
        a curve's smaller budgets again at each larger one (:func:`run_scenario`'s
        ``budget_path``).

        The recipe enters the key as its class (so a class redefined in a notebook
        misses) and the pickled values of all its fields (a field left out of its
        ``repr`` still counts); a recipe whose fields cannot be pickled is not cached.
        """
        try:
            fields = hashlib.sha256(pickle.dumps(dataclasses.astuple(recipe))).digest()
        except (TypeError, AttributeError, pickle.PicklingError):
            return make()
        key = (type(recipe), fields, truth.fingerprint(), against, seed, float(budget))
        return self._plans.get(key, make)

    def get(self, mechanism: Mechanism, declared: Population) -> Outcome | None:
        """The cached outcome of a hook-free run, or None (never runs anything)."""
        return self._runs.peek(self._key(mechanism, declared))

    @staticmethod
    def _key(mechanism: Mechanism, declared: Population) -> str:
        return hashlib.sha256(f"{mechanism.key}\x00{declared.fingerprint()}".encode()).hexdigest()


DEFAULT_CACHE = RunCache()


@dataclass(frozen=True, repr=False)
class CachedMechanism(Mechanism):
    """A mechanism that answers hook-free calls already in a :class:`RunCache` from it.

    Handed to the attack in place of the defended mechanism, so that the attack's
    query of the clean outcome reuses the clean run instead of solving it again.
    Other queries run and are not stored (an attack's exploratory queries would evict
    the clean runs). Copies made by ``with_params`` / ``with_transform`` keep the cache.
    """

    cache: RunCache = field(default_factory=RunCache, compare=False)

    def __call__(self, population: Population, *, hook: MessageHook | None = None
                 ) -> Outcome:
        plain = Mechanism(self.kind, self.params, self.transforms)
        known = self.cache.get(plain, population) if hook is None else None
        return known if known is not None else plain(population, hook=hook)

    def session(self, base: Population) -> Callable[[Population], Outcome]:
        """The cache's session of the mechanism on ``base`` (:meth:`RunCache.session`)."""
        return self.cache.session(Mechanism(self.kind, self.params, self.transforms), base)


def cached(mechanism: Mechanism, cache: RunCache) -> Mechanism:
    """``mechanism`` answering from ``cache`` (:class:`CachedMechanism`); a subclass of
    Mechanism (a user's own) is handed over as it is."""
    if type(mechanism) is not Mechanism:
        return mechanism
    return CachedMechanism(mechanism.kind, mechanism.params, mechanism.transforms, cache)
