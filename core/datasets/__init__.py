"""Datasets: the shipped EVS-2017 table, seeded synthetic generators, population files.

Registry (:func:`load`, :func:`list_datasets`, :func:`available`):

======================  ==================================================================
``evs2017``             34 EVS-2017 countries, 2 values × 2 actions (:mod:`.evs`; real
                        aggregate data, cite EVS 2017 and Lera-Leri et al. 2022)
``pve_like``            SYNTHETIC, shaped like the Súdwest-Fryslân PVE: 876 agents,
                        5 values, 6 options, unequal clusters, declared bounds
``blobs``               synthetic Gaussian blobs of value systems
``polarized``           synthetic: two opposed camps and a moderate minority
======================  ==================================================================

Files: :func:`write_population` / :func:`read_population` (pluralguard's CSV format,
:mod:`.files`), :func:`load_population_file` (that format or Lera-Leri et al.'s, picked
from the columns), :func:`read_lera_csv`.

Examples
--------
>>> from pluralguard.core import datasets
>>> datasets.load("pve_like", seed=1)
Population('pve_like': n=876 agents, k=6 alternatives, m=5 values, bounded)
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from ..errors import InputError
from ..model import Population
from .evs import evs2017
from .files import (
    detect_format,
    load_population_file,
    population_table,
    read_population,
    write_population,
)
from .lera import from_lera_table, read_lera_csv
from .synthetic import blobs, polarized, pve_like

#: name → (loader, one-line description).
_REGISTRY: dict[str, tuple[Callable[..., Population], str]] = {
    "evs2017": (evs2017, "EVS 2017 survey, 34 countries as agents, 2 values (religious, "
                "non-religious) × 2 actions (Lera-Leri et al. 2022); real aggregate data"),
    "pve_like": (pve_like, "SYNTHETIC, shaped like the Súdwest-Fryslân PVE: 876 agents, "
                 "5 values, 6 energy options, unequal clusters, declared bounds"),
    "blobs": (blobs, "synthetic Gaussian blobs of value systems, optional declared bounds"),
    "polarized": (polarized, "synthetic: two opposed camps plus a moderate minority, "
                  "optional declared bounds"),
}


def available() -> tuple[str, ...]:
    """Names accepted by :func:`load`."""
    return tuple(_REGISTRY)


def list_datasets() -> list[tuple[str, str]]:
    """``(name, one-line description)`` of every dataset :func:`load` knows."""
    return [(name, text) for name, (_, text) in _REGISTRY.items()]


def load(name: str, /, **kwargs: Any) -> Population:
    """Load a dataset by name, passing keyword arguments to its loader.

    Parameters
    ----------
    name : str
        One of :func:`available` (case-insensitive).
    **kwargs
        The loader's parameters, e.g. ``load("evs2017", weights="respondents")``,
        ``load("pve_like", seed=3)``, ``load("blobs", n=500, centers=6)``.

    Raises
    ------
    InputError
        ``dataset`` for an unknown name; the argument's name for a parameter the
        loader does not have or a bad value.
    """
    key = name.strip().lower() if isinstance(name, str) else None
    if key not in _REGISTRY:
        raise InputError("dataset", f"unknown dataset {name!r}",
                         f"use one of {', '.join(available())}")
    loader = _REGISTRY[key][0]
    params = list(inspect.signature(loader).parameters)
    for arg in kwargs:
        if arg not in params:
            raise InputError(arg, f"is not a parameter of dataset {key!r}",
                             f"use {', '.join(params)}")
    return loader(**kwargs)


__all__ = [
    "available",
    "blobs",
    "detect_format",
    "evs2017",
    "from_lera_table",
    "list_datasets",
    "load",
    "load_population_file",
    "polarized",
    "population_table",
    "pve_like",
    "read_lera_csv",
    "read_population",
    "write_population",
]
