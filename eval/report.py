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
   changed after the run (:func:`check_results`).
1. **Sanity flags** — non-convergence, nondeterminism, adaptive search beaten by a
   fixed recipe, zero gain everywhere (:func:`sanity_flags`).
2. **Security curves** — honest utility loss (mean and the worst-case metric) and
   capture against the budget, one line per defense, one panel per attack, one
   figure per dataset × mechanism; seed means with min–max bands.
3. **Worst-case loss, attack × defense** — annotated heatmaps (one per dataset, a
   panel per mechanism) and the same numbers as tables (:func:`worst_case`).
4. **Defenses** — ranking by worst case over attacks beside clean cost, and the
   defenses that never help (:func:`rank_defenses`).
5. **Agreement solver vs single consensus** — for every such pair of mechanisms on a
   dataset: clean honest utility and worst-case loss per attack.
6. **Attack summary** — key aggregates per attack.
7. **Certified bounds** — next to the worst attack found, the proved worst case of any
   attack: coverage per mechanism, verdicts (tight / gap / undecided), found vs
   certified per attack × defense, defenses ranked by their certified worst case, and
   the worst case bracketed on small populations (:func:`certified_worst_case`).

**Worst case.** The worst-case loss of attack a against defense d is the maximum over
budgets and seeds of ``loss`` (default ``utility_loss_p90``: the loss that the worst-off
10 % of honest agents meet or exceed; ``utility_loss_max``, a single agent's loss, is
dominated by agents that switch groups). A defense's worst case over attacks is the
maximum of that over attacks; defenses are ranked by it, ascending — the min–max
(equivalently max–min honest utility) selection of ByzFL (González et al., *ByzFL:
research framework for robust federated learning*, 2025). A defense *never helps* when
its worst case is not lower than the undefended one for any attack it is designed
against (``Defense.targets``, recorded in ``summary.json``) that ran both with it and
undefended and did harm undefended; a defense without such a target is *not judged*,
and one whose every run equals the undefended one has *no effect* (:func:`no_effect`).

