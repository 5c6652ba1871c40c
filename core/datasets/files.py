"""Population files: pluralguard's one CSV format, and format detection on load.

Format
------
One row per agent; the columns, in any order:

* ``agent`` — the agent's name (text, unique);
* ``w:<value>`` — one per value: the agent's weight W[v]; the order of these columns
  is the order of the values. Every row lies on the simplex (non-negative, sums to 1
  up to 1e-6);
* ``x:<alternative>:<value>`` — one per (alternative, value) pair: the judgement
  X[a, v] ∈ [−1, 1]. The alternatives are ordered by first appearance; every value
  of the ``w:`` columns must appear with every alternative (a full k × m grid). Value
  names cannot contain ``:``; alternative names may (the value is after the last
  ``:``);
* ``gamma_x``, ``gamma_w`` — optional, both or neither: the declared bounds (≥ 0;
  ``inf`` = no limit);
* ``weight`` — optional: the positive utility weight w_i.

Any other column is an error (a misspelt ``gama_x`` must not be silently dropped).
Example, k = 1 alternative and m = 2 values::

    agent,w:rel,w:nonrel,x:div:rel,x:div:nonrel,gamma_x,gamma_w
    AL,0.72,0.28,-0.33,-0.18,0.5,0.2

The writer quotes every text cell (header included), so that names with commas,
quotes or line breaks survive; the reader accepts quoted and unquoted cells alike.
:func:`write_population` writes floats with Python's shortest round-trip repr and
:func:`read_population` parses them with the correctly rounded ``float``, so a write
followed by a read reproduces X, W, bounds, weights and all names exactly. The
population's ``name`` and ``description`` are not stored (the reader names the
population after the file).

:func:`load_population_file` also reads the tables of Lera-Leri et al. (columns
``a_<action>_rel``, ``a_<action>_nonrel`` …; :mod:`.lera`) and picks the format from
the columns.
"""

from __future__ import annotations

import contextlib
import csv
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import InputError
from ..model import RANGE_TOL, SIMPLEX_SUM_TOL, Population
from ._csv import as_path, parse_floats, read_header, read_text_table
from .lera import read_lera_csv

AGENT = "agent"
W_PREFIX = "w:"
X_PREFIX = "x:"
GAMMA_X, GAMMA_W, WEIGHT = "gamma_x", "gamma_w", "weight"
FORMATS = ("auto", "pluralguard", "lera")

_COLUMNS_FIX = (f"use only the columns {AGENT}, {W_PREFIX}<value>, "
                f"{X_PREFIX}<alternative>:<value>, {GAMMA_X}, {GAMMA_W} and {WEIGHT}")


def population_table(population: Population) -> pd.DataFrame:
    """The population as a table in the format of this module (module doc)."""
    bad = [v for v in population.values if ":" in v]
    if bad:
        raise InputError("values", f"value name {bad[0]!r} contains ':'",
                         "rename the value; ':' separates alternative and value in "
                         "the x:<alternative>:<value> columns")
    columns: dict[str, Sequence[object] | np.ndarray] = {AGENT: list(population.agents)}
    for j, v in enumerate(population.values):
        columns[f"{W_PREFIX}{v}"] = population.W[:, j]
    for a, alt in enumerate(population.alternatives):
        for j, v in enumerate(population.values):
            columns[f"{X_PREFIX}{alt}:{v}"] = population.X[:, a, j]
    if population.has_bounds:
        columns[GAMMA_X] = population.gamma_x
        columns[GAMMA_W] = population.gamma_w
    if population.weights is not None:
        columns[WEIGHT] = population.weights
    return pd.DataFrame(columns)


def write_population(population: Population, path: str | Path) -> Path:
    """Write a population to a CSV file in pluralguard's format (module doc).

    The file is written to a temporary file in the same directory and moved into
    place with :func:`os.replace`, so an interrupted or failed write never leaves a
    half-written file at ``path`` (an existing file stays untouched until the end).

    Returns
    -------
    Path
        The path written.

    Raises
    ------
    InputError
        ``path`` when it is a directory, its directory does not exist or cannot be
        written to (permission denied); ``values`` for a value name containing ``:``.
    """
    if not isinstance(population, Population):
        raise InputError("population", f"expected a Population, got "
                         f"{type(population).__name__}", "pass a pluralguard Population")
    path = as_path(path)
    if path.is_dir():
        raise InputError("path", f"{path} is a directory",
                         f"give a file name, e.g. {path / 'population.csv'}")
    if not path.parent.is_dir():
        raise InputError("path", f"directory {path.parent} does not exist",
                         "create the directory first or choose another path")
    table = population_table(population)
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except PermissionError:
        raise InputError("path", f"cannot write in {path.parent} (permission denied)",
                         "choose a directory you can write to") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            table.to_csv(fh, index=False, lineterminator="\n", quoting=csv.QUOTE_NONNUMERIC)
        os.replace(tmp, path)
    except PermissionError:
        raise InputError("path", f"cannot replace {path} (permission denied)",
                         "choose a file you can write to") from None
    except UnicodeEncodeError:
        raise InputError("agents", "a name cannot be encoded as UTF-8",
                         "rename agents, values or alternatives with valid text") from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    return path


