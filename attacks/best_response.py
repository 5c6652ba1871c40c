"""Adaptive best response: an ensemble search that is never weaker than its parts."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any, ClassVar

import numpy as np

from pluralguard.core.errors import InputError
from pluralguard.core.mechanism import Outcome
from pluralguard.core.message_passing import MessageHook
from pluralguard.core.model import Population
from pluralguard.core.params import Constraint, Names, OrNone

from .base import Attack
from .context import AttackContext, QueryBudgetExhausted
from .goals import GOAL_SPECS, GOALS
from .overshoot import Overshoot
from .plan import AttackPlan
from .registry import ATTACKS, recipe_names
from .space import LOG2_BOUNDS, DeclarationSpace
from .threat import ThreatModel

#: Default query budget: the smallest that reached ≥ 0.99 of the exhaustive optimum on
#: average (≥ 0.95 in every case) over tests/test_brute_force.py's populations, in both
#: knowledge modes (see benchmarks/brute_force.py).
DEFAULT_QUERIES = 300
#: Coordinates above which the local search moves the coalition together (one shared
#: offset per kind of identity) instead of every identity on its own.
MAX_SEARCH_DIM = 48
#: Value-system coordinates up to which every axis move is a structural candidate.
AXIS_MOVES_DIM = 12
#: Clean groups whose agreements the structural layer aims at (nearest first).
GROUPS_AIMED = 12
#: Local search: starts at least this far apart (in radii) unless their outcomes differ.
START_SPACING = 0.3
#: Local search: first step (share of the block's radius) and halvings to the last.
FIRST_STEP, HALVINGS = 0.25, 10


@dataclass
class _Candidate:
    """One evaluated attack: its measure, where it came from, how to rebuild it."""

    score: float
    main: float
    tie: float
    source: str
    declared: Population
    sybils: int
    hook: MessageHook | None
    labels: bytes
    outcome: Outcome
    info: dict[str, Any] = field(default_factory=dict)


class _Search:
    """Evaluations of one best-response search, sharing the context's query ledger."""

    def __init__(self, ctx: AttackContext, budget: float) -> None:
        self.ctx = ctx
        self.budget = budget
        self.spec = GOAL_SPECS[ctx.threat.goal.kind]
        self.found: list[_Candidate] = []
        self.by_key: dict[str, _Candidate] = {}
        self.spaces: dict[int, DeclarationSpace] = {}

    def space(self, sybils: int) -> DeclarationSpace:
        if sybils not in self.spaces:
            self.spaces[sybils] = DeclarationSpace(self.ctx, self.budget, sybils)
        return self.spaces[sybils]

    @property
    def best(self) -> _Candidate:
        return max(self.found, key=lambda c: c.score)

    def evaluate(self, declared: Population, source: str, *, sybils: int = 0,
                 hook: MessageHook | None = None, info: dict[str, Any] | None = None
                 ) -> _Candidate:
        """Measure declarations (one counted query unless already seen)."""
        key = declared.fingerprint()
        if hook is None and key in self.by_key:
            return self.by_key[key]
        main, tie, out = self.ctx.evaluate(declared, hook)
        cand = _Candidate(self.spec.score(main, tie), main, tie, source, declared, sybils,
                          hook, np.asarray(out.labels).tobytes(), out, info or {})
        self.found.append(cand)
        if hook is None:
            self.by_key[key] = cand
        return cand

    def at(self, space: DeclarationSpace, z: np.ndarray, source: str) -> _Candidate:
        return self.evaluate(space.declare(z), source, sybils=space.sybils)


