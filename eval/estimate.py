"""A suite's size and estimated time, before it runs (``pluralguard run --dry-run``).

A grid multiplies quickly (datasets × mechanisms × defenses × attacks × budgets ×
seeds): the README's example suite has 117,600 runs. :func:`plan_suite` says how many
runs a suite has, how many a results directory already stores, and roughly how long
the rest takes, without running any of them. The command line prints it before every
run, and asks for ``--yes`` when more than :data:`LARGE_GRID` runs are to be computed.

**The estimate** is rough by design (within a factor of a few): a run's cost is
dominated by the mechanism calls its attack makes, so

    seconds(run) ≈ calls(run) × t(dataset, defended mechanism)

* t is timed now: one call of each distinct defended mechanism on (at most
  :data:`SAMPLE_AGENTS` agents of) each dataset, scaled linearly to the dataset's size;
* calls(run): 2 for a no-attack baseline (the clean runs), 2 plus the query budget for
  the adaptive search and 2 plus :data:`RECIPE_CALLS` for a fixed recipe, each query
  counted as :data:`QUERY_SHARE` of a call (an attacker's queries are answered by a
  session, :meth:`~pluralguard.core.mechanism.Mechanism.session`); a randomized defense
  multiplies the attack's calls by the draws it plans against and adds the draws it is
  evaluated on (:data:`~.scenario.PLAN_DRAWS`, :data:`~.scenario.DRAWS`);
* a run whose attack does not apply costs nothing (decided now, from the mechanism's
  capabilities, as the run would);
* where the results directory stores finished runs of the same dataset, mechanism,
  defense and recipe, their measured mean time replaces the model.

The total is divided by the number of workers, plus :data:`STARTUP_SECONDS` to start
them. Not counted: the exhaustive reference on small populations, and differences in
convergence between runs.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from pluralguard.core.errors import NotApplicable

if TYPE_CHECKING:  # the command line reads LARGE_GRID without importing the registries
    from .suite import GridPoint, Suite

#: Runs to compute above which ``pluralguard run``, ``check`` and ``baseline`` ask for
#: ``--yes`` (the default suite has about 1,700).
LARGE_GRID = 5_000
#: Most agents a mechanism is timed on (larger datasets: a sample, scaled linearly).
SAMPLE_AGENTS = 200
#: Queries of a fixed recipe (the shares of its budget it tries, the rationality check).
RECIPE_CALLS = 8
#: What an attack query costs, as a share of a full mechanism call: a session re-solves
#: only what the changed declarations affect (6–13 % on pve_like, benchmarks section 6).
QUERY_SHARE = 0.1
#: Seconds to start the workers and load pluralguard in them (per run of a suite).
STARTUP_SECONDS = 3.0
#: Name of the adaptive search.
_ADAPTIVE = "best_response"


@dataclass(frozen=True)
class Plan:
    """What a suite will run.

    Attributes
    ----------
    suite : str
    grid : int
        Grid points (runs) of the suite.
    stored : int
        Of them, finished runs the results directory already holds (reused).
    pending : int
        Runs to compute (failed ones are computed again).
    seconds : float
        Estimated wall time of the pending runs (module doc).
    jobs : int
        Workers the estimate divides by.
    shape : str
        How the grid multiplies out, for the reader.
    """

    suite: str
    grid: int
    stored: int
    pending: int
    seconds: float
    jobs: int
    shape: str

    def text(self) -> str:
        """One paragraph: size, what is stored, the estimate."""
        workers = f"{self.jobs} worker{'s' if self.jobs > 1 else ''}"
        head = (f"suite {self.suite!r}: {self.grid:,} runs ({self.shape}); "
                f"{self.stored:,} stored, {self.pending:,} to compute")
        if not self.pending:
            return head + " (nothing to run: everything is stored)"
        return (head + f"; estimated {duration(self.seconds)} with {workers} (rough: "
                "timed mechanism calls × the calls each attack makes)")


def duration(seconds: float) -> str:
    """``~40 s``, ``~12 min``, ``~3.5 h``, ``~2.1 days``."""
    if seconds < 90:
        return f"~{max(1, round(seconds))} s"
    if seconds < 90 * 60:
        return f"~{round(seconds / 60)} min"
    if seconds < 48 * 3600:
        return f"~{seconds / 3600:.1f} h"
    return f"~{seconds / 86400:.1f} days"


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _shape(suite: Suite, grid: list[GridPoint]) -> str:
    budgets = sorted({len(a.budgets) for a in suite.attacks if a.name != "none"})
    per_attack = (f"{budgets[0]} budget{'s' if budgets[0] > 1 else ''} each"
                  if len(budgets) == 1 else
                  f"{budgets[0]}–{budgets[-1]} budgets" if budgets else "no budgets")
    full = (len(suite.datasets) * len(suite.mechanisms) * len(suite.defenses)
            * sum(len(a.budgets) for a in suite.attacks) * len(suite.seeds))
    cut = full - len(grid)
    return (f"{_count(len(suite.datasets), 'dataset')} × "
            f"{_count(len(suite.mechanisms), 'mechanism')} × "
            f"{_count(len(suite.defenses), 'defense')} × "
            f"{_count(len(suite.attacks), 'attack')} incl. `none` ({per_attack}) × "
            f"{_count(len(suite.seeds), 'seed')}"
            + (f", {cut:,} excluded or outside --only" if cut else ""))


def calls(point: GridPoint) -> float:
    """Mechanism calls a run makes (module doc)."""
    from .scenario import DRAWS, PLAN_DRAWS

    recipe = point.attack.build()
    if recipe is None:
        attack_calls = 2.0
    elif recipe.name == _ADAPTIVE:
        attack_calls = 2.0 + QUERY_SHARE * recipe.threat.queries
    else:
        attack_calls = 2.0 + QUERY_SHARE * RECIPE_CALLS
    if point.defense.build().randomized:
        return attack_calls * PLAN_DRAWS + DRAWS
    return attack_calls


def _applies(point: GridPoint, defended: Any) -> bool:
    recipe = point.attack.build()
    if recipe is None:
        return True
    try:
        recipe.check(point.dataset.population, defended)
    except NotApplicable:
        return False
    return True


class _Timer:
    """Seconds per call of each defended mechanism on each dataset, timed once."""

    def __init__(self) -> None:
        self.seconds: dict[tuple[str, str], float] = {}

    def __call__(self, point: GridPoint, defended: Any) -> float:
        key = (point.dataset.label, defended.key)
        if key not in self.seconds:
            pop = point.dataset.population
            sample = pop if pop.n <= SAMPLE_AGENTS else pop.subset(np.arange(SAMPLE_AGENTS))
            start = time.perf_counter()
            try:
                defended(sample)
            except Exception:  # the run would fail fast, or differently: time what it took
                pass
            self.seconds[key] = (time.perf_counter() - start) * pop.n / sample.n
        return self.seconds[key]


def _stored_means(done: Mapping[str, dict[str, Any]]) -> dict[tuple, float]:
    """Mean seconds of stored runs per (dataset, mechanism, defense, recipe) label."""
    sums: dict[tuple, list[float]] = {}
    for record in done.values():
        row, timing = record.get("row"), record.get("timing")
        if not (isinstance(row, dict) and isinstance(timing, dict)):
            continue
        total = timing.get("total")
        if not isinstance(total, int | float):
            continue
        key = (row.get("dataset"), row.get("mechanism"), row.get("defense"),
               row.get("recipe"))
        sums.setdefault(key, []).append(float(total))
    return {k: sum(v) / len(v) for k, v in sums.items()}


def plan_suite(suite: Suite, done: Mapping[str, dict[str, Any]],
               key: Callable[[GridPoint], str], *, jobs: int = 1,
               time_solves: bool = True) -> Plan:
    """Size and estimated time of a suite (module doc).

    Parameters
    ----------
    suite : Suite
    done : mapping
        The store's finished runs by key (:class:`~.store.RunStore`).
    key : callable
        The run key of a grid point (:func:`~.provenance.run_key`).
    jobs : int
        Workers.
    time_solves : bool
        Time the mechanisms (False: count only, estimate 0 where nothing is stored).
    """
    grid = suite.grid()
    pending = [p for p in grid if (k := key(p)) not in done or "failed" in done[k]]
    stored = _stored_means(done)
    timer = _Timer()
    seconds = 0.0
    for point in pending:
        recipe = point.attack.name if point.attack.name != "none" else "none"
        known = stored.get((point.dataset.label, point.mechanism.label,
                            point.defense.label, recipe))
        if known is not None:
            seconds += known
            continue
        if not time_solves:
            continue
        defended = point.defense.build()(point.mechanism.mechanism)
        if _applies(point, defended):
            seconds += calls(point) * timer(point, defended)
    wall = seconds / max(1, jobs) + (STARTUP_SECONDS if pending else 0.0)
    return Plan(suite.name, len(grid), len(grid) - len(pending), len(pending), wall,
                max(1, jobs), _shape(suite, grid))