def _grid(header: list[str]) -> tuple[list[str], list[str]]:
    """Values (from ``w:`` columns) and alternatives (from ``x:`` columns), checked."""
    for i, col in enumerate(header):
        if col not in (AGENT, GAMMA_X, GAMMA_W, WEIGHT) and not col.startswith(
                (W_PREFIX, X_PREFIX)):
            raise InputError(col or f"column {i + 1}", "is not a column of the pluralguard "
                             "format", _COLUMNS_FIX)
    if AGENT not in header:
        raise InputError(AGENT, "column missing", f"add a column {AGENT!r} with one unique "
                         "name per agent")
    values = [c[len(W_PREFIX):] for c in header if c.startswith(W_PREFIX)]
    for v in values:
        if not v.strip():
            raise InputError(f"{W_PREFIX}{v}", "names no value",
                             f"name the column {W_PREFIX}<value>, e.g. {W_PREFIX}fairness")
    if not values:
        raise InputError(f"{W_PREFIX}<value>", "no weight columns",
                         f"add one column {W_PREFIX}<value> per value with the agents' W")
    x_cols = [c for c in header if c.startswith(X_PREFIX)]
    if not x_cols:
        raise InputError(f"{X_PREFIX}<alternative>:<value>", "no judgement columns",
                         f"add one column {X_PREFIX}<alternative>:<value> per pair")
    alternatives: list[str] = []
    for col in x_cols:
        alt, sep, value = col[len(X_PREFIX):].rpartition(":")
        if not sep or not alt.strip():
            raise InputError(col, "does not name an alternative and a value",
                             f"name it {X_PREFIX}<alternative>:<value>")
        if value not in values:
            raise InputError(col, f"value {value!r} has no {W_PREFIX}{value} column",
                             f"add {W_PREFIX}{value} or use one of the values "
                             f"{', '.join(values)}")
        if alt not in alternatives:
            alternatives.append(alt)
    for alt in alternatives:
        for v in values:
            if f"{X_PREFIX}{alt}:{v}" not in header:
                raise InputError(f"{X_PREFIX}{alt}:{v}", "column missing: the x: columns "
                                 f"must form a full grid of {len(alternatives)} alternatives "
                                 f"× {len(values)} values",
                                 "add the column (one judgement per alternative and value)")
    return values, alternatives


def _finite(column: str, arr: np.ndarray, agents: Sequence[str], fix: str,
            allow_inf: bool = False) -> None:
    bad = np.isnan(arr) if allow_inf else ~np.isfinite(arr)
    if bad.any():
        r = int(np.argmax(bad))
        raise InputError(column, f"row {r + 1} (agent {agents[r]!r}) is {arr[r]}", fix)


def _in_range(column: str, arr: np.ndarray, agents: Sequence[str], low: float,
              high: float, fix: str) -> None:
    bad = (arr < low - RANGE_TOL) | (arr > high + RANGE_TOL)
    if bad.any():
        r = int(np.argmax(bad))
        raise InputError(column, f"row {r + 1} (agent {agents[r]!r}) is {arr[r]:.6g}, outside "
                         f"[{low:g}, {high:g}]", fix)


