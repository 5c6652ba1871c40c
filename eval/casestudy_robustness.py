"""Case studies, part 2: the robustness of a case at Q2 (:mod:`~pluralguard.eval.casestudy`).

The default attack suite (every registered attack at three budgets against every
registered defense) runs on the population with bounds at Q2, for the agreement
mechanism and the p = 2 single consensus side by side (:func:`run_robustness`; the
suite's other mechanisms — declared bounds, the message-passing protocol — are left
to `pluralguard run`); the grid points that did not apply or failed are counted and
named with their reasons; its headline per mechanism reuses the report's
aggregates (:func:`~pluralguard.eval.aggregates.worst_case`,
:func:`~pluralguard.eval.aggregates.rank_defenses`), so a case study and a report of
the same results name the same worst attack and best defense. A sweep of the attacker
fraction of a capture attack finds the *breakdown fraction*: the smallest share of
agents that drags the target group's agreement at least halfway to a chosen point
(:func:`breakdown_sweep`). :func:`write_robustness` writes the section and its figure.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from pluralguard.core.geometry import normalised_distance
from pluralguard.core.model import Population
from pluralguard.core.solver import solve_agreements

from .aggregates import rank_defenses, worst_case
from .columns import NONE
from .markdown import fixed, frame_table
from .plots import finish_axes, save_png

#: A case's entry in a suite's ``datasets``: a registered name or a file table.
DatasetEntry = str | dict[str, Any]

MECHANISMS = {"agreements": {"kind": "agreements", "bounds": "quantile:0.5"},
              "consensus-p2": {"kind": "consensus", "p": 2}}
#: Attacker shares of the breakdown sweep.
FRACTIONS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5)
#: The capture recipe swept per mechanism: outsiders joining the group for the agreement
#: mechanism, ℓ2-optimal exaggeration for the mean.
SWEEP_RECIPE = {"agreements": "infiltrate", "consensus-p2": "overshoot"}


@dataclass
class Robustness:
    """Numbers of one case's robustness study.

    Attributes
    ----------
    results : pandas.DataFrame
        ``results.csv`` of the default suite on this population.
    sweep : pandas.DataFrame
        Capture against attacker fraction, per mechanism.
    headline : pandas.DataFrame
        Per mechanism: the attack that hurts honest agents most (undefended), the
        breakdown fraction, and the defense with the lowest worst case, its clean cost.
    threshold : pandas.DataFrame
        ``threshold_shift`` rows (fragment/consolidate) for the agreement mechanism.
    missing : pandas.DataFrame
        Grid points without a row: mechanism, attack, defense, ``outcome`` ("not
        applicable" or "failed") and the reason, one row per distinct reason.
    """

    results: pd.DataFrame
    sweep: pd.DataFrame
    headline: pd.DataFrame
    threshold: pd.DataFrame
    missing: pd.DataFrame


def _case_suite(dataset: DatasetEntry, jobs: int | None, out: Path) -> Any:
    """The default suite on one population, for the mechanisms of :data:`MECHANISMS`,
    with its exclusions applied to it (the :class:`~.runner.RunResult`)."""
    from .runner import run_suite
    from .suite import DEFAULT_SUITE, parse_suite

    text = resources.files("pluralguard.eval").joinpath(DEFAULT_SUITE).read_text("utf-8")
    data = tomllib.loads(text)
    label = dataset if isinstance(dataset, str) else dataset["label"]
    data["datasets"] = [dataset]
    data["mechanisms"] = [m for m in data["mechanisms"] if m["name"] in MECHANISMS]
    data["exclude"] = [dict(e, dataset=label) for e in data.get("exclude", [])
                       if e.get("mechanism", next(iter(MECHANISMS))) in MECHANISMS]
    suite = parse_suite(data, name=f"casestudy-{label}", source="<casestudy>")
    return run_suite(suite, out, jobs=jobs, progress=False, report=False)


def _missing(run: Any) -> pd.DataFrame:
    """Grid points without a row, by mechanism, attack, defense and reason."""
    rows = [{"mechanism": p["mechanism"], "attack": p["attack"], "defense": p["defense"],
             "outcome": outcome, "reason": p.get("reason") or p.get("error", "")}
            for outcome, points in (("not applicable", run.not_applicable),
                                    ("failed", run.failed)) for p in points]
    cols = ["mechanism", "attack", "defense", "outcome", "reason"]
    if not rows:
        return pd.DataFrame(columns=[*cols, "runs"])
    return pd.DataFrame(rows).groupby(cols, sort=False).size().rename("runs").reset_index()


def _target_point(pop: Population) -> tuple[np.ndarray, np.ndarray]:
    """A fixed, existing extreme value system: the declaration farthest from the largest
    Q2 group's agreement (the same t for both mechanisms)."""
    res = solve_agreements(pop, "quantile:0.5")
    g = int(np.argmax(res.group_sizes))
    d = normalised_distance(pop.X, pop.W, res.X[g], res.W[g])
    i = int(np.argmax(d))
    return pop.X[i], pop.W[i]


def breakdown_sweep(pop: Population, fractions: tuple[float, ...] = FRACTIONS
                    ) -> pd.DataFrame:
    """Capture of the largest group toward a fixed extreme point against the attacker
    share, for each mechanism (budget unlimited: attackers may declare anything valid)."""
    from .scenario import run_scenario

    point = _target_point(pop)
    rows = []
    for mech, spec in MECHANISMS.items():
        recipe = SWEEP_RECIPE[mech]
        for f in fractions:
            attack = {"name": recipe, "goal": "capture", "fraction": f,
                      "select": "near_target", "point": (point[0].tolist(), point[1].tolist())}
            row = run_scenario(pop, spec, attack, budget=math.inf, seed=0).row
            rows.append({"mechanism": mech, "recipe": recipe, "fraction": f,
                         "attackers": row["n_attackers"], "capture": row["capture"],
                         "utility_loss_p90": row["utility_loss_p90"]})
    return pd.DataFrame(rows)


def _headline(results: pd.DataFrame, sweep: pd.DataFrame,
              failed: Sequence[Mapping[str, Any]] = ()) -> pd.DataFrame:
    """Per mechanism: the attack that hurts honest agents most undefended
    (:func:`~.aggregates.worst_case`), the defense ranked first by its worst case over
    attacks (:func:`~.aggregates.rank_defenses`) with its clean cost and reshape, and
    the breakdown fraction of the sweep."""
    worst = worst_case(results)
    ranking = rank_defenses(results, failed=list(failed))
    rows = []
    for mech, res in results.groupby("mechanism", sort=False):
        undefended = worst[(worst["mechanism"] == mech) & (worst["defense"] == NONE)]
        undefended = undefended.sort_values("worst_case_loss", kind="stable")
        ranked = ranking[ranking["mechanism"] == mech].set_index("defense")
        best = ranked.index[0] if len(ranked) else None
        reshape = res[res["attack"] == NONE].groupby("defense")[
            "defense_partition_change"].mean()
        sw = sweep[sweep["mechanism"] == mech]
        broken = sw[sw["capture"] >= 0.5]
        rows.append({
            "mechanism": mech,
            "worst_attack": undefended["attack"].iloc[-1] if len(undefended) else "—",
            "worst_loss_p90": float(undefended["worst_case_loss"].iloc[-1])
            if len(undefended) else float("nan"),
            "undefended_worst_case": float(ranked["worst_case_loss"].get(NONE, float("nan"))),
            "best_defense": best if best is not None else "—",
            "best_defense_worst_case": float(ranked.loc[best, "worst_case_loss"])
            if best is not None else float("nan"),
            "best_defense_clean_cost": float(ranked.loc[best, "clean_cost"])
            if best is not None else float("nan"),
            "best_defense_reshape": float(reshape.get(best, float("nan")))
            if best is not None else float("nan"),
            "breakdown_fraction": float(broken["fraction"].min()) if len(broken)
            else float("nan"),
            "max_capture": float(sw["capture"].max()) if len(sw) else float("nan"),
        })
    return pd.DataFrame(rows)


def run_robustness(population: Population, dataset: DatasetEntry, out: Path,
                   jobs: int | None = None) -> Robustness:
    """Part 2 for one population (``dataset``: its suite entry — a name or a file table)."""
    run = _case_suite(dataset, jobs, out)
    results = run.results
    sweep = breakdown_sweep(population)
    threshold = results[(results["attack"] == "threshold_shift")
                        & (results["mechanism"] == "agreements")
                        & (results["defense"] == "none")]
    return Robustness(results=results, sweep=sweep,
                      headline=_headline(results, sweep, run.failed),
                      threshold=threshold, missing=_missing(run))


def plot_sweep(name: str, sweep: pd.DataFrame, path: Path) -> None:
    """Capture against attacker share, one line per mechanism."""
    fig = Figure(figsize=(6.5, 4), layout="constrained")
    ax = fig.subplots()
    for mech, s in sweep.groupby("mechanism", sort=False):
        ax.plot(s["fraction"], s["capture"], marker="o",
                label=f"{mech} ({s['recipe'].iloc[0]})")
    ax.axhline(0.5, color="grey", ls=":", lw=1)
    ax.set_xscale("log")
    finish_axes(ax, "share of agents attacking", "capture of the largest group",
                f"{name}: how many attackers capture a group")
    save_png(fig, path)


def certification_lines(results: pd.DataFrame) -> list[str]:
    """What the certificates say about a case's attacks (:mod:`.certificate_table`): per
    mechanism, the share of attacked runs with a finite certificate and its median gap,
    the attacks whose found worst case attains the certificate on their goal's metric
    (*tight*), those that leave a gap (the largest median gap first), and the undecided
    ones with the reason."""
    from .certificate_table import coverage, has_certificates, verdicts

    if not has_certificates(results):
        return []
    cover = coverage(results).set_index("mechanism")
    table = verdicts(results)
    lines = ["Certified bounds (the worst *any* attack of the same threat model could do, "
             "proved; `pluralguard.eval.certify`):", ""]
    for mech, v in table.groupby("mechanism", sort=False):
        c = cover.loc[mech]
        text = (f"* **{mech}** — {int(c['certified'])} of {int(c['attacked'])} attacked runs "
                f"certified "
                f"({c['share']:.0%}; median gap on utility_loss_p90 "
                f"{c['median_gap_utility_loss_p90']:.3g}).")
        tight = v[v["verdict"] == "tight"]
        if len(tight):
            text += " Certified tight (the attack found attains the proved worst case): " + \
                "; ".join(_tight_under(a, g, v[v["attack"] == a])
                          for a, g in tight.groupby("attack", sort=True)) + "."
        gaps = v[v["verdict"] == "gap"].groupby("attack", sort=True).agg(
            metric=("metric", "first"), gap=("median_gap", "median"))
        if len(gaps):
            gaps = gaps.sort_values("gap", ascending=False, kind="stable")
            text += " Leave a gap (median over the defense settings where they do): " + "; ".join(
                f"`{a}` {g['metric']} {g['gap']:.3g}" for a, g in gaps.iterrows()) + "."
        undecided = v[v["verdict"].str.contains("undecided")]
        if len(undecided):
            text += " Undecided: " + "; ".join(
                f"`{a}`, {g['reason'].iloc[0]}" for a, g in undecided.groupby(
                    "attack", sort=True)) + "."
        lines.append(text)
    return [*lines, ""]


def _tight_under(attack: str, tight: pd.DataFrame, runs: pd.DataFrame) -> str:
    """``attack`` on its metric, undefended or not, and under which defenses (the shorter
    of the list of those where it is tight and of those where it is not)."""
    defended = sorted(set(runs["defense"]) - {"none"})
    yes = sorted(set(tight["defense"]) - {"none"})
    where = "undefended" if "none" in set(tight["defense"]) else "not undefended"
    if yes:
        others = sorted(set(defended) - set(yes))
        where += (f" and under {len(yes)} of {len(defended)} defenses"
                  + (f" (all but {', '.join(others)})" if len(others) < len(yes)
                     else f" ({', '.join(yes)})"))
    return f"`{attack}` on {tight['metric'].iloc[0]}, {where}"


def missing_lines(missing: pd.DataFrame) -> list[str]:
    """What did not run and why: grid points that do not apply (counted per attack and
    reason) and failed runs (per mechanism, attack, defense and error)."""
    if missing.empty:
        return ["Every grid point ran.", ""]
    lines = ["Grid points without a result:", ""]
    skipped = missing[missing["outcome"] == "not applicable"]
    for (mech, attack), g in skipped.groupby(["mechanism", "attack"], sort=False):
        lines.append(f"* not applicable — `{attack}` against {mech} "
                     f"({int(g['runs'].sum())} runs): {g['reason'].iloc[0].split(': ', 1)[-1]}")
    failed = missing[missing["outcome"] == "failed"]
    for (mech, reason), g in failed.groupby(["mechanism", "reason"], sort=False):
        where = ", ".join(sorted({f"`{a}` × `{d}`" for a, d in zip(g["attack"], g["defense"],
                                                                   strict=True)}))
        lines.append(f"* **failed** — {mech}, {int(g['runs'].sum())} runs ({where}): "
                     f"{reason}")
    return [*lines, ""]


def write_robustness(name: str, rob: Robustness, out_dir: Path,
                     figures: str = "figures") -> str:
    """Figure and markdown section of one case's robustness study."""
    stem = name.replace(" ", "_")
    plot_sweep(name, rob.sweep, out_dir / figures / f"{stem}_breakdown.png")
    h = rob.headline
    cols = ["mechanism", "worst_attack", "worst_loss_p90", "best_defense",
            "best_defense_worst_case", "best_defense_clean_cost", "best_defense_reshape",
            "breakdown_fraction", "max_capture"]
    lines = [f"### {name}: robustness at Q2", "",
             "Default attack suite (every registered attack at three budgets against every "
             "registered defense, one seed; `best_response` with its 300 queries), for the "
             "agreement mechanism and the ℓ2 consensus; losses are the 90th percentile "
             "over honest agents of u(clean) − u(attacked), worst over budgets. *Best "
             "defense*: lowest worst case over attacks; its clean cost is the honest "
             "utility it takes with no attack (negative when it splits groups, since an "
             "agent left alone scores 1) and *reshape* the partition change it causes with "
             "no attack (1 − ARI). *Breakdown fraction*: smallest attacker share (of "
             + ", ".join(f"{f:g}" for f in FRACTIONS) + ") whose capture of the largest "
             "group toward the most extreme declaration reaches 0.5 (nan: none does).",
             "",
             frame_table(h[cols], cell=fixed), ""]
    lines += missing_lines(rob.missing)
    if len(rob.threshold):
        t = rob.threshold
        lines += ["Threshold shift (5% of agents move the Q2 quantile), agreement mechanism, "
                  "undefended: " + "; ".join(
                      f"goal {r['goal']}, budget {r['budget']:g}: Δ groups "
                      f"{int(r['delta_groups']):+d}, partition change "
                      f"{r['partition_change']:.3f}" for _, r in t.iterrows()) + ".", ""]
    lines += certification_lines(rob.results)
    lines += [f"![breakdown]({figures}/{stem}_breakdown.png)", ""]
    return "\n".join(lines)
