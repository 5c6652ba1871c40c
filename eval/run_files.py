"""What a suite run writes: ``results.csv``, ``timings.csv`` and ``summary.json``, and the
terminal's summary table.

:func:`write_files` rebuilds the three files from the finished runs of the store, in
grid order (:mod:`~pluralguard.eval.runner` describes each file); ``summary.json``
carries the sanity flags of :mod:`~pluralguard.eval.sanity` — merged with the runs the
runner recomputed to test nondeterminism — so the report and the runner read one
definition. Floats are written by ``repr``, so the CSV round-trips exactly.
"""

from __future__ import annotations

import csv
import hashlib
import io
import math
import time
from collections.abc import Sequence
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pandas as pd

from pluralguard.defenses import DEFENSES

from . import sanity
from .columns import IDENTITY, NONE
from .jsonio import canonical_json, json_ready, write_json
from .provenance import code_digest
from .store import atomic_write
from .suite import GridPoint, Suite

#: Timing phases of a run, in the order ``timings.csv`` lists them.
TIMING_PHASES = ("clean", "plan", "attacked", "undefended", "total")


def _csv_cell(value: Any) -> str:
    """A CSV cell: floats by ``repr`` (exact round trip), NaN and None empty."""
    if isinstance(value, float):
        return "" if math.isnan(value) else repr(value)
    return "" if value is None else str(value)


def _write_csv(path: Path, columns: Sequence[str], rows: Sequence[dict[str, Any]]) -> str:
    """Write a CSV atomically; return the SHA-256 of its text."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows([_csv_cell(row.get(c)) for c in columns] for row in rows)
    text = buffer.getvalue()
    atomic_write(path, text)
    return hashlib.sha256(text.encode()).hexdigest()


# ------------------------------------------------------------------ summary
def _sanity(results: pd.DataFrame, reruns: dict[str, dict[str, Any]],
            stored: dict[str, dict[str, Any]], grid_by_key: dict[str, GridPoint]
            ) -> dict[str, Any]:
    """``summary.json``'s sanity flags: every check of :mod:`.sanity` on the table, and
    nondeterminism also from the sample of runs recomputed with an empty cache."""
    out = {flag.name: flag.to_summary() for flag in sanity.check(results)}
    diffs = []
    for key, rerun in reruns.items():
        before = stored.get(key, {})
        if "row" in rerun and "row" in before:  # labels aside (they may have been renamed)
            cols = [c for c in rerun["row"] if c not in IDENTITY and canonical_json(
                rerun["row"][c]) != canonical_json(before["row"].get(c))]
        else:
            cols = [] if ("skipped" in rerun) == ("skipped" in before) else ["skipped"]
        if cols:
            diffs.append({**grid_by_key[key].identity, "columns": cols})
    table = out["nondeterminism"]
    out["nondeterminism"] = {
        **table, "raised": table["raised"] or bool(diffs),
        "description": sanity.CHECKS["nondeterminism"].description,
        "count": table["count"] + len(diffs), "details": (diffs + table["details"])[:10],
        "checked": sum("row" in r for r in reruns.values())}
    return out


def _aggregates(results: pd.DataFrame) -> dict[str, Any]:
    if results.empty:
        return {"by_mechanism": {}, "by_defense": {}, "worst": []}
    attacked = results[results["attack"] != NONE]
    clean = results[results["attack"] == NONE]

    def stats(frame: pd.DataFrame, clean_frame: pd.DataFrame) -> dict[str, Any]:
        return {
            "rows": int(len(frame) + len(clean_frame)),
            "utility_loss_mean": float(frame["utility_loss_mean"].mean()),
            "utility_loss_max": float(frame["utility_loss_max"].max()),
            "attacker_gain_max": float(frame["attacker_gain"].max()),
            "capture_max": float(frame["capture"].max()),
            "attack_success_rate": float(frame["attack_success"].mean()),
            "defense_cost_mean": float(clean_frame["defense_cost"].mean()),
            "not_converged": int((frame["converged"] == 0).sum()
                                 + (clean_frame["converged"] == 0).sum()),
        }

    by = {}
    for column in ("mechanism", "defense"):
        by[f"by_{column}"] = {
            str(name): stats(attacked[attacked[column] == name], clean[clean[column] == name])
            for name in results[column].unique()}
    worst = []
    for (attack, mechanism), group in attacked.groupby(["attack", "mechanism"], sort=False):
        loss = group["utility_loss_mean"].astype(float)
        top = group.loc[loss.idxmax()] if loss.notna().any() else group.iloc[0]
        worst.append({"attack": attack, "mechanism": mechanism,
                      "utility_loss_mean": float(loss.max()),
                      "utility_loss_max": float(group["utility_loss_max"].max()),
                      "at": {c: top[c] for c in IDENTITY}})
    return {**by, "worst": worst}


def summary_table(results: pd.DataFrame) -> str:
    """Worst honest utility loss per attack × mechanism, and every defense's clean cost."""
    if results.empty:
        return "no results"
    attacked = results[results["attack"] != NONE]
    clean = results[results["defense"] != NONE]
    clean = clean[clean["attack"] == NONE]
    parts = []
    if not attacked.empty:
        worst = attacked.pivot_table(index="attack", columns="mechanism",
                                     values="utility_loss_mean", aggfunc="max", sort=False)
        parts.append("worst honest utility loss (max over datasets, defenses, budgets and "
                     f"seeds of utility_loss_mean)\n{worst.to_string(float_format=_three_digits)}")
    if not clean.empty:
        cost = clean.pivot_table(index="defense", columns="mechanism", values="defense_cost",
                                 aggfunc="mean", sort=False)
        parts.append("defense cost with no attack (mean over datasets and seeds of "
                     f"defense_cost)\n{cost.to_string(float_format=_three_digits)}")
    return "\n\n".join(parts)


