"""The EVS-2017 country table of Lera-Leri et al., shipped with the package.

``evs2017.csv`` is, byte for byte, the ``data.csv`` of Lera-Leri et al.'s code
(github.com/RogerXLera/ValueSystemsAggregation, commit ab6d0b2): one row per EVS-2017
country (34 countries, ISO-3166 alpha-2 codes), aggregate figures only, no microdata.

* ``rel``, ``nonrel`` — respondents for whom religion is very/quite important vs not
  (EVS v6), the two *values* (religious, non-religious);
* ``a_adp_rel``, ``a_adp_nonrel`` — mean judgement in [−1, 1] of the action ``adp``
  (EVS v82, homosexual couples as adoptive parents, 5-point agree–disagree item, agree
  strongly → +1) within each group;
* ``a_div_rel``, ``a_div_nonrel`` — mean judgement of ``div`` (EVS v155, divorce is
  justifiable, 1 "never" … 10 "always" mapped linearly to −1 … +1);
* ``population`` — country population (used only by ``weights="population"``).

As a pluralguard population (:func:`~pluralguard.core.datasets.lera.from_lera_table`):
n = 34 agents, m = 2 values (``rel``, ``nonrel``), k = 2 alternatives (``adp``,
``div``); W_i = (rel, nonrel) / (rel + nonrel) and X_i = J⁺ᵀ, i.e.
X_i[a, v] = ``a_<a>_<v>``. No confidence bounds are declared: use a ``quantile:q`` or
``fixed:gX,gW`` bound policy (Lera-Leri et al. aggregate into one consensus and need
none).

References
----------
EVS. European Values Study 2017: Integrated Dataset (EVS 2017). GESIS Data Archive,
Cologne, ZA7500, doi:10.4232/1.13560.

R. X. Lera-Leri, F. Bistaffa, M. Serramia, M. Lopez-Sanchez, J. A. Rodríguez-Aguilar.
Towards pluralistic value alignment: aggregating value systems through ℓp-regression.
AAMAS 2022.
"""

from __future__ import annotations

from importlib import resources

import pandas as pd

from ..model import Population
from .lera import from_lera_table

#: File name of the shipped table inside this package.
EVS2017_FILE = "evs2017.csv"

EVS2017_DESCRIPTION = (
    "EVS 2017 country value systems as aggregated by Lera-Leri et al. (AAMAS 2022): "
    "34 countries; values rel/nonrel = share of respondents for whom religion is / is not "
    "important (EVS v6); alternatives adp (EVS v82, homosexual couples adopting) and div "
    "(EVS v155, divorce justifiable), judged in [-1, 1] by each group. Source: EVS, "
    "European Values Study 2017: Integrated Dataset, GESIS ZA7500, doi:10.4232/1.13560; "
    "table from R. X. Lera-Leri et al., Towards pluralistic value alignment: aggregating "
    "value systems through lp-regression, AAMAS 2022."
)


def evs2017(weights: str = "none") -> Population:
    """The 34 EVS-2017 countries as agents (module doc for columns and provenance).

    Parameters
    ----------
    weights : {"none", "respondents", "population"}
        Lera-Leri et al.'s weighting modes ``-w 0`` (every country 1), ``-w 1``
        (respondents rel + nonrel, normalised to sum 1) and ``-w 2`` (country
        population, normalised to sum 1).

    Returns
    -------
    Population
        ``name="evs2017"``, agents = country codes, values ``("rel", "nonrel")``,
        alternatives ``("adp", "div")``, no bounds.
    """
    with resources.files(__package__).joinpath(EVS2017_FILE).open("rb") as fh:
        table = pd.read_csv(fh)
    return from_lera_table(table, weights=weights, name="evs2017",
                           description=f"{EVS2017_DESCRIPTION} Weights: {weights}.")
