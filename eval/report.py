"""The robustness report: markdown tables and PNG figures from a results directory.

:func:`write_report` reads ``DIR/results.csv`` (one tidy row per run, as
:func:`~pluralguard.eval.scenario.run_scenario` returns it; attack ``none`` rows are
the no-attack baselines, defense ``none`` rows are undefended) and, when present,
``DIR/summary.json`` (the runner's sanity flags) and ``DIR/suite.resolved.json`` (the
kind of each mechanism label); it writes ``DIR/report.md`` and PNG figures under
``DIR/figures/``. The sections, in order:

0. **What ran, what did not, and why** — the first screen: the grid's size, per attack
   the grid points that ran (and whether undefended), did not apply or failed; why the
   others did not apply, grouped by attack × mechanism × reason
   (:mod:`~pluralguard.eval.coverage`); failed runs; every raised sanity flag with what
   it means; a warning when the run is partial (interrupted) or ``results.csv`` was
   changed after the run (:func:`~pluralguard.eval.results.check_results`).
1. **Sanity flags** — every check of :mod:`~pluralguard.eval.sanity`, merged with the
   runner's record (:func:`~pluralguard.eval.sanity.with_recorded`).
2. **Security curves** — honest utility loss (mean and the worst-case metric) and
   capture against the budget, one line per defense, one panel per attack, one
   figure per dataset × mechanism; seed means with min–max bands.
3. **Worst-case loss, attack × defense** — annotated heatmaps (one per dataset, a
   panel per mechanism) and the same numbers as tables
   (:func:`~pluralguard.eval.aggregates.worst_case`).
4. **Defenses** — ranking by worst case over attacks beside clean cost, and the
   defenses that never help
   (:func:`~pluralguard.eval.aggregates.rank_defenses`).
5. **Agreement solver vs single consensus** — for every such pair of mechanisms on a
   dataset: clean honest utility and worst-case loss per attack.
6. **Attack summary** — key aggregates per attack.
7. **Certified bounds** — next to the worst attack found, the proved worst case of any
   attack: coverage per mechanism, verdicts (tight / gap / undecided), found vs
   certified per attack × defense, defenses ranked by their certified worst case, and
   the worst case bracketed on small populations
   (:func:`~pluralguard.eval.aggregates.certified_worst_case`).

What the numbers are — worst cases, envelopes, rankings — is defined in
:mod:`~pluralguard.eval.aggregates`; reading the directory in
:mod:`~pluralguard.eval.results`; this module only renders them.

It is one piece above ~500 lines because its sections render one document and share
its figure namer, its table format and its wording of the loss; every number it states
comes from the modules above.

Everything is deterministic: the same results give a byte-identical ``report.md`` and
identical PNGs (no timestamps, paths or versions are written).
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping, Sequence
from itertools import product
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from pluralguard.core.params import Instance, Options, OrNone, validate_params

from . import certificate_table, plots, sanity
from .aggregates import (
    LOSS,
    LOSSES,
    TOL,
    attack_summary,
    certified_worst_case,
    curve_table,
    defense_order,
    mechanism_kind,
    never_helping,
    no_effect,
    rank_defenses,
    rank_defenses_certified,
    worst_case,
)
from .columns import IDENTITY, NONE, numeric
from .coverage import attack_coverage, not_run_groups
from .markdown import budget_text, frame_table, pipe_table, significant
from .metrics import METRICS
from .results import (
    RESULTS,
    SUMMARY,
    check_results,
    defense_targets,
    load_mechanism_kinds,
    load_results,
    load_summary,
)
from .sanity import Flag
from .store import atomic_write

REPORT = "report.md"
FIGURES = "figures"
#: Offending rows listed per sanity flag.
MAX_LISTED = 20

_FIGURE_PREFIXES = ("curves_", "heatmap_", "defenses_", "mechanisms_")
_SCOPE = ["dataset", "mechanism"]


# ------------------------------------------------------------------ formatting
def _table(frame: pd.DataFrame) -> str:
    """The report's pipe table: 4 significant digits, numbers right-aligned."""
    return frame_table(frame, cell=significant, align_numbers=True)


