"""Exhaustive best response: the ground truth an attack search is held to.

For populations small enough, the attackers' declaration space
(:class:`~.space.DeclarationSpace`: every attacker's value system within its budget,
the declared bounds where the mechanism reads them, every Sybil's value system) is
searched by brute force, through the mechanism as a black box, so it calibrates any
mechanism — the built-in ones or a user's:

1. **lattice** — a regular lattice over the coordinates (spacing h, the budget ball's
   points outside it scaled onto its sphere, where budget-limited optima lie),
   evaluated in full, for every Sybil count from 0 to the threat model's; telling the
   truth is one of its points;
2. **discrete outcomes** — the evaluated points are grouped by the outcome they
   produce (the partition of all identities: which group each attacker ends in, which
   links broke); for the best ``keep`` outcome classes and the best points overall,
3. **refinement** — polling around the class's best point with step h along the
   directions of a freshly rotated stencil (the 3^d stencil for d ≤ 3, ± an
   orthonormal basis beyond, as in OrthoMADS), moving to better points, rotating
   when none is better, and halving h, ``levels`` times.

The result is the best point found, its measure (:mod:`~.goals`, never below the
truth's), every outcome class with its best value, and the queries spent. It is exact
up to the lattice: an outcome class no lattice point reaches (a sliver of the budget
ball thinner than h) is missed, so small populations and low dimensions — the
"coordinates that matter" — are its domain (Croce & Hein's AutoAttack and Tramèr et
al.'s adaptive-attack guidelines argue for exactly this kind of ground truth when
judging an attack).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from itertools import product
from typing import Any

import numpy as np
import pandas as pd

from pluralguard.core.errors import InputError
from pluralguard.core.mechanism import Mechanism
from pluralguard.core.model import Population

from .context import AttackContext, QueryLedger
from .goals import GOAL_SPECS
from .plan import AttackPlan
from .space import LOG2_BOUNDS, DeclarationSpace
from .threat import ThreatModel

#: Largest dimension polled with the (rotated) 3^d stencil, 2d directions above.
FULL_STENCIL_DIM = 3
#: Most lattice points per axis of the coarse pass.
MAX_PER_AXIS = 65
#: Rotations polled at one step size without improvement before it halves.
TRIES = 2
#: Moves at one step size before it halves.
MAX_MOVES = 25


@dataclass(frozen=True)
class ExhaustiveResult:
    """Outcome of :func:`exhaustive_search` (in the manner of ``scipy.optimize``).

    Attributes
    ----------
    value : float
        Best main value of the goal's measure found (≥ ``truth_value``).
    tie : float
        Its tie-break.
    plan : AttackPlan
        The best declarations, with the goal's targets.
    truth_value : float
        The measure of telling the truth (0 for a deterministic mechanism).
    queries : int
        Mechanism calls made.
    outcomes : DataFrame
        One row per discrete outcome class seen: ``sybils``, ``groups`` (groups holding
        an identity), ``attacker_groups`` (the attackers' group labels), ``points``
        (evaluated points in the class) and ``best`` (its best main value), best first.
    spacing : float
        Lattice spacing of the coarse pass, relative to the budget ball's radius.
    final_spacing : float
        Smallest refinement step, relative to the same radius.
    complete : bool
        Whether the search finished within ``max_queries``.
    """

    value: float
    tie: float
    plan: AttackPlan
    truth_value: float
    queries: int
    outcomes: pd.DataFrame = field(repr=False)
    spacing: float
    final_spacing: float
    complete: bool


@dataclass
class _Point:
    score: float
    main: float
    tie: float
    z: np.ndarray
    space: DeclarationSpace


class _Exhausted(Exception):
    """``max_queries`` reached."""


def _axis_points(lo: float, hi: float, count: int) -> np.ndarray:
    return np.linspace(lo, hi, count) if count > 1 else np.array([0.5 * (lo + hi)])


def _lattice(space: DeclarationSpace, per_axis: int) -> np.ndarray:
    """Every lattice point of the space's coordinates, ``per_axis`` points per axis
    (odd, so the centre — telling the truth — is one of them), clamped and deduplicated."""
    axes: list[np.ndarray] = []
    for b in space.blocks:
        half = np.broadcast_to(b.radius, space.n_value)
        axes += [_axis_points(-h, h, per_axis) for h in half]
        axes += [_axis_points(*LOG2_BOUNDS, per_axis)] * space.n_bounds
    if not axes:
        return np.zeros((1, 0))
    grid = np.array(list(product(*axes)), dtype=float)
    grid = np.array([space.clamp(z) for z in grid])
    return np.unique(np.round(grid, 12), axis=0)


def _per_axis(dim: int, grid_points: int) -> int:
    """The largest odd count c ≤ :data:`MAX_PER_AXIS` with c^dim ≤ grid_points (at least
    3): in one or two coordinates the refinement, not the lattice, gives precision."""
    if dim == 0:
        return 1
    c = max(3, min(MAX_PER_AXIS, math.floor(grid_points ** (1.0 / dim))))
    return c if c % 2 else c - 1


def _directions(dim: int, rng: np.random.Generator) -> np.ndarray:
    """Unit poll directions: a random rotation of the 3^d stencil's directions for
    d ≤ :data:`FULL_STENCIL_DIM`, else ± a random orthonormal basis."""
    rotation, _ = np.linalg.qr(rng.standard_normal((dim, dim)))
    if dim <= FULL_STENCIL_DIM:
        steps = np.array(list(product((-1.0, 0.0, 1.0), repeat=dim)))
        steps = steps[np.any(steps != 0, axis=1)]
        steps /= np.linalg.norm(steps, axis=1, keepdims=True)
    else:
        steps = np.concatenate([np.eye(dim), -np.eye(dim)])
    return steps @ rotation.T


#: Populations the exhaustive reference runs on by default: at most this many agents …
SMALL_AGENTS = 12
#: … and at most this many searched coordinates (all identities together).
SMALL_DIM = 3


def is_small(truth: Population, mechanism: Mechanism, threat: ThreatModel,
             seed: int = 0) -> bool:
    """Whether a scenario is small enough for the exhaustive reference to run by
    default (:data:`SMALL_AGENTS`, :data:`SMALL_DIM` coordinates with every Sybil)."""
    if truth.n > SMALL_AGENTS or threat.protocol:
        return False
    ctx = AttackContext(truth, mechanism, threat, seed)
    return DeclarationSpace(ctx, 1.0, threat.sybils).dim <= SMALL_DIM


def exhaustive_search(truth: Population, mechanism: Mechanism, threat: ThreatModel,
                      budget: float, seed: int = 0, *, grid_points: int = 1500,
                      levels: int = 9, keep: int = 5, max_queries: int = 200_000,
                      sybil_counts: tuple[int, ...] | None = None) -> ExhaustiveResult:
    """Best response of a coalition by brute force (module doc).

    Parameters
    ----------
    truth : Population
        True value systems and bounds.
    mechanism : Mechanism
        The (possibly defended) mechanism, queried as a black box.
    threat : ThreatModel
        Who attacks (chosen with ``seed`` exactly as a recipe would), the Sybil count,
        the legal bound range and the goal. Its knowledge and query budget are
        ignored: this is the reference, it knows everything and stops at
        ``max_queries`` only.
    budget : float
        ε on δ(v̂_a, v_a) per attacker (``inf``: anywhere valid).
    seed : int
        Seed of the attacker selection (as in :meth:`~.base.Attack.plan`).
    grid_points : int
        Lattice points per Sybil count in the coarse pass: per axis the largest odd
        count c with c^d ≤ grid_points (d = coordinates searched), at most
        :data:`MAX_PER_AXIS`.
    levels : int
        Halvings of the refinement step (final step ≈ spacing · 2^−levels).
    keep : int
        Outcome classes (and, separately, best points) refined.
    max_queries : int
        Stop (``complete = False``) after this many mechanism calls.
    sybil_counts : tuple of int, optional
        Sybil counts to search; default 0, 1, …, ``threat.sybils``.

    Returns
    -------
    ExhaustiveResult

    Examples
    --------
    >>> import numpy as np
    >>> from pluralguard.core import Population
    >>> pop = Population(np.array([[[-.6]], [[-.4]], [[.3]], [[.5]]]), np.ones((4, 1)))
    >>> res = exhaustive_search(pop, Mechanism("consensus", {"p": 2}),
    ...                         ThreatModel(attackers=(0,)), budget=0.1)
    >>> res.value > 0
    True
    """
    if not budget >= 0:
        raise InputError("budget", f"{budget!r} is not a non-negative number",
                         "pass a budget such as 0.1 (normalised distance)")
    for name, value in (("grid_points", grid_points), ("levels", levels), ("keep", keep),
                        ("max_queries", max_queries)):
        if not isinstance(value, int) or value < 1:
            raise InputError(name, f"{value!r} is not a positive integer",
                             f"pass e.g. {name}=8")
    ctx = AttackContext(truth, mechanism, threat, seed, QueryLedger(max_queries))
    spec = GOAL_SPECS[threat.goal.kind]
    counts = tuple(range(threat.sybils + 1)) if sybil_counts is None else sybil_counts
    if any(not 0 <= s <= threat.sybils for s in counts):
        raise InputError("sybil_counts", f"{counts!r} not within 0..{threat.sybils}",
                         "pass Sybil counts the threat model allows")
    rng = np.random.default_rng([seed, 13])
    seen: dict[str, _Point] = {}
    classes: dict[tuple, list[Any]] = {}

    def evaluate(space: DeclarationSpace, z: np.ndarray) -> _Point:
        declared = space.declare(z)
        key = declared.fingerprint()
        if key in seen:
            return seen[key]
        if ctx.ledger.left < len(ctx.draws):
            raise _Exhausted
        main, tie, out = ctx.evaluate(declared)
        point = _Point(spec.score(main, tie), main, tie, space.clamp(z), space)
        seen[key] = point
        labels = np.asarray(out.labels)
        attacker_groups = tuple(int(g) for g in labels[ctx.attackers])
        cls = (space.sybils, labels.tobytes())
        entry = classes.setdefault(cls, [point, 0, int(np.unique(labels).size),
                                         attacker_groups])
        entry[1] += 1
        if point.score > entry[0].score:
            entry[0] = point
        return point

    complete = True
    truth_space = DeclarationSpace(ctx, budget, 0)
    best = evaluate(truth_space, truth_space.truth_coordinates())
    truth_value = best.main
    spacing = final = math.nan
    try:
        for s in counts:
            space = DeclarationSpace(ctx, budget, s)
            c = _per_axis(space.dim, grid_points)
            spacing = 2.0 / max(c - 1, 1)
            for z in _lattice(space, c):
                p = evaluate(space, z)
                best = p if p.score > best.score else best
        starts = sorted((entry[0] for entry in classes.values()),
                        key=lambda p: -p.score)[:keep]
        starts += sorted(seen.values(), key=lambda p: -p.score)[:keep]
        refined: set[bytes] = set()
        for start in starts:
            tag = start.z.tobytes() + bytes([start.space.sybils])
            if tag in refined or start.space.dim == 0:
                continue
            refined.add(tag)
            p, final = _refine(start, evaluate, spacing, levels, rng)
            best = p if p.score > best.score else best
    except _Exhausted:
        complete = False
    plan = ctx.plan(best.space.declare(best.z), sybils=best.space.sybils,
                    info={"source": "exhaustive", "z": best.z.tolist()})
    rows = [{"sybils": cls[0], "groups": entry[2], "attacker_groups": entry[3],
             "points": entry[1], "best": entry[0].main} for cls, entry in classes.items()]
    outcomes = pd.DataFrame(rows).sort_values("best", ascending=False, kind="stable")
    return ExhaustiveResult(best.main, best.tie, plan, truth_value, ctx.queries,
                            outcomes.reset_index(drop=True), spacing, final, complete)


def _refine(start: _Point, evaluate: Any, spacing: float, levels: int,
            rng: np.random.Generator) -> tuple[_Point, float]:
    """Poll around the best point: at step h, the directions of a freshly rotated stencil
    (:func:`_directions`); move to a better poll point and poll again, else rotate and
    retry (:data:`TRIES` times), then halve h — ``levels`` times. Rotating the
    directions follows curved boundaries (a link that just breaks) that a fixed
    stencil stalls on."""
    space = start.space
    unit = space.unit()
    best, h = start, spacing
    for _ in range(levels):
        tries = moves = 0
        while tries < TRIES and moves < MAX_MOVES:
            centre = best.z
            for step in _directions(space.dim, rng):
                p = evaluate(space, centre + h * step * unit)
                if p.score > best.score:
                    best = p
            if best.z is centre:
                tries += 1
            else:
                moves += 1
        h /= 2.0
    return best, h
