"""One scenario: a population, a mechanism, an attack, a defense, a budget and a seed.

:func:`run_scenario` performs, each at most once (clean runs are cached by content):

1. *clean, undefended* — the mechanism on the truth;
2. *clean, defended* — the defended mechanism on the truth (the defense's cost);
3. *attacked, defended* — the attack plans against the defended mechanism, which
   then runs on the attack's declarations;
4. *attacked, undefended* — only when asked (``undefended=True``), to see what the
   defense saves.

and returns one row of metrics (:mod:`~pluralguard.eval.metrics`) plus, on request,
per-agent detail. Everything is seeded: the same arguments give the same row.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from pluralguard.attacks import (
    GOAL_SPECS,
    Attack,
    AttackPlan,
    exhaustive_search,
    is_small,
    make_attack,
    strongest,
)
from pluralguard.core.draws import Draws
from pluralguard.core.errors import InputError
from pluralguard.core.geometry import UTILITIES
from pluralguard.core.mechanism import Mechanism, Outcome
from pluralguard.core.model import Population
from pluralguard.core.params import (
    Boolean,
    Each,
    Instance,
    Integer,
    Options,
    OrNone,
    Real,
    validate_params,
)
from pluralguard.defenses import Defense, DefenseChain, make_defense

from . import metrics as M
from .certify import certificate_columns
from .run_cache import DEFAULT_CACHE, RunCache, cached
from .sources import load_source

#: Independent draws of a randomized defense the scenario is evaluated over.
DRAWS = 8
#: Draws of it the attacker plans against (others than the evaluation's).
PLAN_DRAWS = 4
#: Metrics whose spread over draws a randomized scenario reports.
SPREAD = ("utility_loss_mean", "utility_loss_p90", "attacker_gain", "capture",
          "goal_measure")


@dataclass(frozen=True)
class ScenarioResult:
    """Outcome of :func:`run_scenario`.

    Attributes
    ----------
    row : dict
        The metrics row (column names as in ``results.csv``).
    timing : dict
        Wall-clock seconds per phase (kept out of ``row`` so rows are reproducible).
    agents : pandas.DataFrame or None
        Per-agent detail (when ``detail=True``).
    clean, attacked : Outcome
        Clean-defended and attacked-defended outcomes.
    plan : AttackPlan or None
    """

    row: dict[str, Any]
    timing: dict[str, float]
    clean: Outcome
    attacked: Outcome
    plan: AttackPlan | None
    agents: pd.DataFrame | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def make_mechanism(spec: Mechanism | str | Mapping[str, Any]) -> Mechanism:
    """A mechanism from an object, a kind name, or a mapping ``{kind: ..., **params}``."""
    if isinstance(spec, Mechanism):
        return spec
    if isinstance(spec, str):
        return Mechanism(spec)
    params = dict(spec)
    kind = params.pop("kind", None)
    params.pop("name", None)
    if kind is None:
        raise InputError("mechanism.kind", "missing", "give kind = 'agreements' or "
                         "'consensus'")
    return Mechanism(kind, params)


def make_chain(defense: Defense | DefenseChain | str | Mapping[str, Any] | None
               ) -> DefenseChain:
    """A defense chain from an object, ``"a+b"`` names, or ``{name: ..., **params}``."""
    if defense is None or defense == "none":
        return DefenseChain()
    if isinstance(defense, DefenseChain):
        return defense
    if isinstance(defense, Defense):
        return DefenseChain((defense,))
    if isinstance(defense, str):
        return DefenseChain(tuple(make_defense(n.strip()) for n in defense.split("+")))
    params = dict(defense)
    name = params.pop("name", None)
    if name is None:
        raise InputError("defense.name", "missing", "give the defense's name")
    return DefenseChain((make_defense(name, **params),))


def _population(population: Population | str) -> Population:
    if isinstance(population, Population):
        return population
    return load_source(dataset=population)


def _attack(attack: Attack | str | Mapping[str, Any] | None) -> Attack | None:
    if attack is None or isinstance(attack, Attack):
        return attack
    if isinstance(attack, str):
        return None if attack == "none" else make_attack(attack)
    params = dict(attack)
    name = params.pop("name", None)
    if name is None:
        raise InputError("attack.name", "missing", "give the attack's name")
    return make_attack(name, **params)


def _name_or(obj: Any, fallback: str) -> str:
    """The registry name of a recipe or defense, ``fallback`` for None."""
    return getattr(obj, "name", None) or fallback


def _draw_seed(seed: int, role: str, index: int) -> int:
    """Seed of draw ``index`` of a randomized defense, for the evaluation or the
    attacker's planning (disjoint streams: the attacker never sees the evaluation's
    draws)."""
    stream = {"evaluation": 0, "planning": 1}[role]
    return int(np.random.SeedSequence([int(seed), stream, index]).generate_state(1)[0])


def _strongest_plan(recipe: Attack, truth: Population, facing: Mechanism, budget: float,
                    budget_path: Sequence[float], seed: int, cache: RunCache, against: str
                    ) -> tuple[AttackPlan, float, int]:
    """The attack at ``budget``: the :func:`~pluralguard.attacks.strongest` of its plans
    at ``budget`` and at the budgets of ``budget_path`` below it (an attacker may spend
    less than allowed), the budget that plan was made at, and the queries all of them
    made. ``against`` names what ``facing`` is, for the cache key (:meth:`RunCache.plan`)."""
    budgets = [*sorted({float(b) for b in budget_path if b < budget}), float(budget)]
    plans = [cache.plan(recipe, truth, against, seed, b,
                        lambda b=b: recipe.plan(truth, facing, b, seed)) for b in budgets]
    best = strongest(plans)
    return plans[best], budgets[best], sum(int(p.queries) for p in plans)


def _metrics(truth: Population, clean_u: Outcome, clean_d: Outcome, attacked: Outcome,
             plan: AttackPlan | None, kind: str) -> dict[str, float]:
    """The metrics of one attacked outcome against the clean (defended) one."""
    n = truth.n
    attackers = plan.attackers if plan else np.zeros(0, dtype=int)
    sybils = plan.sybils if plan else np.zeros(0, dtype=int)
    honest = np.setdiff1d(np.arange(n), attackers)
    all_agents = np.arange(n)
    u_clean = M.true_utilities(truth, clean_d, honest, kind)
    u_att = M.true_utilities(truth, attacked, honest, kind)
    row: dict[str, float] = {}
    row |= M.summary(u_att, "honest_utility", ("mean", "p10", "min"))
    row |= M.summary(u_clean - u_att, "utility_loss", ("mean", "p90", "max"))
    if attackers.size:
        gain = (M.true_utilities(truth, attacked, attackers, kind)
                - M.true_utilities(truth, clean_d, attackers, kind))
        row["attacker_gain"] = float(gain.mean())
    else:
        row["attacker_gain"] = float("nan")
    clean_labels, att_labels = clean_d.labels[:n], attacked.labels
    target = plan.target_group if plan is not None else None
    if target is not None and target.size and plan.target_point is not None:
        g = np.bincount(clean_labels[target]).argmax()
        row["capture"] = M.capture(clean_d.X[g], clean_d.W[g], attacked, target,
                                   plan.target_point)
    else:
        row["capture"] = float("nan")
    intruders = np.concatenate([attackers, sybils])
    row["join_success"] = (M.join_success(att_labels, target, intruders)
                           if target is not None else float("nan"))
    victims = plan.victims if plan is not None and plan.victims is not None else None
    row["exclusion_rate"] = (M.exclusion_rate(clean_d, attacked, victims, honest)
                             if victims is not None else float("nan"))
    row["partition_change"] = M.partition_change(clean_labels[honest], att_labels[honest])
    row["comembership_flips"] = M.comembership_flips(clean_labels[honest], att_labels[honest])
    row["n_groups_clean"] = M.n_groups(clean_labels[honest])
    row["n_groups_attacked"] = M.n_groups(att_labels[honest])
    row["delta_groups"] = row["n_groups_attacked"] - row["n_groups_clean"]
    row["defense_cost"] = float(np.mean(M.true_utilities(truth, clean_u, all_agents, kind)
                                        - M.true_utilities(truth, clean_d, all_agents, kind)))
    # utilities cannot see fragmentation (an agent left alone scores 1): report the
    # partition the defense changes with no attack too
    row["defense_partition_change"] = M.partition_change(clean_u.labels[:n],
                                                         clean_d.labels[:n])
    spec = GOAL_SPECS[plan.goal.kind] if plan is not None else None
    if spec is not None and not np.isnan(row.get(spec.column, 0.0)):
        main, _ = plan.measure(truth, clean_d, attacked, kind)
        row["goal_measure"] = main
        row["attack_success"] = float(spec.success(main))
    else:  # no attack, or its goal is undefined here (e.g. no target to capture)
        row["goal_measure"] = row["attack_success"] = float("nan")
    row["truth_fallback"] = (float(plan.info.get("fallback") == "truth") if plan
                             else float("nan"))
    row["solver_iterations"] = int(attacked.n_iter)
    row["converged"] = int(bool(clean_u.converged and clean_d.converged
                                and attacked.converged))
    return row


def _over_draws(rows: list[dict[str, float]]) -> dict[str, float]:
    """One row from the rows of several draws: means (``converged`` the minimum,
    ``solver_iterations`` the maximum), and, with several draws, ``draws`` and the
    standard deviation over draws of :data:`SPREAD` (``<metric>_draw_sd``)."""
    if len(rows) == 1:
        return rows[0]
    table = pd.DataFrame(rows)
    out: dict[str, float] = {}
    for column in table.columns:
        values = table[column].astype(float)
        if column == "converged":
            out[column] = int(values.min())
        elif column == "solver_iterations":
            out[column] = int(values.max())
        else:
            out[column] = float(values.mean()) if values.notna().any() else float("nan")
    out["draws"] = len(rows)
    for column in SPREAD:
        values = table[column].astype(float)
        out[f"{column}_draw_sd"] = (float(values.std(ddof=0)) if values.notna().any()
                                    else float("nan"))
    return out


@validate_params({
    "population": Instance((Population, str), "a Population or a dataset name", "'evs2017'"),
    "mechanism": Instance((Mechanism, str, Mapping), "a Mechanism, a mechanism kind or "
                          "{'kind': ..., **params}", "'consensus'"),
    "attack": OrNone(Instance((Attack, str, Mapping), "an Attack, a recipe name or "
                              "{'name': ..., **params}", "'sybil'")),
    "defense": OrNone(Instance((Defense, DefenseChain, str, Mapping), "a Defense, a "
                               "DefenseChain, names 'a+b' or {'name': ..., **params}",
                               "'sybil_cap'")),
    "budget": Real(0, inf=True, sample=0.1),
    "seed": Integer(0),
    "undefended": Boolean(),
    "detail": Boolean(),
    "utility": OrNone(Options(UTILITIES)),
    "cache": OrNone(Instance((RunCache,), "a RunCache", "RunCache()")),
    "labels": OrNone(Instance((Mapping,), "a mapping of column → label",
                              "{'dataset': 'mine'}")),
    "draws": OrNone(Integer(1, sample=8)),
    "exhaustive": OrNone(Boolean()),
    "budget_path": Each(Real(0, inf=True, sample=0.05)),
})
def run_scenario(population: Population | str, mechanism: Mechanism | str | Mapping,
                 attack: Attack | str | Mapping | None = None,
                 defense: Defense | DefenseChain | str | Mapping | None = None,
                 budget: float = 0.1, seed: int = 0, *, undefended: bool = False,
                 detail: bool = False, utility: str | None = None,
                 cache: RunCache | None = None,
                 labels: Mapping[str, str] | None = None,
                 draws: int | None = None, exhaustive: bool | None = None,
                 budget_path: Sequence[float] = ()) -> ScenarioResult:
    """Run one scenario and measure it (module doc).

    Parameters
    ----------
    population : Population or str
        The TRUE value systems and bounds (or a dataset name).
    mechanism : Mechanism, str or mapping
        E.g. ``{"kind": "agreements", "bounds": "quantile:0.5"}``.
    attack : Attack, str, mapping or None
        A recipe (object, name, or ``{"name": ..., **params}``); None for no attack.
    defense : Defense, DefenseChain, str, mapping or None
        E.g. ``"bound_floor"`` or ``"bound_floor+sybil_cap"``.
    budget : float
        The attack's budget (ε on δ(declared, true) per attacker, see each recipe).
    seed : int
        Seeds the attack (who attacks, random choices).
    undefended : bool
        Also run the attack against the undefended mechanism (``*_undefended`` columns).
    detail : bool
        Return per-agent detail.
    utility : str, optional
        Utility kind of the metrics; default the mechanism's.
    cache : RunCache, optional
        Cache for hook-free runs (a process-wide one by default).
    labels : mapping, optional
        Display names for ``dataset``, ``mechanism``, ``attack``, ``defense`` columns.
    draws : int, optional
        Independent draws of a randomized defense's randomness the scenario is
        evaluated over (default :data:`DRAWS`; ignored without a randomized defense).
        The attack plans against :data:`PLAN_DRAWS` other draws
        (:class:`~pluralguard.core.draws.Draws`), the metrics are means over the
        evaluation's draws, with ``draws`` and ``<metric>_draw_sd`` columns.
    exhaustive : bool, optional
        Also compute the exhaustive optimum of the attack's goal
        (:func:`~pluralguard.attacks.exhaustive_search`; column
        ``exhaustive_optimum``). Default: when the population is small enough
        (:func:`~pluralguard.attacks.is_small`).
    budget_path : sequence of float
        The other budgets of the attack's security curve (a suite passes the attack's
        ``budgets``). An attacker allowed ``budget`` may spend any smaller one, so the
        attack also plans at those below ``budget`` and keeps the strongest plan
        (:func:`~pluralguard.attacks.strongest`): the curve is monotone by
        construction. Columns ``plan_budget`` (the budget the kept plan was made at)
        and ``queries`` (summed over the budgets planned at). The plans are cached in
        ``cache``, so a curve run in ascending budgets plans each budget once.

    Returns
    -------
    ScenarioResult

    Raises
    ------
    InputError
        A parameter outside its declared constraint (:mod:`pluralguard.core.params`),
        naming it, before anything runs.
    """
    cache = cache or DEFAULT_CACHE
    truth = _population(population)
    mech = make_mechanism(mechanism)
    chain = make_chain(defense)
    recipe = _attack(attack)
    kind = utility or mech.params.get("utility", "quadratic")
    n = truth.n
    timing: dict[str, float] = {}

    t0 = time.perf_counter()
    clean_u = cache.run(mech, truth)
    randomized = chain.randomized
    n_draws = (draws or DRAWS) if randomized else 1
    evaluation = [chain.redraw(_draw_seed(seed, "evaluation", e)) if randomized else chain
                  for e in range(n_draws)]
    defended = [c(mech) for c in evaluation]
    clean_d = [cache.run(d, truth) if chain else clean_u for d in defended]
    timing["clean"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    if randomized:  # the attacker knows the distribution, not the draws of the evaluation
        facing: Mechanism = Draws.of([
            chain.redraw(_draw_seed(seed, "planning", p))(mech) for p in range(PLAN_DRAWS)])
    else:
        facing = cached(defended[0], cache)
    plan, plan_budget, queries = (_strongest_plan(
        recipe, truth, facing, budget, budget_path, seed, cache,
        f"{defended[0].key}\x00{chain!r}\x00{randomized}") if recipe else (None, budget, 0))
    timing["plan"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    if plan is None:
        attacked = clean_d
    elif plan.outcome is not None and not randomized:  # measured while planning
        attacked = [plan.outcome]
    else:
        attacked = [cache.run(d, plan.declared, plan.hook) for d in defended]
    timing["attacked"] = time.perf_counter() - t0

    attackers = plan.attackers if plan else np.zeros(0, dtype=int)
    sybils = plan.sybils if plan else np.zeros(0, dtype=int)
    row: dict[str, Any] = {
        "dataset": (labels or {}).get("dataset", truth.name),
        "mechanism": (labels or {}).get("mechanism", mech.key),
        "attack": (labels or {}).get("attack", _name_or(recipe, "none")),
        "budget": float(budget),
        "defense": (labels or {}).get("defense", chain.name),
        "seed": int(seed),
        "goal": plan.goal.kind if plan else "none",
        "recipe": _name_or(recipe, "none") if recipe is None else recipe.name,
        "knowledge": recipe.threat.knowledge if recipe else "",
        "n_agents": n,
        "n_attackers": int(attackers.size),
        "n_sybils": int(sybils.size),
    }
    per_draw = [_metrics(truth, clean_u, c, a, plan, kind)
                for c, a in zip(clean_d, attacked, strict=True)]
    row |= _over_draws(per_draw)
    row["queries"] = queries
    row["plan_budget"] = float(plan_budget)
    if plan is not None and (exhaustive if exhaustive is not None else
                             is_small(truth, facing, recipe.threat, seed)):
        t0 = time.perf_counter()
        reference = exhaustive_search(truth, facing, recipe.threat, budget, seed)
        row["exhaustive_optimum"] = reference.value
        timing["exhaustive"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    row |= certificate_columns(truth, mech, evaluation, clean_d, plan,
                               recipe.threat if recipe else None, budget, kind, row)
    timing["certify"] = time.perf_counter() - t0
    clean_d, attacked = clean_d[0], attacked[0]
    all_agents = np.arange(n)
    clean_labels, att_labels = clean_d.labels[:n], attacked.labels

    extra: dict[str, Any] = {}
    if undefended and recipe is not None:
        t0 = time.perf_counter()
        plan_u = _strongest_plan(recipe, truth, mech, budget, budget_path, seed, cache,
                                 f"{mech.key}\x00undefended")[0]
        att_u = (plan_u.outcome if plan_u.outcome is not None
                 else cache.run(mech, plan_u.declared, plan_u.hook))
        hon_u = np.setdiff1d(np.arange(n), plan_u.attackers)
        loss_u = (M.true_utilities(truth, clean_u, hon_u, kind)
                  - M.true_utilities(truth, att_u, hon_u, kind))
        row |= {f"{k}_undefended": v for k, v in
                M.summary(loss_u, "utility_loss", ("mean", "p90", "max")).items()}
        extra["attacked_undefended"] = att_u
        timing["undefended"] = time.perf_counter() - t0

    agents = None
    if detail:
        u_clean_all = M.true_utilities(truth, clean_d, all_agents, kind)
        u_att_all = M.true_utilities(truth, attacked, all_agents, kind)
        role = np.full(n, "honest", dtype=object)
        role[attackers] = "attacker"
        agents = pd.DataFrame({
            "agent": list(truth.agents), "role": role, "clean_group": clean_labels,
            "attacked_group": att_labels[:n], "utility_clean": u_clean_all,
            "utility_attacked": u_att_all, "utility_loss": u_clean_all - u_att_all})
    return ScenarioResult(row=row, timing=timing, clean=clean_d, attacked=attacked, plan=plan,
                          agents=agents, extra=extra)