def read_population(path: str | Path, name: str | None = None) -> Population:
    """Read a population from a CSV file in pluralguard's format (module doc).

    Parameters
    ----------
    path : str or Path
        The file.
    name : str, optional
        Name of the population; default the file's stem.

    Raises
    ------
    InputError
        Naming the offending column: missing ``agent``, no ``w:`` or ``x:`` columns,
        ``x:`` columns that do not form a full grid, unknown or duplicated columns,
        empty, non-numeric or NaN cells, judgements outside [−1, 1], W rows off the
        simplex, only one of ``gamma_x``/``gamma_w``, negative bounds, non-positive
        weights, duplicated agent names.
    """
    path = as_path(path)
    body = read_text_table(path)
    header = [str(c) for c in body.columns]
    values, alternatives = _grid(header)
    cells = {col: body[col].tolist() for col in header}

    agents = cells[AGENT]
    for r, a in enumerate(agents):
        if not isinstance(a, str) or not a.strip():
            raise InputError(AGENT, f"row {r + 1} has no agent name",
                             "give every row a unique, non-empty agent name")
    if len(set(agents)) != len(agents):
        dup = next(a for a in agents if agents.count(a) > 1)
        raise InputError(AGENT, f"name {dup!r} appears more than once",
                         "give every agent a unique name")

    def floats(col: str, fix: str, allow_inf: bool = False) -> np.ndarray:
        arr = parse_floats(col, cells[col], agents, fix, allow_inf=allow_inf)
        _finite(col, arr, agents, fix, allow_inf)
        return arr

    w_fix = "give weights >= 0 that sum to 1 in every row"
    W = np.stack([floats(f"{W_PREFIX}{v}", w_fix) for v in values], axis=1)
    for j, v in enumerate(values):
        _in_range(f"{W_PREFIX}{v}", W[:, j], agents, 0.0, 1.0, w_fix)
    sums = W.sum(axis=1)
    off = np.abs(sums - 1.0) > SIMPLEX_SUM_TOL
    if off.any():
        r = int(np.argmax(off))
        raise InputError(f"{W_PREFIX}*", f"row {r + 1} (agent {agents[r]!r}) sums to "
                         f"{sums[r]:.9g}, not 1 (W must lie on the simplex)",
                         "normalise the w: columns of every row to sum to 1")

    x_fix = "give judgements in [-1, 1]"
    X = np.empty((len(agents), len(alternatives), len(values)))
    for a, alt in enumerate(alternatives):
        for j, v in enumerate(values):
            col = f"{X_PREFIX}{alt}:{v}"
            X[:, a, j] = floats(col, x_fix)
            _in_range(col, X[:, a, j], agents, -1.0, 1.0, x_fix)

    if (GAMMA_X in header) != (GAMMA_W in header):
        missing = GAMMA_W if GAMMA_X in header else GAMMA_X
        raise InputError(missing, "column missing while the other bound column is present",
                         f"give both {GAMMA_X} and {GAMMA_W} (inf means no limit) or neither")
    gx = gw = None
    if GAMMA_X in header:
        g_fix = "give bounds >= 0 (inf means no limit)"
        gx, gw = floats(GAMMA_X, g_fix, allow_inf=True), floats(GAMMA_W, g_fix, allow_inf=True)
        for col, g in ((GAMMA_X, gx), (GAMMA_W, gw)):
            if (g < 0).any():
                r = int(np.argmax(g < 0))
                raise InputError(col, f"row {r + 1} (agent {agents[r]!r}) is negative "
                                 f"({g[r]:.6g})", g_fix)
    weights = None
    if WEIGHT in header:
        wt_fix = "give positive finite weights (drop agents instead of zero-weighting)"
        weights = floats(WEIGHT, wt_fix)
        if (weights <= 0).any():
            r = int(np.argmax(weights <= 0))
            raise InputError(WEIGHT, f"row {r + 1} (agent {agents[r]!r}) is not positive "
                             f"({weights[r]:.6g})", wt_fix)
    return Population(X=X, W=W, gamma_x=gx, gamma_w=gw, weights=weights, agents=agents,
                      values=values, alternatives=alternatives, name=name or path.stem,
                      description=f"read from {path.name} (pluralguard format)")


def detect_format(path: str | Path) -> str:
    """``"pluralguard"`` or ``"lera"``, from the column names of a CSV file.

    A table with an ``agent`` column or ``w:``/``x:`` columns is in pluralguard's
    format; one with ``a_<action>_rel`` columns is a Lera-Leri et al. table.
    """
    header = read_header(path)
    if AGENT in header or any(c.startswith((W_PREFIX, X_PREFIX)) for c in header):
        return "pluralguard"
    if any(c.startswith("a_") and c.endswith("_rel") for c in header):
        return "lera"
    raise InputError("format", f"cannot tell the format of {as_path(path).name} from its "
                     "columns",
                     "give pluralguard columns (agent, w:<value>, x:<alternative>:<value>) "
                     "or Lera-Leri columns (a_<action>_rel, a_<action>_nonrel, rel, "
                     "nonrel), or pass format='pluralguard' or 'lera'")


def load_population_file(path: str | Path, format: str = "auto", *,
                         weights: str | None = None, name: str | None = None) -> Population:
    """Read a population file in pluralguard's format or Lera-Leri et al.'s.

    Parameters
    ----------
    path : str or Path
        The CSV file.
    format : {"auto", "pluralguard", "lera"}
        ``auto`` picks the format from the columns (:func:`detect_format`).
    weights : {"none", "respondents", "population"}, optional
        Weighting mode for a Lera-Leri table (default ``none``;
        :func:`~pluralguard.core.datasets.lera.from_lera_table`). A pluralguard file
        carries its weights in its ``weight`` column, so this must stay unset.
    name : str, optional
        Name of the population; default the file's stem.
    """
    if not isinstance(format, str) or format not in FORMATS:
        raise InputError("format", f"unknown file format {format!r}",
                         f"use one of {', '.join(FORMATS)}")
    if format == "auto":
        format = detect_format(path)
    if format == "lera":
        return read_lera_csv(path, weights="none" if weights is None else weights, name=name)
    if weights is not None:
        raise InputError("weights", "only applies to Lera-Leri tables",
                         "give a pluralguard file's weights in its 'weight' column")
    return read_population(path, name=name)
