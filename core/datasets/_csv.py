"""CSV reading shared by the table readers: file errors and cell parsing as InputError.

Cells are numbers only in plain decimal notation (:mod:`~pluralguard.core.numbers`):
``0_1``, ``١`` or ``nan`` are errors naming the column and the row, never 1.0 or a
missing value.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..errors import InputError
from ..numbers import parse_decimal


def as_path(path: Any, field: str = "path") -> Path:
    """``path`` as a :class:`~pathlib.Path` if it is text or path-like, else InputError."""
    if isinstance(path, str) or (isinstance(path, os.PathLike)
                                 and isinstance(os.fspath(path), str)):
        return Path(path)
    raise InputError(field, f"expected a file path, got {type(path).__name__}",
                     "pass the path as a string or pathlib.Path")


@contextmanager
def _file_errors(path: Path) -> Iterator[None]:
    """Turn a missing, unreadable, empty or malformed CSV file into :class:`InputError`."""
    if path.is_dir():
        raise InputError("path", f"{path} is a directory, not a file",
                         "give the path of a CSV file")
    if not path.is_file():
        raise InputError("path", f"no such file: {path}", "check the path")
    try:
        yield
    except PermissionError:
        raise InputError("path", f"{path} cannot be read (permission denied)",
                         "make the file readable or copy it somewhere readable") from None
    except OSError as exc:
        raise InputError("path", f"{path} cannot be read ({exc.strerror or exc})",
                         "check the file") from None
    except pd.errors.EmptyDataError:
        raise InputError("path", f"{path.name} is empty",
                         "give a CSV file with a header row and one row per agent") from None
    except UnicodeDecodeError as exc:
        raise InputError("path", f"{path.name} is not UTF-8 text ({exc.reason} at byte "
                         f"{exc.start})", "save the file as UTF-8 CSV") from None
    except pd.errors.ParserError as exc:
        problem = str(exc).strip().splitlines()[-1]
        raise InputError("path", f"{path.name} is not a well-formed CSV file ({problem})",
                         "close every quoted cell and give every row as many cells as the "
                         "header") from None


def read_text_table(path: str | Path) -> pd.DataFrame:
    """Read a CSV file as text: one column per header cell, one row per data row.

    Every cell stays text exactly as written (no number or NA guessing, so a country
    code ``NA`` stays ``"NA"`` and a cell ``0_1`` is not a number); cells missing from
    a short row are NaN. Numbers are parsed by the caller (:func:`parse_floats`,
    :func:`numeric_columns`).

    Raises
    ------
    InputError
        ``path`` for a missing, unreadable, empty or malformed file, a row longer than
        the header, or a header without rows; the column's name for a name that
        appears twice in the header.
    """
    path = as_path(path)
    with _file_errors(path):
        raw = pd.read_csv(path, dtype=str, header=None, keep_default_na=False)
    header = [str(c) for c in raw.iloc[0]]
    seen: set[str] = set()
    for col in header:
        if col in seen:
            raise InputError(col, "appears twice in the header", "keep one column per name")
        seen.add(col)
    if raw.shape[0] < 2:
        raise InputError("path", f"{path.name} has a header but no agents",
                         "add one row per agent")
    body = raw.iloc[1:].reset_index(drop=True)
    body.columns = header
    return body


def read_header(path: str | Path) -> list[str]:
    """The column names of a CSV file (errors as in :func:`read_csv`)."""
    path = as_path(path)
    with _file_errors(path):
        return [str(c) for c in pd.read_csv(path, nrows=0).columns]


def parse_floats(column: str, cells: Sequence[Any], agents: Sequence[str] | None,
                 fix: str, *, allow_inf: bool = False) -> np.ndarray:
    """Parse text cells in plain decimal notation exactly, naming the first bad cell.

    Each cell is read with Python's correctly rounded ``float`` once it is known to be
    plain decimal text (:func:`~pluralguard.core.numbers.parse_decimal`); ``inf`` only
    with ``allow_inf``, NaN never. A missing cell (a short row) arrives as a float NaN
    and is reported as empty.
    """
    out = np.empty(len(cells))
    for r, cell in enumerate(cells):
        where = f"row {r + 1}" + (f" (agent {agents[r]!r})" if agents is not None else "")
        if not isinstance(cell, str) or cell.strip() == "":
            raise InputError(column, f"{where} is empty", fix)
        value = parse_decimal(cell, allow_inf=allow_inf)
        if value is None:
            plain = "plain decimal number" + (" or inf" if allow_inf else "")
            raise InputError(column, f"{where} holds {cell!r}, not a {plain}", fix)
        out[r] = value
    return out


def numeric_columns(df: pd.DataFrame, columns: Sequence[str]) -> np.ndarray:
    """The given columns as a finite float array, shape (rows, len(columns)).

    Numeric columns are taken as they are; text columns (e.g. a table read with
    :func:`read_text_table`) are parsed by :func:`parse_floats`. Raises
    :class:`InputError` naming the column and row of a cell that is empty, not a
    plain decimal number, NaN or infinite.
    """
    fix = "give a finite number in plain decimal notation in every cell of this column"
    out = np.empty((len(df), len(columns)))
    for c, col in enumerate(columns):
        series = df[col]
        if pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series):
            values = series.to_numpy(dtype=float, na_value=np.nan)
        else:
            values = parse_floats(col, series.tolist(), None, fix)
        bad = ~np.isfinite(values)
        if bad.any():
            r = int(np.argmax(bad))
            what = "is empty" if np.isnan(values[r]) else f"is {values[r]}"
            raise InputError(col, f"row {r + 1} {what}", fix)
        out[:, c] = values
    return out
