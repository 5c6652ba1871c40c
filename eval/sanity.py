"""Sanity checks of a results table: signs that a measurement cannot be trusted.

A robustness evaluation fails worst by reporting false robustness — an attack weaker
than the real worst case (Carlini et al., *On evaluating adversarial robustness*, 2019;
Croce & Hein's AutoAttack flags). Each check here reads ``results.csv`` rows (as
:func:`pluralguard.eval.results.load_results` or the runner builds them) and says
whether it is raised, what it found, which rows, and what that means for the reader.
The runner stores them in ``summary.json``; the report opens with them. Both read
them from this module, so they never disagree.

=====================  ===========================================================
check                  raised when
=====================  ===========================================================
non_convergence        a run did not converge (``converged`` = 0)
nondeterminism         a configuration appears twice with different metrics (the
                       runner also recomputes a sample of runs, :mod:`.runner`)
below_truth            an attack's ``goal_measure`` < 0: it did worse on its own goal
                       than telling the truth
non_monotone           a larger budget reached the goal less well than a smaller one
                       (same dataset, mechanism, attack, defense and seed)
adaptive_beaten        ``best_response`` reached its goal less well than a fixed recipe
                       on the same scenario
black_box_beaten       a black-box ``best_response`` beat a white-box one on the same
                       scenario
exhaustive_gap         ``best_response`` found < 95 % of the exhaustive optimum
                       (``exhaustive_optimum``, computed on small populations)
certificate_exceeded   a found value (or the exhaustive optimum) above its certificate
                       (``certified_<metric>``): a bug in the certifier or the attack
uncertified            attacked runs without a finite certificate (undecided: protocol
                       deviation, a mechanism not built in); informational, with the
                       coverage per mechanism and the median gaps
zero_gain              no attack raised the attackers' true utility anywhere
randomized             randomized defenses were evaluated over several draws of their
                       randomness (informational, as AutoAttack's flag)
=====================  ===========================================================

The checks are one piece (above ~500 lines) on purpose: this module is the single
definition both the runner's ``summary.json`` and the report read, so a check, its
title, its meaning and how a recorded flag merges into it never live apart.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from . import certificate_table as certs
from .columns import IDENTITY, NONE, numeric, recipe_of
from .jsonio import plain
from .metrics import METRICS

#: Registry name of the adaptive search.
ADAPTIVE = "best_response"
#: Absolute tolerance of every comparison.
TOL = 1e-9
#: Standard errors within which a randomized run's comparison counts as sampling noise.
NOISE_SIGMAS = 2.0
#: Share of the exhaustive optimum below which an attack is flagged.
EXHAUSTIVE_SHARE = 0.95
#: Slack of a found value over its certificate (the certificates already include the
#: solvers' acceptance tolerance).
CERTIFICATE_TOL = 1e-8
#: Metrics that show an attack had any effect (named in the zero-gain finding).
EFFECTS = ("attacker_gain", "utility_loss_mean", "utility_loss_p90", "utility_loss_max",
           "capture", "partition_change")


@dataclass(frozen=True)
class Check:
    """What a check looks for and what a raised flag means for the reader."""

    title: str
    description: str
    meaning: str


CHECKS: dict[str, Check] = {
    "non_convergence": Check(
        "non-convergence",
        "some run did not converge (rows with converged = 0)",
        "the solver stopped before its tolerance, so those rows' agreements are not fixed "
        "points of the mechanism and their metrics are suspect; under a protocol attack it "
        "is often the attack's own fingerprint (a deviating member keeps the group from "
        "settling), which a deployment could detect"),
    "nondeterminism": Check(
        "nondeterminism",
        "a configuration appears more than once with different metrics, or a recomputed "
        "run differs bit-for-bit from the stored one",
        "the same configuration and seed gave different numbers: results cannot be "
        "reproduced, so a comparison between runs may reflect noise, not the attack"),
    "below_truth": Check(
        "attack below truth-telling",
        "an attack's goal_measure is below 0: its declarations served its goal worse than "
        "telling the truth",
        "a rational attacker would have told the truth; the attack's numbers understate "
        "what attackers can do (the attack, not the mechanism, is weak there)"),
    "non_monotone": Check(
        "non-monotone in budget",
        "for one dataset, mechanism, attack, defense and seed, a larger budget reached the "
        "goal less well (goal_measure) than a smaller one, beyond a randomized defense's "
        "sampling margin",
        "every attack keeps the strongest of its plans at the curve's budgets up to its "
        "own (column plan_budget), so a dip means the plans were measured on other "
        "draws than the evaluation's or a recipe's plans at a smaller budget are not "
        "legal at a larger one; the report's curves show the envelope (the best over "
        "smaller budgets), the raw rows stay in results.csv"),
    "adaptive_beaten": Check(
        "adaptive search beaten by a fixed recipe",
        f"the adaptive search ({ADAPTIVE}) reached its goal less well (goal_measure) than "
        "a fixed recipe with the same goal on the same dataset, mechanism, defense, budget "
        "and seed",
        "the adaptive search is seeded with every applicable recipe, so it should never be "
        "weaker; if it is, its query budget was spent before the recipe's answer was "
        "evaluated, and its worst cases understate the risk"),
    "black_box_beaten": Check(
        "black-box beat white-box",
        f"a black-box {ADAPTIVE} reached its goal better than a white-box one on the same "
        "scenario",
        "knowing more cannot hurt an attacker, so the white-box search is weaker than it "
        "should be there: its worst cases understate the risk"),
    "exhaustive_gap": Check(
        "gap to the exhaustive optimum",
        f"on a population small enough for the exhaustive reference, the adaptive search "
        f"({ADAPTIVE}) reached less than {EXHAUSTIVE_SHARE:.0%} of the exhaustive optimum "
        "of its goal",
        "there is a stronger attack than the one measured: the defense or mechanism looks "
        "more robust than it is"),
    "certificate_exceeded": Check(
        "found value above its certificate",
        "a run's metric (utility_loss_max, utility_loss_p90, attacker_gain, capture), or the "
        "exhaustive optimum of its goal, exceeds the proved upper bound certified_<metric> "
        "of the same run (converged runs only)",
        "a certificate bounds every attack of the threat model, so an attack above it means "
        "a bug in one of the two: the proof or its assumptions do not hold for this "
        "mechanism or defense (pluralguard.eval.certify), or the attack, the mechanism or "
        "the metric computed something the model forbids; trust neither number there until "
        "it is found"),
    "uncertified": Check(
        "runs without a certificate",
        "attacked runs whose certificate is undecided (protocol deviation, a mechanism that "
        "is not built in, the static link rule); the finding gives, per mechanism, the "
        "share of attacked runs with a finite certificate and the median gap between "
        "certificate and attack found",
        "there the evaluation has only the attacks it found, a lower bound on the risk: "
        "nothing says how much worse an attack could be; elsewhere the gap says how much "
        "an evaluation may still be missing"),
    "zero_gain": Check(
        "zero gain everywhere",
        "no attack gained anything: attacker_gain <= 0 or NaN in every attacked row",
        "either the mechanism resists every attack run, or the attacks never reached it "
        "(budgets too small, attacks refused); check the list of runs that did not apply"),
    "randomized": Check(
        "randomized defense",
        "a defense or mechanism draws randomness, and its rows are expectations over "
        "several draws (columns draws, *_draw_sd)",
        "an attack faced the distribution of the randomness, not one draw (expectation "
        "over transformation); a single lucky draw can make a randomized defense look "
        "robust, so read its spread (the *_draw_sd columns) next to its mean"),
}


@dataclass(frozen=True, eq=False)
class Flag:
    """The outcome of one sanity check.

    Attributes
    ----------
    name : str
        Key of the check (:data:`CHECKS`; as in ``summary.json``'s ``"sanity"`` object).
    title : str
    raised : bool
    finding : str
        Plain statement with counts.
    rows : DataFrame
        The offending rows (identity columns and the evidence); empty when clear.
    """

    name: str
    title: str
    raised: bool
    finding: str
    rows: pd.DataFrame = field(default_factory=pd.DataFrame)

    @property
    def meaning(self) -> str:
        """What a raised flag means for the reader (empty for unknown checks)."""
        check = CHECKS.get(self.name)
        return check.meaning if check else ""

    def to_summary(self, limit: int = 10) -> dict[str, Any]:
        """The ``summary.json`` record: raised, description, count, finding, details."""
        check = CHECKS.get(self.name)
        records = self.rows.head(limit).to_dict("records") if not self.rows.empty else []
        return {"raised": self.raised, "description": check.description if check else "",
                "count": len(self.rows), "finding": self.finding,
                "details": [{k: plain(v) for k, v in r.items()} for r in records]}


def _flag(name: str, raised: bool, finding: str, rows: pd.DataFrame | None = None) -> Flag:
    return Flag(name, CHECKS[name].title, raised, finding,
                rows if rows is not None else pd.DataFrame())


# ------------------------------------------------------------------ preparation
def goal_measure(results: pd.DataFrame) -> pd.Series:
    """Each row's ``goal_measure`` (where it is missing — tables written before that
    column existed — the goal's column times its sign)."""
    from pluralguard.attacks.goals import GOAL_SPECS

    out = numeric(results, "goal_measure")
    goals = results["goal"].astype(str) if "goal" in results else pd.Series("", results.index)
    for goal, spec in GOAL_SPECS.items():
        hit = (goals == goal) & out.isna()
        if hit.any():
            out[hit] = spec.sign * numeric(results, spec.column)[hit]
    return out


def _attacked(results: pd.DataFrame) -> pd.DataFrame:
    frame = results[results["attack"].astype(str) != NONE].copy()
    frame["_measure"] = goal_measure(frame)
    frame["_recipe"] = recipe_of(frame)
    frame["_noise"] = sampling_margin(frame)
    return frame


def sampling_margin(results: pd.DataFrame) -> pd.Series:
    """How far a row's ``goal_measure`` may sit from its expectation by chance: 0 for a
    deterministic run; for a run averaged over K draws of a randomized defense,
    :data:`NOISE_SIGMAS` standard errors (sd over draws / √K). The attack planned on
    other draws than the evaluation's, so a comparison within this margin is noise."""
    draws = numeric(results, "draws").fillna(1.0)
    sd = numeric(results, "goal_measure_draw_sd").fillna(0.0)
    return NOISE_SIGMAS * sd / np.sqrt(draws.clip(lower=1.0))


# ---------------------------------------------------------------------- checks
def non_convergence(results: pd.DataFrame) -> Flag:
    converged = numeric(results, "converged")
    known = converged.notna()
    if not known.any():
        return _flag("non_convergence", False,
                     "Not checked here: results.csv has no `converged` values.")
    bad = results[known & (converged == 0)]
    n = int(known.sum())
    if bad.empty:
        return _flag("non_convergence", False, f"All {n} runs converged.")
    cols = [c for c in (*IDENTITY, "solver_iterations") if c in bad]
    return _flag("non_convergence", True,
                 f"{len(bad)} of {n} runs did not converge (`converged` = 0).", bad[cols])


def nondeterminism(results: pd.DataFrame) -> Flag:
    keys = list(IDENTITY)
    repeated = results[results.duplicated(keys, keep=False)]
    if repeated.empty:
        return _flag("nondeterminism", False,
                     "Not checked here: results.csv holds every run once.")
    measured = [c for c in METRICS if c in results and results[c].notna().any()]
    spread = repeated.groupby(keys, dropna=False, sort=True)[measured].nunique(dropna=False)
    differ = spread[(spread > 1).any(axis=1)]
    if differ.empty:
        return _flag("nondeterminism", False,
                     f"{len(spread)} runs appear more than once in results.csv, all with "
                     "identical metrics.")
    rows = differ.reset_index()[keys]
    rows["differing metrics"] = [", ".join(c for c in measured if r[c] > 1)
                                 for _, r in differ.iterrows()]
    return _flag("nondeterminism", True,
                 f"{len(differ)} of {len(spread)} repeated runs gave different metrics for "
                 "the same configuration and seed.", rows)


def below_truth(results: pd.DataFrame) -> Flag:
    attacked = _attacked(results)
    known = attacked["_measure"].notna()
    if not known.any():
        return _flag("below_truth", False, "Not checked: no attacked run has a goal measure.")
    below = known & (attacked["_measure"] < -TOL)
    bad = attacked[below & (attacked["_measure"] < -TOL - attacked["_noise"])]
    noise = int(below.sum()) - len(bad)
    note = (f" {noise} runs against randomized defenses sit below 0 within "
            f"{NOISE_SIGMAS:g} standard errors of their draws (sampling noise: the attack "
            "planned on other draws than the evaluation's)." if noise else "")
    if bad.empty:
        return _flag("below_truth", False,
                     f"In all {int(known.sum())} attacked runs the attack served its goal at "
                     "least as well as telling the truth." + note)
    rows = bad[[*IDENTITY, "goal"]].assign(goal_measure=bad["_measure"])
    return _flag("below_truth", True,
                 f"{len(bad)} of {int(known.sum())} attacked runs did worse on their own goal "
                 "than telling the truth (goal_measure < 0)." + note, rows)


def non_monotone(results: pd.DataFrame) -> Flag:
    attacked = _attacked(results)
    attacked = attacked[attacked["_measure"].notna() & numeric(attacked, "budget").notna()]
    keys = ["dataset", "mechanism", "attack", "defense", "seed"]
    found, curves, noise = [], 0, 0
    for _, curve in attacked.groupby(keys, sort=True, dropna=False):
        if curve["budget"].nunique() < 2:
            continue
        curves += 1
        curve = curve.sort_values("budget", kind="stable")
        for i in range(1, len(curve)):
            row, smaller = curve.iloc[i], curve.iloc[:i]
            smaller = smaller[smaller["budget"] < row["budget"]]
            if smaller.empty:
                continue
            at = smaller.loc[smaller["_measure"].idxmax()]
            if row["_measure"] >= at["_measure"] - TOL:
                continue
            if row["_measure"] >= at["_measure"] - TOL - np.hypot(row["_noise"], at["_noise"]):
                noise += 1  # randomized defense: within its draws' sampling margin
                continue
            found.append({**{k: row[k] for k in IDENTITY}, "goal_measure": row["_measure"],
                          "smaller budget": at["budget"], "its goal_measure": at["_measure"]})
    note = (f" {noise} runs against randomized defenses sit below a smaller budget's "
            f"within {NOISE_SIGMAS:g} standard errors of their draws (sampling noise)."
            if noise else "")
    if not curves:
        return _flag("non_monotone", False, "Not checked: no attack was run at several "
                     "budgets.")
    if not found:
        return _flag("non_monotone", False,
                     f"All {curves} security curves are monotone in the budget." + note)
    return _flag("non_monotone", True,
                 f"{len(found)} runs reached their goal less well than the same attack with "
                 f"a smaller budget ({curves} curves checked)." + note, pd.DataFrame(found))


def _same_scene(frame: pd.DataFrame) -> list[str]:
    return ["dataset", "mechanism", "defense", "budget", "seed", "goal"]


def adaptive_beaten(results: pd.DataFrame) -> Flag:
    attacked = _attacked(results)
    adaptive = attacked[attacked["_recipe"] == ADAPTIVE]
    fixed = attacked[attacked["_recipe"] != ADAPTIVE]
    if adaptive.empty:
        return _flag("adaptive_beaten", False, f"Not checked: no `{ADAPTIVE}` runs.")
    key = _same_scene(attacked)
    pairs = adaptive[[*key, "attack", "_measure", "_noise"]].merge(
        fixed[[*key, "attack", "_measure", "_noise"]], on=key, suffixes=("", "_fixed"))
    compared = len(pairs[[*key, "attack"]].drop_duplicates())
    if not compared:
        return _flag("adaptive_beaten", False,
                     "Not checked: no fixed recipe shares its goal, dataset, mechanism, "
                     f"defense, budget and seed with a `{ADAPTIVE}` run.")
    mine, theirs = pairs["_measure"], pairs["_measure_fixed"]
    margin = np.hypot(pairs["_noise"], pairs["_noise_fixed"])  # 0 unless randomized
    ahead = pairs[(theirs > mine + TOL + margin) | (mine.isna() & theirs.notna())]
    if ahead.empty:
        return _flag("adaptive_beaten", False,
                     f"In all {compared} `{ADAPTIVE}` runs with a fixed recipe of the same "
                     "goal on the same dataset, mechanism, defense, budget and seed, the "
                     "adaptive search reached its goal at least as well as every recipe.")
    best = (ahead.sort_values([*key, "attack", "_measure_fixed", "attack_fixed"],
                              ascending=[True] * (len(key) + 1) + [False, True])
            .drop_duplicates([*key, "attack"]))
    rows = pd.DataFrame({**{k: best[k] for k in key}, "best_response": best["attack"],
                         "its goal_measure": best["_measure"],
                         "beaten by": best["attack_fixed"],
                         "their goal_measure": best["_measure_fixed"]})
    return _flag("adaptive_beaten", True,
                 f"In {len(rows)} of {compared} comparable `{ADAPTIVE}` runs a fixed recipe "
                 "with the same goal, on the same dataset, mechanism, defense, budget and "
                 "seed, reached the goal better than the adaptive search.",
                 rows.reset_index(drop=True))


def black_box_beaten(results: pd.DataFrame) -> Flag:
    attacked = _attacked(results)
    if "knowledge" not in attacked:
        return _flag("black_box_beaten", False, "Not checked: results.csv has no "
                     "`knowledge` column.")
    adaptive = attacked[attacked["_recipe"] == ADAPTIVE]
    key = _same_scene(attacked)
    black = adaptive[adaptive["knowledge"] == "black"]
    white = adaptive[adaptive["knowledge"] == "white"]
    pairs = black[[*key, "attack", "_measure"]].merge(
        white[[*key, "attack", "_measure"]], on=key, suffixes=("_black", "_white"))
    if pairs.empty:
        return _flag("black_box_beaten", False, f"Not checked: no scenario ran `{ADAPTIVE}` "
                     "in both knowledge modes.")
    bad = pairs[pairs["_measure_black"] > pairs["_measure_white"] + TOL]
    if bad.empty:
        return _flag("black_box_beaten", False,
                     f"In all {len(pairs)} scenarios run in both modes the white-box search "
                     "did at least as well as the black-box one.")
    rows = bad[key].assign(black=bad["_measure_black"], white=bad["_measure_white"])
    return _flag("black_box_beaten", True,
                 f"In {len(bad)} of {len(pairs)} scenarios the black-box search beat the "
                 "white-box one.", rows.reset_index(drop=True))


def exhaustive_gap(results: pd.DataFrame) -> Flag:
    attacked = _attacked(results)
    optimum = numeric(attacked, "exhaustive_optimum")
    known = optimum.notna() & attacked["_measure"].notna()
    if not known.any():
        return _flag("exhaustive_gap", False,
                     "Not checked: no population was small enough for the exhaustive "
                     "reference (or it was not requested).")
    short = known & (optimum > TOL) & (attacked["_measure"] < EXHAUSTIVE_SHARE * optimum)
    adaptive = attacked["_recipe"] == ADAPTIVE
    fixed = int((short & ~adaptive).sum())
    note = (f" {fixed} runs of fixed recipes stay below it (they are fixed strategies, "
            "not searches; their gap is listed for information)." if fixed else "")
    bad = attacked[short & adaptive]
    if bad.empty:
        return _flag("exhaustive_gap", False,
                     f"In all {int((known & adaptive).sum())} `{ADAPTIVE}` runs with an "
                     f"exhaustive reference the search reached at least "
                     f"{EXHAUSTIVE_SHARE:.0%} of the optimum." + note)
    rows = bad[[*IDENTITY, "goal"]].assign(goal_measure=bad["_measure"],
                                           exhaustive_optimum=optimum[short & adaptive])
    return _flag("exhaustive_gap", True,
                 f"{len(bad)} of {int((known & adaptive).sum())} `{ADAPTIVE}` runs with an "
                 f"exhaustive reference reached less than {EXHAUSTIVE_SHARE:.0%} of its "
                 "optimum." + note, rows.reset_index(drop=True))


def zero_gain(results: pd.DataFrame) -> Flag:
    attacked = results[results["attack"].astype(str) != NONE]
    if attacked.empty:
        return _flag("zero_gain", False, "Not checked: no attacked runs.")
    gained = numeric(attacked, "attacker_gain") > 0
    effects = pd.concat([numeric(attacked, c) for c in EFFECTS], axis=1)
    effect = (effects.abs().fillna(0.0) > TOL).any(axis=1)
    idle = sorted(set(attacked["attack"]) - set(attacked.loc[effect, "attack"]))
    note = (" Attacks with no effect at all in any run: "
            + ", ".join(f"`{a}`" for a in idle) + "." if idle else "")
    if not gained.any():
        return _flag("zero_gain", True,
                     f"No attacked run raised the attackers' true utility: `attacker_gain` "
                     f"is ≤ 0 or NaN in all {len(attacked)}; {int(effect.sum())} of them "
                     "changed anything (honest loss, capture, partition)." + note,
                     attacked[[*IDENTITY, "attacker_gain"]])
    return _flag("zero_gain", False,
                 f"{int(gained.sum())} of {len(attacked)} attacked runs raised the attackers' "
                 "true utility." + note)


def randomized(results: pd.DataFrame) -> Flag:
    draws = numeric(results, "draws")
    many = results[draws > 1]
    if many.empty:
        return _flag("randomized", False, "No run drew randomness: every defense and "
                     "mechanism was deterministic.")
    names = sorted(set(many["defense"].astype(str)))
    return _flag("randomized", True,
                 f"{len(many)} runs faced randomness ({', '.join(f'`{n}`' for n in names)}) "
                 f"and are means over {int(draws.max())} draws; their spread over draws is "
                 "in the *_draw_sd columns.",
                 many[[*IDENTITY, "draws"]].reset_index(drop=True))


def certificate_exceeded(results: pd.DataFrame) -> Flag:
    if not certs.has_certificates(results):
        return _flag("certificate_exceeded", False, "Not checked: results.csv has no "
                     "certificates (written before they existed).")
    frame = certs.attacked_rows(results)
    decided = frame[frame["_certified"]]
    converged = numeric(decided, "converged") != 0
    checked = decided[converged]
    found = []
    for metric in certs.CERTIFIED:
        value, bound = numeric(checked, metric), numeric(checked, f"certified_{metric}")
        over = checked[value > bound + CERTIFICATE_TOL]
        found += [{**{k: r[k] for k in IDENTITY}, "metric": metric, "found": r[metric],
                   "certified": r[f"certified_{metric}"]} for _, r in over.iterrows()]
    optimum = numeric(checked, "exhaustive_optimum")
    single = numeric(checked, "draws").fillna(1) <= 1
    for goal, metric in certs.GOAL_METRIC.items():
        bound = numeric(checked, f"certified_{metric}")
        over = checked[(checked["goal"].astype(str) == goal) & single
                       & (optimum > bound + CERTIFICATE_TOL)]
        found += [{**{k: r[k] for k in IDENTITY}, "metric": f"exhaustive_optimum ({metric})",
                   "found": r["exhaustive_optimum"], "certified": r[f"certified_{metric}"]}
                  for _, r in over.iterrows()]
    skipped = int((~converged).sum())
    note = (f" {skipped} runs that did not converge were not checked (certificates bound "
            "fixed points)." if skipped else "")
    if not found:
        return _flag("certificate_exceeded", False,
                     f"In all {len(checked)} certified runs every metric stayed within its "
                     "certificate." + note)
    return _flag("certificate_exceeded", True,
                 f"{len(found)} values in {len({tuple(f[k] for k in IDENTITY) for f in found})}"
                 f" of {len(checked)} certified runs exceed their certificate." + note,
                 pd.DataFrame(found))


def uncertified(results: pd.DataFrame) -> Flag:
    if not certs.has_certificates(results):
        return _flag("uncertified", False, "Not checked: results.csv has no certificates "
                     "(written before they existed).")
    table = certs.coverage(results)
    if table.empty:
        return _flag("uncertified", False, "Not checked: no attacked runs.")
    parts = []
    for _, r in table.iterrows():
        gaps = ", ".join(f"{m} {r[f'median_gap_{m}']:.3g}" for m in certs.CERTIFIED
                         if r[f"median_gap_{m}"] == r[f"median_gap_{m}"])
        only = (f", {r['valid_set_only']} on the valid set only"
                if r["valid_set_only"] else "")
        parts.append(f"`{r['mechanism']}` {r['certified']}/{r['attacked']} "
                     f"({r['share']:.0%}{only}; median gap {gaps or '—'})")
    undecided = int(table["undecided"].sum())
    frame = certs.attacked_rows(results)
    reasons = frame.loc[~frame["_certified"], "_basis"].value_counts()
    why = "; ".join(f"{count} {basis.removeprefix('undecided: ')}"
                    for basis, count in reasons.items())
    finding = ("Attacked runs with a finite certificate, per mechanism: " + "; ".join(parts)
               + "." + (f" Undecided: {why}." if undecided else ""))
    return _flag("uncertified", bool(undecided), finding, table)


#: Every check computed from a results table, in report order.
TABLE_CHECKS = (non_convergence, nondeterminism, below_truth, non_monotone, adaptive_beaten,
                black_box_beaten, exhaustive_gap, certificate_exceeded, uncertified,
                zero_gain, randomized)


def check(results: pd.DataFrame) -> list[Flag]:
    """Every check of :data:`TABLE_CHECKS` on a results table."""
    return [fn(results) for fn in TABLE_CHECKS]


def with_recorded(results: pd.DataFrame, summary: Mapping[str, Any] | None = None
                  ) -> list[Flag]:
    """Every check on a results table, merged with what the runner recorded in
    ``summary.json``.

    Every check is computed from ``results`` itself; a flag the runner recorded in
    ``summary["sanity"][name]`` (it also recomputes runs to test nondeterminism) is
    merged in (:func:`merge_recorded`): raised when either says so. Flags the runner
    recorded that this module does not know follow, by name.

    Returns
    -------
    list of Flag
        In the order of :data:`TABLE_CHECKS`, then the runner's other flags.
    """
    runner = (summary or {}).get("sanity") or {}
    if not isinstance(runner, Mapping):
        runner = {}
    flags = [merge_recorded(flag, runner.get(flag.name)) for flag in check(results)]
    flags += [merge_recorded(Flag(str(name), str(name).replace("_", " "), False,
                                  "Computed by the runner only."), entry)
              for name, entry in sorted(runner.items(), key=lambda kv: str(kv[0]))
              if name not in CHECKS]
    return flags


def merge_recorded(flag: Flag, entry: Any) -> Flag:
    """Merge a flag recorded in ``summary.json`` (by the runner, which also recomputes
    runs) into the one computed from the table: raised when either says so.

    ``entry`` is a boolean or an object with ``"raised"`` (else its first boolean
    value), ``"description"``, ``"checked"`` and ``"details"`` (records or text).
    """
    if entry is None:
        return flag
    checked = None
    if isinstance(entry, Mapping):
        raised = bool(entry["raised"] if "raised" in entry else
                      next((v for v in entry.values() if isinstance(v, bool)), False))
        details = entry.get("details")
        what = entry.get("description") if raised else None
        checked = entry.get("checked")
    else:
        raised, details, what = bool(entry), None, None
    note = f" The runner (summary.json) reports it {'RAISED' if raised else 'clear'}"
    if isinstance(checked, int) and not isinstance(checked, bool):
        note += f" after recomputing {checked} runs"
    note += f": {what}." if isinstance(what, str) and what else "."
    rows = flag.rows
    listed = isinstance(details, list) and details and all(isinstance(d, Mapping)
                                                           for d in details)
    if listed and rows.empty:
        rows = pd.DataFrame([{str(k): _json_cell(v) for k, v in d.items()} for d in details])
        note += f" It lists {len(rows)} runs, below."
    elif details not in (None, "", [], {}) and not listed:
        import json

        text = details if isinstance(details, str) else json.dumps(
            details, sort_keys=True, ensure_ascii=False, default=str)
        note += f" Details: {text[:400]}{'…' if len(text) > 400 else ''}"
    return Flag(flag.name, flag.title, flag.raised or raised, flag.finding + note, rows)


def _json_cell(value: Any) -> Any:
    """A JSON value as a table cell (lists joined, mappings as JSON)."""
    if isinstance(value, list):
        return ", ".join(map(str, value))
    if isinstance(value, Mapping):
        import json

        return json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)
    if isinstance(value, float) and math.isnan(value):
        return np.nan
    return value
