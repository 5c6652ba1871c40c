"""Certificates read back from a results table: coverage, gaps and verdicts.

``results.csv`` carries, per attacked run, ``certified_<metric>`` (a proved upper bound
over every attack of the threat model, :mod:`~pluralguard.eval.certify`),
``gap_<metric>`` = certified − found, and ``certificate_basis`` (how it was proved, or
``undecided: <why>``). This module summarises them for the sanity checks, the report
and the case studies, so all three say the same:

* :func:`coverage` — per mechanism, the share of attacked runs with a finite
  certificate, how many rest on the valid set only, and the median gap per metric;
* :func:`verdicts` — per mechanism × attack × defense, whether the attack found
  attains its certificate on the goal's own metric (*tight*: every gap ≤
  :data:`TIGHT`), leaves a *gap*, or is *undecided*; :func:`verdict_counts` per
  mechanism × attack over the defenses.

Only pandas and numpy: reading results never imports the attacks or defenses.
"""

from __future__ import annotations

import pandas as pd

from .columns import NONE, numeric

#: The metrics certified, in column order (``certified_<metric>``, ``gap_<metric>``).
CERTIFIED = ("utility_loss_max", "utility_loss_p90", "attacker_gain", "capture")
#: The column saying how a certificate was proved.
BASIS = "certificate_basis"
#: A gap at most this is *tight*: the attack found attains the certificate.
TIGHT = 1e-6
#: The goal whose own metric is certified, → that metric; other goals are judged on
#: ``utility_loss_p90``.
GOAL_METRIC = {"selfish": "attacker_gain", "capture": "capture"}
#: Prefix of a basis that proves nothing beyond the valid set.
VALID_ONLY = "valid set only"
#: Prefix of an undecided certificate's basis.
UNDECIDED = "undecided"


def has_certificates(results: pd.DataFrame) -> bool:
    """Whether the table was written with certificates (the basis column is there)."""
    return BASIS in results.columns


def attacked_rows(results: pd.DataFrame) -> pd.DataFrame:
    """The attacked runs, with ``_certified`` (some certificate is finite) and ``_basis``."""
    frame = results[results["attack"].astype(str) != NONE].copy()
    basis = frame[BASIS].fillna("").astype(str) if BASIS in frame else ""
    frame["_basis"] = basis
    certified = pd.concat([numeric(frame, f"certified_{m}") for m in CERTIFIED], axis=1)
    frame["_certified"] = certified.notna().any(axis=1)
    return frame


def coverage(results: pd.DataFrame) -> pd.DataFrame:
    """Per mechanism: ``attacked`` runs, ``certified`` (a finite certificate),
    ``share``, ``valid_set_only``, ``undecided`` and ``median_gap_<metric>`` (over the
    runs where both values exist)."""
    frame = attacked_rows(results)
    rows = []
    for mechanism, group in frame.groupby("mechanism", sort=True):
        row = {"mechanism": mechanism, "attacked": len(group),
               "certified": int(group["_certified"].sum()),
               "share": float(group["_certified"].mean()) if len(group) else float("nan"),
               "valid_set_only": int(group["_basis"].str.startswith(VALID_ONLY).sum()),
               "undecided": int((~group["_certified"]).sum())}
        for m in CERTIFIED:
            row[f"median_gap_{m}"] = float(numeric(group, f"gap_{m}").median())
        rows.append(row)
    return pd.DataFrame(rows)


def _reason(bases: pd.Series) -> str:
    undecided = bases[bases.str.startswith(UNDECIDED)]
    if undecided.empty:
        return ""
    return str(undecided.value_counts().index[0]).removeprefix(f"{UNDECIDED}: ")


def verdicts(results: pd.DataFrame, tight: float = TIGHT) -> pd.DataFrame:
    """Per mechanism × attack × defense: the metric judged (the goal's own where it is
    certified, else ``utility_loss_p90``), the worst found and certified values, the
    median and largest gap, and the verdict: ``tight`` (every certified run's gap ≤
    ``tight``), ``gap``, ``undecided`` (no run certified; ``reason`` says why) or
    ``partly undecided``."""
    frame = attacked_rows(results)
    rows = []
    keys = ["mechanism", "attack", "defense"]
    for (mechanism, attack, defense), group in frame.groupby(keys, sort=True):
        goals = group["goal"].astype(str) if "goal" in group else pd.Series("", group.index)
        metric = GOAL_METRIC.get(goals.mode().iloc[0] if len(goals) else "",
                                 "utility_loss_p90")
        certified = group[group["_certified"]]
        gap = numeric(certified, f"gap_{metric}").dropna()
        if certified.empty:
            verdict = UNDECIDED
        elif len(certified) < len(group):
            verdict = f"partly {UNDECIDED}"
        elif gap.empty:
            verdict = "gap"
        else:
            verdict = "tight" if float(gap.max()) <= tight else "gap"
        rows.append({
            "mechanism": mechanism, "attack": attack, "defense": defense, "metric": metric,
            "runs": len(group), "certified": len(certified),
            "found": float(numeric(group, metric).max()),
            "certified_max": float(numeric(certified, f"certified_{metric}").max()),
            "median_gap": float(gap.median()) if len(gap) else float("nan"),
            "max_gap": float(gap.max()) if len(gap) else float("nan"),
            "verdict": verdict, "reason": _reason(group["_basis"])})
    columns = ["mechanism", "attack", "defense", "metric", "runs", "certified", "found",
               "certified_max", "median_gap", "max_gap", "verdict", "reason"]
    return pd.DataFrame(rows, columns=columns)


def verdict_counts(table: pd.DataFrame) -> pd.DataFrame:
    """Per mechanism × attack, how many defenses (``none`` included) give each verdict
    (:func:`verdicts`), and the undefended verdict."""
    rows = []
    for (mechanism, attack), g in table.groupby(["mechanism", "attack"], sort=True):
        none = g.loc[g["defense"] == NONE, "verdict"]
        counts = g["verdict"].value_counts()
        rows.append({"mechanism": mechanism, "attack": attack,
                     "metric": g["metric"].iloc[0],
                     "undefended": none.iloc[0] if len(none) else "—",
                     "tight": int(counts.get("tight", 0)), "gap": int(counts.get("gap", 0)),
                     "undecided": int(counts.drop(["tight", "gap"], errors="ignore").sum()),
                     "tight_under": ", ".join(g.loc[g["verdict"] == "tight", "defense"])})
    return pd.DataFrame(rows, columns=["mechanism", "attack", "metric", "undefended",
                                       "tight", "gap", "undecided", "tight_under"])