def _names(values: Sequence[str]) -> str:
    return ", ".join(f"`{v}`" for v in values) if len(values) else "—"


class _Figures:
    """Unique, stable file names under ``DIR/figures``; removes stale report PNGs."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.written: list[str] = []

    def save(self, fig: Figure, prefix: str, *parts: str) -> str:
        stem = prefix + "_".join(re.sub(r"[^0-9A-Za-z._]+", "-", p).strip("-").lower()
                                 for p in parts)
        name, k = f"{stem}.png", 2
        while name in self.written:
            name, k = f"{stem}-{k}.png", k + 1
        self.root.mkdir(parents=True, exist_ok=True)
        plots.save_png(fig, self.root / name)
        self.written.append(name)
        return f"{FIGURES}/{name}"

    def prune(self) -> None:
        if not self.root.is_dir():
            return
        for path in sorted(self.root.glob("*.png")):
            if path.name.startswith(_FIGURE_PREFIXES) and path.name not in self.written:
                path.unlink()


# ------------------------------------------------------------------ the report
@validate_params({"results_dir": Instance((str, os.PathLike), "a results directory",
                                          "'results/demo'"),
                  "title": OrNone(Instance((str,), "a title", "'My report'")),
                  "loss": Options(LOSSES)})
def write_report(results_dir: str | Path, *, title: str | None = None,
                 loss: str = LOSS) -> Path:
    """Write ``DIR/report.md`` and its figures from ``DIR/results.csv``.

    Parameters
    ----------
    results_dir : path
        A results directory (``results.csv``; optionally ``summary.json`` and
        ``suite.resolved.json``).
    title : str, optional
        First heading; default "pluralguard robustness report".
    loss : str
        Worst-case metric, one of :data:`LOSSES` (module doc).

    Returns
    -------
    Path
        The report file. Figures go to ``DIR/figures/`` (report PNGs left there by an
        earlier report and not written now are removed).

    Raises
    ------
    InputError
        Missing or malformed ``results.csv``, malformed ``summary.json`` or
        ``suite.resolved.json`` (both optional), or an unknown ``loss``.
    """
    root = Path(results_dir)
    results = load_results(root)
    summary = load_summary(root)
    notes = check_results(root, results, summary)
    figures = _Figures(root / FIGURES)
    styles = plots.defense_styles(defense_order(results["defense"]))
    loss_label = f"worst-case honest utility loss (max over budgets and seeds of {loss})"
    targets = defense_targets(summary)
    ranking = rank_defenses(results, loss, targets, list((summary or {}).get("failed") or []))
    worst = worst_case(results, loss)

    flags = sanity.with_recorded(results, summary)
    parts = [_header(results, title, loss, summary, notes, flags),
             _sanity_section(flags),
             _curves_section(results, loss, styles, figures),
             _heatmap_section(worst, loss, loss_label, figures),
             _defense_section(ranking, loss_label, figures, targets, results),
             _mechanism_section(results, worst, load_mechanism_kinds(root), loss_label,
                                figures),
             _summary_section(results),
             _certificate_section(results, loss)]
    figures.prune()
    path = root / REPORT
    atomic_write(path, "\n\n".join(parts).rstrip() + "\n")
    return path


def _header(results: pd.DataFrame, title: str | None, loss: str,
            summary: Mapping[str, Any], notes: Sequence[str],
            flags: Sequence[Flag]) -> str:
    """The first screen: what ran, what did not and why, failures, raised flags."""
    attacked = results["attack"] != NONE
    budgets = sorted(results.loc[attacked, "budget"].dropna().unique())
    seeds = sorted(int(s) for s in results["seed"].dropna().unique())
    counts = summary.get("counts") or {}
    lines = [f"# {title or 'pluralguard robustness report'}", ""]
    if summary and not summary.get("complete", True):
        lines += [f"> **Partial results**: {counts.get('finished', len(results)):,} of "
                  f"{counts.get('grid', 0):,} grid points finished (the run was "
                  "interrupted, or is still running). Rerun the same `pluralguard run` "
                  "command to finish it (finished runs are reused), then report again.",
                  ""]
    lines += [f"> **Warning**: {note}" for note in notes]
    lines += [""] if notes else []
    lines += ["## What ran, what did not, and why", ""]
    if counts:
        suite = (summary.get("suite") or {}).get("name", "")
        lines.append(
            f"Suite `{suite}`: {counts.get('grid', 0):,} grid points. "
            f"**{len(results):,} ran** ({int(attacked.sum()):,} attacked, "
            f"{int((~attacked).sum()):,} no-attack baselines); "
            f"**{counts.get('not_applicable', 0):,} did not apply**; "
            f"**{counts.get('failed', 0):,} failed**.")
    else:
        lines.append(f"From `{RESULTS}`: {len(results)} runs ({int(attacked.sum())} attacked, "
                     f"{int((~attacked).sum())} no-attack baselines). No `{SUMMARY}`: "
                     "what did not run is unknown.")
    single = bool(budgets) and results[attacked].groupby(
        [*_SCOPE, "attack", "defense", "seed"])["budget"].nunique().max() == 1
    lines += [
        "",
        f"* datasets: {_names(sorted(results['dataset'].unique()))}",
        f"* mechanisms: {_names(sorted(results['mechanism'].unique()))}",
        f"* defenses: {_names(defense_order(results['defense']))}",
        f"* budgets: {', '.join(budget_text(b) for b in budgets) or '—'}"
        + (" (one per attack, so no security curves)" if single else ""),
        f"* seeds: {', '.join(map(str, seeds)) or '—'}",
    ]
    if summary:
        lines += ["", *_coverage_lines(results, summary)]
    raised = [f for f in flags if f.raised]
    lines += ["", f"**Sanity flags** (§1): {len(raised)} of {len(flags)} raised"
              + (" — what each means:" if raised else ".")]
    if raised:
        lines.append("")
    lines += [f"* **{f.title}** — {_own_finding(f)} *Meaning:* {f.meaning}." if f.meaning
              else f"* **{f.title}** — {_own_finding(f)}" for f in raised]
    infinite = any(math.isinf(b) for b in budgets)
    lines += [
        "",
        "**Worst-case loss** below is the maximum over budgets"
        + (" (∞ included)" if infinite else "") + " and seeds of "
        f"`{loss}` ({METRICS[loss].formula}); honest utility loss is u_i(clean) − "
        "u_i(attacked) on honest agents' true value systems, so negative values mean the "
        "honest agents gained.",
    ]
    return "\n".join(lines)


_PREFIX = re.compile(r"^attack '[^']*' does not apply to mechanism '[^']*': ")
_RUNNER_SAYS = " The runner (summary.json) reports"


def _own_finding(flag: Flag) -> str:
    """A flag's finding without the runner's restatement (for the first screen)."""
    return flag.finding.split(_RUNNER_SAYS)[0]


def _coverage_lines(results: pd.DataFrame, summary: Mapping[str, Any]) -> list[str]:
    """Per attack: grid points that ran (undefended too?), did not apply, failed; then
    why the others did not apply, grouped, and the failed runs."""
    coverage = attack_coverage(results, summary)
    undefended = set(results.loc[(results["attack"] != NONE)
                                 & (results["defense"] == NONE), "attack"])
    table = pd.DataFrame({
        "attack": [c.attack for c in coverage], "ran": [c.ran for c in coverage],
        "ran undefended": ["yes" if c.attack in undefended else "**no**"
                           for c in coverage],
        "did not apply": [c.not_applicable for c in coverage],
        "failed": [c.failed for c in coverage]})
    lines = [_table(table)]
    never = [c.attack for c in coverage if c.ran == 0]
    partial = [c.attack for c in coverage if c.ran and c.attack not in undefended]
    if never:
        lines += ["", f"Never ran: {_names(never)}."]
    if partial:
        lines += ["", f"Ran only under defenses, never undefended (so no defense can be "
                      f"judged against it): {_names(partial)}."]
    all_defenses = (set((summary.get("grid_labels") or {}).get("defenses", {}))
                    or set(results["defense"]))
    groups = not_run_groups(summary.get("not_applicable") or [])
    if groups:
        lines += ["", "**Did not apply** — the attack needs something the mechanism does "
                      "not have; recorded with the recipe's reason, not an error:", ""]
        for g in groups:
            where = [", ".join(f"`{d}`" for d in g.datasets)]
            missing = sorted(all_defenses - set(g.defenses))
            if not missing:
                where.append("every defense")
            elif len(missing) <= 2 and len(g.defenses) > len(missing):
                where.append("every defense but " + ", ".join(f"`{d}`" for d in missing))
            else:
                where.append("defenses " + ", ".join(f"`{d}`" for d in g.defenses))
            why = _PREFIX.sub("", g.problem)
            lines.append(f"* `{g.attack}` × `{g.mechanism}` ({g.points} grid points: "
                         f"{'; '.join(where)}): {why}."
                         + (f" To run it: {g.fix}." if g.fix else ""))
    failed = summary.get("failed") or []
    if failed:
        lines += ["", f"**Failed runs** ({len(failed)}; tracebacks in `{SUMMARY}`; a rerun "
                      "computes them again):", ""]
        lines += [f"* {f.get('dataset')}/{f.get('mechanism')}/{f.get('attack')}@"
                  f"{significant(f.get('budget'))}/{f.get('defense')}/seed {f.get('seed')}: "
                  f"{f.get('error')}" for f in failed[:MAX_LISTED]]
        if len(failed) > MAX_LISTED:
            lines.append(f"* … and {len(failed) - MAX_LISTED} more (see `{SUMMARY}`).")
    return lines


def _sanity_section(flags: list[Flag]) -> str:
    raised = [f for f in flags if f.raised]
    lines = ["## 1. Sanity flags", ""]
    if raised:
        lines.append(f"**{len(raised)} raised:** " + ", ".join(f.title for f in raised) + ".")
    else:
        lines.append("**None raised.**")
    lines += ["", *pipe_table(["check", "status", "finding"],
                              [(f.title, "**RAISED**" if f.raised else "clear", f.finding)
                               for f in flags])]
    for flag in raised:
        lines += ["", f"### {flag.title.capitalize()}", ""]
        if flag.meaning:
            lines += [f"*What it means:* {flag.meaning}.", ""]
        if flag.rows.empty:
            lines.append(flag.finding)
            continue
        shown = flag.rows.head(MAX_LISTED)
        lines += ["Runs:", "", _table(shown)]
        if len(flag.rows) > MAX_LISTED:
            lines += ["", f"… and {len(flag.rows) - MAX_LISTED} more (see `{RESULTS}`)."]
    return "\n".join(lines)


def _curves_section(results: pd.DataFrame, loss: str,
                    styles: Mapping[str, Mapping[str, Any]], figures: _Figures) -> str:
    labels = {"utility_loss_mean": "honest loss, mean", loss: f"honest loss, {loss[13:]}",
              "capture": "capture"}
    data = curve_table(results, list(labels))
    lines = ["## 2. Security curves", ""]
    if data.empty:
        return "\n".join([*lines, "No attacked runs."])
    attacked = results[results["attack"] != NONE]
    spans = attacked.groupby("attack")["budget"].nunique()
    single = sorted(spans.index[spans < 2])
    if not (spans >= 2).any():
        return "\n".join([*lines, "Every attack ran at a single budget here, so there are "
                          "no curves to draw: their worst cases are in §3 and §4. A suite "
                          "that gives attacks several budgets (`budgets = \"curve\"`, or a "
                          "list) draws a security curve per attack."])
    lines.append("Seed means (bands, or error bars when there are more than "
                 f"{plots.MAX_BANDS} defenses: min–max over seeds) against the attack "
                 "budget, one line per defense. Each point is the worst the attack did "
                 "with that budget *or any smaller one* (an attacker may always spend "
                 "less), so the curves never fall; raw rows are in results.csv. Capture "
                 "is the target group's normalised displacement toward the attacker's "
                 "point (1 = fully captured)."
                 + (" The ∞ budget sits past the dashed separator."
                    if np.isinf(data["budget"]).any() else "")
                 + (f" Attacks run at a single budget show as single points: "
                    f"{_names(single)}." if single else ""))
    for (dataset, mechanism), part in data.groupby(_SCOPE, sort=True):
        shown = {m: lbl for m, lbl in labels.items() if part[f"{m}_mean"].notna().any()}
        lines += ["", f"### {dataset} · {mechanism}", ""]
        if not shown:
            lines.append("No loss or capture values to plot.")
            continue
        fig = plots.security_curves(part, shown, styles,
                                    f"Security curves — {dataset} · {mechanism}")
        src = figures.save(fig, "curves_", dataset, mechanism)
        lines.append(f"![security curves]({src})")
    return "\n".join(lines)


def _pivot(grid: pd.DataFrame) -> pd.DataFrame:
    table = grid.pivot(index="attack", columns="defense", values="worst_case_loss")
    return table[defense_order(table.columns)]


def _heatmap_section(worst: pd.DataFrame, loss_metric: str, loss_label: str,
                     figures: _Figures) -> str:
    lines = ["## 3. Worst-case loss: attack × defense", ""]
    if worst.empty:
        return "\n".join([*lines, "No attacked runs."])
    gained = bool((worst["worst_case_loss"] < -TOL).any())
    pairs = worst.groupby([*_SCOPE])[["attack", "defense"]].nunique()
    missing = len(worst) < int((pairs["attack"] * pairs["defense"]).sum())
    lines.append(f"Cells: {loss_label}. Red is worse"
                 + ("; where honest agents gained the scale turns blue" if gained else "")
                 + ("; — marks a pair that was not run (the first section says why)"
                    if missing else "") + ".")
    for dataset, per_data in worst.groupby("dataset", sort=True):
        tables = {m: _pivot(g) for m, g in per_data.groupby("mechanism", sort=True)}
        fig = plots.heatmaps(tables, f"Worst-case honest utility loss — {dataset}",
                             f"worst-case loss: max of {loss_metric}")
        src = figures.save(fig, "heatmap_", dataset)
        lines += ["", f"### {dataset}", "", f"![attack × defense heatmap]({src})"]
        for mechanism, table in tables.items():
            lines += ["", f"**{mechanism}**", "",
                      _table(table.rename_axis(None, axis=1).reset_index())]
    return "\n".join(lines)


def _defense_section(ranking: pd.DataFrame, loss_label: str, figures: _Figures,
                     targets: Mapping[str, Sequence[str]] | None = None,
                     results: pd.DataFrame | None = None) -> str:
    lines = ["## 4. Defenses: worst case over attacks and clean cost", ""]
    if ranking.empty:
        return "\n".join([*lines, "No attacked runs, so no ranking."])
    lines.append(f"Ranked by worst case over attacks (max over attacks of the {loss_label}), "
                 "ascending — the min–max choice ByzFL makes. Clean cost: mean "
                 "`defense_cost` with no attack (utility the defense takes from everyone). "
                 "*Helps against*: attacks whose worst case the defense lowers below the "
                 "undefended one, of those run both ways. A defense *never helps* when it "
                 "lowers the worst case of none of the attacks it is designed against "
                 "(its targets) that ran both ways and did harm undefended; one without "
                 "such a target is not judged; one whose every run equals the undefended "
                 "one has *no effect* on that mechanism (it acts on something the "
                 "mechanism does not have).")
    never = never_helping(ranking)
    inert: dict[tuple[str, str], list[str]] = {}
    for dataset, per_data in ranking.groupby("dataset", sort=True):
        per_mech = {m: g for m, g in per_data.groupby("mechanism", sort=True)}
        fig = plots.defense_bars(per_mech, f"Defenses — {dataset}",
                                 "worst case over attacks")
        src = figures.save(fig, "defenses_", dataset)
        lines += ["", f"### {dataset}", "", f"![defense ranking and clean cost]({src})"]
        for mechanism, g in per_mech.items():
            table = pd.DataFrame({
                "rank": g["rank"], "defense": g["defense"],
                "worst case": g["worst_case_loss"], "worst attack": g["worst_attack"],
                "clean cost": g["clean_cost"],
                "helps against": [f"{h}/{c}" if d != NONE and c else "—" for d, h, c in zip(
                    g["defense"], g["attacks_helped"], g["attacks_compared"], strict=True)]})
            if g["runs_failed"].any():  # not attacked in full: ranked after the others
                table["failed runs"] = g["runs_failed"].to_numpy()
            noop = (no_effect(results, dataset, mechanism) if results is not None
                    else [])
            inert[(dataset, mechanism)] = noop
            nh = [d for d in never[(dataset, mechanism)] if d not in noop]
            has_base = NONE in set(g["defense"])
            acting = (g["defense"] != NONE) & ~g["defense"].isin(noop)
            judged = acting & (g["targeted_compared"] > 0)
            unjudged = sorted(g.loc[acting & ~judged, "defense"]) if has_base else []
            verdict = ("No undefended runs to compare with." if not has_base else
                       "Never helps against the attacks it targets: " + _names(nh) + "."
                       if nh else
                       "Every defense that acts here and was judged helps against at least "
                       "one attack it targets." if judged.any() else "")
            lines += ["", f"**{mechanism}**", "", _table(table)]
            lines += ["", verdict] if verdict else []
            partial = sorted(g.loc[g["runs_failed"] > 0, "defense"])
            if partial:
                lines += ["", "Ranked after the others, since some of their runs failed "
                          "(they were not attacked in full, so their worst case may be too "
                          "low): " + _names(partial) + "."]
            if noop:
                lines += ["", "No effect on this mechanism (every run equals the undefended "
                          "one): " + _names(noop) + "."]
            if unjudged:
                lines += ["", "Not judged (none of the attacks they target both ran here with "
                          "and without them and did harm undefended): " + ", ".join(
                              f"`{d}`" + (f" (targets {', '.join(targets[d])})"
                                          if targets and targets.get(d) else "")
                              for d in unjudged) + "."]
    everywhere = sorted(set.intersection(*[set(v) for v in never.values()]))
    idle = sorted(set.intersection(*[set(v) for v in inert.values()])) if inert else []
    acting = [d for d in everywhere if d not in idle]
    if len(never) > 1 and acting:
        lines += ["", f"Never helps in any of the {len(never)} dataset × mechanism "
                      "combinations: " + _names(acting) + "."]
    if len(inert) > 1 and idle:
        lines += ["", f"No effect in any of the {len(inert)} dataset × mechanism "
                      "combinations: " + _names(idle) + "."]
    return "\n".join(lines)


def _mechanism_section(results: pd.DataFrame, worst: pd.DataFrame,
                       kinds: Mapping[str, str], loss_label: str, figures: _Figures) -> str:
    baseline = results[(results["attack"] == NONE) & (results["defense"] == NONE)]
    lines: list[str] = []
    for dataset in sorted(results["dataset"].unique()):
        mechs = sorted(results.loc[results["dataset"] == dataset, "mechanism"].unique())
        agree = [m for m in mechs if mechanism_kind(m, kinds) == "agreements"]
        cons = [m for m in mechs if mechanism_kind(m, kinds) == "consensus"]
        if not agree or not cons:
            continue
        lines += ["", f"### {dataset}"]
        pairs = []
        for a, c in product(agree, cons):
            util, table = _comparison(baseline, worst, dataset, a, c)
            pairs.append((a, c, util, _undefended(worst, dataset, [a, c])))
            lines += ["", f"**{a}** vs **{c}**", "", _table(table)]
        fig = plots.mechanism_comparison(pairs, f"Agreement solver vs single consensus — "
                                                f"{dataset}", "worst-case loss, undefended")
        src = figures.save(fig, "mechanisms_", dataset)
        lines += ["", f"![agreement solver vs single consensus]({src})"]
    intro = ("Clean rows: no attack, no defense, mean over seeds. Worst-case rows: "
             f"{loss_label}, undefended and with the best defense run (named); — marks an "
             "attack that did not run there (the first section says why)." if lines else
             "No dataset has both an agreement-solver and a single-consensus mechanism in "
             "these results.")
    return "\n".join(["## 5. Agreement solver vs single consensus", "", intro, *lines])


def _undefended(worst: pd.DataFrame, dataset: str, mechs: list[str]) -> pd.DataFrame:
    sub = worst[(worst["dataset"] == dataset) & (worst["defense"] == NONE)
                & worst["mechanism"].isin(mechs)]
    table = sub.pivot(index="attack", columns="mechanism", values="worst_case_loss")
    return table.reindex(columns=mechs)


def _comparison(baseline: pd.DataFrame, worst: pd.DataFrame, dataset: str, a: str, c: str
                ) -> tuple[pd.DataFrame, pd.DataFrame]:
    mechs = [a, c]
    clean = baseline[baseline["dataset"] == dataset].groupby("mechanism")[
        ["honest_utility_mean", "honest_utility_p10", "honest_utility_min",
         "n_groups_clean"]].mean().reindex(mechs)
    util = pd.DataFrame({m: [clean.loc[m, f"honest_utility_{s}"] for s in ("mean", "p10",
                                                                             "min")]
                         for m in mechs}, index=["mean", "p10", "min"])
    rows: list[list[Any]] = [
        ["honest utility mean (clean)", *clean["honest_utility_mean"]],
        ["honest utility p10 (clean)", *clean["honest_utility_p10"]],
        ["honest utility min (clean)", *clean["honest_utility_min"]],
        ["groups (clean)", *clean["n_groups_clean"]]]
    sub = worst[(worst["dataset"] == dataset) & worst["mechanism"].isin(mechs)]
    for attack in sorted(sub["attack"].unique()):
        per = sub[sub["attack"] == attack]
        und, best = [], []
        for m in mechs:
            pm = per[per["mechanism"] == m].dropna(subset=["worst_case_loss"])
            u = pm.loc[pm["defense"] == NONE, "worst_case_loss"]
            und.append(float(u.iloc[0]) if len(u) else np.nan)
            if pm.empty:
                best.append("—")
            else:
                top = pm.sort_values(["worst_case_loss", "defense"]).iloc[0]
                best.append(f"{significant(top['worst_case_loss'])} ({top['defense']})")
        rows += [[f"worst-case loss: {attack}, undefended", *und],
                 [f"worst-case loss: {attack}, best defense", *best]]
    return util, pd.DataFrame(rows, columns=["measure", *mechs])


def _summary_section(results: pd.DataFrame) -> str:
    summary = attack_summary(results)
    lines = ["## 6. Attack summary", ""]
    if summary.empty:
        return "\n".join([*lines, "No attacked runs."])
    lines.append("Per attack and defense, over budgets and seeds: worst `utility_loss_p90` "
                 "and `utility_loss_max`, mean `utility_loss_mean`, max `capture` and "
                 "`attacker_gain`, mean `attack_success` (success rate) and "
                 "`partition_change`, max `queries`.")
    for (dataset, mechanism), g in summary.groupby(_SCOPE, sort=True):
        g = g.assign(_order=g["defense"].map({d: i for i, d in
                                             enumerate(defense_order(g["defense"]))}))
        g = g.sort_values(["attack", "_order"]).drop(columns=[*_SCOPE, "_order"])
        lines += ["", f"### {dataset} · {mechanism}", "", _table(g)]
    return "\n".join(lines)


def _certificate_section(results: pd.DataFrame, loss: str) -> str:
    lines = ["## 7. Certified bounds", ""]
    if not certificate_table.has_certificates(results):
        return "\n".join([*lines, "No certificates in these results (written before "
                           "pluralguard computed them)."])
    cover = certificate_table.coverage(results)
    if cover.empty:
        return "\n".join([*lines, "No attacked runs."])
    lines += ["Next to the worst attack found, the worst *any* attack of the same threat "
              "model could do: `certified_<metric>` is a proved upper bound over every "
              "declaration within the budget (and every Sybil), `gap` = certified − found "
              "(how much an evaluation may still be missing). Undecided where nothing is "
              "provable (protocol deviation, a mechanism that is not built in); *valid "
              "set only* where a defense carries no certificate (`pluralguard.eval.certify`)."
              , "", "**Coverage** (attacked runs with a finite certificate, and the median "
              "gap per metric):", "",
              _table(cover.rename(columns=lambda c: c.replace(
                  "median_gap_", "median gap: ").replace("_", " ")))]
    verdict = certificate_table.verdicts(results)
    counts = certificate_table.verdict_counts(verdict)
    undefended = verdict[verdict["defense"] == NONE].drop(columns=["defense", "max_gap"])
    lines += ["", f"**Verdicts**: *tight* when every run's gap on the judged metric is at "
              f"most {certificate_table.TIGHT:g} (the attack found attains the proved worst "
              "case), *gap* otherwise, per attack × defense; the judged metric is the "
              "goal's own where it is certified (`attacker_gain` for selfish, `capture` for "
              "capture), else `utility_loss_p90`, which no attack maximises. Per attack, "
              "how many defenses give each verdict:", "",
              _table(counts.rename(columns={"tight_under": "tight under"})), "",
              "Undefended:", "", _table(undefended)]
    worst = certified_worst_case(results, loss)
    ranking = rank_defenses_certified(results, loss)
    for (dataset, mechanism), g in worst.groupby(_SCOPE, sort=True):
        cells = g.assign(cell=[f"{significant(f)} / {significant(c) if c == c else 'undecided'}"
                               for f, c in zip(g["found"], g["certified"], strict=True)])
        table = cells.pivot(index="attack", columns="defense", values="cell")
        table = table.reindex(columns=[d for d in defense_order(table.columns)])
        rank = ranking[(ranking["dataset"] == dataset) & (ranking["mechanism"] == mechanism)]
        lines += ["", f"### {dataset} · {mechanism}", "",
                  f"Worst case of `{loss}`, found / certified (max over budgets and seeds):",
                  "", _table(table.fillna("—").reset_index()), "",
                  "Defenses ranked by their certified worst case over attacks (undecided "
                  "last):", "",
                  _table(rank.drop(columns=_SCOPE).rename(columns={
                      "certified": "certified worst case", "worst_attack": "worst attack",
                      "found": "found worst case"}))]
    small = results[numeric(results, "gap_exhaustive").notna()]
    if len(small):
        lines += ["", "### Small populations: the worst case bracketed", "",
                  "Where the exhaustive reference ran, the true worst case of the goal's own "
                  "metric lies between the exhaustive optimum (an attack found, exact up to "
                  "the search's lattice) and the certificate; width 0 means it is known "
                  "exactly. The other metrics are bounded only.", "",
                  _table(small[[*IDENTITY, "goal"]].assign(
                      metric=[certificate_table.GOAL_METRIC[g] for g in small["goal"]],
                      exhaustive=small["exhaustive_optimum"].astype(float),
                      certified=[float(r[f"certified_{certificate_table.GOAL_METRIC[g]}"])
                                 for g, (_, r) in zip(small["goal"], small.iterrows(),
                                                      strict=True)],
                      width=small["gap_exhaustive"].astype(float)))]
    return "\n".join(lines)
