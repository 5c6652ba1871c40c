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
from typing import Any

import numpy as np
import pandas as pd

from ..errors import InputError
from ..model import RANGE_TOL, Population
from ..numbers import parse_decimal
from ._csv import as_path, numeric_columns, read_text_table

VALUES = ("rel", "nonrel")
WEIGHT_MODES = ("none", "respondents", "population")


def _non_negative(df: pd.DataFrame, columns: list[str]) -> np.ndarray:
    """:func:`numeric_columns`, and every cell >= 0 (counts, shares, populations)."""
    values = numeric_columns(df, columns)
    neg = values < 0
    if neg.any():
        r, c = (int(t) for t in np.argwhere(neg)[0])
        raise InputError(columns[c], f"row {r + 1} is negative ({values[r, c]:.6g})",
                         "give counts or shares >= 0")
    return values


def _scaled(values: np.ndarray, axis: int | None = None) -> np.ndarray:
    """``values`` times the power of two that puts their maximum (along ``axis``) in [1, 2).

    Exact, so ratios and ``x / x.sum()`` are bit for bit those of the unscaled values,
    while sums can no longer overflow (counts of 1e308 respondents).
    """
    exponent = np.frexp(values.max(axis=axis, keepdims=axis is not None))[1] - 1
    return np.ldexp(values, -exponent)


def _normalised(values: np.ndarray, axis: int | None = None) -> np.ndarray:
    """``values`` divided by their sum along ``axis`` (scaled first: no overflow)."""
    scaled = _scaled(values, axis)
    return scaled / scaled.sum(axis=axis, keepdims=axis is not None)


def _shares(df: pd.DataFrame) -> np.ndarray:
    for a, b in (("Rel-Nonrel", "Nonrel-Rel"), ("rel_sum", "nonrel_sum"), ("rel", "nonrel")):
        if a in df.columns and b in df.columns:
            counts = _non_negative(df, [a, b])
            empty = (counts == 0).all(axis=1)
            if empty.any():
                raise InputError(f"{a}/{b}", f"row {int(np.argmax(empty)) + 1} has no "
                                 "respondents", "drop rows whose two value counts sum to zero")
            return _normalised(counts, axis=1)
    raise InputError("columns", "no value-preference columns found",
                     "give 'rel' and 'nonrel' (counts or shares) or 'Rel-Nonrel' and "
                     "'Nonrel-Rel'")


def _respondents(df: pd.DataFrame) -> np.ndarray:
    for a, b in (("rel_sum", "nonrel_sum"), ("rel", "nonrel")):
        if a in df.columns and b in df.columns:
            counts = _non_negative(df, [a, b])
            if a == "rel" and (counts <= 1).all() and np.allclose(counts.sum(axis=1), 1.0):
                break  # shares, not counts
            return _scaled(counts).sum(axis=1)
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
    if not isinstance(df, pd.DataFrame):
        raise InputError("df", f"expected a pandas DataFrame, got {type(df).__name__}",
                         "pass the table as a DataFrame (or read it with read_lera_csv)")
    if not isinstance(weights, str) or weights not in WEIGHT_MODES:
        raise InputError("weights", f"unknown weighting {weights!r}",
                         f"use one of {', '.join(WEIGHT_MODES)}")
    actions = sorted({m.group(1) for c in df.columns
                      if isinstance(c, str) and (m := re.fullmatch(r"a_(.+)_rel", c))
                      and f"a_{m.group(1)}_nonrel"
                      in df.columns}, key=lambda a: list(df.columns).index(f"a_{a}_rel"))
    if not actions:
        raise InputError("columns", "no action-judgement columns found",
                         "give pairs of columns a_<action>_rel and a_<action>_nonrel")
    columns = [c for a in actions for c in (f"a_{a}_rel", f"a_{a}_nonrel")]
    judgements = numeric_columns(df, columns)
    outside = np.abs(judgements) > 1 + RANGE_TOL
    if outside.any():
        r, c = (int(t) for t in np.argwhere(outside)[0])
        raise InputError(columns[c], f"row {r + 1} is {judgements[r, c]:.6g}, outside "
                         "[-1, 1]", "give judgements in [-1, 1]")
    X = judgements.reshape(len(df), len(actions), 2)
    W = _shares(df)
    if weights == "none":
        w = None
    else:
        if weights == "population":
            if "population" not in df.columns:
                raise InputError("weights", "the table has no 'population' column",
                                 "use weights='none' or 'respondents'")
            raw, column = _non_negative(df, ["population"])[:, 0], "population"
        else:
            raw, column = _respondents(df), "respondents (rel + nonrel)"
        if (raw <= 0).any():
            raise InputError(column, f"row {int(np.argmax(raw <= 0)) + 1} is 0, so the "
                             "agent would weigh nothing", "drop that row or use "
                             "weights='none'")
        w = _normalised(raw)
    agents = _agent_names(df) if "country" in df.columns else None
    return Population(X=X, W=W, weights=w, agents=agents, values=VALUES,
                      alternatives=tuple(actions), name=name, description=description)


def _integral_ids(ids: list[Any]) -> list[str] | None:
    """Ids that are all integral numbers (``1.0``, ``2``…) as ``"1"``, ``"2"``…, else None."""
    numbers = []
    for v in ids:
        x = parse_decimal(v) if isinstance(v, str) else v
        if not isinstance(x, int | float | np.integer | np.floating) or isinstance(
                x, bool) or not np.isfinite(x) or x != int(x):
            return None
        numbers.append(str(int(x)))
    return numbers


def _agent_names(df: pd.DataFrame) -> list[str]:
    """Agent names from the ``country`` column (prefixed by ``cntry`` when not unique).

    Respondent ids stored as numbers (``1.0``, ``2.0``…) become ``"1"``, ``"2"``…; an
    empty cell is an error, never the name ``"nan"``.
    """
    def text(column: str) -> list[str]:
        cells = df[column].tolist()
        for r, v in enumerate(cells):
            if v is None or (isinstance(v, float) and np.isnan(v)) or not str(v).strip():
                raise InputError(column, f"row {r + 1} is empty",
                                 "give every row a non-empty name")
        return _integral_ids(cells) or [str(v) for v in cells]

    ids = text("country")
    if "cntry" in df.columns and len(set(ids)) != len(ids):
        ids = [f"{c}-{i}" for c, i in zip(text("cntry"), ids, strict=True)]
    return ids


def read_lera_csv(path: str | Path, weights: str = "none", name: str | None = None
                  ) -> Population:
    """Read a Lera-Leri-format CSV file (see :func:`from_lera_table`).

    Cells are read as text and parsed in plain decimal notation, so a malformed cell is
    an error naming its column and row, never a silent NaN or a wrong number.
    """
    path = as_path(path)
    df = read_text_table(path)
    return from_lera_table(df, weights=weights, name=name or path.stem,
                           description=f"read from {path.name} (Lera-Leri et al. format)")