@dataclass(frozen=True)
class BestResponse(Attack):
    """The best answer to the (defended) mechanism that a search within budget finds.

    Idea: a defense is only as good as its worst case against an adaptive attacker
    who knows it (Tramèr, Carlini, Brendel & Madry, *On adaptive attacks to adversarial
    example defenses*, NeurIPS 2020), and a single search underestimates that worst
    case where an ensemble of complementary ones does not (Croce & Hein, *Reliable
    evaluation of adversarial robustness with an ensemble of diverse parameter-free
    attacks* — AutoAttack —, ICML 2020). This recipe maximises the goal's own measure
    (:mod:`~.goals`) over the attackers' declaration space
    (:class:`~.space.DeclarationSpace`: every attacker's value system within its
    budget, declared bounds where the mechanism reads them, Sybils' value systems)
    with an ensemble whose answer is the best of its parts:

    0. **truth** — telling the truth (measure 0) is always a candidate, so the reported
       gain is never below zero; when nothing beats it the plan declares the truth and
       ``info["profitable"]`` is False ("no profitable misreport found");
    1. **closed form** — under the ℓ2 single consensus without transforms, one
       white-box attacker's selfish or capture optimum is ``overshoot``'s projection
       (exact), and the search stops there;
    2. **seeds** — every applicable fixed recipe with the same threat model (same
       attackers and targets); in black-box mode those needing white-box knowledge are
       skipped (``info["skipped"]`` says why);
    3. **structure** — the discrete outcomes the budget can reach, read off the clean
       outcome alone (so in both knowledge modes): join each group by heading for its
       agreement (every group's agreement lies in all its members' acceptable sets),
       head for the goal's point, move along each coordinate axis (leaving or switching
       group through one judgement), stubborn and open bounds;
    4. **random restarts** — seeded points of the whole budget ball (all k·m + m − 1
       coordinates per attacker, half of them on its sphere) and of the Sybils' space;
    5. **local search** — a mesh-adaptive direct search (:func:`_direct_search`;
       first step :data:`FIRST_STEP` of the radius, down to 2^−:data:`HALVINGS` of it)
       from the best candidates of the three best distinct outcomes, over every
       coordinate (or, for large coalitions, one shared offset per kind of identity).

    Every phase stops when the query budget — counted in *distinct* mechanism calls;
    repeated declarations are free — is spent; phases 3–5 share it as 20 % / 25 % /
    the rest.

    Parameters
    ----------
    recipes : tuple of str, optional
        Fixed recipes to seed with; default every registered recipe.

    Budget
    ------
    ε on δ(v̂_a, v_a) per attacker (``inf`` = anywhere valid), passed to the seeds
    too. Default 0.1; curve (0.02, 0.05, 0.1, 0.2, 0.4). The query budget is the
    threat model's ``queries`` (default :data:`DEFAULT_QUERIES`, black-box).

    Goal
    ----
    Any. ``info`` holds every seed's measure (and why skipped ones do not apply), the
    winning source, the best measure of each phase, and whether any misreport beat
    the truth.
    """

    name = "best_response"
    summary = "ensemble search (truth, recipes, outcomes, restarts, pattern search)"
    goals = GOALS
    min_queries = 2
    default_budgets = (0.02, 0.05, 0.1, 0.2, 0.4)

    threat: ThreatModel = field(default_factory=partial(
        ThreatModel, knowledge="black", queries=DEFAULT_QUERIES))
    recipes: tuple[str, ...] | None = None

    PARAMS: ClassVar[dict[str, Constraint]] = {
        "recipes": OrNone(Names(recipe_names, kind="attack recipe"))}

    # -------------------------------------------------------------- planning
    def _plan(self, ctx: AttackContext, budget: float) -> AttackPlan:
        if ctx.ledger.limit is None:  # white-box: the search still stops at its budget
            ctx.ledger.limit = ctx.threat.queries
        search = _Search(ctx, budget)
        seeds: dict[str, float] = {}
        skipped: dict[str, str] = {}
        phases: dict[str, float] = {}
        closed = self._closed_form(ctx)
        search.evaluate(ctx.truth, "truth")
        try:
            if closed:
                plan = Overshoot(threat=ctx.threat)._plan(ctx, budget)
                search.evaluate(plan.declared, "closed_form", info=plan.info)
            else:
                for name, plan in self._seed_plans(ctx, budget, skipped):
                    cand = search.evaluate(plan.declared, name, sybils=plan.sybils.size,
                                           hook=plan.hook, info=plan.info)
                    # as the recipe runs on its own: the truth when it does worse
                    seeds[name] = max(cand.main, search.found[0].main)
                total = ctx.ledger.left
                for phase, share, run in (("structure", 0.2, self._structure),
                                          ("restarts", 0.25, self._restarts),
                                          ("local", 1.0, self._local)):
                    stop = ctx.ledger.count + max(1, int(share * total))
                    run(search, min(stop, ctx.ledger.limit))
                    phases[phase] = max((c.main for c in search.found if c.source == phase),
                                        default=math.nan)
        except QueryBudgetExhausted:
            pass  # keep the best found within the budget
        best = search.best
        truth = search.found[0]
        info = {"source": best.source, "score": best.main, "tie": best.tie,
                "profitable": best.score > truth.score, "seeds": seeds,
                "skipped": skipped, "closed_form": closed, "phases": phases,
                "evaluations": len(search.found), "candidate": best.info}
        plan = ctx.plan(best.declared, sybils=best.sybils, hook=best.hook, info=info)
        return replace(plan, outcome=best.outcome, goal_value=best.main)

    @staticmethod
    def _closed_form(ctx: AttackContext) -> bool:
        """Whether the ℓ2 consensus shortcut is exact here (one attacker, white-box)."""
        p = ctx.mechanism.params.get("p", 2)
        return (ctx.mechanism.kind == "consensus" and not ctx.mechanism.transforms
                and ctx.threat.knowledge == "white" and ctx.attackers.size == 1
                and ctx.threat.sybils == 0
                and ctx.threat.goal.kind in ("selfish", "capture") and float(p) == 2.0)

    def _seed_plans(self, ctx: AttackContext, budget: float, skipped: dict[str, str]
                    ) -> Iterator[tuple[str, AttackPlan]]:
        """Plans of the applicable fixed recipes (inapplicable ones go to ``skipped``)."""
        for name in self.recipes or tuple(ATTACKS):
            if name == self.name:
                continue
            if name not in ATTACKS:
                raise InputError("recipes", f"unknown attack {name!r}",
                                 f"use names from {', '.join(ATTACKS)}")
            recipe = ATTACKS[name](threat=ctx.threat)
            try:
                recipe.check(ctx.truth, ctx.mechanism)
            except InputError as err:
                skipped[name] = f"{err.field}: {err.problem}"
                continue
            sub = AttackContext(ctx.truth, ctx.mechanism, ctx.threat, ctx.seed, ctx.ledger)
            yield name, recipe._plan(sub, budget)

    # -------------------------------------------------------------- phases
    def _structure(self, search: _Search, stop: int) -> None:
        """Candidates read off the clean outcome: join, aim, axis moves, bounds."""
        ctx = search.ctx
        space = search.space(ctx.threat.sybils)
        clean = ctx.clean
        aims = [(clean.X[g], clean.W[g]) for g in _nearest_groups(ctx)]
        aims.append(_aim_point(ctx))
        points = [space.toward(X, W, f) for X, W in aims for f in (1.0, 0.5)]
        if space.n_value <= AXIS_MOVES_DIM:
            eye = np.eye(space.n_value)
            points += [space.along(s * e) for e in eye for s in (1.0, -1.0)]
        if space.with_bounds:
            for beta in LOG2_BOUNDS:
                z = np.zeros(space.dim)
                for b in space.blocks:
                    z[space.bound_slice(b)] = beta
                points.append(z)
        for z in points:
            if ctx.ledger.count >= stop:
                return
            search.at(space, z, "structure")

    def _restarts(self, search: _Search, stop: int) -> None:
        """Seeded random points of the whole declaration space."""
        ctx = search.ctx
        space = search.space(ctx.threat.sybils)
        rng = np.random.default_rng([ctx.seed, 7])
        count = max(1, stop - ctx.ledger.count)
        for z in space.random(rng, count):
            if ctx.ledger.count >= stop:
                return
            search.at(space, z, "restarts")

    def _local(self, search: _Search, stop: int) -> None:
        """Direct search from the three best candidates that are apart: in another
        outcome, or at least :data:`START_SPACING` (in units of the radius) away."""
        ctx = search.ctx
        starts: list[tuple[DeclarationSpace, np.ndarray, bytes]] = []
        for cand in sorted(search.found, key=lambda c: -c.score):
            if cand.hook is not None or cand.sybils > ctx.threat.sybils:
                continue
            space = search.space(cand.sybils)
            z = space.coordinates(cand.declared)
            if z is None or space.dim == 0:
                continue
            if any(s is space and labels == cand.labels
                   and np.linalg.norm((z - z0) / space.unit()) < START_SPACING
                   for s, z0, labels in starts):
                continue
            starts.append((space, z, cand.labels))
            if len(starts) == 3:
                break
        rng = np.random.default_rng([ctx.seed, 11])
        for r, (space, z, _) in enumerate(starts):
            left = stop - ctx.ledger.count
            share = left if r == len(starts) - 1 else int(left * (0.7 if r == 0 else 0.6))
            _direct_search(search, space, z, ctx.ledger.count + max(share, 1), rng)