Everything is deterministic: the same results give a byte-identical ``report.md`` and
identical PNGs (no timestamps, paths or versions are written).
"""

from __future__ import annotations

import hashlib
import json
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

from pluralguard.core.errors import InputError
from pluralguard.core.params import Instance, Options, OrNone, validate_params

from . import certificate_table, plots, sanity
from .coverage import attack_coverage, not_run_groups
from .metrics import METRICS
from .sanity import Flag
from .store import atomic_write

#: Columns of a results row that identify the run — the same as
#: ``pluralguard.eval.scenario.IDENTITY``, kept here so that reading a results directory
#: does not import every attack and defense.
IDENTITY = ("dataset", "mechanism", "attack", "budget", "defense", "seed")
RESULTS = "results.csv"
SUMMARY = "summary.json"
RESOLVED = "suite.resolved.json"
REPORT = "report.md"
FIGURES = "figures"

#: The name of "no attack" and "no defense" in results.csv.
NONE = "none"
#: Default worst-case metric.
LOSS = "utility_loss_p90"
#: Metrics a worst case may be taken over.
LOSSES = ("utility_loss_p90", "utility_loss_max", "utility_loss_mean")
#: Absolute tolerance of every comparison (gains, losses, "helps").
TOL = 1e-9
#: Offending rows listed per sanity flag.
MAX_LISTED = 20

_FIGURE_PREFIXES = ("curves_", "heatmap_", "defenses_", "mechanisms_")
_SCOPE = ["dataset", "mechanism"]


# ------------------------------------------------------------------------ loading
def load_results(results_dir: str | Path) -> pd.DataFrame:
    """Read ``DIR/results.csv`` and check it.

    Parameters
    ----------
    results_dir : path
        A directory written by ``pluralguard run --out DIR``.

    Returns
    -------
    DataFrame
        One row per run. ``attack``/``defense`` are strings (empty → ``"none"``),
        ``budget`` is float (``inf`` allowed), every metric of
        :data:`~pluralguard.eval.metrics.METRICS` is a float column (NaN when absent).

    Raises
    ------
    InputError
        When the file is missing or unreadable, lacks an identity column, has no rows,
        or holds a non-numeric metric.
    """
    path = Path(results_dir) / RESULTS
    if not path.is_file():
        if (path.parent / "runs.jsonl").is_file():
            raise InputError("results_dir", f"{path} does not exist yet: the run stopped "
                             "before its first batch finished",
                             "rerun the same `pluralguard run` command to resume it")
        raise InputError("results_dir", f"{path} does not exist",
                         "pass the directory written by `pluralguard run --out DIR`, "
                         f"which holds {RESULTS}")
    try:
        frame = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise InputError(RESULTS, f"{path} is not a readable CSV ({exc})",
                         "rerun the suite to rewrite it") from None
    missing = [c for c in IDENTITY if c not in frame.columns]
    if missing:
        raise InputError(f"{RESULTS}:{missing[0]}", f"column {missing[0]!r} is missing",
                         f"results.csv needs the columns {', '.join(IDENTITY)}")
    if frame.empty:
        raise InputError(RESULTS, f"{path} has no rows", "run a suite first")
    for col in ("dataset", "mechanism"):
        frame[col] = frame[col].astype(str)
    for col in ("attack", "defense"):
        frame[col] = frame[col].fillna(NONE).astype(str)
    frame["goal"] = frame["goal"].fillna("").astype(str) if "goal" in frame else ""
    for col in ("budget", "seed", *METRICS):
        if col not in frame:
            frame[col] = np.nan
            continue
        values = pd.to_numeric(frame[col], errors="coerce")
        bad = values.isna() & frame[col].notna()
        if bad.any():
            i = int(np.flatnonzero(bad.to_numpy())[0])
            raise InputError(f"{RESULTS}:{col}",
                             f"non-numeric value {frame[col].iloc[i]!r} on line {i + 2}",
                             "metrics must be numbers (NaN when they do not apply)")
        frame[col] = values.astype(float)
    return frame


def _read_json(results_dir: str | Path, name: str) -> dict[str, Any]:
    """Read ``DIR/name`` as a JSON object (``{}`` when absent)."""
    path = Path(results_dir) / name
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(name, f"{path} is not valid JSON ({exc})",
                         "rerun the suite to rewrite it, or delete the file") from None
    if not isinstance(data, dict):
        raise InputError(name, f"{path} holds a {type(data).__name__}, not an object",
                         "rerun the suite to rewrite it, or delete the file")
    return data


def load_summary(results_dir: str | Path) -> dict[str, Any]:
    """Read ``DIR/summary.json`` (``{}`` when absent)."""
    return _read_json(results_dir, SUMMARY)


# ------------------------------------------------------------------ sanity flags
def sanity_flags(results: pd.DataFrame, summary: Mapping[str, Any] | None = None
                 ) -> list[Flag]:
    """The sanity checks of :mod:`~pluralguard.eval.sanity` on a results table, merged
    with what the runner recorded in ``summary.json``.

    Every check is computed from ``results`` itself; a flag the runner recorded in
    ``summary["sanity"][name]`` (it also recomputes runs to test nondeterminism) is
    merged in (:func:`~pluralguard.eval.sanity.merge_recorded`): raised when either
    says so. Flags the runner recorded that this module does not know follow, by name.

    Returns
    -------
    list of Flag
        In the order of :data:`~pluralguard.eval.sanity.TABLE_CHECKS`, then the
        runner's other flags.
    """
    runner = (summary or {}).get("sanity") or {}
    if not isinstance(runner, Mapping):
        runner = {}
    flags = [sanity.merge_recorded(flag, runner.get(flag.name))
             for flag in sanity.check(results)]
    flags += [sanity.merge_recorded(Flag(str(name), str(name).replace("_", " "), False,
                                         "Computed by the runner only."), entry)
              for name, entry in sorted(runner.items(), key=lambda kv: str(kv[0]))
              if name not in sanity.CHECKS]
    return flags


# ------------------------------------------------------------------ aggregates
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
                                             "recipe names", "{'sybil_cap': ['sybil']}"))})
def rank_defenses(results: pd.DataFrame, loss: str = LOSS,
                  targets: Mapping[str, Sequence[str]] | None = None) -> pd.DataFrame:
    """Rank defenses by their worst case over attacks, per dataset × mechanism.

    For defense d: worst(d) = max over attacks a of :func:`worst_case` (a, d). Ranked
    ascending (rank ties share the lower rank); ties are listed by clean cost, then
    ``none`` first, then name. ``attacks_helped`` counts the attacks where
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

    Returns
    -------
    DataFrame
        Columns ``dataset, mechanism, rank, defense, worst_case_loss, worst_attack,
        clean_cost, attacks_helped, attacks_compared, never_helps, targeted_compared``.
    """
    worst = worst_case(results, loss)
    recipes = _recipes(results)
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
                         "never_helps": never, "targeted_compared": targeted})
        part = pd.DataFrame(rows)
        part.insert(2, "rank", part["worst_case_loss"].rank(method="min").astype(int))
        part["_base"] = part["defense"] != NONE
        parts.append(part.sort_values(["rank", "clean_cost", "_base", "defense"],
                                      na_position="last"))
    columns = [*_SCOPE, "rank", "defense", "worst_case_loss", "worst_attack", "clean_cost",
               "attacks_helped", "attacks_compared", "never_helps", "targeted_compared"]
    if not parts:
        return pd.DataFrame(columns=columns)
    ranking = pd.concat(parts, ignore_index=True)[columns]
    ranking["never_helps"] = ranking["never_helps"].astype("boolean")
    return ranking


def _recipes(results: pd.DataFrame) -> dict[str, str]:
    """Attack label → recipe name (the ``recipe`` column, else the label up to ``(``)."""
    attacked = results[results["attack"] != NONE]
    if "recipe" in attacked:
        pairs = attacked[["attack", "recipe"]].dropna().drop_duplicates("attack")
        named = dict(zip(pairs["attack"].astype(str), pairs["recipe"].astype(str),
                         strict=True))
    else:
        named = {}
    return {str(a): named.get(str(a), str(a).split("(")[0])
            for a in attacked["attack"].unique()}


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


def load_mechanism_kinds(results_dir: str | Path) -> dict[str, str]:
    """Mechanism label → kind from ``DIR/suite.resolved.json`` (``{}`` when absent)."""
    mechanisms = _read_json(results_dir, RESOLVED).get("mechanisms")
    return {str(m["name"]): str(m["kind"]) for m in mechanisms or []
            if isinstance(m, Mapping) and "name" in m and "kind" in m}


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
        lambda b: ", ".join(plots.budget_label(x) for x in sorted(b.dropna().unique()))))
    return out.reset_index()


# ------------------------------------------------------------------ certificates
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


# ------------------------------------------------------------------ formatting
def _fmt(value: Any) -> str:
    if value is None or value is pd.NA:
        return "—"
    if isinstance(value, bool | np.bool_):
        return "yes" if value else "no"
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        v = float(value)
        if math.isnan(v):
            return "—"
        if math.isinf(v):
            return "∞" if v > 0 else "−∞"
        return f"{v + 0.0:.4g}"
    return str(value)


def _md_table(frame: pd.DataFrame) -> str:
    """A pipe table; numeric columns right-aligned, NaN as —, ``|`` escaped."""
    def cell(v: Any) -> str:
        return _fmt(v).replace("|", "\\|")

    numeric = [pd.api.types.is_numeric_dtype(frame[c]) and not pd.api.types.is_bool_dtype(
        frame[c]) for c in frame.columns]
    head = "| " + " | ".join(cell(c) for c in frame.columns) + " |"
    rule = "|" + "|".join("---:" if n else "---" for n in numeric) + "|"
    body = ["| " + " | ".join(cell(v) for v in row) + " |"
            for row in frame.itertuples(index=False)]
    return "\n".join([head, rule, *body])


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
    targets = _targets(summary)
    ranking = rank_defenses(results, loss, targets)
    worst = worst_case(results, loss)

    flags = sanity_flags(results, summary)
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


def _targets(summary: Mapping[str, Any]) -> dict[str, list[str]] | None:
    """Defense label → the recipes it targets, from ``summary.json`` (None when the
    summary predates it: then every attack judges a defense)."""
    defenses = (summary.get("grid_labels") or {}).get("defenses")
    if not isinstance(defenses, Mapping):
        return None
    return {str(label): [str(t) for t in entry.get("targets", [])]
            for label, entry in defenses.items() if isinstance(entry, Mapping)}


def check_results(results_dir: str | Path, results: pd.DataFrame,
                  summary: Mapping[str, Any]) -> list[str]:
    """Cross-check ``results.csv`` against ``summary.json``; return warnings.

    Raises
    ------
    InputError
        ``results.csv`` ends mid-row, or holds another number of rows than the
        summary counts (cut, or written by another run): the fix reruns the suite,
        which rebuilds it from the store without recomputing.
    """
    path = Path(results_dir) / RESULTS
    fix = ("rerun the same `pluralguard run` command with this --out: it rebuilds "
           f"{RESULTS} from the stored runs without computing them again")
    with open(path, "rb") as fh:
        fh.seek(-1, 2)
        if fh.read(1) != b"\n":
            raise InputError(RESULTS, f"{path} ends mid-row (cut off)", fix)
    files = (summary.get("files") or {}).get(RESULTS) or {}
    expected = files.get("rows", (summary.get("counts") or {}).get("rows"))
    if expected is not None and expected != len(results):
        raise InputError(RESULTS, f"{path} has {len(results):,} rows but {SUMMARY} counts "
                         f"{expected:,} (one of them was cut, edited or replaced)", fix)
    stated = files.get("sha256")
    if stated and hashlib.sha256(path.read_bytes()).hexdigest() != stated:
        return [f"`{RESULTS}` differs from the file the run wrote (its checksum in "
                f"`{SUMMARY}` does not match): it was edited after the run; this report "
                "shows it as it is now."]
    return []


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
        f"* budgets: {', '.join(plots.budget_label(b) for b in budgets) or '—'}"
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
    lines = [_md_table(table)]
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
                  f"{_fmt(f.get('budget'))}/{f.get('defense')}/seed {f.get('seed')}: "
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
    lines += ["", "| check | status | finding |", "|---|---|---|"]
    lines += [f"| {f.title} | {'**RAISED**' if f.raised else 'clear'} | "
              f"{f.finding.replace('|', chr(92) + '|')} |" for f in flags]
    for flag in raised:
        lines += ["", f"### {flag.title.capitalize()}", ""]
        if flag.meaning:
            lines += [f"*What it means:* {flag.meaning}.", ""]
        if flag.rows.empty:
            lines.append(flag.finding)
            continue
        shown = flag.rows.head(MAX_LISTED)
        lines += ["Runs:", "", _md_table(shown)]
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
                      _md_table(table.rename_axis(None, axis=1).reset_index())]
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
            lines += ["", f"**{mechanism}**", "", _md_table(table)]
            lines += ["", verdict] if verdict else []
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
            lines += ["", f"**{a}** vs **{c}**", "", _md_table(table)]
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
                best.append(f"{_fmt(top['worst_case_loss'])} ({top['defense']})")
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
        lines += ["", f"### {dataset} · {mechanism}", "", _md_table(g)]
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
              _md_table(cover.rename(columns=lambda c: c.replace(
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
              _md_table(counts.rename(columns={"tight_under": "tight under"})), "",
              "Undefended:", "", _md_table(undefended)]
    worst = certified_worst_case(results, loss)
    ranking = rank_defenses_certified(results, loss)
    for (dataset, mechanism), g in worst.groupby(_SCOPE, sort=True):
        cells = g.assign(cell=[f"{_fmt(f)} / {_fmt(c) if c == c else 'undecided'}"
                               for f, c in zip(g["found"], g["certified"], strict=True)])
        table = cells.pivot(index="attack", columns="defense", values="cell")
        table = table.reindex(columns=[d for d in defense_order(table.columns)])
        rank = ranking[(ranking["dataset"] == dataset) & (ranking["mechanism"] == mechanism)]
        lines += ["", f"### {dataset} · {mechanism}", "",
                  f"Worst case of `{loss}`, found / certified (max over budgets and seeds):",
                  "", _md_table(table.fillna("—").reset_index()), "",
                  "Defenses ranked by their certified worst case over attacks (undecided "
                  "last):", "",
                  _md_table(rank.drop(columns=_SCOPE).rename(columns={
                      "certified": "certified worst case", "worst_attack": "worst attack",
                      "found": "found worst case"}))]
    small = results[_numeric_column(results, "gap_exhaustive").notna()]
    if len(small):
        lines += ["", "### Small populations: the worst case bracketed", "",
                  "Where the exhaustive reference ran, the true worst case of the goal's own "
                  "metric lies between the exhaustive optimum (an attack found, exact up to "
                  "the search's lattice) and the certificate; width 0 means it is known "
                  "exactly. The other metrics are bounded only.", "",
                  _md_table(small[[*IDENTITY, "goal"]].assign(
                      metric=[certificate_table.GOAL_METRIC[g] for g in small["goal"]],
                      exhaustive=small["exhaustive_optimum"].astype(float),
                      certified=[float(r[f"certified_{certificate_table.GOAL_METRIC[g]}"])
                                 for g, (_, r) in zip(small["goal"], small.iterrows(),
                                                      strict=True)],
                      width=small["gap_exhaustive"].astype(float)))]
    return "\n".join(lines)


def _numeric_column(frame: pd.DataFrame, column: str) -> pd.Series:
    if column not in frame:
        return pd.Series(np.nan, index=frame.index)
    return pd.to_numeric(frame[column], errors="coerce")
