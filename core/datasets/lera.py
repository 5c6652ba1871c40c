"""Read value-system tables in the format of Lera-Leri et al. (2022, 2024).

Lera-Leri et al.'s data files (and J. Trevorrow's fork) describe each agent by two
values, *religious* and *non-religious*, with

* a preference matrix P = [[0, r], [1 − r, 0]], r = rel / (rel + nonrel), given either
  as counts or shares (``rel``, ``nonrel``; ``rel_sum``, ``nonrel_sum``) or directly
  as ``Rel-Nonrel`` / ``Nonrel-Rel``;
* action judgements J⁺[v, a] in [−1, 1], columns ``a_<action>_rel`` and
  ``a_<action>_nonrel`` (J⁻ = −J⁺ is implied).

pluralguard's value system is W = (r, 1 − r) (the off-diagonal of P) and X = J⁺
transposed to alternatives × values. Weights follow Lera-Leri et al.'s ``-w`` modes:
``none`` (1 each), ``respondents`` (rel + nonrel counts, normalised to sum 1) and
``population`` (the ``population`` column, normalised to sum 1).

References
----------
R. X. Lera-Leri, F. Bistaffa, M. Serramia, M. Lopez-Sanchez, J. A. Rodríguez-Aguilar.
Towards pluralistic value alignment: aggregating value systems through ℓp-regression.
AAMAS 2022; and Aggregating value systems for decision support, KBS 2024.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import InputError
from ..model import Population
from ._csv import numeric_columns, read_csv

VALUES = ("rel", "nonrel")
WEIGHT_MODES = ("none", "respondents", "population")


def _shares(df: pd.DataFrame) -> np.ndarray:
    for a, b in (("Rel-Nonrel", "Nonrel-Rel"), ("rel_sum", "nonrel_sum"), ("rel", "nonrel")):
        if a in df.columns and b in df.columns:
            counts = numeric_columns(df, [a, b])
            total = counts.sum(axis=1, keepdims=True)
            if (total <= 0).any():
                raise InputError(f"{a}/{b}", "a row has no respondents",
                                 "drop rows whose two value counts sum to zero")
            return counts / total
    raise InputError("columns", "no value-preference columns found",
                     "give 'rel' and 'nonrel' (counts or shares) or 'Rel-Nonrel' and "
                     "'Nonrel-Rel'")


def _respondents(df: pd.DataFrame) -> np.ndarray:
    for a, b in (("rel_sum", "nonrel_sum"), ("rel", "nonrel")):
        if a in df.columns and b in df.columns:
            counts = numeric_columns(df, [a, b]).sum(axis=1)
            if a == "rel" and np.allclose(counts, 1.0):
                break  # shares, not counts
            return counts
    raise InputError("weights", "the table has no respondent counts",
                     "use weights='none' or 'population', or give rel/nonrel counts")


def from_lera_table(df: pd.DataFrame, weights: str = "none", name: str = "lera",
                    description: str = "") -> Population:
    """Convert a Lera-Leri-format table into a :class:`Population` (module doc).

    Parameters
    ----------
    df : pandas.DataFrame
        One row per agent.
    weights : {"none", "respondents", "population"}
        Lera-Leri et al.'s weighting modes ``-w 0``, ``-w 1``, ``-w 2``.
    name, description : str
        Stored on the population.
    """
    if weights not in WEIGHT_MODES:
        raise InputError("weights", f"unknown weighting {weights!r}",
                         f"use one of {', '.join(WEIGHT_MODES)}")
    actions = sorted({m.group(1) for c in df.columns
                      if (m := re.fullmatch(r"a_(.+)_rel", c)) and f"a_{m.group(1)}_nonrel"
                      in df.columns}, key=lambda a: list(df.columns).index(f"a_{a}_rel"))
    if not actions:
        raise InputError("columns", "no action-judgement columns found",
                         "give pairs of columns a_<action>_rel and a_<action>_nonrel")
    X = np.stack([numeric_columns(df, [f"a_{a}_rel", f"a_{a}_nonrel"]) for a in actions],
                 axis=1)
    W = _shares(df)
    if weights == "none":
        w = None
    else:
        if weights == "population":
            if "population" not in df.columns:
                raise InputError("weights", "the table has no 'population' column",
                                 "use weights='none' or 'respondents'")
            raw = numeric_columns(df, ["population"])[:, 0]
        else:
            raw = _respondents(df)
        w = raw / raw.sum()
    if "country" in df.columns:
        ids = df["country"]
        if pd.api.types.is_float_dtype(ids) and np.all(np.mod(ids, 1) == 0):
            ids = ids.astype(np.int64)  # respondent ids stored as 1.0, 2.0, …
        ids = ids.astype(str)
        if "cntry" in df.columns and not ids.is_unique:
            ids = df["cntry"].astype(str) + "-" + ids
        agents = ids.tolist()
    else:
        agents = None
    return Population(X=X, W=W, weights=w, agents=agents, values=VALUES,
                      alternatives=tuple(actions), name=name, description=description)


def read_lera_csv(path: str | Path, weights: str = "none", name: str | None = None
                  ) -> Population:
    """Read a Lera-Leri-format CSV file (see :func:`from_lera_table`)."""
    path = Path(path)
    df = read_csv(path)
    return from_lera_table(df, weights=weights, name=name or path.stem,
                           description=f"read from {path.name} (Lera-Leri et al. format)")