def _nearest_groups(ctx: AttackContext) -> list[int]:
    """Clean groups by distance of their agreement to the attackers' mean truth."""
    from pluralguard.core.geometry import normalised_distance

    clean = ctx.clean
    A = ctx.attackers
    X, W = ctx.truth.X[A].mean(axis=0), ctx.truth.W[A].mean(axis=0)
    d = normalised_distance(clean.X, clean.W, X, W)
    return [int(g) for g in np.argsort(d, kind="stable")[:GROUPS_AIMED]]


def _aim_point(ctx: AttackContext) -> tuple[np.ndarray, np.ndarray]:
    """Where the goal pulls: the target point (capture, selfish), the reflection of the
    victims' or members' mean through the group's agreement (exclude, split), the
    midpoint of two agreements (merge), the population mean (fragment, consolidate)."""
    t = ctx.targets()
    clean = ctx.clean
    kind = ctx.threat.goal.kind
    if kind in ("exclude", "split") and t.target_group is not None and t.target_group.size:
        g = t.target_majority
        who = t.victims if kind == "exclude" and t.victims is not None else t.target_group
        return (2 * clean.X[g] - ctx.truth.X[who].mean(axis=0),
                2 * clean.W[g] - ctx.truth.W[who].mean(axis=0))
    if kind == "merge" and t.merge_groups is not None and all(g.size for g in t.merge_groups):
        a, b = (int(np.bincount(clean.labels[g]).argmax()) for g in t.merge_groups)
        return 0.5 * (clean.X[a] + clean.X[b]), 0.5 * (clean.W[a] + clean.W[b])
    if kind in ("fragment", "consolidate"):
        return ctx.truth.X.mean(axis=0), ctx.truth.W.mean(axis=0)
    return ctx.target_point()


