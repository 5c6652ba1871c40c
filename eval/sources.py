"""Where a population comes from: a registered dataset or a population file."""

from __future__ import annotations

import inspect
from pathlib import Path

from pluralguard.core import datasets
from pluralguard.core.errors import InputError
from pluralguard.core.model import Population


def load_source(dataset: str | None = None, population: str | Path | None = None, *,
                file_format: str = "auto", weights: str | None = None,
                seed: int | None = None) -> Population:
    """Load a population from a dataset name or a file (exactly one of them).

    Parameters
    ----------
    dataset : str, optional
        A name from :func:`pluralguard.core.datasets.available`.
    population : path, optional
        A population CSV (pluralguard's format or Lera-Leri et al.'s).
    file_format : {"auto", "pluralguard", "lera"}
        Format of ``population``.
    weights : {"none", "respondents", "population"}, optional
        Weighting mode for the EVS table or a Lera-Leri file.
    seed : int, optional
        Seed for a synthetic dataset.
    """
    if (dataset is None) == (population is None):
        raise InputError("dataset", "give exactly one of a dataset name and a population file",
                         "use --dataset NAME or --population FILE.csv")
    if population is not None:
        if seed is not None:
            raise InputError("seed", "only applies to synthetic datasets",
                             "drop --seed when reading a population file")
        return datasets.load_population_file(population, file_format, weights=weights)
    kwargs: dict[str, object] = {}
    loader_params = _loader_parameters(dataset)
    if weights is not None:
        if "weights" not in loader_params:
            raise InputError("weights", f"dataset {dataset!r} has no weighting modes",
                             "drop --weights (only evs2017 and Lera-Leri files have them)")
        kwargs["weights"] = weights
    if seed is not None:
        if "seed" not in loader_params:
            raise InputError("seed", f"dataset {dataset!r} is not generated from a seed",
                             "drop --seed (only synthetic datasets take one)")
        kwargs["seed"] = seed
    return datasets.load(dataset, **kwargs)


def _loader_parameters(dataset: str) -> set[str]:
    name = dataset.strip().lower()
    if name not in datasets.available():
        raise InputError("dataset", f"unknown dataset {dataset!r}",
                         f"use one of {', '.join(datasets.available())}")
    loader = getattr(datasets, name)
    return set(inspect.signature(loader).parameters)
