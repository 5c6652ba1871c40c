"""What a row of ``results.csv`` is: the columns that identify a run, and how to read the rest.

One row per run (:func:`~pluralguard.eval.scenario.run_scenario`): the identity columns
:data:`IDENTITY`, then measurements. The attack ``none`` is the no-attack baseline and
the defense ``none`` the undefended run (:data:`NONE`). Only pandas and numpy: reading
results never imports the attacks or defenses.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

#: Columns of a results row that identify the run (the rest are measurements).
IDENTITY = ("dataset", "mechanism", "attack", "budget", "defense", "seed")
#: The name of "no attack" and of "no defense" in results.csv.
NONE = "none"


def numeric(frame: pd.DataFrame, column: str) -> pd.Series:
    """``frame[column]`` as floats (text that is not a number → NaN; an absent column →
    all NaN)."""
    if column not in frame:
        return pd.Series(np.nan, index=frame.index, dtype=float)
    return pd.to_numeric(frame[column], errors="coerce").astype(float)


def recipe_of(frame: pd.DataFrame) -> pd.Series:
    """The registry name of each row's attack: the ``recipe`` column where it is given,
    else the attack label up to its first parenthesis (``sybil(sybils=3)`` → ``sybil``)."""
    from_label = frame["attack"].astype(str).str.split("(").str[0]
    if "recipe" not in frame:
        return from_label
    recipe = frame["recipe"].astype(object)
    return recipe.where(recipe.notna() & (recipe != ""), from_label)