def _shared(space: DeclarationSpace) -> np.ndarray:
    """Expansion E (dim × d) of the local search's coordinates: the identity, or — for
    more than :data:`MAX_SEARCH_DIM` coordinates — one offset shared by all attackers
    and one shared by all Sybils."""
    if space.dim <= MAX_SEARCH_DIM:
        return np.eye(space.dim)
    kinds = sorted({b.kind for b in space.blocks})
    E = np.zeros((space.dim, space.width * len(kinds)))
    for b in space.blocks:
        col = kinds.index(b.kind) * space.width
        E[b.start:b.start + space.width, col:col + space.width] = np.eye(space.width)
    return E


def _direct_search(search: _Search, space: DeclarationSpace, z0: np.ndarray, stop: int,
                   rng: np.random.Generator) -> None:
    """Mesh-adaptive direct search in the offsets u of z = z0 + E u (see :func:`_shared`).

    Each iteration polls ±h along the columns of a fresh random orthonormal basis (the
    OrthoMADS polling of Abramson, Audet, Dennis & Le Digabel, SIAM J. Optim. 2009),
    scaled per coordinate by its natural unit; the first improving poll is taken and h
    doubles, else h halves. Rotating the directions lets the search follow the curved
    boundaries where an attack's gain jumps (a link that just breaks, a group that just
    admits the attacker), where fixed coordinate moves stall.
    """
    ctx = search.ctx
    E = _shared(space)
    d = E.shape[1]
    scale = np.abs(E.T) @ space.unit() / np.maximum(np.abs(E).sum(axis=0), 1.0)
    z = space.clamp(z0)
    best = search.at(space, z, "local")
    h, smallest = FIRST_STEP, FIRST_STEP * 2.0 ** -HALVINGS
    last: np.ndarray | None = None  # the last successful direction is polled first
    while h >= smallest:
        basis, _ = np.linalg.qr(rng.standard_normal((d, d)))
        polls = np.concatenate([basis.T, -basis.T])
        if last is not None:
            polls = np.concatenate([last[None], polls])
        moved = False
        for direction in polls:
            if ctx.ledger.count >= stop:
                return
            trial = space.clamp(z + E @ (h * direction * scale))
            cand = search.at(space, trial, "local")
            if cand.score > best.score:
                best, z, moved, last = cand, trial, True, direction
                break
        if not moved:
            h, last = h / 2.0, None