def _three_digits(value: float) -> str:
    """3 significant digits (the terminal summary)."""
    return f"{value:.3g}"


# ------------------------------------------------------------------- output
def _grid_labels(suite: Suite) -> dict[str, Any]:
    """What each attack and defense label stands for, for the report: an attack's recipe
    and budgets, a defense's steps and the recipes they target (``Defense.targets``)."""
    attacks = {a.label: {"recipe": a.name, "budgets": json_ready(list(a.budgets))}
               for a in suite.attacks}
    defenses = {}
    for d in suite.defenses:
        steps = [name for name, _ in d.steps]
        targets = sorted({t for name in steps if name in DEFENSES
                          for t in DEFENSES[name].targets})
        defenses[d.label] = {"steps": steps, "targets": targets}
    return {"attacks": attacks, "defenses": defenses}


def write_files(out: Path, suite: Suite, grid: list[GridPoint], keys: list[str],
                 done: dict[str, dict[str, Any]], run: dict[str, Any],
                 reruns: dict[str, dict[str, Any]] | None) -> tuple[pd.DataFrame,
                                                                   dict[str, Any]]:
    """Write ``results.csv``, ``timings.csv`` and ``summary.json`` from the finished runs
    of the grid; ``reruns`` None means the run is not over (a partial snapshot)."""
    rows, timings, skipped, failed = [], [], [], []
    finished = 0
    for key, point in zip(keys, grid, strict=True):
        record = done.get(key)
        if record is None:
            continue
        finished += 1
        if "skipped" in record:
            skipped.append({**point.identity, "reason": record["skipped"]})
            continue
        if "failed" in record:
            error = record["failed"]
            failed.append({**point.identity, "error": f"{error['type']}: {error['message']}",
                           "traceback": error.get("traceback", "")})
            continue
        rows.append({**record["row"], **point.identity})
        timings.append({**point.identity, **record["timing"], "key": key})
    columns = list(dict.fromkeys(c for row in rows for c in row)) or list(IDENTITY)
    digest = _write_csv(out / "results.csv", columns, rows)
    phases = [p for p in TIMING_PHASES if any(p in t for t in timings)]
    _write_csv(out / "timings.csv", [*IDENTITY, *phases, "worker", "key"], timings)

    results = pd.DataFrame(rows, columns=columns)
    complete = reruns is not None and finished == len(grid)
    summary = {
        "suite": {"name": suite.name, "source": suite.source, "digest": suite.digest,
                  "version": version("pluralguard"), "code": code_digest()},
        "complete": complete,
        "counts": {"grid": len(grid), "finished": finished, "rows": len(rows),
                   "not_applicable": len(skipped), "failed": len(failed),
                   "computed": run["computed"], "reused": run["reused"],
                   "datasets": len(suite.datasets), "mechanisms": len(suite.mechanisms),
                   "defenses": len(suite.defenses), "attacks": len(suite.attacks),
                   "seeds": len(suite.seeds)},
        "files": {"results.csv": {"rows": len(rows), "sha256": digest}},
        "wall_time_s": time.perf_counter() - run["start"],
        "executor": run["executor"],
        "store_warnings": run["warnings"],
        "sanity": _sanity(results, reruns or {}, done, dict(zip(keys, grid, strict=True))),
        **_aggregates(results),
        "grid_labels": _grid_labels(suite),
        "not_applicable": skipped,
        "failed": failed,
    }
    write_json(out / "summary.json", summary)
    return results, summary
