"""Aggregates of a results table: worst cases, security-curve envelopes, defense rankings.

The numbers the report (:mod:`~pluralguard.eval.report`) and the case studies
(:mod:`~pluralguard.eval.casestudy`) state, computed once:

* :func:`worst_case` — the worst-case loss of attack a against defense d: the maximum
  over budgets and seeds of ``loss`` (default ``utility_loss_p90``: the loss that the
  worst-off 10 % of honest agents meet or exceed; ``utility_loss_max``, a single agent's
  loss, is dominated by agents that switch groups);
* :func:`rank_defenses` — a defense's worst case over attacks is the maximum of that
  over attacks; defenses are ranked by it, ascending — the min–max (equivalently
  max–min honest utility) selection of ByzFL (González et al., *ByzFL: research
  framework for robust federated learning*, 2025). A defense *never helps* when its
  worst case is not lower than the undefended one for any attack it is designed
  against (``Defense.targets``, recorded in ``summary.json``) that ran both with it and
  undefended and did harm undefended; a defense without such a target is *not judged*,
  and one whose every run equals the undefended one has *no effect* (:func:`no_effect`);
* :func:`envelope` and :func:`curve_table` — security curves as the running maximum
  over smaller budgets (an attacker may always spend less);
* :func:`attack_summary` — key aggregates per attack × defense;
* :func:`certified_worst_case` and :func:`rank_defenses_certified` — the same worst
  case and ranking for the proved bounds (``certified_<metric>``,
  :mod:`~pluralguard.eval.certify`) next to the found ones.

Every function takes the table :func:`~pluralguard.eval.results.load_results` returns
and returns a new one; nothing here reads files or draws.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from pluralguard.core.params import Instance, Options, OrNone, validate_params

from .columns import NONE, recipe_of
from .markdown import budget_text

#: Default worst-case metric.
LOSS = "utility_loss_p90"
#: Metrics a worst case may be taken over.
LOSSES = ("utility_loss_p90", "utility_loss_max", "utility_loss_mean")
#: Absolute tolerance of every comparison (gains, losses, "helps").
TOL = 1e-9

_SCOPE = ["dataset", "mechanism"]
_RESULTS = Instance((pd.DataFrame,), "a results table (load_results)", "load_results(DIR)")


def defense_order(names: Sequence[str]) -> list[str]:
    """Defense names sorted, ``"none"`` first."""
    unique = sorted(set(names))
    return [NONE, *[n for n in unique if n != NONE]] if NONE in unique else unique



@validate_params({"results": _RESULTS, "loss": Options(LOSSES)})
def worst_case(results: pd.DataFrame, loss: str = LOSS) -> pd.DataFrame:
    """Worst-case loss of every attack against every defense.

    Parameters
    ----------
    results : DataFrame
        :func:`load_results`.
    loss : str
        One of :data:`LOSSES`.

    Returns
    -------
    DataFrame
        Columns ``dataset, mechanism, attack, defense, worst_case_loss`` (max over
        budgets — infinite ones included — and seeds), attacked runs only, sorted.
    """
    attacked = results[results["attack"] != NONE]
    return (attacked.groupby([*_SCOPE, "attack", "defense"], sort=True)[loss].max()
            .rename("worst_case_loss").reset_index())


def clean_cost(results: pd.DataFrame) -> pd.DataFrame:
    """Mean ``defense_cost`` per dataset × mechanism × defense.

    Taken over the no-attack rows where there are any (it is a per-defense quantity,
    so any row of the defense serves otherwise).
    """
    keys = [*_SCOPE, "defense"]
    clean = results[results["attack"] == NONE].groupby(keys)["defense_cost"].mean()
    every = results.groupby(keys)["defense_cost"].mean()
    return clean.combine_first(every).rename("clean_cost").reset_index()


@validate_params({"results": _RESULTS, "loss": Options(LOSSES),
                  "targets": OrNone(Instance((Mapping,), "a mapping of defense label → "
                                             "recipe names", "{'sybil_cap': ['sybil']}")),
                  "failed": Instance((list, tuple), "a list of failed grid points",
                                     "summary.json's 'failed'")})
def rank_defenses(results: pd.DataFrame, loss: str = LOSS,
                  targets: Mapping[str, Sequence[str]] | None = None,
                  failed: Sequence[Mapping[str, Any]] = ()) -> pd.DataFrame:
    """Rank defenses by their worst case over attacks, per dataset × mechanism.

    For defense d: worst(d) = max over attacks a of :func:`worst_case` (a, d). Ranked
    ascending (rank ties share the lower rank); ties are listed by clean cost, then
    ``none`` first, then name. A defense with failed runs (``failed``: the runner's
    failed grid points) was not attacked in full, so its worst case may be too low: it
    is ranked after every defense without (``runs_failed``), never first on a worst case
    it was not held to. ``attacks_helped`` counts the attacks where
    worst(a, d) < worst(a, none) − TOL among the ``attacks_compared`` run with both.
    ``never_helps`` judges a defense only by the attacks it is designed against
    (``targets``: the recipes it targets, ``Defense.targets``) that ran both with it
    and undefended and did harm undefended (worst case > TOL; ``targeted_compared`` of
    them): True when it lowers none of their worst cases; NA when there is none
    (nothing to judge), for ``none`` itself and without an undefended baseline. Without
    ``targets`` every attack counts.

    Parameters
    ----------
    results : DataFrame
        :func:`load_results`.
    loss : str
        One of :data:`LOSSES`.
    targets : mapping, optional
        Defense label → recipe names it targets (``summary.json``'s ``grid_labels``).
    failed : sequence of mappings
        Failed grid points (``summary.json``'s ``failed``: dataset, mechanism, defense).

    Returns
    -------
    DataFrame
        Columns ``dataset, mechanism, rank, defense, worst_case_loss, worst_attack,
        clean_cost, attacks_helped, attacks_compared, never_helps, targeted_compared,
        runs_failed``.
    """
    failures = Counter((str(f["dataset"]), str(f["mechanism"]), str(f["defense"]))
                       for f in failed)
    worst = worst_case(results, loss)
    attacked = results[results["attack"] != NONE]
    recipes = dict(zip(attacked["attack"].astype(str), recipe_of(attacked), strict=True))
    costs = clean_cost(results).set_index([*_SCOPE, "defense"])["clean_cost"]
    parts = []
    for (dataset, mechanism), grid in worst.groupby(_SCOPE, sort=True):
        table = grid.pivot(index="attack", columns="defense", values="worst_case_loss")
        table = table.dropna(axis=1, how="all")
        base = table[NONE] if NONE in table else None
        rows = []
        for defense in table.columns:
            col = table[defense]
            helped = compared = targeted = 0
            never: Any = pd.NA
            if base is not None and defense != NONE:
                both = col.notna() & base.notna()
                compared = int(both.sum())
                better = col[both] < base[both] - TOL
                helped = int(better.sum())
                if targets is not None and defense in targets:
                    aimed = [recipes.get(a, a) in set(targets[defense]) for a in better.index]
                    better = better[aimed]
                better = better[base[better.index] > TOL]  # harm it could have reduced
                targeted = int(better.size)
                never = pd.NA if targeted == 0 else not better.any()
            rows.append({"dataset": dataset, "mechanism": mechanism, "defense": defense,
                         "worst_case_loss": float(col.max()),
                         "worst_attack": str(col.idxmax()),
                         "clean_cost": float(costs.get((dataset, mechanism, defense),
                                                       np.nan)),
                         "attacks_helped": helped, "attacks_compared": compared,
                         "never_helps": never, "targeted_compared": targeted,
                         "runs_failed": failures[(str(dataset), str(mechanism),
                                                  str(defense))]})
        part = pd.DataFrame(rows)
        # complete defenses first, ranked among themselves; then those with failed runs
        incomplete = (part["runs_failed"] > 0).astype(int)
        key = incomplete * (part["worst_case_loss"].max() + 1.0) + part["worst_case_loss"]
        part.insert(2, "rank", key.rank(method="min").astype(int))
        part["_base"] = part["defense"] != NONE
        parts.append(part.sort_values(["rank", "clean_cost", "_base", "defense"],
                                      na_position="last"))
    columns = [*_SCOPE, "rank", "defense", "worst_case_loss", "worst_attack", "clean_cost",
               "attacks_helped", "attacks_compared", "never_helps", "targeted_compared",
               "runs_failed"]
    if not parts:
        return pd.DataFrame(columns=columns)
    ranking = pd.concat(parts, ignore_index=True)[columns]
    ranking["never_helps"] = ranking["never_helps"].astype("boolean")
    return ranking



def never_helping(ranking: pd.DataFrame) -> dict[tuple[str, str], list[str]]:
    """(dataset, mechanism) → sorted defenses that never help (:func:`rank_defenses`)."""
    return {(d, m): sorted(g.loc[g["never_helps"].fillna(False).astype(bool), "defense"])
            for (d, m), g in ranking.groupby(_SCOPE, sort=True)}


def envelope(results: pd.DataFrame, metrics: Sequence[str]) -> pd.DataFrame:
    """Attacked rows with each metric replaced by its running maximum over budgets.

    An attacker with budget ε may use any budget ε' ≤ ε, so the worst an attack can do
    at ε is the maximum over ε' ≤ ε of what it did (per dataset × mechanism × attack ×
    defense × seed). A raw curve that dips means the attack missed its own better
    answer (the ``non_monotone`` sanity flag); the envelope is what a security curve
    must show. results.csv keeps the raw rows.
    """
    attacked = results[(results["attack"] != NONE) & results["budget"].notna()]
    keys = [*_SCOPE, "attack", "defense", "seed"]
    ordered = attacked.sort_values([*keys, "budget"], kind="stable")
    ordered = ordered.copy()
    ordered[list(metrics)] = ordered.groupby(keys, sort=False, dropna=False)[
        list(metrics)].cummax()
    return ordered


def curve_table(results: pd.DataFrame, metrics: Sequence[str]) -> pd.DataFrame:
    """Seed mean, min and max of the :func:`envelope` of ``metrics`` per dataset ×
    mechanism × attack × defense × budget (attacked runs with a budget), columns
    ``<metric>_mean/_min/_max``."""
    attacked = envelope(results, metrics)
    keys = [*_SCOPE, "attack", "defense", "budget"]
    agg = attacked.groupby(keys, sort=True)[list(metrics)].agg(["mean", "min", "max"])
    agg.columns = [f"{m}_{s}" for m, s in agg.columns]
    return agg.reset_index()


def mechanism_kind(mechanism: str, kinds: Mapping[str, str] | None = None) -> str | None:
    """``"agreements"``, ``"consensus"`` or None for a mechanism label.

    From ``kinds`` (label → kind, see :func:`load_mechanism_kinds`) when it knows the
    label, else from the label itself (``Mechanism.key`` starts with the kind; suite
    labels usually name it).
    """
    kind = (kinds or {}).get(mechanism, mechanism).lower()
    if "consensus" in kind:
        return "consensus"
    if "agreement" in kind:
        return "agreements"
    return None



def attack_summary(results: pd.DataFrame) -> pd.DataFrame:
    """Key aggregates per dataset × mechanism × attack × defense (attacked runs).

    Columns: ``budgets`` (those run), worst ``utility_loss_p90`` and
    ``utility_loss_max``, mean ``utility_loss_mean``, max ``capture``, max
    ``attacker_gain``, mean ``attack_success``, mean ``partition_change``, max
    ``queries``, ``runs``.
    """
    attacked = results[results["attack"] != NONE]
    keys = [*_SCOPE, "attack", "defense"]
    grouped = attacked.groupby(keys, sort=True)
    out = grouped.agg(
        worst_loss_p90=("utility_loss_p90", "max"), worst_loss_max=("utility_loss_max", "max"),
        mean_loss=("utility_loss_mean", "mean"), max_capture=("capture", "max"),
        max_attacker_gain=("attacker_gain", "max"), success_rate=("attack_success", "mean"),
        partition_change=("partition_change", "mean"), queries=("queries", "max"),
        runs=("seed", "size"))
    out.insert(0, "budgets", grouped["budget"].agg(
        lambda b: ", ".join(budget_text(x) for x in sorted(b.dropna().unique()))))
    return out.reset_index()


def certified_worst_case(results: pd.DataFrame, metric: str = LOSS) -> pd.DataFrame:
    """Found and certified worst case of every attack against every defense.

    Columns ``dataset, mechanism, attack, defense, found, certified``: the maxima over
    budgets and seeds of ``metric`` and of ``certified_<metric>``; ``certified`` is NaN
    (undecided) when any of those runs has no certificate for it.
    """
    attacked = results[results["attack"] != NONE].copy()
    column = f"certified_{metric}"
    if column not in attacked:
        attacked[column] = np.nan
    attacked["_undecided"] = attacked[column].isna() & attacked[metric].notna()
    grouped = attacked.groupby([*_SCOPE, "attack", "defense"], sort=True)
    out = grouped.agg(found=(metric, "max"), certified=(column, "max"),
                      undecided=("_undecided", "any")).reset_index()
    out.loc[out["undecided"], "certified"] = np.nan
    return out.drop(columns="undecided")


def rank_defenses_certified(results: pd.DataFrame, metric: str = LOSS) -> pd.DataFrame:
    """Rank defenses by their certified worst case over attacks, per dataset × mechanism.

    For defense d: the maximum over attacks of :func:`certified_worst_case` — undecided
    (NaN, ranked last) when any attack's is — beside the found worst case. Columns
    ``dataset, mechanism, rank, defense, certified, worst_attack, found``.
    """
    worst = certified_worst_case(results, metric)
    rows = []
    for (dataset, mechanism, defense), g in worst.groupby([*_SCOPE, "defense"], sort=True):
        decided = g["certified"].notna().all() and len(g)
        rows.append({"dataset": dataset, "mechanism": mechanism, "defense": defense,
                     "certified": float(g["certified"].max()) if decided else np.nan,
                     "worst_attack": (str(g.loc[g["certified"].idxmax(), "attack"])
                                      if decided else "undecided: " + ", ".join(
                                          g.loc[g["certified"].isna(), "attack"])),
                     "found": float(g["found"].max())})
    columns = [*_SCOPE, "rank", "defense", "certified", "worst_attack", "found"]
    if not rows:
        return pd.DataFrame(columns=columns)
    table = pd.DataFrame(rows)
    table["rank"] = (table.groupby(_SCOPE)["certified"].rank(method="min")
                     .astype("Int64"))
    return table.sort_values([*_SCOPE, "certified", "defense"],
                             na_position="last")[columns].reset_index(drop=True)



def no_effect(results: pd.DataFrame, dataset: str, mechanism: str) -> list[str]:
    """Defenses whose every run on a dataset × mechanism equals the undefended run at
    the same attack, budget and seed (every loss, capture and the clean cost), sorted:
    they do not act on that mechanism (e.g. a bound floor under quantile bounds)."""
    part = results[(results["dataset"] == dataset) & (results["mechanism"] == mechanism)]
    columns = [c for c in (*LOSSES, "capture", "attacker_gain", "defense_cost",
                           "defense_partition_change") if c in part]
    keys = ["attack", "budget", "seed"]
    base = part[part["defense"] == NONE].set_index(keys)[columns]
    if base.empty:
        return []
    out = []
    for defense, rows in part[part["defense"] != NONE].groupby("defense", sort=True):
        rows = rows.set_index(keys)[columns]
        if not rows.index.isin(base.index).all():
            continue
        same = np.isclose(rows.to_numpy(float), base.loc[rows.index].to_numpy(float),
                          rtol=0.0, atol=TOL, equal_nan=True)
        if same.all():
            out.append(str(defense))
    return out
